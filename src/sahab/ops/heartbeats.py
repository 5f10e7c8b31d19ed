"""Workers say they are alive every few seconds; readiness reads it from the database.

The database, not a local file, because workers may run on other machines than the web
servers that answer ``/readyz``.

The same beats let a worker take back the jobs of a worker that died while running them
(``recover_jobs_of_dead_workers``): a job left ``RUNNING`` by a killed process would
otherwise stay so for ever, and the timers that enqueue a job only when none waits or
runs (the cloud marketplace's broker calls) would stop for good.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket

from django.utils import timezone

log = logging.getLogger(__name__)

WORKER_BEAT_SECONDS = 2
# A worker silent for this long is taken for dead (a beat may wait on a busy database).
WORKER_SILENCE_SECONDS = 15


# A job whose worker died is run again this many times in all, then marked failed (a job
# that kills its worker every time must not kill every worker in turn for ever).
JOB_RUNS_BEFORE_GIVING_UP = 3
WORKER_ID_SEPARATOR = ":"  # our workers' ids are host:pid; others' (random) are left alone


def worker_id() -> str:
    """This process's worker id: the task queue records it on each job it runs."""
    return f"{socket.gethostname()}{WORKER_ID_SEPARATOR}{os.getpid()}"[-64:]


def beat_worker() -> None:
    """Record that this worker's scheduler thread runs (called by the scheduler itself)."""
    from sahab.ops.models import Heartbeat

    now = timezone.now()
    name = f"worker {worker_id()}"
    if not Heartbeat.objects.filter(name=name).update(seen_at=now):
        Heartbeat.objects.create(name=name, kind="worker", seen_at=now)
        # a restarted worker has a new pid: forget workers silent for a day
        Heartbeat.objects.filter(kind="worker",
                                 seen_at__lt=now - dt.timedelta(days=1)).delete()


def live_workers(now: dt.datetime | None = None) -> int:
    from sahab.ops.models import Heartbeat

    since = (now or timezone.now()) - dt.timedelta(seconds=WORKER_SILENCE_SECONDS)
    return Heartbeat.objects.filter(kind="worker", seen_at__gte=since).count()


def recover_jobs_of_dead_workers(now: dt.datetime | None = None) -> int:
    """Put back in the queue the jobs left running by workers that stopped beating.

    Every sahab job is written to be run again safely (each step is one transaction and
    the sweeps look for due work); a job already cut this way ``JOB_RUNS_BEFORE_GIVING_UP``
    times is marked failed instead. Returns how many jobs were taken back."""
    from django_tasks.base import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    from sahab.ops.models import Heartbeat

    now = now or timezone.now()
    silence = now - dt.timedelta(seconds=WORKER_SILENCE_SECONDS)
    alive = {name.removeprefix("worker ") for name in Heartbeat.objects.filter(
        kind="worker", seen_at__gte=silence).values_list("name", flat=True)}
    recovered = 0
    for job in DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING,
                                           started_at__lt=silence).only("id", "worker_ids"):
        last = job.worker_ids[-1] if job.worker_ids else ""
        if WORKER_ID_SEPARATOR not in last or last in alive:
            continue
        runs = len(job.worker_ids)
        cut = DBTaskResult.objects.filter(id=job.id, status=TaskResultStatus.RUNNING,
                                          started_at__lt=silence)
        if runs >= JOB_RUNS_BEFORE_GIVING_UP:
            changed = cut.update(status=TaskResultStatus.FAILED, finished_at=now,
                                 exception_class_path="sahab.ops.heartbeats.WorkerDied",
                                 traceback=f"The worker running this job died ({runs} times).")
        else:
            changed = cut.update(status=TaskResultStatus.READY, started_at=None)
        if changed:
            log.warning("job %s of dead worker %s: %s", job.id, last,
                        "failed" if runs >= JOB_RUNS_BEFORE_GIVING_UP else "queued again")
            recovered += changed
    return recovered
