#!/usr/bin/env bash
# Make the migration test's fixture (tests/ops/previous_release/) from a release commit:
#   scripts/previous-release-fixture.sh COMMIT
# It checks COMMIT out in a temporary git worktree and runs that release's `sahab demo`
# with this checkout's virtualenv, once on SQLite and once on PostgreSQL (PG_URL, default
# the local server), and keeps each database as that engine's own dump (SQL text, xz; and
# pg_dump's custom format), the migrations it was at, the demo's keys and the ledger's
# key, size and root. See docs/operations.md ("Upgrades").
set -euo pipefail
commit=${1:?usage: $0 COMMIT}
pg_url=${PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
repo=$(cd "$(dirname "$0")/.." && pwd)
python="$repo/.venv/bin/python"
out="$repo/tests/ops/previous_release"
work=$(mktemp -d /tmp/sahab-previous-XXXXXX)
database="sahab_previous_$$"
cleanup() {
    git -C "$repo" worktree remove --force "$work/tree" >/dev/null 2>&1 || true
    psql "$pg_url" -qc "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

git -C "$repo" worktree add --detach "$work/tree" "$commit" >/dev/null
export PYTHONPATH="$work/tree/src" DJANGO_SETTINGS_MODULE=sahab.settings
export SAHAB_PROCUREMENT_MIN_DAYS=0 SAHAB_DBAAS_URL= SAHAB_LOG_FORMAT=plain
rm -rf "$out" && mkdir -p "$out"
demo() { "$python" -c "import sys; from sahab.cli import main; sys.exit(main(['demo']))" >/dev/null; }
describe() {  # ENGINE: the migrations and the ledger of the database just made
    "$python" - "$out/release.json" "$commit" "$1" <<'PY'
import base64, json, sys
from pathlib import Path
import django
django.setup()
from django.db.migrations.recorder import MigrationRecorder
from sahab.ledger import services
path, commit, engine = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
release = json.loads(path.read_text()) if path.exists() else {"commit": commit}
leaves = {}
for app, name in MigrationRecorder.Migration.objects.values_list("app", "name"):
    leaves[app] = max(leaves.get(app, ""), name)
size = services.tree_size()
release["migrations"] = leaves
release[engine] = {"key": services.verifier_key(), "size": size,
                   "root": base64.b64encode(services.root_at(size)).decode()}
path.write_text(json.dumps(release, indent=1, sort_keys=True) + "\n")
PY
}

# SQLite: the demo, then the database as SQL text
export SAHAB_HOME="$work/sqlite"
unset DATABASE_URL
mkdir -p "$SAHAB_HOME"
demo
describe sqlite
"$python" -c "import sqlite3, sys; print('\n'.join(sqlite3.connect(sys.argv[1]).iterdump()))" \
    "$SAHAB_HOME/sahab.sqlite3" | xz -9 > "$out/sqlite.sql.xz"
tar -C "$SAHAB_HOME" -cJf "$out/keys.tar.xz" keys/ledger-ed25519.pem keys/bid-opening.key \
    keys/secrets.key keys/osb-password

# PostgreSQL: the same keys (init never replaces them), the demo, pg_dump
export SAHAB_HOME="$work/postgres"
mkdir -p "$SAHAB_HOME"
tar -C "$SAHAB_HOME" -xJf "$out/keys.tar.xz"
psql "$pg_url" -qc "CREATE DATABASE $database" >/dev/null
export DATABASE_URL="${pg_url%/*}/$database"
demo
describe postgresql
pg_dump --format=custom --compress=9 --no-owner --no-privileges --file="$out/postgresql.pgdump" \
    "$DATABASE_URL"
echo "wrote $out (from $commit)"
