"""Each indicator raised by a process that must raise it, and not by one that must not."""

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.utils import timezone

from sahab.procurement import redflags
from sahab.procurement.models import (
    Amendment,
    Award,
    Bid,
    BidLot,
    Contract,
    Lot,
    Tender,
)
from tests import factories

pytestmark = pytest.mark.django_db
_n = itertools.count(1)
NOW = timezone.now()


@pytest.fixture
def buyer():
    return factories.administration(code="MF")


def company(name: str, **fields):
    created, _ = factories.company(name=name)
    if fields:
        for key, value in fields.items():
            setattr(created, key, value)
        created.save()
    return created


def process(buyer, bids: dict, *, winner: str | None = None, procedure="open",
            days=30, criteria="lowest_price", disqualified=(), cpv="48820000-2",
            value="100000", late=()):
    """A published, opened tender with one lot, its bids (company → price) and award."""
    n = next(_n)
    tender = Tender.objects.create(
        reference=f"T-{n:04d}", buyer=buyer, title=f"Achat {n}", procedure=procedure,
        state="complete", award_criteria=criteria, estimated_value=Decimal(value),
        enquiry_deadline=NOW - dt.timedelta(days=60), published_at=NOW - dt.timedelta(days=90),
        submission_deadline=NOW - dt.timedelta(days=90 - days), opened_at=NOW)
    lot = Lot.objects.create(tender=tender, number=1, title="Lot", cpv=cpv,
                             estimated_value=Decimal(value))
    rows = {}
    for c, price in bids.items():
        bid = Bid.objects.create(
            tender=tender, company=c, status="opened", envelope=b"x", commitment=f"{n}{c.pk}",
            ledger_index=10**6 * n + c.pk,
            submitted_at=tender.submission_deadline + (dt.timedelta(hours=1) if c in late
                                                       else -dt.timedelta(days=1)))
        rows[c] = BidLot.objects.create(bid=bid, lot=lot, price=Decimal(price),
                                        eligible=c not in disqualified)
    if winner is not None:
        w = rows[winner]
        Award.objects.create(tender=tender, lot=lot, bid_lot=w, supplier=winner, value=w.price)
    return tender


def codes(reference=None, level="tender"):
    flags = redflags.compute()
    return {f.code for f in flags if f.level == level and
            (reference is None or f.subject == reference)}


def test_r003_short_submission_period(buyer):
    a, b = company("A"), company("B")
    short = process(buyer, {a: "10", b: "11"}, winner=a, days=10)
    normal = process(buyer, {a: "10", b: "11"}, winner=a, days=30)
    negotiated = process(buyer, {a: "10"}, winner=a, days=5, procedure="negotiated")
    assert "R003" in codes(short.reference)
    assert "R003" not in codes(normal.reference) | codes(negotiated.reference)


def test_r018_single_bid(buyer):
    a, b = company("A"), company("B")
    single = process(buyer, {a: "10"}, winner=a)
    two = process(buyer, {a: "10", b: "12"}, winner=a)
    negotiated = process(buyer, {a: "10"}, winner=a, procedure="negotiated")
    assert "R018" in codes(single.reference)
    assert "R018" not in codes(two.reference) | codes(negotiated.reference)


def _diff_population(buyer, a, b, diffs):
    return [process(buyer, {a: "100", b: str(100 * (1 + d))}, winner=a) for d in diffs]


def test_r024_second_bid_very_close_and_r058_heavy_discount(buyer):
    a, b = company("A"), company("B")
    typical = _diff_population(buyer, a, b, [0.10, 0.11, 0.12, 0.10, 0.11, 0.12, 0.11])
    close = process(buyer, {a: "100", b: "100.1"}, winner=a)
    far = process(buyer, {a: "100", b: "190"}, winner=a)
    assert "R024" in codes(close.reference) and "R058" in codes(far.reference)
    assert not {"R024", "R058"} & codes(typical[0].reference)


def test_r025_frequent_bidder_that_almost_never_wins(buyer):
    loser, others = company("Loser"), [company(f"W{i}") for i in range(6)]
    for i, w in enumerate(others):
        for _ in range(2):
            process(buyer, {w: "100", others[(i + 1) % 6]: "101"}, winner=w)
    for w in others:
        process(buyer, {w: "100", loser: "120"}, winner=w)
    process(buyer, {others[0]: "100", loser: "130"}, winner=others[0])
    flagged = codes(level="company")
    assert "R025" in {f.code for f in redflags.compute()
                      if f.subject == loser.matricule_fiscal}
    assert all(f.subject == loser.matricule_fiscal for f in redflags.compute()
               if f.code == "R025")
    assert flagged


def test_r028_identical_prices(buyer):
    a, b, c = company("A"), company("B"), company("C")
    same = process(buyer, {a: "88400", b: "88400", c: "90000"}, winner=a)
    different = process(buyer, {a: "88400", b: "88401"}, winner=a)
    assert "R028" in codes(same.reference) and "R028" not in codes(different.reference)


def test_r030_late_bid_won(buyer):
    a, b = company("A"), company("B")
    late = process(buyer, {a: "10", b: "11"}, winner=a, late=(a,))
    on_time = process(buyer, {a: "10", b: "11"}, winner=a, late=(b,))
    assert "R030" in codes(late.reference) and "R030" not in codes(on_time.reference)


def test_r035_all_but_winner_disqualified_and_r036_lowest_disqualified(buyer):
    a, b, c = company("A"), company("B"), company("C")
    all_out = process(buyer, {a: "12", b: "10", c: "11"}, winner=a, disqualified=(b, c))
    fair = process(buyer, {a: "10", b: "11", c: "12"}, winner=a, disqualified=(c,))
    assert {"R035", "R036"} <= codes(all_out.reference)
    assert not {"R035", "R036"} & codes(fair.reference)


def test_r038_many_disqualified_bids(buyer):
    other_buyer = factories.administration(code="MS")
    bad, good = company("Bad"), [company(f"G{i}") for i in range(5)]
    for i in range(5):
        process(buyer, {good[i]: "10", good[(i + 1) % 5]: "11", bad: "9"}, winner=good[i],
                disqualified=(bad,))
        process(other_buyer, {good[i]: "10", good[(i + 2) % 5]: "11"}, winner=good[i])
    flagged = {f.subject for f in redflags.compute() if f.code == "R038"}
    assert bad.matricule_fiscal in flagged
    assert not {g.matricule_fiscal for g in good} & flagged


def test_r044_tenderers_share_an_address(buyer):
    a = company("A", address="12 rue de Marseille", city="Tunis")
    b = company("B", address="12 Rue de Marseille ", city="tunis")
    c = company("C", address="5 avenue de Paris", city="Tunis")
    shared = process(buyer, {a: "10", b: "11"}, winner=a)
    apart = process(buyer, {a: "10", c: "11"}, winner=a)
    assert "R044" in codes(shared.reference) and "R044" not in codes(apart.reference)
    assert {a.matricule_fiscal, b.matricule_fiscal} <= {
        f.subject for f in redflags.compute() if f.code == "R044" and f.level == "company"}


def test_r048_supplier_in_many_sectors(buyer):
    jack = company("Jack")
    usual = [company(f"S{i}") for i in range(6)]
    for i, s in enumerate(usual):
        process(buyer, {s: "10"}, winner=s, cpv=f"{30 + i % 2}200000-1")
    for division in (30, 33, 34, 39, 44, 45, 50, 72, 79, 90):
        process(buyer, {jack: "10"}, winner=jack, cpv=f"{division}000000-1")
    flagged = {f.subject for f in redflags.compute() if f.code == "R048"}
    assert flagged == {jack.matricule_fiscal}


def test_s01_purchases_split_under_the_threshold(buyer):
    a = company("A")
    for _ in range(3):
        process(buyer, {a: "190000"}, winner=a, procedure="simplified", value="195000",
                cpv="30192000-1")
    other = factories.administration(code="MS")
    process(other, {a: "190000"}, winner=a, procedure="simplified", value="195000",
            cpv="30192000-1")
    assert {f.subject for f in redflags.compute() if f.code == "S01"} == {"MF"}


def test_s02_repeated_non_competitive_awards(buyer):
    friend, stranger = company("Friend"), company("Stranger")
    for _ in range(3):
        process(buyer, {friend: "10"}, winner=friend, procedure="negotiated")
    process(buyer, {stranger: "10"}, winner=stranger, procedure="negotiated")
    assert {f.subject for f in redflags.compute() if f.code == "S02"} == {
        friend.matricule_fiscal}


def test_s03_large_amendments(buyer):
    a = company("A")
    for new_value, expected in (("130", True), ("110", False)):
        tender = process(buyer, {a: "100"}, winner=a)
        award = tender.awards.get()
        contract = Contract.objects.create(tender=tender, award=award, supplier=a,
                                           value=Decimal(new_value),
                                           start_date=dt.date(2027, 1, 1),
                                           end_date=dt.date(2027, 12, 31))
        Amendment.objects.create(contract=contract, old_value=Decimal("100"),
                                 new_value=Decimal(new_value), old_end_date=contract.end_date,
                                 new_end_date=contract.end_date, justification="x")
        assert ("S03" in codes(tender.reference)) is expected


def test_s04_supplier_created_shortly_before(buyer):
    young, old = company("Young"), company("Old")
    from sahab.directory.models import Company

    Company.objects.filter(pk=old.pk).update(created_at=NOW - dt.timedelta(days=3000))
    Company.objects.filter(pk=young.pk).update(created_at=NOW - dt.timedelta(days=100))
    t_young = process(buyer, {young: "10"}, winner=young)  # published 90 days ago
    t_old = process(buyer, {old: "10"}, winner=old)
    assert "S04" in codes(t_young.reference) and "S04" not in codes(t_old.reference)


def test_thresholds_are_configurable(buyer, settings):
    a, b = company("A"), company("B")
    t = process(buyer, {a: "10", b: "11"}, winner=a, days=20)
    assert "R003" not in codes(t.reference)
    settings.RED_FLAGS = {"R003": {"threshold_days": 25}}
    assert "R003" in codes(t.reference)
