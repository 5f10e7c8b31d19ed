from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LedgerConfig(AppConfig):
    """The public transparency log: every change of the platform is an entry."""

    name = "sahab.ledger"
    label = "ledger"
    verbose_name = _("Ledger")

    def ready(self) -> None:
        import datetime as dt

        from django.conf import settings

        from sahab.core import scheduler
        from sahab.core.navigation import NavItem, register
        from sahab.ledger import services, witnessing

        register(NavItem(_("Ledger"), "ledger:home", order=80))
        # before the checkpoint: what a writer left pending is signed in the same tick
        scheduler.register_periodic(services.integrate_pending, dt.timedelta(seconds=1),
                                    inline=True)
        scheduler.register_periodic(
            services.checkpoint_if_grown,
            dt.timedelta(seconds=settings.LEDGER_CHECKPOINT_INTERVAL), inline=True)
        # a witness that was down (or started after us) gets the latest checkpoint again
        scheduler.register_periodic(witnessing.submit_to_all, dt.timedelta(seconds=2),
                                    inline=True)
