"""Helpers shared by the benchmarks: a throwaway SAHAB_HOME and database, timing, ratios."""

from __future__ import annotations

import os
import socket
import statistics
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
    """A port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
