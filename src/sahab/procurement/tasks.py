"""Background jobs of procurement that pages read the result of."""

from django_tasks import task


@task()
def refresh_red_flags() -> int:
    """Compute the red flags over every published record and store them, unless the last
    run already covers every release with today's settings (minutes at a country's size,
    for nothing); returns how many flags. Pages and the API read the stored run
    (``redflags.current``)."""
    from sahab.procurement import redflags

    last = redflags.last_run()
    if last is not None and redflags.is_current(last):
        return last.count
    return redflags.refresh().count


@task()
def refresh_dashboards() -> dict[str, float]:
    """Aggregate the dashboards' tables and store them; pages read the stored rows
    (``dashboard.table``). Returns how long each table took, in seconds."""
    from sahab.procurement import dashboard

    return dashboard.refresh()


@task()
def publish_bulk_files() -> dict[str, int]:
    """Rewrite the OCDS bulk files when releases were published since they were written;
    returns each file's last release's ledger index."""
    from sahab.procurement import bulkfiles

    return {built.kind: built.up_to for built in bulkfiles.publish()}
