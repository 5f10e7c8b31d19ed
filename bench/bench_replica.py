"""Public reads from a PostgreSQL streaming standby, and how far behind it falls.

Starts its own primary and streaming standby from the PostgreSQL binaries (as the tests
do), loads the procurement benchmark's data (20,000 published tenders, 200 bidders), and
runs two web servers on it side by side: one reading everything from the primary, one
sending public reads to the standby (DATABASE_REPLICA_URL). In the same run it prints:

- the public tender list's p95 through each server (ratio: what routing to the standby
  costs on one machine; on several machines the standby adds its own CPU instead);
- how long a change on the primary takes to be visible on the standby (p50, p95, max),
  idle and during a burst of bids, against the default bound SAHAB_REPLICA_MAX_LAG_SECONDS.

    python -m bench replica       # needs the PostgreSQL server binaries
    SAHAB_BENCH_TENDERS=20000 SAHAB_BENCH_BIDDERS=200
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from bench.common import (
    child_json,
    free_port,
    percentile,
    report,
    stop_server,
    timed_gets,
    web_server,
)


def _visibility_delays(primary, standby, stop: threading.Event) -> list[float]:
    """Milliseconds from a WAL position read on the primary to its replay on the standby."""
    import psycopg

    delays = []
    with psycopg.connect(primary.url("sahab"), autocommit=True) as p, \
            psycopg.connect(standby.url("sahab"), autocommit=True) as s:
        while not stop.is_set():
            start = time.perf_counter()
            position = p.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
            while not s.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                                (position,)).fetchone()[0]:
                time.sleep(0.001)
            delays.append((time.perf_counter() - start) * 1000)
            time.sleep(0.02)
    return delays


def _delays_during(primary, standby, work) -> list[float]:
    stop = threading.Event()
    result: list[float] = []
    thread = threading.Thread(target=lambda: result.extend(
        _visibility_delays(primary, standby, stop)))
    thread.start()
    try:
        work()
    finally:
        stop.set()
        thread.join()
    return result


def _print_delays(what: str, delays: list[float]) -> None:
    print(f"  standby visibility delay, {what:<26} p50 {percentile(delays, 50):7.1f} ms  "
          f"p95 {percentile(delays, 95):7.1f} ms  max {max(delays):7.1f} ms  "
          f"({len(delays)} samples; bound 5,000 ms)")


def main() -> None:
    from tests.databases import Cluster, postgres_bindir

    from bench.bench_procurement import _bid_storm, _seal_all

    bindir = postgres_bindir()
    if bindir is None:
        print("  skipped: the PostgreSQL server binaries are not installed")
        return
    tenders = int(os.environ.get("SAHAB_BENCH_TENDERS", "20000"))
    bidders = int(os.environ.get("SAHAB_BENCH_BIDDERS", "200"))
    root = Path(tempfile.mkdtemp(prefix="sahab-bench-replica-"))
    home = tempfile.mkdtemp(prefix="sahab-bench-")
    primary = Cluster(bindir, root, "primary").initdb().start()
    standby, servers = None, []
    try:
        primary.query("CREATE DATABASE sahab")
        standby = primary.standby().start()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SAHAB_"))}
        env |= {"DATABASE_URL": primary.url("sahab"), "SAHAB_HOME": home,
                "DJANGO_SETTINGS_MODULE": "sahab.settings"}
        code = ("import json; from bench.bench_procurement import prepare; "
                f"print(json.dumps(prepare({primary.url('sahab')!r}, {home!r}, {bidders}, "
                f"{tenders})))")
        setup = child_json(env, code)

        ports = free_port(), free_port()
        servers.append(web_server(env, ports[0]))
        servers.append(web_server(env | {"DATABASE_REPLICA_URL": standby.url("sahab")}, ports[1]))
        on_primary, on_standby = (f"http://127.0.0.1:{port}" for port in ports)
        paths = ["/api/procurement/tenders?limit=50",
                 "/api/procurement/tenders?limit=50&state=complete",
                 "/api/procurement/tenders?limit=50&offset=10000", "/tenders/"]
        for base in (on_primary, on_standby):  # warm both
            timed_gets(base, paths, 20)
        health = timed_gets(on_standby, ["/healthz"], 200)
        from_primary = timed_gets(on_primary, paths, 200)
        from_standby = timed_gets(on_standby, paths, 200)
        report(f"tender list p95 ({tenders:,} tenders), standby", percentile(from_standby, 95),
               "ms", "same, primary", percentile(from_primary, 95))
        report("tender list p95, standby", percentile(from_standby, 95), "ms", "healthz p95",
               percentile(health, 95))

        _print_delays("idle", _delays_during(primary, standby, lambda: time.sleep(3)))
        accepted = []
        # each bidder seals and signs its bid on its side first, as in bench_procurement
        sealed, _ = _seal_all(on_standby, setup["reference"], setup["tokens"])
        _print_delays(f"{bidders} bids at once", _delays_during(
            primary, standby, lambda: accepted.append(asyncio.run(
                _bid_storm(on_standby, setup["reference"], sealed))[1])))
        print(f"  {accepted[0]} of {bidders} bids accepted during the burst")
    finally:
        for proc in servers:
            stop_server(proc)
        for cluster in (standby, primary):
            if cluster is not None:
                cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
