"""The whole platform under faults: a mixed workload runs while processes of ``sahab serve``
are killed at random; nothing acknowledged is lost or doubled, the ledger verifies, and
no order is left without a retry."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.ops import workload
from tests.ops.served import Served, alive, wait_for

pytestmark = pytest.mark.slow

KILLS = 12
VICTIMS = ("web", "worker", "smtp", "imap", "exchange-tls")

ORDERS = """
import json
from sahab.cloud.models import Order
rows = []
for order in Order.objects.filter(number__in={numbers!r}).select_related("instance"):
    i = getattr(order, "instance", None)
    rows.append({{"number": order.number, "status": order.status,
                  "state": i.state if i else None, "operation": i.operation if i else None,
                  "retry": bool(i and (i.next_attempt_at or i.polling))}})
print(json.dumps(rows))
"""


def stuck(rows: list[dict]) -> list[dict]:
    """Orders whose instance waits for a broker call that nothing will make."""
    return [r for r in rows if r["status"] == "approved" and (
        r["state"] is None or (r["state"] not in ("active", "failed", "deleted")
                               and not (r["operation"] and r["retry"])))]


def inject_faults(served: Served, kills: list, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(KILLS):
        if stop.wait(rng.uniform(1.0, 3.0)):
            return
        children = served.children()
        name = rng.choice([v for v in VICTIMS if v in children])
        pid = children[name]
        if not alive(pid):  # still coming back from the previous kill
            continue
        os.kill(pid, signal.SIGKILL)
        kills.append((name, pid, time.time()))


def test_killing_processes_under_mixed_load_loses_nothing_acknowledged(tmp_path):
    served = Served("sahab-faults-", SAHAB_EXCHANGE_LOG_BATCH_SECONDS="0")
    try:
        served.prepare()
        served.start()
        load = workload.prepare(served)
        stop, kills = threading.Event(), []
        seed = int(os.environ.get("SAHAB_FAULT_SEED", random.randrange(1 << 30)))
        injector = threading.Thread(target=inject_faults, args=(served, kills, stop, seed))
        injector.start()
        workload.run(load, threads=3, actions_per_thread=50, stop=threading.Event(),
                     pause=0.1)
        stop.set()
        injector.join()
        assert len(kills) >= KILLS // 2, f"only {len(kills)} kills (seed {seed})"
        assert {name for name, _, _ in kills} >= {"web", "worker"} or len(kills) >= KILLS - 2

        # every process is back and the platform is ready
        wait_for(lambda: all(alive(pid) for pid in served.children().values()), 60,
                 "every child to be back")
        wait_for(lambda: served.ready().status_code == 200, 90, "readiness after the faults")

        # every acknowledged bid, order, message and exchange is there exactly once
        found = workload.check(served, load.acks, tmp_path)
        assert workload.missing_or_doubled(found) == {}, f"seed {seed}, kills {kills}"
        assert len(load.acks) >= 40, (len(load.acks), load.errors[:10])

        # no order is left without a retry; the worker brings them to an end
        numbers = [a.key for a in load.acks if a.kind == "order"]

        def orders_settled():
            out = served.sahab("manage", "shell", "-c", ORDERS.format(numbers=numbers)).stdout
            rows = json.loads(out.strip().splitlines()[-1])
            assert stuck(rows) == [], f"stuck orders {stuck(rows)} (seed {seed})"
            return all(r["state"] in ("active", "failed") for r in rows
                       if r["status"] == "approved")

        wait_for(orders_settled, 120, "the acknowledged orders to be provisioned", interval=2)

        # the ledger verifies from scratch
        verify = subprocess.run(
            [sys.executable, "-m", "sahab.cli", "ledger", "verify", f"{served.url}/ledger",
             "--key", served.demo["ledger"]["key"], "--state", str(tmp_path / "audit.json"),
             "--quiet"], capture_output=True, text=True, timeout=300, env=served.env)
        assert verify.returncode == 0, verify.stderr
        kinds = {k: sum(a.kind == k for a in load.acks) for k in sorted(found)}
        print(f"\nfault test (seed {seed}): {len(kills)} kills "
              f"{sorted(n for n, _, _ in kills)}; acknowledged {kinds}; "
              f"{len(load.errors)} refused or cut by the faults")
        log = served.log()
        for name, pid, _ in kills:
            assert f"{name} (pid {pid}) killed by SIGKILL" in log
    finally:
        served.remove()
