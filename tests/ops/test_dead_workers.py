"""A job left running by a worker killed in the middle of it is taken back by the live
workers: run again, or marked failed after it has cut its worker several times. Before,
such a job stayed ``RUNNING`` for ever and the cloud's broker calls, enqueued only when
none waits or runs, stopped for a quarter of an hour after each killed worker."""

import datetime as dt

import pytest
from django.utils import timezone
from django_tasks.base import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from sahab.cloud import tasks as cloud_tasks
from sahab.ops import heartbeats

pytestmark = pytest.mark.django_db

DEAD = "host-gone:4242"


@pytest.fixture
def queue(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend",
                                  "QUEUES": ["default"]}}


def _running(task, *worker_ids: str, seconds_ago: float) -> DBTaskResult:
    job = DBTaskResult.objects.get(id=task.enqueue().id)
    for worker in worker_ids:
        job.claim(worker)
    DBTaskResult.objects.filter(id=job.id).update(
        started_at=timezone.now() - dt.timedelta(seconds=seconds_ago))
    return job


def _status(job: DBTaskResult) -> str:
    return DBTaskResult.objects.get(id=job.id).status


def test_the_job_of_a_killed_worker_runs_again_and_the_broker_calls_resume(queue):
    heartbeats.beat_worker()  # this worker is alive
    old = heartbeats.WORKER_SILENCE_SECONDS + 5
    cut = _running(cloud_tasks.advance_operations, DEAD, seconds_ago=old)
    assert cloud_tasks._pending(cloud_tasks.advance_operations.module_path)

    assert heartbeats.recover_jobs_of_dead_workers() == 1
    assert _status(cut) == TaskResultStatus.READY
    # the queue will hand it to a live worker
    assert DBTaskResult.objects.ready().filter(id=cut.id).exists()


def test_jobs_of_live_or_unknown_workers_and_recent_jobs_are_left_alone(queue):
    heartbeats.beat_worker()
    old = heartbeats.WORKER_SILENCE_SECONDS + 5
    mine = _running(cloud_tasks.advance_operations, heartbeats.worker_id(), seconds_ago=old)
    foreign = _running(cloud_tasks.meter_usage, "a3f9c0d2e1b4a5c6", seconds_ago=old)
    fresh = _running(cloud_tasks.refresh_catalogs, DEAD, seconds_ago=1)

    assert heartbeats.recover_jobs_of_dead_workers() == 0
    assert {_status(j) for j in (mine, foreign, fresh)} == {TaskResultStatus.RUNNING}


def test_a_job_that_killed_its_worker_three_times_is_marked_failed(queue):
    old = heartbeats.WORKER_SILENCE_SECONDS + 5
    job = _running(cloud_tasks.advance_operations, "h:1", "h:2", DEAD, seconds_ago=old)

    assert heartbeats.recover_jobs_of_dead_workers() == 1
    stored = DBTaskResult.objects.get(id=job.id)
    assert stored.status == TaskResultStatus.FAILED
    assert "died (3 times)" in stored.traceback
    # nothing waits or runs any more: the dispatcher may enqueue a new job
    assert not cloud_tasks._pending(cloud_tasks.advance_operations.module_path)


def test_a_worker_that_stopped_beating_is_dead_even_if_its_row_remains(queue):
    heartbeats.beat_worker()
    old = heartbeats.WORKER_SILENCE_SECONDS + 5
    job = _running(cloud_tasks.advance_operations, heartbeats.worker_id(), seconds_ago=old)
    later = timezone.now() + dt.timedelta(seconds=heartbeats.WORKER_SILENCE_SECONDS + 1)
    assert heartbeats.recover_jobs_of_dead_workers(later) == 1
    assert _status(job) == TaskResultStatus.READY
