from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DirectoryConfig(AppConfig):
    """Administrations, agents, companies, roles, sign-in and API tokens."""

    name = "sahab.directory"
    label = "directory"
    verbose_name = _("Directory")

    def ready(self) -> None:
        import datetime as dt

        from sahab.core import scheduler
        from sahab.core.navigation import NavItem, register
        from sahab.directory import (
            sessions,  # noqa: F401  (records the time of each sign-in)
            tasks,
        )

        scheduler.register_periodic(tasks.forget_ended_sessions, dt.timedelta(hours=1))

        register(NavItem(_("Directory"), "directory:administrations", order=10))
        register(NavItem(_("My account"), "directory:home", order=90,
                         visible_to=lambda user: user.is_authenticated))
