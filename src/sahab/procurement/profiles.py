"""The public profiles of a company and of a buyer: what they bid, won, bought and paid.

A ministry buys for years and a large company bids on thousands of lots, so a profile
never holds all of its rows at once: the figures by year and by partner are aggregated by
the database, a page shows the newest :data:`PAGE_ROWS` rows of each table with how many
there are, and a table's CSV or JSON download streams every row from a cursor in chunks.
A sealed bid is never counted or listed before its opening. Years are UTC's, as on the
dashboards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, ExtractYear

from sahab.directory.models import Administration, Company
from sahab.procurement.models import MONEY, Award, BidLot, Contract, Payment, Tender
from sahab.procurement.selectors import OPENED, PUBLIC_STATES

PAGE_ROWS = 50  # rows of each table on a profile page; its download has every row
CHUNK = 2000  # rows read from the cursor at a time by a download

ZERO = Decimal(0)


@dataclass(frozen=True)
class Table:
    """One table of a profile: its rows in the order shown, and how a row reads."""

    rows: QuerySet
    row: Callable[[Any], dict]

    def count(self) -> int:
        return self.rows.count()

    def first(self, n: int) -> list[dict]:
        return [self.row(item) for item in self.rows[:n]]

    def stream(self) -> Iterator[dict]:
        """Every row, read in chunks (a server-side cursor on PostgreSQL)."""
        return (self.row(item) for item in self.rows.iterator(chunk_size=CHUNK))


@dataclass(frozen=True)
class Profile:
    """The figures by year (a few rows, computed by the database) and the tables."""

    years: list[dict]
    tables: dict[str, Table] = field(default_factory=dict)

    def page(self, rows: int | None = None) -> dict:
        """A page's context: ``years``, each table's first ``rows`` (:data:`PAGE_ROWS`
        unless given) and its count."""
        rows = rows or PAGE_ROWS
        context: dict[str, Any] = {"years": self.years, "page_rows": rows}
        for name, table in self.tables.items():
            context[name] = table.first(rows)
            context[f"{name}_count"] = table.count()
        return context

    def download(self, name: str) -> Iterator[dict] | list[dict] | None:
        """Every row of the table ``name`` (``years`` included), or None for no such table."""
        if name == "years":
            return self.years
        table = self.tables.get(name)
        return table.stream() if table is not None else None


def _money(value) -> str:
    return str(value if value is not None else ZERO)


def _utc_year(field: str) -> ExtractYear:
    return ExtractYear(field, tzinfo=dt.UTC)


def _by_year(rows: QuerySet, **sums) -> dict[int, dict]:
    """``{year: {name: aggregate}}`` of ``rows``, whose ``year`` is annotated."""
    return {r["year"]: r for r in rows.values("year").annotate(**sums).order_by("year")}


def _paid() -> Coalesce:
    """A contract's payments, summed in a subquery (no GROUP BY over the contract's row)."""
    total = (Payment.objects.filter(contract=OuterRef("pk")).order_by()
             .values("contract").annotate(total=Sum("amount")).values("total"))
    return Coalesce(Subquery(total), Value(ZERO),
                    output_field=DecimalField(**MONEY))


# --- a company --------------------------------------------------------------------------

def company_profile(company: Company) -> Profile:
    """Everything public about a company in procurement: bids opened, awards, contracts,
    buyers, by year."""
    prices = (BidLot.objects.filter(bid__company=company, bid__status__in=OPENED)
              .select_related("bid__tender__buyer", "lot")
              .order_by("-bid__tender__published_at", "-pk"))
    awards = (Award.objects.filter(supplier=company).select_related("tender__buyer", "lot")
              .order_by("-decided_at", "-pk"))
    contracts = (Contract.objects.filter(supplier=company)
                 .select_related("tender__buyer", "award__lot").annotate(paid=_paid())
                 .order_by("-signed_at", "-pk"))
    buyers = (Contract.objects.filter(supplier=company).order_by()
              .values("tender__buyer__code", "tender__buyer__name_fr")
              .annotate(n=Count("pk"), total=Sum("value"))
              .order_by("-total", "tender__buyer__code"))
    return Profile(years=_company_years(company), tables={
        "bids": Table(prices, _bid_row), "awards": Table(awards, _award_row),
        "contracts": Table(contracts, _company_contract_row),
        "buyers": Table(buyers, lambda b: {
            "buyer": b["tender__buyer__name_fr"], "code": b["tender__buyer__code"],
            "contracts": b["n"], "value": _money(b["total"])})})


def _company_years(company: Company) -> list[dict]:
    bids = _by_year(BidLot.objects.filter(bid__company=company, bid__status__in=OPENED)
                    .annotate(year=_utc_year("bid__tender__published_at")),
                    tenders=Count("bid__tender", distinct=True), lots=Count("pk"))
    won = _by_year(Award.objects.filter(supplier=company, status=Award.Status.ACTIVE)
                   .annotate(year=_utc_year("decided_at")), won=Count("pk"), total=Sum("value"))
    signed = _by_year(Contract.objects.filter(supplier=company)
                      .annotate(year=_utc_year("signed_at")), total=Sum("value"))
    return [{"year": year,
             "tenders_bid": bids.get(year, {}).get("tenders", 0),
             "lots_bid": bids.get(year, {}).get("lots", 0),
             "lots_won": won.get(year, {}).get("won", 0),
             "awarded_value": _money(won.get(year, {}).get("total")),
             "contracted_value": _money(signed.get(year, {}).get("total"))}
            for year in sorted(bids.keys() | won.keys() | signed.keys())]


def _bid_row(p: BidLot) -> dict:
    tender = p.bid.tender
    return {"tender": tender.reference, "title": tender.title, "buyer": tender.buyer.code,
            "buyer_name": tender.buyer.name_fr, "lot": p.lot.number, "price": str(p.price),
            "status": {None: "pending", True: "valid", False: "disqualified"}[p.eligible],
            "rank": p.rank, "opened_at": p.bid.opened_at.isoformat() if p.bid.opened_at else ""}


def _award_row(a: Award) -> dict:
    return {"tender": a.tender.reference, "title": a.tender.title, "buyer": a.tender.buyer.code,
            "buyer_name": a.tender.buyer.name_fr, "lot": a.lot.number, "value": str(a.value),
            "status": a.status, "date": a.decided_at.date().isoformat()}


def _company_contract_row(c: Contract) -> dict:
    return {"contract": c.pk, "tender": c.tender.reference, "title": c.tender.title,
            "buyer": c.tender.buyer.code, "buyer_name": c.tender.buyer.name_fr,
            "lot": c.award.lot.number, "value": str(c.value), "paid": _money(c.paid),
            "status": c.status, "signed": c.signed_at.date().isoformat(),
            "end": c.end_date.isoformat()}


# --- a buyer ----------------------------------------------------------------------------

def buyer_profile(buyer: Administration) -> Profile:
    """A buyer's published tenders, contracts and suppliers (with each one's share of
    what the buyer contracted), by year."""
    tenders = (Tender.objects.filter(buyer=buyer, state__in=PUBLIC_STATES)
               .order_by("-published_at", "-pk"))
    contracts = (Contract.objects.filter(tender__buyer=buyer).select_related("supplier", "tender")
                 .order_by("-signed_at", "-pk"))
    total = contracts.order_by().aggregate(total=Sum("value"))["total"] or ZERO
    suppliers = (Contract.objects.filter(tender__buyer=buyer).order_by()
                 .values("supplier_id", "supplier__name", "supplier__matricule_fiscal")
                 .annotate(n=Count("pk"), value=Sum("value"))
                 .order_by("-value", "supplier_id"))
    return Profile(years=_buyer_years(buyer), tables={
        "suppliers": Table(suppliers, lambda s: {
            "supplier": s["supplier__name"], "matricule_fiscal": s["supplier__matricule_fiscal"],
            "contracts": s["n"], "value": _money(s["value"]),
            "share": round(float(s["value"] / total), 3) if total else 0.0}),
        "tenders": Table(tenders, _buyer_tender_row),
        "contracts": Table(contracts, _buyer_contract_row)})


def _buyer_years(buyer: Administration) -> list[dict]:
    published = _by_year(Tender.objects.filter(buyer=buyer, state__in=PUBLIC_STATES,
                                                published_at__isnull=False)
                         .annotate(year=_utc_year("published_at")),
                         n=Count("pk"), total=Sum("estimated_value"))
    signed = _by_year(Contract.objects.filter(tender__buyer=buyer)
                      .annotate(year=_utc_year("signed_at")), n=Count("pk"), total=Sum("value"))
    return [{"year": year, "tenders": published.get(year, {}).get("n", 0),
             "estimated_value": _money(published.get(year, {}).get("total")),
             "contracts": signed.get(year, {}).get("n", 0),
             "contracted_value": _money(signed.get(year, {}).get("total"))}
            for year in sorted(published.keys() | signed.keys())]


def _buyer_tender_row(t: Tender) -> dict:
    return {"tender": t.reference, "title": t.title, "procedure": t.procedure, "state": t.state,
            "estimated_value": str(t.estimated_value),
            "published_at": t.published_at.date().isoformat() if t.published_at else ""}


def _buyer_contract_row(c: Contract) -> dict:
    return {"tender": c.tender.reference, "title": c.tender.title, "supplier": c.supplier.name,
            "matricule_fiscal": c.supplier.matricule_fiscal, "value": str(c.value),
            "status": c.status, "signed": c.signed_at.date().isoformat()}
