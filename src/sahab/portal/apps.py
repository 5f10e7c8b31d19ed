from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    """The public pages: no sign-in needed."""

    name = "sahab.portal"
    label = "portal"
    verbose_name = _("Portal")

    def ready(self) -> None:
        from sahab.core.navigation import NavItem, register

        register(NavItem(_("Home"), "portal:home", order=0))
