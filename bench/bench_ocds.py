"""OCDS export: releases per second and peak memory while exporting many processes.

The processes are made by copying the whole release history of the demo's longest
process (each copy with its own ocid and release ids), because building 100,000 tenders
through the services would take long; the export then runs exactly as `sahab ocds export`
does, and each record compiled merges that many releases. Anchor in the same run: json.dumps
of the same releases held in memory (what a naive exporter does). Goal: constant memory
(the peak must not grow with the number of processes), over 2,000 releases/s.

    SAHAB_BENCH_OCDS_PROCESSES=100000 python -m bench ocds
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import os
import time
import tracemalloc
from collections import Counter


def main() -> None:
    from bench.common import report, setup_django

    setup_django()
    from sahab.core import keys
    from sahab.core.demo import load_demo

    keys.ensure_ledger_key()
    keys.ensure_opening_key()
    load_demo()
    from sahab.procurement import ocds
    from sahab.procurement.models import Release, Tender

    longest, _ = Counter(Release.objects.exclude(tender=None)
                         .values_list("tender_id", flat=True)).most_common(1)[0]
    tender = Tender.objects.get(pk=longest)
    history = list(Release.objects.filter(tender=tender).order_by("ledger_index"))
    per = len(history)
    base_index = 10**9
    for size in (int(os.environ.get("SAHAB_BENCH_OCDS_PROCESSES", "100000")) // 10,
                 int(os.environ.get("SAHAB_BENCH_OCDS_PROCESSES", "100000"))):
        # about ``size`` releases in all, in processes of ``per`` releases each
        existing = Release.objects.filter(ledger_index__gte=base_index).count() // per
        rows = []
        for n in range(existing, max(1, size // per)):
            ocid = f"{tender.ocid or history[0].ocid}-B{n}"
            for j, template in enumerate(history):
                data = copy.deepcopy(template.data)
                data["ocid"], data["id"] = ocid, f"{ocid}-{j + 1}"
                rows.append(Release(ocid=ocid, release_id=data["id"], tender=tender,
                                    date=template.date, tags=template.tags, data=data,
                                    ledger_index=base_index + n * per + j))
            if len(rows) >= 5000:
                Release.objects.bulk_create(rows)
                rows = []
        Release.objects.bulk_create(rows)
        total = Release.objects.count()

        def streamed():
            sink = gzip.GzipFile(fileobj=io.BytesIO(), mode="wb")
            for chunk in ocds.stream_package("releases", ocds.iter_releases(), "http://x/"):
                sink.write(chunk)

        def naive():
            everything = list(Release.objects.values_list("data", flat=True))
            gzip.compress(json.dumps({"releases": everything}).encode())

        # speed without tracemalloc (it slows Python down), memory with it
        elapsed = _timed(streamed)
        naive_elapsed = _timed(naive)
        peak = _peak(streamed)
        naive_peak = _peak(naive)

        print(f"  {total:,} releases")
        report("streamed export", total / elapsed, "rel/s", "in-memory json.dumps",
               total / naive_elapsed)
        report("streamed export peak memory", peak / 2**20, "MiB", "in-memory peak",
               naive_peak / 2**20)

        count = Release.objects.values("ocid").distinct().count()
        records_elapsed = _timed(lambda: sum(1 for _ in ocds.iter_records()))
        print(f"  {count:,} processes, most of {per} releases each")
        report("releases merged into records (ocdsmerge)", total / records_elapsed, "rel/s",
               "goal", 2000.0,
               subject_did=f"every record compiled from all its releases ({per} for most)",
               anchor_did="the goal: 2,000 releases a second")
        records_peak = _peak(lambda: sum(1 for _ in ocds.iter_records()))
        report("records peak memory", records_peak / 2**20, "MiB", "in-memory releases peak",
               naive_peak / 2**20)

        # Red flags over the compiled releases (what the dashboard and `sahab redflags
        # --from-ocds` do after compiling), against the compilation itself.
        from sahab.procurement import redflags

        compiled = [r["compiledRelease"] for r in ocds.iter_records()]
        flags_elapsed = _timed(lambda compiled=compiled: redflags.compute(compiled))
        report("red flags over compiled releases", count / flags_elapsed, "proc/s",
               "records compiled (ocdsmerge)", count / records_elapsed)
        # the flags read the records as they stream by: their peak is the stream's, plus
        # what the indicators keep per process, not every compiled release at once
        del compiled
        streamed_flags = _peak(lambda: redflags.compute(
            r["compiledRelease"] for r in ocds.iter_records()))
        report("red flags peak memory, records streamed", streamed_flags / 2**20, "MiB",
               "records streamed, no flags", records_peak / 2**20)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _peak(fn) -> int:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak
