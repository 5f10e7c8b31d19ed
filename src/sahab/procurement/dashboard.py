"""The portal's dashboards: spending, competition, non-competitive share, flags over time.
Each is a table (downloadable as CSV or JSON) drawn as a bar chart too."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

from sahab.procurement import redflags
from sahab.procurement.models import Bid, Contract, Procedure, Tender


def _ministry(admin, by_code: dict):
    """The top of an administration's tree (its ministry, agency or municipality)."""
    top = admin.path.strip("/").split("/")[0]
    return by_code.get(top, admin)


def spending() -> list[dict]:
    from sahab.directory.models import Administration

    by_code = {a.code: a for a in Administration.objects.all()}
    totals: dict[tuple[object, int], Decimal] = defaultdict(Decimal)
    for c in Contract.objects.select_related("tender__buyer"):
        totals[(_ministry(c.tender.buyer, by_code), c.signed_at.year)] += c.value
    return [{"ministry": m.name_fr, "ministry_ar": m.name_ar, "code": m.code, "year": y,
             "contracted_value": str(v)}
            for (m, y), v in sorted(totals.items(), key=lambda kv: (-kv[0][1], -kv[1]))]


def _opened_counts() -> dict[int, int]:
    counts: Counter = Counter()
    for tender_id in Bid.objects.filter(status=Bid.Status.OPENED).values_list("tender_id",
                                                                             flat=True):
        counts[tender_id] += 1
    return counts


def competition() -> list[dict]:
    counts = _opened_counts()
    per_year: dict[int, list[int]] = defaultdict(list)
    for t in Tender.objects.exclude(opened_at=None):
        per_year[t.published_at.year].append(counts.get(t.pk, 0))
    rows = []
    for year, bids in sorted(per_year.items()):
        rows.append({"year": year, "tenders_opened": len(bids),
                     "average_bids": round(sum(bids) / len(bids), 2),
                     "single_bid": sum(1 for b in bids if b == 1),
                     "two_bids": sum(1 for b in bids if b == 2),
                     "three_bids": sum(1 for b in bids if b == 3),
                     "four_or_more": sum(1 for b in bids if b >= 4),
                     "no_bid": sum(1 for b in bids if b == 0)})
    return rows


def non_competitive() -> list[dict]:
    counts = _opened_counts()
    per_year: dict[int, dict] = defaultdict(lambda: {"tenders": 0, "non_competitive": 0,
                                                     "value": Decimal(0),
                                                     "non_competitive_value": Decimal(0)})
    for t in Tender.objects.exclude(published_at=None).exclude(state="cancelled"):
        row = per_year[t.published_at.year]
        row["tenders"] += 1
        row["value"] += t.estimated_value
        if t.procedure == Procedure.NEGOTIATED or (t.opened_at and counts.get(t.pk) == 1):
            row["non_competitive"] += 1
            row["non_competitive_value"] += t.estimated_value
    return [{"year": y, "tenders": r["tenders"], "non_competitive": r["non_competitive"],
             "share_of_tenders": round(r["non_competitive"] / r["tenders"], 3),
             "share_of_value": round(float(r["non_competitive_value"] / r["value"]), 3)
             if r["value"] else 0.0}
            for y, r in sorted(per_year.items())]


def flags_over_time() -> list[dict]:
    published = dict(Tender.objects.exclude(published_at=None)
                     .values_list("reference", "published_at"))
    months: Counter = Counter()
    for f in redflags.current():
        refs = [f.subject] if f.level == "tender" else f.tenders
        for ref in refs:
            if ref in published:
                months[published[ref].strftime("%Y-%m")] += 1
    return [{"month": m, "flags": n} for m, n in sorted(months.items())]


TABLES = {"spending": spending, "competition": competition,
          "non_competitive": non_competitive, "flags": flags_over_time}
