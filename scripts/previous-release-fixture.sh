#!/usr/bin/env bash
# Make the migration test's fixture (tests/ops/previous_release/) from a release commit:
#   scripts/previous-release-fixture.sh COMMIT
# It checks COMMIT out in a temporary git worktree, runs that release's `sahab demo` on
# SQLite with this checkout's virtualenv, and keeps its data (Django's JSON, xz), the
# migrations it was at, its keys and the ledger's key, size and root. See docs/operations.md.
set -euo pipefail
commit=${1:?usage: $0 COMMIT}
repo=$(cd "$(dirname "$0")/.." && pwd)
python="$repo/.venv/bin/python"
out="$repo/tests/ops/previous_release"
work=$(mktemp -d /tmp/sahab-previous-XXXXXX)
trap 'git -C "$repo" worktree remove --force "$work/src-tree" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

git -C "$repo" worktree add --detach "$work/src-tree" "$commit" >/dev/null
export SAHAB_HOME="$work/home" PYTHONPATH="$work/src-tree/src" DJANGO_SETTINGS_MODULE=sahab.settings
export SAHAB_PROCUREMENT_MIN_DAYS=0 SAHAB_DBAAS_URL= SAHAB_LOG_FORMAT=plain
unset DATABASE_URL
mkdir -p "$SAHAB_HOME" "$out"
"$python" -c "import sys; from sahab.cli import main; sys.exit(main(['demo']))" >/dev/null
"$python" -m django dumpdata --natural-foreign --natural-primary -e contenttypes \
    -e auth.permission -e sessions -e admin.logentry -e axes -o "$work/data.json"
xz -9 -c "$work/data.json" > "$out/data.json.xz"
# the demo's own keys (throwaway): an upgrade keeps an installation's keys
tar -C "$SAHAB_HOME" -cJf "$out/keys.tar.xz" keys/ledger-ed25519.pem keys/bid-opening.key \
    keys/secrets.key keys/osb-password
"$python" - "$out" "$commit" <<'PY'
import json, sqlite3, sys
from pathlib import Path
import django
django.setup()
from django.conf import settings
from sahab.ledger import services
out, commit = Path(sys.argv[1]), sys.argv[2]
db = sqlite3.connect(settings.DATABASES["default"]["NAME"])
applied = sorted(db.execute("SELECT app, name FROM django_migrations").fetchall())
leaves = {}
for app, name in applied:
    leaves[app] = max(leaves.get(app, ""), name)
size = services.tree_size()
(out / "release.json").write_text(json.dumps({
    "commit": commit, "migrations": leaves, "ledger": {
        "key": services.verifier_key(), "size": size,
        "root": __import__("base64").b64encode(services.root_at(size)).decode()}},
    indent=1, sort_keys=True) + "\n")
PY
echo "wrote $out (from $commit)"
