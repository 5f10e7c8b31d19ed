"""Every write of procurement. One state machine moves tenders; every step is appended
to the ledger in the same transaction and kept as a ``Step`` with its ledger index."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import logging
import statistics
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import rfc8785
from django.conf import settings
from django.db import IntegrityError, models, router, transaction
from django.db.models import Max, Q, QuerySet, Sum
from django.utils import timezone

from sahab.core import documents as document_checks
from sahab.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    read_when_rendered,
)
from sahab.core.inputs import money as _money
from sahab.core.inputs import text as _text
from sahab.core.prebuilt import Insert, Join, JoinedRead
from sahab.directory import rules
from sahab.directory import selectors as directory
from sahab.directory.models import Administration, Company, Role
from sahab.ledger import services as ledger
from sahab.procurement import notifications, ocds, sealing, search, selectors
from sahab.procurement.errors import ProcurementError
from sahab.procurement.events import ProcurementEvent
from sahab.procurement.models import (
    OPENING_REPORT,
    OPENING_REPORT_FORMAT,
    Amendment,
    Award,
    AwardCriteria,
    Bid,
    BidLot,
    CallOff,
    CommitteeMember,
    Complaint,
    ConflictDeclaration,
    Contract,
    ContractPrice,
    EvaluationMember,
    EvaluationReport,
    Explanation,
    Item,
    Lot,
    Notice,
    Participation,
    Payment,
    Plan,
    PlanItem,
    Procedure,
    QualityScore,
    Question,
    ReportApproval,
    SigningKey,
    State,
    Step,
    Tender,
    TenderAmendment,
    TenderDocument,
    locked_tenders,
)

S = State
log = logging.getLogger(__name__)
# Minimum days between publication and the submission deadline, per procedure.
MIN_TENDERING_DAYS = {Procedure(k): v for k, v in settings.PROCUREMENT_MIN_TENDERING_DAYS.items()}
SIMPLIFIED_THRESHOLD = Decimal("200000")
ABNORMALLY_LOW_FACTOR = Decimal("0.70")  # of the mean of the other eligible prices
# Tender contents are written in the buyer's language: French by default, like the rules.
DEFAULT_COMPLIANCE = ["Dossier administratif complet (CNSS, quitus fiscal, extrait du RNE)",
                      "Caution provisoire fournie",
                      "Offre technique conforme au cahier des charges"]

# The one table of legal moves: action → (states it may start from, state it leads to).
TRANSITIONS: dict[str, tuple[set[str], str]] = {
    "publish": ({S.DRAFT}, S.ENQUIRIES),
    "close_enquiries": ({S.ENQUIRIES}, S.TENDERING),
    "close_tendering": ({S.ENQUIRIES, S.TENDERING}, S.OPENING),
    "open": ({S.OPENING}, S.EVALUATION),
    "fail": ({S.OPENING, S.EVALUATION}, S.UNSUCCESSFUL),
    "award": ({S.EVALUATION}, S.AWARDED),
    "notify": ({S.AWARDED}, S.STANDSTILL),
    "end_standstill": ({S.STANDSTILL}, S.COMPLETE),
    "reevaluate": ({S.AWARDED, S.STANDSTILL, S.COMPLETE}, S.EVALUATION),
    # an upheld complaint's remedy cancelled the last lot still open
    "cancel_lots": ({S.ENQUIRIES, S.TENDERING, S.OPENING, S.EVALUATION, S.AWARDED,
                     S.STANDSTILL, S.COMPLETE}, S.CANCELLED),
    "cancel": ({S.DRAFT, S.ENQUIRIES, S.TENDERING, S.EVALUATION, S.AWARDED, S.STANDSTILL},
               S.CANCELLED),
}


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or timezone.now()


def _move(tender: Tender, action: str) -> None:
    sources, target = TRANSITIONS[action]
    if tender.state not in sources:
        raise Conflict(ProcurementError.TENDER_STATE_FORBIDS, action=action.replace("_", " "),
                       state=read_when_rendered(tender.get_state_display))
    # A suspension is per lot (admitted complaints): the steps it holds back check it.
    tender.state = target


def _step(tender: Tender, event: ProcurementEvent, actor, data: dict, *,
          at: dt.datetime | None = None, publish: bool = True) -> int:
    """The ledger entry and the step of one change, in the change's transaction.

    With ``publish=False`` the caller publishes the OCDS release itself (``_publish``),
    once the rows the step records exist."""
    appended = ledger.record(event, f"tender:{tender.reference}", actor, data)
    _evict_squatters({appended.index: {"type": event.value,
                                       "subject": f"tender:{tender.reference}"}})
    step = Step.objects.create(tender=tender, type=event.value.removeprefix("procurement."),
                               ledger_index=appended.index,
                               at=at or timezone.now())
    if publish:
        ocds.publish_step(tender, step)
    return appended.index


def _evict_squatters(entries: dict[int, dict]) -> set[int]:
    """Before storing the steps of ``entries`` (index -> the entry's ``type`` and
    ``subject``): take its index from a step row that holds one of them without being
    that entry's step (a row planted in the database), so that the honest step is
    stored; that row stays, without an index, as evidence, logged here and reported by
    the ledger's status. Returns the indexes already held by their own step (a step of
    the entry's type on the entry's tender), which the caller does not store again."""
    held, squatters = set(), []
    for pk, reference, tag, type_, index in Step.objects.filter(
            ledger_index__in=list(entries)).values_list(
                "pk", "tender__reference", "tender__bid_tag", "type", "ledger_index"):
        entry = entries[index]
        subjects = {f"tender:{reference}", *([_bid_subject_of(tag)] if tag else [])}
        if f"procurement.{type_}" == entry["type"] and entry["subject"] in subjects:
            held.add(index)
            continue
        log.error("procurement.Step %s (tender %s, %s) held ledger index %d, which is "
                  "another change's: index taken away", pk, reference, type_, index)
        squatters.append(pk)
    if squatters:
        Step.objects.filter(pk__in=squatters).update(ledger_index=None)
    return held


def _pending_step(tender: Tender, event: ProcurementEvent, actor, data: dict) -> None:
    """The pending ledger entry and the step of a change that publishes no release (a
    question asked), in the change's transaction: written without the ledger's append
    lock, so that a burst of such changes (companies asking before the enquiry deadline)
    never queues on it nor holds up unrelated writes. The worker's sequencer gives the
    entry, then the step, its index."""
    if event not in PENDING_STEPS:
        raise ValueError(f"{event.value} is not a step that may wait for its index")
    promise = ledger.enqueue(event, f"tender:{tender.reference}", actor, data)
    Step.objects.create(tender=tender, type=event.value.removeprefix("procurement."),
                        ledger_pending=promise.pending, at=promise.at)


# the steps written with a pending entry (``_pending_step``): none publishes an OCDS
# release, whose id and date come from the step's index
PENDING_STEPS = frozenset({ProcurementEvent.QUESTION_ASKED})


def step_entry(step: dict) -> ledger.HeldEntry | None:
    """The pending entry a step row may hold, from its ``type`` and
    ``tender__reference`` (``ledger.keeps_pending_entries``); None for a step that never
    waits for its index."""
    event = f"procurement.{step['type']}"
    if event not in {e.value for e in PENDING_STEPS}:
        return None
    return ledger.HeldEntry(event, f"tender:{step['tender__reference']}")


def bid_entry(bid: dict) -> ledger.HeldEntry:
    """The pending entry a bid row holds, from its tender's ``bid_tag`` and its
    ``commitment`` (``ledger.keeps_pending_entries``)."""
    return ledger.HeldEntry(ProcurementEvent.BID_SUBMITTED.value,
                            _bid_subject_of(bid["tender__bid_tag"]),
                            {"commitment": bid["commitment"]})


def _publish(tender: Tender, index: int) -> None:
    ocds.publish_step(tender, Step.objects.get(ledger_index=index))


def _cpv(value) -> str:
    code = str(value or "").strip()
    if not (len(code) == 10 and code[:8].isdigit() and code[8] == "-" and code[9].isdigit()):
        raise InvalidInput(ProcurementError.CPV_CODE_INVALID, code=code)
    return code


# --- rights -----------------------------------------------------------------------------

def _buyer_agent(actor, tender_or_admin, role: str):
    """The actor is an agent of the buying administration (or above it) with ``role``."""
    admin = tender_or_admin.buyer if isinstance(tender_or_admin, Tender) else tender_or_admin
    if isinstance(actor, directory.SystemActor):
        return None  # the platform itself (demo loader, CLI)
    agent = directory.agent_of(actor)
    if agent is None or role not in agent.role_set or not admin.is_within(agent.administration):
        raise PermissionDenied(ProcurementError.BUYER_ROLE_REQUIRED,
                               role=read_when_rendered(lambda: str(Role(role).label).lower()),
                               administration=read_when_rendered(lambda: admin.name))
    return agent


def require_buyer_officer(actor, tender: Tender) -> None:
    """Raise unless ``actor`` is a procurement officer of the tender's buyer."""
    _buyer_agent(actor, tender, Role.PROCUREMENT_OFFICER)


def _company_user(actor) -> Company:
    company = directory.company_of(actor)
    if company is None or not company.active:
        raise PermissionDenied(ProcurementError.REGISTERED_COMPANY_ONLY)
    return company


# --- plans -------------------------------------------------------------------------------

@transaction.atomic
def create_plan(*, actor, administration: Administration, year: int, title: str) -> Plan:
    _buyer_agent(actor, administration, Role.PROCUREMENT_OFFICER)
    if not 2000 <= int(year) <= 2100:
        raise InvalidInput(ProcurementError.PLAN_YEAR_OUT_OF_RANGE)
    try:
        with transaction.atomic():
            plan = Plan.objects.create(administration=administration, year=year,
                                       title=_text(title, "The title", 300))
    except IntegrityError:
        raise Conflict(ProcurementError.PLAN_EXISTS, administration=administration.code,
                       year=year) from None
    ledger.record(
        ProcurementEvent.PLAN_CREATED,
        f"plan:{administration.code}:{year}",
        actor,
        {"administration": administration.code, "year": year, "title": plan.title},
    )
    return plan


@transaction.atomic
def add_plan_item(*, actor, plan: Plan, description: str, cpv: str, budget_line: str,
                  estimated_value, quarter: int, procedure: str) -> PlanItem:
    _buyer_agent(actor, plan.administration, Role.PROCUREMENT_OFFICER)
    if procedure not in Procedure.values:
        raise InvalidInput(ProcurementError.PLANNED_PROCEDURE_UNKNOWN, procedure=procedure)
    if quarter not in (1, 2, 3, 4):
        raise InvalidInput(ProcurementError.QUARTER_INVALID)
    item = PlanItem.objects.create(
        plan=plan, description=_text(description, "The description", 500), cpv=_cpv(cpv),
        budget_line=_text(budget_line, "The budget line", 50),
        estimated_value=_money(estimated_value, "The estimated value"), quarter=quarter,
        procedure=procedure)
    item.ocid = ocds.plan_item_ocid(item)
    item.save(update_fields=["ocid"])
    appended = ledger.record(
        ProcurementEvent.PLAN_ITEM_ADDED,
        f"plan:{plan.administration.code}:{plan.year}",
        actor,
        {
            "item": item.pk,
            "ocid": item.ocid,
            "description": item.description,
            "cpv": item.cpv,
            "budget_line": item.budget_line,
            "estimated_value": str(item.estimated_value),
            "quarter": quarter,
            "procedure": procedure,
        },
    )
    ocds.publish_plan_item(item, appended.index, timezone.now())
    return item


# --- tenders -----------------------------------------------------------------------------

def _next_reference(buyer: Administration, year: int) -> str:
    prefix = f"{buyer.code}-{year}-"
    last = (Tender.objects.filter(reference__startswith=prefix)
            .order_by("-reference").values_list("reference", flat=True).first())
    return f"{prefix}{int(last.rsplit('-', 1)[1]) + 1 if last else 1:04d}"


def _lot_rows(lots: Iterable[dict]) -> list[dict]:
    rows = []
    for n, lot in enumerate(lots, start=1):
        if not isinstance(lot, dict):
            raise InvalidInput(ProcurementError.LOT_MALFORMED)
        items = lot.get("items") or []
        rows.append({
            "number": n, "title": _text(lot.get("title"), f"Lot {n}'s title", 300),
            "cpv": _cpv(lot.get("cpv")),
            "estimated_value": _money(lot.get("estimated_value"), f"Lot {n}'s estimated value"),
            "items": [{"description": _text(i.get("description"), "An item's description", 300),
                       "cpv": _cpv(i.get("cpv") or lot.get("cpv")),
                       "quantity": _money(i.get("quantity"), "An item's quantity"),
                       "unit": _text(i.get("unit"), "An item's unit", 30)} for i in items],
        })
    if not rows:
        raise InvalidInput(ProcurementError.TENDER_WITHOUT_LOTS)
    if len(rows) > 100:
        raise InvalidInput(ProcurementError.TOO_MANY_LOTS)
    return rows


@transaction.atomic
def create_tender(*, actor, buyer: Administration, title: str, procedure: str,
                  enquiry_deadline: dt.datetime, submission_deadline: dt.datetime,
                  lots: list[dict], description: str = "",
                  award_criteria: str = AwardCriteria.LOWEST_PRICE, price_weight: int = 100,
                  standstill_days: int = 10, framework: Tender | None = None,
                  invited: Iterable[Company] = (), compliance_criteria: Iterable[str] | None = None,
                  plan_item: PlanItem | None = None, now: dt.datetime | None = None) -> Tender:
    """A draft tender with its lots (and, for negotiated procedures, invited companies)."""
    _buyer_agent(actor, buyer, Role.PROCUREMENT_OFFICER)
    now = _now(now)
    if procedure not in Procedure.values:
        raise InvalidInput(ProcurementError.PROCEDURE_UNKNOWN, procedure=procedure)
    if award_criteria not in AwardCriteria.values:
        raise InvalidInput(ProcurementError.AWARD_CRITERIA_UNKNOWN, criteria=award_criteria)
    if award_criteria == AwardCriteria.WEIGHTED and not 1 <= int(price_weight) <= 99:
        raise InvalidInput(ProcurementError.PRICE_WEIGHT_OUT_OF_RANGE)
    if not 0 <= int(standstill_days) <= 60:
        raise InvalidInput(ProcurementError.STANDSTILL_OUT_OF_RANGE)
    if plan_item is not None and (plan_item.plan.administration != buyer or
                                  Tender.objects.filter(plan_item=plan_item).exists()):
        raise InvalidInput(ProcurementError.PLANNED_PURCHASE_REQUIRED)
    if framework is not None:
        framework = Tender.objects.get(pk=framework.pk)  # its current state, not a copy's
    if (procedure == Procedure.MINI_COMPETITION) != (framework is not None):
        raise InvalidInput(ProcurementError.CALL_OFF_MINI_COMPETITION_ONLY)
    if framework is not None and (framework.procedure != Procedure.FRAMEWORK or
                                  framework.state != S.COMPLETE or framework.buyer != buyer):
        raise InvalidInput(ProcurementError.CALL_OFF_FRAMEWORK_INVALID)
    rows = _lot_rows(lots)
    criteria = _compliance_criteria(DEFAULT_COMPLIANCE if compliance_criteria is None
                                    else compliance_criteria)
    total = sum(r["estimated_value"] for r in rows)
    if procedure == Procedure.SIMPLIFIED and total > SIMPLIFIED_THRESHOLD:
        raise InvalidInput(ProcurementError.SIMPLIFIED_OVER_THRESHOLD,
                           threshold=f"{SIMPLIFIED_THRESHOLD:,}",
                           total=f"{total:,}")
    _check_deadlines(procedure, enquiry_deadline, submission_deadline, now)
    tender = None
    for _ in range(3):  # two officers may take the same number: retry with the next
        try:
            with transaction.atomic():
                tender = Tender.objects.create(
                    reference=_next_reference(buyer, now.year), buyer=buyer,
                    title=_text(title, "The title", 300),
                    description=_text(description, "The description", 20000, required=False),
                    procedure=procedure, award_criteria=award_criteria,
                    price_weight=100 if award_criteria == AwardCriteria.LOWEST_PRICE
                    else int(price_weight),
                    estimated_value=total, enquiry_deadline=enquiry_deadline,
                    submission_deadline=submission_deadline,
                    standstill_days=int(standstill_days), framework=framework,
                    compliance_criteria=criteria, plan_item=plan_item,
                    ocid=plan_item.ocid if plan_item else "",
                    created_by=actor if getattr(actor, "pk", None) else None, created_at=now)
            break
        except IntegrityError:
            continue
    if tender is None:
        raise Conflict(ProcurementError.TENDER_NUMBERING_FAILED)
    for row in rows:
        items = row.pop("items")
        lot = Lot.objects.create(tender=tender, **row)
        Item.objects.bulk_create([Item(lot=lot, **i) for i in items])
    for company in invited:
        Participation.objects.create(tender=tender, company=company,
                                     kind=Participation.Kind.INVITED)
    if framework is not None:
        for award in framework.awards.filter(status=Award.Status.ACTIVE):
            Participation.objects.get_or_create(tender=tender, company=award.supplier,
                                                defaults={"kind": Participation.Kind.INVITED})
    # a draft shows in the public log only as a hash: its details come with publication
    _step(
        tender,
        ProcurementEvent.TENDER_DRAFTED,
        actor,
        {
            "reference": tender.reference,
            "buyer": buyer.code,
            "sha256": _sha(json.dumps(_draft_details(tender), sort_keys=True)),
        },
        at=now,
    )
    return tender


def _draft_details(tender: Tender) -> dict:
    return {"reference": tender.reference, "buyer": tender.buyer.code, "title": tender.title,
            "procedure": tender.procedure,
            "estimated_value": str(Decimal(tender.estimated_value).quantize(Decimal("0.001"))),
            "framework": tender.framework.reference if tender.framework else None,
            "ocid": ocds.ocid(tender)}


def _check_deadlines(procedure: str, enquiry: dt.datetime, submission: dt.datetime,
                     now: dt.datetime) -> None:
    if timezone.is_naive(enquiry) or timezone.is_naive(submission):
        raise InvalidInput(ProcurementError.DEADLINE_WITHOUT_TIME_ZONE)
    if enquiry <= now:
        raise InvalidInput(ProcurementError.ENQUIRY_DEADLINE_PAST)
    if submission <= enquiry:
        raise InvalidInput(ProcurementError.SUBMISSION_BEFORE_ENQUIRY)
    if submission - now > dt.timedelta(days=366):
        raise InvalidInput(ProcurementError.SUBMISSION_DEADLINE_TOO_FAR)


def _tendering_period(procedure: str) -> dt.timedelta:
    """The legal minimum between publication and the submission deadline for
    ``procedure`` (``SAHAB_PROCUREMENT_MIN_DAYS`` replaces it on training platforms)."""
    return dt.timedelta(days=MIN_TENDERING_DAYS[procedure]
                        if settings.PROCUREMENT_MIN_DAYS is None
                        else settings.PROCUREMENT_MIN_DAYS)


@transaction.atomic
def publish_tender(*, actor, tender: Tender, now: dt.datetime | None = None) -> Tender:
    """Publish: the committee's opening keys are fixed and the enquiry period starts."""
    import secrets

    tender = locked_tenders().get(pk=tender.pk)
    _buyer_agent(actor, tender, Role.PROCUREMENT_OFFICER)
    now = _now(now)
    _move(tender, "publish")
    _check_deadlines(tender.procedure, tender.enquiry_deadline, tender.submission_deadline, now)
    minimum = _tendering_period(tender.procedure)
    if tender.submission_deadline - now < minimum and \
            not isinstance(actor, directory.SystemActor):
        raise InvalidInput(ProcurementError.TENDER_PERIOD_TOO_SHORT,
                           procedure=read_when_rendered(
                               lambda: str(tender.get_procedure_display()).lower()),
                           days=minimum.days)
    if tender.procedure == Procedure.NEGOTIATED and not tender.participants.exists():
        raise InvalidInput(ProcurementError.NEGOTIATED_WITHOUT_INVITATION)
    members = list(tender.committee.all())
    if not members or tender.committee_threshold < 1:
        raise InvalidInput(ProcurementError.OPENING_COMMITTEE_MISSING)
    missing = [m.position for m in members if not bytes(m.public_key)]
    if missing:
        raise InvalidInput(ProcurementError.OPENING_KEYS_MISSING, missing=missing)
    tender.bid_tag, tender.bid_tag_salt = secrets.token_hex(16), secrets.token_hex(16)
    tender.published_at = now
    tender.save()
    _step(
        tender,
        ProcurementEvent.TENDER_PUBLISHED,
        actor,
        {
            **_draft_details(tender),
            "compliance_criteria": tender.compliance_criteria,
            "enquiry_deadline": tender.enquiry_deadline.isoformat(),
            "submission_deadline": tender.submission_deadline.isoformat(),
            "lots": [
                {
                    "number": lot.number,
                    "title": lot.title,
                    "cpv": lot.cpv,
                    "estimated_value": str(lot.estimated_value),
                }
                for lot in tender.lots.all()
            ],
            "committee": _committee_data(tender, members),
            "bid_tag_commitment": sealing.tag_commitment(tender.bid_tag, tender.bid_tag_salt),
        },
        at=now,
    )
    return tender


def _committee_data(tender: Tender, members: list[CommitteeMember]) -> dict:
    return {"threshold": tender.committee_threshold, "format": sealing.FORMAT,
            "members": [{"position": m.position, "member": directory.actor_id(m.member),
                         "public_key": sealing.b64(bytes(m.public_key))} for m in members]}


# --- opening committee -------------------------------------------------------------------

@transaction.atomic
def name_committee(*, actor, tender: Tender, members: list, threshold: int) -> list:
    """The buyer names the opening committee of a draft tender: n agents (of any
    administration, e.g. HAICOP), any ``threshold`` of whom open the bids."""
    tender = locked_tenders().get(pk=tender.pk)
    _buyer_agent(actor, tender, Role.PROCUREMENT_OFFICER)
    if tender.state != S.DRAFT:
        raise Conflict(ProcurementError.OPENING_COMMITTEE_AFTER_PUBLICATION)
    users = list(dict.fromkeys(members))
    if not 1 <= len(users) <= sealing.MAX_MEMBERS or len(users) != len(members):
        raise InvalidInput(ProcurementError.OPENING_COMMITTEE_SIZE, max=sealing.MAX_MEMBERS)
    if not 1 <= int(threshold) <= len(users):
        raise InvalidInput(ProcurementError.OPENING_THRESHOLD_INVALID)
    for user in users:
        if directory.agent_of(user) is None:
            raise InvalidInput(ProcurementError.NOT_A_PUBLIC_AGENT, user=user)
    tender.committee.all().delete()
    rows = [CommitteeMember.objects.create(tender=tender, position=n, member=user)
            for n, user in enumerate(users, start=1)]
    tender.committee_threshold = int(threshold)
    tender.save(update_fields=["committee_threshold"])
    _step(
        tender,
        ProcurementEvent.COMMITTEE_NAMED,
        actor,
        {
            "threshold": tender.committee_threshold,
            "members": [
                {"position": r.position, "member": directory.actor_id(r.member)} for r in rows
            ],
        },
    )
    return rows


def _member(actor, tender: Tender) -> CommitteeMember:
    row = (CommitteeMember.objects.select_for_update().filter(tender=tender, member=actor)
           .first() if getattr(actor, "pk", None) else None)
    if row is None:
        raise PermissionDenied(ProcurementError.OPENING_COMMITTEE_ONLY, reference=tender.reference)
    return row


@transaction.atomic
def register_committee_key(*, actor, tender: Tender, public_key: bytes) -> CommitteeMember:
    """A member registers the public half of the one-time opening key made on their own
    machine (``sahab committee keygen``); the platform never sees the private half."""
    tender = locked_tenders().get(pk=tender.pk)
    row = _member(actor, tender)
    if tender.state != S.DRAFT:
        raise Conflict(ProcurementError.OPENING_KEY_AFTER_PUBLICATION)
    if len(public_key) != 32:
        raise InvalidInput(ProcurementError.OPENING_KEY_INVALID)
    if CommitteeMember.objects.filter(tender=tender, public_key=public_key).exists():
        raise InvalidInput(ProcurementError.OPENING_KEY_SHARED)
    row.public_key = public_key
    row.key_ledger_index = _step(
        tender,
        ProcurementEvent.COMMITTEE_KEY_REGISTERED,
        actor,
        {"position": row.position, "public_key": sealing.b64(public_key)},
    )
    row.save()
    return row


@transaction.atomic
def release_committee_key(*, actor, tender: Tender, private_key: bytes,
                          now: dt.datetime | None = None) -> CommitteeMember:
    """A member releases their opening key after the deadline; the release is public
    (a ledger entry) and anyone can check it against the registered public key."""
    tender = locked_tenders().get(pk=tender.pk)
    row = _member(actor, tender)
    now = _now(now)
    if tender.published_at is None or \
            min(now, timezone.now()) < tender.submission_deadline:
        raise Conflict(ProcurementError.OPENING_KEY_RELEASE_EARLY,
                       deadline=f"{tender.submission_deadline:%Y-%m-%d %H:%M}")
    if tender.state == S.CANCELLED:
        raise Conflict(ProcurementError.TENDER_CANCELLED_NOT_OPENED)
    if bytes(row.released_key):
        raise Conflict(ProcurementError.OPENING_KEY_RELEASED_ALREADY)
    try:
        public = sealing.member_public_key(private_key)
    except sealing.SealError as exc:
        raise InvalidInput(ProcurementError.OPENING_KEY_MALFORMED, error=str(exc)) from None
    if public != bytes(row.public_key):
        raise InvalidInput(ProcurementError.OPENING_KEY_NOT_REGISTERED)
    row.released_key, row.released_at = private_key, now
    row.release_ledger_index = _step(
        tender,
        ProcurementEvent.COMMITTEE_KEY_RELEASED,
        actor,
        {"position": row.position, "private_key": sealing.b64(private_key)},
        at=now,
    )
    row.save()
    return row


def demo_key_path(tender: Tender, position: int):
    """Where the demo keeps its committees' opening keys (never in production)."""
    return settings.SAHAB_HOME / "demo-only-keys" / f"{tender.reference}-{position}.key"


def release_demo_keys(tender: Tender, now: dt.datetime | None = None) -> int:
    """Release the opening keys the demo keeps under ``SAHAB_HOME/demo-only-keys`` (a
    platform in production has none: its committees hold their own keys)."""
    released = 0
    for row in CommitteeMember.objects.filter(tender=tender).select_related("member"):
        path = demo_key_path(tender, row.position)
        have = CommitteeMember.objects.filter(tender=tender).exclude(released_key=b"").count()
        if bytes(row.released_key) or not path.exists() or have >= tender.committee_threshold:
            continue
        release_committee_key(actor=row.member, tender=tender,
                              private_key=base64.b64decode(path.read_text().strip()), now=now)
        released += 1
    return released


# --- company signing keys ---------------------------------------------------------------

@transaction.atomic
def register_signing_key(*, actor, public_key: bytes, proof: bytes,
                         certificate: str = "") -> SigningKey:
    """A company member registers an Ed25519 bid-signing key made on the company's own
    machine; ``proof`` is its signature of ``sealing.registration_message``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from sahab.procurement import certificates

    company = _company_user(actor)
    if len(public_key) != 32:
        raise InvalidInput(ProcurementError.SIGNING_KEY_INVALID)
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            proof, sealing.registration_message(company.pk, public_key))
    except (InvalidSignature, ValueError):
        raise InvalidInput(ProcurementError.PROOF_OF_POSSESSION_INVALID) from None
    fingerprint = sealing.fingerprint(public_key)
    if SigningKey.objects.filter(fingerprint=fingerprint).exists():
        raise Conflict(ProcurementError.SIGNING_KEY_REGISTERED_ALREADY)
    pem = certificates.certify(company_name=company.name,
                               matricule_fiscal=company.matricule_fiscal,
                               public_key=public_key, certificate=certificate)
    appended = ledger.record(
        ProcurementEvent.SIGNING_KEY_REGISTERED,
        f"company:{company.pk}",
        actor,
        {
            "company": company.pk,
            "public_key": sealing.b64(public_key),
            "fingerprint": fingerprint,
            "certificate_sha256": _sha(pem),
        },
    )
    return SigningKey.objects.create(company=company, public_key=public_key,
                                     fingerprint=fingerprint, certificate=pem,
                                     registered_by=actor, ledger_index=appended.index)


@transaction.atomic
def revoke_signing_key(*, actor, key: SigningKey) -> SigningKey:
    """Revoke a key (lost, stolen, or replaced by a new one: rotation is a registration
    followed by this); bids it signed afterwards are refused."""
    company = _company_user(actor)
    key = SigningKey.objects.select_for_update().get(pk=key.pk)
    if key.company_id != company.pk:
        raise NotFound(ProcurementError.NO_SUCH_SIGNING_KEY)
    if key.revoked_at is not None:
        raise Conflict(ProcurementError.SIGNING_KEY_REVOKED_ALREADY)
    key.revoked_at = timezone.now()
    key.revoked_ledger_index = ledger.record(
        ProcurementEvent.SIGNING_KEY_REVOKED, f"company:{company.pk}", actor,
        {"company": company.pk, "fingerprint": key.fingerprint}).index
    key.save()
    return key


@transaction.atomic
def cancel_tender(*, actor, tender: Tender, reason: str,
                  now: dt.datetime | None = None) -> Tender:
    tender = locked_tenders().get(pk=tender.pk)
    _buyer_agent(actor, tender, Role.PROCUREMENT_OFFICER)
    reason = _text(reason, "The reason", 2000)
    _move(tender, "cancel")
    tender.suspended = False
    tender.lots.update(suspended_since=None, time_left=None)
    tender.save()
    _step(tender, ProcurementEvent.TENDER_CANCELLED, actor, {"reason": reason}, at=now)
    _notify_bidders(tender, f"{tender.reference} is cancelled: {reason}")
    return tender


@transaction.atomic
def add_document(*, actor, tender: Tender, name: str, content: bytes) -> TenderDocument:
    """Attach a document; a document of the same name becomes its next version."""
    tender = locked_tenders().get(pk=tender.pk)
    _buyer_agent(actor, tender, Role.PROCUREMENT_OFFICER)
    media_type, digest = document_checks.check_document(name, content)
    # Once published, the documents change only by an amendment: with its rationale, the
    # legal minimum of days after it, and the bidders told (docs/procurement.md).
    if tender.state != S.DRAFT:
        raise Conflict(ProcurementError.PUBLISHED_DOCUMENTS_NEED_AMENDMENT)
    document = _new_version(tender, name, content, media_type, digest)
    _step(
        tender,
        ProcurementEvent.DOCUMENT_ADDED,
        actor,
        {"name": name, "version": document.version, "sha256": digest, "size": len(content)},
    )
    return document


def _new_version(tender: Tender, name: str, content: bytes, media_type: str,
                 digest: str) -> TenderDocument:
    version = (tender.documents.filter(name=name).order_by("-version")
               .values_list("version", flat=True).first() or 0) + 1
    return TenderDocument.objects.create(tender=tender, name=name, version=version,
                                         media_type=media_type, size=len(content),
                                         sha256=digest, content=content)


# --- amendments -------------------------------------------------------------------------
#
# A buyer's procurement officer amends a published tender before its deadline (avis
# rectificatif): new document versions and/or later deadlines, with a rationale. Bidders
# keep at least the legal minimum of days after it; companies with a sealed bid are told
# and may replace or withdraw it; a bid sealed before the amendment stays valid unless
# its company withdraws it (docs/procurement.md, "Amendments").

MAX_AMENDMENT_DOCUMENTS = 20


def min_days_after_amendment() -> int:
    """Days bidders keep at least after an amendment: the setting, or the training
    platforms' override of every minimum (``SAHAB_PROCUREMENT_MIN_DAYS``)."""
    if settings.PROCUREMENT_MIN_DAYS is not None:
        return settings.PROCUREMENT_MIN_DAYS
    return settings.PROCUREMENT_MIN_DAYS_AFTER_AMENDMENT


def _later(value: dt.datetime | None, old: dt.datetime, what: str) -> dt.datetime:
    if value is None:
        return old
    if timezone.is_naive(value):
        raise InvalidInput(ProcurementError.DEADLINE_WITHOUT_TIME_ZONE)
    if value < old:
        raise InvalidInput(ProcurementError.AMENDMENT_ADVANCES_ENQUIRY
                           if what == "enquiry deadline" else
                           ProcurementError.AMENDMENT_ADVANCES_SUBMISSION,
                           deadline=f"{old:%Y-%m-%d %H:%M}")
    return value


@transaction.atomic
def amend_tender(*, actor, tender: Tender, rationale: str,
                 documents: Iterable[tuple[str, bytes]] = (),
                 enquiry_deadline: dt.datetime | None = None,
                 submission_deadline: dt.datetime | None = None,
                 compliance_criteria: Iterable[str] | None = None,
                 lots: Iterable[dict] | None = None,
                 now: dt.datetime | None = None) -> TenderAmendment:
    """Amend a published tender before its submission deadline: new versions of
    documents (a same-named document gets its next version), new compliance criteria
    (the whole list, as bids will be checked against it), new lots or changed ones (the
    whole list: see ``_amended_lots``) and/or later deadlines, with a rationale. One
    ledger entry (``procurement.tender.amended``) and one OCDS ``tenderAmendment``
    release; an upheld complaint waiting for the documents to be amended is remedied by
    an amendment with documents.

    After the amendment bidders keep at least ``min_days_after_amendment()`` days: an
    amendment that would leave fewer must extend the submission deadline, else it is
    refused and nothing is written."""
    tender = locked_tenders().get(pk=tender.pk)
    _buyer_agent(actor, tender, Role.PROCUREMENT_OFFICER)
    now = _now(now)
    if tender.state == S.DRAFT:
        raise Conflict(ProcurementError.AMENDMENT_OF_DRAFT)
    # a suspended tender has not closed: it may still be amended (the remedy of an upheld
    # complaint), and the time of the suspension is given back after
    if tender.state not in (S.ENQUIRIES, S.TENDERING) or \
            (now >= tender.submission_deadline and not tender.suspended):
        raise Conflict(ProcurementError.AMENDMENT_AFTER_DEADLINE,
                       deadline=f"{tender.submission_deadline:%Y-%m-%d %H:%M}")
    rationale = _text(rationale, "The rationale", 20000)
    files = list(documents)
    if len(files) > MAX_AMENDMENT_DOCUMENTS:
        raise InvalidInput(ProcurementError.AMENDMENT_TOO_MANY_DOCUMENTS,
                           max=MAX_AMENDMENT_DOCUMENTS)
    names = [name for name, _content in files]
    if len(set(names)) != len(names):
        raise InvalidInput(ProcurementError.AMENDMENT_DOCUMENT_NAMES_REPEATED)
    checked = [(name, content, *document_checks.check_document(name, content))
               for name, content in files]
    old_enquiry, old_submission = tender.enquiry_deadline, tender.submission_deadline
    enquiry = _later(enquiry_deadline, old_enquiry, "enquiry deadline")
    submission = _later(submission_deadline, old_submission, "submission deadline")
    if enquiry != old_enquiry and (tender.state != S.ENQUIRIES or now >= old_enquiry):
        raise Conflict(ProcurementError.ENQUIRY_PERIOD_OVER)
    if submission <= enquiry:
        raise InvalidInput(ProcurementError.SUBMISSION_BEFORE_ENQUIRY)
    if submission - now > dt.timedelta(days=366):
        raise InvalidInput(ProcurementError.SUBMISSION_DEADLINE_TOO_FAR)
    old_criteria = list(tender.compliance_criteria)
    criteria = old_criteria if compliance_criteria is None else \
        _compliance_criteria(compliance_criteria)
    lot_changes = [] if lots is None else _amended_lots(tender, lots)
    if not checked and enquiry == old_enquiry and submission == old_submission and \
            criteria == old_criteria and not lot_changes:
        raise InvalidInput(ProcurementError.AMENDMENT_EMPTY)
    tender.enquiry_deadline, tender.submission_deadline = enquiry, submission
    tender.compliance_criteria = criteria
    if lot_changes:
        _apply_lot_changes(tender, lot_changes)
        _check_amended_lots(tender, lot_changes, actor, now)
    added = [_new_version(tender, name, content, media_type, digest)
             for name, content, media_type, digest in checked]
    remedied = _remedies_due(tender) if added else []
    changed = {}
    for complaint in remedied:  # the time of their suspension is given back
        changed |= _resume_remedied(tender, complaint, now)
    minimum = dt.timedelta(days=min_days_after_amendment())
    if tender.submission_deadline - now < minimum and \
            not isinstance(actor, directory.SystemActor):
        earliest = now + minimum
        raise InvalidInput(ProcurementError.AMENDMENT_PERIOD_TOO_SHORT, days=minimum.days,
                           earliest=f"{earliest:%Y-%m-%d %H:%M}")
    tender.save()
    amendment = TenderAmendment.objects.create(
        tender=tender, number=tender.amendments.count() + 1, rationale=rationale,
        old_enquiry_deadline=old_enquiry, new_enquiry_deadline=tender.enquiry_deadline,
        old_submission_deadline=old_submission,
        new_submission_deadline=tender.submission_deadline,
        documents=[{"id": d.pk, "name": d.name, "version": d.version, "sha256": d.sha256,
                    "size": d.size} for d in added],
        **({"old_compliance_criteria": old_criteria, "new_compliance_criteria": criteria}
           if criteria != old_criteria else {}),
        lots=lot_changes,
        amended_by=actor if getattr(actor, "pk", None) else None, amended_at=now)
    data = {"amendment": amendment.number, "rationale": rationale,
            "documents": [{k: d[k] for k in ("name", "version", "sha256", "size")}
                          for d in amendment.documents],
            "old_enquiry_deadline": old_enquiry.isoformat(),
            "enquiry_deadline": tender.enquiry_deadline.isoformat(),
            "old_submission_deadline": old_submission.isoformat(),
            "submission_deadline": tender.submission_deadline.isoformat(),
            **({"old_compliance_criteria": old_criteria, "compliance_criteria": criteria}
               if criteria != old_criteria else {}),
            **({"lots": lot_changes} if lot_changes else {})}
    # written into the entry: the opening and verify-opening read it from there
    to_confirm = sealing.changes_conditions(data)
    if to_confirm:
        data["bids_to_confirm"] = True
    amendment.ledger_index = _step(tender, ProcurementEvent.TENDER_AMENDED, actor, data,
                                   at=now, publish=False)
    amendment.save(update_fields=["ledger_index"])
    if to_confirm:
        tender.bids.filter(status=Bid.Status.SUBMITTED).update(
            confirm_amendment=amendment.number)
    _publish(tender, amendment.ledger_index)
    for complaint in remedied:  # only an amendment with documents remedies
        first = added[0]
        complaint.remedied_index = _step(
            tender,
            ProcurementEvent.COMPLAINT_REMEDIED,
            actor,
            {"complaint": complaint.pk, "amendment": amendment.number,
             "document": first.name, "version": first.version,
             "lots": [lot.number for lot in complaint.lots.all()],
             "submission_deadline": tender.submission_deadline.isoformat()},
            at=now, publish=False,
        )
        complaint.save(update_fields=["remedied_index"])
        _publish(tender, complaint.remedied_index)
    _notify_amendment(amendment, to_confirm=to_confirm)
    return amendment


LOT_TERMS = ("title", "cpv", "estimated_value")


def _amended_lots(tender: Tender, lots: Iterable[dict]) -> list[dict]:
    """What an amendment changes in the lots, from the whole new list: each lot that
    stays names its ``number`` (its title, CPV and estimated value may change; its items
    stay), a new lot has none (it gets the next number). A lot leaves only by its own
    cancellation, with reasons, never by being left out of an amendment. Returns the
    changes: ``{"number", "old": terms or None for a new lot, "new": terms, "items"}``,
    amounts as strings (as on the ledger)."""
    rows = list(lots)
    if not all(isinstance(row, dict) for row in rows):
        raise InvalidInput(ProcurementError.LOT_MALFORMED)
    current = {lot.number: lot for lot in tender.lots.all()}
    named = [row["number"] for row in rows if row.get("number") is not None]
    if len(set(named)) != len(named) or not set(named) <= set(current):
        raise InvalidInput(ProcurementError.AMENDED_LOT_UNKNOWN,
                           numbers=", ".join(str(n) for n in sorted(set(named) - set(current))
                                             ) or ", ".join(str(n) for n in named))
    kept = {n for n, lot in current.items() if not lot.cancelled}
    if kept - set(named):
        raise InvalidInput(ProcurementError.AMENDMENT_DROPS_LOT,
                           numbers=", ".join(str(n) for n in sorted(kept - set(named))))
    if len(current) + sum(1 for row in rows if row.get("number") is None) > 100:
        raise InvalidInput(ProcurementError.TOO_MANY_LOTS)
    changes, next_number = [], max(current, default=0) + 1
    for row in rows:
        number = row.get("number")
        if number is None:
            [checked] = _lot_rows([row])
            items = checked.pop("items")
            checked["number"] = next_number
            next_number += 1
            changes.append({"number": checked["number"], "old": None,
                            "new": _lot_terms(checked), "items": _items_terms(items)})
            continue
        lot = current[number]
        if lot.cancelled:
            raise InvalidInput(ProcurementError.AMENDED_LOT_CANCELLED, number=number)
        new = _lot_terms({"title": _text(row.get("title"), f"Lot {number}'s title", 300),
                          "cpv": _cpv(row.get("cpv")),
                          "estimated_value": _money(row.get("estimated_value"),
                                                    f"Lot {number}'s estimated value")})
        old = _lot_terms({term: getattr(lot, term) for term in LOT_TERMS})
        if new != old:
            changes.append({"number": number, "old": old, "new": new})
    return changes


def _lot_terms(row: dict) -> dict:
    return {"title": row["title"], "cpv": row["cpv"],
            "estimated_value": f"{Decimal(row['estimated_value']):.3f}"}


def _items_terms(items: list[dict]) -> list[dict]:
    return [{**item, "quantity": f"{Decimal(item['quantity']):.3f}"} for item in items]


def _apply_lot_changes(tender: Tender, changes: list[dict]) -> None:
    for change in changes:
        terms = {**change["new"], "estimated_value": Decimal(change["new"]["estimated_value"])}
        if change["old"] is None:
            lot = Lot.objects.create(tender=tender, number=change["number"], **terms)
            Item.objects.bulk_create([Item(lot=lot, **{**i, "quantity": Decimal(i["quantity"])})
                                      for i in change["items"]])
        else:
            Lot.objects.filter(tender=tender, number=change["number"]).update(**terms)


def _check_amended_lots(tender: Tender, changes: list[dict], actor,
                        now: dt.datetime) -> None:
    """The rules of a new tender, applied to its amended lots: the tender's value is the
    sum of its lots (a simplified procedure stays under its threshold), and a lot added
    gets the procedure's whole tendering period — in a restricted procedure, only while
    companies may still apply to be qualified for it."""
    total = tender.lots.filter(cancelled=False).aggregate(total=Sum("estimated_value"))["total"]
    if tender.procedure == Procedure.SIMPLIFIED and total > SIMPLIFIED_THRESHOLD:
        raise InvalidInput(ProcurementError.SIMPLIFIED_OVER_THRESHOLD,
                           threshold=f"{SIMPLIFIED_THRESHOLD:,}", total=f"{total:,}")
    tender.estimated_value = total
    if not any(change["old"] is None for change in changes):
        return
    if tender.procedure == Procedure.RESTRICTED and tender.state != S.ENQUIRIES:
        raise Conflict(ProcurementError.LOT_ADDED_AFTER_APPLICATIONS)
    minimum = _tendering_period(tender.procedure)
    if tender.submission_deadline - now < minimum and \
            not isinstance(actor, directory.SystemActor):
        raise InvalidInput(ProcurementError.LOT_ADDED_PERIOD_TOO_SHORT, days=minimum.days,
                           earliest=f"{now + minimum:%Y-%m-%d %H:%M}")


def _compliance_criteria(criteria: Iterable[str]) -> list[str]:
    """The criteria every bid is checked against: distinct texts, 30 at most."""
    checked = [_text(c, "A compliance criterion", 300) for c in criteria]
    if len(checked) > 30 or len(set(checked)) != len(checked):
        raise InvalidInput(ProcurementError.TOO_MANY_CRITERIA)
    return checked


def _notify_amendment(amendment: TenderAmendment, *, to_confirm: bool) -> None:
    """Companies with a sealed bid, and those that asked questions, are told in the
    platform and by mail. When the amendment changed the conditions (``to_confirm``)
    bidders must confirm or replace their bid before the deadline, else it is not opened;
    after later deadlines alone their bid stays valid."""
    tender = amendment.tender
    bidders = set(tender.bids.filter(status=Bid.Status.SUBMITTED)
                  .values_list("company_id", flat=True))
    askers = set(tender.questions.values_list("company_id", flat=True)) - bidders
    deadline = f"{tender.submission_deadline:%Y-%m-%d %H:%M} UTC"
    text = (f"{tender.reference} is amended (amendment no. {amendment.number}): "
            f"{amendment.rationale} Bids are due by {deadline}.")
    to_bidders = (f" You must confirm or replace your sealed bid by {deadline}: a bid not "
                  f"confirmed after amendment no. {amendment.number} is not opened; you may "
                  "also withdraw it." if to_confirm else
                  " Your sealed bid stays valid unless you withdraw it; you may replace it "
                  "before the deadline.")
    Notice.objects.bulk_create(
        [Notice(company_id=c, tender=tender, text=text + to_bidders) for c in sorted(bidders)] +
        [Notice(company_id=c, tender=tender, text=text) for c in sorted(askers)])
    notifications.tender_amended(amendment, bidders=bidders, others=askers,
                                 to_confirm=to_confirm)


def _remedies_due(tender: Tender) -> list[Complaint]:
    return list(tender.complaints.select_for_update().filter(
        status=CS.UPHELD, remedied_at=None, remedy=Complaint.Remedy.AMEND_DOCUMENTS))


def _resume_remedied(tender: Tender, complaint: Complaint, now: dt.datetime) -> dict:
    """An upheld complaint's remedy (the documents amended) is done: its lots resume, with
    the time of the suspension given back."""
    complaint.remedied_at = now
    if complaint.suspends:
        complaint.suspended_until = now
    complaint.save()
    return _resume(tender, list(complaint.lots.all()), now)


# --- participation --------------------------------------------------------------------

@transaction.atomic
def apply_for_prequalification(*, actor, tender: Tender) -> Participation:
    company = _company_user(actor)
    if tender.procedure != Procedure.RESTRICTED or tender.state != S.ENQUIRIES:
        raise Conflict(ProcurementError.APPLICATION_OUTSIDE_ENQUIRY)
    participation, created = Participation.objects.get_or_create(
        tender=tender, company=company, defaults={"kind": Participation.Kind.CANDIDATE})
    if not created:
        raise Conflict(ProcurementError.APPLIED_ALREADY)
    _step(tender, ProcurementEvent.CANDIDATE_APPLIED, actor, {"company": company.matricule_fiscal})
    return participation


@transaction.atomic
def decide_prequalification(*, actor, participation: Participation, qualified: bool,
                            reason: str = "", now: dt.datetime | None = None
                            ) -> Participation:
    """The buyer qualifies a candidate of a restricted procedure, or refuses it with its
    reasons (public, on the ledger). A refused candidate is told, with the date until
    which it may complain against the refusal."""
    tender = locked_tenders().get(pk=participation.tender_id)
    _buyer_agent(actor, tender, Role.PROCUREMENT_OFFICER)
    now = _now(now)
    if tender.state not in (S.ENQUIRIES, S.TENDERING) or now >= tender.submission_deadline:
        raise Conflict(ProcurementError.QUALIFICATION_AFTER_DEADLINE)
    participation = Participation.objects.select_for_update().get(pk=participation.pk)
    if tender.procedure != Procedure.RESTRICTED or participation.kind not in (
            Participation.Kind.CANDIDATE, Participation.Kind.QUALIFIED,
            Participation.Kind.NOT_QUALIFIED):
        raise NotFound(ProcurementError.NOT_A_CANDIDATE)  # invitations are not decided here
    reason = _text(reason, "The reason", 20000, required=not qualified)
    if not qualified:
        _check_refusal_allowed(tender, participation, now)
    participation.kind = (Participation.Kind.QUALIFIED if qualified
                          else Participation.Kind.NOT_QUALIFIED)
    participation.updated_at = now
    participation.save()
    data = {"company": participation.company.matricule_fiscal, "reason": reason}
    if not qualified:
        due = qualification_complaint_due(participation, tender)
        data["complain_by"] = due.isoformat()
    _step(tender, ProcurementEvent.CANDIDATE_QUALIFIED if qualified
          else ProcurementEvent.CANDIDATE_NOT_QUALIFIED, actor, data, at=now)
    if not qualified:
        Notice.objects.create(
            company=participation.company, tender=tender,
            text=f"{tender.reference}: your company is not qualified to bid. {reason} "
                 f"You may complain against this refusal until {due:%Y-%m-%d %H:%M} UTC.")
    notifications.candidate_decided(participation, reason=reason,
                                    complain_by=None if qualified else due)
    return participation


def _check_refusal_allowed(tender: Tender, participation: Participation,
                           now: dt.datetime) -> None:
    """A refusal leaves the candidate its whole time to complain before the deadline, and
    never undoes the complaints body's decision to qualify it."""
    days = settings.PROCUREMENT_QUALIFICATION_COMPLAINT_DAYS
    if tender.submission_deadline - now < dt.timedelta(days=days):
        raise Conflict(ProcurementError.REFUSAL_TOO_LATE, days=days)
    if Complaint.objects.filter(tender=tender, company=participation.company_id,
                                kind=Complaint.Kind.QUALIFICATION,
                                status=Complaint.Status.UPHELD).exists():
        raise Conflict(ProcurementError.QUALIFIED_BY_COMPLAINTS_BODY)


def refusal_complaint_due(tender: Tender, company: Company) -> dt.datetime | None:
    """Until when ``company`` may complain against its refusal, as its latest refusal's
    ledger entry published it (not a row a database writer could move), or None when it
    was never refused."""
    subject = f"tender:{tender.reference}"
    for entry in ledger.entries_about(subject).filter(
            type=ProcurementEvent.CANDIDATE_NOT_QUALIFIED.value).order_by("-index"):
        data = json.loads(bytes(entry.body))["data"]
        if data.get("company") == company.matricule_fiscal and data.get("complain_by"):
            return dt.datetime.fromisoformat(data["complain_by"])
    return None


def qualification_complaint_due(participation: Participation, tender: Tender) -> dt.datetime:
    """Until when a refused candidate may complain against its refusal: the days the
    settings give after the refusal, and never after the submission deadline."""
    days = dt.timedelta(days=settings.PROCUREMENT_QUALIFICATION_COMPLAINT_DAYS)
    return min(participation.updated_at + days, tender.submission_deadline)


def may_bid(tender: Tender, company: Company) -> bool:
    """Open and simplified procedures admit any company; others only those let in."""
    if tender.procedure in (Procedure.OPEN, Procedure.SIMPLIFIED, Procedure.FRAMEWORK):
        return True
    allowed = {Procedure.RESTRICTED: Participation.Kind.QUALIFIED}.get(
        tender.procedure, Participation.Kind.INVITED)
    return tender.participants.filter(company=company, kind=allowed).exists()


# --- clarifications -------------------------------------------------------------------

@transaction.atomic
def ask_question(*, actor, tender: Tender, text: str,
                 now: dt.datetime | None = None) -> Question:
    company = _company_user(actor)
    now = _now(now)
    if tender.state != S.ENQUIRIES or now >= tender.enquiry_deadline:
        raise Conflict(ProcurementError.QUESTION_AFTER_DEADLINE)
    question = Question.objects.create(tender=tender, company=company, asked_at=now,
                                       text=_text(text, "The question", 5000))
    _pending_step(
        tender,
        ProcurementEvent.QUESTION_ASKED,
        actor,
        {"question": question.pk, "text_sha256": _sha(question.text)},
    )
    return question


@transaction.atomic
def answer_question(*, actor, question: Question, answer: str,
                    now: dt.datetime | None = None) -> Question:
    tender = question.tender
    _buyer_agent(actor, tender, Role.PROCUREMENT_OFFICER)
    now = _now(now)
    if tender.state not in (S.ENQUIRIES, S.TENDERING) or now >= tender.submission_deadline:
        raise Conflict(ProcurementError.ANSWER_AFTER_DEADLINE)
    if question.answered_at:
        raise Conflict(ProcurementError.ANSWERED_ALREADY)
    question.answer = _text(answer, "The answer", 10000)
    question.answered_at = now
    question.save()
    _step(
        tender,
        ProcurementEvent.QUESTION_ANSWERED,
        actor,
        {"question": question.pk, "question_text": question.text, "answer": question.answer},
    )
    return question


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


# --- sealed bids ------------------------------------------------------------------------

# The tender a bid goes to, read in one statement with the size of its opening committee
# (which every envelope is checked against) and the signing key the envelope names: three
# ORM queries before, compiled anew on each bid. On PostgreSQL the tender is locked FOR
# SHARE (see ``_share_lock``); SQLite runs one writing transaction at a time anyway.
_BID_TARGET = JoinedRead(
    [Join("t", "procurement.Tender"),
     Join("k", "procurement.SigningKey", "{k.fingerprint} = %s")],
    where="{t.reference} = %s AND ({t.state} <> %s OR %s)",
    extra={"committee_size": "(SELECT COUNT(*) FROM {m} WHERE {m.tender} = {t.pk})"},
    refer={"m": "procurement.CommitteeMember"},
    lock={"postgresql": "FOR SHARE OF t"},
)


# One read for both: the same envelope sent before (by anyone), and the company's bid
# that this one replaces
_EARLIER_BIDS = JoinedRead(
    [Join("b", "procurement.Bid", fields=("commitment",))],
    where="{b.tender} = %s AND ({b.commitment} = %s OR ({b.company} = %s AND {b.status} = %s))")


_BID_INSERT = Insert("procurement.Bid")


def _locked_tender(reference: str, key_fingerprint: str | None = None, *,
                   drafts: bool = True) -> tuple[Tender | None, SigningKey | None]:
    """The tender of ``reference`` (None if there is none, or if it is a draft and not
    ``drafts``), share-locked and read with ``committee_size``, and the signing key of
    ``key_fingerprint`` (None if none)."""
    (tender, key), _ = _BID_TARGET.fetch([key_fingerprint, reference, S.DRAFT.value, drafts],
                                         using=router.db_for_write(Tender))
    return tender, key


def _share_lock(tender: Tender) -> Tender:
    """The tender, locked so that it cannot be opened (or suspended, or cancelled) while
    this transaction runs, yet other bids can go in at the same time; read with the size
    of its opening committee (``committee_size``), which every envelope is checked
    against.

    On PostgreSQL that is ``FOR SHARE`` (the opening's lock, ``models.locked_tenders``,
    waits for every bid in flight, so no bid committed before the deadline is missed by the
    opening); SQLite runs one writing transaction at a time anyway.
    """
    locked, _ = _locked_tender(tender.reference)
    if locked is None:
        raise NotFound(ProcurementError.NO_TENDER, reference=tender.reference)
    return locked


def _bid_subject(tender: Tender) -> str:
    """Bid entries are recorded under a tag that only the opening report reveals, so that
    the public log does not tell how many bids a tender has before its opening."""
    return _bid_subject_of(tender.bid_tag)


def _bid_subject_of(bid_tag: str) -> str:
    return f"sealed-bids:{bid_tag}"


def _usable_key(key: SigningKey | None, company: Company) -> SigningKey:
    """``key``, the one the envelope names, if it is the company's and not revoked."""
    if key is None or key.company_id != company.pk:
        raise InvalidInput(ProcurementError.BID_KEY_NOT_REGISTERED)
    if key.revoked_at is not None:
        raise InvalidInput(ProcurementError.BID_KEY_REVOKED,
                           revoked_at=f"{key.revoked_at:%Y-%m-%d %H:%M}")
    return key


def _parsed(data: bytes) -> sealing.Envelope | InvalidInput:
    """The envelope, or the error to raise if it is malformed (raised when its turn comes
    among the checks: a late bid is refused as late, whatever it holds)."""
    try:
        return sealing.parse(data)
    except sealing.SealError as exc:
        return InvalidInput(ProcurementError.BID_MALFORMED, error=str(exc))


def check_envelope(tender: Tender, company: Company, data: bytes) -> SigningKey:
    """What a submission checks of one envelope, on its own (the benchmarks time it): the
    tender's committee and the key the envelope names are read here. Returns the key."""
    parsed = _parsed(data)
    locked, key = _locked_tender(
        tender.reference, parsed.key if isinstance(parsed, sealing.Envelope) else None)
    return _check_envelope(locked, company, parsed, key)


def _check_envelope(tender: Tender, company: Company, envelope: sealing.Envelope | InvalidInput,
                    key: SigningKey | None) -> SigningKey:
    """Refuse at submission what could never open: another tender or company, wraps that
    do not match the committee, an unregistered or revoked key, a bad signature.
    ``tender`` is read by ``_locked_tender``, with its committee's size, and ``key`` is
    the key the envelope names (None if none has its fingerprint)."""
    if isinstance(envelope, InvalidInput):
        raise envelope
    if envelope.tender != tender.reference:
        raise InvalidInput(ProcurementError.ENVELOPE_OTHER_TENDER, sealed_for=envelope.tender,
                           reference=tender.reference)
    if envelope.company != company.pk:
        raise InvalidInput(ProcurementError.ENVELOPE_OTHER_COMPANY)
    if [w[0] for w in envelope.wraps] != sealing.subsets(tender.committee_size,
                                                          tender.committee_threshold):
        raise InvalidInput(ProcurementError.ENVELOPE_OTHER_COMMITTEE)
    # the key read with the tender is the one on the envelope's key line (named_key)
    key = _usable_key(key if key is not None and key.fingerprint == envelope.key else None,
                      company)
    try:
        envelope.verify(bytes(key.public_key))
    except sealing.SealError as exc:
        raise InvalidInput(ProcurementError.BID_SIGNATURE_REFUSED, error=str(exc)) from None
    return key


def submit_bid(*, actor, tender: Tender | str, envelope: bytes,
               now: dt.datetime | None = None) -> Bid:
    """Store a company's sealed, signed envelope; a previous bid of the company is
    replaced. The platform never sees the bid itself before the opening. ``tender`` is
    the tender or its reference (the API's): either way it is read again, once, under
    its lock, and must be one the actor may see.

    The bid's ledger entry is written pending, in the bid's transaction, which holds the
    tender's shared lock but not the ledger's: bids (and every other write) do not wait
    for one another's commits, nor for the tree. Returns the bid with ``bid.promise``,
    the log's signed promise, at once; the sequencer (the worker, every second, in
    batches) gives the entry its index and ``fill_bid_indexes`` copies it to the bid,
    whose receipt is then ``ledger.receipt(bid.ledger_index)``. Integrating in the
    request instead cost a third of a bid's time and made concurrent bids queue on the
    append lock to integrate one another's entries.
    """
    with transaction.atomic():
        return _store_bid(actor, tender, envelope, _now(now))


def _sequence(bid: Bid) -> int | None:
    """Run the sequencer and write the index it gave the bid's entry on the bid's row
    (only that row); None if the entry could not be integrated (or its index copied)."""
    ledger.integrate()
    ledger.fill_indexes(Bid, [bid.pk])
    return Bid.objects.filter(pk=bid.pk).values_list("ledger_index", flat=True).get()


def _store_bid(actor, tender: Tender | str, envelope: bytes, now: dt.datetime) -> Bid:
    reference = tender if isinstance(tender, str) else tender.reference
    data = bytes(envelope) if isinstance(envelope, bytes | bytearray) else b""
    # only an agent may see a draft (of its own administration: may_see_tender); for
    # anyone else a draft is not even read, so that it answers as a missing reference
    tender, key = _locked_tender(reference, sealing.named_key(data),
                                 drafts=directory.agent_of(actor) is not None)
    if tender is None or not selectors.may_see_tender(actor, tender):
        raise NotFound(ProcurementError.NO_TENDER, reference=reference)
    company = _company_user(actor)
    if tender.state not in (S.ENQUIRIES, S.TENDERING) or now >= tender.submission_deadline:
        raise Conflict(ProcurementError.BID_LATE if now >= tender.submission_deadline else
                       ProcurementError.NOT_TAKING_BIDS, reference=tender.reference,
                       deadline=f"{tender.submission_deadline:%Y-%m-%d %H:%M}")
    if not may_bid(tender, company):
        raise PermissionDenied(ProcurementError.BIDDER_NOT_ADMITTED)
    if not data:
        raise InvalidInput(ProcurementError.ENVELOPE_REQUIRED)
    _check_bid_tag(tender)  # the entry goes under the tag; never under another one
    key = _check_envelope(tender, company, _parsed(data), key)
    commitment = sealing.commitment(data)
    earlier = [bid for (bid,), _ in _EARLIER_BIDS.fetch_all(
        [tender.pk, commitment, company.pk, Bid.Status.SUBMITTED.value],
        using=router.db_for_write(Bid))]
    if any(b.commitment == commitment for b in earlier):
        raise Conflict(ProcurementError.ENVELOPE_SUBMITTED_ALREADY)
    replaced = earlier
    if replaced:  # a company's first bid replaces none: no query for it
        Bid.objects.filter(pk__in=[b.pk for b in replaced]).update(status=Bid.Status.REPLACED)
    # Before the opening the ledger shows that *a* bid came in, not from whom nor where.
    promise = ledger.enqueue(
        ProcurementEvent.BID_SUBMITTED,
        _bid_subject(tender),
        "system",
        {"commitment": commitment, "replaces": [b.commitment for b in replaced]},
    )
    bid = _BID_INSERT.create(tender=tender, company=company, status=Bid.Status.SUBMITTED,
                             envelope=data, commitment=commitment, signing_key=key,
                             submitted_at=now, ledger_pending=promise.pending)
    bid.promise = promise
    return bid


def fill_bid_indexes() -> int:
    """Copy to each bid still without an index the one the sequencer gave its entry (the
    worker's tick: for bids whose writer stopped before ``_sequence``)."""
    return ledger.fill_indexes(Bid)


def bid_index(bid: Bid) -> int | None:
    """The bid's ledger index, integrating its entry first if it is still pending (in the
    caller's transaction, which holds the bid's row: only that row is written, so that
    two such callers never wait for each other's bids). None only if its pending entry
    cannot be integrated."""
    if bid.ledger_index is None and bid.ledger_pending is not None:
        bid.ledger_index = _sequence(bid)
    return bid.ledger_index


@transaction.atomic
def withdraw_bid(*, actor, bid: Bid, now: dt.datetime | None = None) -> Bid:
    """Withdraw a company's sealed bid before the deadline. Its entry is written pending,
    as the bid's was; the tender's shared lock, taken first as a submission takes it,
    makes the opening wait for this transaction, so that the withdrawal is in the log
    before the close whenever it committed before the opening."""
    company = _company_user(actor)
    bid = Bid.objects.select_related("tender").get(pk=bid.pk)
    if bid.company_id != company.pk:
        raise NotFound(ProcurementError.NO_SUCH_BID)
    tender = _share_lock(bid.tender)
    bid = Bid.objects.select_for_update().get(pk=bid.pk)
    if bid.status != Bid.Status.SUBMITTED or _now(now) >= tender.submission_deadline:
        raise Conflict(ProcurementError.BID_NOT_WITHDRAWABLE)
    _check_bid_tag(tender)
    bid.status = Bid.Status.WITHDRAWN
    bid.save(update_fields=["status"])
    ledger.enqueue(ProcurementEvent.BID_WITHDRAWN, _bid_subject(tender), "system",
                   {"commitment": bid.commitment})
    bid.tender = tender
    return bid


@transaction.atomic
def confirm_bid(*, actor, bid: Bid, now: dt.datetime | None = None) -> Bid:
    """The bidding company confirms its sealed bid after an amendment changed the tender's
    conditions: it accepts the amendment by number, and the bid is opened at the deadline.
    The bid stays sealed; the confirmation is a bid entry under the tender's secret tag,
    public only at the opening."""
    company = _company_user(actor)
    bid = Bid.objects.select_related("tender").get(pk=bid.pk)
    if bid.company_id != company.pk:
        raise NotFound(ProcurementError.NO_SUCH_BID)
    # shares the tender's lock with submissions: an amendment or the opening waits for it
    tender = _share_lock(bid.tender)
    bid = Bid.objects.select_for_update().get(pk=bid.pk)
    now = _now(now)
    if now >= tender.submission_deadline or tender.state not in (S.ENQUIRIES, S.TENDERING):
        raise Conflict(ProcurementError.BID_CONFIRMATION_LATE, reference=tender.reference,
                       deadline=f"{tender.submission_deadline:%Y-%m-%d %H:%M}")
    # what the opening will require, read from the proven ledger, not from the bid's row
    amendment = _amendment_to_confirm(tender, bid) \
        if bid.status == Bid.Status.SUBMITTED and bid_index(bid) is not None else None
    if amendment is None:
        raise Conflict(ProcurementError.BID_NOT_TO_CONFIRM)
    _check_bid_tag(tender)
    bid.confirm_amendment = None
    bid.save(update_fields=["confirm_amendment"])
    ledger.record(ProcurementEvent.BID_CONFIRMED, _bid_subject(tender), "system",
                  {"commitment": bid.commitment, "amendment": amendment})
    return bid


def _amendment_to_confirm(tender: Tender, bid: Bid) -> int | None:
    """The number of the amendment the bid must still confirm, by the rule the opening
    applies to the ledger (``sealing.unconfirmed_commitments``): the last amendment entry
    after the bid's own that asks for confirmation, unless a confirmation naming it
    follows. None when nothing is to confirm."""
    amended = ledger.entries_about(f"tender:{tender.reference}").filter(
        type=ProcurementEvent.TENDER_AMENDED.value, index__gt=bid.ledger_index)
    confirmed = ledger.entries_about(_bid_subject(tender)).filter(
        type=ProcurementEvent.BID_CONFIRMED.value, index__gt=bid.ledger_index)
    entries = sorted((e.index, json.loads(bytes(e.body))) for e in [*amended, *confirmed])
    due = sealing.unconfirmed_commitments(
        {bid.commitment: bid.ledger_index}, entries,
        tender_subject=f"tender:{tender.reference}", bid_subject=_bid_subject(tender))
    return due.get(bid.commitment)


# --- timers and opening ---------------------------------------------------------------

def _tenders_due(now: dt.datetime) -> QuerySet[Tender]:
    """The tenders with something to do at ``now``, chosen in SQL so that a tick costs the
    same with ten tenders in progress as with ten thousand: a deadline or standstill that
    has passed, or an opening waiting for its committee. A suspended tender neither closes
    nor ends its standstill (the complaint timers lift a suspension that outlasted its
    time limit); one whose deadline passed still opens."""
    passed = (Q(state__in=[S.ENQUIRIES, S.TENDERING], submission_deadline__lte=now) |
              Q(state=S.ENQUIRIES, enquiry_deadline__lte=now) |
              Q(state=S.STANDSTILL, standstill_until__lte=now))
    return Tender.objects.filter((passed & Q(suspended=False)) | Q(state=S.OPENING))


def advance_tenders(now: dt.datetime | None = None, *, signed: bool = True) -> list[str]:
    """Move every tender whose deadline has passed; returns what was done.

    Runs every few seconds in the worker; safe to run in several workers at once. A
    tender opens once its committee released enough keys (the demo's committees release
    theirs here). ``signed=False`` (the demo loader, in one transaction) proves ledger
    entries against the current tree instead of a signed checkpoint.
    """
    now = _now(now)
    fill_bid_indexes()  # bids whose writer stopped before it could
    done = complaint_timers(now)
    for tender_id, state in _tenders_due(now).values_list("pk", "state"):
        with transaction.atomic():
            tender = locked_tenders(skip_locked=True).filter(pk=tender_id).first()
            if tender is None or tender.state != state or \
                    (tender.suspended and state != S.OPENING):
                continue
            if state in (S.ENQUIRIES, S.TENDERING) and now >= tender.submission_deadline:
                _move(tender, "close_tendering")
                tender.save(update_fields=["state"])
                _step(tender, ProcurementEvent.TENDER_TENDERING_CLOSED, None, {}, at=now)
                done.append(f"{tender.reference}: closed")
            elif state == S.ENQUIRIES and now >= tender.enquiry_deadline:
                _move(tender, "close_enquiries")
                tender.save(update_fields=["state"])
                _step(tender, ProcurementEvent.TENDER_ENQUIRIES_CLOSED, None, {}, at=now)
                done.append(f"{tender.reference}: enquiries closed")
            elif state == S.STANDSTILL and tender.standstill_until and \
                    now >= tender.standstill_until:
                _move(tender, "end_standstill")
                tender.save(update_fields=["state"])
                _step(tender, ProcurementEvent.TENDER_STANDSTILL_ENDED, None, {}, at=now)
                done.append(f"{tender.reference}: standstill ended")
        if tender is not None and tender.state == S.OPENING:
            if releases_missing(tender):
                release_demo_keys(tender, now)
            if releases_missing(tender):
                continue
            try:
                if signed:
                    ledger.checkpoint_if_grown()
                open_tender(tender=tender, now=now, signed=signed)
                done.append(f"{tender.reference}: opened")
            except Exception:  # one failing opening must not stop the others
                log.exception("opening %s failed", tender.reference)
    return done


def _entry_time(entry: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))


def releases_missing(tender: Tender) -> int:
    """How many more opening keys the committee must release before the bids open."""
    released = CommitteeMember.objects.filter(tender=tender).exclude(released_key=b"").count()
    return max(0, tender.committee_threshold - released)


def _check_bid_tag(tender: Tender, signed: bool | None = None) -> None:
    """Refuse to file or open bids under a tag other than the one the tender's publication
    entry committed to: a tag changed in the database, even for a moment, would put a bid
    where the opening never reads it, or make the opening read none of the tender's bids
    (an unsuccessful tender that nobody could tell from an honest one) or another's.

    ``signed`` (the opening) proves the publication entry against the tree (against a
    signed checkpoint when true); bid writes read it once per process."""
    if not tender.bid_tag:
        raise Conflict(ProcurementError.BID_TAG_ALTERED)
    if signed is None:
        committed = _publication_commitment_once(tender.pk, tender.reference, tender.bid_tag,
                                                 tender.bid_tag_salt)
    else:
        committed = _publication_commitment(tender.pk, tender.reference, signed=signed)
    if committed is not None and \
            sealing.tag_commitment(tender.bid_tag, tender.bid_tag_salt) != committed:
        raise Conflict(ProcurementError.BID_TAG_ALTERED)


@functools.lru_cache(maxsize=10_000)
def _publication_commitment_once(tender_pk: int, reference: str, tag: str,
                                 salt: str) -> str | None:
    """What the tender's publication entry committed to (it never changes), read once
    per process for the bid writes; the row's tag and salt are in the key, so that a row
    changed since is read again (a refusal is never cached)."""
    return _publication_commitment(tender_pk, reference, signed=None)


def _publication_commitment(tender_pk: int, reference: str, *,
                            signed: bool | None) -> str | None:
    """The commitment to its bid tag that the tender's publication entry records, read
    from the entry's own bytes (the columns the log is searched by are the database's).
    None only for a publication older than ``PROCUREMENT_BID_TAGS_COMMITTED_FROM``; a
    tender published again under its reference (drafted or published after it) has no
    commitment to trust."""
    subject = f"tender:{reference}"
    index = Step.objects.filter(tender_id=tender_pk, type="tender.published") \
        .values_list("ledger_index", flat=True).first()
    if index is None or ledger.entries_about(subject).filter(
            index__gt=index, type__in=[ProcurementEvent.TENDER_PUBLISHED.value,
                                       ProcurementEvent.TENDER_DRAFTED.value]).exists():
        raise Conflict(ProcurementError.BID_TAG_ALTERED)
    if signed is None:
        try:
            entry = json.loads(bytes(ledger.get_entry(index).body))
        except NotFound:
            raise Conflict(ProcurementError.BID_TAG_ALTERED) from None
    else:
        entry = ledger.proven_entries([index], signed=signed)[index]
    data = entry.get("data") or {}
    committed = data.get("bid_tag_commitment")
    if entry.get("type") != ProcurementEvent.TENDER_PUBLISHED.value or \
            entry.get("subject") != subject or data.get("reference") != reference or \
            not isinstance(committed, str | None) or \
            (committed is None and index >= settings.PROCUREMENT_BID_TAGS_COMMITTED_FROM):
        raise Conflict(ProcurementError.BID_TAG_ALTERED)
    return committed


def _ledger_bids(tender: Tender, closed_at: int, signed: bool
                 ) -> tuple[dict[str, int], dict[int, dict], dict[str, int]]:
    """The live commitments (commitment → ledger index) as the proven ledger says, every
    proven bid entry of the tender (index → entry), and the live commitments still to
    confirm after an amendment (commitment → the amendment's number).

    The entries are found by the ``subject`` column, and by the indexes the tender's bid
    rows hold; what counts is the subject their proven bodies say. The signer checks
    bodies, not columns: a database owner who edited the column of a rival's signed
    ``bid.submitted`` hid it from the opening, which left the bid out as tampered."""
    indexes = {*ledger.entries_about(_bid_subject(tender)).values_list("index", flat=True),
               *tender.bids.filter(ledger_index__gte=0, ledger_index__lt=closed_at)
               .values_list("ledger_index", flat=True)}
    amended = list(ledger.entries_about(f"tender:{tender.reference}").filter(
        type=ProcurementEvent.TENDER_AMENDED.value, index__lt=closed_at)
        .values_list("index", flat=True))
    entries = ledger.proven_entries([*indexes, *amended, closed_at], signed=signed)
    closing = entries.pop(closed_at)
    if closing["type"] != "procurement.tender.tendering_closed" or \
            closing["subject"] != f"tender:{tender.reference}":
        raise Conflict(ProcurementError.TENDERING_CLOSE_NOT_RECORDED)
    amendments = {index: entries.pop(index) for index in amended}
    # entries after the close of tendering never count
    counted = sorted(index for index in entries
                     if entries[index]["subject"] == _bid_subject(tender) and index <= closed_at)
    live = sealing.live_commitments((index, entries[index]) for index in counted)
    steps = sorted({**amendments, **{index: entries[index] for index in counted}}.items())
    unconfirmed = sealing.unconfirmed_commitments(
        live, steps, tender_subject=f"tender:{tender.reference}",
        bid_subject=_bid_subject(tender))
    return live, entries, unconfirmed


def _ledger_key(envelope: sealing.Envelope, submitted_at: int, signed: bool) -> bytes:
    """The public key that the proven ledger registered for the envelope's company and
    did not revoke before the bid's entry."""
    key = SigningKey.objects.filter(fingerprint=envelope.key).first()
    if key is None:
        raise sealing.SealError("its signing key was never registered")
    subject = f"company:{envelope.company}"
    indexes = [key.ledger_index, *ledger.entries_about(subject).filter(
        type="procurement.signing_key.revoked", index__lt=submitted_at)
        .values_list("index", flat=True)]
    entries = ledger.proven_entries(indexes, signed=signed)
    registered = entries.pop(key.ledger_index)
    data = registered["data"]
    if registered["type"] != "procurement.signing_key.registered" or \
            data.get("fingerprint") != envelope.key or data.get("company") != envelope.company:
        raise sealing.SealError("its signing key is not registered to the company it names")
    if key.ledger_index > submitted_at:
        raise sealing.SealError("its signing key was registered after the bid")
    if any(e["data"].get("fingerprint") == envelope.key for e in entries.values()):
        raise sealing.SealError("its signing key was revoked before the bid")
    return sealing.unb64(data["public_key"], "the registered key", 32)


def _bid_content(content: dict, envelope: sealing.Envelope, lots: dict) -> dict:
    """The opened bid, checked: it names its envelope's tender and company, and prices
    lots of the tender."""
    if content.get("tender") != envelope.tender or content.get("company") != envelope.company:
        raise sealing.SealError("the sealed bid names another tender or company")
    prices = content.get("prices")
    if not isinstance(prices, dict) or not prices:
        raise sealing.SealError("the bid prices no lot")
    clean = {}
    for number, price in prices.items():
        if str(number) not in lots:
            raise sealing.SealError(f"the tender has no lot {number}")
        try:
            clean[str(number)] = str(_money(price, f"The price of lot {number}")
                                     .quantize(Decimal("0.001")))
        except InvalidInput as exc:
            raise sealing.SealError(str(exc)) from None
    docs = content.get("documents") or []
    if not isinstance(docs, list) or not all(isinstance(d, dict) and
                                             isinstance(d.get("sha256"), str) for d in docs):
        raise sealing.SealError("the documents are not a list of names and hashes")
    offer = content.get("technical_offer") or ""
    if not isinstance(offer, str) or len(offer) > 50000:
        raise sealing.SealError("the technical offer is not a text of 50,000 characters")
    return {"prices": clean, "technical_offer": offer,
            "documents": [{"name": str(d.get("name", ""))[:200],
                           "media_type": str(d.get("media_type", ""))[:100],
                           "sha256": d["sha256"][:64]} for d in docs]}


def _open_one(bid: Bid, envelope_bytes: bytes, tender: Tender, index: int,
              released: dict[int, bytes], lots: dict, signed: bool) -> dict:
    envelope = sealing.parse(envelope_bytes)
    if envelope.tender != tender.reference:
        raise sealing.SealError(f"the envelope is sealed for another tender "
                                f"({envelope.tender})")
    if envelope.company != bid.company_id:
        raise sealing.SealError(f"the bid's company was changed: the envelope is signed for "
                                f"company {envelope.company}")
    envelope.verify(_ledger_key(envelope, index, signed))
    return _bid_content(sealing.open_envelope(envelope, released), envelope, lots)


def _store_opening_report(tender: Tender, report: dict, now: dt.datetime) -> TenderDocument:
    """The full opening report, kept as a public document of the tender (canonical JSON,
    RFC 8785): however many bids, the ledger entry holds only its SHA-256 and counts."""
    content = rfc8785.dumps(report)
    return TenderDocument.objects.create(
        tender=tender, name=OPENING_REPORT, version=1, media_type="application/json",
        size=len(content), sha256=hashlib.sha256(content).hexdigest(), content=content,
        uploaded_at=now)


def _not_confirmed(amendment: int) -> str:
    return f"not confirmed after amendment no. {amendment}"


def _leave_unconfirmed(bid: Bid, amendment: int) -> None:
    """A bid its company did not confirm after an amendment is not opened: it stays sealed,
    like a withdrawn one, and the report says why."""
    bid.status, bid.problem = Bid.Status.UNCONFIRMED, _not_confirmed(amendment)
    bid.confirm_amendment = amendment
    bid.save(update_fields=["status", "problem", "confirm_amendment"])


def _unconfirmed_line(commitment: str, index: int, amendment: int, bid: Bid | None) -> dict:
    """The opening report's line of a bid left unopened for want of a confirmation, with
    its company when a row holds its envelope. The company is the one the envelope names
    (checked with its signature at submission, and the envelope hashes to the ledger's
    commitment), not the row's, which a database writer could change."""
    line = {"commitment": commitment, "ledger_index": index, "amendment": amendment,
            "problem": _not_confirmed(amendment)}
    company = None
    if bid is not None:
        named = sealing.parse(bytes(bid.envelope)).company
        company = bid.company if bid.company_id == named else \
            Company.objects.filter(pk=named).first()
    if company is not None:
        line |= {"company": company.name, "company_id": company.pk}
    return line


@transaction.atomic
def open_tender(*, tender: Tender, now: dt.datetime | None = None,
                signed: bool = True) -> Tender:
    """Open the bids once the deadline passed and t opening keys are released.

    What counts is the proven ledger, not the database: every live commitment on the
    ledger must have its envelope, every envelope its commitment, its company's signature
    by a key the ledger registered; anything else is rejected and named in the report.
    """
    tender = locked_tenders().get(pk=tender.pk)
    now = _now(now)
    if tender.state != S.OPENING:
        raise Conflict(ProcurementError.OPENING_NEEDS_CLOSED_TENDER)
    if now < tender.submission_deadline:
        raise Conflict(ProcurementError.OPENING_BEFORE_DEADLINE)
    if releases_missing(tender):
        raise Conflict(ProcurementError.OPENING_KEYS_NOT_RELEASED, missing=releases_missing(tender))
    released = {m.position: bytes(m.released_key) for m in tender.committee.all()
                if bytes(m.released_key) and
                sealing.member_public_key(bytes(m.released_key)) == bytes(m.public_key)}
    _check_bid_tag(tender, signed)
    closed_at = Step.objects.get(tender=tender, type="tender.tendering_closed").ledger_index
    live, entries, to_confirm = _ledger_bids(tender, closed_at, signed)
    lots = {str(lot.number): lot for lot in tender.lots.all()}
    report, rejected, seen, unconfirmed_rows = [], [], set(), {}
    candidates = tender.bids.filter(Q(status=Bid.Status.SUBMITTED) |
                                    Q(commitment__in=list(live))).select_related("company")
    for bid in candidates.order_by("pk"):
        envelope = bytes(bid.envelope)
        commitment = sealing.commitment(envelope)
        if commitment in to_confirm:  # the ledger decides, whatever the row says
            _leave_unconfirmed(bid, to_confirm[commitment])
            unconfirmed_rows.setdefault(commitment, bid)
            continue
        try:
            if commitment not in live:
                raise sealing.SealError("no live ledger entry commits to this envelope (added "
                                        "or altered in the database, or withdrawn)")
            if commitment in seen:
                raise sealing.SealError("another row holds the same envelope")
            seen.add(commitment)
            content = _open_one(bid, envelope, tender, live[commitment], released, lots,
                                signed)
        except (sealing.SealError, KeyError, ValueError, TypeError) as exc:
            bid.status, bid.problem = Bid.Status.TAMPERED, str(exc)[:300]
            bid.save(update_fields=["status", "problem"])
            rejected.append({"bid": bid.pk, "commitment": commitment,
                             "company": bid.company.name, "company_id": bid.company_id,
                             "problem": bid.problem})
            continue
        bid.status, bid.opened_at, bid.commitment = Bid.Status.OPENED, now, commitment
        bid.technical_offer = content["technical_offer"]
        bid.documents = content["documents"]
        bid.save()
        BidLot.objects.bulk_create([BidLot(bid=bid, lot=lots[n], price=Decimal(p))
                                    for n, p in content["prices"].items()])
        report.append({"commitment": commitment, "ledger_index": live[commitment],
                       "company": bid.company.name, "company_id": bid.company_id,
                       "matricule_fiscal": bid.company.matricule_fiscal,
                       "signing_key": sealing.parse(envelope).key,
                       "submitted_at": bid.submitted_at.isoformat(),
                       "prices": content["prices"],
                       "documents": [d["sha256"] for d in bid.documents]})
    missing = [{"commitment": c, "ledger_index": i,
                "problem": "committed on the ledger, but no envelope was found"}
               for c, i in sorted(live.items(), key=lambda kv: kv[1])
               if c not in seen and c not in to_confirm]
    unconfirmed = [_unconfirmed_line(c, live[c], n, unconfirmed_rows.get(c))
                   for c, n in sorted(to_confirm.items(), key=lambda kv: live[kv[0]])]
    # a step per bid entry, but those stored already (an opening that failed after them)
    bid_entries = {i: e for i, e in entries.items() if e["subject"] == _bid_subject(tender)}
    held = _evict_squatters(bid_entries)
    Step.objects.bulk_create([Step(tender=tender, type=e["type"].removeprefix("procurement."),
                                   ledger_index=i, at=_entry_time(e))
                              for i, e in sorted(bid_entries.items()) if i not in held])
    tender.opened_at = now
    _move(tender, "open" if report else "fail")
    tender.save()
    search.refresh_party_names([tender.pk])  # the bidders are public from now on
    commitments = [{"commitment": c, "ledger_index": i}
                   for c, i in sorted(live.items(), key=lambda kv: kv[1])]
    summary = {"bid_tag": tender.bid_tag, "tendering_closed": closed_at,
               "released": sorted(released)}
    if tender.bid_tag_salt:  # what anyone checks the publication's commitment with
        summary["bid_tag_salt"] = tender.bid_tag_salt
    document = _store_opening_report(tender, {
        **summary, "format": OPENING_REPORT_FORMAT, "tender": tender.reference,
        "commitments": commitments, "bids": report, "rejected": rejected,
        "missing": missing, "unconfirmed": unconfirmed}, now)
    _step(
        tender,
        ProcurementEvent.TENDER_OPENED,
        None,
        {
            **summary,
            "report": {"sha256": document.sha256, "size": document.size},
            "counts": {"commitments": len(commitments), "opened": len(report),
                       "rejected": len(rejected), "missing": len(missing),
                       "unconfirmed": len(unconfirmed)},
        },
        at=now,
    )
    if not report:
        _step(
            tender, ProcurementEvent.TENDER_UNSUCCESSFUL, None, {"reason": "no valid bid"}, at=now
        )
    return tender


# --- evaluation --------------------------------------------------------------------------

@transaction.atomic
def declare_conflict_of_interest(*, actor, tender: Tender, no_conflict: bool,
                                 statement: str = "",
                                 now: dt.datetime | None = None) -> ConflictDeclaration:
    """A member of the evaluation committee declares their interests; a member with a
    conflict is out of the committee (the quorum must still be reachable without them)."""
    _committee_member(actor, tender)
    if tender.state != S.EVALUATION:
        raise Conflict(ProcurementError.DECLARATION_OUT_OF_TIME)
    try:
        with transaction.atomic():
            declaration = ConflictDeclaration.objects.create(
                tender=tender, evaluator=actor, no_conflict=bool(no_conflict),
                statement=_text(statement, "The statement", 5000, required=not no_conflict))
    except IntegrityError:
        raise Conflict(ProcurementError.DECLARED_ALREADY) from None
    _step(
        tender,
        ProcurementEvent.EVALUATION_DECLARATION,
        actor,
        {"evaluator": directory.actor_id(actor), "no_conflict": bool(no_conflict),
         "quorum_reachable": quorum_reachable(tender)},
        at=now,
    )
    if not no_conflict:
        _supersede(tender)  # a report they may have approved no longer counts their vote
    return declaration


def _evaluator(actor, tender: Tender) -> None:
    """The actor is a member of the tender's evaluation committee (still an evaluator of
    the buyer's line) who declared no conflict of interest, and the tender is under
    evaluation."""
    _committee_member(actor, tender)
    if tender.state != S.EVALUATION:
        raise Conflict(ProcurementError.NOT_UNDER_EVALUATION)
    if not ConflictDeclaration.objects.filter(tender=tender, evaluator=actor,
                                              no_conflict=True).exists():
        raise PermissionDenied(ProcurementError.DECLARATION_REQUIRED)


@transaction.atomic
def decide_eligibility(*, actor, bid_lot: BidLot, eligible: bool, reason: str = "",
                       checks: dict[str, bool] | None = None,
                       now: dt.datetime | None = None) -> BidLot:
    """Record the compliance check of each criterion and the eligibility it leads to.

    Without ``checks`` every criterion is taken as met when ``eligible``; a bid failing
    a criterion is not eligible, and a rejection always says why.
    """
    tender = Tender.objects.get(pk=bid_lot.bid.tender_id)
    _evaluator(actor, tender)
    _lot_under_evaluation(bid_lot.lot)
    criteria = tender.compliance_criteria
    if checks is None:
        checks = dict.fromkeys(criteria, bool(eligible))
    if set(checks) != set(criteria):
        raise InvalidInput(ProcurementError.COMPLIANCE_UNCHECKED, criteria="; ".join(criteria))
    if bool(eligible) and not all(checks.values()):
        raise InvalidInput(ProcurementError.NONCOMPLIANT_BID_ELIGIBLE)
    bid_lot.eligible = bool(eligible)
    bid_lot.compliance = {k: bool(v) for k, v in checks.items()}
    bid_lot.eligibility_reason = _text(reason, "The reason", 2000, required=not eligible)
    bid_lot.save()
    _supersede(tender)
    _step(
        tender,
        ProcurementEvent.EVALUATION_ELIGIBILITY,
        actor,
        {
            "bid": bid_lot.bid.commitment,
            "lot": bid_lot.lot.number,
            "eligible": bid_lot.eligible,
            "compliance": bid_lot.compliance,
            "reason": bid_lot.eligibility_reason,
        },
        at=now,
    )
    return bid_lot


@transaction.atomic
def score_quality(*, actor, bid_lot: BidLot, score, comment: str = "",
                  now: dt.datetime | None = None) -> QualityScore:
    tender = bid_lot.bid.tender
    _evaluator(actor, tender)
    _lot_under_evaluation(bid_lot.lot)
    if tender.award_criteria != AwardCriteria.WEIGHTED:
        raise Conflict(ProcurementError.PRICE_ONLY_AWARD)
    try:
        value = Decimal(str(score))
    except InvalidOperation:
        raise InvalidInput(ProcurementError.SCORE_OUT_OF_RANGE) from None
    if not value.is_finite() or not 0 <= value <= 100:
        raise InvalidInput(ProcurementError.SCORE_OUT_OF_RANGE)
    quality, _ = QualityScore.objects.update_or_create(
        bid_lot=bid_lot, evaluator=actor,
        defaults={"score": value, "comment": _text(comment, "The comment", 5000,
                                                  required=False)})
    _supersede(tender)
    _step(
        tender,
        ProcurementEvent.EVALUATION_QUALITY_SCORE,
        actor,
        {"bid": bid_lot.bid.commitment, "lot": bid_lot.lot.number, "score": str(value)},
        at=now,
    )
    return quality


def _lot_under_evaluation(lot: Lot) -> None:
    """Only lots not awarded (or whose award an upheld complaint cancelled) and not
    cancelled are evaluated: the evaluation of the others is final."""
    lot = Lot.objects.get(pk=lot.pk)
    if lot.cancelled:
        raise Conflict(ProcurementError.LOT_CANCELLED, lot=lot.number)
    if lot.awards.filter(status=Award.Status.ACTIVE).exists():
        raise Conflict(ProcurementError.LOT_AWARDED, lot=lot.number)


def _rank_lot(tender: Tender, lot: Lot) -> list[BidLot]:
    rows = list(BidLot.objects.filter(lot=lot, bid__status=Bid.Status.OPENED)
                .select_related("bid__company"))
    if any(r.eligible is None for r in rows):
        raise Conflict(ProcurementError.ELIGIBILITY_UNDECIDED, lot=lot.number)
    eligible = [r for r in rows if r.eligible]
    for r in rows:
        r.score = r.rank = None
        r.abnormally_low = False
    if eligible:
        best = min(r.price for r in eligible)
        for r in eligible:
            others = [o.price for o in eligible if o is not r]
            r.abnormally_low = bool(others) and len(eligible) >= 3 and \
                r.price < ABNORMALLY_LOW_FACTOR * Decimal(str(statistics.mean(others)))
            price_score = Decimal(100) * best / r.price
            if tender.award_criteria == AwardCriteria.WEIGHTED:
                scores = [q.score for q in r.quality_scores.all()]
                if not scores:
                    raise Conflict(ProcurementError.QUALITY_SCORES_MISSING, lot=lot.number)
                quality = sum(scores) / len(scores)
                weight = Decimal(tender.price_weight) / 100
                r.score = weight * price_score + (1 - weight) * quality
            else:
                r.score = price_score
            r.score = r.score.quantize(Decimal("0.001"), ROUND_HALF_UP)
        for rank, r in enumerate(sorted(eligible, key=lambda r: (-r.score, r.bid.submitted_at)),
                                 start=1):
            r.rank = rank
    BidLot.objects.bulk_update(rows, ["score", "rank", "abnormally_low"])
    return sorted(rows, key=lambda r: (r.rank or 10**6, r.price))


@transaction.atomic
def complete_evaluation(*, actor, tender: Tender, now: dt.datetime | None = None) -> dict:
    """Rank every lot and propose the evaluation report to the evaluation committee (the
    buyer's procurement officer or the committee's chair): its members then approve or
    dissent from this very report (its SHA-256), and it is adopted at the quorum."""
    tender = locked_tenders().get(pk=tender.pk)
    _officer_or_chair(actor, tender)
    if tender.state != S.EVALUATION:
        raise Conflict(ProcurementError.NOT_UNDER_EVALUATION)
    _require_committee(tender)
    # the lots still to award: all of them the first time; after an upheld complaint,
    # the lot whose evaluation it invalidated (the others' awards stand)
    lots = [lot for lot in tender.lots.filter(cancelled=False)
            if not lot.awards.filter(status=Award.Status.ACTIVE).exists()]
    if not lots:
        raise Conflict(ProcurementError.NOTHING_TO_EVALUATE)
    report = {"lots": []}
    for lot in lots:
        lot.needs_evaluation = False
        lot.save(update_fields=["needs_evaluation"])
        report["lots"].append({"lot": lot.number, "ranking": [
            {"bid": r.bid.commitment, "company": r.bid.company.name, "price": str(r.price),
             "eligible": r.eligible, "compliance": r.compliance,
             "reason": r.eligibility_reason,
             "abnormally_low": r.abnormally_low,
             "score": str(r.score) if r.score is not None else None, "rank": r.rank,
             "explanation": _explanation_status(r)}
            for r in _rank_lot(tender, lot)]})
    _supersede(tender)
    number = (tender.evaluation_reports.aggregate(n=Max("number"))["n"] or 0) + 1
    report["number"] = number
    # the hash binds each member's approval to this exact report of this tender
    sha256 = hashlib.sha256(rfc8785.dumps({"tender": tender.reference, **report})).hexdigest()
    report["sha256"] = sha256
    row = EvaluationReport.objects.create(tender=tender, number=number, report=report,
                                          sha256=sha256, proposed_at=_now(now))
    row.ledger_index = _step(tender, ProcurementEvent.TENDER_EVALUATED, actor, report, at=now)
    row.save(update_fields=["ledger_index"])
    notifications.report_to_approve(row, voters=_voters(tender))
    return report


def _voters(tender: Tender) -> list:
    """The evaluation committee's members who vote on its reports: those who did not
    declare a conflict of interest."""
    out = _conflicted(tender)
    return [m.member for m in tender.evaluation_committee.select_related("member")
            if m.member_id not in out]


@transaction.atomic
def award_tender(*, actor, tender: Tender, choices: dict | None = None,
                 justification: str = "", now: dt.datetime | None = None) -> list[Award]:
    """Award each lot (to the first ranked bid unless ``choices`` says otherwise, with a
    justification), notify every bidder and start the standstill period."""
    tender = locked_tenders().get(pk=tender.pk)
    _buyer_agent(actor, tender, Role.PROCUREMENT_OFFICER)
    now = _now(now)
    if not Step.objects.filter(tender=tender, type="tender.evaluated").exists():
        raise Conflict(ProcurementError.EVALUATION_INCOMPLETE)
    choices = {str(k): v for k, v in (choices or {}).items()}
    justification = _text(justification, "The justification", 5000, required=False)
    awards = []
    for lot in tender.lots.filter(cancelled=False):
        if lot.awards.filter(status=Award.Status.ACTIVE).exists():
            continue  # awarded before an upheld complaint sent another lot back
        if lot.needs_evaluation:
            raise Conflict(ProcurementError.EVALUATION_INVALIDATED, lot=lot.number)
        if lot.suspended_since is not None:
            raise Conflict(ProcurementError.LOT_SUSPENDED, lot=lot.number)
        ranked = [r for r in BidLot.objects.filter(lot=lot, rank__isnull=False)
                  .select_related("bid__company").order_by("rank")]
        if not ranked:
            continue
        wanted = choices.get(str(lot.number))
        if wanted is None:
            picks = ranked[:1] if tender.procedure != Procedure.FRAMEWORK else ranked[:3]
        else:
            ids = wanted if isinstance(wanted, list) else [wanted]
            picks = [r for r in ranked if r.pk in ids or r.bid_id in ids]
            if len(picks) != len(ids):
                raise InvalidInput(ProcurementError.AWARD_NOT_RANKED, lot=lot.number)
            if tender.procedure != Procedure.FRAMEWORK and len(picks) != 1:
                raise InvalidInput(ProcurementError.AWARD_ONE_SUPPLIER, lot=lot.number)
        if any(p.rank != 1 for p in picks[:1]) and not justification:
            raise InvalidInput(ProcurementError.AWARD_JUSTIFICATION_REQUIRED)
        for pick in picks:
            # the buyer's own justification is not enough: the bidder explained its
            # price and the committee accepted the explanation
            if pick.abnormally_low and not pick.explanations.filter(
                    status=Explanation.Status.ACCEPTED).exists():
                raise InvalidInput(ProcurementError.ABNORMALLY_LOW_UNEXPLAINED, lot=lot.number,
                                   company=pick.bid.company.name)
        for pick in picks:
            awards.append(Award.objects.create(
                tender=tender, lot=lot, bid_lot=pick, supplier=pick.bid.company,
                value=pick.price, justification=justification, decided_at=now,
                standstill_until=now + dt.timedelta(days=tender.standstill_days)))
    report = tender.evaluation_reports.order_by("-number").first()
    if report is None or report.status != EvaluationReport.Status.ADOPTED:
        raise Conflict(ProcurementError.EVALUATION_REPORT_NOT_ADOPTED)
    if not awards:
        raise Conflict(ProcurementError.NO_ELIGIBLE_BID)
    _move(tender, "award")
    tender.save()
    search.refresh_party_names([tender.pk])
    _step(
        tender,
        ProcurementEvent.TENDER_AWARDED,
        actor,
        {
            "awards": [
                {
                    "award": a.pk,
                    "lot": a.lot.number,
                    "supplier": a.supplier.name,
                    "matricule_fiscal": a.supplier.matricule_fiscal,
                    "value": str(a.value),
                }
                for a in awards
            ],
            "justification": justification,
        },
        at=now,
    )
    _move(tender, "notify")
    tender.standstill_until = _standstill_end(tender)
    tender.save()
    _notify_bidders(tender, f"{tender.reference}: the award decision is published. "
                    f"Complaints may be filed until {tender.standstill_until:%Y-%m-%d %H:%M}.")
    _step(
        tender,
        ProcurementEvent.TENDER_STANDSTILL_STARTED,
        actor,
        {"until": tender.standstill_until.isoformat()},
        at=now,
    )
    return awards


# --- evaluation committee ----------------------------------------------------------------
#
# The commission d'évaluation (Décret n° 2014-1039) / ProZorro's qualification: the
# buyer's officer names members (evaluators of the buyer's line), a chair and a quorum;
# only members evaluate; the report is a proposal until the quorum of members approved
# that very report; abnormally low prices are explained by their bidders before an award.

MAX_EVALUATION_MEMBERS = 15


def _committee_member(actor, tender: Tender) -> EvaluationMember:
    """The actor is an evaluator of the buyer's line and a member of the tender's
    evaluation committee."""
    _buyer_agent(actor, tender, Role.EVALUATOR)
    row = (EvaluationMember.objects.filter(tender=tender, member=actor).first()
           if getattr(actor, "pk", None) and not isinstance(actor, directory.SystemActor)
           else None)
    if row is None:
        raise PermissionDenied(ProcurementError.EVALUATION_COMMITTEE_ONLY,
                               reference=tender.reference)
    return row


def _officer_or_chair(actor, tender: Tender) -> None:
    """A procurement officer of the buyer, or the evaluation committee's chair (who has
    declared no conflict of interest)."""
    try:
        _buyer_agent(actor, tender, Role.PROCUREMENT_OFFICER)
        return
    except PermissionDenied:
        pass
    if getattr(actor, "pk", None) and EvaluationMember.objects.filter(
            tender=tender, member=actor, chair=True).exists():
        _evaluator(actor, tender)
        return
    raise PermissionDenied(ProcurementError.OFFICER_OR_CHAIR_ONLY)


def _conflicted(tender: Tender) -> set[int]:
    return set(ConflictDeclaration.objects.filter(tender=tender, no_conflict=False)
               .values_list("evaluator_id", flat=True))


def quorum_reachable(tender: Tender) -> bool:
    """Enough members without a declared conflict remain to reach the quorum."""
    return tender.evaluation_quorum >= 2 and len(_voters(tender)) >= tender.evaluation_quorum


def _require_committee(tender: Tender) -> None:
    if not tender.evaluation_committee.exists():
        raise Conflict(ProcurementError.EVALUATION_COMMITTEE_MISSING)
    if not quorum_reachable(tender):
        raise Conflict(ProcurementError.EVALUATION_QUORUM_LOST)


def _supersede(tender: Tender) -> None:
    """A change to the evaluation (or to the committee) makes the reports proposed or
    adopted so far no longer the basis of an award: a new report needs a new adoption."""
    tender.evaluation_reports.filter(status__in=[EvaluationReport.Status.PROPOSED,
                                                 EvaluationReport.Status.ADOPTED]) \
        .update(status=EvaluationReport.Status.SUPERSEDED)


def _explanation_status(bid_lot: BidLot) -> str | None:
    latest = bid_lot.explanations.exclude(status=Explanation.Status.VOID).last()
    return latest.status if latest else None


@transaction.atomic
def name_evaluation_committee(*, actor, tender: Tender, members: list, chair, quorum: int,
                              now: dt.datetime | None = None) -> list[EvaluationMember]:
    """The buyer's procurement officer names the evaluation committee: at least two
    evaluators of the buyer's line, one of them its chair, and a quorum of at least two.
    Named before or during the evaluation; naming it again supersedes any report."""
    tender = locked_tenders().get(pk=tender.pk)
    _buyer_agent(actor, tender, Role.PROCUREMENT_OFFICER)
    if tender.state not in (S.DRAFT, S.ENQUIRIES, S.TENDERING, S.OPENING, S.EVALUATION):
        raise Conflict(ProcurementError.EVALUATION_COMMITTEE_TOO_LATE)
    users = list(dict.fromkeys(members))
    if len(users) != len(members):
        raise InvalidInput(ProcurementError.EVALUATION_MEMBERS_REPEATED)
    # two members at least: whoever prepared the tender is never the committee alone
    if not 2 <= len(users) <= MAX_EVALUATION_MEMBERS:
        raise InvalidInput(ProcurementError.EVALUATION_COMMITTEE_SIZE, max=MAX_EVALUATION_MEMBERS)
    try:
        quorum = int(quorum)
    except (TypeError, ValueError):
        raise InvalidInput(ProcurementError.QUORUM_NOT_A_NUMBER) from None
    if not 2 <= quorum <= len(users):
        raise InvalidInput(ProcurementError.QUORUM_OUT_OF_RANGE)
    if chair not in users:
        raise InvalidInput(ProcurementError.CHAIR_NOT_MEMBER)
    for user in users:
        try:
            _buyer_agent(user, tender, Role.EVALUATOR)
        except PermissionDenied:
            raise InvalidInput(ProcurementError.NOT_AN_EVALUATOR, user=user,
                               administration=read_when_rendered(lambda: tender.buyer.name)
                               ) from None
    out = _conflicted(tender)
    if len([u for u in users if u.pk not in out]) < quorum:
        raise InvalidInput(ProcurementError.QUORUM_UNREACHABLE)
    now = _now(now)
    tender.evaluation_committee.all().delete()
    rows = [EvaluationMember.objects.create(tender=tender, member=user, chair=user == chair,
                                            named_at=now) for user in users]
    tender.evaluation_quorum = quorum
    tender.save(update_fields=["evaluation_quorum"])
    _supersede(tender)
    index = _step(tender, ProcurementEvent.EVALUATION_COMMITTEE_NAMED, actor,
                  {"members": [directory.actor_id(u) for u in users],
                   "chair": directory.actor_id(chair), "quorum": quorum}, at=now)
    EvaluationMember.objects.filter(tender=tender).update(ledger_index=index)
    return rows


@transaction.atomic
def approve_evaluation(*, actor, tender: Tender, sha256: str, approved: bool = True,
                       reason: str = "", now: dt.datetime | None = None) -> EvaluationReport:
    """A member approves, or dissents from (with reasons), the proposed report whose
    SHA-256 they read; the report is adopted once the quorum of members approved it."""
    tender = locked_tenders().get(pk=tender.pk)
    _evaluator(actor, tender)
    now = _now(now)
    report = tender.evaluation_reports.order_by("-number").first()
    if report is None or report.status != EvaluationReport.Status.PROPOSED:
        raise Conflict(ProcurementError.NO_REPORT_PENDING)
    if str(sha256 or "").strip().lower() != report.sha256:
        raise Conflict(ProcurementError.REPORT_CHANGED, number=report.number, sha256=report.sha256)
    reason = _text(reason, "The reasons", 5000, required=not approved)
    try:
        with transaction.atomic():
            vote = ReportApproval.objects.create(report=report, member=actor,
                                                 approved=bool(approved), reason=reason, at=now)
    except IntegrityError:
        raise Conflict(ProcurementError.REPORT_APPROVED_ALREADY) from None
    data = {"member": directory.actor_id(actor), "report": report.number,
            "sha256": report.sha256}
    if approved:
        event = ProcurementEvent.EVALUATION_APPROVED
    else:
        event, data = ProcurementEvent.EVALUATION_DISSENTED, data | {"reason": reason}
    vote.ledger_index = _step(tender, event, actor, data, at=now)
    vote.save(update_fields=["ledger_index"])
    members = set(tender.evaluation_committee.values_list("member_id", flat=True)) - \
        _conflicted(tender)
    approvals = [v for v in report.approvals.select_related("member")
                 if v.approved and v.member_id in members]
    if len(approvals) >= tender.evaluation_quorum >= 2:
        report.status, report.adopted_at = EvaluationReport.Status.ADOPTED, now
        report.adopted_index = _step(
            tender, ProcurementEvent.EVALUATION_ADOPTED, actor,
            {"report": report.number, "sha256": report.sha256,
             "quorum": tender.evaluation_quorum,
             "approvals": [directory.actor_id(v.member) for v in approvals]}, at=now)
    report.save()
    return report


def _explanation_locked(explanation: Explanation) -> tuple[Tender, Explanation]:
    explanation = Explanation.objects.select_related("bid_lot__bid__company",
                                                     "bid_lot__lot").get(pk=explanation.pk)
    tender = locked_tenders().get(pk=explanation.bid_lot.bid.tender_id)
    return tender, Explanation.objects.select_for_update().get(pk=explanation.pk)


def _explanation_data(explanation: Explanation) -> dict:
    return {"explanation": explanation.pk, "bid": explanation.bid_lot.bid.commitment,
            "lot": explanation.bid_lot.lot.number}


@transaction.atomic
def request_explanation(*, actor, bid_lot: BidLot, question: str,
                        now: dt.datetime | None = None) -> Explanation:
    """The committee's chair (or the buyer's officer) asks the bidder of an abnormally
    low price to explain it, within ``PROCUREMENT_EXPLANATION_DAYS`` days."""
    tender = locked_tenders().get(pk=bid_lot.bid.tender_id)
    _officer_or_chair(actor, tender)
    if tender.state != S.EVALUATION:
        raise Conflict(ProcurementError.NOT_UNDER_EVALUATION)
    _lot_under_evaluation(bid_lot.lot)
    bid_lot = BidLot.objects.select_related("bid__company", "lot").get(pk=bid_lot.pk)
    if not bid_lot.abnormally_low or not bid_lot.eligible:
        raise Conflict(ProcurementError.EXPLANATION_NOT_APPLICABLE)
    if bid_lot.explanations.exclude(status__in=[Explanation.Status.VOID,
                                                 Explanation.Status.REJECTED]).exists():
        raise Conflict(ProcurementError.EXPLANATION_ASKED_ALREADY)
    now = _now(now)
    days = settings.PROCUREMENT_EXPLANATION_DAYS
    explanation = Explanation.objects.create(
        bid_lot=bid_lot, question=_text(question, "The question", 5000),
        requested_by=actor if getattr(actor, "pk", None) else None, requested_at=now,
        due_at=now + dt.timedelta(days=days))
    explanation.requested_index = _step(
        tender, ProcurementEvent.EXPLANATION_REQUESTED, actor,
        _explanation_data(explanation) | {"question": explanation.question,
                                          "due": explanation.due_at.isoformat()}, at=now)
    explanation.save(update_fields=["requested_index"])
    Notice.objects.create(company=bid_lot.bid.company, tender=tender, created_at=now,
                          text=f"{tender.reference}: explain your price for lot "
                               f"{bid_lot.lot.number} by {explanation.due_at:%Y-%m-%d %H:%M}. "
                               f"{explanation.question}")
    notifications.explanation_requested(explanation)
    return explanation


@transaction.atomic
def answer_explanation(*, actor, explanation: Explanation, answer: str,
                       now: dt.datetime | None = None) -> Explanation:
    """The bidder (a user of its company) explains its price before the deadline."""
    company = _company_user(actor)
    tender, explanation = _explanation_locked(explanation)
    if explanation.bid_lot.bid.company_id != company.pk:
        raise PermissionDenied(ProcurementError.EXPLANATION_OTHER_COMPANY)
    if explanation.status != Explanation.Status.REQUESTED:
        raise Conflict(ProcurementError.EXPLANATION_CLOSED)
    now = _now(now)
    if now > explanation.due_at:
        raise Conflict(ProcurementError.EXPLANATION_TIME_OVER,
                       due=f"{explanation.due_at:%Y-%m-%d %H:%M}")
    explanation.answer = _text(answer, "The explanation", 20000)
    explanation.answered_by, explanation.answered_at = actor, now
    explanation.status = Explanation.Status.ANSWERED
    # the ledger keeps the hash of the answer, which may hold the bidder's business details
    explanation.answered_index = _step(
        tender, ProcurementEvent.EXPLANATION_ANSWERED, actor,
        _explanation_data(explanation) | {"sha256": _sha(explanation.answer)}, at=now)
    explanation.save()
    return explanation


@transaction.atomic
def decide_explanation(*, actor, explanation: Explanation, accepted: bool, reason: str,
                       now: dt.datetime | None = None) -> Explanation:
    """The committee's chair (or the buyer's officer) accepts or rejects the explanation;
    without an answer by the deadline it may only reject. A rejected bid is disqualified on
    the lot and the lot ranked again; either way the report is proposed again, so that the
    committee's quorum adopts the decision with it."""
    tender, explanation = _explanation_locked(explanation)
    _officer_or_chair(actor, tender)
    if tender.state != S.EVALUATION:
        raise Conflict(ProcurementError.NOT_UNDER_EVALUATION)
    now = _now(now)
    status = explanation.status
    if status == Explanation.Status.REQUESTED:
        if accepted:
            raise Conflict(ProcurementError.EXPLANATION_MISSING)
        if now <= explanation.due_at:
            raise Conflict(ProcurementError.EXPLANATION_TIME_RUNNING,
                           due=f"{explanation.due_at:%Y-%m-%d %H:%M}")
    elif status != Explanation.Status.ANSWERED:
        raise Conflict(ProcurementError.EXPLANATION_DECIDED_ALREADY)
    explanation.decision = _text(reason, "The reasons", 5000)
    explanation.status = (Explanation.Status.ACCEPTED if accepted
                          else Explanation.Status.REJECTED)
    explanation.decided_by = actor if getattr(actor, "pk", None) else None
    explanation.decided_at = now
    bid_lot = explanation.bid_lot
    if not accepted:
        bid_lot.eligible = False
        bid_lot.eligibility_reason = ("Abnormally low price not explained: "
                                      f"{explanation.decision}")[:2000]
        bid_lot.save(update_fields=["eligible", "eligibility_reason"])
        _rank_lot(tender, bid_lot.lot)
    _supersede(tender)
    explanation.decided_index = _step(
        tender, ProcurementEvent.EXPLANATION_DECIDED, actor,
        _explanation_data(explanation) | {"accepted": bool(accepted),
                                          "answered": status == Explanation.Status.ANSWERED,
                                          "reason": explanation.decision}, at=now)
    explanation.save()
    Notice.objects.create(company=bid_lot.bid.company, tender=tender, created_at=now,
                          text=f"{tender.reference}: your explanation for lot "
                               f"{bid_lot.lot.number} is "
                               f"{explanation.get_status_display().lower()}. "
                               f"{explanation.decision}")
    return explanation


@transaction.atomic
def declare_unsuccessful(*, actor, tender: Tender, reason: str) -> Tender:
    tender = locked_tenders().get(pk=tender.pk)
    _buyer_agent(actor, tender, Role.PROCUREMENT_OFFICER)
    reason = _text(reason, "The reason", 2000)
    _move(tender, "fail")
    tender.save()
    _step(tender, ProcurementEvent.TENDER_UNSUCCESSFUL, actor, {"reason": reason})
    _notify_bidders(tender, f"{tender.reference} is unsuccessful: {reason}")
    return tender


def _notify_bidders(tender: Tender, text: str) -> None:
    companies = set(tender.bids.values_list("company_id", flat=True))
    Notice.objects.bulk_create([Notice(company_id=c, tender=tender, text=text)
                                for c in companies])


# --- complaints -------------------------------------------------------------------------
#
# The review procedure (docs/procurement.md, "Complaints"): a company files; the
# complaints body rules on admissibility, then on the merits, each within its time limit
# (settings); only an admitted complaint suspends, and only the lots it concerns; the
# time a suspension took from a running period (bids, standstill) is given back; an
# upheld complaint's remedy binds.

CS = Complaint.Status
UNDECIDED = (CS.FILED, CS.ADMITTED)
REMEDIES = {Complaint.Kind.DOCUMENTS: {Complaint.Remedy.AMEND_DOCUMENTS,
                                       Complaint.Remedy.CANCEL_LOT},
            Complaint.Kind.AWARD: {Complaint.Remedy.REEVALUATE, Complaint.Remedy.CANCEL_LOT},
            Complaint.Kind.QUALIFICATION: {Complaint.Remedy.QUALIFY}}


def _days(name: str) -> dt.timedelta:
    return dt.timedelta(days=getattr(settings, name))


def admissibility_due(complaint: Complaint) -> dt.datetime:
    return complaint.filed_at + _days("PROCUREMENT_COMPLAINT_ADMISSIBILITY_DAYS")


def decision_due(complaint: Complaint) -> dt.datetime | None:
    if complaint.suspended_from is None:
        return None
    return complaint.suspended_from + _days("PROCUREMENT_COMPLAINT_DECISION_DAYS")


def _standstill_end(tender: Tender) -> dt.datetime | None:
    ends = [a.standstill_until for a in tender.awards.filter(status=Award.Status.ACTIVE)
            if a.standstill_until]
    return max(ends) if ends else None


def _suspend(tender: Tender, lots: list[Lot], now: dt.datetime) -> None:
    """Suspend ``lots``, keeping what remained of their running period (the bids'
    deadline before it, the award's standstill after the award)."""
    for lot in lots:
        if lot.suspended_since is not None:
            continue
        left = None
        if tender.state in (S.ENQUIRIES, S.TENDERING) and now < tender.submission_deadline:
            left = tender.submission_deadline - now
        else:
            award = lot.awards.filter(status=Award.Status.ACTIVE).first()
            if award and award.standstill_until and now < award.standstill_until:
                left = award.standstill_until - now
        lot.suspended_since, lot.time_left = now, left
        lot.save(update_fields=["suspended_since", "time_left"])
    tender.suspended = tender.lots.exclude(suspended_since=None).exists()


def _resume(tender: Tender, lots: list[Lot], now: dt.datetime) -> dict:
    """End the suspension of those of ``lots`` no other admitted complaint suspends, and
    give back the time it took: the bids' deadline, or the award's standstill, ends as
    long after the suspension as it was ahead of it."""
    changed = {}
    for lot in lots:
        lot = Lot.objects.get(pk=lot.pk)
        still = Complaint.objects.filter(lots=lot, suspended_from__isnull=False,
                                         suspended_until=None).exists()
        if lot.suspended_since is None or still:
            continue
        if lot.time_left is not None:
            if tender.state in (S.ENQUIRIES, S.TENDERING):
                tender.submission_deadline = max(tender.submission_deadline,
                                                 now + lot.time_left)
                changed["submission_deadline"] = tender.submission_deadline.isoformat()
            for award in lot.awards.filter(status=Award.Status.ACTIVE,
                                           standstill_until__isnull=False):
                award.standstill_until = max(award.standstill_until, now + lot.time_left)
                award.save(update_fields=["standstill_until"])
        lot.suspended_since = lot.time_left = None
        lot.save(update_fields=["suspended_since", "time_left"])
    if tender.state in (S.AWARDED, S.STANDSTILL):
        tender.standstill_until = _standstill_end(tender)
        if tender.standstill_until:
            changed["standstill_until"] = tender.standstill_until.isoformat()
    tender.suspended = tender.lots.exclude(suspended_since=None).exists()
    return changed


def _lot_numbers(complaint: Complaint) -> list[int]:
    return sorted(complaint.lots.values_list("number", flat=True))


def _complaint_lots(tender: Tender, company: Company, kind: str, numbers, now) -> list[Lot]:
    lots = {lot.number: lot for lot in tender.lots.filter(cancelled=False)}
    try:
        wanted = sorted({int(n) for n in (numbers or [])})
    except (TypeError, ValueError):
        raise InvalidInput(ProcurementError.LOTS_NOT_NUMBERS) from None
    unknown = [n for n in wanted if n not in lots]
    if unknown:
        raise InvalidInput(ProcurementError.LOT_NOT_OPEN_TO_COMPLAINTS, lot=unknown[0])
    if kind == Complaint.Kind.DOCUMENTS:
        return [lots[n] for n in wanted] if wanted else list(lots.values())
    if kind == Complaint.Kind.QUALIFICATION:  # its refusal shuts it out of every lot
        return list(lots.values())
    if len(wanted) != 1:
        raise InvalidInput(ProcurementError.COMPLAINT_LOT_REQUIRED)
    lot = lots[wanted[0]]
    if not BidLot.objects.filter(lot=lot, bid__company=company,
                                 bid__status=Bid.Status.OPENED).exists():
        raise PermissionDenied(ProcurementError.COMPLAINT_BIDDERS_ONLY, lot=lot.number)
    award = lot.awards.filter(status=Award.Status.ACTIVE).first()
    if award is None or award.standstill_until is None or now >= award.standstill_until:
        raise Conflict(ProcurementError.COMPLAINT_OUTSIDE_STANDSTILL, lot=lot.number)
    return [lot]


def _refusal(tender: Tender, company: Company) -> Participation | None:
    """The company's refusal at the pre-qualification of ``tender``, if it was refused."""
    if tender.procedure != Procedure.RESTRICTED:
        return None
    return tender.participants.filter(company=company,
                                      kind=Participation.Kind.NOT_QUALIFIED).first()


@transaction.atomic
def file_complaint(*, actor, tender: Tender, text: str, lots: Iterable[int] | None = None,
                   now: dt.datetime | None = None) -> Complaint:
    """A registered company complains against the documents (before the submission
    deadline; any lots, all by default), a candidate refused at pre-qualification against
    that refusal (within ``qualification_complaint_due``; the whole tender), or a bidder of a lot
    against its evaluation or award (during its standstill). Filing suspends nothing:
    admission does."""
    company = _company_user(actor)
    tender = locked_tenders().get(pk=tender.pk)
    now = _now(now)
    if tender.state in (S.ENQUIRIES, S.TENDERING) and now < tender.submission_deadline:
        refusal = _refusal(tender, company)
        due = refusal_complaint_due(tender, company) if refusal is not None else None
        if refusal is not None and (due is None or now > due):
            raise Conflict(ProcurementError.QUALIFICATION_COMPLAINT_LATE,
                           days=settings.PROCUREMENT_QUALIFICATION_COMPLAINT_DAYS,
                           due=f"{due:%Y-%m-%d %H:%M}" if due else "—")
        kind = Complaint.Kind.QUALIFICATION if refusal is not None else Complaint.Kind.DOCUMENTS
    elif tender.state in (S.AWARDED, S.STANDSTILL, S.EVALUATION):
        # during a lot's own standstill, also while another lot is evaluated again
        kind = Complaint.Kind.AWARD
    else:
        raise Conflict(ProcurementError.COMPLAINT_OUT_OF_TIME)
    text = _text(text, "The complaint", 20000)
    chosen = _complaint_lots(tender, company, kind, lots, now)
    limit = settings.PROCUREMENT_COMPLAINTS_PER_COMPANY
    if Complaint.objects.filter(tender=tender, company=company,
                                status__in=UNDECIDED).count() >= limit:
        raise Conflict(ProcurementError.TOO_MANY_COMPLAINTS, limit=limit)
    complaint = Complaint.objects.create(tender=tender, company=company, kind=kind,
                                         text=text, filed_at=now)
    complaint.lots.set(chosen)
    complaint.filed_index = _step(
        tender,
        ProcurementEvent.COMPLAINT_FILED,
        actor,
        {"complaint": complaint.pk, "company": company.name, "kind": kind,
         "lots": [lot.number for lot in chosen], "text_sha256": _sha(complaint.text)},
        at=now, publish=False,
    )
    complaint.save(update_fields=["filed_index"])
    _publish(tender, complaint.filed_index)
    notifications.complaint_filed(complaint)
    return complaint


def _body(actor, complaint: Complaint) -> tuple[Tender, Complaint]:
    tender = locked_tenders().get(pk=complaint.tender_id)
    if not rules.can_decide_complaint(actor, tender.buyer):
        raise PermissionDenied(ProcurementError.COMPLAINTS_BODY_ONLY)
    return tender, Complaint.objects.select_for_update().get(pk=complaint.pk)


@transaction.atomic
def rule_admissibility(*, actor, complaint: Complaint, admissible: bool, reason: str,
                       now: dt.datetime | None = None) -> Complaint:
    """The complaints body's first ruling, within the admissibility time limit. An
    admitted complaint suspends the lots it concerns until its decision."""
    tender, complaint = _body(actor, complaint)
    now = _now(now)
    if complaint.status == CS.LAPSED or \
            (complaint.status == CS.FILED and now > admissibility_due(complaint)):
        raise Conflict(ProcurementError.COMPLAINT_LAPSED)
    if complaint.status != CS.FILED:
        raise Conflict(ProcurementError.ADMISSIBILITY_RULED_ALREADY)
    if now > admissibility_due(complaint):
        raise Conflict(ProcurementError.COMPLAINT_LAPSED)
    reason = _text(reason, "The reason", 20000)
    lots = list(complaint.lots.filter(cancelled=False))
    if admissible:
        if tender.state in (S.CANCELLED, S.UNSUCCESSFUL) or not lots:
            raise Conflict(ProcurementError.NOTHING_TO_SUSPEND)
        if Contract.objects.filter(award__lot__in=lots).exists():
            raise Conflict(ProcurementError.CONTRACT_SIGNED_INADMISSIBLE)
        complaint.status, complaint.suspended_from = CS.ADMITTED, now
        _suspend(tender, lots, now)
        tender.save()
        event = ProcurementEvent.COMPLAINT_ADMITTED
        data = {"complaint": complaint.pk, "lots": [lot.number for lot in lots],
                "reason": reason, "decide_by": decision_due(complaint).isoformat()}
    else:
        complaint.status = CS.INADMISSIBLE
        event = ProcurementEvent.COMPLAINT_INADMISSIBLE
        data = {"complaint": complaint.pk, "reason": reason}
    complaint.admissibility_reason, complaint.admissibility_at = reason, now
    complaint.save()
    complaint.admissibility_index = _step(tender, event, actor, data, at=now, publish=False)
    complaint.save(update_fields=["admissibility_index"])
    _publish(tender, complaint.admissibility_index)
    Notice.objects.create(company=complaint.company, tender=tender,
                          text=f"{tender.reference}: your complaint is "
                               f"{complaint.get_status_display().lower()}. {reason}")
    notifications.complaint_ruled(complaint)
    return complaint


def _invalidate_evaluation(lot: Lot) -> None:
    """An upheld complaint sends a lot back to evaluation: its award is cancelled and
    every eligibility, score and rank is to be decided again."""
    Award.objects.filter(lot=lot, status=Award.Status.ACTIVE).update(
        status=Award.Status.CANCELLED)
    QualityScore.objects.filter(bid_lot__lot=lot).delete()
    BidLot.objects.filter(lot=lot).update(eligible=None, compliance={}, eligibility_reason="",
                                          score=None, rank=None, abnormally_low=False)
    Explanation.objects.filter(bid_lot__lot=lot).exclude(
        status=Explanation.Status.VOID).update(status=Explanation.Status.VOID)
    lot.needs_evaluation = True
    lot.save(update_fields=["needs_evaluation"])
    _supersede(lot.tender)  # the new evaluation needs a fresh adoption


@transaction.atomic
def decide_complaint(*, actor, complaint: Complaint, upheld: bool, decision: str,
                     remedy: str = "", now: dt.datetime | None = None) -> Complaint:
    """The complaints body decides an admitted complaint on the merits. An upheld
    complaint's remedy binds, on the lots it concerns only: their evaluation is redone, or
    the documents amended (they stay suspended until then), or they are cancelled."""
    tender, complaint = _body(actor, complaint)
    now = _now(now)
    if complaint.status == CS.FILED:
        raise Conflict(ProcurementError.ADMISSIBILITY_FIRST)
    if complaint.status != CS.ADMITTED:
        raise Conflict(ProcurementError.COMPLAINT_DECIDED_ALREADY)
    remedy = remedy or ""
    if upheld and remedy not in REMEDIES[complaint.kind]:
        allowed = ", ".join(sorted(REMEDIES[complaint.kind]))
        raise InvalidInput(ProcurementError.REMEDY_REQUIRED, allowed=allowed)
    if not upheld and remedy:
        raise InvalidInput(ProcurementError.REJECTION_WITHOUT_REMEDY)
    decision = _text(decision, "The decision", 20000)
    lots = list(complaint.lots.filter(cancelled=False))
    if upheld and remedy in (Complaint.Remedy.REEVALUATE, Complaint.Remedy.CANCEL_LOT) and \
            Contract.objects.filter(award__lot__in=lots, award__status=Award.Status.ACTIVE) \
            .exists():
        raise Conflict(ProcurementError.CONTRACT_SIGNED_AWARD_FINAL)
    complaint.status = CS.UPHELD if upheld else CS.REJECTED
    complaint.decision, complaint.decided_at, complaint.remedy = decision, now, remedy
    if remedy == Complaint.Remedy.REEVALUATE:
        for lot in lots:
            _invalidate_evaluation(lot)
        if tender.state in (S.AWARDED, S.STANDSTILL, S.COMPLETE):
            _move(tender, "reevaluate")
    elif remedy == Complaint.Remedy.CANCEL_LOT:
        for lot in lots:
            Award.objects.filter(lot=lot, status=Award.Status.ACTIVE).update(
                status=Award.Status.CANCELLED)
            lot.cancelled = True
            lot.save(update_fields=["cancelled"])
        if not tender.lots.filter(cancelled=False).exists():
            _move(tender, "cancel_lots")
    elif remedy == Complaint.Remedy.QUALIFY:
        _qualify_on_complaint(actor, tender, complaint, now)
    # the documents' amendment ends the suspension (amend_tender); anything else, now
    if remedy != Complaint.Remedy.AMEND_DOCUMENTS and complaint.suspends:
        complaint.suspended_until = now
    complaint.save()
    changed = _resume(tender, lots, now)
    if tender.state == S.EVALUATION:
        tender.standstill_until = _standstill_end(tender)
    tender.save()
    complaint.decided_index = _step(
        tender,
        ProcurementEvent.COMPLAINT_DECIDED,
        actor,
        {"complaint": complaint.pk, "upheld": bool(upheld), "decision": decision,
         "remedy": remedy, "lots": [lot.number for lot in lots], **changed},
        at=now, publish=False,
    )
    complaint.save(update_fields=["decided_index"])
    _publish(tender, complaint.decided_index)
    Notice.objects.create(company=complaint.company, tender=tender,
                          text=f"{tender.reference}: your complaint is "
                               f"{complaint.get_status_display().lower()}. {decision}")
    notifications.complaint_ruled(complaint)
    if upheld:
        _notify_bidders(tender, f"{tender.reference}: a complaint on lot(s) "
                        f"{', '.join(str(lot.number) for lot in lots)} is upheld: "
                        f"{complaint.get_remedy_display().lower()}.")
    return complaint


def _qualify_on_complaint(actor, tender: Tender, complaint: Complaint,
                          now: dt.datetime) -> None:
    """The remedy of an upheld complaint against a refusal at pre-qualification: the
    candidate is qualified and may bid; the suspension's time is given back to all."""
    participation = tender.participants.select_for_update().get(company=complaint.company)
    participation.kind, participation.updated_at = Participation.Kind.QUALIFIED, now
    participation.save(update_fields=["kind", "updated_at"])
    _step(tender, ProcurementEvent.CANDIDATE_QUALIFIED, actor,
          {"company": complaint.company.matricule_fiscal}, at=now)


def complaint_timers(now: dt.datetime | None = None) -> list[str]:
    """The complaints body's time limits: a complaint whose admissibility is not ruled in
    time lapses; an admitted one not decided in time stops suspending its lots (it stays
    to be decided). Run by the worker with the other timers."""
    now = _now(now)
    done = []
    admissibility = _days("PROCUREMENT_COMPLAINT_ADMISSIBILITY_DAYS")
    decision = _days("PROCUREMENT_COMPLAINT_DECISION_DAYS")
    overdue = Complaint.objects.filter(
        Q(status=CS.FILED, filed_at__lt=now - admissibility) |
        Q(status=CS.ADMITTED, suspended_from__lt=now - decision, suspended_until=None))
    for pk in overdue.values_list("pk", flat=True):
        with transaction.atomic():
            complaint = Complaint.objects.get(pk=pk)
            tender = locked_tenders().get(pk=complaint.tender_id)
            complaint = Complaint.objects.select_for_update().get(pk=pk)
            if complaint.status == CS.FILED and now > admissibility_due(complaint):
                complaint.status = CS.LAPSED
                complaint.save(update_fields=["status"])
                index = _step(tender, ProcurementEvent.COMPLAINT_LAPSED, None,
                              {"complaint": pk, "reason": "admissibility not ruled within "
                               f"{admissibility.days} days"}, at=now)
                done.append(f"{tender.reference}: complaint {pk} lapsed (#{index})")
            elif complaint.status == CS.ADMITTED and complaint.suspends and \
                    now > decision_due(complaint):
                complaint.suspended_until = now
                complaint.save(update_fields=["suspended_until"])
                lots = list(complaint.lots.all())
                changed = _resume(tender, lots, now)
                tender.save()
                index = _step(tender, ProcurementEvent.COMPLAINT_SUSPENSION_LIFTED, None,
                              {"complaint": pk, "lots": [lot.number for lot in lots],
                               "reason": f"not decided within {decision.days} days",
                               **changed}, at=now)
                done.append(f"{tender.reference}: complaint {pk} no longer suspends "
                            f"(#{index})")
    return done


# --- contracts --------------------------------------------------------------------------
#
# A contract is signed by both parties over the same terms: the buyer's procurement
# officer first (``pending``), then a user of the supplier (``active``); only an active
# contract takes amendments, payments, call-offs and prices. Amendments that raise the
# value beyond the ceiling (cumulated over the signed value) wait for a control agent.

CT = Contract.Status
AS = Amendment.Status
# The one table of contract moves: action → (statuses it may start from, status it leads to).
CONTRACT_TRANSITIONS: dict[str, tuple[set[str], str]] = {
    "countersign": ({CT.PENDING}, CT.ACTIVE),
    "complete": ({CT.ACTIVE}, CT.COMPLETED),
    "terminate": ({CT.ACTIVE}, CT.TERMINATED),
}


def _contract_move(contract: Contract, refusal: ProcurementError, action: str) -> None:
    sources, target = CONTRACT_TRANSITIONS[action]
    if contract.status not in sources:
        raise Conflict(refusal, status=_status_label(contract))
    contract.status = target


def _require_active(contract: Contract, refusal: ProcurementError) -> None:
    if contract.status != CT.ACTIVE:
        raise Conflict(refusal, status=_status_label(contract))


def _status_label(contract: Contract):
    return read_when_rendered(lambda: str(contract.get_status_display()).lower())


def contract_terms(contract: Contract) -> dict:
    """What both parties sign: the contract, its lot, supplier, value and dates."""
    return {"contract": contract.pk, "ocid": contract.tender.ocid,
            "tender": contract.tender.reference, "lot": contract.award.lot.number,
            "supplier": {"id": contract.supplier_id,
                         "matricule_fiscal": contract.supplier.matricule_fiscal},
            "value": str(contract.value), "currency": "TND",
            "start_date": contract.start_date.isoformat(),
            "end_date": contract.end_date.isoformat()}


def terms_sha256(contract: Contract) -> str:
    """SHA-256 of the terms in canonical JSON (RFC 8785), as both signatures record it."""
    return hashlib.sha256(rfc8785.dumps(contract_terms(contract))).hexdigest()


def _paid(contract: Contract) -> Decimal:
    return contract.payments.aggregate(total=Sum("amount"))["total"] or Decimal(0)


def amendment_ceiling() -> Decimal:
    """The share (percent) by which amendments may raise a contract over its signed value
    without a control agent's approval."""
    return Decimal(settings.PROCUREMENT_AMENDMENT_CEILING_PERCENT)


@transaction.atomic
def sign_contract(*, actor, award: Award, start_date: dt.date, end_date: dt.date,
                  now: dt.datetime | None = None) -> Contract:
    """The buyer's procurement officer signs the contract of an award once its standstill
    is over: the contract is ``pending`` until the supplier countersigns the same terms,
    whose hash the entry records."""
    award = Award.objects.select_related("lot", "supplier").get(pk=award.pk)
    tender = locked_tenders().get(pk=award.tender_id)
    agent = _buyer_agent(actor, tender, Role.PROCUREMENT_OFFICER)
    # the award's own standstill: a lot awarded again does not hold back the others
    over = tender.state == S.COMPLETE or (
        tender.state in (S.EVALUATION, S.AWARDED, S.STANDSTILL) and
        award.standstill_until is not None and
        min(_now(now), timezone.now()) >= award.standstill_until)
    if not over or award.status != Award.Status.ACTIVE:
        raise Conflict(ProcurementError.CONTRACT_DURING_STANDSTILL)
    if Lot.objects.get(pk=award.lot_id).suspended_since is not None:
        raise Conflict(ProcurementError.LOT_SUSPENDED, lot=award.lot.number)
    if end_date <= start_date:
        raise InvalidInput(ProcurementError.CONTRACT_ENDS_BEFORE_START)
    try:
        with transaction.atomic():
            contract = Contract.objects.create(
                tender=tender, award=award, supplier=award.supplier, value=award.value,
                start_date=start_date, end_date=end_date, signed_at=_now(now),
                signed_by=agent.user if agent else None, status=CT.PENDING)
    except IntegrityError:
        raise Conflict(ProcurementError.CONTRACT_EXISTS) from None
    contract.terms_sha256 = terms_sha256(contract)
    contract.signed_index = _step(
        tender,
        ProcurementEvent.CONTRACT_SIGNED,
        actor,
        {
            "contract": contract.pk,
            "buyer": tender.buyer.code,
            "signer": directory.actor_id(actor),
            "lot": award.lot.number,
            "supplier": award.supplier.name,
            "value": str(contract.value),
            "start_date": start_date.isoformat(),
            "end_date": end_date.isoformat(),
            "terms_sha256": contract.terms_sha256,
        },
        at=contract.signed_at, publish=False,
    )
    contract.save(update_fields=["terms_sha256", "signed_index"])
    _publish(tender, contract.signed_index)
    notifications.contract_to_countersign(contract)
    return contract


@transaction.atomic
def countersign_contract(*, actor, contract: Contract, terms_sha256_seen: str | None = None,
                         now: dt.datetime | None = None) -> Contract:
    """A user of the contract's supplier countersigns: the contract is in force.

    The terms are hashed again from the contract as it stands and must be the ones the
    buyer signed (and, when given, the ones the supplier was shown); a user of another
    company, a second signature, or terms changed in between are refused.
    """
    contract = Contract.objects.select_for_update(of=("self",)).select_related(
        "tender", "award__lot", "supplier").get(pk=contract.pk)
    company = _company_user(actor)
    if company.pk != contract.supplier_id:
        raise PermissionDenied(ProcurementError.SUPPLIER_COUNTERSIGNS)
    _contract_move(contract, ProcurementError.COUNTERSIGNATURE_NOT_AWAITED, "countersign")
    terms = terms_sha256(contract)
    if terms != contract.terms_sha256:
        raise Conflict(ProcurementError.CONTRACT_TERMS_CHANGED)
    if terms_sha256_seen is not None and terms_sha256_seen.strip().lower() != terms:
        raise Conflict(ProcurementError.CONTRACT_TERMS_MISMATCH)
    contract.supplier_signed_at = _now(now)
    contract.supplier_signed_by = actor
    contract.supplier_signed_index = _step(
        contract.tender,
        ProcurementEvent.CONTRACT_COUNTERSIGNED,
        actor,
        {"contract": contract.pk, "company": company.name,
         "signer": directory.actor_id(actor), "terms_sha256": terms},
        at=contract.supplier_signed_at, publish=False,
    )
    contract.save()
    _publish(contract.tender, contract.supplier_signed_index)
    return contract


@transaction.atomic
def amend_contract(*, actor, contract: Contract, justification: str, new_value=None,
                   new_end_date: dt.date | None = None,
                   now: dt.datetime | None = None) -> Amendment:
    """Change an active contract's value or end date, with a justification.

    Within the ceiling the amendment applies at once. When the value it leads to is
    more than ``SAHAB_PROCUREMENT_AMENDMENT_CEILING_PERCENT`` above the value both parties
    signed (amendments count together: two of +15 % are +30 %), it is only ``proposed``:
    the contract does not change until a control agent approves it.
    """
    contract = Contract.objects.select_for_update(of=("self",)).select_related("award") \
        .get(pk=contract.pk)
    agent = _buyer_agent(actor, contract.tender, Role.PROCUREMENT_OFFICER)
    _require_active(contract, ProcurementError.AMENDMENT_NEEDS_ACTIVE)
    if contract.amendments.filter(status=AS.PROPOSED).exists():
        raise Conflict(ProcurementError.AMENDMENT_PENDING)
    value = _money(new_value, "The new value").quantize(Decimal("0.001")) \
        if new_value is not None else contract.value
    end = new_end_date or contract.end_date
    if value == contract.value and end == contract.end_date:
        raise InvalidInput(ProcurementError.AMENDMENT_WITHOUT_CHANGE)
    if end <= contract.start_date:
        raise InvalidInput(ProcurementError.CONTRACT_ENDS_BEFORE_START)
    paid = _paid(contract)
    if value < paid:
        raise InvalidInput(ProcurementError.VALUE_BELOW_PAID, paid=paid)
    signed = contract.award.value  # the contract is signed at its award's value
    increase = ((value - signed) * 100 / signed).quantize(Decimal("0.01"), ROUND_HALF_UP)
    ceiling = amendment_ceiling()
    over = increase > ceiling
    amendment = Amendment.objects.create(
        contract=contract, old_value=contract.value, new_value=value,
        old_end_date=contract.end_date, new_end_date=end,
        justification=_text(justification, "The justification", 5000),
        created_at=_now(now), status=AS.PROPOSED if over else AS.APPLIED,
        proposed_by=agent.user if agent else None, cumulative_increase=increase)
    data = {
        "amendment": amendment.pk,
        "contract": contract.pk,
        "old_value": str(amendment.old_value),
        "new_value": str(value),
        "old_end_date": amendment.old_end_date.isoformat(),
        "new_end_date": end.isoformat(),
        "justification": amendment.justification,
        "cumulative_increase": str(increase),
    }
    if over:
        amendment.ledger_index = _step(
            contract.tender, ProcurementEvent.CONTRACT_AMENDMENT_PROPOSED, actor,
            data | {"ceiling": str(ceiling)}, at=now)
        amendment.save(update_fields=["ledger_index"])
        notifications.amendment_to_approve(amendment)
        return amendment
    contract.value, contract.end_date = value, end
    contract.save()
    amendment.ledger_index = _step(contract.tender, ProcurementEvent.CONTRACT_AMENDED, actor,
                                   data, at=now, publish=False)
    amendment.save(update_fields=["ledger_index"])
    _publish(contract.tender, amendment.ledger_index)
    return amendment


@transaction.atomic
def decide_amendment(*, actor, amendment: Amendment, approve: bool, reason: str,
                     now: dt.datetime | None = None) -> Amendment:
    """A control agent of the buyer's ministry line approves (the contract takes the new
    value and end date) or refuses (nothing changes) an amendment beyond the ceiling,
    with reasons. Whoever proposed it cannot decide it."""
    # the contract first, then its amendment: the order every contract write locks in
    contract = Contract.objects.select_for_update(of=("self",)).select_related("tender__buyer") \
        .get(pk=Amendment.objects.values_list("contract_id", flat=True).get(pk=amendment.pk))
    amendment = Amendment.objects.select_for_update().get(pk=amendment.pk)
    if not selectors.may_control_amendments(actor, contract.tender.buyer):
        raise PermissionDenied(ProcurementError.CEILING_AUDITOR_ONLY)
    proposer = amendment.proposed_by_id
    if (proposer is None and isinstance(actor, directory.SystemActor)) or \
            (proposer is not None and proposer == getattr(actor, "pk", None)):
        raise PermissionDenied(ProcurementError.AMENDMENT_SELF_APPROVAL)
    if amendment.status != AS.PROPOSED:
        raise Conflict(ProcurementError.AMENDMENT_NOT_PENDING)
    reason = _text(reason, "The reason", 5000)
    if approve:
        _require_active(contract, ProcurementError.AMENDMENT_NEEDS_ACTIVE)
        paid = _paid(contract)
        if amendment.new_value < paid:
            raise Conflict(ProcurementError.VALUE_BELOW_PAID, paid=paid)
        contract.value, contract.end_date = amendment.new_value, amendment.new_end_date
        contract.save()
    amendment.status = AS.APPROVED if approve else AS.REFUSED
    amendment.decided_by = None if isinstance(actor, directory.SystemActor) else actor
    amendment.decided_at = _now(now)
    amendment.decision_reason = reason
    event = ProcurementEvent.CONTRACT_AMENDMENT_APPROVED if approve else \
        ProcurementEvent.CONTRACT_AMENDMENT_REFUSED
    data = {"amendment": amendment.pk, "contract": contract.pk, "reason": reason}
    if approve:
        data |= {"new_value": str(amendment.new_value),
                 "new_end_date": amendment.new_end_date.isoformat()}
    amendment.decided_index = _step(contract.tender, event, actor, data,
                                    at=amendment.decided_at, publish=False)
    amendment.save()
    _publish(contract.tender, amendment.decided_index)
    notifications.amendment_decided(amendment)
    return amendment


@transaction.atomic
def record_payment(*, actor, contract: Contract, milestone: str, amount,
                   now: dt.datetime | None = None) -> Payment:
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    _buyer_agent(actor, contract.tender, Role.FINANCE)
    _require_active(contract, ProcurementError.PAYMENT_NEEDS_ACTIVE)
    amount = _money(amount, "The amount")
    paid = _paid(contract)
    if paid + amount > contract.value:
        raise InvalidInput(ProcurementError.PAYMENT_EXCEEDS_VALUE, amount=amount, paid=paid,
                           value=contract.value)
    payment = Payment.objects.create(contract=contract, amount=amount, paid_at=_now(now),
                                     milestone=_text(milestone, "The milestone", 300))
    _step(
        contract.tender,
        ProcurementEvent.CONTRACT_PAYMENT,
        actor,
        {"contract": contract.pk, "milestone": payment.milestone, "amount": str(amount)},
        at=payment.paid_at,
    )
    return payment


def _complete(contract: Contract, actor, reason: str, *, automatic: bool,
              now: dt.datetime) -> Contract:
    _contract_move(contract, ProcurementError.COMPLETION_NEEDS_ACTIVE, "complete")
    if contract.amendments.filter(status=AS.PROPOSED).exists():
        raise Conflict(ProcurementError.AMENDMENT_PENDING)
    contract.completed_at = now
    contract.completion_reason = reason
    contract.final_value = _paid(contract).quantize(Decimal("0.001"))
    contract.completion_index = _step(
        contract.tender, ProcurementEvent.CONTRACT_COMPLETED, actor,
        {"contract": contract.pk, "final_value": str(contract.final_value),
         "reason": reason, "automatic": automatic}, at=now, publish=False)
    contract.save()
    _publish(contract.tender, contract.completion_index)
    return contract


@transaction.atomic
def complete_contract(*, actor, contract: Contract, reason: str,
                      now: dt.datetime | None = None) -> Contract:
    """The buyer's procurement officer accepts an active contract as carried out (final
    acceptance, réception définitive), with the reason; the value paid so far is its
    final value. A completed contract takes no payment or amendment any more."""
    contract = Contract.objects.select_for_update(of=("self",)).select_related("tender") \
        .get(pk=contract.pk)
    _buyer_agent(actor, contract.tender, Role.PROCUREMENT_OFFICER)
    return _complete(contract, actor, _text(reason, "The reason", 5000), automatic=False,
                     now=_now(now))


def complete_finished_contracts(now: dt.datetime | None = None) -> list[str]:
    """The timer's part: an active contract fully paid whose end date has passed is
    completed (one transaction each). Run with the tenders' timers."""
    now = _now(now)
    done = []
    due = Contract.objects.filter(status=CT.ACTIVE, end_date__lt=now.date()) \
        .annotate(paid=Sum("payments__amount")).filter(paid__gte=models.F("value")) \
        .values_list("pk", flat=True)
    for pk in list(due):
        with transaction.atomic():
            contract = Contract.objects.select_for_update(of=("self",)).select_related("tender") \
                .get(pk=pk)
            if contract.status != CT.ACTIVE or _paid(contract) < contract.value or \
                    contract.amendments.filter(status=AS.PROPOSED).exists():
                continue
            _complete(contract, None, "Fully paid and past its end date.", automatic=True,
                      now=now)
            done.append(f"{contract.tender.reference}: contract {pk} completed "
                        f"(#{contract.completion_index})")
    return done


@transaction.atomic
def terminate_contract(*, actor, contract: Contract, reason: str) -> Contract:
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    _buyer_agent(actor, contract.tender, Role.PROCUREMENT_OFFICER)
    _contract_move(contract, ProcurementError.TERMINATION_NEEDS_ACTIVE, "terminate")
    contract.termination_reason = _text(reason, "The reason", 5000)
    contract.save()
    _step(
        contract.tender,
        ProcurementEvent.CONTRACT_TERMINATED,
        actor,
        {"contract": contract.pk, "reason": contract.termination_reason},
    )
    return contract


@transaction.atomic
def direct_call_off(*, actor, contract: Contract, buyer: Administration, description: str,
                    quantity, unit_price=None) -> CallOff:
    """Order under a framework agreement at its price, without a new competition.

    Any administration's procurement officer may call off a framework agreement (the
    central purchasing body bought it for all); the call-offs never exceed its value.
    """
    contract = Contract.objects.select_for_update().select_related("tender", "award__lot") \
        .get(pk=contract.pk)
    _buyer_agent(actor, buyer, Role.PROCUREMENT_OFFICER)
    if contract.tender.procedure != Procedure.FRAMEWORK or contract.status != CT.ACTIVE:
        raise Conflict(ProcurementError.CALL_OFF_NEEDS_ACTIVE_FRAMEWORK)
    quantity = _money(quantity, "The quantity")
    price = contract.award.value if unit_price is None else _money(unit_price, "The price")
    if price > contract.award.value:
        raise InvalidInput(ProcurementError.CALL_OFF_ABOVE_PRICE, price=contract.award.value)
    value = (quantity * price).quantize(Decimal("0.001"), ROUND_HALF_UP)
    used = contract.call_offs.aggregate(total=Sum("value"))["total"] or Decimal(0)
    if used + value > contract.value:
        raise InvalidInput(ProcurementError.FRAMEWORK_EXHAUSTED, left=contract.value - used,
                           value=value)
    index = _step(
        contract.tender,
        ProcurementEvent.CALL_OFF_ORDERED,
        actor,
        {
            "contract": contract.pk,
            "buyer": buyer.code,
            "lot": contract.award.lot.number,
            "supplier": contract.supplier.name,
            "quantity": str(quantity),
            "unit_price": str(price),
            "value": str(value),
        },
        publish=False,
    )
    call_off = CallOff.objects.create(contract=contract, buyer=buyer,
                                      description=_text(description, "The description", 500),
                                      quantity=quantity, unit_price=price, value=value,
                                      ledger_index=index)
    _publish(contract.tender, index)
    return call_off


@transaction.atomic
def set_contract_price(*, actor, contract: Contract, code: str, description: str,
                       unit_price, unit: str = "hour") -> ContractPrice:
    """Record one line of an active contract's schedule of unit prices.

    The buyer's procurement officer enters the prices of the signed contract; a line,
    once recorded, is not changed (a new price needs an amendment and a new line code).
    """
    contract = Contract.objects.select_for_update().select_related("tender").get(pk=contract.pk)
    _buyer_agent(actor, contract.tender, Role.PROCUREMENT_OFFICER)
    _require_active(contract, ProcurementError.PRICE_NEEDS_ACTIVE)
    code = _text(code, "The item code", 100)
    if contract.prices.filter(code=code).exists():
        raise Conflict(ProcurementError.PRICE_RECORDED_ALREADY, code=code)
    price = _money(unit_price, "The unit price")
    unit = _text(unit, "The unit", 30)
    index = _step(
        contract.tender,
        ProcurementEvent.CONTRACT_PRICE,
        actor,
        {"contract": contract.pk, "code": code, "unit": unit, "unit_price": str(price)},
    )
    return ContractPrice.objects.create(
        contract=contract, code=code, description=_text(description, "The description", 300),
        unit=unit, unit_price=price, ledger_index=index)
