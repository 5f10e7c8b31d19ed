"""Background jobs of procurement that pages read the result of."""

from django_tasks import task


@task()
def refresh_red_flags() -> int:
    """Compute the red flags over every published record and store them; returns how
    many. Pages and the API read the stored run (``redflags.current``)."""
    from sahab.procurement import redflags

    return redflags.refresh().count
