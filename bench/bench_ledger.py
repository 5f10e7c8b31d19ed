"""Ledger: durable appends, checkpoint delay, proof latency and the auditor's speed.

Anchors measured in the same run: raw hashlib SHA-256 of 64-byte inputs (the hashing
that a log cannot avoid), pymerkle (a pure-Python Merkle tree library, in memory, for
appends and for proofs on up to 100,000 leaves), and for the proofs a SELECT 1 round
trip on the same connection after each proof (what the database and the shared machine
cost any query at that moment).

    python -m bench ledger            # SQLite and PostgreSQL (when 127.0.0.1:5432 answers)
    SAHAB_BENCH_LEDGER_SIZE=1000000   # tree size for proofs and the auditor (default 100000)
    SAHAB_BENCH_LEDGER_COPY=1         # PostgreSQL: grow past the timed appends with COPY
    SAHAB_BENCH_LEDGER_DATABASES=postgres   # which databases to run (default both)

The timed appends always go through ``append_many``; only the untimed growth to the
proof size changes with ``SAHAB_BENCH_LEDGER_COPY``: the same entries and Merkle nodes
streamed by COPY (as ``bench_national`` loads its data set), then VACUUM ANALYZE, which
takes 10 million entries in minutes instead of the better part of an hour.

Reference figures: Tessera reports ~10,000 writes/s on 7 cores with NVMe and ~2,900/s
with fsync on ordinary disks. Goals on 2 cores: >= 5,000 durable appends/s batched on
PostgreSQL, a signed checkpoint within 1 s of an append, proofs p99 under 5 ms. The
sequencer (pending entries of bids and orders integrated in batches) is measured against
the batched appends: it does the same work plus reading and marking the pending rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid


def _hashlib_rate(seconds: float = 0.5) -> float:
    data, n, start = b"x" * 64, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10_000):
            hashlib.sha256(data).digest()
        n += 10_000
    return n / (time.perf_counter() - start)


def _pymerkle_rates(size: int) -> dict:
    from pymerkle import InmemoryTree

    tree = InmemoryTree(algorithm="sha256")
    n = min(size, 100_000)
    start = time.perf_counter()
    for i in range(n):
        tree.append_entry(i.to_bytes(8, "big"))
    append_rate = n / (time.perf_counter() - start)
    samples = []
    for _ in range(300):
        index = random.randint(1, n)
        t = time.perf_counter()
        tree.prove_inclusion(index, n)
        samples.append(time.perf_counter() - t)
    samples.sort()
    return {"append_per_s": append_rate, "proof_p50_ms": 1000 * samples[150],
            "proof_p99_ms": 1000 * samples[296], "proof_size": n}


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return 1000 * samples[len(samples) // 2], 1000 * samples[int(len(samples) * 0.99) - 1]


def _copy_growth(start: int, size: int, record, chunk: int = 50_000) -> float:
    """Grow the log from ``start`` to ``size`` entries by COPY on PostgreSQL: the entries
    ``record(i)`` would append, their leaf and inner nodes from the stored right edge, and
    the log state; then VACUUM ANALYZE the two tables, as autovacuum would in time.
    Returns the seconds it took. Bodies are written by a template that is checked
    against ``encode_entry`` (RFC 8785 costs more than the rest of the load)."""
    from django.db import connection
    from django.utils import timezone

    from bench.common import copy_ledger_rows
    from sahab.ledger import merkle
    from sahab.ledger.models import Entry, LogState, Node, node_key
    from sahab.ledger.services import encode_entry, entry_mac

    began = time.perf_counter()
    state = LogState.objects.get(pk=1)
    if state.size != start:
        raise RuntimeError(f"the log holds {state.size} entries, not {start}")
    tree = merkle.CompactRange.from_bytes(state.size, bytes(state.frontier))
    at = timezone.now()
    stamp = at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]

    def body(i: int, r) -> bytes:
        return (f'{{"actor":"{r.actor}","at":"{stamp}Z","data":{{"digest":"{r.data["digest"]}",'
                f'"i":{i}}},"subject":"{r.subject}","type":"{r.type}"}}').encode()

    connection.ensure_connection()
    pg = connection.connection
    entries, nodes = [], []

    def flush() -> None:
        copy_ledger_rows(entries, nodes)

    with pg.transaction():
        for i in range(start, size):
            r = record(i)
            data = body(i, r)
            if (i == start or i % 100_000 == 0) and data != encode_entry(r, at):
                raise RuntimeError("the COPY template differs from encode_entry")
            nodes.extend((node_key(level, n), h)
                         for level, n, h in tree.append(merkle.leaf_hash(data)))
            entries.append((i, data, r.type, r.subject, r.actor, at, entry_mac(data, i)))
            if len(entries) == chunk:
                flush()
        flush()
        with pg.cursor() as cur:
            cur.execute(f'UPDATE "{LogState._meta.db_table}" SET size = %s, frontier = %s '  # noqa: S608
                        "WHERE id = 1", (tree.size, tree.to_bytes()))
    with pg.cursor() as cur:
        for table in (Entry._meta.db_table, Node._meta.db_table):
            cur.execute(f'VACUUM ANALYZE "{table}"')
    return time.perf_counter() - began


def inner(database_url: str | None, size: int) -> dict:
    """Run in a fresh process configured for one database; returns the figures."""
    from bench.common import setup_django

    setup_django(database_url)
    import httpx
    from django.core import signals
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import close_old_connections, transaction

    from sahab.core import keys, scheduler
    from sahab.ledger import services
    from sahab.ledger.auditor import Auditor
    from sahab.ledger.services import Record

    keys.ensure_ledger_key()
    results: dict = {}

    def record(i: int) -> Record:
        return Record("bench.event", f"bench:{i % 1000}", {"i": i, "digest": "0" * 64}, "system")

    n = 300
    start = time.perf_counter()
    for i in range(n):
        services.append(type="bench.event", subject=f"bench:{i}", data={"i": i}, actor="system")
    results["single_per_s"] = n / (time.perf_counter() - start)

    done, batch = services.tree_size(), 1000
    start = time.perf_counter()
    target = max(20_000, min(size, 50_000))
    while done < target:
        with transaction.atomic():
            services.append_many([record(done + j) for j in range(batch)])
        done += batch
    results["batched_per_s"] = (target - n) / (time.perf_counter() - start)
    results["sequenced_per_s"] = _sequencer_rate(services)
    done = services.tree_size()
    if database_url and os.environ.get("SAHAB_BENCH_LEDGER_COPY") == "1" and done < size:
        results["copy_growth_s"] = _copy_growth(done, size, record)
        done = size
    while done < size:  # grow to the proof size without timing it
        with transaction.atomic():
            services.append_many([record(done + j) for j in range(5000)])
        done += 5000
    results["size"] = services.tree_size()

    # The signer checks what it signs against its own record: the first signing hashes
    # every entry once; later ones only the new entries (plus one consistency proof).
    start = time.perf_counter()
    services.checkpoint_if_grown()
    results["first_signing_s"] = time.perf_counter() - start
    with transaction.atomic():
        services.append_many([record(done + j) for j in range(1000)])
    done += 1000
    start = time.perf_counter()
    services.checkpoint_if_grown()
    results["sign_1000_ms"] = 1000 * (time.perf_counter() - start)
    thread = scheduler.SchedulerThread()
    thread.start()
    delays = []
    for i in range(10):
        services.append(type="bench.delay", subject="delay", data={"i": i}, actor="system")
        appended_at, target_size = time.perf_counter(), services.tree_size()
        while services.latest_checkpoint().size < target_size:
            time.sleep(0.01)
        delays.append(time.perf_counter() - appended_at)
        time.sleep(random.random() * 0.3)
    thread.stopped.set()
    results["checkpoint_delay_max_s"] = max(delays)
    results["checkpoint_delay_mean_s"] = sum(delays) / len(delays)

    size = services.latest_checkpoint().size
    # Anchor interleaved with the proofs: one SELECT 1 round trip on the same connection
    # after each proof, so that a tail caused by the shared machine shows on both sides.
    from django.db import connection

    def round_trip() -> float:
        t = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return time.perf_counter() - t

    samples, trips = [], []
    for _ in range(1000):
        index = random.randrange(size)
        t = time.perf_counter()
        services.inclusion_proof(index, size)
        samples.append(time.perf_counter() - t)
        trips.append(round_trip())
    results["proof_p50_ms"], results["proof_p99_ms"] = _percentiles(samples)
    samples = []
    for _ in range(300):
        old = random.randrange(1, size)
        t = time.perf_counter()
        services.consistency_proof(old, size)
        samples.append(time.perf_counter() - t)
        trips.append(round_trip())
    results["select1_p50_ms"], results["select1_p99_ms"] = _percentiles(trips)
    results["consistency_p50_ms"], results["consistency_p99_ms"] = _percentiles(samples)

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    client = httpx.Client(transport=httpx.WSGITransport(app=WSGIHandler()),
                          base_url="http://127.0.0.1")
    auditor = Auditor("http://127.0.0.1/ledger", services.verifier_key(), client=client,
                      state_path=__import__("pathlib").Path(os.environ["SAHAB_HOME"]) / "a.json")
    start = time.perf_counter()
    verified = auditor.run().size
    results["audit_per_s"] = verified / (time.perf_counter() - start)
    return results


def _sequencer_rate(services, pending: int = 20_000) -> float:
    """Entries per second the sequencer integrates: ``pending`` bids' entries written
    pending (``enqueue``, untimed, committed a thousand at a time), then one
    ``integrate()``, which takes them in its batches of 5,000 as the worker does after a
    burst of bidders."""
    from django.db import transaction

    from sahab.procurement.events import ProcurementEvent

    for first in range(0, pending, 1000):
        with transaction.atomic():
            for i in range(first, first + 1000):
                services.enqueue(ProcurementEvent.BID_SUBMITTED, "sealed-bids:bench",
                                 "system", {"commitment": f"{i:064x}", "replaces": []})
    start = time.perf_counter()
    integrated = len(services.integrate())
    took = time.perf_counter() - start
    assert integrated == pending, integrated
    return pending / took


def _postgres_url() -> tuple[str, callable] | None:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return None
    import psycopg

    name = f"sahab_bench_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"postgresql://postgres@127.0.0.1:5432/{name}", drop


def _run(database_url: str | None, size: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.bench_ledger", "--inner",
                          database_url or "sqlite", str(size)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    from bench.common import report

    size = int(os.environ.get("SAHAB_BENCH_LEDGER_SIZE", "100000"))
    sha = _hashlib_rate()
    pm = _pymerkle_rates(size)
    print(f"  anchors: hashlib SHA-256 {sha:,.0f} hashes/s; pymerkle append "
          f"{pm['append_per_s']:,.0f}/s, proof p50 {pm['proof_p50_ms']:.3f} ms "
          f"p99 {pm['proof_p99_ms']:.3f} ms at {pm['proof_size']:,} leaves (in memory)")
    wanted = os.environ.get("SAHAB_BENCH_LEDGER_DATABASES", "sqlite,postgres").split(",")
    runs = [("sqlite", None)] if "sqlite" in wanted else []
    pg = _postgres_url() if "postgres" in wanted else None
    if pg:
        runs.append(("postgres", pg[0]))
    try:
        for name, url in runs:
            r = _run(url, size)
            grown = (f", grown past the timed appends by COPY in {r['copy_growth_s']:.0f} s"
                     if "copy_growth_s" in r else "")
            print(f"  [{name}] tree of {r['size']:,} entries{grown}")
            report(f"{name}: single durable appends", r["single_per_s"], "/s",
                   "hashlib", sha)
            report(f"{name}: batched appends (1000 per commit)", r["batched_per_s"], "/s",
                   "hashlib", sha)
            report(f"{name}: pending entries integrated by the sequencer",
                   r["sequenced_per_s"], "/s", "batched appends", r["batched_per_s"],
                   subject_did="20,000 bids' entries written pending, then integrated in "
                               "batches of 5,000",
                   anchor_did="append_many, 1,000 entries per commit")
            report(f"{name}: batched appends vs pymerkle (memory)", r["batched_per_s"],
                   "/s", "pymerkle", pm["append_per_s"])
            report(f"{name}: inclusion proof p50", r["proof_p50_ms"], "ms",
                   "pymerkle p50", pm["proof_p50_ms"])
            report(f"{name}: inclusion proof p99", r["proof_p99_ms"], "ms",
                   "pymerkle p99", pm["proof_p99_ms"])
            report(f"{name}: consistency proof p99", r["consistency_p99_ms"], "ms",
                   "goal", 5.0)
            report(f"{name}: inclusion proof p99", r["proof_p99_ms"], "ms",
                   "SELECT 1 p99", r["select1_p99_ms"],
                   subject_did="1,000 inclusion proofs at random indexes of the whole tree",
                   anchor_did="a SELECT 1 round trip on the same connection after each "
                              "proof (1,300 in all)")
            report(f"{name}: checkpoint delay (max of 10)", r["checkpoint_delay_max_s"], "s",
                   "goal", 1.0)
            report(f"{name}: checked signing of 1,000 new entries", r["sign_1000_ms"], "ms",
                   "goal", 500.0)
            report(f"{name}: first checked signing of the whole log", r["first_signing_s"],
                   "s", "auditor", r["size"] / r["audit_per_s"])
            report(f"{name}: auditor verification", r["audit_per_s"], "entries/s",
                   "hashlib", sha)
    finally:
        if pg:
            pg[1]()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--inner":
        url = None if sys.argv[2] == "sqlite" else sys.argv[2]
        print(json.dumps(inner(url, int(sys.argv[3]))))
    else:
        main()
