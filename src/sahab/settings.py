"""Django settings for sahab.

Every setting comes from the environment (see docs/configuration.md); state lives
under ``SAHAB_HOME``. Without ``DATABASE_URL`` sahab runs on an embedded SQLite
database in WAL mode, so that ``make run`` needs nothing installed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

PACKAGE_DIR = Path(__file__).resolve().parent
SAHAB_HOME = Path(os.environ.get("SAHAB_HOME", "var")).resolve()


def _env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _secret_key() -> str:
    """The Django secret: from the environment, else kept in ``SAHAB_HOME/secret_key``."""
    if value := os.environ.get("SAHAB_SECRET_KEY"):
        return value
    path = SAHAB_HOME / "secret_key"
    if path.exists():
        return path.read_text().strip()
    SAHAB_HOME.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


SECRET_KEY = _secret_key()
DEBUG = _env_bool("SAHAB_DEBUG")
ALLOWED_HOSTS = os.environ.get("SAHAB_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("SAHAB_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

# URLs users set (brokers, witnesses): https only unless this is on (docs/security.md);
# internal hosts ("host" or "host:port") a platform administrator allows to be called.
OUTBOUND_ALLOW_HTTP = _env_bool("SAHAB_OUTBOUND_ALLOW_HTTP", DEBUG)
OUTBOUND_INTERNAL_HOSTS = [h.strip() for h in os.environ.get(
    "SAHAB_OUTBOUND_INTERNAL_HOSTS", "").split(",") if h.strip()]

HTTP_PORT = _env_int("SAHAB_HTTP_PORT", 8000)
SMTP_PORT = _env_int("SAHAB_SMTP_PORT", 2525)
SUBMISSION_PORT = _env_int("SAHAB_SUBMISSION_PORT", 2587)
IMAP_PORT = _env_int("SAHAB_IMAP_PORT", 1143)
PUBLIC_URL = os.environ.get("SAHAB_PUBLIC_URL", f"http://127.0.0.1:{HTTP_PORT}/")
DBAAS_URL = os.environ.get("SAHAB_DBAAS_URL", "")
# The host name that applications use to reach the DBaaS cluster (default: the URL's host).
DBAAS_PUBLIC_HOST = os.environ.get("SAHAB_DBAAS_PUBLIC_HOST", "")


def _decimal_env(name: str, default: str):
    from decimal import Decimal, InvalidOperation

    try:
        return Decimal(os.environ.get(name, default))
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name} must be an amount in dinars") from None


# Mail (docs/mail.md). The name this server gives itself in SMTP and in receipts.
MAIL_HOSTNAME = os.environ.get("SAHAB_MAIL_HOSTNAME", "mail.gov.tn")
# The host mail clients connect to (IMAP and submission), given in autoconfiguration.
MAIL_PUBLIC_HOST = os.environ.get("SAHAB_MAIL_PUBLIC_HOST", "127.0.0.1")
MAIL_MAX_MESSAGE_BYTES = _env_int("SAHAB_MAIL_MAX_MESSAGE_BYTES", 25 * 1024**2)
MAIL_MAX_HEADER_BYTES = _env_int("SAHAB_MAIL_MAX_HEADER_BYTES", 256 * 1024)
MAIL_MAX_RECIPIENTS = _env_int("SAHAB_MAIL_MAX_RECIPIENTS", 100)
MAIL_RATE_PER_MINUTE = _env_int("SAHAB_MAIL_RATE_PER_MINUTE", 120)
MAIL_DELIVERY_THREADS = _env_int("SAHAB_MAIL_DELIVERY_THREADS", 8)
# SMTP server processes sharing the ports (default: one per CPU, at most 4).
MAIL_PROCESSES = _env_int("SAHAB_MAIL_PROCESSES", min(os.cpu_count() or 1, 4))
MAIL_DEFAULT_QUOTA_BYTES = _env_int("SAHAB_MAIL_DEFAULT_QUOTA_BYTES", 2 * 1024**3)
MAIL_MAX_QUOTA_BYTES = _env_int("SAHAB_MAIL_MAX_QUOTA_BYTES", 100 * 1024**3)
# DNS for SPF, DKIM and DMARC of domains hosted elsewhere: "false" (closed networks: no
# lookups), "true" (the system's resolver) or "IP[:PORT]" of the resolver to ask.
MAIL_DNS = os.environ.get("SAHAB_MAIL_DNS", "false").strip().lower()
# The domains the state holds: only these are assigned to administrations (comma-separated;
# "*.gov.tn" is every name under gov.tn; the public enterprises' own domains are named).
MAIL_DOMAINS_ALLOWED = [d.strip().lower() for d in os.environ.get(
    "SAHAB_MAIL_DOMAINS", "*.gov.tn,*.nat.tn,steg.com.tn,sonede.com.tn").split(",") if d.strip()]
# Implicit TLS (RFC 8314): submission and IMAP over TLS from the first byte.
SMTPS_PORT = _env_int("SAHAB_SMTPS_PORT", 2465)
IMAPS_PORT = _env_int("SAHAB_IMAPS_PORT", 1993)
MANAGESIEVE_PORT = _env_int("SAHAB_MANAGESIEVE_PORT", 4190)
# Wrong mail passwords (SMTP AUTH and IMAP): each failure waits longer; a connection is
# closed after a few; an address or a login with too many failures in the window waits
# out the window.
MAIL_AUTH_DELAY_SECONDS = float(os.environ.get("SAHAB_MAIL_AUTH_DELAY_SECONDS", "1"))
MAIL_AUTH_FAILURES_PER_CONNECTION = _env_int("SAHAB_MAIL_AUTH_FAILURES_PER_CONNECTION", 3)
MAIL_AUTH_FAILURES_PER_CLIENT = _env_int("SAHAB_MAIL_AUTH_FAILURES_PER_CLIENT", 10)
MAIL_AUTH_FAILURES_PER_LOGIN = _env_int("SAHAB_MAIL_AUTH_FAILURES_PER_LOGIN", 10)
MAIL_AUTH_WINDOW_SECONDS = _env_int("SAHAB_MAIL_AUTH_WINDOW_SECONDS", 900)
# Where Dovecot reaches sahab (its auth policy and the letters' opening events).
MAIL_DOVECOT_CALLBACK_URL = os.environ.get(
    "SAHAB_MAIL_DOVECOT_CALLBACK_URL", f"http://127.0.0.1:{HTTP_PORT}/mail/dovecot/")
# Mail for other domains goes to this smart host ("host:port"); unset: it waits in the
# queue and returns to its sender after SAHAB_MAIL_BOUNCE_HOURS.
MAIL_SMART_HOST = os.environ.get("SAHAB_MAIL_SMART_HOST", "")
MAIL_BOUNCE_HOURS = _env_int("SAHAB_MAIL_BOUNCE_HOURS", 120)
# A registered letter not delivered within this delay gets a non-delivery receipt.
MAIL_LETTER_DELIVERY_HOURS = _env_int("SAHAB_MAIL_LETTER_DELIVERY_HOURS", 24)
MAIL_RECEIPTS_NAME = os.environ.get("SAHAB_MAIL_RECEIPTS_NAME", f"{MAIL_HOSTNAME}/receipts")
# When sahab runs as root, mail files belong to this account, which Dovecot runs as.
MAIL_SYSTEM_USER = os.environ.get("SAHAB_MAIL_SYSTEM_USER", "nobody")

# Exchange gateway (docs/exchange.md): its own processes listen on a plain port and on a
# mutual-TLS port; the largest request body relayed to a provider.
EXCHANGE_PORT = _env_int("SAHAB_EXCHANGE_PORT", 8080)
EXCHANGE_TLS_PORT = int(os.environ.get("SAHAB_EXCHANGE_TLS_PORT", "8443"))
EXCHANGE_URL = os.environ.get("SAHAB_EXCHANGE_URL", f"http://127.0.0.1:{EXCHANGE_PORT}/")
EXCHANGE_GATEWAY_PROCESSES = _env_int("SAHAB_EXCHANGE_GATEWAY_PROCESSES",
                                      min(os.cpu_count() or 1, 4))
EXCHANGE_DB_THREADS = _env_int("SAHAB_EXCHANGE_DB_THREADS", 8)
# The message log is written in batches every this many seconds (0: with each call);
# strict mode commits each record before the client has its whole answer.
EXCHANGE_LOG_BATCH_SECONDS = float(os.environ.get("SAHAB_EXCHANGE_LOG_BATCH_SECONDS", "0.2"))
EXCHANGE_LOG_STRICT = _env_bool("SAHAB_EXCHANGE_LOG_STRICT")
EXCHANGE_LOG_MAX_BUFFER = _env_int("SAHAB_EXCHANGE_LOG_MAX_BUFFER", 100_000)
EXCHANGE_LOG_ALERT_SECONDS = _env_int("SAHAB_EXCHANGE_LOG_ALERT_SECONDS", 60)
EXCHANGE_MAX_BODY_BYTES = int(os.environ.get("SAHAB_EXCHANGE_MAX_BODY_BYTES", str(10 * 1024**2)))
# A registry change applies to calls that start this long after it (0: the next call).
EXCHANGE_REGISTRY_MAX_AGE_SECONDS = float(
    os.environ.get("SAHAB_EXCHANGE_REGISTRY_MAX_AGE_SECONDS", "0"))
EXCHANGE_CONNECT_TIMEOUT_SECONDS = float(
    os.environ.get("SAHAB_EXCHANGE_CONNECT_TIMEOUT_SECONDS", "3"))
# Providers are reached over https; plain http only on closed test networks.
EXCHANGE_ALLOW_HTTP_PROVIDERS = _env_bool("SAHAB_EXCHANGE_ALLOW_HTTP_PROVIDERS")
EXCHANGE_PROVIDER_CA_FILE = os.environ.get("SAHAB_EXCHANGE_PROVIDER_CA_FILE", "")
# The demo's provider systems: "auto" runs them where `sahab demo` was loaded.
EXCHANGE_DEMO_PORT = _env_int("SAHAB_EXCHANGE_DEMO_PORT", 8444)
EXCHANGE_DEMO_PROVIDERS = os.environ.get("SAHAB_EXCHANGE_DEMO_PROVIDERS", "auto")

# Cloud marketplace (docs/cloud.md). Orders whose monthly estimate exceeds the threshold
# wait for the administration's finance role.
CLOUD_APPROVAL_THRESHOLD = _decimal_env("SAHAB_CLOUD_APPROVAL_THRESHOLD", "300")
CLOUD_BROKER_TIMEOUT = float(os.environ.get("SAHAB_CLOUD_BROKER_TIMEOUT", "30"))
CLOUD_POLL_SECONDS = float(os.environ.get("SAHAB_CLOUD_POLL_SECONDS", "2"))
CLOUD_MAX_POLLING_SECONDS = int(os.environ.get("SAHAB_CLOUD_MAX_POLLING_SECONDS", "3600"))
CLOUD_RETRY_BASE_SECONDS = float(os.environ.get("SAHAB_CLOUD_RETRY_BASE_SECONDS", "5"))
CLOUD_RETRY_MAX_SECONDS = float(os.environ.get("SAHAB_CLOUD_RETRY_MAX_SECONDS", "900"))
CLOUD_MAX_ATTEMPTS = int(os.environ.get("SAHAB_CLOUD_MAX_ATTEMPTS", "5"))
# Brokers must use https in production (the platform's own reference broker excepted).
CLOUD_ALLOW_HTTP_BROKERS = _env_bool("SAHAB_CLOUD_ALLOW_HTTP_BROKERS", OUTBOUND_ALLOW_HTTP)
# The ministry in charge of ICT: its agents see every administration's cloud figures.
CLOUD_ICT_MINISTRY = os.environ.get("SAHAB_CLOUD_ICT_MINISTRY", "MTC")
# Reference costs of on-premise hosting, in TND per month (savings report, docs/cloud.md):
# a server's share of the hosting centre (room, power, network, staff, licences), then
# per vCPU, GB of memory and GB of storage, divided by the average utilisation of
# servers sized for their peak.
CLOUD_ONPREM = json.loads(os.environ.get("SAHAB_CLOUD_ONPREM", "null") or "null") or {
    "server_month": 180, "vcpu_month": 35, "memory_gb_month": 9, "storage_gb_month": 0.6,
    "utilisation": 0.35}

# The ledger's origin line and key name: the public URL's host and path, unless set.
LEDGER_ORIGIN = os.environ.get("SAHAB_LEDGER_ORIGIN") or (
    PUBLIC_URL.split("://", 1)[-1].rstrip("/") + "/ledger")
LEDGER_CHECKPOINT_INTERVAL = float(os.environ.get("SAHAB_LEDGER_CHECKPOINT_INTERVAL", "0.5"))
# The signer's own record of what it signed, outside the database (default SAHAB_HOME/ledger).
LEDGER_SIGNER_DIR = os.environ.get("SAHAB_LEDGER_SIGNER_DIR", "")
# A checkpoint is published (served, put in receipts) once this many witnesses cosigned it.
LEDGER_COSIGNATURES_REQUIRED = _env_int("SAHAB_LEDGER_COSIGNATURES_REQUIRED", 0)
# The log's index from which every entry carries the platform's MAC (ledger/docs): 0 on
# a platform installed with entry MACs; the log's size at the upgrade on one upgraded
LEDGER_MACS_FROM = _env_int("SAHAB_LEDGER_MACS_FROM", 0)
# The local witness that `sahab serve` runs beside the platform once `sahab demo` (or
# `sahab witness init`) set it up in SAHAB_HOME/witness.
WITNESS_PORT = _env_int("SAHAB_WITNESS_PORT", 8081)
# Minimum days between publication and submission deadline for every procedure; unset
# means the legal minimums (docs/procurement.md). Training and test platforms lower it.
PROCUREMENT_MIN_DAYS = (int(os.environ["SAHAB_PROCUREMENT_MIN_DAYS"])
                        if os.environ.get("SAHAB_PROCUREMENT_MIN_DAYS") else None)
# Amendments (docs/procurement.md, "Amendments"): the days bidders keep at least between
# an amendment of a published tender and its submission deadline; an amendment that
# would leave fewer extends the deadline, or is refused. The default of 10 days is a
# placeholder: set it from the Décret n° 2014-1039 and the buyer's rules. Like every
# minimum, SAHAB_PROCUREMENT_MIN_DAYS (training and test platforms) replaces it when set.
PROCUREMENT_MIN_DAYS_AFTER_AMENDMENT = _env_int("SAHAB_PROCUREMENT_MIN_DAYS_AFTER_AMENDMENT", 10)
# A tender's publication entry commits to its secret bid tag; one without that commitment
# is accepted (opened, and bid on) only if its ledger index is below this one: the log's
# size when a platform that published tenders before the commitment was upgraded. New
# platforms keep 0 (every publication commits). docs/procurement.md, "Sealed bids".
PROCUREMENT_BID_TAGS_COMMITTED_FROM = _env_int("SAHAB_PROCUREMENT_BID_TAGS_COMMITTED_FROM", 0)
# Bid-signing keys: a PEM file of the national CA's certificates (e.g. TunTrust) that
# must issue every company key's certificate; unset, the platform's demo CA issues them.
PROCUREMENT_CA_ROOTS = os.environ.get("SAHAB_PROCUREMENT_CA_ROOTS", "")
# Signed official documents (opening and evaluation reports, award decisions, contracts;
# sahab/core/pdfsign.py): unset, the platform's demo document CA issues each signer a
# certificate. In production, a directory of the national CA's PKCS#12 files
# (<username>.p12 and its passphrase in <username>.pass, platform.p12 for the platform's
# seal) and the PEM file of that CA's certificates that verifiers trust. A PKCS#11 module
# (smart cards, HSM) is not wired in yet: setting it stops signing rather than using files.
DOCUMENT_SIGNING_PKCS12_DIR = os.environ.get("SAHAB_DOCUMENT_SIGNING_PKCS12_DIR", "")
DOCUMENT_SIGNING_TRUST_ROOTS = os.environ.get("SAHAB_DOCUMENT_SIGNING_TRUST_ROOTS", "")
DOCUMENT_SIGNING_PKCS11_MODULE = os.environ.get("SAHAB_DOCUMENT_SIGNING_PKCS11_MODULE", "")
# How many steps' documents the worker signs per run (every 10 seconds), so that a
# backlog (the demo year) never holds the queue for long.
PROCUREMENT_OFFICIAL_DOCUMENTS_BATCH = _env_int("SAHAB_PROCUREMENT_OFFICIAL_DOCUMENTS_BATCH", 10)
# OCDS publication: the platform's ocid prefix (registered form ocds- + 6 characters),
# publisher and licence, and the local copy of the standard (schema, codelists).
# The default prefix is for tests and training: register a prefix with the Open
# Contracting Partnership and set it once in production (ocids never change after).
OCDS_PREFIX = os.environ.get("SAHAB_OCDS_PREFIX", "ocds-test00")
OCDS_PUBLISHER = os.environ.get("SAHAB_OCDS_PUBLISHER",
                                "sahab — plateforme cloud gouvernementale de Tunisie")
OCDS_LICENSE = os.environ.get("SAHAB_OCDS_LICENSE",
                              "https://creativecommons.org/publicdomain/zero/1.0/")
if not re.fullmatch(r"ocds-[a-z0-9]{6}", OCDS_PREFIX):
    raise ImproperlyConfigured("SAHAB_OCDS_PREFIX is 'ocds-' and six lowercase letters or digits")
# The OCDS bulk files: the worker writes them this often when releases were published
# since (0: never, every download streams from the database), to this folder (empty:
# SAHAB_HOME/ocds; shared storage read by every application server when there are several).
OCDS_BULK_SECONDS = _env_int("SAHAB_OCDS_BULK_SECONDS", 3600)
OCDS_BULK_DIR = os.environ.get("SAHAB_OCDS_BULK_DIR", "")
# Red-flag thresholds: overrides of the defaults of docs/red-flags.md, e.g.
# {"R003": {"threshold": 21}}; R003's per-procedure minimums are the legal minimum days
# between publication and the deadline below.
RED_FLAGS: dict = {}
# The worker recomputes the red flags into a table this often; pages read the last run.
RED_FLAGS_REFRESH_SECONDS = _env_int("SAHAB_RED_FLAGS_REFRESH_SECONDS", 300)
# True: a page that finds the last run older than the published releases (or computed
# with other settings) recomputes it at once; for tests, never for a busy server.
RED_FLAGS_RECOMPUTE_WHEN_STALE = False
# The portal home's figures and the dashboards' tables aggregate every tender: each
# process keeps them this long (Django's cache) instead of aggregating on every request.
PORTAL_FIGURES_SECONDS = _env_int("SAHAB_PORTAL_FIGURES_SECONDS", 60)
# The sender of the portal's alerts (new tenders for those who follow a CPV code, a
# buyer, a company or a search), sent through sahab's own mail.
PORTAL_ALERTS_FROM = os.environ.get("SAHAB_PORTAL_ALERTS_FROM", f"alertes@{MAIL_HOSTNAME}")
# Complaints (docs/procurement.md, "Complaints"): how many undecided complaints one
# company may have on one tender, and the complaints body's time limits, in days, to
# rule on admissibility (after which the complaint lapses) and on the merits (after
# which the suspension of the lots concerned is lifted).
PROCUREMENT_COMPLAINTS_PER_COMPANY = _env_int("SAHAB_PROCUREMENT_COMPLAINTS_PER_COMPANY", 2)
PROCUREMENT_COMPLAINT_ADMISSIBILITY_DAYS = _env_int(
    "SAHAB_PROCUREMENT_COMPLAINT_ADMISSIBILITY_DAYS", 5)
PROCUREMENT_COMPLAINT_DECISION_DAYS = _env_int("SAHAB_PROCUREMENT_COMPLAINT_DECISION_DAYS", 15)
# A candidate refused at pre-qualification complains against the refusal within these
# days of it (ProZorro's pre-qualification standstill is 10 days), and never after the
# submission deadline.
PROCUREMENT_QUALIFICATION_COMPLAINT_DAYS = _env_int(
    "SAHAB_PROCUREMENT_QUALIFICATION_COMPLAINT_DAYS", 10)
if PROCUREMENT_QUALIFICATION_COMPLAINT_DAYS < 1:
    raise ImproperlyConfigured("SAHAB_PROCUREMENT_QUALIFICATION_COMPLAINT_DAYS is at least 1 day")
# Abnormally low prices (docs/procurement.md, "Evaluation committee"): the days a bidder
# has to explain its price once the evaluation committee asks; the committee may reject
# the bid once they have passed without an answer. Never 0 on a real platform (tests
# change the setting itself).
PROCUREMENT_EXPLANATION_DAYS = _env_int("SAHAB_PROCUREMENT_EXPLANATION_DAYS", 5)
if PROCUREMENT_EXPLANATION_DAYS < 1:
    raise ImproperlyConfigured("SAHAB_PROCUREMENT_EXPLANATION_DAYS is at least 1 day")

# Contract amendments (docs/procurement.md, "Contracts"): an amendment that raises the
# contract's value, counted from the value both parties signed, by more than this share
# in all (avenants, Décret n° 2014-1039) waits for the approval of a control agent.
PROCUREMENT_AMENDMENT_CEILING_PERCENT = _env_int("SAHAB_PROCUREMENT_AMENDMENT_CEILING_PERCENT",
                                                 20)
# Password-reset links: sent from this address, valid for an hour.
ACCOUNTS_MAIL_FROM = os.environ.get("SAHAB_ACCOUNTS_MAIL_FROM", f"comptes@{MAIL_HOSTNAME}")
PASSWORD_RESET_TIMEOUT = _env_int("SAHAB_PASSWORD_RESET_SECONDS", 3600)
# Notices to people (an order to approve, a database ready): sent from this address.
NOTICES_MAIL_FROM = os.environ.get("SAHAB_NOTICES_MAIL_FROM", f"notifications@{MAIL_HOSTNAME}")
# Uploaded documents go through this antivirus command when set (the file on its standard
# input; exit 0 clean, 1 infected, anything else refuses the file), e.g.
# "clamdscan --no-summary --fdpass -" with Debian's clamav-daemon (docs/security.md).
UPLOAD_SCANNER = os.environ.get("SAHAB_UPLOAD_SCANNER", "")
UPLOAD_SCANNER_TIMEOUT = _env_int("SAHAB_UPLOAD_SCANNER_TIMEOUT", 60)
# How many tenders `sahab demo` loads: its planted cases, then ordinary purchases up to
# this number (`sahab demo --tenders N` for another size).
DEMO_TENDERS = _env_int("SAHAB_DEMO_TENDERS", 200)
PROCUREMENT_MIN_TENDERING_DAYS = {"open": 21, "restricted": 15, "negotiated": 7,
                                  "simplified": 10, "framework": 21, "mini_competition": 5}
# The standard's release schema (1.1.5), shipped with sahab: the merge rules come from it.
OCDS_RELEASE_SCHEMA = PACKAGE_DIR / "procurement" / "schema" / "release-schema.json"
# This installation's witness name, when it witnesses other logs.
LEDGER_WITNESS_NAME = os.environ.get("SAHAB_LEDGER_WITNESS_NAME") or (
    PUBLIC_URL.split("://", 1)[-1].rstrip("/") + "/witness")

# Operations (docs/operations.md): who may read /metrics and /readyz (addresses or networks,
# or a bearer token), what /readyz checks (host:port; unset: this machine's listeners;
# empty: no check), and the log format (json or plain).
PROXY_COUNT = _env_int("SAHAB_PROXY_COUNT", 0)
METRICS_ALLOWED = os.environ.get("SAHAB_METRICS_ALLOWED", "127.0.0.1,::1")
METRICS_TOKEN = os.environ.get("SAHAB_METRICS_TOKEN", "")
READY_SMTP = os.environ.get("SAHAB_READY_SMTP")
READY_IMAP = os.environ.get("SAHAB_READY_IMAP")
READY_QUEUE_MAX_AGE = _env_int("SAHAB_READY_QUEUE_MAX_AGE", 300)
LOG_FORMAT = os.environ.get("SAHAB_LOG_FORMAT", "json")

INSTALLED_APPS = [
    "sahab.operator",  # first: its commands replace Django's that would bypass the ledger
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "django_tasks",
    "ninja",  # its API docs page from local static files, no CDN, no inline script (CSP)
    "django_tasks_db",
    "sahab.core",
    "sahab.ledger",
    "sahab.directory",
    "sahab.procurement",
    "sahab.cloud",
    "sahab.exchange",
    "sahab.mail",
    "sahab.portal",
    "sahab.ops",
]

MIDDLEWARE = [
    "sahab.ops.middleware.OperationsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "sahab.core.headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "sahab.core.middleware.RequestGateMiddleware",
    "sahab.core.dbrouting.DatabaseRoutingMiddleware",
    "sahab.core.dbrouting.SessionMiddleware",  # Django's, with a 503 for an unreachable database
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "sahab.directory.sessions.SessionLifetimeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "sahab.urls"
WSGI_APPLICATION = "sahab.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "sahab.core.context_processors.navigation",
            ],
            "builtins": ["sahab.core.templatetags.money"],
        },
    },
]


def _database(url: str) -> dict:
    config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["CONN_MAX_AGE"] = 0
        config["OPTIONS"] = {
            # WAL lets readers run beside the one writer; synchronous=FULL makes every
            # commit durable (a signed checkpoint must never outlive its entries after a
            # power cut); IMMEDIATE takes the write lock at BEGIN so that two writers
            # never deadlock on a lock upgrade. A writer waits up to 10 s for another's
            # commit, then gets a 503 (a longer wait only lengthens the signer's lock
            # inversion described in docs/operations.md).
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000;"
            ),
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    return config


DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{SAHAB_HOME / 'sahab.sqlite3'}"
DATABASES = {"default": _database(DATABASE_URL)}
# A PostgreSQL streaming replica serving public reads (docs/scale.md): it may lag the
# primary by REPLICA_MAX_LAG_SECONDS at most, measured every REPLICA_CHECK_SECONDS.
DATABASE_REPLICA_URL = os.environ.get("DATABASE_REPLICA_URL", "")
REPLICA_MAX_LAG_SECONDS = float(os.environ.get("SAHAB_REPLICA_MAX_LAG_SECONDS", "5"))
REPLICA_CHECK_SECONDS = float(os.environ.get("SAHAB_REPLICA_CHECK_SECONDS", "1"))
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = _database(DATABASE_REPLICA_URL)
    if not {DATABASES["default"]["ENGINE"], DATABASES["replica"]["ENGINE"]} <= {
            "django.db.backends.postgresql"}:
        raise ImproperlyConfigured("DATABASE_REPLICA_URL needs PostgreSQL for both databases")
    DATABASE_ROUTERS = ["sahab.core.dbrouting.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "directory:login"
LOGIN_REDIRECT_URL = "directory:home"
LOGOUT_REDIRECT_URL = "portal:home"

# Login throttling: five failures for one username from one address lock it for 15 minutes.
AXES_FAILURE_LIMIT = _env_int("SAHAB_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = 0.25
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "directory/locked_out.html"
AXES_IPWARE_PROXY_COUNT = _env_int("SAHAB_PROXY_COUNT", 0) or None
AXES_VERBOSE = False

# Wrong second-factor codes per account before it is locked, and for how long (docs/security.md).
TOTP_MAX_FAILURES = _env_int("SAHAB_TOTP_MAX_FAILURES", 5)
TOTP_LOCKOUT_MINUTES = _env_int("SAHAB_TOTP_LOCKOUT_MINUTES", 15)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = PUBLIC_URL.startswith("https://")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_COOKIE_SAMESITE = "Lax"
# Over https the cookies are bound to this host alone (no Domain, path /, Secure).
_COOKIE_PREFIX = "__Host-" if SESSION_COOKIE_SECURE else ""
SESSION_COOKIE_NAME = f"{_COOKIE_PREFIX}sessionid"
CSRF_COOKIE_NAME = f"{_COOKIE_PREFIX}csrftoken"
# Sessions (docs/security.md): signed out after this long without a request, and after
# this long since signing in whatever happens (sahab.directory.sessions).
SESSION_COOKIE_AGE = _env_int("SAHAB_SESSION_IDLE_SECONDS", 30 * 60)
# the idle delay restarts with each request, but a session is written again at most once
# in this many seconds (sahab.core.dbrouting.SessionMiddleware): reading costs no write
SESSION_REFRESH_SECONDS = _env_int("SAHAB_SESSION_REFRESH_SECONDS", 60)
SESSION_MAX_AGE_SECONDS = _env_int("SAHAB_SESSION_MAX_SECONDS", 12 * 3600)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Headers (docs/security.md): HSTS on https for a year; the CSP is sahab.core.headers'.
SECURE_HSTS_SECONDS = _env_int("SAHAB_HSTS_SECONDS", 31536000 if SESSION_COOKIE_SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = False  # the state's other hosts are not ours to pin
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CSP_REPORT_ONLY = _env_bool("SAHAB_CSP_REPORT_ONLY")
if _env_int("SAHAB_PROXY_COUNT", 0):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("ar", _("Arabic")), ("en", _("English"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
FORMAT_MODULE_PATH = ["sahab.formats"]  # Tunisian dates in Arabic
LANGUAGE_COOKIE_NAME = "sahab_language"
TIME_ZONE = "Africa/Tunis"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# Collected (and compressed) static files: SAHAB_HOME/static unless SAHAB_STATIC_ROOT names
# another folder, which several installations of one release may share (`sahab init`
# collects again only when the sources changed: sahab.core.setup.collect_static).
STATIC_ROOT = Path(os.environ.get("SAHAB_STATIC_ROOT") or SAHAB_HOME / "static").resolve()
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": SAHAB_HOME / "media"}},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Bids carry their documents (base64) in one JSON body: room for 20 MB of files.
DATA_UPLOAD_MAX_MEMORY_SIZE = 40 * 1024 * 1024

NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_LIMIT = 500

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
                   "json": {"()": "sahab.ops.logs.JsonFormatter"}},
    "filters": {"request_id": {"()": "sahab.ops.logs.RequestIdFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["request_id"],
                             "formatter": "json" if LOG_FORMAT == "json" else "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("SAHAB_LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}, "httpx": {"level": "WARNING"},
                # aiosmtpd logs every SMTP command at INFO
                "mail.log": {"level": "ERROR"},
                # WeasyPrint logs each rendering step of each official document at INFO
                "weasyprint": {"level": "WARNING"},
                # and fontTools each glyph table it subsets for them
                "fontTools": {"level": "WARNING"}},
}
