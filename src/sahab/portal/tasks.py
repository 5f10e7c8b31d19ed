"""Background jobs of the portal."""

from django_tasks import task


@task()
def dispatch_alerts() -> int:
    """Send the alerts of every follow (new tenders, what followed companies win)."""
    from sahab.portal import alerts

    return alerts.dispatch()
