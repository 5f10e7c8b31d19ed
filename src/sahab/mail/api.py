"""JSON API of the mail pillar: the address book, the domains' DNS records, registered
letters and their receipts. Rights are checked in services and selectors."""

from __future__ import annotations

import datetime as dt

from ninja import Field, Path, Router, Schema, Status
from ninja.pagination import paginate

from sahab.core.errors import CoreError, InvalidInput, NotFound, PermissionDenied
from sahab.core.inputs import base64_content
from sahab.core.pagination import Paging
from sahab.directory import selectors as directory
from sahab.directory.models import Administration
from sahab.ledger.views import IndexOrPromise
from sahab.mail import letters, selectors, services
from sahab.mail.errors import MailError
from sahab.mail.models import Classification, Letter, MailDomain
from sahab.mail.receipts import verify_receipt

router = Router(tags=["mail"])
Id = Path(..., ge=1, le=2**63 - 1)


def _agent_required(request) -> None:
    if not (directory.is_agent(request.user) or directory.is_platform_admin(request.user)):
        raise PermissionDenied(MailError.DIRECTORY_FOR_AGENTS)


class EntryOut(Schema):
    address: str
    name: str
    kind: str
    title: str
    administration: str
    administration_code: str
    phone: str


@router.get("/mail/address-book", response=list[EntryOut],
            summary="The address book of every administration (agents)")
@paginate(Paging)
def address_book(request, q: str = ""):
    _agent_required(request)
    return [e.as_dict() for e in selectors.address_book(q.strip()[:100])]


class DnsRecordOut(Schema):
    name: str
    type: str
    value: str


class DomainOut(Schema):
    name: str
    administration: str
    records: list[DnsRecordOut]


@router.get("/mail/domains", response=list[DomainOut],
            summary="Hosted mail domains with the DNS records to publish (MX, SPF, DMARC, DKIM)")
@paginate(Paging)
def domains(request):
    _agent_required(request)
    return [{"name": d.name, "administration": d.administration.code,
             "records": [{"name": n, "type": t, "value": v}
                         for n, t, v in services.dns_records(d)]}
            for d in MailDomain.objects.filter(active=True).select_related("administration")]


class ReceiptOut(IndexOrPromise):
    kind: str
    at: dt.datetime
    document: str = Field(..., description="Signed note; check it with the receipts key")


class LetterOut(Schema):
    id: int
    reference: str
    classification: Classification
    subject: str
    sender: str
    recipient: str
    state: Letter.State
    message_sha256: str
    created_at: dt.datetime
    deliver_by: dt.datetime
    receipts: list[ReceiptOut]

    @staticmethod
    def resolve_sender(obj: Letter) -> str:
        return obj.sender.address

    @staticmethod
    def resolve_recipient(obj: Letter) -> str:
        return obj.recipient.address

    @staticmethod
    def resolve_receipts(obj: Letter) -> list:
        return list(obj.receipts.all())


class AttachmentIn(Schema):
    filename: str = Field(..., min_length=1, max_length=200)
    content_type: str = Field("application/octet-stream", max_length=100,
                              pattern=r"^[a-z0-9.+-]+/[a-z0-9.+-]+$")
    content_base64: str = Field(..., max_length=30_000_000)


class LetterIn(Schema):
    sender: str = Field(..., max_length=320, description="Your mailbox, or one delegated to you")
    to: str = Field(..., max_length=32, description="Code of the receiving administration")
    reference: str = Field(..., min_length=1, max_length=60)
    classification: Classification
    subject: str = Field(..., min_length=1, max_length=300)
    body: str = Field(..., max_length=1_000_000)
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=20)


@router.get("/mail/letters", response=list[LetterOut],
            summary="Registered letters sent from or received in your mailboxes")
@paginate(Paging)
def list_letters(request):
    return letters.letters_visible_to(request.user).prefetch_related("receipts")


@router.get("/mail/letters/{letter_id}", response=LetterOut, summary="A letter and its receipts")
def get_letter(request, letter_id: int = Id):
    return letters.get_letter(request.user, letter_id)


@router.post("/mail/letters", response={201: LetterOut},
             summary="Send a registered letter to another administration's registry office")
def send_letter(request, payload: LetterIn):
    _agent_required(request)
    sender = services.mailbox_by_address(payload.sender)
    to = Administration.objects.filter(code=payload.to.upper()).first()
    if to is None:
        raise NotFound(CoreError.NO_ADMINISTRATION, code=payload.to)
    attachments = [(a.filename, a.content_type, base64_content(a.content_base64, a.filename))
                   for a in payload.attachments]
    letter = letters.send_letter(actor=request.user, sender=sender, to=to,
                                 reference=payload.reference,
                                 classification=payload.classification,
                                 subject=payload.subject, body=payload.body,
                                 attachments=attachments)
    return Status(201, letter)


class ReceiptIn(Schema):
    document: str = Field(..., min_length=1, max_length=100_000)


class ReceiptCheckOut(Schema):
    valid: bool
    fields: dict[str, str]
    key: str


@router.post("/mail/receipts/verify", response=ReceiptCheckOut, auth=None,
             summary="Check a registered-mail receipt (anyone; 422 when it does not verify)")
def check_receipt(request, payload: ReceiptIn):
    from sahab.ledger.note import NoteError

    key = letters.verifier_key()
    try:
        fields = verify_receipt(payload.document.replace("\r\n", "\n"), key)
    except (NoteError, ValueError) as exc:
        raise InvalidInput(MailError.RECEIPT_DOES_NOT_VERIFY, error=str(exc)) from None
    return {"valid": True, "fields": fields, "key": key}
