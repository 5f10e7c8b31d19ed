from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    """The public pages: no sign-in needed."""

    name = "sahab.portal"
    label = "portal"
    verbose_name = _("Portal")

    def ready(self) -> None:
        import datetime as dt

        from sahab.core import scheduler
        from sahab.core.navigation import NavItem, register
        from sahab.portal import tasks

        register(NavItem(_("Home"), "portal:home", order=0))
        register(NavItem(_("Companies"), "portal:companies", order=22))
        scheduler.register_periodic(tasks.dispatch_alerts, dt.timedelta(minutes=5))
