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
_INLINE: dict[str, tuple[object, dt.timedelta]] = {}


def register_periodic(task, every: dt.timedelta, *, inline: bool = False) -> None:
    """Run ``task`` every ``every``.

    ``task`` is a ``django_tasks`` task without arguments, enqueued on the queue; with
    ``inline=True`` it is a plain function that the scheduler thread calls itself —
    for cheap, frequent timers (every second) that should not fill the queue.
    Inline functions must be safe to run in several workers at once.
    """
    if inline:
        _INLINE[f"{task.__module__}.{task.__qualname__}"] = (task, every)
    else:
        _PERIODIC[task.module_path] = (task, every)


def registered() -> dict[str, tuple[object, dt.timedelta]]:
    return {**_PERIODIC, **_INLINE}


def enqueue_due_jobs(now: dt.datetime | None = None) -> list[str]:
    """Enqueue every registered task whose time has come and whose last run has ended;
    returns their names.

    A run that outlasts its interval (the red flags of a country take minutes) is never
    joined by a second one: the task waits, due, until it ends, then runs once. Without
    this, runs would pile up in the queue and compute the same thing side by side."""
    from sahab.core.models import PeriodicJob

    now = now or timezone.now()
    enqueued = []
    for name, (task, every) in _PERIODIC.items():
        seconds = int(every.total_seconds())
        job, _ = PeriodicJob.objects.get_or_create(
            name=name, defaults={"interval_seconds": seconds, "next_run_at": now})
        if job.next_run_at > now or _unfinished(task, job.last_result_id):
            continue
        with transaction.atomic():
            claimed = PeriodicJob.objects.filter(
                name=name, next_run_at__lte=now, last_result_id=job.last_result_id).update(
                next_run_at=now + every, last_enqueued_at=now, interval_seconds=seconds)
            if claimed:
                result = task.enqueue()
                PeriodicJob.objects.filter(name=name).update(last_result_id=str(result.id))
                enqueued.append(name)
    return enqueued


def _unfinished(task, result_id: str) -> bool:
    """Whether the run ``result_id`` still waits in the queue or runs (a worker that died
    while running it has it put back by ``ops.heartbeats``, so it ends either way)."""
    from django_tasks.base import TaskResultStatus
    from django_tasks.exceptions import TaskResultDoesNotExist

    if not result_id or not task.get_backend().supports_get_result:
        return False
    try:
        status = task.get_result(result_id).status
    except TaskResultDoesNotExist:  # pruned from the queue's table
        return False
    return status in (TaskResultStatus.READY, TaskResultStatus.RUNNING)


def run_inline_jobs(last_run: dict[str, float], now: float) -> None:
    """Call the inline timers whose interval has passed since they last ran here."""
    for name, (fn, every) in _INLINE.items():
        if now - last_run.get(name, 0.0) >= every.total_seconds():
            last_run[name] = now
            try:
                fn()
            except Exception:  # one failing timer must not stop the others
                log.exception("periodic %s failed", name)


class SchedulerThread(threading.Thread):
    """Enqueues due jobs and runs inline timers, several times a second, until stopped."""

    def __init__(self, interval: float = 0.25):
        super().__init__(name="sahab-scheduler", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        import time

        from django.db import close_old_connections

        last_run: dict[str, float] = {}
        last_enqueue = 0.0
        while not self.stopped.wait(self.interval):
            now = time.monotonic()
            try:
                run_inline_jobs(last_run, now)
                if now - last_enqueue >= 1.0:
                    last_enqueue = now
                    enqueue_due_jobs()
            except Exception:  # keep the timer alive through a transient database error
                log.exception("scheduler tick failed")
            finally:
                close_old_connections()
