"""Integrity indicators ("red flags") over sahab's own data.

The Open Contracting Partnership's 2024 red-flags guide and its reference implementation
(Cardinal) define the R-codes, their methods and their defaults; sahab computes them
itself, in Python over its database, so its figures compare with other countries'.
The S-codes are sahab's own, for what Tunisian data shows. Outlier fences use the
quartiles of Python's ``statistics.quantiles`` (inclusive method); every threshold can be
set in ``settings.RED_FLAGS`` (docs/red-flags.md).

A flag is a reason to look closer, never a verdict.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from sahab.procurement.models import (
    Award,
    AwardCriteria,
    Bid,
    BidLot,
    Contract,
    Procedure,
    State,
    Tender,
)
from sahab.procurement.selectors import OPENED

OPEN = {Procedure.OPEN, Procedure.SIMPLIFIED, Procedure.FRAMEWORK}
SELECTIVE = {Procedure.RESTRICTED, Procedure.MINI_COMPETITION}

DEFAULTS = {
    "R003": {"threshold_days": 15},
    "R024": {"threshold": None},  # None: the lower fence Q1 - 1.5 IQR
    "R025": {"percentile": 75, "threshold": None},
    "R038": {"threshold": None, "minimum_submitted_bids": 2,
             "minimum_contracting_processes": 2},
    "R048": {"threshold": None, "digits": 2},
    "R058": {"threshold": None},  # None: the upper fence Q3 + 1.5 IQR
    "S01": {"share_of_threshold": 0.9, "window_days": 365},
    "S02": {"minimum_awards": 3, "window_days": 365},
    "S03": {"share": 0.2},
    "S04": {"days": 90},
}

TITLES = {
    "R003": _("Short submission period"),
    "R018": _("Single bid"),
    "R024": _("Second-lowest bid very close to the winner"),
    "R025": _("Frequent bidder that almost never wins"),
    "R028": _("Identical bid prices"),
    "R030": _("Late bid won"),
    "R035": _("All bids but the winner's disqualified"),
    "R036": _("Lowest bid disqualified"),
    "R038": _("Unusually many disqualified bids"),
    "R044": _("Tenderers share an address or a contact"),
    "R048": _("Supplier across unusually many sectors"),
    "R058": _("Winning bid heavily discounted"),
    "S01": _("Purchases split under the simplified threshold"),
    "S02": _("Repeated non-competitive awards to the same company"),
    "S03": _("Contract value raised by amendments"),
    "S04": _("Supplier created shortly before the tender"),
}

EXPLANATIONS = {
    "R003": _("Bidders had less time than usual to prepare: connected firms, who know in "
              "advance, are favoured."),
    "R018": _("Only one company bid in an open or selective procedure: there was no real "
              "competition."),
    "R024": _("The runner-up priced almost exactly like the winner, much closer than usual: "
              "colluding firms sometimes fake competition this way."),
    "R025": _("This company bids very often but almost never wins: it may be submitting "
              "cover bids for partners."),
    "R028": _("Different companies offered exactly the same price: a sign that they may "
              "have agreed prices."),
    "R030": _("The winning bid arrived after the deadline."),
    "R035": _("Every bid but the winner's was disqualified: disqualifying others is a way "
              "to choose the winner in advance."),
    "R036": _("The cheapest bid was disqualified in a price-only tender."),
    "R038": _("This buyer or company has far more disqualified bids than the others."),
    "R044": _("Companies bidding against each other share an address, an e-mail or a phone "
              "number: they may not be independent."),
    "R048": _("This supplier wins contracts in unusually many unrelated sectors."),
    "R058": _("The winner priced far below the runner-up, much more than usual: the "
              "delivered quality deserves a check."),
    "S01": _("Several purchases of the same kind, each just under the threshold of the "
             "simplified procedure, add up to more than it: the purchase may have been split "
             "to avoid an open tender."),
    "S02": _("The same buyer gave the same company several contracts without competition."),
    "S03": _("Amendments raised the contract's value far above what was awarded."),
    "S04": _("The winning company was registered only a short time before the tender."),
}


@dataclass
class Flag:
    code: str
    level: str  # "tender", "buyer" or "company"
    subject: str  # tender reference, buyer code or company matricule fiscal
    value: float = 1.0
    detail: str = ""
    tenders: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return str(TITLES[self.code])

    @property
    def explanation(self) -> str:
        return str(EXPLANATIONS[self.code])


def config(code: str) -> dict:
    return {**DEFAULTS.get(code, {}), **getattr(settings, "RED_FLAGS", {}).get(code, {})}


def fences(values: list[float]) -> tuple[float, float] | None:
    """(Q1 - 1.5 IQR, Q3 + 1.5 IQR), or None with fewer than two values."""
    if len(values) < 2:
        return None
    q1, _q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    iqr = q3 - q1
    return q1 - 1.5 * iqr, q3 + 1.5 * iqr


# --- the data, gathered once ------------------------------------------------------------

@dataclass
class LotResult:
    tender: Tender
    lot_number: int
    rows: list[BidLot]  # opened bids for the lot
    winners: list[BidLot]  # active awards


def _lot_results() -> list[LotResult]:
    rows = (BidLot.objects.filter(bid__status__in=OPENED)
            .select_related("bid__company", "bid__tender__buyer", "lot"))
    by_lot: dict[tuple[int, int], list[BidLot]] = defaultdict(list)
    for row in rows:
        by_lot[(row.bid.tender_id, row.lot.number)].append(row)
    winners: dict[tuple[int, int], list[BidLot]] = defaultdict(list)
    for award in Award.objects.filter(status=Award.Status.ACTIVE).select_related(
            "bid_lot__bid__company", "lot"):
        winners[(award.tender_id, award.lot.number)].append(award.bid_lot)
    return [LotResult(rows_[0].bid.tender, lot, rows_, winners.get((tid, lot), []))
            for (tid, lot), rows_ in by_lot.items()]


def _valid(row: BidLot) -> bool:
    return row.bid.status == Bid.Status.OPENED and row.eligible is not False


# --- the indicators ---------------------------------------------------------------------

def r003() -> list[Flag]:
    minimum = dt.timedelta(days=config("R003")["threshold_days"])
    return [Flag("R003", "tender", t.reference,
                 detail=f"{(t.submission_deadline - t.published_at).days} days")
            for t in Tender.objects.filter(procedure__in=OPEN).exclude(published_at=None)
            if t.submission_deadline - t.published_at < minimum]


def r018() -> list[Flag]:
    flags = []
    for t in Tender.objects.filter(procedure__in=OPEN | SELECTIVE).exclude(opened_at=None):
        bids = t.bids.filter(status__in=OPENED).count()
        if bids == 1:
            flags.append(Flag("R018", "tender", t.reference, detail="1 bid"))
    return flags


def _price_only_differences(results: list[LotResult]) -> list[tuple[LotResult, float]]:
    out = []
    for r in results:
        if r.tender.award_criteria != AwardCriteria.LOWEST_PRICE or len(r.winners) != 1:
            continue
        valid = sorted((row for row in r.rows if _valid(row)), key=lambda row: row.price)
        if len(valid) < 2 or valid[0].pk != r.winners[0].pk:
            continue  # the winning bid must be the lowest valid bid
        winner, second = valid[0].price, valid[1].price
        out.append((r, float((second - winner) / winner)))
    return out


def r024_r058(results: list[LotResult]) -> list[Flag]:
    diffs = _price_only_differences(results)
    bounds = fences([d for _, d in diffs])
    lower = config("R024")["threshold"]
    upper = config("R058")["threshold"]
    if bounds:
        lower = bounds[0] if lower is None else lower
        upper = bounds[1] if upper is None else upper
    flags = []
    for r, d in diffs:
        detail = f"lot {r.lot_number}: {d:.1%}"
        if lower is not None and d <= lower:
            flags.append(Flag("R024", "tender", r.tender.reference, d, detail))
        if upper is not None and d >= upper:
            flags.append(Flag("R058", "tender", r.tender.reference, d, detail))
    return flags


def r025(results: list[LotResult]) -> list[Flag]:
    valid_bids: dict[str, int] = defaultdict(int)
    wins: dict[str, int] = defaultdict(int)
    names = {}
    for r in results:
        if len(r.winners) > 1:
            continue
        winner_ids = {w.pk for w in r.winners}
        for row in r.rows:
            if _valid(row):
                key = row.bid.company.matricule_fiscal
                names[key] = row.bid.company.name
                valid_bids[key] += 1
                wins[key] += row.pk in winner_ids
    if len(valid_bids) < 2:
        return []
    cfg = config("R025")
    counts = sorted(valid_bids.values())
    top = statistics.quantiles(counts, n=100, method="inclusive")[cfg["percentile"] - 1]
    ratios = {k: wins[k] / valid_bids[k] for k in valid_bids}
    bounds = fences(list(ratios.values()))
    lower = cfg["threshold"] if cfg["threshold"] is not None else (bounds[0] if bounds else None)
    return [Flag("R025", "company", k, ratios[k],
                 f"{names[k]}: {wins[k]} won of {valid_bids[k]} valid bids")
            for k in valid_bids if valid_bids[k] >= top and lower is not None
            and ratios[k] <= lower]


def r028(results: list[LotResult]) -> list[Flag]:
    flags = []
    for r in results:
        prices: dict[Decimal, set[str]] = defaultdict(set)
        for row in r.rows:
            prices[row.price].add(row.bid.company.name)
        for price, companies in prices.items():
            if len(companies) > 1:
                flags.append(Flag("R028", "tender", r.tender.reference, 1.0,
                                  f"lot {r.lot_number}: {', '.join(sorted(companies))} "
                                  f"at {price}"))
    return flags


def r030(results: list[LotResult]) -> list[Flag]:
    return [Flag("R030", "tender", r.tender.reference, 1.0, f"lot {r.lot_number}")
            for r in results for w in r.winners
            if w.bid.submitted_at > r.tender.submission_deadline]


def r035_r036(results: list[LotResult]) -> list[Flag]:
    flags = []
    for r in results:
        if len(r.rows) >= 2 and len(r.winners) == 1:
            others = [row for row in r.rows if row.pk != r.winners[0].pk]
            if others and all(not _valid(row) for row in others):
                flags.append(Flag("R035", "tender", r.tender.reference, 1.0,
                                  f"lot {r.lot_number}"))
        if r.tender.award_criteria == AwardCriteria.LOWEST_PRICE and r.rows:
            lowest = min(r.rows, key=lambda row: row.price)
            if not _valid(lowest):
                flags.append(Flag("R036", "tender", r.tender.reference, 1.0,
                                  f"lot {r.lot_number}: {lowest.bid.company.name}"))
    return flags


def r038(results: list[LotResult]) -> list[Flag]:
    cfg = config("R038")
    flags = []
    for level, key_of in (("buyer", lambda row: row.bid.tender.buyer.code),
                          ("company", lambda row: row.bid.company.matricule_fiscal)):
        submitted: dict[str, int] = defaultdict(int)
        disqualified: dict[str, int] = defaultdict(int)
        processes: dict[str, set[int]] = defaultdict(set)
        for r in results:
            for row in r.rows:
                key = key_of(row)
                submitted[key] += 1
                disqualified[key] += not _valid(row)
                processes[key].add(r.tender.pk)
        if level == "buyer":
            keys = [k for k in submitted
                    if len(processes[k]) >= cfg["minimum_contracting_processes"]]
        else:
            keys = [k for k in submitted if submitted[k] >= cfg["minimum_submitted_bids"]]
        ratios = {k: disqualified[k] / submitted[k] for k in keys}
        bounds = fences(list(ratios.values()))
        upper = cfg["threshold"] if cfg["threshold"] is not None else (
            bounds[1] if bounds else None)
        flags += [Flag("R038", level, k, ratios[k],
                       f"{disqualified[k]} of {submitted[k]} bids disqualified")
                  for k in keys if upper is not None and ratios[k] > 0 and ratios[k] >= upper]
    return flags


def _contacts(company) -> set[str]:
    keys = set()
    if company.address:
        keys.add(f"address:{company.address.strip().lower()}|{company.city.strip().lower()}")
    if company.email:
        keys.add(f"email:{company.email.strip().lower()}")
    if company.phone:
        keys.add(f"phone:{''.join(ch for ch in company.phone if ch.isdigit())}")
    return keys


def r044(results: list[LotResult]) -> list[Flag]:
    flags, seen = [], set()
    by_tender: dict[int, dict] = defaultdict(dict)
    for r in results:
        for row in r.rows:
            by_tender[r.tender.pk][row.bid.company.pk] = (r.tender, row.bid.company)
    for companies in by_tender.values():
        tender = next(iter(companies.values()))[0]
        owners: dict[str, set] = defaultdict(set)
        for _tender, company in companies.values():
            for key in _contacts(company):
                owners[key].add(company)
        for key, group in owners.items():
            if len(group) > 1:
                names = ", ".join(sorted(c.name for c in group))
                if (tender.reference, names) not in seen:
                    seen.add((tender.reference, names))
                    flags.append(Flag("R044", "tender", tender.reference, 1.0,
                                      f"{names} share their {key.split(':')[0]}"))
                for c in group:
                    if ("company", c.matricule_fiscal) not in seen:
                        seen.add(("company", c.matricule_fiscal))
                        flags.append(Flag("R044", "company", c.matricule_fiscal, 1.0, names))
    return flags


def r048() -> list[Flag]:
    digits = config("R048")["digits"]
    variety: dict[str, set[str]] = defaultdict(set)
    names = {}
    for award in Award.objects.filter(status=Award.Status.ACTIVE).select_related(
            "supplier", "lot").prefetch_related("lot__items"):
        codes = [i.cpv for i in award.lot.items.all()] or [award.lot.cpv]
        variety[award.supplier.matricule_fiscal].update(c[:digits] for c in codes)
        names[award.supplier.matricule_fiscal] = award.supplier.name
    counts = {k: len(v) for k, v in variety.items()}
    bounds = fences([float(v) for v in counts.values()])
    upper = config("R048")["threshold"]
    upper = upper if upper is not None else (bounds[1] if bounds else None)
    return [Flag("R048", "company", k, float(v), f"{names[k]}: {v} CPV divisions")
            for k, v in counts.items() if upper is not None and v > 1 and v >= upper]


def s01() -> list[Flag]:
    from sahab.procurement.services import SIMPLIFIED_THRESHOLD

    cfg = config("S01")
    floor = SIMPLIFIED_THRESHOLD * Decimal(str(cfg["share_of_threshold"]))
    window = dt.timedelta(days=cfg["window_days"])
    near = [t for t in Tender.objects.exclude(published_at=None).exclude(state=State.CANCELLED)
            .select_related("buyer").prefetch_related("lots")
            if floor <= t.estimated_value <= SIMPLIFIED_THRESHOLD]
    groups: dict[tuple[str, str], list[Tender]] = defaultdict(list)
    for t in near:
        groups[(t.buyer.code, t.lots.all()[0].cpv[:3])].append(t)
    flags = []
    for (buyer, division), tenders in groups.items():
        tenders.sort(key=lambda t: t.published_at)
        for i, first in enumerate(tenders):
            close = [t for t in tenders[i:] if t.published_at - first.published_at <= window]
            total = sum(t.estimated_value for t in close)
            if len(close) >= 2 and total > SIMPLIFIED_THRESHOLD:
                flags.append(Flag("S01", "buyer", buyer, float(total),
                                  f"{len(close)} purchases (CPV {division}…) totalling "
                                  f"{total:,} TND", [t.reference for t in close]))
                break
    return flags


def s02() -> list[Flag]:
    cfg = config("S02")
    window = dt.timedelta(days=cfg["window_days"])
    non_competitive: dict[tuple[str, str], list[Award]] = defaultdict(list)
    for award in Award.objects.filter(status=Award.Status.ACTIVE).select_related(
            "tender__buyer", "supplier"):
        tender = award.tender
        single = tender.bids.filter(status=Bid.Status.OPENED).count() == 1
        if tender.procedure == Procedure.NEGOTIATED or single:
            non_competitive[(tender.buyer.code, award.supplier.matricule_fiscal)].append(award)
    flags = []
    for (buyer, supplier), awards in non_competitive.items():
        awards.sort(key=lambda a: a.decided_at)
        recent = [a for a in awards if awards[-1].decided_at - a.decided_at <= window]
        if len(recent) >= cfg["minimum_awards"]:
            flags.append(Flag("S02", "company", supplier, float(len(recent)),
                              f"{len(recent)} non-competitive awards from {buyer}",
                              sorted({a.tender.reference for a in recent})))
    return flags


def s03() -> list[Flag]:
    share = Decimal(str(config("S03")["share"]))
    return [Flag("S03", "tender", c.tender.reference,
                 float(c.value / c.award.value - 1),
                 f"contract {c.pk}: {c.award.value:,} → {c.value:,} TND")
            for c in Contract.objects.select_related("award", "tender")
            if c.value > c.award.value * (1 + share)]


def s04() -> list[Flag]:
    days = dt.timedelta(days=config("S04")["days"])
    pairs = {(a.tender, a.supplier) for a in Award.objects.filter(
        status=Award.Status.ACTIVE).select_related("tender", "supplier")}
    return [Flag("S04", "tender", t.reference, float((t.published_at - c.created_at).days),
                 f"{c.name} registered {c.created_at:%Y-%m-%d}")
            for t, c in sorted(pairs, key=lambda p: (p[0].reference, p[1].name))
            if t.published_at and t.published_at - c.created_at < days]


def compute() -> list[Flag]:
    """Every flag over the current data."""
    results = _lot_results()
    flags: list[Flag] = []
    flags += r003() + r018() + r024_r058(results) + r025(results) + r028(results)
    flags += r030(results) + r035_r036(results) + r038(results) + r044(results) + r048()
    flags += s01() + s02() + s03() + s04()
    return flags


def current(max_age: int = 300) -> list[Flag]:
    """The flags, recomputed at most every ``max_age`` seconds per process (pages and API
    read this; the computation reads every bid and award)."""
    from django.core.cache import cache

    flags = cache.get("sahab:redflags")
    if flags is None:
        flags = compute()
        cache.set("sahab:redflags", flags, max_age)
    return flags


def for_tender(reference: str, flags: Iterable[Flag] | None = None) -> list[Flag]:
    return [f for f in (current() if flags is None else flags)
            if (f.level == "tender" and f.subject == reference) or reference in f.tenders]


def as_dict(flag: Flag) -> dict:
    return {"code": flag.code, "title": flag.title, "explanation": flag.explanation,
            "level": flag.level, "subject": flag.subject, "value": flag.value,
            "detail": flag.detail, "tenders": flag.tenders}
