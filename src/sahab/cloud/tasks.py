"""Background jobs of the cloud marketplace.

Broker calls are queued jobs (a slow broker must not hold the scheduler's timers), but
they are enqueued only when there is work: ``dispatch_due_work``, an inline timer, looks
every second for due operations and enqueues one job unless one is already waiting or
running — so an idle platform adds no rows to the queue.
"""

from django.utils import timezone
from django_tasks import task


def _pending(task_path: str) -> bool:
    """A job of this task waits or runs (a run older than 15 minutes is a dead worker's)."""
    import datetime as dt

    from django.db.models import Q
    from django_tasks_db.models import DBTaskResult

    recent = timezone.now() - dt.timedelta(minutes=15)
    return DBTaskResult.objects.filter(task_path=task_path).filter(
        Q(status="READY") | Q(status="RUNNING", started_at__gte=recent)).exists()


def dispatch_due_work() -> None:
    """Inline timer: enqueue the broker jobs when something is due."""
    from sahab.cloud.models import Binding, DbaasInstance, Instance

    now = timezone.now()
    due = Instance.objects.exclude(operation="").filter(next_attempt_at__lte=now).exists() or \
        Binding.objects.exclude(operation="").filter(next_attempt_at__lte=now).exists()
    if due and not _pending(advance_operations.module_path):
        advance_operations.enqueue()
    if DbaasInstance.objects.filter(state=DbaasInstance.State.IN_PROGRESS).exists() and \
            not _pending(run_broker_operations.module_path):
        run_broker_operations.enqueue()


@task()
def advance_operations() -> int:
    """Send due broker requests, poll asynchronous operations, retry after failures."""
    from sahab.cloud import operations

    return operations.advance_operations()


@task()
def run_broker_operations() -> int:
    """The reference broker's side: create, change and drop databases it accepted."""
    from sahab.cloud import broker

    return broker.run_pending_operations()


@task()
def meter_usage() -> int:
    """Bill every complete hour of every instance; alert on budget thresholds."""
    from sahab.cloud import metering

    return metering.meter_usage()


@task()
def report_broker_usage() -> int:
    """The reference broker reports the size and connections of its databases."""
    from sahab.cloud import metering

    return metering.report_reference_broker_usage()


@task()
def expire_attestations() -> int:
    """Expire labels past their date; suspend the providers that lose G-cloud."""
    from sahab.cloud import services

    return services.expire_attestations()


@task()
def warn_expiring_attestations() -> int:
    """Warn providers (and the customers a lapse would affect) of labels expiring soon."""
    from sahab.cloud import services

    return services.warn_expiring_attestations()


@task()
def refresh_catalogs() -> int:
    """Read every registered broker's catalogue again."""
    from sahab.cloud import services

    return services.refresh_all_catalogs()
