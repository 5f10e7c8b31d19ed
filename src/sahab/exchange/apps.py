from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExchangeConfig(AppConfig):
    """The government intranet: service registry, access grants, gateway, message log."""

    name = "sahab.exchange"
    label = "exchange"
    verbose_name = _("Exchange")

    def ready(self) -> None:
        import datetime as dt

        from sahab.core import scheduler
        from sahab.core.navigation import NavItem, register
        from sahab.exchange import messagelog, tasks

        register(NavItem(_("Intranet"), "exchange:registry", order=35,
                         visible_to=lambda user: hasattr(user, "agent")))
        scheduler.register_periodic(tasks.check_services, dt.timedelta(minutes=5))
        # The message log reaches the ledger in batches, every second.
        scheduler.register_periodic(messagelog.flush_to_ledger, dt.timedelta(seconds=1),
                                    inline=True)
