from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CloudConfig(AppConfig):
    """The cloud marketplace: providers, catalogue, orders, provisioning, usage, budgets."""

    name = "sahab.cloud"
    label = "cloud"
    verbose_name = _("Cloud")

    def ready(self) -> None:
        import datetime as dt

        from sahab.cloud import services, tasks
        from sahab.cloud.models import Order
        from sahab.core import scheduler
        from sahab.core.navigation import NavItem, register
        from sahab.ledger import services as ledger

        register(NavItem(_("Cloud"), "cloud:catalogue", order=30))
        from sahab.cloud import notifications
        from sahab.core import waiting

        waiting.register(notifications.waiting_for)
        ledger.keeps_pending_entries(Order, fields=["number"], entry=services.order_entry)
        every = dt.timedelta
        scheduler.register_periodic(tasks.dispatch_due_work, every(seconds=1), inline=True)
        scheduler.register_periodic(tasks.meter_usage, every(minutes=5))
        scheduler.register_periodic(tasks.report_broker_usage, every(hours=1))
        scheduler.register_periodic(tasks.expire_attestations, every(minutes=15))
        scheduler.register_periodic(tasks.warn_expiring_attestations, every(hours=1))
        scheduler.register_periodic(tasks.refresh_catalogs, every(hours=1))
