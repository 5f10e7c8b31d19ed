from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MailConfig(AppConfig):
    """Mail of the administrations: domains, mailboxes, SMTP, IMAP, webmail, letters."""

    name = "sahab.mail"
    label = "mail"
    verbose_name = _("Mail")

    def ready(self) -> None:
        import datetime as dt

        from django.db.models.signals import post_save

        from sahab.core import scheduler
        from sahab.core.navigation import NavItem, register
        from sahab.directory.models import Agent
        from sahab.ledger import services as ledger
        from sahab.mail import letters, tasks
        from sahab.mail.models import Receipt

        register(NavItem(_("Mail"), "mail:inbox", order=25,
                         visible_to=lambda user: hasattr(user, "agent")))
        post_save.connect(_new_agent_gets_a_mailbox, sender=Agent,
                          dispatch_uid="mail-new-agent")
        ledger.keeps_pending_entries(Receipt, fields=["kind", "letter_id", "document"],
                                     entry=letters.receipt_entry)
        scheduler.register_periodic(tasks.advance_letters, dt.timedelta(seconds=30))
        scheduler.register_periodic(tasks.send_outbound, dt.timedelta(minutes=1))
        scheduler.register_periodic(tasks.housekeeping, dt.timedelta(minutes=10))


def _new_agent_gets_a_mailbox(sender, instance, created, **kwargs) -> None:
    """Every new agent gets a mailbox once the agent is committed (the hourly
    housekeeping makes any that a crash left missing)."""
    if not created or kwargs.get("raw"):
        return
    from django.db import transaction

    from sahab.mail import services

    agent_id = instance.pk

    def provision() -> None:
        from sahab.directory.models import Agent

        agent = Agent.objects.filter(pk=agent_id).select_related("user", "administration").first()
        if agent is not None:
            services.provision_agent_mailbox(agent)

    transaction.on_commit(provision)
