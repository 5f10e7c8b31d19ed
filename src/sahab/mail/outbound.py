"""The outbound queue: mail for domains hosted elsewhere, handed to the smart host.

Each recipient is a row; failures are retried with growing delays; a permanent refusal
or a message still queued after ``SAHAB_MAIL_BOUNCE_HOURS`` returns to its sender as a
delivery status notification (RFC 3464) in the sender's mailbox.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import smtplib
import ssl
from email.message import EmailMessage

from django.conf import settings
from django.utils import timezone

from sahab.mail import delivery, maildir
from sahab.mail.models import Mailbox, OutboundMessage

log = logging.getLogger(__name__)
RETRY_MINUTES = [1, 5, 15, 30, 60, 120, 240]


def _smart_host() -> tuple[str, int] | None:
    if not settings.MAIL_SMART_HOST:
        return None
    host, _, port = settings.MAIL_SMART_HOST.rpartition(":")
    return (host or settings.MAIL_SMART_HOST, int(port) if port.isdigit() else 25)


def _send(row: OutboundMessage, data: bytes, target: tuple[str, int]) -> None:
    with smtplib.SMTP(*target, timeout=30) as client:
        client.ehlo(settings.MAIL_HOSTNAME)
        if client.has_extn("starttls"):
            client.starttls(context=ssl.create_default_context())
            client.ehlo(settings.MAIL_HOSTNAME)
        client.sendmail(row.sender, [row.recipient], data)


def process_queue(now: dt.datetime | None = None) -> int:
    """Try every due message once; returns how many left the queue (sent or bounced)."""
    now = now or timezone.now()
    target = _smart_host()
    finished = 0
    for row in OutboundMessage.objects.filter(state=OutboundMessage.State.QUEUED,
                                              next_attempt_at__lte=now)[:500]:
        path = delivery.spool_dir() / row.spool_name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            _finish(row, OutboundMessage.State.BOUNCED, "the spooled message is missing")
            finished += 1
            continue
        error, permanent = "no smart host is configured", False
        if target is not None:
            try:
                _send(row, data, target)
                _finish(row, OutboundMessage.State.SENT, "")
                finished += 1
                continue
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                error, permanent = f"{code} {text.decode(errors='replace')}", code >= 500
            except smtplib.SMTPResponseException as exc:
                error = f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace')}"
                permanent = exc.smtp_code >= 500
            except (OSError, smtplib.SMTPException) as exc:
                error = f"{type(exc).__name__}: {exc}"
        expired = now - row.created_at >= dt.timedelta(hours=settings.MAIL_BOUNCE_HOURS)
        if permanent or expired:
            _bounce(row, data, error)
            _finish(row, OutboundMessage.State.BOUNCED, error)
            finished += 1
        else:
            delay = RETRY_MINUTES[min(row.attempts, len(RETRY_MINUTES) - 1)]
            OutboundMessage.objects.filter(pk=row.pk).update(
                attempts=row.attempts + 1, last_error=error[:500],
                next_attempt_at=now + dt.timedelta(minutes=delay))
    return finished


def _finish(row: OutboundMessage, state: str, error: str) -> None:
    """Close a recipient's row; the spooled file goes with its last waiting recipient."""
    OutboundMessage.objects.filter(pk=row.pk).update(
        state=state, last_error=error[:500], finished_at=timezone.now(),
        attempts=row.attempts + 1)
    if not OutboundMessage.objects.filter(spool_name=row.spool_name,
                                          state=OutboundMessage.State.QUEUED).exists():
        (delivery.spool_dir() / row.spool_name).unlink(missing_ok=True)


def _bounce(row: OutboundMessage, data: bytes, error: str) -> None:
    """A notice of non-delivery in the sender's mailbox: the reason, the status fields of
    RFC 3464 and the original headers."""
    sender = Mailbox.objects.filter(address=row.sender, active=True).select_related(
        "domain").first()
    if sender is None:  # a null or foreign sender: nobody to tell
        log.warning("dropping the bounce of %s to %s: %s", row.sender, row.recipient, error)
        return
    report = EmailMessage()
    report["From"] = f"Mail Delivery System <mailer-daemon@{settings.MAIL_HOSTNAME}>"
    report["To"] = row.sender
    report["Subject"] = f"Undelivered mail: {row.recipient}"
    report["Date"] = email.utils.format_datetime(timezone.now())
    report["Message-ID"] = email.utils.make_msgid(domain=settings.MAIL_HOSTNAME)
    report.set_content(f"Your message to {row.recipient} could not be delivered.\n\n"
                       f"Reason: {error}\n")
    status = EmailMessage()
    status.set_content(
        f"Reporting-MTA: dns; {settings.MAIL_HOSTNAME}\n\n"
        f"Final-Recipient: rfc822; {row.recipient}\nAction: failed\nStatus: 5.0.0\n"
        f"Diagnostic-Code: smtp; {' '.join(error.split())}\n")
    report.add_attachment(status.get_content().encode(), maintype="text",
                          subtype="plain", filename="delivery-status.txt")
    report.add_attachment(delivery.header_block(data).decode("utf-8", "replace"),
                          subtype="rfc822-headers", filename="headers.txt")
    maildir.deliver(sender.home, report.as_bytes(), key=f"bounce-{row.pk}",
                    owner=maildir.mail_owner())


def send_sieve_outbox() -> int:
    """Send what Sieve filters wrote (vacation replies, notifications, redirects), as the
    mailbox whose filters wrote them — never as anyone else, whatever the script put in
    ``From:`` (``vacation :from``, ``notify :from``):

    - a message whose ``From:`` (and ``Sender:``) the mailbox may send as is signed for it
      and delivered or queued like any other mail;
    - a redirected message keeps its author: it goes only when it carries that author's
      own valid DKIM signature (mail of a hosted domain is signed by sahab), and it is
      not signed again;
    - anything else is dropped, with a warning in the log."""
    from sahab.mail import dkim, dovecot, webmail
    from sahab.mail.sendmail import parse_outbox_arguments

    outbox = dovecot.vacation_spool()
    if not outbox.is_dir():
        return 0
    sent = 0
    for arguments in sorted(outbox.glob("*.args")):
        message = arguments.with_suffix(".eml")
        try:
            owner, sender, recipients = parse_outbox_arguments(
                arguments.read_text().splitlines())
            data = message.read_bytes()
        except OSError:
            continue
        table = webmail.current_routing()
        headers = delivery.headers_of(data)
        authors = delivery.addresses_in(headers, "From")
        author = authors[0] if len(authors) == 1 else ""
        recipients = [r for r in (delivery.normalise(a) for a in recipients) if r]
        allowed = ({owner} | table.senders.get(owner, set())) if owner in table.mailboxes \
            else set()
        own = bool(author) and author in allowed and \
            set(delivery.addresses_in(headers, "Sender")) <= allowed
        signed_by = {r.domain.lower() for r in dkim.verify(data, table.records)
                     if r.verdict == "pass"} if author and not own else set()
        redirected = author in table.mailboxes and author.rpartition("@")[2] in signed_by
        if recipients and (own or redirected):
            if sender and sender not in allowed and not redirected:
                sender = owner  # bounces come back to the mailbox that sent it
            try:
                delivery.accept(delivery.Submission(
                    mail_from=sender, recipients=recipients, data=data, auth_user="",
                    helo="sieve", protocol="LOCAL",
                    sign_as=author.rpartition("@")[2] if own else ""), table, sign=own)
                sent += 1
            except delivery.Refused as refused:
                log.warning("a Sieve reply from %s was refused: %s", author, refused.reply)
        elif recipients:
            log.warning("dropped a Sieve message of %s written as %s: a mailbox's filters "
                        "send only as that mailbox", owner or "an unknown mailbox",
                        author or "nobody")
        arguments.unlink(missing_ok=True)
        message.unlink(missing_ok=True)
    return sent
