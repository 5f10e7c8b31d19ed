import datetime as dt

import pytest
from django.utils import timezone
from django_tasks import task

from sahab.core import scheduler
from sahab.core.models import PeriodicJob

pytestmark = pytest.mark.django_db
RUNS: list[int] = []


@task()
def count_run() -> None:
    RUNS.append(1)


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr(scheduler, "_PERIODIC", {})
    scheduler.register_periodic(count_run, dt.timedelta(seconds=10))
    RUNS.clear()


def test_a_periodic_job_runs_once_per_interval_however_often_the_scheduler_ticks(registered):
    now = timezone.now()
    assert scheduler.enqueue_due_jobs(now) == [count_run.module_path]
    for seconds in (0, 1, 5, 9):
        assert scheduler.enqueue_due_jobs(now + dt.timedelta(seconds=seconds)) == []
    assert scheduler.enqueue_due_jobs(now + dt.timedelta(seconds=10)) == [count_run.module_path]
    assert len(RUNS) == 2
    job = PeriodicJob.objects.get(name=count_run.module_path)
    assert job.next_run_at == now + dt.timedelta(seconds=20)


def test_housekeeping_is_registered():
    from sahab.core.tasks import housekeeping

    assert housekeeping.module_path in scheduler.registered()
    housekeeping.call()


def test_the_worker_forgets_ended_sessions_every_hour():
    from sahab.directory.tasks import forget_ended_sessions

    assert scheduler.registered()[forget_ended_sessions.module_path][1] == dt.timedelta(hours=1)


@pytest.fixture
def queued(settings, monkeypatch):
    """The product's database queue: runs wait for a worker instead of running at once."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend",
                                  "QUEUES": ["default"]}}
    monkeypatch.setattr(scheduler, "_PERIODIC", {})
    scheduler.register_periodic(count_run, dt.timedelta(seconds=10))


def _finish(status) -> None:
    from django_tasks_db.models import DBTaskResult

    DBTaskResult.objects.filter(status__in=["READY", "RUNNING"]).update(status=status)


def test_a_run_that_outlasts_its_interval_is_not_joined_by_another(queued):
    """The red flags of a country take longer than their interval: a second run would
    compute the same beside the first, and the queue would grow without end."""
    from django_tasks_db.models import DBTaskResult

    now = timezone.now()
    assert scheduler.enqueue_due_jobs(now) == [count_run.module_path]
    DBTaskResult.objects.update(status="RUNNING")  # a worker took it
    for seconds in (10, 20, 35):  # three intervals pass while it runs
        assert scheduler.enqueue_due_jobs(now + dt.timedelta(seconds=seconds)) == []
    assert DBTaskResult.objects.count() == 1
    _finish("SUCCESSFUL")
    # due since long: it runs at the next tick, once
    later = now + dt.timedelta(seconds=36)
    assert scheduler.enqueue_due_jobs(later) == [count_run.module_path]
    assert scheduler.enqueue_due_jobs(later) == []
    assert DBTaskResult.objects.count() == 2
    job = PeriodicJob.objects.get(name=count_run.module_path)
    assert job.next_run_at == later + dt.timedelta(seconds=10)


@pytest.mark.parametrize("ended", ["FAILED", "pruned"])
def test_a_failed_or_forgotten_run_does_not_stop_the_next(queued, ended):
    from django_tasks_db.models import DBTaskResult

    now = timezone.now()
    assert scheduler.enqueue_due_jobs(now) == [count_run.module_path]
    if ended == "pruned":
        DBTaskResult.objects.all().delete()
    else:
        _finish(ended)
    assert scheduler.enqueue_due_jobs(now + dt.timedelta(seconds=10)) == [count_run.module_path]
