"""Messages the platform itself sends (password resets, alerts, "waiting for you" notices)
through sahab's own mail: delivered to a hosted mailbox at once, or queued for the smart
host, DKIM-signed where the sender's domain is hosted here."""

from __future__ import annotations

import email.policy
import email.utils
import functools
import logging
from email.message import EmailMessage

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation

log = logging.getLogger(__name__)


def send(*, sender: str, to: str, subject: str, body: str,
         headers: dict[str, str] | None = None, helo: str = "sahab") -> None:
    """Send one automatic message; raises ``delivery.Refused`` or ``OSError`` when it
    could not be taken (the caller decides what the person is told)."""
    from sahab.mail import delivery, webmail

    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to it
    # The platform originates it: its Date and Message-ID are ours to set (RFC 5322 §3.6),
    # whether or not the sender's domain is one that delivery completes headers for.
    message["Date"] = email.utils.format_datetime(timezone.now())
    message["Message-ID"] = email.utils.make_msgid(domain=sender.rpartition("@")[2] or None)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    # long lines are never folded into encoded words: links stay whole
    data = message.as_bytes(policy=email.policy.SMTP.clone(max_line_length=998))
    # Written by the platform itself (every sender is one of its settings): its readers
    # see a verified sender, as for mail an agent submits once signed in.
    delivery.accept(delivery.Submission(mail_from=sender, recipients=[to], data=data,
                                        helo=helo, protocol="LOCAL", auth_user=sender),
                    webmail.current_routing(), sign=True)


def address_of(user) -> str:
    """Where the platform writes to a person: an agent's own mailbox on sahab (the state's
    mail), else the account's address (companies); empty when there is none."""
    return next(iter(addresses_of([user])), "")


def addresses_of(users) -> set[str]:
    """``address_of`` for many people at once, in one query whatever their number."""
    from sahab.mail.models import Mailbox

    users = list(users)
    hosted = dict(Mailbox.objects.filter(agent__user__in=users, active=True)
                  .values_list("agent__user_id", "address"))
    return {hosted.get(u.pk) or u.email for u in users} - {""}


def wanting(users, kind: str | None) -> list:
    """Those of ``users`` who did not turn ``kind`` off, in one query."""
    from sahab.mail.models import NoticePreference

    users = list(users)
    if kind is None:
        return users
    muting = {pk for pk, muted in NoticePreference.objects.filter(user__in=users)
              .values_list("user_id", "muted") if kind in muted}
    return [u for u in users if u.pk not in muting]


def in_platform_language(fn):
    """Write the notice in the platform's language, whoever's request or job makes it."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with translation.override(settings.LANGUAGE_CODE):
            return fn(*args, **kwargs)
    return wrapper


def tell(users, subject: str, body: str, *, kind: str | None) -> int:
    """Tell each active person in ``users`` something that waits for them or concerns them,
    once the current transaction commits (nothing is sent for a change rolled back), unless
    they turned this ``kind`` of notice off (``NoticeKind``; ``None`` for what protects the
    account, which nobody can turn off). A message that cannot be sent is logged, never
    raised: the change it reports is already done. Returns how many addresses it is sent
    to (after those who turned it off)."""
    from sahab.mail import delivery

    people = [u for u in users if u is not None and u.is_active]
    recipients = sorted(addresses_of(wanting(people, kind)))
    if not recipients:
        return 0

    def send_all() -> None:
        for to in recipients:
            try:
                send(sender=settings.NOTICES_MAIL_FROM, to=to, subject=subject, body=body,
                     helo="sahab-notices")
            except (OSError, delivery.Refused) as exc:
                log.warning("notice to %s not sent: %s", to, exc)

    transaction.on_commit(send_all, robust=True)  # a failure to send never undoes the change
    return len(recipients)
