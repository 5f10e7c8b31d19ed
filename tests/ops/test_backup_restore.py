"""Backups restore; a restore never rolls the public log back unseen."""

import json
import shutil
import subprocess
import sys

import pytest

from tests.ops.served import Served

APPEND = ("from sahab.ledger import services as s\n"
          "for i in range({n}):\n"
          "    s.append(type='test.note', subject=f'note:{{i}}', data={{'i': i}}, actor='system')\n"
          "s.checkpoint_if_grown()\n")
ORIGIN = {"SAHAB_LEDGER_ORIGIN": "sahab.test/ledger"}  # the same log wherever it is restored


def size_of(served: Served) -> int:
    out = served.sahab("manage", "shell", "-c",
                       "from sahab.ledger import services; print(services.tree_size())").stdout
    return int(out.strip().splitlines()[-1])


@pytest.fixture
def installed():
    made = []

    def make(**extra) -> Served:
        served = Served(**ORIGIN, **extra)
        made.append(served)
        return served

    yield make
    for served in made:
        served.remove()


def test_a_backup_restores_into_a_fresh_home_and_database(installed, tmp_path):
    source = installed()
    source.prepare(demo=False)
    source.sahab("manage", "shell", "-c", APPEND.format(n=5))
    (source.home / "mail" / "x.gov.tn" / "a" / "Maildir" / "new").mkdir(parents=True)
    (source.home / "mail" / "x.gov.tn" / "a" / "Maildir" / "new" / "1.eml").write_bytes(b"Hi")
    result = source.sahab("backup", "--out", str(tmp_path / "backup"))
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["ledger"]["size"] == size_of(source) >= 5
    assert {"files/keys/ledger-ed25519.pem", "files/secret_key",
            "files/mail/x.gov.tn/a/Maildir/new/1.eml"} <= {f["path"] for f in manifest["files"]}
    assert all(len(f["sha256"]) == 64 for f in manifest["files"])
    assert "backup written to" in result.stdout

    target = installed()
    restored = target.sahab("restore", str(tmp_path / "backup"))
    assert "the ledger's root matches the backup's manifest" in restored.stdout
    assert size_of(target) == manifest["ledger"]["size"]
    assert (target.home / "mail/x.gov.tn/a/Maildir/new/1.eml").read_bytes() == b"Hi"
    for key in ("ledger-ed25519.pem", "bid-opening.key", "secrets.key"):
        assert (target.home / "keys" / key).read_bytes() == \
            (source.home / "keys" / key).read_bytes()
    key = lambda s: s.sahab("ledger", "key").stdout  # noqa: E731
    assert key(target) == key(source)
    target.sahab("manage", "shell", "-c", APPEND.format(n=2))  # the log goes on
    assert size_of(target) == manifest["ledger"]["size"] + 2


def test_a_damaged_or_unfinished_backup_is_refused_and_nothing_is_written(installed, tmp_path):
    source = installed()
    source.prepare(demo=False)
    source.sahab("backup", "--out", str(tmp_path / "backup"))
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "backup", damaged)
    key = damaged / "files" / "keys" / "bid-opening.key"
    key.write_bytes(bytes(32))
    target = installed()
    refused = target.sahab("restore", str(damaged), check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "files/keys/bid-opening.key does not match its SHA-256" in refused.stderr
    assert not (target.home / "keys").exists()

    (tmp_path / "backup" / "manifest.json").unlink()  # a backup cut short has no manifest
    refused = target.sahab("restore", str(tmp_path / "backup"), check=False)
    assert refused.returncode == 2 and "no manifest.json" in refused.stderr
    assert not (target.home / "keys").exists()


def test_restoring_an_older_backup_over_a_longer_log_is_refused_unless_accepted(
        installed, tmp_path):
    platform = installed()
    platform.prepare(demo=False)
    platform.sahab("backup", "--out", str(tmp_path / "backup"))
    backed_up = json.loads((tmp_path / "backup/manifest.json").read_text())["ledger"]["size"]
    platform.sahab("manage", "shell", "-c", APPEND.format(n=4))
    longer = size_of(platform)

    # the operator restores yesterday's backup over today's database
    refused = platform.sahab("restore", str(tmp_path / "backup"), "--replace-database",
                             check=False)
    assert refused.returncode == 2
    assert f"the backup's log has {backed_up} entries" in refused.stderr
    assert f"the database being replaced saw {longer} entries (4 more)" in refused.stderr
    assert size_of(platform) == longer  # nothing changed

    # an auditor's state says the same on a fresh machine
    auditor = tmp_path / "auditor.json"
    auditor.write_text(json.dumps({"origin": "sahab.test/ledger", "size": longer}))
    fresh = installed()
    refused = fresh.sahab("restore", str(tmp_path / "backup"), "--auditor-state", str(auditor),
                          check=False)
    assert refused.returncode == 2 and f"saw {longer} entries" in refused.stderr
    assert not (fresh.home / "keys").exists()

    accepted = platform.sahab("restore", str(tmp_path / "backup"), "--replace-database",
                              "--accept-rollback")
    assert "ROLLBACK ACCEPTED" in accepted.stdout
    entry = platform.sahab("ledger", "entry", str(backed_up)).stdout
    recorded = json.loads(entry)
    # recorded by the signer's own operation where it saw the fork, else by the restore
    assert recorded["type"] in ("ledger.signer.restored", "ledger.log.restored")
    data = recorded["data"]
    assert data.get("restored_size", data.get("size")) == backed_up
    assert data.get("previous_size", data.get("seen_size")) == longer


def test_backup_refuses_a_folder_that_is_not_empty(installed, tmp_path):
    platform = installed()
    platform.prepare(demo=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "something").write_text("x")
    refused = subprocess.run([sys.executable, "-m", "sahab.cli", "backup", "--out",
                              str(tmp_path / "busy")], env=platform.env, capture_output=True,
                             text=True)
    assert refused.returncode == 2 and "is not empty" in refused.stderr
