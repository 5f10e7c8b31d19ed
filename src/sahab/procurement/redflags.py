"""Integrity indicators ("red flags"), computed from OCDS compiled releases alone.

The R-codes are those of the Open Contracting Partnership's 2024 red-flags guide, with
the methods of its reference implementation, Cardinal (open-contracting/cardinal-rs):
the same exclusions, guards, denominators, minimums and scopes, quartiles computed as
statrs computes them (Hyndman and Fan's method 8), the same defaults, every one
overridable in ``settings.RED_FLAGS``. The S-codes are sahab's own.

sahab's pages compute them from its own published OCDS records, and
``sahab redflags --from-ocds FILE`` from a downloaded file: an outside monitor gets the
same flags, flag by flag (docs/red-flags.md).

A flag is a reason to look closer, never a verdict.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections import defaultdict
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext_lazy as _

OCID, BUYER, PROCURING_ENTITY, TENDERER = "OCID", "Buyer", "ProcuringEntity", "Tenderer"
LEVEL = {OCID: "tender", BUYER: "buyer", PROCURING_ENTITY: "buyer", TENDERER: "company"}


def _legal_minimums() -> dict[str, int]:
    """R003 per procedure: the legal minimum days, keyed as OCDS publishes the procedure
    (``tender.procurementMethodDetails``, in French)."""
    from django.utils import translation

    from sahab.procurement.models import Procedure

    with translation.override("fr"):
        return {str(Procedure(code).label): days
                for code, days in settings.PROCUREMENT_MIN_TENDERING_DAYS.items()}


def defaults() -> dict:
    from sahab.procurement.services import SIMPLIFIED_THRESHOLD

    return {
        # Cardinal's global settings: the main currency (None: the first one observed),
        # procedures excluded from every R-code, and where prices compare.
        "currency": None,
        "exclusions": {"procurement_method_details": []},
        "price_comparison_procurement_methods": [],
        "no_price_comparison_procurement_methods": [],
        "R003": {"threshold": 15, "procurement_methods": [],
                 "procurement_method_details": _legal_minimums()},
        "R018": {"procurement_methods": ["open", "selective"]},
        "R024": {"threshold": None},  # None: the lower fence Q1 - 1.5 IQR
        "R025": {"percentile": 75, "threshold": None},
        "R028": {},
        "R030": {},
        "R035": {"threshold": 1},
        "R036": {},
        "R038": {"threshold": None, "minimum_submitted_bids": 2,
                 "minimum_contracting_processes": 2},
        "R044": {},
        "R048": {"digits": 2, "threshold": None, "minimum_contracting_processes": 20},
        "R058": {"threshold": None},  # None: the upper fence Q3 + 1.5 IQR
        "S01": {"threshold": float(SIMPLIFIED_THRESHOLD), "share_of_threshold": 0.9,
                "window_days": 365},
        "S02": {"minimum_awards": 3, "window_days": 365},
        "S03": {"share": 0.2},
        "S05": {"share": 0.5, "minimum_awards": 5},
        "S06": {"gap": 0.01},
        "S07": {"minimum_processes": 4},
        "S08": {"minimum_processes": 3},
        "S09": {},
        "S10": {"days": 60},
        "S11": {"days": 120},
    }


def config() -> dict:
    """The defaults, overridden by ``settings.RED_FLAGS`` (a section at a time)."""
    merged = defaults()
    for key, value in getattr(settings, "RED_FLAGS", {}).items():
        merged[key] = {**merged[key], **value} if isinstance(merged.get(key), dict) else value
    return merged


TITLES = {
    "R003": _("Short submission period"),
    "R018": _("Single bid"),
    "R024": _("Price close to the winning bid"),
    "R025": _("Frequent bidder that almost never wins"),
    "R028": _("Identical bid prices"),
    "R030": _("Late bid won"),
    "R035": _("All bids but the winner's disqualified"),
    "R036": _("Lowest bid disqualified"),
    "R038": _("Unusually many disqualified bids"),
    "R044": _("Tenderers share an address or a contact"),
    "R048": _("Supplier across unusually many sectors"),
    "R058": _("Heavily discounted winning bid"),
    "S01": _("Purchases split under the simplified threshold"),
    "S02": _("Repeated non-competitive awards to the same company"),
    "S03": _("Contract value raised by amendments"),
    "S05": _("Buyer's spending concentrated on one supplier"),
    "S06": _("Winning bid very close to the estimate"),
    "S07": _("Companies that keep bidding together"),
    "S08": _("Companies that take turns winning"),
    "S09": _("Cancelled after the bids were opened"),
    "S10": _("Long delay between award and contract"),
    "S11": _("Long delay between contract and payment"),
}

WHY = {
    "R003": _("Connected firms, told in advance, are favoured when bidders have little "
              "time."),
    "R018": _("A single bid in a competitive procedure can mean that competition was "
              "suppressed."),
    "R024": _("Colluding firms sometimes fake competition with a bid priced just above "
              "their partner's."),
    "R025": _("A company that bids often but almost never wins may be submitting cover "
              "bids for partners."),
    "R028": _("Identical prices from different companies suggest agreed or leaked prices."),
    "R030": _("A buyer can favour a company by accepting its bid after the deadline."),
    "R035": _("Disqualifying every other bid is a way to choose the winner in advance."),
    "R036": _("Disqualifying cheaper bids is a way to choose the winner in advance."),
    "R038": _("A buyer can favour a company by disqualifying others; a company can fake "
              "competition with bids meant to fail."),
    "R044": _("Companies that share an address or a contact may not be independent."),
    "R048": _("A supplier in many unrelated sectors may be a front or a rent-seeker."),
    "R058": _("A winner far below everyone else may deliver less than was asked."),
    "S01": _("A purchase may have been split to avoid an open tender."),
    "S02": _("The same buyer keeps giving the same company contracts without "
             "competition."),
    "S03": _("A contract grown far beyond its award escapes the competition that set its "
             "price."),
    "S05": _("A buyer that gives most of its spending to one supplier may depend on it or "
             "favour it."),
    "S06": _("A winning price that matches the secret estimate may mean the estimate "
             "leaked."),
    "S07": _("Firms that always meet in the same tenders may be sharing the market."),
    "S08": _("Firms that take turns winning may be rotating the market between them."),
    "S09": _("Cancelling once the prices are known lets a buyer restart with a favoured "
             "firm."),
    "S10": _("Long delays after the award can hide negotiations that the award did not "
             "allow."),
    "S11": _("Long payment delays raise prices and can be used to pressure suppliers."),
}

EXPLAIN = {
    "R003": _("The submission period lasted %(days)s days; the minimum for this procedure "
              "is %(minimum)s days."),
    "R018": _("Only %(tenderers)s company bid in this competitive procedure."),
    "R024": _("The second-lowest valid bid (%(second)s) is only %(difference)s above the "
              "winning bid (%(winner)s); at or below %(fence)s is unusually close."),
    "R025": _("%(name)s won %(wins)s of its %(bids)s valid bids (%(ratio)s); a company with "
              "at least %(top)s bids winning at most %(fence)s is unusual."),
    "R028": _("Different companies offered the same price: %(price)s."),
    "R030": _("The winning bid was received on %(received)s, after the deadline of "
              "%(deadline)s."),
    "R035": _("%(disqualified)s other bidders were disqualified; only the winner's bid was "
              "valid."),
    "R036": _("The lowest bid (%(price)s) was disqualified while the contract was awarded."),
    "R038": _("%(disqualified)s of %(submitted)s bids disqualified (%(ratio)s); %(fence)s or "
              "more is unusually many."),
    "R044": _("Companies bidding against each other share an address or a contact point."),
    "R048": _("%(name)s won items in %(divisions)s CPV divisions; %(fence)s or more is "
              "unusually many."),
    "R058": _("The winning bid (%(winner)s) is %(difference)s below the second-lowest valid "
              "bid (%(second)s); %(fence)s or more is unusually far."),
    "S01": _("%(count)s purchases of the same kind (CPV %(cpv)s), each just under the "
             "simplified threshold of %(threshold)s, add up to %(total)s within %(days)s "
             "days."),
    "S02": _("%(count)s awards without competition from the same buyer to %(name)s within "
             "%(days)s days."),
    "S03": _("Amendments raised the contract from %(awarded)s to %(current)s "
             "(%(increase)s more)."),
    "S05": _("%(share)s of this buyer's awarded value (%(value)s of %(total)s) went to "
             "%(name)s."),
    "S06": _("The winning bid (%(price)s) is within %(gap)s of the estimate (%(estimate)s)."),
    "S07": _("%(names)s bid in the same %(count)s processes."),
    "S08": _("%(names)s bid together in %(count)s processes and each won some of them: "
             "%(wins)s."),
    "S09": _("The process was cancelled after %(bids)s bids had been opened."),
    "S10": _("The contract was signed %(days)s days after the award (more than %(limit)s)."),
    "S11": _("The first payment came %(days)s days after the signature (more than "
             "%(limit)s)."),
}

# Unicode isolates: a number, a price or a Latin name keeps its own direction inside an
# Arabic sentence instead of being scrambled by the surrounding right-to-left text.
FSI, PDI = "\u2068", "\u2069"


@dataclass
class Flag:
    code: str
    group: str  # OCID, Buyer, ProcuringEntity or Tenderer (Cardinal's groups)
    key: str  # the ocid, or the organization's OCDS party id
    value: float = 1.0  # Cardinal's output for this indicator
    params: dict = field(default_factory=dict)  # the numbers the explanation quotes
    ocids: list[str] = field(default_factory=list)  # the processes concerned
    name: str = ""  # the organization's name, or the process's title
    reference: str = ""  # the tender reference, or the organization's identifier
    references: list[str] = field(default_factory=list)  # tender references concerned

    @property
    def level(self) -> str:
        return LEVEL[self.group]

    @property
    def subject(self) -> str:
        return self.reference or self.key

    @property
    def tenders(self) -> list[str]:
        return self.references

    @property
    def title(self) -> str:
        return str(TITLES[self.code])

    @property
    def why(self) -> str:
        return str(WHY[self.code])

    @property
    def explanation(self) -> str:
        """The flag in the reader's language, with its numbers."""
        text = str(EXPLAIN[self.code])
        values = _Isolated({k: f"{FSI}{_format(v)}{PDI}" for k, v in self.params.items()})
        return text % values if "%(" in text else text

    @property
    def detail(self) -> str:
        return self.explanation


class _Isolated(dict):
    def __missing__(self, key):
        return "…"


class Money(float):
    """An amount in dinars, shown as such."""


class Percent(float):
    """A ratio, shown as a percentage."""


class Day(str):
    """A date, shown as such."""


def _format(value) -> str:
    from django.utils import formats

    if isinstance(value, Money):
        return f"{formats.number_format(value, 3, use_l10n=True, force_grouping=True)} TND"
    if isinstance(value, Percent):
        return f"{formats.number_format(100 * value, 1, use_l10n=True)} %"
    if isinstance(value, float):
        return formats.number_format(value, 2, use_l10n=True)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


# --- statistics, as statrs computes them ----------------------------------------------

def quantile(values: Iterable[float], tau: float) -> float:
    """statrs' ``Data::quantile`` (Hyndman and Fan's method 8); NaN without data."""
    data = sorted(values)
    n = len(data)
    if not 0.0 <= tau <= 1.0 or n == 0:
        return math.nan
    h = (n + 1 / 3) * tau + 1 / 3
    hf = int(h)
    if hf <= 0 or tau == 0.0:
        return data[0]
    if hf >= n or math.isclose(tau, 1.0):
        return data[-1]
    a, b = data[hf - 1], data[hf]
    return a + (h - hf) * (b - a)


def quartiles(values: Iterable[float]) -> tuple[float, float]:
    values = list(values)
    return quantile(values, 0.25), quantile(values, 0.75)


def lower_fence(q1: float, q3: float) -> float:
    return q1 - 1.5 * (q3 - q1)


def upper_fence(q1: float, q3: float) -> float:
    return q3 + 1.5 * (q3 - q1)


# --- reading compiled releases -----------------------------------------------------------

def _get(obj, *path, default=None):
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return obj


def _str(value) -> str | None:
    return value if isinstance(value, str) else None


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _complete_awards_and_bids(release: dict):
    """Cardinal's rule: bids and active awards, only if every award is final."""
    awards, details = release.get("awards"), _get(release, "bids", "details")
    if not isinstance(awards, list) or not isinstance(details, list):
        return None
    complete = []
    for award in awards:
        status = _str(_get(award, "status"))
        if status is None:
            continue
        if status == "active":
            complete.append(award)
        elif status not in ("cancelled", "unsuccessful"):
            return None  # pending
    return complete, details


def _submitted_bids(release: dict) -> list[dict]:
    """Pending, valid and disqualified bids (not invited or withdrawn)."""
    details = _get(release, "bids", "details")
    if not isinstance(details, list):
        return []
    return [b for b in details if isinstance(b, dict) and _str(b.get("status")) is not None
            and b["status"] not in ("invited", "withdrawn")]


def _ids(objects) -> list[str]:
    return [o["id"] for o in objects if isinstance(o, dict) and _str(o.get("id"))] \
        if isinstance(objects, list) else []


def _pmd(release: dict) -> str | None:
    return _str(_get(release, "tender", "procurementMethodDetails"))


def _matches_details(release: dict, include: list[str], exclude: list[str]) -> bool:
    details = _pmd(release)
    if details is None:
        return not include
    return details not in exclude if not include else details in include


def _parse(text) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class _Run:
    """One computation: the flags, and what the organization flags need to name things.

    The releases go by once (``see``), each handed to every indicator at once: the run
    keeps what the indicators keep (a few numbers and ids per process), never the
    releases, so that a country's processes fit in the worker's memory."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.exclude = cfg["exclusions"].get("procurement_method_details", [])
        self.flags: dict[tuple[str, str, str], Flag] = {}
        self.currency = cfg.get("currency")
        self.names: dict[str, str] = {}
        self.tax_ids: dict[str, str] = {}
        self.references: dict[str, str] = {}
        self.titles: dict[str, str] = {}

    def see(self, r: dict) -> bool:
        """Keep the names ``r`` gives; whether the indicators consider it (Cardinal's
        global rule: cancelled processes and excluded procedures are skipped)."""
        ocid = _str(r.get("ocid"))
        if ocid:
            self.references[ocid] = _str(_get(r, "tender", "id")) or ""
            self.titles[ocid] = _str(_get(r, "tender", "title")) or ""
        for party in r.get("parties") or []:
            if isinstance(party, dict) and _str(party.get("id")):
                self.names[party["id"]] = _str(party.get("name")) or party["id"]
                for other in party.get("additionalIdentifiers") or []:
                    if _get(other, "scheme") == "TN-MF" and _str(_get(other, "id")):
                        self.tax_ids[party["id"]] = other["id"]
        return bool(ocid) and _get(r, "tender", "status") != "cancelled" \
            and _matches_details(r, [], self.exclude)

    def flag(self, code: str, group: str, key: str, value: float, ocid: str | None = None,
             /, **params) -> Flag:
        flag = self.flags.get((code, group, key))
        if flag is None:
            flag = Flag(code, group, key, value, params, [key] if group == OCID else [])
            self.flags[(code, group, key)] = flag
        else:
            flag.value = value
        if ocid and ocid not in flag.ocids:
            flag.ocids.append(ocid)
        return flag

    def currency_ok(self, currency: str) -> bool:
        """Whether an amount in ``currency`` is compared: the setting's currency, or the
        first one a price comparison reads, in the order of the processes."""
        if self.currency is None:
            self.currency = currency
        return currency == self.currency

    def result(self) -> list[Flag]:
        """The flags, named after every release was seen (the last name given wins)."""
        for flag in self.flags.values():
            if flag.group == OCID:
                flag.name = self.titles.get(flag.key, "")
                flag.reference = self.references.get(flag.key, "")
            else:
                flag.name = self.names.get(flag.key, flag.key)
                flag.reference = (self.tax_ids.get(flag.key) or
                                  flag.key.removeprefix("TN-SAHAB-")
                                  if flag.group != TENDERER else
                                  self.tax_ids.get(flag.key, flag.key))
            flag.references = sorted({self.references[o] for o in flag.ocids
                                      if self.references.get(o)})
        return sorted(self.flags.values(), key=lambda f: (f.code, f.group, f.key))


# --- the R-codes (Cardinal) -----------------------------------------------------------

def _r003(run: _Run) -> Indicator:
    cfg = run.cfg["R003"]
    methods, per_details = cfg["procurement_methods"], cfg["procurement_method_details"]
    while (r := (yield)) is not None:
        tender = r.get("tender")
        if not isinstance(tender, dict):
            continue
        if methods and tender.get("procurementMethod") not in methods:
            continue
        start = _parse(_get(tender, "tenderPeriod", "startDate"))
        end = _parse(_get(tender, "tenderPeriod", "endDate"))
        if start is None or end is None:
            continue
        seconds = (end - start).total_seconds()
        days = int(seconds / 86400)  # whole days, truncated toward zero
        details = _str(tender.get("procurementMethodDetails"))
        threshold = per_details.get(details, cfg["threshold"]) if details else cfg["threshold"]
        if days < threshold:
            run.flag("R003", OCID, r["ocid"], 1.0, days=days, minimum=threshold)


def _r018(run: _Run) -> Indicator:
    methods = run.cfg["R018"]["procurement_methods"]
    while (r := (yield)) is not None:
        tender = r.get("tender")
        if not isinstance(tender, dict) or (methods and
                                            tender.get("procurementMethod") not in methods):
            continue
        number = tender.get("numberOfTenderers")
        if isinstance(number, int) and not isinstance(number, bool) and number == 1:
            run.flag("R018", OCID, r["ocid"], 1.0, tenderers=1)


def _valid_bids_with_value(details: list) -> list[tuple[str, float, str]]:
    out = []
    for bid in details:
        if not isinstance(bid, dict) or bid.get("status") != "valid":
            continue
        amount = _number(_get(bid, "value", "amount"))
        currency = _str(_get(bid, "value", "currency"))
        tenderers = bid.get("tenderers")
        if amount is None or currency is None or not isinstance(tenderers, list) \
                or len(tenderers) != 1 or not _str(_get(tenderers[0], "id")):
            continue
        out.append((tenderers[0]["id"], amount, currency))
    return out


def _second_lowest_ratios(run: _Run) -> Generator[None, dict | None,
                                                  dict[str, tuple[float, str, str, float, float]]]:
    """Per process: (second-lowest valid - winning) / winning, with one active award."""
    price, no_price = (run.cfg["price_comparison_procurement_methods"],
                       run.cfg["no_price_comparison_procurement_methods"])
    ratios = {}
    while (r := (yield)) is not None:
        details = _pmd(r)
        if (details in no_price) or (price and details not in price):
            continue
        found = _complete_awards_and_bids(r)
        if found is None or len(found[0]) != 1:
            continue
        suppliers = found[0][0].get("suppliers")
        if not isinstance(suppliers, list) or len(suppliers) != 1 or \
                not _str(_get(suppliers[0], "id")):
            continue
        supplier = suppliers[0]["id"]
        winner = loser = None
        for tenderer, amount, currency in _valid_bids_with_value(found[1]):
            if not run.currency_ok(currency):
                continue
            if tenderer == supplier:
                if winner is None or amount < winner[1]:
                    winner = (tenderer, amount)
            elif loser is None or amount < loser[1]:
                loser = (tenderer, amount)
        if winner and loser and loser[1] >= winner[1]:
            ratio = (loser[1] - winner[1]) / winner[1] if winner[1] else math.inf
            ratios[r["ocid"]] = (ratio, winner[0], loser[0], winner[1], loser[1])
    return ratios


def _r024_r058(run: _Run) -> Indicator:
    ratios = yield from _second_lowest_ratios(run)
    values = [v[0] for v in ratios.values()]
    q1, q3 = quartiles(values)
    threshold = run.cfg["R024"]["threshold"]
    low, guard = (lower_fence(q1, q3), q1) if threshold is None else (threshold, 1.0)
    if guard > 0.0 and low > 0.0:  # else 75 % of processes would be flagged
        for ocid, (ratio, winner, loser, w, second) in ratios.items():
            if ratio <= low:
                params = {"winner": Money(w), "second": Money(second),
                          "difference": Percent(ratio), "fence": Percent(low)}
                run.flag("R024", OCID, ocid, ratio, **params)
                for tenderer in (winner, loser):
                    run.flag("R024", TENDERER, tenderer, 0.0, ocid, **params)
    threshold = run.cfg["R058"]["threshold"]
    high = upper_fence(q1, q3) if threshold is None else threshold
    if high > 0.0:
        for ocid, (ratio, winner, _loser, w, second) in ratios.items():
            if ratio >= high:
                params = {"winner": Money(w), "second": Money(second),
                          "difference": Percent(ratio), "fence": Percent(high)}
                run.flag("R058", OCID, ocid, ratio, **params)
                run.flag("R058", TENDERER, winner, 0.0, ocid, **params)


def _r025(run: _Run) -> Indicator:
    cfg = run.cfg["R025"]
    wins: dict[str, int] = defaultdict(int)
    bids: dict[str, int] = defaultdict(int)
    while (r := (yield)) is not None:
        found = _complete_awards_and_bids(r)
        if found is None or len(found[0]) != 1:
            continue
        suppliers = found[0][0].get("suppliers")
        if not isinstance(suppliers, list) or len(suppliers) != 1 or \
                not _str(_get(suppliers[0], "id")):
            continue
        valid = set()
        for bid in found[1]:
            tenderers = _get(bid, "tenderers")
            if _get(bid, "status") == "valid" and isinstance(tenderers, list) \
                    and len(tenderers) == 1 and _str(_get(tenderers[0], "id")):
                valid.add(tenderers[0]["id"])
        for tenderer in valid:  # once per process, whatever the number of bids
            bids[tenderer] += 1
            wins[tenderer] += tenderer == suppliers[0]["id"]
    top = quantile([float(n) for n in bids.values()], cfg["percentile"] / 100)
    ratios = {k: wins[k] / bids[k] for k in bids}
    if cfg["threshold"] is None:
        q1, q3 = quartiles(ratios.values())
        low = lower_fence(q1, q3)
    else:
        q1, low = 1.0, cfg["threshold"]
    if q1 > 0.0 and low > 0.0:
        for tenderer, ratio in ratios.items():
            if bids[tenderer] >= top and ratio <= low:
                run.flag("R025", TENDERER, tenderer, ratio, name=run.names.get(tenderer, ""),
                         wins=wins[tenderer], bids=bids[tenderer], ratio=Percent(ratio),
                         top=round(top, 2), fence=Percent(low))


def _r028(run: _Run) -> Indicator:
    include, exclude = (run.cfg["price_comparison_procurement_methods"],
                        run.cfg["no_price_comparison_procurement_methods"])
    while (r := (yield)) is not None:
        if not _matches_details(r, include, exclude):
            continue
        prices: dict[tuple[float, str], frozenset] = {}
        for bid in _submitted_bids(r):
            amount = _number(_get(bid, "value", "amount"))
            currency = _str(_get(bid, "value", "currency"))
            if not isinstance(bid.get("tenderers"), list) or amount is None or currency is None:
                continue
            ids = frozenset(_ids(bid["tenderers"]))
            if not ids:
                continue
            other = prices.get((amount, currency))
            if other is not None and ids != other:
                params = {"price": Money(amount)}
                run.flag("R028", OCID, r["ocid"], 1.0, **params)
                for tenderer in ids | other:
                    run.flag("R028", TENDERER, tenderer, 1.0, r["ocid"], **params)
            prices[(amount, currency)] = ids


def _r030(run: _Run) -> Indicator:
    while (r := (yield)) is not None:
        end = _get(r, "tender", "tenderPeriod", "endDate")
        awards, details = r.get("awards"), _get(r, "bids", "details")
        if not _str(end) or not isinstance(awards, list) or not isinstance(details, list):
            continue
        suppliers = {s for a in awards if _get(a, "status") == "active"
                     for s in _ids(_get(a, "suppliers"))}
        for bid in details:
            date = _get(bid, "date")
            if _get(bid, "status") == "valid" and _str(date) and \
                    isinstance(_get(bid, "tenderers"), list) and date > end:
                for tenderer in _ids(bid["tenderers"]):
                    if tenderer in suppliers:
                        params = {"received": Day(date[:16].replace("T", " ")),
                                  "deadline": Day(end[:16].replace("T", " "))}
                        run.flag("R030", OCID, r["ocid"], 1.0, **params)
                        run.flag("R030", TENDERER, tenderer, 1.0, r["ocid"], **params)


def _r035(run: _Run) -> Indicator:
    threshold = max(run.cfg["R035"]["threshold"], 1)
    while (r := (yield)) is not None:
        found = _complete_awards_and_bids(r)
        if found is None:
            continue
        suppliers = {s for a in found[0] for s in _ids(_get(a, "suppliers"))}
        valid, disqualified = set(), set()
        for bid in found[1]:
            status = _get(bid, "status")
            if status in ("valid", "disqualified") and isinstance(_get(bid, "tenderers"), list):
                (valid if status == "valid" else disqualified).update(_ids(bid["tenderers"]))
        difference = len(disqualified - valid)
        if len(valid) == 1 and valid == suppliers and difference >= threshold:
            run.flag("R035", OCID, r["ocid"], float(difference), disqualified=difference)
            run.flag("R035", TENDERER, next(iter(valid)), 0.0, r["ocid"],
                     disqualified=difference)


def _r036(run: _Run) -> Indicator:
    include, exclude = (run.cfg["price_comparison_procurement_methods"],
                        run.cfg["no_price_comparison_procurement_methods"])
    while (r := (yield)) is not None:
        if not _matches_details(r, include, exclude):
            continue
        awards = r.get("awards")
        if not isinstance(awards, list) or not any(_get(a, "status") == "active"
                                                   for a in awards):
            continue
        lowest, lowest_disqualified, has_valid = None, False, False
        for bid in _submitted_bids(r):
            amount = _number(_get(bid, "value", "amount"))
            currency = _str(_get(bid, "value", "currency"))
            if amount is None or currency is None or not run.currency_ok(currency):
                continue
            if lowest is None or amount < lowest:
                lowest, lowest_disqualified = amount, bid["status"] == "disqualified"
            has_valid |= bid["status"] == "valid"
        if has_valid and lowest_disqualified:
            run.flag("R036", OCID, r["ocid"], 1.0, price=Money(lowest))


def _r038(run: _Run) -> Indicator:
    cfg = run.cfg["R038"]
    counts = {BUYER: defaultdict(lambda: [0, 0]), PROCURING_ENTITY: defaultdict(lambda: [0, 0]),
              TENDERER: defaultdict(lambda: [0, 0])}
    ocids = {BUYER: defaultdict(list), PROCURING_ENTITY: defaultdict(list),
             TENDERER: defaultdict(list)}
    while (r := (yield)) is not None:
        submitted = _submitted_bids(r)
        if not submitted:
            continue
        disqualified = 0
        for bid in submitted:
            out = int(bid["status"] == "disqualified")
            disqualified += out
            for tenderer in _ids(bid.get("tenderers")):
                counts[TENDERER][tenderer][0] += out
                counts[TENDERER][tenderer][1] += 1
                ocids[TENDERER][tenderer].append(r["ocid"])
        for group, org in ((BUYER, _get(r, "buyer", "id")),
                           (PROCURING_ENTITY, _get(r, "tender", "procuringEntity", "id"))):
            if _str(org):
                counts[group][org][0] += disqualified
                counts[group][org][1] += len(submitted)
                if disqualified:
                    ocids[group][org].append(r["ocid"])
    for group, minimum in ((BUYER, cfg["minimum_contracting_processes"]),
                           (PROCURING_ENTITY, cfg["minimum_contracting_processes"]),
                           (TENDERER, cfg["minimum_submitted_bids"])):
        # As in Cardinal, the minimum is compared with the number of submitted bids.
        ratios = {k: d / n for k, (d, n) in counts[group].items() if n >= minimum}
        if not ratios:
            continue
        high = cfg["threshold"] if cfg["threshold"] is not None else upper_fence(
            *quartiles(ratios.values()))
        if high > 0.0:
            for org, ratio in ratios.items():
                if ratio >= high:
                    d, n = counts[group][org]
                    flag = run.flag("R038", group, org, ratio, disqualified=d, submitted=n,
                                    ratio=Percent(ratio), fence=Percent(high))
                    flag.ocids = sorted(set(ocids[group][org]))


def _address(party: dict) -> str | None:
    address = party.get("address")
    if not isinstance(address, dict) or "streetAddress" not in address:
        return None
    return "".join(address[f].strip().lower() + " " for f in
                   ("streetAddress", "locality", "region", "postalCode", "countryName")
                   if isinstance(address.get(f), str))


def _same_contact(one, other) -> bool:
    """Cardinal compares the first contact field that both give."""
    if not isinstance(one, dict) or not isinstance(other, dict):
        return False
    for name in ("name", "email", "telephone", "faxNumber", "url"):
        if isinstance(one.get(name), str) and isinstance(other.get(name), str):
            return one[name] == other[name]
    return False


def _r044(run: _Run) -> Indicator:
    while (r := (yield)) is not None:
        tenderers = {p["id"]: (_address(p), p.get("contactPoint"))
                     for p in r.get("parties") or []
                     if isinstance(p, dict) and isinstance(p.get("roles"), list)
                     and "tenderer" in p["roles"] and _str(p.get("id"))}
        for one, (address, contact) in tenderers.items():
            for other, (other_address, other_contact) in tenderers.items():
                if one != other and ((address is not None and address == other_address)
                                     or _same_contact(other_contact, contact)):
                    run.flag("R044", OCID, r["ocid"], 1.0)
                    run.flag("R044", TENDERER, one, 1.0, r["ocid"])


def _r048(run: _Run) -> Indicator:
    cfg = run.cfg["R048"]
    seen: dict[str, list] = defaultdict(lambda: [0, set(), []])
    while (r := (yield)) is not None:
        observed = set()
        for award in r.get("awards") or []:
            suppliers = _get(award, "suppliers")
            items = _get(award, "items")
            if _get(award, "status") != "active" or not isinstance(items, list) or \
                    not isinstance(suppliers, list) or len(suppliers) != 1 or \
                    not _str(_get(suppliers[0], "id")):
                continue
            supplier = suppliers[0]["id"]
            for item in items:
                code = _str(_get(item, "classification", "id"))
                if code is None or not isinstance(_get(item, "classification"), dict):
                    continue
                entry = seen[supplier]
                if supplier not in observed:  # once per process
                    observed.add(supplier)
                    entry[0] += 1
                    entry[2].append(r["ocid"])
                entry[1].add(code[:cfg["digits"]])
    lengths = {k: float(len(codes)) for k, (count, codes, _o) in seen.items()
               if count >= cfg["minimum_contracting_processes"]}
    high = float(cfg["threshold"]) if cfg["threshold"] is not None else upper_fence(
        *quartiles(lengths.values()))
    for supplier, length in lengths.items():
        if length >= high:
            flag = run.flag("R048", TENDERER, supplier, length,
                            name=run.names.get(supplier, ""), divisions=int(length),
                            fence=round(high, 2))
            flag.ocids = list(dict.fromkeys(seen[supplier][2]))


# --- sahab's own (S-codes) ----------------------------------------------------------

def _is_process(r: dict) -> bool:
    """A process with a tender, cancelled ones included (what S09 reads)."""
    return bool(_str(r.get("ocid"))) and isinstance(r.get("tender"), dict)


def _active_awards(r: dict) -> list[dict]:
    return [a for a in r.get("awards") or [] if _get(a, "status") == "active"]


def _s01(run: _Run) -> Indicator:
    cfg = run.cfg["S01"]
    threshold = cfg["threshold"]
    floor = threshold * cfg["share_of_threshold"]
    window = dt.timedelta(days=cfg["window_days"])
    groups: dict[tuple[str, str], list[tuple[dt.datetime, float, str]]] = defaultdict(list)
    while (r := (yield)) is not None:
        value = _number(_get(r, "tender", "value", "amount"))
        start = _parse(_get(r, "tender", "tenderPeriod", "startDate"))
        items = _get(r, "tender", "items") or []
        cpv = _str(_get(items[0], "classification", "id")) if items else None
        buyer = _str(_get(r, "buyer", "id"))
        if value is None or start is None or cpv is None or buyer is None:
            continue
        if floor <= value <= threshold:
            groups[(buyer, cpv[:3])].append((start, value, r["ocid"]))
    for (buyer, group), purchases in groups.items():
        purchases.sort()
        for i, (first, _v, _o) in enumerate(purchases):
            close = [p for p in purchases[i:] if p[0] - first <= window]
            total = sum(p[1] for p in close)
            if len(close) >= 2 and total > threshold:
                flag = run.flag("S01", BUYER, buyer, total, count=len(close),
                                cpv=f"{group}…", threshold=Money(threshold),
                                total=Money(total), days=cfg["window_days"])
                flag.ocids = [p[2] for p in close]
                break


def _s02(run: _Run) -> Indicator:
    cfg = run.cfg["S02"]
    window = dt.timedelta(days=cfg["window_days"])
    pairs: dict[tuple[str, str], list[tuple[dt.datetime, str]]] = defaultdict(list)
    while (r := (yield)) is not None:
        tender = r["tender"] if isinstance(r.get("tender"), dict) else {}
        limited = tender.get("procurementMethod") == "limited"
        single = tender.get("numberOfTenderers") == 1
        buyer = _str(_get(r, "buyer", "id"))
        if not (limited or single) or buyer is None:
            continue
        for award in _active_awards(r):
            date = _parse(award.get("date"))
            for supplier in _ids(award.get("suppliers")):
                if date is not None:
                    pairs[(buyer, supplier)].append((date, r["ocid"]))
    for (_buyer, supplier), awards in pairs.items():
        awards.sort()
        recent = [a for a in awards if awards[-1][0] - a[0] <= window]
        if len(recent) >= cfg["minimum_awards"]:
            flag = run.flag("S02", TENDERER, supplier, float(len(recent)),
                            count=len(recent), name=run.names.get(supplier, ""),
                            days=cfg["window_days"])
            flag.ocids = sorted({o for _d, o in recent} | set(flag.ocids))


def _s03(run: _Run) -> Indicator:
    share = run.cfg["S03"]["share"]
    while (r := (yield)) is not None:
        awards = {a.get("id"): a for a in r.get("awards") or [] if isinstance(a, dict)}
        for contract in r.get("contracts") or []:
            award = awards.get(_get(contract, "awardID"))
            current = _number(_get(contract, "value", "amount"))
            awarded = _number(_get(award, "value", "amount")) if award else None
            if current is None or not awarded:
                continue
            if current > awarded * (1 + share):
                run.flag("S03", OCID, r["ocid"], current / awarded - 1,
                         awarded=Money(awarded), current=Money(current),
                         increase=Percent(current / awarded - 1))


def _s05(run: _Run) -> Indicator:
    cfg = run.cfg["S05"]
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    counts: dict[str, int] = defaultdict(int)
    ocids: dict[tuple[str, str], list[str]] = defaultdict(list)
    while (r := (yield)) is not None:
        buyer = _str(_get(r, "buyer", "id"))
        for award in _active_awards(r):
            amount = _number(_get(award, "value", "amount"))
            suppliers = _ids(award.get("suppliers"))
            if buyer is None or amount is None or len(suppliers) != 1:
                continue
            totals[buyer][suppliers[0]] += amount
            counts[buyer] += 1
            ocids[(buyer, suppliers[0])].append(r["ocid"])
    for buyer, by_supplier in totals.items():
        total = sum(by_supplier.values())
        supplier, value = max(by_supplier.items(), key=lambda kv: kv[1])
        if counts[buyer] >= cfg["minimum_awards"] and total and value / total >= cfg["share"]:
            flag = run.flag("S05", BUYER, buyer, value / total, share=Percent(value / total),
                            value=Money(value), total=Money(total),
                            name=run.names.get(supplier, supplier))
            flag.ocids = list(dict.fromkeys(ocids[(buyer, supplier)]))


def _s06(run: _Run) -> Indicator:
    gap = run.cfg["S06"]["gap"]
    while (r := (yield)) is not None:
        lots = {lot.get("id"): _number(_get(lot, "value", "amount"))
                for lot in _get(r, "tender", "lots") or [] if isinstance(lot, dict)}
        for award in _active_awards(r):
            price = _number(_get(award, "value", "amount"))
            related = award.get("relatedLots") or []
            estimate = lots.get(related[0]) if len(related) == 1 else _number(
                _get(r, "tender", "value", "amount"))
            if price is None or not estimate:
                continue
            if 0 <= (estimate - price) / estimate <= gap:
                run.flag("S06", OCID, r["ocid"], price / estimate, price=Money(price),
                         estimate=Money(estimate), gap=Percent(gap))


def _bidders(r: dict) -> set[str]:
    return {t for b in _submitted_bids(r) for t in _ids(b.get("tenderers"))}


def _s07_s08(run: _Run) -> Indicator:
    # Kept for every process of a country, so kept small: companies and processes as
    # numbers, a pair of companies as one integer, and a pair seen once (most of them)
    # as the one process number rather than a list. A process's winners are kept as the
    # single company number when there is one (a tuple otherwise). An ocid met again
    # (a file with the same process twice) keeps its number: its pairs count each time,
    # and its winners are the last record's.
    companies: dict[str, int] = {}
    company_ids: list[str] = []
    processes: list[str] = []
    process_of: dict[str, int] = {}
    winners: list[int | tuple[int, ...]] = []
    together: dict[int, int | list[int]] = {}
    shift = 32  # a pair's key: the first company's number above the second's

    def number(company: str) -> int:
        n = companies.get(company)
        if n is None:
            n = companies[company] = len(company_ids)
            company_ids.append(company)
        return n

    def won(r: dict) -> int | tuple[int, ...]:
        suppliers = tuple(dict.fromkeys(
            number(s) for a in _active_awards(r) for s in _ids(a.get("suppliers"))))
        return suppliers[0] if len(suppliers) == 1 else suppliers

    while (r := (yield)) is not None:
        bidders = [number(c) for c in sorted(_bidders(r))]
        process = process_of.get(r["ocid"])
        if process is not None:
            winners[process] = won(r)
        if len(bidders) < 2:
            continue
        if process is None:
            process = process_of[r["ocid"]] = len(processes)
            processes.append(r["ocid"])
            winners.append(won(r))
        for i, one in enumerate(bidders):
            for other in bidders[i + 1:]:
                key = one << shift | other
                seen = together.get(key)
                if seen is None:
                    together[key] = process
                elif isinstance(seen, int):
                    together[key] = [seen, process]
                else:
                    seen.append(process)
    _flag_pairs(run, together, company_ids, processes, winners, shift)


def _flag_pairs(run: _Run, together: dict[int, int | list[int]], company_ids: list[str],
                processes: list[str], winners: list[int | tuple[int, ...]],
                shift: int) -> None:
    """S07 and S08 over the pairs ``_s07_s08`` counted."""
    minimum_together = run.cfg["S07"]["minimum_processes"]
    minimum_turns = run.cfg["S08"]["minimum_processes"]
    low = (1 << shift) - 1

    def won_by(process: int) -> set[int]:
        w = winners[process]
        return {w} if isinstance(w, int) else set(w)

    for key, seen in together.items():
        seen = [seen] if isinstance(seen, int) else seen
        if len(seen) < min(minimum_together, minimum_turns):
            continue
        pair = (key >> shift, key & low)
        one, other = company_ids[pair[0]], company_ids[pair[1]]
        ocids = [processes[p] for p in seen]
        names = [run.names.get(one, one), run.names.get(other, other)]
        if len(seen) >= minimum_together:
            for company in (one, other):
                flag = run.flag("S07", TENDERER, company, float(len(seen)), names=names,
                                count=len(seen))
                flag.ocids = list(dict.fromkeys([*flag.ocids, *ocids]))
        won_in = [won_by(p) for p in seen]
        won = {c: sum(1 for w in won_in if c in w) for c in pair}
        if len(seen) >= minimum_turns and all(won.values()) and \
                all(w & set(pair) for w in won_in):
            wins = [f"{run.names.get(company_ids[c], company_ids[c])} {n}"
                    for c, n in won.items()]
            for company in (one, other):
                flag = run.flag("S08", TENDERER, company, float(len(seen)), names=names,
                                count=len(seen), wins=wins)
                flag.ocids = list(dict.fromkeys([*flag.ocids, *ocids]))


def _s09(run: _Run) -> Indicator:
    while (r := (yield)) is not None:
        opened = [b for b in _submitted_bids(r) if b["status"] != "pending" or b.get("value")]
        if r["tender"].get("status") == "cancelled" and opened:
            run.flag("S09", OCID, r["ocid"], float(len(opened)),
                     bids=len({t for b in opened for t in _ids(b.get("tenderers"))}))


def _s10_s11(run: _Run) -> Indicator:
    award_days, payment_days = run.cfg["S10"]["days"], run.cfg["S11"]["days"]
    while (r := (yield)) is not None:
        awards = {a.get("id"): a for a in r.get("awards") or [] if isinstance(a, dict)}
        for contract in r.get("contracts") or []:
            signed = _parse(_get(contract, "dateSigned"))
            awarded = _parse(_get(awards.get(_get(contract, "awardID")), "date"))
            if signed and awarded and (signed - awarded).days > award_days:
                run.flag("S10", OCID, r["ocid"], float((signed - awarded).days),
                         days=(signed - awarded).days, limit=award_days)
            paid = [_parse(t.get("date")) for t in
                    _get(contract, "implementation", "transactions") or []
                    if isinstance(t, dict) and str(t.get("id", "")).startswith("payment-")]
            paid = [p for p in paid if p]
            if signed and paid and (min(paid) - signed).days > payment_days:
                run.flag("S11", OCID, r["ocid"], float((min(paid) - signed).days),
                         days=(min(paid) - signed).days, limit=payment_days)


# Each indicator is a generator: it receives the releases it considers one by one
# (``yield`` gives the next, None once there are no more), keeps what it needs of each,
# and flags at the end what needs every process (quartiles, counts per organization).
Indicator = Generator[None, dict | None, None]

INDICATORS = [_r003, _r018, _r024_r058, _r025, _r028, _r030, _r035, _r036, _r038, _r044,
              _r048, _s01, _s02, _s03, _s05, _s06, _s07_s08, _s09, _s10_s11]
# S09 reads the cancelled processes too: every process with a tender
EVERY_PROCESS = {_s09}


def compute(releases: Iterable[dict], cfg: dict | None = None) -> list[Flag]:
    """Every flag over compiled releases (one per contracting process), read once: the
    releases may be a stream, of which no more than one is held at a time."""
    run = _Run(cfg or config())
    indicators = [(indicator(run), indicator in EVERY_PROCESS) for indicator in INDICATORS]
    for indicator, _every in indicators:
        next(indicator)
    for release in releases:
        considered = run.see(release)
        process = _is_process(release)
        for indicator, every in indicators:
            if process if every else considered:
                indicator.send(release)
    for indicator, _every in indicators:
        with contextlib.suppress(StopIteration):
            indicator.send(None)
    return run.result()


def as_cardinal(flags: Iterable[Flag]) -> dict:
    """The flags as Cardinal's ``indicators`` command prints them (without Meta)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for f in flags:
        out.setdefault(f.group, {}).setdefault(f.key, {})[f.code] = f.value
    return out


# --- sahab's own data -----------------------------------------------------------------

def compiled_releases() -> Iterable[dict]:
    """sahab's published records, compiled (the same as anyone compiles them): those kept
    with the releases, or, when they are behind, merged again from the releases."""
    from sahab.procurement import ocds

    if ocds.compiled_are_current():
        return ocds.iter_compiled_releases()
    return (record["compiledRelease"] for record in ocds.iter_records())


def _last_release() -> int | None:
    from sahab.procurement import ocds

    return ocds.last_release_index()


def _config_sha256() -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(config(), sort_keys=True, default=str)
                          .encode()).hexdigest()


_KINDS = {"money": Money, "percent": Percent, "day": Day}


def stored(flag: Flag) -> dict:
    """A flag as JSON, its numbers keeping their kind (an amount, a ratio, a date)."""
    def kind(value) -> str:
        for name, cls in _KINDS.items():
            if isinstance(value, cls):
                return name
        return ""

    return {"code": flag.code, "group": flag.group, "key": flag.key, "value": flag.value,
            "params": [[k, kind(v), v] for k, v in flag.params.items()],
            "ocids": flag.ocids, "name": flag.name, "reference": flag.reference,
            "references": flag.references}


def from_stored(data: dict) -> Flag:
    params = {k: _KINDS[kind](v) if kind else v for k, kind, v in data["params"]}
    return Flag(data["code"], data["group"], data["key"], data["value"], params,
                data["ocids"], data["name"], data["reference"], data["references"])


def refresh():
    """Compute every flag of sahab's published data and store the run (the worker's job,
    every ``RED_FLAGS_REFRESH_SECONDS``); keeps the last three runs."""
    import time

    from django.utils import timezone

    from sahab.procurement.models import RedFlagRun

    upto, sha = _last_release(), _config_sha256()  # before: a release added meanwhile
    started = time.perf_counter()                  # makes the run look stale, not fresh
    flags = compute(compiled_releases())
    run = RedFlagRun.objects.create(
        computed_at=timezone.now(), seconds=round(time.perf_counter() - started, 3),
        releases_upto=upto, config_sha256=sha, count=len(flags),
        flags=[stored(f) for f in flags])
    old = RedFlagRun.objects.order_by("-pk").values_list("pk", flat=True)[3:]
    RedFlagRun.objects.filter(pk__in=list(old)).delete()
    _loaded.clear()
    _loaded[_run_key(run)] = flags
    return run


def last_run():
    """The latest stored run, without its flags (``None`` before the first)."""
    from sahab.procurement.models import RedFlagRun

    return RedFlagRun.objects.defer("flags").order_by("-pk").first()


def is_current(run) -> bool:
    """Whether ``run`` covers every published release, computed with today's settings."""
    return run.releases_upto == _last_release() and run.config_sha256 == _config_sha256()


def _run_key(run) -> tuple:
    return run.pk, run.computed_at


# The flags of the last run this process read: a page decodes a run once, not per request.
_loaded: dict[tuple, list[Flag]] = {}


def current(max_age: int | None = None) -> list[Flag]:
    """The flags of sahab's published data, as the worker last stored them (pages and the
    API read this). Computed here only when no run exists yet, when the last is older
    than ``max_age`` seconds, or, with ``RED_FLAGS_RECOMPUTE_WHEN_STALE``, when releases
    were published or the settings changed since."""
    from django.utils import timezone

    from sahab.procurement.models import RedFlagRun

    run = last_run()
    if run is None or (max_age is not None and
                       (timezone.now() - run.computed_at).total_seconds() >= max_age) \
            or (settings.RED_FLAGS_RECOMPUTE_WHEN_STALE and not is_current(run)):
        run = refresh()
    key = _run_key(run)
    flags = _loaded.get(key)
    if flags is None:
        data = RedFlagRun.objects.filter(pk=run.pk).values_list("flags", flat=True).first()
        flags = [from_stored(d) for d in data or []]
        _loaded.clear()
        _loaded[key] = flags
    return flags


def for_tender(reference: str, flags: Iterable[Flag] | None = None) -> list[Flag]:
    """A tender's flags, and those of its buyer or companies that concern it (unless the
    tender carries the same flag itself: the companies of an R028 are named in it)."""
    flags = list(current() if flags is None else flags)
    own = [f for f in flags if f.group == OCID and f.reference == reference]
    codes = {f.code for f in own}
    return own + [f for f in flags if f.group != OCID and reference in f.references
                  and f.code not in codes]


def for_organization(identifiers: set[str], flags: Iterable[Flag] | None = None) -> list[Flag]:
    """The flags of a buyer or company, by its party id, code or matricule fiscal (a
    buyer that is also the procuring entity is shown once)."""
    seen, out = set(), []
    for f in current() if flags is None else flags:
        if f.group != OCID and (f.key in identifiers or f.reference in identifiers) \
                and (f.code, f.key) not in seen:
            seen.add((f.code, f.key))
            out.append(f)
    return out


def as_dict(flag: Flag) -> dict:
    return {"code": flag.code, "title": flag.title, "explanation": flag.explanation,
            "why": flag.why, "level": flag.level, "group": flag.group, "key": flag.key,
            "subject": flag.subject, "name": flag.name, "value": flag.value,
            "detail": flag.explanation, "tenders": flag.references, "ocids": flag.ocids}
