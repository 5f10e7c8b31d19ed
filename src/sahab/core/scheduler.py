"""Recurring background tasks on top of the database task queue.

Pillars register their timers here (ledger checkpoints, deadlines, retries); the
worker calls ``enqueue_due_jobs`` every second. Works the same on SQLite and
PostgreSQL: no Redis, no cron.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from django.db import transaction
from django.utils import timezone

log = logging.getLogger(__name__)

_PERIODIC: dict[str, tuple[object, dt.timedelta]] = {}


def register_periodic(task, every: dt.timedelta) -> None:
    """Run ``task`` (a ``django_tasks`` task without arguments) every ``every``."""
    _PERIODIC[task.module_path] = (task, every)


def registered() -> dict[str, tuple[object, dt.timedelta]]:
    return dict(_PERIODIC)


def enqueue_due_jobs(now: dt.datetime | None = None) -> list[str]:
    """Enqueue every registered task whose time has come; returns their names."""
    from sahab.core.models import PeriodicJob

    now = now or timezone.now()
    enqueued = []
    for name, (task, every) in _PERIODIC.items():
        seconds = int(every.total_seconds())
        PeriodicJob.objects.get_or_create(
            name=name, defaults={"interval_seconds": seconds, "next_run_at": now})
        with transaction.atomic():
            claimed = PeriodicJob.objects.filter(name=name, next_run_at__lte=now).update(
                next_run_at=now + every, last_enqueued_at=now, interval_seconds=seconds)
            if claimed:
                task.enqueue()
                enqueued.append(name)
    return enqueued


class SchedulerThread(threading.Thread):
    """Calls ``enqueue_due_jobs`` once a second until stopped."""

    def __init__(self, interval: float = 1.0):
        super().__init__(name="sahab-scheduler", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        from django.db import close_old_connections

        while not self.stopped.wait(self.interval):
            try:
                enqueue_due_jobs()
            except Exception:  # keep the timer alive through a transient database error
                log.exception("scheduler tick failed")
            finally:
                close_old_connections()
