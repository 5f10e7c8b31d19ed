"""Workers say they are alive every few seconds; readiness reads it from the database.

The database, not a local file, because workers may run on other machines than the web
servers that answer ``/readyz``.
"""

from __future__ import annotations

import datetime as dt
import os
import socket

from django.utils import timezone

WORKER_BEAT_SECONDS = 2
# A worker silent for this long is taken for dead (a beat may wait on a busy database).
WORKER_SILENCE_SECONDS = 15


def beat_worker() -> None:
    """Record that this worker's scheduler thread runs (called by the scheduler itself)."""
    from sahab.ops.models import Heartbeat

    now = timezone.now()
    name = f"worker {socket.gethostname()}:{os.getpid()}"
    if not Heartbeat.objects.filter(name=name).update(seen_at=now):
        Heartbeat.objects.create(name=name, kind="worker", seen_at=now)
        # a restarted worker has a new pid: forget workers silent for a day
        Heartbeat.objects.filter(kind="worker",
                                 seen_at__lt=now - dt.timedelta(days=1)).delete()


def live_workers(now: dt.datetime | None = None) -> int:
    from sahab.ops.models import Heartbeat

    since = (now or timezone.now()) - dt.timedelta(seconds=WORKER_SILENCE_SECONDS)
    return Heartbeat.objects.filter(kind="worker", seen_at__gte=since).count()
