"""What happens to a message once accepted: the same path for SMTP and the webmail.

``accept`` adds the trace and identity headers, signs mail of hosted domains with DKIM,
writes every local copy durably (with its Authentication-Results) and spools the rest
for the smart host. It returns only when all of that is on disk: the SMTP server says
250 after it, never before.
"""

from __future__ import annotations

import email.utils
import functools
import re
import uuid
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from email_validator import EmailNotValidError, validate_email

from sahab.mail import dkim, dovecot, maildir
from sahab.mail.routing import Route, Routing

if TYPE_CHECKING:
    from sahab.mail.inbound import Verdict


class Refused(Exception):
    """A refusal to report to the client as an SMTP reply (``code text``)."""

    def __init__(self, reply: str):
        super().__init__(reply)
        self.reply = reply


@dataclass
class Submission:
    mail_from: str
    recipients: list[str]
    data: bytes
    auth_user: str = ""
    peer: str = "127.0.0.1"
    helo: str = "localhost"
    protocol: str = "ESMTP"
    sign_as: str = ""  # the domain to sign for when the envelope sender is null (<>)


@dataclass
class Accepted:
    queue_id: str
    delivered: dict[str, str] = field(default_factory=dict)  # address → Maildir file
    queued: list[str] = field(default_factory=list)
    message: bytes = b""


@functools.lru_cache(maxsize=20_000)
def normalise(address: str) -> str | None:
    """A syntactically valid address, lower-cased; None if it is not one (cached: the
    same few thousand addresses come back all day, and validation costs ~1 ms)."""
    try:
        # closed networks use names like .test or .internal: no global-deliverability rule
        return validate_email(address.strip(), check_deliverability=False,
                              globally_deliverable=False,
                              test_environment=True,
                              allow_smtputf8=True).normalized.lower()
    except EmailNotValidError:
        return None


# Every character Python's str.splitlines() breaks a line at: a header value holding one
# is refused by the email package (a ValueError, not a user's error), and a receipt's
# field holding one would read as two fields.
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def is_one_line(value: str) -> bool:
    """No line break of any kind, and no NUL."""
    return "\x00" not in value and LINE_BREAKS.isdisjoint(value)


def header_block(data: bytes) -> bytes:
    """The header section of a raw message (all of it when there is no body): up to the
    first empty line, whichever line ending it uses — where every reader stops."""
    ends = [(end, len(separator) // 2) for separator in (b"\r\n\r\n", b"\n\n")
            if (end := data.find(separator)) != -1]
    if not ends:
        return data
    end, keep = min(ends)
    return data[:end + keep]


def headers_of(data: bytes):
    """Parsed header fields (compat32 is lenient: it never raises on hostile input)."""
    return BytesHeaderParser(policy=compat32).parsebytes(header_block(data))


# one plain address (addr-spec): no encoded word, quote, comment, bracket or space left
# in it, and a domain
PLAIN_ADDRESS = re.compile(r"[^\s@<>\"()=?,;:\\\[\]]+@[^\s@<>\"()=?,;:\\\[\]]+")


def addresses_in(headers, name: str) -> list[str]:
    values = [str(v) for v in headers.get_all(name, [])]
    return [addr.lower() for _, addr in email.utils.getaddresses(values) if addr]


# A header line is a field (RFC 5322 §2.2: printable name, no space, then ":") or the
# continuation of one (it starts with a space or a tab).
_FIELD_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:|[ \t]")
_RECEIVED = re.compile(rb"(?im)^received[ \t]*:")
# A message that went through this many relays is looping (a redirect to an outside
# address that forwards back, say): refused, as Postfix does at the same count
# (hopcount_limit), instead of going round for ever (RFC 5321 §6.3).
MAX_HOPS = 50


def check_headers(data: bytes) -> None:
    """Refuse messages whose headers no reader should have to cope with — and those that
    readers would read differently: a line that is not a header field (``From :`` with a
    space before the colon, ``From `` envelope lines, a line without a colon) is skipped
    by Python's parser, which checks the sender, but shown as ``From`` by Dovecot and mail
    clients; a bare CR ends a line for Python only. A message with ``MAX_HOPS`` Received:
    fields is looping."""
    block = header_block(data)
    if len(block) > settings.MAIL_MAX_HEADER_BYTES:
        raise Refused("552 5.3.4 Message header section too large")
    if b"\x00" in block:
        raise Refused("554 5.6.0 NUL character in the message header")
    lines = block.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # after the last line ending
    for number, line in enumerate(lines):
        line = line.removesuffix(b"\r")
        if not line and number == len(lines) - 1:
            break  # the empty line that ends the section
        if b"\r" in line:
            raise Refused("554 5.6.0 Bare CR in the message header")
        if not _FIELD_LINE.match(line) or (number == 0 and line[:1] in b" \t"):
            raise Refused("554 5.6.0 Malformed header field (a line of the header is "
                          "neither a field nor its continuation)")
    if len(_RECEIVED.findall(block)) >= MAX_HOPS:
        raise Refused(f"554 5.4.6 Too many hops ({MAX_HOPS} Received: fields): the message "
                      f"is looping")


# --- header fields that must not pass -------------------------------------------------------

_SUSPECT = re.compile(rb"(?im)^(bcc|x-sahab-[a-z0-9-]*|authentication-results)[ \t]*:")


def _claims_this_server(value: bytes) -> bool:
    """An Authentication-Results field naming this server as its author (RFC 8601 §5)."""
    authserv_id = value.split(b";", 1)[0].split()
    return bool(authserv_id) and authserv_id[0].decode("ascii", "replace").lower() == \
        settings.MAIL_HOSTNAME.lower()


def clean_headers(data: bytes, *, submission: bool) -> bytes:
    """The message without the header fields nobody outside may set: ``X-Sahab-*`` (the
    platform's own marks, e.g. of registered letters), ``Authentication-Results``
    claiming this server, and — on submission — ``Bcc`` (RFC 5322 §3.6.3: the blind
    recipients get the message without it, the others never see it)."""
    if not _SUSPECT.search(header_block(data)):
        return data  # the usual case: nothing to take out, nothing re-written
    fields, body = dkim_parse(data)
    kept = []
    for name, value in fields:
        lower = name.lower()
        if lower.startswith(b"x-sahab-") or (submission and lower == b"bcc") or (
                lower == b"authentication-results" and _claims_this_server(value)):
            continue
        kept.append(name + b":" + value)
    return b"".join(kept) + b"\r\n" + body


def dkim_parse(data: bytes) -> tuple[list[list[bytes]], bytes]:
    """(header fields as [name, raw value], body), as dkimpy splits a message."""
    import dkim

    return dkim.rfc822_parse(data)


def check_submitted_senders(data: bytes, allowed: set[str]) -> None:
    """A submitted message names its author, and only addresses its user may send as, in
    ``From:`` and ``Sender:``. A message without ``From:`` is refused rather than given
    one: the client then shows the user what went wrong (docs/mail.md)."""
    headers = headers_of(data)
    authors = addresses_in(headers, "From")
    if not authors:
        raise Refused("550 5.6.0 The message has no From: header")
    if not set(authors) <= allowed:
        raise Refused("550 5.7.1 The From header names an address you may not send as")
    if not set(addresses_in(headers, "Sender")) <= allowed:
        raise Refused("550 5.7.1 The Sender header names an address you may not send as")


def _queue_id() -> str:
    return uuid.uuid4().hex[:16].upper()


def _received(sub: Submission, queue_id: str, recipients: list[str]) -> bytes:
    host = settings.MAIL_HOSTNAME
    helo = "".join(ch for ch in sub.helo if ch.isprintable() and ch not in "()\\")[:100]
    target = f"\r\n\tfor <{recipients[0]}>" if len(recipients) == 1 else ""
    return (f"Received: from {helo or 'unknown'} ([{sub.peer}])\r\n\tby {host} (sahab) with "
            f"{sub.protocol} id {queue_id}{target};\r\n\t"
            f"{email.utils.format_datetime(timezone.now())}\r\n").encode()


_MESSAGE_ID = re.compile(rb"(?im)^message-id[ \t]*:")
_DATE = re.compile(rb"(?im)^date[ \t]*:")


def _missing_identity(data: bytes, sender_domain: str) -> bytes:
    """Message-ID and Date that a submission client left out (RFC 6409 §8)."""
    block = header_block(data)
    added = b""
    if not _MESSAGE_ID.search(block):
        added += f"Message-ID: {email.utils.make_msgid(domain=sender_domain)}\r\n".encode()
    if not _DATE.search(block):
        added += f"Date: {email.utils.format_datetime(timezone.now())}\r\n".encode()
    return added


def accept(sub: Submission, routing: Routing, *, sign: bool,
           verdict: Verdict | None = None) -> Accepted:
    """Deliver locally and spool for elsewhere; raises ``Refused`` or OSError, else done.

    ``sign`` is for submitted mail (SMTP submission, the webmail): it is cleaned of
    ``Bcc`` and signed for its hosted domain. Mail from the MX port comes with the
    ``verdict`` of ``inbound.authenticate`` (where it goes, and its results).
    """
    check_headers(sub.data)
    queue_id = _queue_id()
    sender_domain = sub.mail_from.rpartition("@")[2] or sub.sign_as
    data = clean_headers(sub.data, submission=sign)
    signed_here: list[dkim.Result] = []
    if sign and sender_domain in routing.domains:
        keys = routing.domains[sender_domain]
        data = _missing_identity(data, sender_domain) + data
        data = dkim.sign(data, keys) + data
        signed_here = [dkim.Result("pass", keys.domain, keys.ed25519_selector, "ed25519-sha256"),
                       dkim.Result("pass", keys.domain, keys.rsa_selector, "rsa-sha256")]
    outgoing = _received(sub, queue_id, sub.recipients) + data
    accepted = Accepted(queue_id, message=outgoing)
    local: dict[str, tuple[str, Route]] = {}
    remote: list[str] = []
    for rcpt in sub.recipients:
        if routing.is_hosted(rcpt):
            for route in routing.expand(rcpt):
                local.setdefault(route.address, (rcpt, route))
        else:
            remote.append(rcpt)
    if local:
        if verdict is not None:
            methods = verdict.methods()
        else:
            # What this server signed a moment ago passes by construction; anything else
            # (mail signed elsewhere) is verified.
            results = signed_here if signed_here else dkim.verify(data, routing.records)
            methods = [r.method() for r in results]
            authors = addresses_in(headers_of(data), "From") if signed_here else []
            if len(authors) == 1 and authors[0].rpartition("@")[2] == sender_domain:
                methods.append(f"dmarc=pass header.from={sender_domain}")  # signed: aligned
        stamped = dkim.authentication_results(settings.MAIL_HOSTNAME, methods,
                                              sub.auth_user) + outgoing
        full = [address for address, (_rcpt, route) in local.items()
                if not route.has_room_for(len(stamped))]
        if full:  # checked with the message's real size, before any copy is written
            raise Refused(f"452 4.2.2 <{full[0]}>: mailbox full")
        owner = maildir.mail_owner()
        folder = verdict.folder if verdict is not None else ""
        filtering = dovecot.lda_binary() is not None
        for address, (_rcpt, route) in local.items():
            # Each accepted message is a new delivery: a client that sends the same bytes
            # twice gets two copies, as it would anywhere else.
            if filtering and not folder and dovecot.has_filters(route.home):
                try:
                    dovecot.deliver_with_filters(route.home, address, sub.mail_from, stamped)
                except dovecot.DeliveryFailed as failed:
                    if failed.permanent:
                        raise Refused(f"550 5.7.1 <{address}>: refused by the mailbox's "
                                      f"filters") from None
                    raise OSError(f"delivery to {address}: {failed}") from None
                name = "filtered"
            else:
                name = maildir.deliver(route.home, stamped, folder=folder, owner=owner)
            route.used += len(stamped)
            accepted.delivered[address] = name or ""
    if remote:
        spool_outbound(sub.mail_from, remote, outgoing)
        accepted.queued = remote
    return accepted


def spool_dir():
    return settings.SAHAB_HOME / "mail" / "queue"


def spool_outbound(mail_from: str, recipients: list[str], data: bytes) -> None:
    """Write the message durably, then queue one row per recipient."""
    from sahab.mail.models import OutboundMessage

    directory = spool_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"{uuid.uuid4().hex}.eml"
    maildir.write_durably(directory / name, data)
    with transaction.atomic():
        OutboundMessage.objects.bulk_create([
            OutboundMessage(sender=mail_from, recipient=r, spool_name=name, size=len(data))
            for r in recipients])
