# sahab: `make run` brings the platform up with demo data; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export SAHAB_HOME ?= $(CURDIR)/var
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
# The reference broker's databases go to a local PostgreSQL server when one answers on
# 127.0.0.1:5432 (set SAHAB_DBAAS_URL yourself otherwise); without one the cloud's
# PostgreSQL plans show as unavailable and `make run` says so.
LOCAL_POSTGRES := $(shell $(PYTHON) -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null && echo postgresql://postgres@127.0.0.1:5432/postgres)
export SAHAB_DBAAS_URL ?= $(LOCAL_POSTGRES)

# Debian packages: Dovecot serves the Maildirs over IMAP, with Sieve filters and
# ManageSieve; the browser and fonts for the end-to-end tests; PostgreSQL binaries so the
# tests can start their own cluster where no server runs; Go's signed-note package checks that cosigned checkpoints verify with
# the reference implementation; strace shows the order of fsyncs and replies in the
# durability tests; Postfix is the benchmarks' reference mail server, signing with OpenDKIM
# and checking AUTH through Dovecot on its submission port. WeasyPrint renders the signed
# official documents with Pango and HarfBuzz, in Noto (Arabic shaped) and DejaVu fonts;
# the tests read them back with Poppler (pdftoppm, pdftotext, pdffonts).
RUN_PACKAGES := dovecot-imapd dovecot-sieve dovecot-managesieved \
	libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-core fonts-dejavu-core
TEST_PACKAGES := $(RUN_PACKAGES) chromium postgresql gettext \
	golang-go golang-golang-x-mod-dev strace poppler-utils
BENCH_PACKAGES := postfix opendkim dovecot-core

.PHONY: run test test-sqlite test-postgres lint bench mutation install messages clean help

help:
	@echo "make run     - install, load the demo data and start sahab on 127.0.0.1"
	@echo "make test    - install what the tests need and run them (SQLite and PostgreSQL)"
	@echo "make bench   - run the benchmarks under bench/"
	@echo "make lint    - ruff"
	@echo "make mutation - mutmut over the critical functions (slow: not part of make test)"

$(BIN)/.installed: pyproject.toml uv.lock
	@# "uv --version", not "command -v uv": a version manager's shim may name a uv that
	@# is not installed behind it
	@uv --version >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		$(PYTHON) -m pip install --quiet uv
	@if uv --version >/dev/null 2>&1; then uv sync --frozen --extra dev --quiet; \
		else $(PYTHON) -m uv sync --frozen --extra dev --quiet; fi
	@touch $@

install: $(BIN)/.installed

messages: install
	@if command -v msgfmt >/dev/null; then cd src/sahab && ../../$(BIN)/sahab manage compilemessages -v 0; fi

run: install
	@scripts/system-packages.sh $(RUN_PACKAGES) || true
	$(BIN)/sahab demo
	@# the demo's witness runs beside the platform: publish only what it cosigned
	SAHAB_LEDGER_COSIGNATURES_REQUIRED=$${SAHAB_LEDGER_COSIGNATURES_REQUIRED:-1} $(BIN)/sahab serve

test: install
	@scripts/system-packages.sh $(TEST_PACKAGES)
	@$(MAKE) --no-print-directory messages lint
	@# The two databases' suites run side by side (each prints when it ends). Having
	@# installed Dovecot, Chromium, PostgreSQL, Go and strace, a test that misses one fails
	@# rather than skips.
	@SAHAB_TESTS_REQUIRE_ALL=1 $(MAKE) --no-print-directory -j2 --output-sync=target \
		test-sqlite test-postgres

test-sqlite: install
	SAHAB_TEST_DB=sqlite $(BIN)/pytest

test-postgres: install
	SAHAB_TEST_DB=postgres $(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests bench

bench: install
	@scripts/system-packages.sh $(BENCH_PACKAGES)
	$(BIN)/python -m bench

# Mutation testing (mutmut, fetched by uv for the run only) of the ledger's Merkle tree,
# the deadline and lock rules of bids, the SMTP refusals and durable Maildir delivery,
# against PostgreSQL; the report goes to var/mutation/report.md (see docs/development.md).
mutation: install
	$(BIN)/python scripts/mutation.py

clean:
	rm -rf $(VENV) var test-results .pytest_cache
