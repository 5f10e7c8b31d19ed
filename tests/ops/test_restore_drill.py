"""The restore drill: a backup taken while the platform works restores on a fresh home
into a platform that serves, holds every acknowledged action, and continues the same log."""

import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.ops import workload
from tests.ops.served import Served, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ORIGIN = {"SAHAB_LEDGER_ORIGIN": "sahab.test/ledger"}  # the log keeps its name when moved


def audit(url: str, key: str, state, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sahab.cli", "ledger", "verify",
                           f"{url}/ledger", "--key", key, "--state", str(state), "--quiet"],
                          capture_output=True, text=True, timeout=300, env=env)


def checkpoint_size(url: str) -> int:
    return int(httpx.get(f"{url}/ledger/checkpoint", timeout=10).text.split("\n")[1])


def test_backup_under_load_restores_every_acknowledged_action_and_the_log_goes_on(tmp_path):
    source = Served("sahab-drill-a-", **ORIGIN)
    target = None
    try:
        source.prepare()
        source.start()
        load = workload.prepare(source)
        key = source.demo["ledger"]["key"]
        state = tmp_path / "auditor.json"
        before = audit(source.url, key, state, source.env)
        assert before.returncode == 0, before.stderr

        stop = threading.Event()
        runner = threading.Thread(target=workload.run, kwargs=dict(
            w=load, threads=3, actions_per_thread=60, stop=stop))
        runner.start()
        kinds = {"bid", "mail", "exchange"} | ({"order"} if load.plan else set())
        wait_for(lambda: all(sum(a.kind == k for a in load.acks) >= 2 for k in kinds), 180,
                 "two acknowledged actions of each kind",
                 detail=load.progress)
        backup_started = time.time()
        source.sahab("backup", "--out", str(tmp_path / "backup"))
        wait_for(lambda: len([a for a in load.acks if a.at > backup_started]) >= 5, 60,
                 "actions after the backup",
                 detail=load.progress)
        stop.set()
        runner.join()
        acknowledged = [a for a in load.acks if a.at < backup_started]
        assert kinds <= {a.kind for a in acknowledged}, load.errors
        source.stop()

        # the new machine keeps the old one's configuration: its demo witness answers where
        # the restored registry says it does
        target = Served("sahab-drill-b-", **ORIGIN,
                        SAHAB_WITNESS_PORT=source.env["SAHAB_WITNESS_PORT"])
        restored = target.sahab("restore", str(tmp_path / "backup"))
        assert "ROLLBACK" not in restored.stdout
        target.start()
        try:
            wait_for(target.is_ready, 90, "the restored platform ready")
        except AssertionError:
            raise AssertionError("the restored platform is not ready: "
                                 f"{target.last_readiness}\n{target.log_tail()}") from None

        found = workload.check(target, acknowledged, tmp_path)
        assert workload.missing_or_doubled(found) == {}
        assert sum(len(v) for v in found.values()) == len(acknowledged)

        # the auditor who verified before the backup finds the restored log consistent
        after = audit(target.url, key, state, target.env)
        assert after.returncode == 0, after.stderr
        # and new writes continue the same log
        token = target.demo["api_tokens"][0]["token"]
        size = checkpoint_size(target.url)
        made = httpx.post(f"{target.url}/api/tokens", json={"name": "after restore"},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert made.status_code == 201
        wait_for(lambda: checkpoint_size(target.url) > size, 30, "a checkpoint of the new entry")
        again = audit(target.url, key, state, target.env)
        assert again.returncode == 0, again.stderr
        assert "consistent with the" in again.stdout
    finally:
        source.remove()
        if target is not None:
            target.remove()
