"""Background jobs of the exchange pillar."""

from django_tasks import task


@task()
def check_services() -> int:
    """Health checks of the provider services."""
    from sahab.exchange import services

    return services.check_services()
