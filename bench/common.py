"""Helpers shared by the benchmarks: a throwaway SAHAB_HOME and database, timing, ratios."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable


def setup_django(database_url: str | None = None) -> None:
    """Configure sahab on a fresh SAHAB_HOME (SQLite unless a URL is given) and migrate."""
    os.environ["SAHAB_HOME"] = tempfile.mkdtemp(prefix="sahab-bench-")
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sahab.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def free_port() -> int:
    """A port of 127.0.0.1 that nothing listens on now, chosen as the tests choose theirs
    (below the ephemeral range, never twice: ``tests.ports``)."""
    from tests.ports import free_port as chosen

    return chosen()


def rate(fn: Callable[[], object], *, n: int, repeat: int = 3) -> float:
    """Best-of-``repeat`` operations per second of calling ``fn`` ``n`` times."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def percentile(samples: list[float], p: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[int(p) - 1]


def report(name: str, value: float, unit: str, anchor_name: str, anchor: float, *,
           subject_did: str = "", anchor_did: str = "") -> None:
    """One ratio line; ``subject_did`` and ``anchor_did`` say what each side did, so that a
    reader sees whether the two did the same work."""
    print(f"  {name:<44} {value:>12,.1f} {unit:<8} anchor {anchor_name}: {anchor:>12,.1f}"
          f"  ratio {value / anchor:6.3f}")
    for did in (subject_did, anchor_did):
        if did:
            print(f"      {did}")


def child_json(env: dict, code: str, *, show_progress: bool = False):
    """Run ``code`` (Python printing JSON as its last line) in a child process with
    ``env``; returns what it printed. ``show_progress`` lets its stderr (progress bars)
    through to the terminal."""
    out = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                         stderr=None if show_progress else subprocess.PIPE, text=True)
    if out.returncode:
        raise RuntimeError((out.stderr or "")[-3000:] or f"the child failed ({out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def web_server(env: dict, port: int, *, workers: int = 2, threads: int = 4,
               timeout: int = 300) -> subprocess.Popen:
    """sahab's web application under gunicorn on 127.0.0.1:``port``, once it answers
    ``/healthz`` (no worker process: nothing runs in the background while measuring)."""
    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "sahab.wsgi:application", "--bind",
         f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads),
         "--timeout", str(timeout)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError("the web server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def timed_gets(base: str, paths: list[str], n: int, *, timeout: float = 120) -> list[float]:
    """Milliseconds of ``n`` GETs through one client, one at a time, cycling ``paths``."""
    import httpx

    samples = []
    with httpx.Client(base_url=base, timeout=timeout) as client:
        for i in range(n):
            start = time.perf_counter()
            client.get(paths[i % len(paths)]).raise_for_status()
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def copy_ledger_rows(entries: list, nodes: list) -> None:
    """COPY ledger rows in the transaction open on Django's connection, as
    ``append_many`` stores them, then empty both lists: ``entries`` as (index, body,
    type, subject, actor, at, mac), ``nodes`` as (key, hash)."""
    from sahab.ledger.services import store_rows

    store_rows(entries, nodes)
    entries.clear()
    nodes.clear()
