from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProcurementConfig(AppConfig):
    """Public procurement: plans, tenders, sealed bids, evaluation, awards, contracts."""

    name = "sahab.procurement"
    label = "procurement"
    verbose_name = _("Procurement")

    def ready(self) -> None:
        import datetime as dt

        from django.conf import settings
        from django.db.models.signals import post_save

        from sahab.core import scheduler, waiting
        from sahab.core.navigation import NavItem, register
        from sahab.directory.models import Company
        from sahab.ledger import services as ledger
        from sahab.procurement import notifications, official, services, tasks
        from sahab.procurement.models import Bid, Step

        # a company's new name is what the tender search finds it by
        post_save.connect(_company_saved, sender=Company,
                          dispatch_uid="sahab.procurement.search.company")
        register(NavItem(_("Tenders"), "procurement:tenders", order=20))
        register(NavItem(_("Buying"), "procurement:manage", order=25,
                         visible_to=lambda user: hasattr(user, "agent")))
        waiting.register(notifications.waiting_for)
        ledger.keeps_pending_entries(Bid, fields=["tender__bid_tag", "commitment"],
                                     entry=services.bid_entry)
        # the changes feed pages through steps by index
        ledger.keeps_pending_entries(Step, fields=["type", "tender__reference"],
                                     entry=services.step_entry, read_in_index_order=True)
        scheduler.register_periodic(services.advance_tenders, dt.timedelta(seconds=2),
                                    inline=True)
        scheduler.register_periodic(official.issue_documents, dt.timedelta(seconds=10))
        # computed by one worker, read by every page: never in a visitor's request
        scheduler.register_periodic(
            tasks.refresh_red_flags, dt.timedelta(seconds=settings.RED_FLAGS_REFRESH_SECONDS))
        # the dashboards' aggregates too (seconds each at a country's size); with no
        # keeping at all (0 s), every page aggregates them itself
        if settings.PORTAL_FIGURES_SECONDS > 0:
            scheduler.register_periodic(
                tasks.refresh_dashboards,
                dt.timedelta(seconds=settings.PORTAL_FIGURES_SECONDS))
        # the OCDS bulk files: minutes of work at a country's size, done once for every
        # download instead of once per download
        if settings.OCDS_BULK_SECONDS > 0:
            scheduler.register_periodic(
                tasks.publish_bulk_files, dt.timedelta(seconds=settings.OCDS_BULK_SECONDS))
        # contracts fully paid and past their end date: a day's precision is enough
        scheduler.register_periodic(services.complete_finished_contracts,
                                    dt.timedelta(minutes=10), inline=True)


def _company_saved(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if not created and not raw:
        from sahab.procurement import search

        search.refresh_for_company(instance.pk)
