from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared plumbing: domain errors, navigation, platform keys, periodic jobs."""

    name = "sahab.core"
    label = "core"

    def ready(self) -> None:
        import datetime as dt

        from sahab.core import scheduler, tasks

        scheduler.register_periodic(tasks.housekeeping, dt.timedelta(hours=6))
