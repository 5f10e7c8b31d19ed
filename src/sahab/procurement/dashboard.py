"""The portal's dashboards: spending, competition, non-competitive share, flags over time.
Each is a table (downloadable as CSV or JSON) drawn as a bar chart too."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from decimal import Decimal

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, ExtractYear

from sahab.procurement import redflags
from sahab.procurement.models import Bid, Contract, Procedure, Tender

log = logging.getLogger(__name__)

MILLIME = Decimal("0.001")  # sums in dinars and millimes, whatever the database

# Every table is aggregated by the database: a country's millions of tenders and contracts
# never cross into Python, only one row per (buyer or bid count, year). Years are UTC's.


def _ministry(admin, by_code: dict):
    """The top of an administration's tree (its ministry, agency or municipality)."""
    top = admin.path.strip("/").split("/")[0]
    return by_code.get(top, admin)


def spending() -> list[dict]:
    from sahab.directory.models import Administration

    by_code = {a.code: a for a in Administration.objects.all()}
    by_id = {a.pk: a for a in by_code.values()}
    totals: dict[tuple[object, int], Decimal] = defaultdict(Decimal)
    for buyer, year, value in (Contract.objects
                               .values_list("tender__buyer", ExtractYear("signed_at",
                                                                         tzinfo=dt.UTC))
                               .annotate(value=Sum("value")).order_by()):
        totals[(_ministry(by_id[buyer], by_code), year)] += value
    return [{"ministry": m.name_fr, "ministry_ar": m.name_ar, "code": m.code, "year": y,
             "contracted_value": str(v.quantize(MILLIME))}
            for (m, y), v in sorted(totals.items(), key=lambda kv: (-kv[0][1], -kv[1]))]


def _with_opened_bids():
    """Tenders with ``opened_bids``: how many of their bids were opened; ``year`` published."""
    opened = (Bid.objects.filter(tender=OuterRef("pk"), status=Bid.Status.OPENED)
              .order_by().values("tender").annotate(n=Count("pk")).values("n"))
    return Tender.objects.annotate(
        opened_bids=Coalesce(Subquery(opened, output_field=IntegerField()), Value(0)),
        year=ExtractYear("published_at", tzinfo=dt.UTC))


def competition() -> list[dict]:
    per_year: dict[int, Counter] = defaultdict(Counter)
    for year, bids, tenders in (_with_opened_bids().exclude(opened_at=None)
                                .values_list("year", "opened_bids").annotate(n=Count("pk"))
                                .order_by()):
        per_year[year][bids] += tenders
    rows = []
    for year, counts in sorted(per_year.items()):
        opened = sum(counts.values())
        rows.append({"year": year, "tenders_opened": opened,
                     "average_bids": round(sum(b * n for b, n in counts.items()) / opened, 2),
                     "single_bid": counts[1], "two_bids": counts[2], "three_bids": counts[3],
                     "four_or_more": sum(n for b, n in counts.items() if b >= 4),
                     "no_bid": counts[0]})
    return rows


def non_competitive() -> list[dict]:
    single = Q(procedure=Procedure.NEGOTIATED) | Q(opened_at__isnull=False, opened_bids=1)
    rows = (_with_opened_bids().exclude(published_at=None).exclude(state="cancelled")
            .values("year").annotate(tenders=Count("pk"), value=Sum("estimated_value"),
                                     non_competitive=Count("pk", filter=single),
                                     non_competitive_value=Sum("estimated_value",
                                                               filter=single))
            .order_by("year"))
    return [{"year": r["year"], "tenders": r["tenders"],
             "non_competitive": r["non_competitive"],
             "share_of_tenders": round(r["non_competitive"] / r["tenders"], 3),
             "share_of_value": round(float((r["non_competitive_value"] or Decimal(0))
                                           / r["value"]), 3) if r["value"] else 0.0}
            for r in rows]


def flags_over_time() -> list[dict]:
    refs: list[str] = []
    for f in redflags.current():
        refs.extend([f.subject] if f.level == "tender" else f.tenders)
    wanted, published = sorted(set(refs)), {}
    for i in range(0, len(wanted), 500):  # only the flagged tenders' dates
        published.update(Tender.objects.filter(reference__in=wanted[i:i + 500])
                         .exclude(published_at=None).values_list("reference", "published_at"))
    months = Counter(published[ref].astimezone(dt.UTC).strftime("%Y-%m")
                     for ref in refs if ref in published)
    return [{"month": m, "flags": months[m]} for m in _month_range(min(months, default=""),
                                                                   max(months, default=""))]


def _month_range(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` (``YYYY-MM``): a series over time shows its
    quiet months as zero rather than skipping them, or the bars would hide the gaps."""
    if not first:
        return []
    year, month = map(int, first.split("-"))
    months = []
    while (label := f"{year:04d}-{month:02d}") <= last:
        months.append(label)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


TABLES = {"spending": spending, "competition": competition,
          "non_competitive": non_competitive, "flags": flags_over_time}


def home_figures() -> dict:
    """The portal home's procurement figures: tenders open and published, contracts, and
    the eight buyers that contracted the most (seconds over a country's contracts)."""
    from sahab.procurement.models import State

    by_state = dict(Tender.objects.exclude(state=State.DRAFT).values_list("state")
                    .annotate(n=Count("id")).values_list("state", "n").order_by())
    spend = list(Contract.objects.values("tender__buyer__code", "tender__buyer__name_fr",
                                         "tender__buyer__name_ar")
                 .annotate(total=Sum("value")).order_by("-total")[:8])
    top = max((row["total"] for row in spend), default=1) or 1
    for row in spend:
        row["percent"] = round(100 * row["total"] / top)
        row["total"] = str(row["total"].quantize(MILLIME))
    return {"open_tenders": by_state.get(State.ENQUIRIES, 0) + by_state.get(State.TENDERING, 0),
            "published_tenders": sum(by_state.values()),
            "contracts": Contract.objects.count(), "spend": spend}


# what the worker aggregates and stores: the dashboards' tables and the home's figures
STORED = {**TABLES, "home": home_figures}


def refresh() -> dict[str, float]:
    """Aggregate every table and store it (the worker's job, every
    ``PORTAL_FIGURES_SECONDS``); returns how long each took, in seconds."""
    import time

    from django.core.cache import cache
    from django.utils import timezone

    from sahab.procurement.models import DashboardTable

    took = {}
    for name, aggregate in STORED.items():
        started = time.perf_counter()
        try:
            rows = aggregate()
        except Exception:  # one failing table must not stop the others being refreshed
            log.exception("dashboard table %s could not be aggregated", name)
            continue
        took[name] = round(time.perf_counter() - started, 3)
        DashboardTable.objects.update_or_create(
            name=name, defaults={"rows": rows, "computed_at": timezone.now(),
                                 "seconds": took[name]})
        cache.delete(_cache_key(name))
    return took


def _cache_key(name: str) -> str:
    return f"sahab:dashboard:{name}"


def _stored(name: str) -> tuple[list[dict] | dict, dt.datetime] | None:
    """The rows the worker last stored for ``name``, whatever their age, with the time it
    computed them; None before its first refresh."""
    from sahab.procurement.models import DashboardTable

    return DashboardTable.objects.filter(name=name).values_list("rows", "computed_at").first()


def table(name: str) -> list[dict] | dict:
    """One of the ``STORED`` tables: as the worker last stored it (``refresh``), however
    old, or aggregated here before the worker's first refresh (a page never writes it:
    public pages may be read from a standby). A worker that stopped leaves the figures
    of its last refresh, shown with their time (``freshness``), rather than each visitor
    waiting for an aggregation over a country's tenders (seconds at that size). Each
    process keeps it ``PORTAL_FIGURES_SECONDS``: the figures of past years do not change
    and the current year's may be a minute behind. The rows hold both languages' names,
    so one copy serves every language."""
    return table_computed(name)[0]


def table_computed(name: str) -> tuple[list[dict] | dict, dt.datetime | None]:
    """``table(name)`` with the time the worker computed those very rows (None when they
    were aggregated for this request): kept together, so that a download's
    ``Last-Modified`` and a page's "computed on" are the time of the rows shown."""
    import copy

    from django.conf import settings

    if settings.PORTAL_FIGURES_SECONDS <= 0:  # no worker stores them: always aggregated
        return STORED[name](), None
    rows, at = _kept(name)
    return copy.deepcopy(rows), at  # pages add display fields to the rows they get


def _kept(name: str, *, aggregate: bool = True
          ) -> tuple[list[dict] | dict, dt.datetime | None] | None:
    """The rows this process keeps for ``name`` with their time, read from what the
    worker stored when it keeps none; aggregated here if the worker never stored them
    (None instead, without ``aggregate``)."""
    from django.conf import settings
    from django.core.cache import cache

    kept = cache.get(_cache_key(name))
    if kept is None:
        kept = _stored(name)
        if kept is None:
            if not aggregate:
                return None
            kept = (STORED[name](), None)
        cache.set(_cache_key(name), kept, settings.PORTAL_FIGURES_SECONDS)
    return kept


def freshness(names) -> dict:
    """When the oldest stored table of ``names`` was computed (``at``; None while none
    was ever stored, so pages aggregate them) and whether it is ``stale``: older than ten
    refreshes, so the worker that refreshes it is stopped or far behind. The time kept
    with each table's rows: a page that showed them gives their time, without a query."""
    from django.conf import settings
    from django.utils import timezone

    every = settings.PORTAL_FIGURES_SECONDS
    if every <= 0:  # aggregated in each request (``table``)
        return {"at": None, "stale": False, "every": every}
    # a table never stored is aggregated in the request: the others give the time
    times = [kept[1] for name in names
             if (kept := _kept(name, aggregate=False)) and kept[1] is not None]
    at = min(times, default=None)
    stale = at is not None and timezone.now() - at > dt.timedelta(seconds=10 * every)
    return {"at": at, "stale": stale, "every": every}
