"""The webmail's work: reading messages safely, and sending from the web through the same
delivery path as SMTP submission (signed, durable, with a copy in Sent).

Messages come from anywhere: every header read and every part decoded here must survive
malformed MIME, invalid UTF-8 and hostile HTML.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage, Message

import nh3
from django.conf import settings
from django.utils.translation import gettext as _
from imapclient import imap_utf7

from sahab.core.errors import InvalidInput, PermissionDenied, TooManyAttempts
from sahab.core.ratelimit import SlidingWindow
from sahab.mail import delivery, inbound, maildir, routing
from sahab.mail.errors import MailError
from sahab.mail.models import Mailbox

PAGE_SIZE = 25
# What HTML mail may keep: text formatting, tables, links, and only inline images
# (remote images would tell the sender when and where the mail was read).
HTML_TAGS = {"a", "b", "blockquote", "br", "caption", "code", "div", "em", "font", "h1",
             "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s",
             "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
             "thead", "tr", "u", "ul"}
HTML_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "width", "height"},
                   "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"}}


# --- the routing table of this process ------------------------------------------------------

_cache_lock = threading.Lock()
_cached: routing.Routing | None = None


def current_routing() -> routing.Routing:
    """The routing table, reloaded when it changed (one small query per call)."""
    global _cached
    version = routing.current_version()
    with _cache_lock:
        if _cached is None or _cached.version != version:
            _cached = routing.load()
        return _cached


# --- reading -------------------------------------------------------------------------------

@dataclass
class Attachment:
    index: int
    filename: str
    content_type: str
    size: int


@dataclass
class Summary:
    key: str
    subject: str
    sender: str
    date: dt.datetime | None
    seen: bool
    size: int
    outside: bool = False  # from_outside


@dataclass(frozen=True)
class Folder:
    """A folder as the webmail shows it: its Maildir++ name (in URLs), its name for
    people (IMAP's modified UTF-7 decoded, RFC 3501 §5.1.3) and its depth in the tree."""

    name: str
    label: str
    depth: int


def folder_label(name: str) -> str:
    """The last level of a folder's name, decoded ("&BiMGMQY0BkoGQQ-" is "أرشيف")."""
    last = name.rsplit(".", 1)[-1]
    try:
        return imap_utf7.decode(last.encode("ascii"))
    except (UnicodeError, ValueError):
        return last


def folder_tree(names: list[str]) -> list[Folder]:
    """The folders in order, each under its parent ("Projets.2026" under "Projets",
    which is listed even when only the child exists on disk)."""
    special = [n for n in names if "." not in n and n in (
        "INBOX", maildir.SENT, maildir.DRAFTS, maildir.RECEIPTS, maildir.JUNK, maildir.TRASH)]
    others = set(names) - set(special)
    for name in list(others):  # parents that only exist through their children
        parts = name.split(".")
        others.update(".".join(parts[:i]) for i in range(1, len(parts)))
    tree = [Folder(n, folder_label(n), 0) for n in special]
    for name in sorted(others, key=lambda n: [folder_label(p).lower() for p in n.split(".")]):
        tree.append(Folder(name, folder_label(name), name.count(".")))
    return tree


def parse_date(value: str) -> dt.datetime | None:
    """A Date header as a datetime (shown in the reader's language), None if unreadable."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@dataclass
class Reading:
    subject: str
    sender: str
    to: str
    cc: str
    date: str
    message_id: str
    text: str
    html: str
    attachments: list[Attachment] = field(default_factory=list)
    letter_reference: str = ""
    auth: str = "unverified"  # verified, unverified or failed (inbound.mark)
    # the From address is on no domain this platform hosts (``from_outside``, set by the
    # reader's view): a name such as "Ministère des Finances" may then be anyone's, even
    # with a verified signature of the sender's own domain
    outside: bool = False


def parse(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=email.policy.default)


def header(message: Message, name: str) -> str:
    """A header as text; a malformed one is shown as received, never raised."""
    try:
        value = message.get(name)
        return "" if value is None else " ".join(str(value).split())
    except Exception:
        raw = message.get_all(name, failobj=[""])
        return " ".join(str(raw[0]).split()) if raw else ""


def summary(stored: maildir.StoredMessage, table: routing.Routing | None = None) -> Summary:
    with open(stored.path, "rb") as f:
        head = f.read(64 * 1024)
    message = parse(delivery.header_block(head) + b"\n")
    return Summary(stored.key, header(message, "Subject") or _("(no subject)"),
                   header(message, "From"), parse_date(header(message, "Date")), stored.seen,
                   stored.path.stat().st_size, from_outside(head, table))


def _parts(message: Message):
    """Leaf parts in order, each with its index (attachments are downloaded by index)."""
    for index, part in enumerate(message.walk()):
        if not part.is_multipart():
            yield index, part


def _decoded(part: Message) -> str:
    try:
        return part.get_content()
    except Exception:  # unknown charset or broken encoding: show what can be shown
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", errors="replace")


def sanitise_html(html: str) -> str:
    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src" and not value.startswith(("cid:", "data:")):
            return None
        return value

    return nh3.clean(html, tags=HTML_TAGS, attributes=HTML_ATTRIBUTES,
                     url_schemes={"http", "https", "mailto", "cid", "data"},
                     attribute_filter=keep, link_rel="noopener noreferrer nofollow")


def read(raw: bytes) -> Reading:
    message = parse(raw)
    text, html, attachments = "", "", []
    for index, part in _parts(message):
        try:
            disposition = part.get_content_disposition()
            filename = part.get_filename()
        except Exception:
            disposition, filename = "attachment", None
        content_type = part.get_content_type()
        if disposition != "attachment" and not filename and content_type == "text/plain" \
                and not text:
            text = _decoded(part)
        elif disposition != "attachment" and not filename and content_type == "text/html" \
                and not html:
            html = sanitise_html(_decoded(part))
        else:
            payload = part.get_payload(decode=True) or b""
            attachments.append(Attachment(index, filename or f"part-{index}", content_type,
                                          len(payload)))
    letter = header(message, "X-Sahab-Letter")
    reference = letter.split("reference=", 1)[1].split(";", 1)[0] if "reference=" in letter \
        else ""
    return Reading(header(message, "Subject"), header(message, "From"), header(message, "To"),
                   header(message, "Cc"), header(message, "Date"), header(message, "Message-ID"),
                   text, html, attachments, reference,
                   inbound.mark(message, settings.MAIL_HOSTNAME))


def from_outside(raw: bytes, table: routing.Routing | None = None) -> bool:
    """Whether a message comes from outside the state's mail, decided on its raw From
    field as the receiving server reads it (never on the decoded text a reader sees: an
    encoded word can spell "dg@finances.tn" inside a display name). Inside means exactly
    one plain address, on a domain hosted here; anything else is outside. ``table``: the
    routing table, for a caller that asks for many messages."""
    headers = delivery.headers_of(raw)
    addresses = delivery.addresses_in(headers, "From")
    if len(headers.get_all("From", [])) != 1 or len(addresses) != 1 \
            or not delivery.PLAIN_ADDRESS.fullmatch(addresses[0]):
        return True
    domain = addresses[0].rpartition("@")[2]
    return domain not in (table or current_routing()).domains


def attachment(raw: bytes, index: int) -> tuple[str, str, bytes]:
    """(filename, content type, bytes) of the part ``index``; KeyError when none."""
    for i, part in _parts(parse(raw)):
        if i == index:
            try:
                filename = part.get_filename() or f"part-{index}"
            except Exception:
                filename = f"part-{index}"
            return filename, part.get_content_type(), part.get_payload(decode=True) or b""
    raise KeyError(index)


def search(messages: list[maildir.StoredMessage], query: str,
           limit: int = 2000) -> list[maildir.StoredMessage]:
    """Messages whose headers or text contain every word of ``query`` (case-insensitive)."""
    words = [w.lower() for w in query.split() if w]
    found = []
    for stored in messages[:limit]:
        try:
            reading = read(stored.path.read_bytes())
        except OSError:
            continue
        haystack = " ".join([reading.subject, reading.sender, reading.to, reading.cc,
                             reading.text, *(a.filename for a in reading.attachments)]).lower()
        if all(w in haystack for w in words):
            found.append(stored)
    return found


# --- sending -------------------------------------------------------------------------------

def _addresses(text: str, field_name: str) -> list[str]:
    found = []
    for name, address in email.utils.getaddresses([text]):
        normal = delivery.normalise(address) if address else None
        if normal is None:
            raise InvalidInput(MailError.ADDRESS_INVALID, value=address or name,
                               field_errors={field_name: [_("Invalid address.")]})
        found.append(normal)
    return found


def one_line(value: str, field_name: str, max_length: int = 900) -> str:
    """Refuse header injection: a header value from a form is one line."""
    if not delivery.is_one_line(value) or len(value) > max_length:
        raise InvalidInput(MailError.FIELD_NOT_ONE_LINE,
                           field_errors={field_name: [_("One line only.")]})
    return value.strip()


def compose(*, mailbox: Mailbox, to: str, cc: str, subject: str, body: str,
            attachments: list[tuple[str, str, bytes]], in_reply_to: str = "",
            references: str = "", bcc: str = "") -> tuple[EmailMessage, list[str]]:
    """The message and its recipients, every field checked. Blind copies are recipients
    only: the message never names them."""
    recipients = _addresses(one_line(to, "to"), "to") + \
        (_addresses(one_line(cc, "cc"), "cc") if cc.strip() else []) + \
        (_addresses(one_line(bcc, "bcc"), "bcc") if bcc.strip() else [])
    if not recipients:
        raise InvalidInput(MailError.NO_RECIPIENT,
                           field_errors={"to": [_("Required.")]})
    message = EmailMessage()
    message["From"] = email.utils.formataddr((mailbox.display_name, mailbox.address))
    message["To"] = one_line(to, "to")
    if cc.strip():
        message["Cc"] = one_line(cc, "cc")
    message["Subject"] = one_line(subject, "subject")
    message["Date"] = email.utils.formatdate(localtime=False)
    message["Message-ID"] = email.utils.make_msgid(domain=mailbox.domain.name)
    if in_reply_to:
        message["In-Reply-To"] = one_line(in_reply_to, "in_reply_to")
        message["References"] = one_line(f"{references} {in_reply_to}".strip(), "references",
                                         4000)
    message.set_content(body)
    for filename, content_type, content in attachments:
        maintype, _slash, subtype = content_type.partition("/")
        message.add_attachment(content, maintype=maintype or "application",
                               subtype=subtype or "octet-stream",
                               filename=one_line(filename, "attachments", 200) or "attachment")
    return message, list(dict.fromkeys(recipients))


# The submission port's limits hold for the webmail too: at most SAHAB_MAIL_MAX_RECIPIENTS
# recipients a message, SAHAB_MAIL_RATE_PER_MINUTE messages a sending mailbox and minute
# (in this process, as for SMTP).
_sent = SlidingWindow(60.0)
_sent_lock = threading.Lock()


def send(*, actor, mailbox: Mailbox, message: EmailMessage,
         recipients: list[str]) -> delivery.Accepted:
    """Send from the web as submission would, within the same limits; keeps a copy in the
    Sent folder."""
    import time

    from sahab.mail import services

    if not services.can_use_mailbox(actor, mailbox, send=True):
        raise PermissionDenied(MailError.SENDER_FORBIDDEN)
    if len(recipients) > settings.MAIL_MAX_RECIPIENTS:
        raise InvalidInput(MailError.TOO_MANY_RECIPIENTS, max=settings.MAIL_MAX_RECIPIENTS,
                           field_errors={"to": [_("Too many recipients.")]})
    with _sent_lock:
        allowed = _sent.allow(mailbox.address, settings.MAIL_RATE_PER_MINUTE, time.monotonic())
    if not allowed:
        raise TooManyAttempts(MailError.SENDING_TOO_FAST)
    table = current_routing()
    unknown = [r for r in recipients if table.is_hosted(r) and not table.knows(r)]
    if unknown:
        raise InvalidInput(MailError.NO_MAILBOX, address=", ".join(unknown),
                           field_errors={"to": [_("Unknown address.")]})
    data = message.as_bytes(policy=email.policy.SMTP)
    if len(data) > services.settings.MAIL_MAX_MESSAGE_BYTES:
        raise InvalidInput(MailError.MESSAGE_TOO_LARGE)
    user = getattr(actor, "username", "")
    accepted = delivery.accept(delivery.Submission(
        mail_from=mailbox.address, recipients=recipients, data=data, auth_user=mailbox.address,
        peer="127.0.0.1", helo=f"webmail ({user})", protocol="HTTP"), table, sign=True)
    maildir.deliver(mailbox.home, accepted.message, folder=maildir.SENT, flags="S",
                    owner=maildir.mail_owner())
    return accepted
