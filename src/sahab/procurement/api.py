"""JSON API of procurement: public reads, and the writes of buyers, evaluators,
companies and the complaints body (rights are checked in the services)."""

import base64
import datetime as dt
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import Field, Path, Query, Router, Schema, Status
from ninja.pagination import paginate

from sahab.core.errors import CoreError, InvalidInput, NotFound
from sahab.core.inputs import base64_content
from sahab.core.pagination import SEARCH_WINDOW, Paging, SearchPaging
from sahab.directory.models import Administration, Company
from sahab.ledger.views import IndexOrPromise, promise_url
from sahab.procurement import sealing, selectors, services
from sahab.procurement.errors import ProcurementError
from sahab.procurement.models import (
    Award,
    AwardCriteria,
    Bid,
    BidLot,
    Complaint,
    Contract,
    Procedure,
    Question,
    State,
    Tender,
)

router = Router(tags=["procurement"])
Id = Path(..., ge=1, le=2**63 - 1)


class ItemIn(Schema):
    description: str = Field(..., min_length=1, max_length=300)
    cpv: str | None = Field(None, pattern=r"^\d{8}-\d$")
    quantity: Decimal = Field(..., gt=0, lt=10**9)
    unit: str = Field(..., min_length=1, max_length=30)


class LotIn(Schema):
    title: str = Field(..., min_length=1, max_length=300)
    cpv: str = Field(..., pattern=r"^\d{8}-\d$")
    estimated_value: Decimal = Field(..., gt=0, lt=10**12, decimal_places=3)
    items: list[ItemIn] = Field([], max_length=200)


class TenderIn(Schema):
    buyer: str = Field(..., max_length=32)
    title: str = Field(..., min_length=1, max_length=300)
    description: str = Field("", max_length=20000)
    procedure: Procedure
    award_criteria: AwardCriteria = AwardCriteria.LOWEST_PRICE
    price_weight: int = Field(100, ge=1, le=100)
    enquiry_deadline: dt.datetime
    submission_deadline: dt.datetime
    standstill_days: int = Field(10, ge=0, le=60)
    lots: list[LotIn] = Field(..., min_length=1, max_length=100)
    invited: list[int] = Field([], max_length=200, description="Company ids (negotiated).")
    framework: str | None = Field(None, max_length=40)
    compliance_criteria: list[str] | None = Field(
        None, max_length=30, description="What every bid must comply with; default: "
        "administrative documents, bid bond, technical conformity.")
    plan_item: int | None = Field(None, ge=1, le=2**63 - 1,
                                  description="The planned purchase this tender carries out.")


class ItemOut(Schema):
    description: str
    cpv: str
    quantity: Decimal
    unit: str


class LotOut(Schema):
    number: int
    title: str
    cpv: str
    estimated_value: Decimal
    items: list[ItemOut]
    cancelled: bool
    suspended_since: dt.datetime | None = Field(
        None, description="Suspended by admitted complaints since then.")
    needs_evaluation: bool = Field(False, description="An upheld complaint invalidated the "
                                   "lot's evaluation: it is evaluated again before its award.")

    @staticmethod
    def resolve_items(obj) -> list:
        return list(obj.items.all())


class StepOut(IndexOrPromise):
    """A step of the procedure; a question asked waits for its index a moment."""

    type: str
    at: dt.datetime


class TenderSummary(Schema):
    reference: str
    title: str
    buyer: str
    procedure: Procedure
    state: State
    suspended: bool
    estimated_value: Decimal
    currency: str
    enquiry_deadline: dt.datetime
    submission_deadline: dt.datetime
    published_at: dt.datetime | None

    @staticmethod
    def resolve_buyer(obj: Tender) -> str:
        return obj.buyer.code


class DocumentOut(Schema):
    id: int
    name: str
    version: int
    media_type: str
    size: int
    sha256: str


class QuestionOut(Schema):
    id: int
    text: str
    answer: str
    asked_at: dt.datetime
    answered_at: dt.datetime | None


class OpenedBidOut(Schema):
    bid: int
    company: str
    matricule_fiscal: str
    status: str
    commitment: str
    ledger_index: int | None
    prices: dict[str, Decimal]


class AwardOut(Schema):
    id: int
    lot: int
    supplier: str
    value: Decimal
    status: str
    standstill_until: dt.datetime | None


class ComplaintOut(Schema):
    """A complaint and each ruling on it, public with the ledger index of each step."""

    id: int
    company: str
    kind: str = Field(..., description="documents | award (the evaluation or award of a lot)")
    lots: list[int]
    text: str
    status: str = Field(..., description="filed | admitted | inadmissible | lapsed | upheld | "
                        "rejected")
    filed_at: dt.datetime
    filed_index: int | None
    admissibility_due: dt.datetime
    admissibility_reason: str
    admissibility_at: dt.datetime | None
    admissibility_index: int | None
    suspended_from: dt.datetime | None
    suspended_until: dt.datetime | None
    decide_by: dt.datetime | None
    decision: str
    remedy: str = Field(..., description="reevaluate | amend_documents | cancel_lot, when "
                        "upheld")
    decided_at: dt.datetime | None
    decided_index: int | None
    remedied_at: dt.datetime | None
    remedied_index: int | None

    @staticmethod
    def resolve_company(obj: Complaint) -> str:
        return obj.company.name

    @staticmethod
    def resolve_lots(obj: Complaint) -> list[int]:
        return sorted(lot.number for lot in obj.lots.all())

    @staticmethod
    def resolve_admissibility_due(obj: Complaint) -> dt.datetime:
        return services.admissibility_due(obj)

    @staticmethod
    def resolve_decide_by(obj: Complaint) -> dt.datetime | None:
        return services.decision_due(obj)


class AmendedDocumentOut(Schema):
    id: int
    name: str
    version: int
    sha256: str
    size: int


class AmendmentOut(Schema):
    """An amendment of a published tender (avis rectificatif), public with its ledger
    index: the rationale and what changed."""

    number: int
    amended_at: dt.datetime
    rationale: str
    old_enquiry_deadline: dt.datetime
    new_enquiry_deadline: dt.datetime
    old_submission_deadline: dt.datetime
    new_submission_deadline: dt.datetime
    documents: list[AmendedDocumentOut] = Field(..., description="The new document versions.")
    old_compliance_criteria: list[str] | None = Field(
        None, description="The compliance criteria before, when the amendment changed them.")
    new_compliance_criteria: list[str] | None = Field(
        None, description="The compliance criteria after, when the amendment changed them.")
    lots: list[dict] = Field(..., description="The lots added or changed: number, old terms "
                             "(null for an added lot), new terms (title, cpv, "
                             "estimated_value), items of an added lot.")
    ledger_index: int | None


class ContractAmendmentOut(Schema):
    """A contract amendment (avenant): applied at once within the ceiling, or proposed
    and then approved or refused by a control agent."""

    id: int
    status: str = Field(..., description="applied | proposed | approved | refused")
    old_value: Decimal
    new_value: Decimal
    old_end_date: dt.date
    new_end_date: dt.date
    justification: str
    cumulative_increase: Decimal = Field(..., description="Percent over the signed value "
                                         "the contract reaches with this amendment.")
    created_at: dt.datetime
    ledger_index: int | None
    decided_at: dt.datetime | None
    decision_reason: str
    decided_index: int | None


class ContractOut(Schema):
    id: int
    lot: int
    supplier: str
    value: Decimal
    start_date: dt.date
    end_date: dt.date
    status: str = Field(..., description="pending (signed by the buyer, awaiting the "
                        "supplier) | active | completed | terminated")
    terms_sha256: str = Field(..., description="SHA-256 of the canonical terms both parties "
                              "sign (value, dates, lot, supplier).")
    signed_at: dt.datetime = Field(..., description="The buyer's signature.")
    signed_index: int | None
    supplier_signed_at: dt.datetime | None = Field(..., description="The supplier's "
                                                   "countersignature: in force from then.")
    supplier_signed_index: int | None
    completed_at: dt.datetime | None
    final_value: Decimal | None
    completion_reason: str
    amendments: list[ContractAmendmentOut]


class TenderDetail(Schema):
    reference: str
    title: str
    buyer: str
    procedure: Procedure
    state: State
    suspended: bool
    estimated_value: Decimal
    currency: str
    enquiry_deadline: dt.datetime
    submission_deadline: dt.datetime
    published_at: dt.datetime | None
    description: str
    award_criteria: AwardCriteria
    price_weight: int
    compliance_criteria: list[str]
    standstill_until: dt.datetime | None
    committee: dict = Field(..., description="The opening committee: threshold and members' "
                            "X25519 public keys (base64), to seal bids to (sahab-bid/2).")
    evaluation: dict = Field(..., description="The evaluation committee (members by ledger "
                             "id, chair, quorum), its reports with each approval or dissent, "
                             "and the explanations of abnormally low prices.")
    lots: list[LotOut]
    documents: list[DocumentOut]
    questions: list[QuestionOut]
    bids: list[OpenedBidOut]
    awards: list[AwardOut]
    complaints: list[ComplaintOut]
    amendments: list[AmendmentOut]
    contracts: list[ContractOut]
    steps: list[StepOut]


def _detail(tender: Tender) -> dict:
    opened = tender.opened_at is not None
    bids = []
    if opened:  # before the opening nothing about bids is shown, not even their number
        for bid in selectors.opened_bids(tender):
            bids.append({"bid": bid.pk, "company": bid.company.name,
                         "matricule_fiscal": bid.company.matricule_fiscal,
                         "status": bid.status, "commitment": bid.commitment,
                         "ledger_index": bid.ledger_index,
                         "prices": {str(p.lot.number): p.price for p in bid.lot_prices.all()}})
    return {
        "reference": tender.reference, "title": tender.title, "buyer": tender.buyer.code,
        "procedure": tender.procedure, "state": tender.state, "suspended": tender.suspended,
        "estimated_value": tender.estimated_value, "currency": tender.currency,
        "enquiry_deadline": tender.enquiry_deadline,
        "submission_deadline": tender.submission_deadline, "published_at": tender.published_at,
        "description": tender.description, "award_criteria": tender.award_criteria,
        "price_weight": tender.price_weight, "standstill_until": tender.standstill_until,
        "compliance_criteria": tender.compliance_criteria,
        "committee": {"threshold": tender.committee_threshold,
                      "members": [{"position": m.position,
                                   "public_key": base64.b64encode(bytes(m.public_key)).decode(),
                                   "released": m.released_at is not None}
                                  for m in tender.committee.all()]},
        "evaluation": selectors.evaluation(tender),
        "lots": list(tender.lots.all()),
        "documents": list(tender.documents.all()),
        "questions": list(tender.questions.exclude(answered_at=None)),
        "bids": bids,
        "awards": [{"id": a.pk, "lot": a.lot.number, "supplier": a.supplier.name,
                    "value": a.value, "status": a.status,
                    "standstill_until": a.standstill_until}
                   # lot by lot, in the order decided (an award an upheld complaint
                   # cancelled before its successor), the same on every database
                   for a in tender.awards.select_related("lot", "supplier")
                   .order_by("lot__number", "decided_at", "pk")],
        "complaints": list(tender.complaints.select_related("company")
                           .prefetch_related("lots")),
        "amendments": list(tender.amendments.all()),
        "contracts": [_contract_out(c) for c in tender.contracts.select_related(
            "award__lot", "supplier").prefetch_related("amendments").order_by("pk")],
        "steps": list(tender.steps.all()),
    }


def _tender(request, reference: str) -> Tender:
    """The tender the caller may see."""
    tender = selectors.tenders_visible_to(request.user).filter(reference=reference).first()
    if tender is None:
        raise NotFound(ProcurementError.NO_TENDER, reference=reference)
    return tender


class TenderFilter(Schema):
    q: str = Field("", max_length=100)
    state: State | None = None
    buyer: str = Field("", max_length=32)
    procedure: Procedure | None = None


def _search_past_window(request, window: int):
    raise InvalidInput(ProcurementError.SEARCH_PAST_WINDOW, window=window,
                       url=request.build_absolute_uri(reverse("ocds:bulk_releases")))


@router.get("/procurement/tenders", response=list[TenderSummary], auth=None,
            summary="Published tenders (public)",
            description=f"With q, the list counts and pages through the first "
                        f"{SEARCH_WINDOW:,} matches (count_capped says when more match); "
                        "every tender is in the bulk OCDS files.")
@paginate(SearchPaging, past_window=_search_past_window)
def list_tenders(request, filters: Query[TenderFilter]):
    return selectors.public_tenders(q=filters.q, state=filters.state or "",
                                    buyer=filters.buyer.upper(),
                                    procedure=filters.procedure or "")


@router.get("/procurement/tenders/{reference}", response=TenderDetail, auth=None,
            summary="A tender with its lots, documents, answers, opening report, awards, "
                    "contracts and the ledger index of every step (public once published)")
def get_tender(request, reference: str = Path(..., max_length=40)):
    return _detail(_tender(request, reference))


@router.post("/procurement/tenders", response={201: TenderDetail},
             summary="Draft a tender (procurement officers)")
def create_tender(request, payload: TenderIn):
    buyer = Administration.objects.filter(code=payload.buyer.upper()).first()
    if buyer is None:
        raise NotFound(ProcurementError.UNKNOWN_ADMINISTRATION, code=payload.buyer)
    framework = None
    if payload.framework:
        framework = Tender.objects.filter(reference=payload.framework).first()
        if framework is None:
            raise NotFound(ProcurementError.NO_FRAMEWORK_AGREEMENT, framework=payload.framework)
    plan_item = None
    if payload.plan_item:
        from sahab.procurement.models import PlanItem

        plan_item = PlanItem.objects.filter(pk=payload.plan_item).select_related(
            "plan__administration").first()
        if plan_item is None:
            raise NotFound(ProcurementError.NO_PLANNED_PURCHASE, plan_item=payload.plan_item)
    invited = list(Company.objects.filter(pk__in=payload.invited, active=True))
    if len(invited) != len(set(payload.invited)):
        raise InvalidInput(ProcurementError.INVITED_COMPANY_UNKNOWN)
    tender = services.create_tender(
        actor=request.user, buyer=buyer, title=payload.title, description=payload.description,
        procedure=payload.procedure, award_criteria=payload.award_criteria,
        price_weight=payload.price_weight, enquiry_deadline=payload.enquiry_deadline,
        submission_deadline=payload.submission_deadline,
        standstill_days=payload.standstill_days,
        lots=[lot.dict() for lot in payload.lots], framework=framework, invited=invited,
        compliance_criteria=payload.compliance_criteria, plan_item=plan_item)
    return Status(201, _detail(tender))


class ReasonIn(Schema):
    reason: str = Field(..., min_length=1, max_length=5000)


@router.post("/procurement/tenders/{reference}/publish", response=TenderDetail,
             summary="Publish a draft tender")
def publish(request, reference: str = Path(..., max_length=40)):
    return _detail(services.publish_tender(actor=request.user,
                                           tender=_tender(request, reference)))


@router.post("/procurement/tenders/{reference}/cancel", response=TenderDetail,
             summary="Cancel a tender")
def cancel(request, payload: ReasonIn, reference: str = Path(..., max_length=40)):
    return _detail(services.cancel_tender(actor=request.user, tender=_tender(request, reference),
                                          reason=payload.reason))


class DocumentIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    content_base64: str = Field(..., max_length=15 * 1024 * 1024)


def _decode(content: str) -> bytes:
    return base64_content(content, "content_base64")


@router.post("/procurement/tenders/{reference}/documents", response={201: DocumentOut},
             summary="Add a document to a draft tender (a same-named one becomes a new "
                     "version); once published, documents change by an amendment")
def add_document(request, payload: DocumentIn, reference: str = Path(..., max_length=40)):
    return Status(201, services.add_document(actor=request.user,
                                             tender=_tender(request, reference),
                                             name=payload.name,
                                             content=_decode(payload.content_base64)))


class AmendedLotIn(Schema):
    number: int | None = Field(None, ge=1, le=1000, description="An existing lot's number; "
                               "none for a new lot.")
    title: str = Field(..., min_length=1, max_length=300)
    cpv: str = Field(..., min_length=10, max_length=10)
    estimated_value: Decimal = Field(..., gt=0, lt=10**12)
    items: list[dict] = Field([], max_length=100, description="A new lot's items "
                              "(description, cpv, quantity, unit), as when drafting.")


class TenderAmendmentIn(Schema):
    rationale: str = Field(..., min_length=1, max_length=20000,
                           description="Why the tender is amended (published).")
    enquiry_deadline: dt.datetime | None = Field(
        None, description="A later enquiry deadline (during the enquiry period only).")
    submission_deadline: dt.datetime | None = Field(
        None, description="A later submission deadline; needed when fewer than the legal "
        "minimum of days would remain after the amendment.")
    documents: list[DocumentIn] = Field([], max_length=20, description="New documents or "
                                        "new versions (a same-named document's next version).")
    compliance_criteria: list[str] | None = Field(
        None, max_length=30, description="The whole new list of compliance criteria every "
        "bid is checked against; omitted: unchanged.")
    lots: list[AmendedLotIn] | None = Field(
        None, max_length=100, description="The whole new list of lots: each lot kept names "
        "its number (its title, CPV and estimated value may change); a new lot has none. A "
        "lot is withdrawn by its cancellation, never by leaving it out; omitted: unchanged.")


@router.get("/procurement/tenders/{reference}/amendments", response=list[AmendmentOut],
            auth=None, summary="A tender's amendments, oldest first (public)")
def amendments(request, reference: str = Path(..., max_length=40)):
    return list(_tender(request, reference).amendments.all())


@router.post("/procurement/tenders/{reference}/amendments", response={201: AmendmentOut},
             summary="Amend a published tender before its deadline: new document versions "
                     "and/or later deadlines, with a rationale (procurement officers)")
def amend_tender(request, payload: TenderAmendmentIn, reference: str = Path(..., max_length=40)):
    return Status(201, services.amend_tender(
        actor=request.user, tender=_tender(request, reference), rationale=payload.rationale,
        documents=[(d.name, _decode(d.content_base64)) for d in payload.documents],
        enquiry_deadline=payload.enquiry_deadline,
        submission_deadline=payload.submission_deadline,
        compliance_criteria=payload.compliance_criteria,
        lots=None if payload.lots is None else [lot.dict() for lot in payload.lots]))


class QuestionIn(Schema):
    text: str = Field(..., min_length=1, max_length=5000)


class AnswerIn(Schema):
    answer: str = Field(..., min_length=1, max_length=10000)


@router.post("/procurement/tenders/{reference}/questions", response={201: QuestionOut},
             summary="Ask a question (companies, before the enquiry deadline)")
def ask(request, payload: QuestionIn, reference: str = Path(..., max_length=40)):
    return Status(201, services.ask_question(actor=request.user,
                                             tender=_tender(request, reference),
                                             text=payload.text))


@router.post("/procurement/questions/{question_id}/answer", response=QuestionOut,
             summary="Publish the answer to a question")
def answer(request, payload: AnswerIn, question_id: int = Id):
    question = get_object_or_404(Question, pk=question_id)
    return services.answer_question(actor=request.user, question=question,
                                    answer=payload.answer)


class BidIn(Schema):
    envelope: str = Field(..., max_length=sealing.MAX_ENVELOPE_BYTES,
                          description="The sealed and signed sahab-bid/2 envelope, made on the "
                          "company's machine (sahab bid seal, or the web page).")


class BidReceipt(Schema):
    bid: int
    tender: str
    commitment: str
    ledger_index: int | None = Field(..., description="The entry's index in the log: empty "
                                     "when the bid is accepted, since the sequencer "
                                     "integrates entries in batches within about a second "
                                     "(promise_url then gives it).")
    submitted_at: dt.datetime
    promise: str | None = Field(None, description="The log's signed promise (a signed note: "
                                "format, origin, promise number, leaf hash, time) to "
                                "integrate the entry within a minute.")
    promise_url: str | None = Field(None, description="What became of the promise: the "
                                    "index it was given, and the receipt's address.")
    receipt: str | None = Field(None, description="Empty: the c2sp.org/tlog-proof@v1 "
                                "receipt of the submission is at the address promise_url "
                                "gives once the entry is integrated.")
    receipt_url: str | None = Field(..., description="Where the receipt is once the entry "
                                    "is integrated (empty while it is pending: promise_url "
                                    "gives the index, and the receipt is at "
                                    "/ledger/entries/<index>/receipt).")


def _receipt(request, bid: Bid) -> dict:
    """The answer to a bid just stored: the log's signed promise. Its entry is pending
    (the worker's sequencer integrates it), so the index and the receipt are not known
    yet: ``promise_url`` gives them once they are."""
    promise = bid.promise
    return {"bid": bid.pk, "tender": bid.tender.reference, "commitment": bid.commitment,
            "ledger_index": None, "submitted_at": bid.submitted_at,
            "promise": promise.signed(),
            "promise_url": promise_url(request, promise.pending),
            "receipt": None, "receipt_url": None}


@router.post("/procurement/tenders/{reference}/bids", response={201: BidReceipt},
             summary="Submit or replace your company's sealed bid")
def submit_bid(request, payload: BidIn, reference: str = Path(..., max_length=40)):
    try:
        envelope = payload.envelope.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidInput(ProcurementError.ENVELOPE_NOT_ASCII) from None
    # the service reads the tender once, under its lock, and checks that the caller may
    # see it (a bid's hot path)
    bid = services.submit_bid(actor=request.user, tender=reference, envelope=envelope)
    return Status(201, _receipt(request, bid))


class SigningKeyIn(Schema):
    public_key: str = Field(..., max_length=100, description="Ed25519 public key, base64.")
    proof: str = Field(..., max_length=200, description="The key's signature (base64) of "
                       "'sahab-signing-key/1\\ncompany <id>\\nkey <public key>\\n'.")
    certificate: str = Field("", max_length=20000, description="PEM certificate of the key "
                             "from the national CA (production); the demo CA issues one.")


class SigningKeyOut(Schema):
    id: int
    company: int
    fingerprint: str
    public_key: str
    certificate: str
    ledger_index: int
    registered_at: dt.datetime
    revoked_at: dt.datetime | None


def _key_out(key) -> dict:
    return {"id": key.pk, "company": key.company_id, "fingerprint": key.fingerprint,
            "public_key": base64.b64encode(bytes(key.public_key)).decode(),
            "certificate": key.certificate, "ledger_index": key.ledger_index,
            "registered_at": key.registered_at, "revoked_at": key.revoked_at}


def _b64_field(value: str, name: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        raise InvalidInput(CoreError.NOT_BASE64, what=name) from None


@router.post("/procurement/signing-keys", response={201: SigningKeyOut},
             summary="Register your company's bid-signing key (public half)")
def register_key(request, payload: SigningKeyIn):
    key = services.register_signing_key(
        actor=request.user, public_key=_b64_field(payload.public_key, "public_key"),
        proof=_b64_field(payload.proof, "proof"), certificate=payload.certificate)
    return Status(201, _key_out(key))


@router.get("/procurement/signing-keys", response=list[SigningKeyOut],
            summary="Your company's bid-signing keys")
def my_keys(request):
    return [_key_out(k) for k in selectors.signing_keys_of(request.user)]


@router.delete("/procurement/signing-keys/{key_id}", response=SigningKeyOut,
               summary="Revoke one of your company's bid-signing keys")
def revoke_key(request, key_id: int = Id):
    key = selectors.signing_keys_of(request.user).filter(pk=key_id).first()
    if key is None:
        raise NotFound(ProcurementError.NO_SUCH_SIGNING_KEY)
    return _key_out(services.revoke_signing_key(actor=request.user, key=key))


class CommitteeIn(Schema):
    members: list[str] = Field(..., min_length=1, max_length=sealing.MAX_MEMBERS,
                               description="Usernames of the members (agents).")
    threshold: int = Field(..., ge=1, le=sealing.MAX_MEMBERS)


class OpeningKeyIn(Schema):
    public_key: str = Field(..., max_length=100, description="X25519 public key, base64.")


class ReleaseIn(Schema):
    private_key: str = Field(..., max_length=100, description="X25519 private key, base64.")


class CommitteeMemberOut(Schema):
    position: int
    member: str
    public_key: str
    released: bool
    ledger_index: int | None


def _members(tender: Tender) -> list[dict]:
    return [{"position": m.position, "member": m.member.username,
             "public_key": base64.b64encode(bytes(m.public_key)).decode(),
             "released": m.released_at is not None,
             "ledger_index": m.release_ledger_index or m.key_ledger_index}
            for m in tender.committee.select_related("member")]


def _committee_tender(reference: str) -> Tender:
    tender = Tender.objects.filter(reference=reference).first()
    if tender is None:
        raise NotFound(ProcurementError.NO_TENDER, reference=reference)
    return tender


@router.post("/procurement/tenders/{reference}/committee", response=list[CommitteeMemberOut],
             summary="Name the opening committee of a draft tender (t of n)")
def name_committee(request, payload: CommitteeIn, reference: str = Path(..., max_length=40)):
    tender = _tender(request, reference)
    users = []
    for username in payload.members:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise InvalidInput(ProcurementError.NO_USER, username=username)
        users.append(user)
    services.name_committee(actor=request.user, tender=tender, members=users,
                            threshold=payload.threshold)
    return _members(tender)


@router.post("/procurement/tenders/{reference}/committee/key",
             response=list[CommitteeMemberOut],
             summary="A committee member registers their one-time opening key")
def committee_key(request, payload: OpeningKeyIn, reference: str = Path(..., max_length=40)):
    tender = _committee_tender(reference)
    services.register_committee_key(actor=request.user, tender=tender,
                                    public_key=_b64_field(payload.public_key, "public_key"))
    return _members(tender)


@router.post("/procurement/tenders/{reference}/committee/release",
             response=list[CommitteeMemberOut],
             summary="A committee member releases their opening key after the deadline")
def committee_release(request, payload: ReleaseIn, reference: str = Path(..., max_length=40)):
    tender = _committee_tender(reference)
    services.release_committee_key(actor=request.user, tender=tender,
                                   private_key=_b64_field(payload.private_key, "private_key"))
    return _members(tender)


@router.get("/procurement/tenders/{reference}/opening", auth=None,
            summary="What anyone needs to check an opening: committee, released keys, and "
            "after the opening every envelope and signing key (public)")
def opening(request, reference: str = Path(..., max_length=40)):
    tender = selectors.tenders_visible_to(request.user).filter(reference=reference).first()
    if tender is None or tender.published_at is None:
        raise NotFound(ProcurementError.NO_TENDER, reference=reference)
    return selectors.opening_data(tender)


@router.get("/procurement/tenders/{reference}/opening/report", auth=None,
            summary="The full opening report (canonical JSON): every commitment, opened bid "
            "and rejected or missing one; its SHA-256 is in the opening's ledger entry")
def opening_report(request, reference: str = Path(..., max_length=40)):
    tender = selectors.tenders_visible_to(request.user).filter(reference=reference).first()
    document = selectors.opening_report(tender) if tender is not None else None
    if document is None:
        raise NotFound(ProcurementError.NO_OPENING_REPORT, reference=reference)
    response = HttpResponse(bytes(document.content), content_type="application/json")
    response["Digest"] = f"sha-256={document.sha256}"
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


class MyBid(Schema):
    bid: int
    tender: str
    status: str
    confirm_amendment: int | None = Field(None, description="The amendment after which the "
                                          "bid must be confirmed (or replaced) before the "
                                          "deadline, else it is not opened.")
    commitment: str
    ledger_index: int | None
    submitted_at: dt.datetime


def _my_bid(b: Bid) -> dict:
    return {"bid": b.pk, "tender": b.tender.reference, "status": b.status,
            "confirm_amendment": b.confirm_amendment, "commitment": b.commitment,
            "ledger_index": b.ledger_index,
            "submitted_at": b.submitted_at}


@router.get("/procurement/bids", response=list[MyBid], summary="Your company's bids")
def my_bids(request):
    return [_my_bid(b) for b in selectors.bids_of_company(request.user)]


@router.delete("/procurement/bids/{bid_id}", response=MyBid,
               summary="Withdraw your company's bid before the deadline")
def withdraw(request, bid_id: int = Id):
    bid = selectors.bids_of_company(request.user).filter(pk=bid_id).first()
    if bid is None:
        raise NotFound(ProcurementError.NO_SUCH_BID)
    return _my_bid(services.withdraw_bid(actor=request.user, bid=bid))


@router.post("/procurement/bids/{bid_id}/confirmation", response=MyBid,
             summary="Confirm your company's bid after an amendment changed the conditions")
def confirm(request, bid_id: int = Id):
    bid = selectors.bids_of_company(request.user).filter(pk=bid_id).first()
    if bid is None:
        raise NotFound(ProcurementError.NO_SUCH_BID)
    return _my_bid(services.confirm_bid(actor=request.user, bid=bid))


class DeclarationIn(Schema):
    no_conflict: bool
    statement: str = Field("", max_length=5000)


@router.post("/procurement/tenders/{reference}/declarations", response={201: dict},
             summary="Declare (no) conflict of interest before evaluating")
def declare(request, payload: DeclarationIn, reference: str = Path(..., max_length=40)):
    d = services.declare_conflict_of_interest(actor=request.user,
                                              tender=_tender(request, reference),
                                              no_conflict=payload.no_conflict,
                                              statement=payload.statement)
    return Status(201, {"no_conflict": d.no_conflict, "declared_at": d.declared_at.isoformat()})


class EligibilityIn(Schema):
    bid: int = Field(..., ge=1, le=2**63 - 1)
    lot: int = Field(..., ge=1, le=1000)
    eligible: bool
    checks: dict[str, bool] | None = Field(None, description="Criterion → met; default: "
                                           "all met when eligible, all failed when not.")
    reason: str = Field("", max_length=2000)


class ScoreIn(Schema):
    bid: int = Field(..., ge=1, le=2**63 - 1)
    lot: int = Field(..., ge=1, le=1000)
    score: Decimal = Field(..., ge=0, le=100)
    comment: str = Field("", max_length=5000)


def _bid_lot(tender: Tender, bid: int, lot: int) -> BidLot:
    row = BidLot.objects.filter(bid__tender=tender, bid_id=bid, lot__number=lot).first()
    if row is None:
        raise NotFound(ProcurementError.NO_OPENED_BID, bid=bid, lot=lot)
    return row


@router.post("/procurement/tenders/{reference}/eligibility", response=dict,
             summary="An evaluator's eligibility decision on a bid for a lot")
def eligibility(request, payload: EligibilityIn, reference: str = Path(..., max_length=40)):
    tender = _tender(request, reference)
    row = services.decide_eligibility(actor=request.user,
                                      bid_lot=_bid_lot(tender, payload.bid, payload.lot),
                                      eligible=payload.eligible, reason=payload.reason,
                                      checks=payload.checks)
    return {"bid": payload.bid, "lot": payload.lot, "eligible": row.eligible,
            "compliance": row.compliance}


@router.post("/procurement/tenders/{reference}/scores", response=dict,
             summary="An evaluator's quality score (price and quality tenders)")
def score(request, payload: ScoreIn, reference: str = Path(..., max_length=40)):
    tender = _tender(request, reference)
    services.score_quality(actor=request.user,
                           bid_lot=_bid_lot(tender, payload.bid, payload.lot),
                           score=payload.score, comment=payload.comment)
    return {"bid": payload.bid, "lot": payload.lot, "score": str(payload.score)}


@router.post("/procurement/tenders/{reference}/evaluation", response=dict,
             summary="Rank the bids and propose the evaluation report to the committee")
def evaluate(request, reference: str = Path(..., max_length=40)):
    return services.complete_evaluation(actor=request.user, tender=_tender(request, reference))


class EvaluationCommitteeIn(Schema):
    members: list[str] = Field(..., min_length=2, max_length=15,
                               description="Usernames of evaluators of the buyer's line.")
    chair: str = Field(..., max_length=150, description="One of the members.")
    quorum: int = Field(..., ge=2, le=15)


def _users(usernames: list[str]) -> list:
    users = []
    for username in usernames:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise InvalidInput(ProcurementError.NO_USER, username=username)
        users.append(user)
    return users


@router.post("/procurement/tenders/{reference}/evaluation/committee", response=dict,
             summary="Name the evaluation committee: members, chair and quorum")
def name_evaluation_committee(request, payload: EvaluationCommitteeIn,
                              reference: str = Path(..., max_length=40)):
    tender = _tender(request, reference)
    users = _users(payload.members)
    chair = next((u for u in users if u.username == payload.chair), None)
    services.name_evaluation_committee(actor=request.user, tender=tender, members=users,
                                       chair=chair, quorum=payload.quorum)
    return selectors.evaluation(tender)


class ApprovalIn(Schema):
    sha256: str = Field(..., min_length=64, max_length=64,
                        description="The SHA-256 of the report approved (or dissented from).")
    approved: bool = True
    reason: str = Field("", max_length=5000, description="Required for a dissent.")


@router.post("/procurement/tenders/{reference}/evaluation/approvals", response=dict,
             summary="A committee member approves, or dissents from, the proposed report")
def approve_evaluation(request, payload: ApprovalIn, reference: str = Path(..., max_length=40)):
    tender = _tender(request, reference)
    report = services.approve_evaluation(actor=request.user, tender=tender,
                                         sha256=payload.sha256, approved=payload.approved,
                                         reason=payload.reason)
    return {"number": report.number, "sha256": report.sha256, "status": report.status,
            "adopted_index": report.adopted_index}


@router.get("/procurement/tenders/{reference}/evaluation", response=dict, auth=None,
            summary="The evaluation committee, its reports and approvals, the explanations")
def evaluation(request, reference: str = Path(..., max_length=40)):
    return selectors.evaluation(_tender(request, reference))


class ExplanationRequestIn(Schema):
    bid: int = Field(..., ge=1, le=2**63 - 1)
    lot: int = Field(..., ge=1, le=1000)
    question: str = Field(..., min_length=1, max_length=5000)


class ExplanationAnswerIn(Schema):
    answer: str = Field(..., min_length=1, max_length=20000)


class ExplanationDecisionIn(Schema):
    accepted: bool
    reason: str = Field(..., min_length=1, max_length=5000)


def _explanation_out(explanation) -> dict:
    return {"id": explanation.pk, "bid": explanation.bid_lot.bid_id,
            "lot": explanation.bid_lot.lot.number, "status": explanation.status,
            "question": explanation.question, "due_at": explanation.due_at.isoformat(),
            "decision": explanation.decision}


def _explanation(explanation_id: int):
    from sahab.procurement.models import Explanation

    row = Explanation.objects.select_related("bid_lot__lot").filter(pk=explanation_id).first()
    if row is None:
        raise NotFound(ProcurementError.NO_SUCH_EXPLANATION)
    return row


@router.post("/procurement/tenders/{reference}/explanations", response={201: dict},
             summary="Ask the bidder of an abnormally low price to explain it")
def request_explanation(request, payload: ExplanationRequestIn,
                        reference: str = Path(..., max_length=40)):
    tender = _tender(request, reference)
    row = services.request_explanation(actor=request.user,
                                       bid_lot=_bid_lot(tender, payload.bid, payload.lot),
                                       question=payload.question)
    return Status(201, _explanation_out(row))


@router.post("/procurement/explanations/{explanation_id}/answer", response=dict,
             summary="The bidder explains its price before the deadline")
def answer_explanation(request, payload: ExplanationAnswerIn, explanation_id: int = Id):
    return _explanation_out(services.answer_explanation(
        actor=request.user, explanation=_explanation(explanation_id), answer=payload.answer))


@router.post("/procurement/explanations/{explanation_id}/decision", response=dict,
             summary="The committee accepts or rejects a bidder's explanation")
def decide_explanation(request, payload: ExplanationDecisionIn, explanation_id: int = Id):
    return _explanation_out(services.decide_explanation(
        actor=request.user, explanation=_explanation(explanation_id),
        accepted=payload.accepted, reason=payload.reason))


class AwardIn(Schema):
    choices: dict[str, int | list[int]] = Field({}, description="Lot number → bid id(s); "
                                                "default: the first ranked.")
    justification: str = Field("", max_length=5000)


@router.post("/procurement/tenders/{reference}/award", response=TenderDetail,
             summary="Award, notify the bidders and start the standstill period")
def award(request, payload: AwardIn, reference: str = Path(..., max_length=40)):
    tender = _tender(request, reference)
    services.award_tender(actor=request.user, tender=tender, choices=payload.choices,
                          justification=payload.justification)
    tender.refresh_from_db()
    return _detail(tender)


@router.post("/procurement/tenders/{reference}/unsuccessful", response=TenderDetail,
             summary="Declare the tender unsuccessful")
def unsuccessful(request, payload: ReasonIn, reference: str = Path(..., max_length=40)):
    return _detail(services.declare_unsuccessful(actor=request.user,
                                                 tender=_tender(request, reference),
                                                 reason=payload.reason))


class ComplaintIn(Schema):
    text: str = Field(..., min_length=1, max_length=20000)
    lots: list[int] = Field([], max_length=100, description="The lots concerned: any (all by "
                            "default) against the documents; exactly one against an "
                            "evaluation or award.")


class AdmissibilityIn(Schema):
    admissible: bool
    reason: str = Field(..., min_length=1, max_length=20000)


class DecisionIn(Schema):
    upheld: bool
    decision: str = Field(..., min_length=1, max_length=20000)
    remedy: Complaint.Remedy = Field(Complaint.Remedy.NONE, description="When upheld: "
                                     "reevaluate or cancel_lot (evaluation or award), "
                                     "amend_documents or cancel_lot (documents).")


def _complaint(complaint_id: int) -> Complaint:
    complaint = Complaint.objects.filter(pk=complaint_id,
                                         tender__state__in=selectors.PUBLIC_STATES).first()
    if complaint is None:
        raise NotFound(ProcurementError.NO_COMPLAINT, complaint=complaint_id)
    return complaint


@router.get("/procurement/tenders/{reference}/complaints", response=list[ComplaintOut],
            auth=None, summary="A tender's complaints and their rulings (public)")
def complaints(request, reference: str = Path(..., max_length=40)):
    tender = _tender(request, reference)
    return list(tender.complaints.select_related("company").prefetch_related("lots"))


@router.post("/procurement/tenders/{reference}/complaints", response={201: ComplaintOut},
             summary="File a complaint (companies; filing alone suspends nothing)")
def complain(request, payload: ComplaintIn, reference: str = Path(..., max_length=40)):
    return Status(201, services.file_complaint(actor=request.user,
                                               tender=_tender(request, reference),
                                               text=payload.text, lots=payload.lots))


@router.post("/procurement/complaints/{complaint_id}/admissibility", response=ComplaintOut,
             summary="Rule on a complaint's admissibility (the complaints body); an admitted "
                     "complaint suspends the lots it concerns")
def admissibility(request, payload: AdmissibilityIn, complaint_id: int = Id):
    return services.rule_admissibility(actor=request.user, complaint=_complaint(complaint_id),
                                       admissible=payload.admissible, reason=payload.reason)


@router.post("/procurement/complaints/{complaint_id}/decision", response=ComplaintOut,
             summary="Decide an admitted complaint on the merits, with its binding remedy "
                     "(the complaints body)")
def decide(request, payload: DecisionIn, complaint_id: int = Id):
    return services.decide_complaint(actor=request.user, complaint=_complaint(complaint_id),
                                     upheld=payload.upheld, decision=payload.decision,
                                     remedy=payload.remedy)


class ContractIn(Schema):
    start_date: dt.date
    end_date: dt.date


class AmendmentIn(Schema):
    justification: str = Field(..., min_length=1, max_length=5000)
    new_value: Decimal | None = Field(None, gt=0, lt=10**12)
    new_end_date: dt.date | None = None


class PaymentIn(Schema):
    milestone: str = Field(..., min_length=1, max_length=300)
    amount: Decimal = Field(..., gt=0, lt=10**12)


class CountersignIn(Schema):
    terms_sha256: str | None = Field(None, min_length=64, max_length=64,
                                     description="The terms' SHA-256 the supplier read (from "
                                                 "the contract): refused if they changed.")


class AmendmentDecisionIn(Schema):
    approve: bool
    reason: str = Field(..., min_length=1, max_length=5000)


def _contract_out(c: Contract) -> dict:
    return {"id": c.pk, "lot": c.award.lot.number, "supplier": c.supplier.name,
            "value": c.value, "start_date": c.start_date, "end_date": c.end_date,
            "status": c.status, "terms_sha256": c.terms_sha256, "signed_at": c.signed_at,
            "signed_index": c.signed_index, "supplier_signed_at": c.supplier_signed_at,
            "supplier_signed_index": c.supplier_signed_index, "completed_at": c.completed_at,
            "final_value": c.final_value, "completion_reason": c.completion_reason,
            "amendments": list(c.amendments.all())}


def _contract(contract_id: int) -> Contract:
    """A contract of a published tender (its tender's page shows it to anyone)."""
    return get_object_or_404(Contract.objects.select_related("award__lot", "supplier",
                                                             "tender"),
                             pk=contract_id, tender__state__in=selectors.PUBLIC_STATES)


@router.post("/procurement/awards/{award_id}/contract", response={201: ContractOut},
             summary="Sign the contract of an award after the standstill")
def sign(request, payload: ContractIn, award_id: int = Id):
    award_ = get_object_or_404(Award, pk=award_id)
    contract = services.sign_contract(actor=request.user, award=award_,
                                      start_date=payload.start_date, end_date=payload.end_date)
    return Status(201, _contract_out(contract))


@router.get("/procurement/contracts/{contract_id}", response=ContractOut, auth=None,
            summary="A contract: its signatures, terms' hash, amendments and completion "
                    "(public)")
def contract(request, contract_id: int = Id):
    return _contract_out(_contract(contract_id))


@router.post("/procurement/contracts/{contract_id}/countersign", response=ContractOut,
             summary="Countersign a contract the buyer signed (a user of its supplier): it "
                     "is in force")
def countersign(request, payload: CountersignIn, contract_id: int = Id):
    return _contract_out(services.countersign_contract(
        actor=request.user, contract=_contract(contract_id),
        terms_sha256_seen=payload.terms_sha256))


@router.post("/procurement/contracts/{contract_id}/amendments", response={201: ContractOut},
             summary="Amend a contract's value or end date, with a justification (beyond "
                     "the ceiling: proposed, for a control agent's approval)")
def amend(request, payload: AmendmentIn, contract_id: int = Id):
    contract = get_object_or_404(Contract, pk=contract_id)
    services.amend_contract(actor=request.user, contract=contract,
                            justification=payload.justification, new_value=payload.new_value,
                            new_end_date=payload.new_end_date)
    return Status(201, _contract_out(_contract(contract_id)))


@router.post("/procurement/contract-amendments/{amendment_id}/decision",
             response=ContractOut,
             summary="Approve or refuse an amendment beyond the ceiling, with reasons (an "
                     "auditor of the buyer's ministry line, never its proposer)")
def decide_amendment(request, payload: AmendmentDecisionIn, amendment_id: int = Id):
    from sahab.procurement.models import Amendment

    amendment = get_object_or_404(Amendment, pk=amendment_id)
    services.decide_amendment(actor=request.user, amendment=amendment,
                              approve=payload.approve, reason=payload.reason)
    return _contract_out(_contract(amendment.contract_id))


@router.post("/procurement/contracts/{contract_id}/complete", response=ContractOut,
             summary="Mark an active contract completed (the buyer's procurement officer), "
                     "with the reason; the value paid is its final value")
def complete(request, payload: ReasonIn, contract_id: int = Id):
    contract = get_object_or_404(Contract, pk=contract_id)
    services.complete_contract(actor=request.user, contract=contract, reason=payload.reason)
    return _contract_out(_contract(contract_id))


@router.post("/procurement/contracts/{contract_id}/payments", response={201: dict},
             summary="Record a payment on a contract (finance)")
def pay(request, payload: PaymentIn, contract_id: int = Id):
    contract = get_object_or_404(Contract, pk=contract_id)
    payment = services.record_payment(actor=request.user, contract=contract,
                                      milestone=payload.milestone, amount=payload.amount)
    return Status(201, {"id": payment.pk, "amount": str(payment.amount),
                        "milestone": payment.milestone})


class PriceIn(Schema):
    code: str = Field(..., min_length=1, max_length=100,
                      description="The item's code in the supplier's catalogue (cloud: the "
                                  "Open Service Broker plan id)")
    description: str = Field(..., min_length=1, max_length=300)
    unit: str = Field("hour", min_length=1, max_length=30)
    unit_price: Decimal = Field(..., gt=0, lt=10**12)


class PriceOut(Schema):
    code: str
    description: str
    unit: str
    unit_price: Decimal
    ledger_index: int


@router.get("/procurement/contracts/{contract_id}/prices", response=list[PriceOut], auth=None,
            summary="A contract's schedule of unit prices (public)")
def prices(request, contract_id: int = Id):
    contract = get_object_or_404(Contract, pk=contract_id,
                                 tender__state__in=selectors.PUBLIC_STATES)
    return list(contract.prices.order_by("code"))


@router.post("/procurement/contracts/{contract_id}/prices", response={201: PriceOut},
             summary="Record a unit price of a contract's schedule (procurement officers)")
def add_price(request, payload: PriceIn, contract_id: int = Id):
    contract = get_object_or_404(Contract, pk=contract_id)
    return Status(201, services.set_contract_price(
        actor=request.user, contract=contract, code=payload.code,
        description=payload.description, unit=payload.unit, unit_price=payload.unit_price))


@router.post("/procurement/contracts/{contract_id}/terminate", response=ContractOut,
             summary="Terminate a contract")
def terminate(request, payload: ReasonIn, contract_id: int = Id):
    contract = get_object_or_404(Contract, pk=contract_id)
    return _contract_out(services.terminate_contract(actor=request.user, contract=contract,
                                                     reason=payload.reason))


class ChangeOut(Schema):
    tender: str
    type: str
    ledger_index: int
    at: dt.datetime


class ChangesOut(Schema):
    items: list[ChangeOut]
    next_cursor: str


@router.get("/procurement/changes", response=ChangesOut, auth=None,
            summary="Every procurement step after a cursor, oldest first (for mirrors)")
def changes(request, cursor: str = Query("", max_length=40),
            limit: int = Query(100, ge=1, le=1000)):
    try:
        after = selectors.decode_cursor(cursor)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(ProcurementError.CURSOR_FOREIGN) from None
    steps = selectors.changes_after(after, limit)
    last = steps[-1].ledger_index if steps else after
    return {"items": [{"tender": s.tender.reference, "type": s.type,
                       "ledger_index": s.ledger_index, "at": s.at} for s in steps],
            "next_cursor": selectors.encode_cursor(last) if last >= 0 else cursor}


# --- plans ---------------------------------------------------------------------------------

class PlanItemIn(Schema):
    description: str = Field(..., min_length=1, max_length=500)
    cpv: str = Field(..., pattern=r"^\d{8}-\d$")
    budget_line: str = Field(..., min_length=1, max_length=50)
    estimated_value: Decimal = Field(..., gt=0, lt=10**12)
    quarter: int = Field(..., ge=1, le=4)
    procedure: Procedure


class PlanItemOut(Schema):
    id: int
    description: str
    cpv: str
    budget_line: str
    estimated_value: Decimal
    quarter: int
    procedure: str


class PlanIn(Schema):
    administration: str = Field(..., max_length=32)
    year: int = Field(..., ge=2000, le=2100)
    title: str = Field(..., min_length=1, max_length=300)


class PlanOut(Schema):
    id: int
    administration: str
    year: int
    title: str
    items: list[PlanItemOut]

    @staticmethod
    def resolve_administration(obj) -> str:
        return obj.administration.code

    @staticmethod
    def resolve_items(obj) -> list:
        return list(obj.items.all())


@router.get("/procurement/plans", response=list[PlanOut], auth=None,
            summary="Procurement plans (public)")
@paginate(Paging)
def list_plans(request, administration: str = Query("", max_length=32),
               year: int | None = Query(None, ge=2000, le=2100)):
    from sahab.procurement.models import Plan

    qs = Plan.objects.select_related("administration").prefetch_related("items")
    if administration:
        qs = qs.filter(administration__code=administration.upper())
    if year:
        qs = qs.filter(year=year)
    return qs


@router.post("/procurement/plans", response={201: PlanOut},
             summary="Create an administration's plan for a year")
def create_plan(request, payload: PlanIn):
    administration = Administration.objects.filter(code=payload.administration.upper()).first()
    if administration is None:
        raise NotFound(ProcurementError.UNKNOWN_ADMINISTRATION, code=payload.administration)
    return Status(201, services.create_plan(actor=request.user, administration=administration,
                                            year=payload.year, title=payload.title))


@router.post("/procurement/plans/{plan_id}/items", response={201: PlanItemOut},
             summary="Add a planned purchase")
def add_plan_item(request, payload: PlanItemIn, plan_id: int = Id):
    from sahab.procurement.models import Plan

    plan = get_object_or_404(Plan, pk=plan_id)
    return Status(201, services.add_plan_item(actor=request.user, plan=plan, **payload.dict()))


# --- restricted procedures: candidates ---------------------------------------------------

class CandidateOut(Schema):
    company: int
    name: str
    status: str


@router.post("/procurement/tenders/{reference}/candidacy", response={201: CandidateOut},
             summary="Apply for pre-qualification (restricted procedures)")
def apply(request, reference: str = Path(..., max_length=40)):
    p = services.apply_for_prequalification(actor=request.user,
                                            tender=_tender(request, reference))
    return Status(201, {"company": p.company_id, "name": p.company.name, "status": p.kind})


class QualificationIn(Schema):
    qualified: bool
    reason: str = Field("", max_length=20000,
                        description="Published with the decision; required to refuse")


@router.get("/procurement/tenders/{reference}/candidates", response=list[CandidateOut],
            summary="The candidates of a restricted procedure (its buyer only)")
def candidates(request, reference: str = Path(..., max_length=40)):
    tender = _tender(request, reference)
    services.require_buyer_officer(request.user, tender)
    return [{"company": p.company_id, "name": p.company.name, "status": p.kind}
            for p in tender.participants.select_related("company")]


@router.post("/procurement/tenders/{reference}/candidates/{company_id}",
             response=CandidateOut, summary="Qualify a candidate, or not")
def qualify(request, payload: QualificationIn, reference: str = Path(..., max_length=40),
            company_id: int = Id):
    tender = _tender(request, reference)
    participation = tender.participants.filter(company_id=company_id).first()
    if participation is None:
        raise NotFound(ProcurementError.NOT_A_CANDIDATE)
    p = services.decide_prequalification(actor=request.user, participation=participation,
                                         qualified=payload.qualified, reason=payload.reason)
    return {"company": p.company_id, "name": p.company.name, "status": p.kind}


# --- framework agreements: direct call-offs ---------------------------------------------

class CallOffIn(Schema):
    buyer: str = Field(..., max_length=32)
    description: str = Field(..., min_length=1, max_length=500)
    quantity: Decimal = Field(..., gt=0, lt=10**9)
    unit_price: Decimal | None = Field(None, gt=0, lt=10**12)


class CallOffOut(Schema):
    id: int
    contract: int
    buyer: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    value: Decimal
    ledger_index: int

    @staticmethod
    def resolve_contract(obj) -> int:
        return obj.contract_id

    @staticmethod
    def resolve_buyer(obj) -> str:
        return obj.buyer.code


@router.post("/procurement/contracts/{contract_id}/call-offs", response={201: CallOffOut},
             summary="Order directly under a framework agreement at its price")
def call_off(request, payload: CallOffIn, contract_id: int = Id):
    contract = get_object_or_404(Contract, pk=contract_id)
    buyer = Administration.objects.filter(code=payload.buyer.upper()).first()
    if buyer is None:
        raise NotFound(ProcurementError.UNKNOWN_ADMINISTRATION, code=payload.buyer)
    return Status(201, services.direct_call_off(
        actor=request.user, contract=contract, buyer=buyer, description=payload.description,
        quantity=payload.quantity, unit_price=payload.unit_price))


# --- integrity indicators ---------------------------------------------------------------

class FlagOut(Schema):
    code: str
    title: str
    explanation: str
    why: str
    level: str
    group: str
    key: str
    subject: str
    name: str
    value: float
    detail: str
    tenders: list[str]
    ocids: list[str]


@router.get("/procurement/red-flags", response=list[FlagOut], auth=None,
            summary="Integrity indicators (red flags) over all procurement (public)")
def red_flags(request, code: str = Query("", max_length=10),
              level: str = Query("", max_length=10),
              subject: str = Query("", max_length=60), *, response: HttpResponse):
    from django.utils.http import http_date

    from sahab.procurement import redflags

    flags = redflags.current()
    run = redflags.last_run()
    if run is not None:  # when the stored flags were computed
        response["Last-Modified"] = http_date(run.computed_at.timestamp())
    return [redflags.as_dict(f) for f in flags
            if (not code or f.code == code) and (not level or f.level == level)
            and (not subject or f.subject == subject)]
