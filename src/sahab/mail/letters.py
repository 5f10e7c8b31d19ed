"""Registered official correspondence (courrier officiel) with signed receipts.

In the manner of registered e-mail services (eIDAS ERDS, Italy's PEC): the platform
issues a receipt when it accepts a letter, when the letter is in the recipient
registry's mailbox, when it could not be delivered within the set delay, and when the
registry opens it. Each receipt is a signed note (C2SP signed-note, Ed25519, the
platform's receipts key) that anybody can verify offline, and a ledger entry that holds
only hashes. The sender's mailbox gets each receipt as a message too.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import uuid
from email.message import EmailMessage
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from sahab.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sahab.directory import selectors as directory
from sahab.directory.models import Administration
from sahab.ledger import note
from sahab.ledger import services as ledger
from sahab.mail import dkim, maildir, routing, selectors
from sahab.mail.delivery import is_one_line
from sahab.mail.errors import MailError
from sahab.mail.events import MailEvent
from sahab.mail.models import Classification, Letter, Mailbox, Receipt
from sahab.mail.receipts import receipt_text

# --- the receipts key --------------------------------------------------------------------

def receipts_key_path() -> Path:
    return settings.SAHAB_HOME / "keys" / "mail-receipts-ed25519.pem"


def ensure_receipts_key() -> bool:
    from sahab.core import keys

    return keys._ensure_ed25519(receipts_key_path())


def signer() -> note.Signer:
    from cryptography.hazmat.primitives import serialization

    ensure_receipts_key()
    key = serialization.load_pem_private_key(receipts_key_path().read_bytes(), password=None)
    return note.Signer(settings.MAIL_RECEIPTS_NAME, key)


def verifier_key() -> str:
    """The public key receipts are checked with (a C2SP verifier key)."""
    return signer().verifier.vkey()


# --- sending -----------------------------------------------------------------------------

def registry_of(administration: Administration) -> Mailbox | None:
    """The registry office mailbox of an administration (or of its nearest ancestor)."""
    codes = directory.lineage_codes(administration)
    # one registry per domain (services.create_shared_mailbox); were there several, the
    # oldest keeps the letters
    boxes = {m.domain.administration.code: m for m in Mailbox.objects.filter(
        kind=Mailbox.Kind.REGISTRY, active=True,
        domain__administration__code__in=codes).select_related("domain__administration")
        .order_by("-pk")}
    for code in codes:
        if code in boxes:
            return boxes[code]
    return None


def letter_store() -> Path:
    path = settings.SAHAB_HOME / "mail" / "letters"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _build(sender: Mailbox, recipient: Mailbox, reference: str, classification: str,
           subject: str, body: str, attachments: list[tuple[str, str, bytes]],
           message_id: str) -> bytes:
    message = EmailMessage()
    message["From"] = email.utils.formataddr((sender.display_name, sender.address))
    message["To"] = email.utils.formataddr((recipient.display_name, recipient.address))
    message["Subject"] = f"[{reference}] {subject}"
    message["Date"] = email.utils.format_datetime(timezone.now())
    message["Message-ID"] = message_id
    message["X-Sahab-Letter"] = f"reference={reference}; classification={classification}"
    message.set_content(body)
    for filename, content_type, content in attachments:
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(content, maintype=maintype or "application",
                               subtype=subtype or "octet-stream", filename=filename)
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def _plain_name(name: str) -> bool:
    return 0 < len(name) <= 200 and is_one_line(name) and name.isprintable() \
        and not any(c in name for c in "/\\") and name.strip(". ") != ""


def send_letter(*, actor, sender: Mailbox, to: Administration, reference: str,
                classification: str, subject: str, body: str,
                attachments: list[tuple[str, str, bytes]] | None = None) -> Letter:
    """Accept a registered letter (acceptance receipt) and try to deliver it at once."""
    from sahab.mail import services

    agent = directory.agent_of(actor)
    if agent is None or not services.can_use_mailbox(actor, sender, send=True):
        raise PermissionDenied(MailError.LETTER_SENDER_FORBIDDEN)
    reference, subject = reference.strip(), subject.strip()
    errors = {}
    if not reference or len(reference) > 60 or not is_one_line(reference):
        errors["reference"] = [_("A reference of 1 to 60 characters on one line.")]
    if not subject or len(subject) > 300 or not is_one_line(subject):
        errors["subject"] = [_("A subject of 1 to 300 characters on one line.")]
    if classification not in Classification.values:
        errors["classification"] = [_("Choose a classification.")]
    if not all(_plain_name(name) for name, _type, _content in attachments or []):
        # a letter's attachments are evidence: their names are plain file names, which
        # no reader takes for a path (``../../x``) or a second header line
        errors["attachments"] = [_("Attachment names are plain file names on one line.")]
    if errors:
        raise InvalidInput(MailError.LETTER_INCOMPLETE, field_errors=errors)
    recipient = registry_of(to)
    if recipient is None:
        raise InvalidInput(MailError.NO_REGISTRY_MAILBOX, name=to.name,
                           field_errors={"to": [_("No registry mailbox.")]})
    if Letter.objects.filter(sender=sender, reference=reference).exists():
        raise Conflict(MailError.LETTER_ALREADY_SENT, reference=reference)
    message_id = email.utils.make_msgid(idstring="letter", domain=sender.domain.name)
    raw = _build(sender, recipient, reference, classification, subject, body,
                 attachments or [], message_id)
    raw = dkim.sign(raw, routing.domain_keys(sender.domain)) + raw
    spool_name = f"{uuid.uuid4().hex}.eml"
    maildir.write_durably(letter_store() / spool_name, raw)
    with transaction.atomic():
        letter = Letter.objects.create(
            reference=reference, classification=classification, subject=subject,
            sender=sender, sent_by=agent, recipient=recipient, message_id=message_id,
            message_sha256=hashlib.sha256(raw).hexdigest(), spool_name=spool_name,
            deliver_by=timezone.now() + dt.timedelta(hours=settings.MAIL_LETTER_DELIVERY_HOURS))
        _issue(letter, Receipt.Kind.ACCEPTANCE, actor)
    maildir.deliver(sender.home, raw, folder=maildir.SENT, flags="S", owner=maildir.mail_owner())
    attempt_delivery(letter)
    letter.refresh_from_db()
    return letter


def send_from_mail_client(*, login: str, mail_from: str, registry: str, data: bytes) -> Letter:
    """A letter written in a mail client and sent to ``<registry>+lettre@<domain>``:
    the subject is ``[REFERENCE] subject``; the text and attachments are the message's.
    The letter is then rebuilt, signed and receipted exactly as one from the webmail
    (its classification is general correspondence). Raises ``delivery.Refused``."""
    import email
    import email.policy

    from django.contrib.auth import get_user_model

    from sahab.core.errors import DomainError
    from sahab.mail import webmail
    from sahab.mail.delivery import Refused

    owner = Mailbox.objects.filter(address=login, agent__isnull=False).select_related(
        "agent").first()
    sender = Mailbox.objects.filter(address=mail_from).select_related("domain").first()
    target = Mailbox.objects.filter(address=registry, kind=Mailbox.Kind.REGISTRY) \
        .select_related("domain__administration").first()
    if owner is None or sender is None or target is None:
        raise Refused("550 5.7.1 Registered letters are sent by agents, to a registry office")
    message = email.message_from_bytes(data, policy=email.policy.default)
    subject = webmail.header(message, "Subject")
    reference, _, title = subject.partition("]")
    if not subject.startswith("[") or not title.strip():
        raise Refused("550 5.6.0 The subject of a registered letter is [REFERENCE] subject")
    reading = webmail.read(data)
    attachments = [webmail.attachment(data, a.index) for a in reading.attachments]
    actor = get_user_model().objects.get(pk=owner.agent.user_id)
    try:
        return send_letter(actor=actor, sender=sender, to=target.domain.administration,
                           reference=reference[1:].strip(), classification="general",
                           subject=title.strip(), body=reading.text, attachments=attachments)
    except DomainError as refused:
        raise Refused(f"550 5.7.1 {' '.join(str(refused.detail).split())}") from None


# --- receipts ----------------------------------------------------------------------------

def _issue(letter: Letter, kind: str, actor, detail: str = "",
           person: dict[str, str] | None = None) -> Receipt:
    """Sign a receipt, write its ledger entry and keep it — in the caller's transaction.
    The entry is pending (``ledger.enqueue``): letters between administrations never
    queue on the ledger's append lock nor hold it while their transaction is open; the
    worker's sequencer gives the entry, then the receipt, its index within a second."""
    now = timezone.now()
    fields = {
        "kind": kind, "letter": str(letter.pk), "reference": letter.reference,
        "classification": letter.classification, "from": letter.sender.address,
        "to": letter.recipient.address, "message-id": letter.message_id,
        "message-sha256": letter.message_sha256,
        "at": now.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }
    if detail:
        fields["detail"] = " ".join(detail.split())[:200]
    for key, value in (person or {}).items():
        fields[key] = " ".join(value.split())[:300]
    text = receipt_text(fields).encode()
    document = text + b"\n" + signer().signature_line(text).encode()
    promise = ledger.enqueue(
        MailEvent(f"mail.letter.{kind}"), letter.subject_uri, actor,
        data={"receipt_sha256": hashlib.sha256(document).hexdigest(),
              "message_sha256": letter.message_sha256,
              "from_administration": letter.sender.domain.administration.code,
              "to_administration": letter.recipient.domain.administration.code})
    receipt = Receipt.objects.create(letter=letter, kind=kind, at=now,
                                     document=document.decode(),
                                     ledger_pending=promise.pending)
    transaction.on_commit(lambda: _mail_receipt(letter, receipt))
    return receipt


def receipt_entry(receipt: dict) -> ledger.HeldEntry:
    """The pending entry a receipt row holds, from its ``kind``, ``letter_id`` and
    ``document`` (the entry holds the document's hash: ``ledger.keeps_pending_entries``)."""
    return ledger.HeldEntry(
        f"mail.letter.{receipt['kind']}", f"mail:letter:{receipt['letter_id']}",
        {"receipt_sha256": hashlib.sha256(receipt["document"].encode()).hexdigest()})


def _mail_receipt(letter: Letter, receipt: Receipt) -> None:
    """Put the receipt in the sender's Receipts folder, as PEC does, with the document."""
    message = EmailMessage()
    message["From"] = f"sahab <postmaster@{settings.MAIL_HOSTNAME}>"
    message["To"] = letter.sender.address
    message["Subject"] = f"{receipt.get_kind_display()}: [{letter.reference}] {letter.subject}"
    message["Date"] = email.utils.format_datetime(receipt.at)
    message["Message-ID"] = email.utils.make_msgid(idstring=f"receipt{receipt.pk}",
                                                   domain=settings.MAIL_HOSTNAME)
    message.set_content(_("Receipt of the letter %(reference)s (%(kind)s). The attached "
                          "document is signed; verify it with `sahab mail verify-receipt`.")
                        % {"reference": letter.reference, "kind": receipt.get_kind_display()})
    message.add_attachment(receipt.document.encode(), maintype="text", subtype="plain",
                           filename=f"receipt-{letter.pk}-{receipt.kind}.txt")
    maildir.deliver(letter.sender.home, message.as_bytes(), folder=maildir.RECEIPTS,
                    key=f"receipt-{receipt.pk}", owner=maildir.mail_owner())


def attempt_delivery(letter: Letter) -> bool:
    """Put the letter into the registry mailbox; after the deadline, give up with a
    non-delivery receipt. True once delivered."""
    if letter.state != Letter.State.ACCEPTED:
        return letter.state in (Letter.State.DELIVERED, Letter.State.OPENED)
    recipient = letter.recipient
    raw = (letter_store() / letter.spool_name).read_bytes()
    error = ""
    if not recipient.active:
        error = "the recipient mailbox is disabled"
    elif recipient.used_bytes + len(raw) > recipient.quota_bytes:
        error = "the recipient mailbox is full"
    if not error:
        try:
            name = maildir.deliver(recipient.home, raw, key=f"letter-{letter.message_sha256}",
                                   owner=maildir.mail_owner())
        except OSError as exc:
            error = f"storage error: {exc.strerror}"
        else:
            with transaction.atomic():
                locked = Letter.objects.select_for_update().get(pk=letter.pk)
                if locked.state == Letter.State.ACCEPTED:
                    locked.state = Letter.State.DELIVERED
                    locked.delivered_file = (name or "").split(":")[0]
                    locked.save(update_fields=["state", "delivered_file"])
                    _issue(locked, Receipt.Kind.DELIVERY, directory.SYSTEM)
            return True
    with transaction.atomic():
        locked = Letter.objects.select_for_update().get(pk=letter.pk)
        locked.attempts += 1
        locked.last_error = error
        if timezone.now() >= locked.deliver_by:
            locked.state = Letter.State.NOT_DELIVERED
            _issue(locked, Receipt.Kind.NON_DELIVERY, directory.SYSTEM, detail=error)
        locked.save(update_fields=["attempts", "last_error", "state"])
    return False


def _person(agent) -> dict[str, str]:
    """Who opened a letter, as the receipt names them."""
    user = agent.user
    name = user.get_full_name() or user.username
    mailbox = Mailbox.objects.filter(agent=agent).values_list("address", flat=True).first()
    return {"opened-by": f"{name} <{mailbox}>" if mailbox else name,
            "opened-by-administration": f"{agent.administration.code} "
                                        f"{agent.administration.name_fr}"}


def record_opening(letter: Letter, actor, *, stored_key: str) -> Receipt | None:
    """A named person opened the delivered letter itself: the file ``stored_key`` of the
    registry mailbox (in the webmail, or by fetching its body over IMAP). Nothing else —
    a message that merely carries the letter's Message-ID, a header-only fetch, a login
    with the registry's own password — earns an opening receipt."""
    agent = directory.agent_of(actor)
    if agent is None or not stored_key or stored_key != letter.delivered_file:
        return None
    from sahab.mail import services

    if not services.can_use_mailbox(actor, letter.recipient) or \
            letter.recipient.agent_id == agent.pk:
        return None
    with transaction.atomic():
        locked = Letter.objects.select_for_update().get(pk=letter.pk)
        if locked.state != Letter.State.DELIVERED:
            return None
        locked.state = Letter.State.OPENED
        locked.save(update_fields=["state"])
        return _issue(locked, Receipt.Kind.OPENING, actor, person=_person(agent))


def opened_over_imap(*, user: str, mailbox: str, uid: int) -> Receipt | None:
    """Dovecot saw ``user`` fetch the body of message ``uid`` in ``mailbox`` (their
    ``shared/<registry address>/INBOX``): the opening receipt, if that message is a
    delivered letter."""
    from django.contrib.auth import get_user_model

    from sahab.mail import dovecot

    parts = mailbox.split("/")
    if len(parts) != 3 or parts[0] != "shared" or parts[2] != "INBOX":
        return None  # a mailbox read with its own password names nobody
    registry = Mailbox.objects.filter(address=parts[1].lower(), kind=Mailbox.Kind.REGISTRY) \
        .select_related("domain").first()
    reader = Mailbox.objects.filter(address=user.lower(), agent__isnull=False) \
        .select_related("agent").first()
    if registry is None or reader is None:
        return None
    stored_key = dovecot.file_of_uid(registry.maildir, uid)
    letter = letter_in(registry, stored_key) if stored_key else None
    if letter is None:
        return None
    actor = get_user_model().objects.get(pk=reader.agent.user_id)
    return record_opening(letter, actor, stored_key=stored_key)


def letter_in(mailbox: Mailbox, stored_key: str) -> Letter | None:
    """The registered letter that the delivered file ``stored_key`` of ``mailbox`` is."""
    return Letter.objects.filter(recipient=mailbox, delivered_file=stored_key) \
        .select_related("recipient__domain").first()


def advance_letters() -> int:
    """Timer: retry deliveries, give up after the deadline."""
    done = 0
    for letter in Letter.objects.filter(state=Letter.State.ACCEPTED).select_related(
            "recipient__domain", "sender__domain"):
        done += attempt_delivery(letter)
    return done


def letters_visible_to(user):
    """Letters sent from, or received in, mailboxes the user may use."""
    from django.db.models import Q

    agent = directory.agent_of(user)
    if agent is None:
        return Letter.objects.none()
    boxes = Mailbox.objects.filter(selectors.usable_by(agent))
    return Letter.objects.filter(Q(sender__in=boxes) | Q(recipient__in=boxes)).select_related(
        "sender__domain__administration", "recipient__domain__administration").distinct()


def get_letter(user, pk: int) -> Letter:
    letter = letters_visible_to(user).filter(pk=pk).first()
    if letter is None:
        raise NotFound(MailError.NO_SUCH_LETTER)
    return letter
