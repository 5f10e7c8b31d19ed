"""An installation of the previous release, with its demo data, upgrades to this one.

The fixture (tests/ops/previous_release/, made by scripts/previous-release-fixture.sh)
holds that release's demo database as each engine's own dump, the migrations it was at
and its keys. The test loads the dump of the run's engine into a new database, runs
``sahab upgrade``, and checks that no row was lost and that the ledger goes on.
"""

import json
import lzma
import sqlite3
import subprocess
import tarfile
from base64 import b64decode
from pathlib import Path

from sahab.ledger import merkle
from sahab.ops.backup import postgres_tool
from tests.ops.served import Served

FIXTURE = Path(__file__).parent / "previous_release"
RELEASE = json.loads((FIXTURE / "release.json").read_text())

ROWS = """
import json
from django.db import connection
with connection.cursor() as cursor:
    counts = {}
    for table in sorted(connection.introspection.table_names()):
        cursor.execute(f'SELECT COUNT(*) FROM "{table}"')
        counts[table] = cursor.fetchone()[0]
print(json.dumps(counts))
"""

MIGRATIONS = """
import json
from django.db.migrations.recorder import MigrationRecorder
applied = {}
for app, name in MigrationRecorder.Migration.objects.values_list("app", "name"):
    applied[app] = max(applied.get(app, ""), name)
print(json.dumps(applied))
"""

LEDGER = """
import base64, json
from sahab.ledger import merkle, note, services
from sahab.ledger.models import Checkpoint, Entry
size = services.tree_size()
# every leaf again from the stored entry bytes, not from the stored tree
tree = merkle.CompactRange()
for body in Entry.objects.order_by("index").values_list("body", flat=True):
    tree.append(merkle.leaf_hash(bytes(body)))
latest = Checkpoint.objects.order_by("-size").first()
note.open_checkpoint(services.signed_checkpoint(latest).encode(), note.parse_vkey({key!r}))
print(json.dumps({{
    "size": size, "recomputed": base64.b64encode(tree.root()).decode(),
    "root_at_old": base64.b64encode(services.root_at({old})).decode(),
    "signed_size": latest.size,
    "consistency": [base64.b64encode(h).decode()
                    for h in services.consistency_proof({old}, size)],
    "root": base64.b64encode(services.root_at(size)).decode()}}))
"""


def last_json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def load_previous_release(platform: Served) -> None:
    """The previous release's database, as that engine's tools restore it."""
    if platform.database_url.startswith("sqlite"):
        sql = lzma.decompress((FIXTURE / "sqlite.sql.xz").read_bytes()).decode()
        with sqlite3.connect(platform.home / "sahab.sqlite3") as db:
            db.executescript(sql)
        return
    done = subprocess.run([postgres_tool("pg_restore"), "--no-owner", "--no-privileges",
                           "--exit-on-error", f"--dbname={platform.database_url}",
                           str(FIXTURE / "postgresql.pgdump")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_previous_release_demo_database_upgrades_with_nothing_lost():
    platform = Served("sahab-upgrade-")
    engine = "sqlite" if platform.database_url.startswith("sqlite") else "postgresql"
    ledger_before = RELEASE[engine]
    platform.env["SAHAB_LEDGER_ORIGIN"] = ledger_before["key"].split("+", 1)[0]
    try:
        with tarfile.open(FIXTURE / "keys.tar.xz") as keys:
            keys.extractall(platform.home, filter="data")
        load_previous_release(platform)
        assert last_json(platform.sahab("manage", "shell", "-c", MIGRATIONS)) == \
            RELEASE["migrations"]
        rows_before = last_json(platform.sahab("manage", "shell", "-c", ROWS))
        assert rows_before["ledger_entry"] == ledger_before["size"]

        check = platform.sahab("upgrade", "--check")
        assert "pre-flight passed" in check.stdout
        upgraded = platform.sahab("upgrade")
        assert "sahab is upgraded" in upgraded.stdout
        assert platform.sahab("manage", "migrate", "--check", check=False).returncode == 0

        rows_after = last_json(platform.sahab("manage", "shell", "-c", ROWS))
        # new models bring new content types; no table may have lost a row
        lost = {t: (n, rows_after.get(t, 0)) for t, n in rows_before.items()
                if rows_after.get(t, 0) < n}
        assert lost == {}
        assert rows_after["ledger_entry"] == rows_before["ledger_entry"]

        old = ledger_before["size"]
        platform.sahab("manage", "shell", "-c",
                       "from sahab.ledger import services as s\n"
                       "s.append(type='test.upgraded', subject='release:next', data={}, "
                       "actor='system')\ns.checkpoint_if_grown()")
        ledger = last_json(platform.sahab("manage", "shell", "-c", LEDGER.format(
            old=old, key=ledger_before["key"])))
        assert ledger["root_at_old"] == ledger_before["root"]
        assert ledger["recomputed"] == ledger["root"]
        assert ledger["size"] == ledger["signed_size"] == old + 1
        merkle.verify_consistency(old, ledger["size"],
                                  [b64decode(h) for h in ledger["consistency"]],
                                  b64decode(ledger_before["root"]), b64decode(ledger["root"]))
    finally:
        platform.remove()


# More agents' roles than the "big table" threshold below, without a whole demo's seconds.
AGENTS = """
from sahab.directory.models import Role
from tests import factories
ministry = factories.administration(code="MLK")
for _ in range(8):
    factories.agent(administration=ministry, roles=[Role.PROCUREMENT_OFFICER])
"""


def test_upgrade_refuses_a_migration_that_locks_a_big_table_unless_allowed(tmp_path):
    platform = Served("sahab-upgrade-lock-")
    try:
        platform.prepare(demo=False)
        platform.sahab("manage", "shell", "-c", AGENTS)
        # the directory's last migration alters a column of the agents' roles
        platform.sahab("manage", "migrate", "directory", "0001")
        refused = platform.sahab("upgrade", "--big-table-rows", "5", check=False)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
        assert "directory.0002_alter_agentrole_role" in refused.stderr
        assert "directory_agentrole" in refused.stderr and "--allow-long-locks" in refused.stderr
        still = platform.sahab("manage", "showmigrations", "directory").stdout
        assert "[ ] 0002_alter_agentrole_role" in still

        allowed = platform.sahab("upgrade", "--big-table-rows", "5", "--allow-long-locks")
        assert "accepted: directory.0002_alter_agentrole_role" in allowed.stdout
        done = platform.sahab("manage", "showmigrations", "directory").stdout
        assert "[X] 0002_alter_agentrole_role" in done
    finally:
        platform.remove()


def test_upgrade_refuses_a_ledger_key_that_did_not_sign_the_log(tmp_path):
    platform = Served("sahab-upgrade-key-")
    try:
        platform.prepare(demo=False)
        platform.sahab("manage", "shell", "-c",
                       "from sahab.ledger import services as s; s.latest_checkpoint()")
        key = platform.home / "keys" / "ledger-ed25519.pem"
        key.unlink()  # an operator "repairs" a lost key by making a new one
        platform.sahab("manage", "shell", "-c",
                       "from sahab.core import keys; keys.ensure_ledger_key()")
        result = platform.sahab("upgrade", check=False)
        assert result.returncode == 2
        assert "did not sign the log's latest checkpoint" in result.stderr
    finally:
        platform.remove()
