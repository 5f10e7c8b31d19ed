"""Reads of procurement, with what each user may see.

Bids stay sealed: nothing here returns a bid's content before the tender is opened,
whoever asks (the content is not even decrypted before then).
"""

from __future__ import annotations

import base64

from django.db.models import Q, QuerySet
from django.utils import timezone

from sahab.directory import selectors as directory
from sahab.directory.models import Company
from sahab.procurement.models import Bid, State, Step, Tender

PUBLIC_STATES = [s for s in State.values if s != State.DRAFT]


def tenders_visible_to(user) -> QuerySet[Tender]:
    """Published tenders for everybody; drafts for the buyer's own agents too."""
    qs = Tender.objects.select_related("buyer")
    agent = directory.agent_of(user)
    if agent is not None:
        return qs.filter(Q(state__in=PUBLIC_STATES) |
                         Q(buyer__path__startswith=agent.administration.path))
    return qs.filter(state__in=PUBLIC_STATES)


def public_tenders(*, q: str = "", state: str = "", buyer: str = "", procedure: str = "",
                   cpv: str = "", min_value=None, max_value=None, published_from=None,
                   published_to=None, references=None) -> QuerySet[Tender]:
    """Published tenders, filtered; ``buyer`` includes the buyer's sub-administrations."""
    qs = Tender.objects.filter(state__in=PUBLIC_STATES).select_related("buyer")
    if q:
        qs = qs.filter(Q(title__icontains=q) | Q(reference__icontains=q) |
                       Q(description__icontains=q))
    if state:
        qs = qs.filter(state=state)
    if buyer:
        qs = qs.filter(Q(buyer__code=buyer) | Q(buyer__path__contains=f"/{buyer}/"))
    if procedure:
        qs = qs.filter(procedure=procedure)
    if cpv:
        qs = qs.filter(lots__cpv__startswith=cpv).distinct()
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


OPENED = [Bid.Status.OPENED, Bid.Status.TAMPERED]


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
    """
    return list(Step.objects.filter(ledger_index__gt=index)
                .select_related("tender").order_by("ledger_index")[:limit])


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
