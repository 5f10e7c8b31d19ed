"""What the platform's notices look like from outside: every notice spooled for the smart
host (test accounts' addresses are not hosted here), read back as mail."""

from __future__ import annotations

import email
import email.policy

from sahab.mail import delivery
from sahab.mail.models import OutboundMessage


def sent() -> list[tuple[str, email.message.EmailMessage]]:
    """Every notice spooled, as (recipient, message), oldest first."""
    return [(row.recipient, email.message_from_bytes(
        (delivery.spool_dir() / row.spool_name).read_bytes(), policy=email.policy.default))
        for row in OutboundMessage.objects.order_by("pk")]


def subjects_to(user) -> list[str]:
    """The subjects of the notices sent to ``user``'s account address."""
    return [m["Subject"] for to, m in sent() if to == user.email]


def give_mailboxes(*users, domain: str = "notices.test") -> None:
    """Give each agent among ``users`` their own mailbox on sahab, as every agent of the
    state has: their administration's mail domain is made (a test domain under ``domain``
    where the directory gave it none), then the agent's personal mailbox is made as for a
    new agent."""
    from sahab.directory import selectors as directory
    from sahab.mail import services as mail

    for user in users:
        agent = directory.agent_of(user)
        administration = agent.administration
        if mail.domain_for(administration) is None:
            if not administration.mail_domain:
                administration.mail_domain = f"{administration.code.lower()}.{domain}"
                administration.save(update_fields=["mail_domain"])
            mail.domain_assigned(actor=directory.SYSTEM, administration=administration)
        assert mail.provision_agent_mailbox(agent) is not None


def inbox(user) -> list[email.message.EmailMessage]:
    """The messages in the INBOX of ``user``'s own mailbox on sahab, oldest first."""
    from sahab.mail import maildir
    from sahab.mail.models import Mailbox

    box = Mailbox.objects.get(agent__user=user)
    stored = reversed(maildir.messages(box.maildir, "INBOX"))
    return [email.message_from_bytes(m.path.read_bytes(), policy=email.policy.default)
            for m in stored]


class SmartHost:
    """An SMTP server on 127.0.0.1 standing for the smart host that carries sahab's mail to
    addresses hosted elsewhere (companies' own domains): what it received, as messages."""

    def __init__(self, settings) -> None:
        from aiosmtpd.controller import Controller

        from tests.ports import free_port

        self.received: list[tuple[list[str], email.message.EmailMessage]] = []
        self._controller = Controller(self, hostname="127.0.0.1", port=free_port())
        settings.MAIL_SMART_HOST = f"127.0.0.1:{self._controller.port}"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((list(envelope.rcpt_tos), email.message_from_bytes(
            envelope.content, policy=email.policy.default)))
        return "250 OK"

    def __enter__(self) -> SmartHost:
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()

    def relay(self) -> list[tuple[list[str], email.message.EmailMessage]]:
        """Run the outbound queue once; everything it carried to this server."""
        from sahab.mail import outbound

        outbound.process_queue()
        return self.received

    def subjects_to(self, user) -> list[str]:
        return [m["Subject"] for to, m in self.received if user.email in to]
