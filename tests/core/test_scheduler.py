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
