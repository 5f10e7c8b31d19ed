"""Background jobs of the cloud marketplace (the worker runs them on their timers)."""

from django_tasks import task


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
def refresh_catalogs() -> int:
    """Read every registered broker's catalogue again."""
    from sahab.cloud import services

    return services.refresh_all_catalogs()
