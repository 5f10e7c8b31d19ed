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

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

KILLS = 12
VICTIMS = ("web", "worker", "smtp", "imap", "exchange-gateway", "witness")

ORDERS = """
import json
from sahab.cloud.models import Order
rows = []
for order in Order.objects.filter(number__in={numbers!r}).select_related("instance"):
    i = getattr(order, "instance", None)
    rows.append({{"number": order.number, "status": order.status,
                  "state": i.state if i else None, "operation": i.operation if i else None,
                  "retry": bool(i and (i.next_attempt_at or i.polling)),
                  "attempts": i.attempts if i else None,
                  "error": i.last_error[:200] if i else None}})
print(json.dumps(rows))
"""


def stuck(rows: list[dict]) -> list[dict]:
    """Orders whose instance waits for a broker call that nothing will make."""
    return [r for r in rows if r["status"] == "approved" and (
        r["state"] is None or (r["state"] not in ("active", "failed", "deleted")
                               and not (r["operation"] and r["retry"])))]


def inject_faults(served: Served, kills: list, seed: int) -> None:
    """SIGKILL ``KILLS`` children one after the other, every kind of child at least once,
    each when it is up again, 1 to 3 seconds apart."""
    rng = random.Random(seed)
    present = [v for v in VICTIMS if v in served.children()]
    plan = rng.sample(present, len(present))
    plan += [rng.choice(present) for _ in range(KILLS - len(plan))]
    for name in plan:
        time.sleep(rng.uniform(1.0, 3.0))
        pid = wait_for(lambda n=name: alive(p := served.children()[n]) and p, 30,
                       f"{name} to be back before the next kill")
        os.kill(pid, signal.SIGKILL)
        kills.append((name, pid, time.time()))


def test_killing_processes_under_mixed_load_loses_nothing_acknowledged(tmp_path):
    # strict message log; a call cut by a killed worker is taken again after its lease
    # (broker timeout + 30 s)
    served = Served("sahab-faults-", SAHAB_EXCHANGE_LOG_BATCH_SECONDS="0",
                    SAHAB_CLOUD_BROKER_TIMEOUT="10")
    try:
        served.prepare()
        served.start()
        load = workload.prepare(served)
        stop, kills = threading.Event(), []
        seed = int(os.environ.get("SAHAB_FAULT_SEED", random.randrange(1 << 30)))
        runner = threading.Thread(target=workload.run, kwargs=dict(
            w=load, threads=3, actions_per_thread=400, stop=stop, pause=0.1))
        runner.start()
        try:
            inject_faults(served, kills, seed)
            time.sleep(3)  # the workload goes on a moment after the last kill
        finally:
            stop.set()
            runner.join()
        assert len(kills) == KILLS

        # every process is back and the platform is ready
        wait_for(lambda: all(alive(pid) for pid in served.children().values()), 60,
                 "every child to be back")
        wait_for(served.is_ready, 90, "readiness after the faults")

        # every acknowledged bid, order, message and exchange is there exactly once
        found = workload.check(served, load.acks, tmp_path)
        assert workload.missing_or_doubled(found) == {}, f"seed {seed}, kills {kills}"
        assert {"bid", "mail", "exchange"} <= {a.kind for a in load.acks}, load.errors[:10]
        assert len(load.acks) >= 20, (len(load.acks), load.errors[:10])

        # no order is left without a retry; the worker brings them to an end
        numbers = [a.key for a in load.acks if a.kind == "order"]

        seen = {}

        def orders_settled():
            out = served.sahab("manage", "shell", "-c", ORDERS.format(numbers=numbers)).stdout
            rows = seen["rows"] = json.loads(out.strip().splitlines()[-1])
            assert stuck(rows) == [], f"stuck orders {stuck(rows)} (seed {seed})"
            return all(r["state"] in ("active", "failed") for r in rows
                       if r["status"] == "approved")

        try:
            # a call cut by a kill waits out its lease, then its back-off (several rounds)
            wait_for(orders_settled, 480, "the acknowledged orders to be provisioned", interval=2)
        except AssertionError:
            lines = [line for line in served.log().splitlines()
                     if any(word in line.lower() for word in ("broker", "cloud", "osb", "dbaas"))]
            raise AssertionError(f"orders not provisioned: {seen.get('rows')}\n"
                                 + "\n".join(lines[-60:])) from None

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
