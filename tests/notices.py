"""What the platform's notices look like from outside: every notice spooled for the smart
host (test accounts' addresses are not hosted here), read back as mail."""

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
