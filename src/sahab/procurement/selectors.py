"""Reads of procurement, with what each user may see.

Bids stay sealed: nothing here returns a bid's content before the tender is opened,
whoever asks (the content is not even decrypted before then).
"""

from __future__ import annotations

import base64
import re

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from sahab.directory import selectors as directory
from sahab.directory.models import Administration, Company
from sahab.procurement import search
from sahab.procurement.models import (
    Bid,
    Complaint,
    Lot,
    SigningKey,
    State,
    Step,
    Tender,
    TenderAmendment,
)

PUBLIC_STATES = [s for s in State.values if s != State.DRAFT]
OPENED = [Bid.Status.OPENED, Bid.Status.TAMPERED]
MATRICULE_START = re.compile(r"\d{7}[A-Z]")  # a matricule fiscal's identifier and key


def tenders_visible_to(user) -> QuerySet[Tender]:
    """Published tenders for everybody; drafts for the buyer's own agents too."""
    qs = Tender.objects.select_related("buyer")
    agent = directory.agent_of(user)
    if agent is not None:
        return qs.filter(Q(state__in=PUBLIC_STATES) |
                         Q(buyer__path__startswith=agent.administration.path))
    return qs.filter(state__in=PUBLIC_STATES)


def may_see_tender(user, tender: Tender) -> bool:
    """Whether ``tender`` is one of ``tenders_visible_to(user)`` (for a tender already
    read: a draft asks for its buyer, a published tender for nothing)."""
    if tender.state in PUBLIC_STATES:
        return True
    agent = directory.agent_of(user)
    return agent is not None and tender.buyer.path.startswith(agent.administration.path)


def public_tenders(*, q: str = "", state: str = "", buyer: str = "", procedure: str = "",
                   cpv: str = "", min_value=None, max_value=None, published_from=None,
                   published_to=None, references=None) -> QuerySet[Tender]:
    """Published tenders, filtered; ``buyer`` includes the buyer's sub-administrations."""
    qs = Tender.objects.filter(state__in=PUBLIC_STATES).select_related("buyer")
    if q:
        # A company's name or matricule finds the tenders it bid on (once its bid was
        # opened: sealed bids name nobody) and those it won, through the names kept on
        # the tender's row (procurement.search). Every way of matching is a column of
        # the row: walking the list's order, the scan stops at the page's last match; for
        # a rare word, PostgreSQL unites the trigram indexes of migrations 0016 and 0021.
        q = q.replace(search.SEPARATOR, " ")
        matches = (Q(title__icontains=q) | Q(reference__icontains=q)
                   | Q(description__icontains=q) | Q(party_names__icontains=q))
        compact = q.replace("/", "").replace(" ", "").upper()
        if MATRICULE_START.match(compact):  # "1234567 A", "1234567/A…": its first eight
            matches |= Q(party_names__icontains=compact[:8])
        qs = qs.filter(matches)
    if state:
        qs = qs.filter(state=state)
    if buyer:
        qs = qs.filter(Q(buyer__code=buyer) | Q(buyer__path__contains=f"/{buyer}/"))
    if procedure:
        qs = qs.filter(procedure=procedure)
    if cpv:
        qs = qs.filter(pk__in=Lot.objects.filter(cpv__startswith=cpv).values("tender_id"))
    if min_value is not None:
        qs = qs.filter(estimated_value__gte=min_value)
    if max_value is not None:
        qs = qs.filter(estimated_value__lte=max_value)
    if published_from:
        qs = qs.filter(published_at__date__gte=published_from)
    if published_to:
        qs = qs.filter(published_at__date__lte=published_to)
    if references is not None:
        qs = qs.filter(reference__in=references)
    return qs.order_by("-published_at", "-pk")


def buyers_matching(text: str, limit: int = 20) -> list[Administration]:
    """Up to ``limit`` administrations that published a tender, whose code starts with
    ``text`` or whose name (in any language) holds it; codes first, then by code."""
    text = text.strip()
    if not text:
        return []
    published = Tender.objects.filter(buyer=OuterRef("pk"), published_at__isnull=False)
    by_code = Administration.objects.filter(code__istartswith=text)
    by_name = Administration.objects.filter(Q(name_fr__icontains=text)
                                            | Q(name_ar__icontains=text)
                                            | Q(name_en__icontains=text))
    found: dict[int, Administration] = {}
    for qs in (by_code, by_name):
        for buyer in qs.filter(Exists(published)).order_by("code")[:limit]:
            found.setdefault(buyer.pk, buyer)
    return list(found.values())[:limit]


def opened_bids(tender: Tender) -> QuerySet[Bid]:
    """The bids an opening report lists (valid or rejected as altered), with their prices."""
    return (tender.bids.filter(status__in=OPENED).select_related("company")
            .prefetch_related("lot_prices__lot"))


def bids_of_company(user) -> QuerySet[Bid]:
    company = directory.company_of(user)
    if company is None:
        return Bid.objects.none()
    return Bid.objects.filter(company=company).select_related("tender")


def encode_cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"s{index}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """-1 for the start; raises ValueError on a cursor this server did not give."""
    if not cursor:
        return -1
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    if not raw.startswith("s") or not raw[1:].isdigit() or len(raw) > 21:
        raise ValueError("bad cursor")
    return int(raw[1:])


def changes_after(index: int, limit: int) -> list[Step]:
    """Steps after a ledger index, oldest first (all public: they are ledger entries).

    Steps are written with their ledger entry, whose indexes are given under the
    ledger's append lock in commit order: a step with a higher index never becomes
    visible before one with a lower index, so a cursor loses and repeats nothing.

    The one exception is a tender's bid steps: their entries are written under the
    tender's secret tag before the deadline, and become steps only at the opening, below
    any cursor given since. So they are listed with their opening instead, just before its
    ``tender.opened`` step, whatever the cursor (a page may then hold more than ``limit``).
    """
    steps = list(Step.objects.filter(ledger_index__gt=index).exclude(type__startswith="bid.")
                 .select_related("tender").order_by("ledger_index")[:limit])
    opened = [s.tender_id for s in steps if s.type == "tender.opened"]
    if not opened:
        return steps
    bids: dict[int, list[Step]] = {}
    for step in (Step.objects.filter(tender_id__in=opened, type__startswith="bid.")
                 .select_related("tender").order_by("ledger_index")):
        bids.setdefault(step.tender_id, []).append(step)
    out = []
    for step in steps:
        if step.type == "tender.opened":
            out += bids.pop(step.tender_id, [])
        out.append(step)
    return out


def framework_prices(supplier: Company, codes: list[str] | None = None):
    """The unit prices of the supplier's active framework agreements, newest contract first.

    The cloud catalogue prices each broker plan from here: a plan with no line is not
    orderable.
    """
    from sahab.procurement.models import ContractPrice, Procedure

    prices = ContractPrice.objects.filter(
        contract__supplier=supplier, contract__status="active",
        contract__tender__procedure=Procedure.FRAMEWORK,
        contract__end_date__gte=timezone.localdate(),
    ).select_related("contract__tender").order_by("-contract__signed_at", "pk")
    if codes is not None:
        prices = prices.filter(code__in=codes)
    return prices


# --- profiles of companies and buyers (public data only) -------------------------------

def company_by_slug(slug: str) -> Company | None:
    """A company by its matricule fiscal, written with or without slashes."""
    from django.core.exceptions import ValidationError

    from sahab.directory.validators import normalize_matricule_fiscal

    try:
        matricule = normalize_matricule_fiscal(slug)
    except ValidationError:
        return None
    return Company.objects.filter(matricule_fiscal=matricule).first()


def search_companies(q: str, limit: int = 50) -> QuerySet[Company]:
    """Companies by name or matricule fiscal (slashes optional)."""
    q = q.strip()
    compact = q.replace("/", "").replace(" ", "").upper()
    qs = Company.objects.filter(Q(name__icontains=q) | Q(matricule_fiscal__icontains=q))
    if len(compact) >= 4:
        qs = qs | Company.objects.filter(matricule_fiscal__startswith=compact[:8])
    return qs.distinct().order_by("name")[:limit]


def signing_keys_of(user) -> QuerySet[SigningKey]:
    company = directory.company_of(user)
    if company is None:
        return SigningKey.objects.none()
    return SigningKey.objects.filter(company=company)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def opening_report(tender: Tender):
    """The full opening report of an opened tender (a ``TenderDocument``), or None."""
    from sahab.procurement.models import OPENING_REPORT

    if tender.opened_at is None:
        return None
    return tender.documents.filter(name=OPENING_REPORT).first()


def opening_data(tender: Tender) -> dict:
    """The public data an outside verifier checks an opening with (``sahab procurement
    verify-opening``): before the opening, only the committee and its released keys;
    after it, every envelope the database holds and the signing keys they name."""
    steps = dict(tender.steps.filter(type__in=["tender.published", "tender.tendering_closed",
                                                "tender.opened"])
                 .values_list("type", "ledger_index"))
    data = {
        "reference": tender.reference, "state": tender.state,
        "submission_deadline": tender.submission_deadline.isoformat(),
        "published": steps.get("tender.published"),
        "tendering_closed": steps.get("tender.tendering_closed"),
        "opened": steps.get("tender.opened") if tender.opened_at else None,
        "committee": {"threshold": tender.committee_threshold, "members": [
            {"position": m.position, "public_key": _b64(bytes(m.public_key)),
             "key_ledger_index": m.key_ledger_index,
             "released_key": _b64(bytes(m.released_key)) if m.released_at else None,
             "release_ledger_index": m.release_ledger_index}
            for m in tender.committee.all()]},
        "envelopes": [], "signing_keys": [],
    }
    if tender.opened_at is None:
        return data
    data["report"] = f"/api/procurement/tenders/{tender.reference}/opening/report"
    bids = list(tender.bids.select_related("signing_key").order_by("pk"))
    data["envelopes"] = [{"bid": b.pk, "status": b.status, "ledger_index": b.ledger_index,
                          "envelope": bytes(b.envelope).decode("ascii", "replace")}
                         for b in bids]
    keys = {b.signing_key for b in bids if b.signing_key is not None}
    data["signing_keys"] = [{"fingerprint": k.fingerprint, "company": k.company_id,
                             "public_key": _b64(bytes(k.public_key)),
                             "ledger_index": k.ledger_index,
                             "revoked_ledger_index": k.revoked_ledger_index}
                            for k in sorted(keys, key=lambda k: k.ledger_index)]
    return data


def evaluation(tender: Tender, *, names: bool = False) -> dict:
    """The evaluation committee of ``tender`` (members, chair, quorum), its reports with
    each member's approval or dissent, and the explanations of abnormally low prices.
    Members are named by their ledger ids, or by name with ``names`` (agents' pages)."""
    from sahab.procurement.models import EvaluationReport, Explanation

    def who(user) -> str:
        if user is None:
            return ""
        return (user.get_full_name() or user.username) if names else directory.actor_id(user)

    reports = (EvaluationReport.objects.filter(tender=tender).order_by("number")
               .prefetch_related("approvals__member"))
    explanations = (Explanation.objects.filter(bid_lot__bid__tender=tender)
                    .select_related("bid_lot__bid__company", "bid_lot__lot"))
    return {
        "quorum": tender.evaluation_quorum,
        "members": [{"member": who(m.member), "chair": m.chair, "ledger_index": m.ledger_index}
                    for m in tender.evaluation_committee.select_related("member")],
        "reports": [{"number": r.number, "sha256": r.sha256, "status": r.status,
                     "status_display": str(r.get_status_display()),
                     "ledger_index": r.ledger_index, "adopted_index": r.adopted_index,
                     "approvals": [{"member": who(v.member), "approved": v.approved,
                                    "reason": v.reason, "ledger_index": v.ledger_index}
                                   for v in r.approvals.all()]}
                    for r in reports],
        "explanations": [{"id": e.pk, "bid": e.bid_lot.bid_id, "lot": e.bid_lot.lot.number,
                          "company": e.bid_lot.bid.company.name, "status": e.status,
                          "status_display": str(e.get_status_display()),
                          "question": e.question, "due_at": e.due_at.isoformat(),
                          "answered_at": e.answered_at.isoformat() if e.answered_at else None,
                          "decision": e.decision, "requested_index": e.requested_index,
                          "answered_index": e.answered_index,
                          "decided_index": e.decided_index}
                         for e in explanations],
    }


# --- contracts: who signs, who controls amendments -----------------------------------------

def ministry_line(admin) -> str:
    """The code at the top of an administration's tree: its ministry (or the agency,
    municipality or independent body that stands alone)."""
    return admin.path.strip("/").split("/")[0]


def may_countersign(user, contract) -> bool:
    """A user of the contract's own supplier, while the contract awaits its signature."""
    company = directory.company_of(user)
    return company is not None and company.active and company.pk == contract.supplier_id \
        and contract.status == "pending"


def may_control_amendments(user, buyer) -> bool:
    """Amendments beyond the ceiling are approved by an auditor of the buyer's ministry
    line (its control of public contracts, which platform admins alone appoint: the
    auditor role is a powerful one), never by the buyer's own agents unless they hold it."""
    if isinstance(user, directory.SystemActor):
        return True
    agent = directory.agent_of(user)
    from sahab.directory.models import Role

    return agent is not None and Role.AUDITOR in agent.role_set and \
        ministry_line(agent.administration) == ministry_line(buyer)


def amendment_controllers(buyer) -> list:
    """The users who may approve or refuse ``buyer``'s amendments beyond the ceiling."""
    from sahab.directory.models import Agent, Role

    agents = Agent.objects.filter(roles__role=Role.AUDITOR, user__is_active=True,
                                  administration__path__startswith=f"/{ministry_line(buyer)}/") \
        .select_related("user").distinct().order_by("pk")
    return [a.user for a in agents]


def amendments_since_bid(tender: Tender, company: Company) -> list[TenderAmendment]:
    """The amendments published after the company's standing sealed bid when they leave it
    valid: the company decides whether to keep, replace or withdraw it, so it is told
    where it bids."""
    bid = tender.bids.filter(company=company, status=Bid.Status.SUBMITTED) \
        .order_by("-submitted_at").first()
    if bid is None or bid.confirm_amendment is not None:
        return []  # a bid to confirm is asked for on its own (``_confirm_bid.html``)
    return list(tender.amendments.filter(amended_at__gt=bid.submitted_at))


def lots_with_cancellations(tender: Tender) -> list[Lot]:
    """The tender's lots, each cancelled one with the upheld complaint whose remedy
    cancelled it (``cancelled_by``): the public reads why a lot will not be awarded."""
    lots = list(tender.lots.prefetch_related("items"))
    by_lot = {}
    for complaint in tender.complaints.filter(
            status=Complaint.Status.UPHELD, remedy=Complaint.Remedy.CANCEL_LOT) \
            .prefetch_related("lots").order_by("decided_at"):
        for lot in complaint.lots.all():
            by_lot.setdefault(lot.pk, complaint)
    for lot in lots:
        lot.cancelled_by = by_lot.get(lot.pk) if lot.cancelled else None
    return lots
