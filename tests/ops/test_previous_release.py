"""An installation of the previous release, with its demo data, upgrades to this one.

The fixture (tests/ops/previous_release/, made by scripts/previous-release-fixture.sh)
holds that release's demo data, the migrations it was at and its keys. The test builds
the previous release's database on the engine of the run, loads the data, runs
``sahab upgrade``, and checks that nothing was lost and the ledger goes on.
"""

import json
import tarfile
from pathlib import Path

from tests.ops.served import Served

FIXTURE = Path(__file__).parent / "previous_release"
RELEASE = json.loads((FIXTURE / "release.json").read_text())

AT_PREVIOUS_RELEASE = """
import json
from django.core.management import call_command
from django.db.migrations.recorder import MigrationRecorder
targets = json.loads({targets!r})
for app, name in targets.items():
    call_command("migrate", app, name, verbosity=0)
applied = {{}}
for app, name in MigrationRecorder.Migration.objects.values_list("app", "name"):
    applied[app] = max(applied.get(app, ""), name)
call_command("loaddata", {fixture!r}, verbosity=0)
print(json.dumps(applied))
"""

COUNTS = """
import json
from django.apps import apps
from django.core import serializers
import lzma
rows = json.loads(lzma.open({fixture!r}).read())
wanted = {{}}
for row in rows:
    wanted[row["model"]] = wanted.get(row["model"], 0) + 1
print(json.dumps({{label: apps.get_model(label).objects.count() for label in wanted}} | {{
    "__fixture__": wanted}}))
"""

LEDGER = """
import base64, json
from sahab.ledger import merkle, note, services
from sahab.ledger.models import Checkpoint, Entry
size = services.tree_size()
# every leaf again from the stored entry bytes, not from the stored tree
leaves = [merkle.leaf_hash(bytes(b)) for b in
          Entry.objects.order_by("index").values_list("body", flat=True)]
r = merkle.CompactRange()
for leaf in leaves:
    r.append(leaf)
old = {old}
latest = Checkpoint.objects.order_by("-size").first()
note.open_checkpoint(services.signed_checkpoint(latest).encode(),
                     note.parse_vkey({key!r}))
print(json.dumps({{
    "size": size, "recomputed": base64.b64encode(r.root()).decode(),
    "root_at_old": base64.b64encode(services.root_at(old)).decode(),
    "signed_size": latest.size,
    "consistency": [base64.b64encode(h).decode() for h in services.consistency_proof(old, size)],
    "root": base64.b64encode(services.root_at(size)).decode()}}))
"""


def test_the_previous_release_demo_database_upgrades_with_nothing_lost(tmp_path):
    key = RELEASE["ledger"]["key"]
    platform = Served("sahab-upgrade-", SAHAB_LEDGER_ORIGIN=key.split("+", 1)[0])
    try:
        platform.home.mkdir(parents=True, exist_ok=True)
        with tarfile.open(FIXTURE / "keys.tar.xz") as keys:
            keys.extractall(platform.home, filter="data")
        fixture = str(FIXTURE / "data.json.xz")
        out = platform.sahab("manage", "shell", "-c", AT_PREVIOUS_RELEASE.format(
            targets=json.dumps(RELEASE["migrations"]), fixture=fixture)).stdout
        applied = json.loads(out.strip().splitlines()[-1])
        assert {app: applied.get(app) for app in RELEASE["migrations"]} == RELEASE["migrations"]

        check = platform.sahab("upgrade", "--check")
        assert "pre-flight passed" in check.stdout
        upgraded = platform.sahab("upgrade")
        assert "sahab is upgraded" in upgraded.stdout
        assert platform.sahab("manage", "migrate", "--check", check=False).returncode == 0

        counts = json.loads(platform.sahab("manage", "shell", "-c", COUNTS.format(
            fixture=fixture)).stdout.strip().splitlines()[-1])
        wanted = counts.pop("__fixture__")
        assert counts == wanted

        old = RELEASE["ledger"]["size"]
        platform.sahab("manage", "shell", "-c",
                       "from sahab.ledger import services as s\n"
                       "s.append(type='test.upgraded', subject='release:next', data={}, "
                       "actor='system')\ns.checkpoint_if_grown()")
        ledger = json.loads(platform.sahab("manage", "shell", "-c", LEDGER.format(
            old=old, key=key)).stdout.strip().splitlines()[-1])
        assert ledger["root_at_old"] == RELEASE["ledger"]["root"]
        assert ledger["recomputed"] == ledger["root"]
        assert ledger["size"] == ledger["signed_size"] == old + 1
        from base64 import b64decode

        from sahab.ledger import merkle

        merkle.verify_consistency(old, ledger["size"],
                                  [b64decode(h) for h in ledger["consistency"]],
                                  b64decode(RELEASE["ledger"]["root"]), b64decode(ledger["root"]))
    finally:
        platform.remove()


def test_upgrade_refuses_a_migration_that_locks_a_big_table_unless_allowed(tmp_path):
    platform = Served("sahab-upgrade-lock-")
    try:
        platform.prepare(demo=True)
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
