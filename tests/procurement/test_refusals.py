"""The refusals procurement advertises, at the service level: no withdrawal at or after
the deadline, no close of tendering while an admitted complaint suspends the procedure
(and the time it took given back), and an abnormally low price flagged at the
evaluation, whose award needs the bidder's explanation accepted by the committee."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from sahab.core.errors import Conflict, InvalidInput
from sahab.ledger.models import Entry
from sahab.procurement import services
from sahab.procurement.models import Award, Bid, BidLot, Step, Tender
from tests import factories
from tests.procurement.bidding import run_timers_at, submit_bid, withdraw_bid

SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def tender(published_tender) -> Tender:
    return published_tender


def company(world, i: int):
    return world["companies"][i][1].user


def steps(tender: Tender, kind: str) -> int:
    return Step.objects.filter(tender=tender, type=kind).count()


def test_a_withdrawal_at_or_after_the_deadline_is_refused_and_changes_nothing(world, tender):
    deadline = tender.submission_deadline
    bid = submit_bid(company(world, 0), tender, {"1": "100000"}, now=deadline - 60 * SECOND)
    entries = Entry.objects.count()
    for at in (deadline, deadline + SECOND, deadline + dt.timedelta(days=3)):
        with pytest.raises(Conflict, match="before the deadline"):
            withdraw_bid(company(world, 0), bid, now=at)
    # the same through the API, on the clock (the tender is not closed yet: the deadline
    # alone refuses it)
    with time_machine.travel(deadline + SECOND):
        answer = world["companies"][0][1].call("delete", f"/bids/{bid.pk}")
    assert answer.status_code == 409
    bid.refresh_from_db()
    assert bid.status == Bid.Status.SUBMITTED
    assert Entry.objects.count() == entries and steps(tender, "bid.withdrawn") == 0
    # a second before the deadline it is still allowed: the refusal is the deadline's
    other = submit_bid(company(world, 1), tender, {"1": "110000"}, now=deadline - 60 * SECOND)
    assert withdraw_bid(company(world, 1), other, now=deadline - SECOND).status == \
        Bid.Status.WITHDRAWN
    # and the bid that could not be withdrawn is opened with the others
    run_timers_at(deadline + SECOND)
    bid.refresh_from_db()
    assert bid.status == Bid.Status.OPENED


def test_a_complaint_suspends_only_once_admitted_and_the_deadline_gives_back_the_time(
        world, tender):
    deadline = tender.submission_deadline
    complaint = services.file_complaint(actor=company(world, 1), tender=tender,
                                        text="Le cahier des charges favorise un fournisseur.",
                                        now=deadline - dt.timedelta(days=3))
    tender.refresh_from_db()
    assert not tender.suspended  # filing alone freezes nothing: bids go on
    assert submit_bid(company(world, 0), tender, {"1": "100000"},
                      now=deadline - dt.timedelta(days=3)).status == Bid.Status.SUBMITTED
    services.rule_admissibility(actor=world["auditor"].user, complaint=complaint,
                                admissible=True, reason="Recours motivé.",
                                now=deadline - dt.timedelta(days=2))
    tender.refresh_from_db()
    assert tender.suspended
    # the timer does not close a suspended tender, even past its deadline
    assert services.advance_tenders(now=deadline + SECOND) == []
    services.decide_complaint(actor=world["auditor"].user, complaint=complaint, upheld=False,
                              decision="Le cahier des charges est neutre.",
                              now=deadline + dt.timedelta(days=1))
    tender.refresh_from_db()
    # the two days left when the suspension began are given back after it
    assert not tender.suspended
    assert tender.submission_deadline == deadline + dt.timedelta(days=3)
    assert submit_bid(company(world, 2), tender, {"1": "99000"},
                      now=deadline + dt.timedelta(days=2)).status == Bid.Status.SUBMITTED


def evaluate(world, tender: Tender, prices: list[dict[str, str]]) -> dict:
    """Bids from the three companies, the opening, every bid eligible, the ranking."""
    for i, offer in enumerate(prices):
        submit_bid(company(world, i), tender, offer)
    run_timers_at(tender.submission_deadline + SECOND)
    tender.refresh_from_db()
    assert tender.state == "evaluation"
    evaluator = world["evaluators"][0].user
    services.declare_conflict_of_interest(actor=evaluator, tender=tender, no_conflict=True)
    for row in BidLot.objects.filter(bid__tender=tender):
        services.decide_eligibility(actor=evaluator, bid_lot=row, eligible=True)
    report = services.complete_evaluation(actor=world["officer"].user, tender=tender)
    factories.adopt_evaluation(tender)
    return report


def test_an_abnormally_low_price_is_flagged_and_its_award_needs_an_accepted_explanation(
        world, tender):
    # lot 1: 69,999.999 is under 70 % of the mean of the others (100,000): abnormally low;
    # lot 2: 70,000 is exactly 70 %: not flagged.
    report = evaluate(world, tender, [{"1": "100000", "2": "100000"},
                                      {"1": "100000", "2": "100000"},
                                      {"1": "69999.999", "2": "70000"}])
    flagged = {lot["lot"]: {r["price"]: r["abnormally_low"] for r in lot["ranking"]}
               for lot in report["lots"]}
    assert flagged == {1: {"69999.999": True, "100000.000": False},
                       2: {"70000.000": False, "100000.000": False}}
    medina = world["companies"][2][0]
    low = BidLot.objects.get(lot__number=1, bid__company=medina)
    assert low.abnormally_low and low.rank == 1
    # the public evaluation report on the ledger says so
    body = bytes(Entry.objects.get(type="procurement.tender.evaluated").body)
    assert b'"abnormally_low":true' in body and body.count(b'"abnormally_low":true') == 1

    officer = world["officer"].user
    # the buyer's own justification is not enough: the bidder must explain its price
    for justification in ("", "Prix justifié par un stock existant."):
        with pytest.raises(InvalidInput, match="abnormally low"):
            services.award_tender(actor=officer, tender=tender, justification=justification)
    assert not Award.objects.exists() and Tender.objects.get(pk=tender.pk).state == \
        "evaluation"
    chair = world["evaluators"][0].user
    asked = services.request_explanation(actor=chair, bid_lot=low,
                                         question="Justifiez le prix du lot 1.")
    services.answer_explanation(actor=world["companies"][2][1].user, explanation=asked,
                                answer="Stock existant acquis en 2025.")
    services.decide_explanation(actor=chair, explanation=asked, accepted=True,
                                reason="Le stock est attesté.")
    # accepting changed the evaluation: the report is proposed and adopted again
    with pytest.raises(Conflict, match="not adopted"):
        services.award_tender(actor=officer, tender=tender)
    report = services.complete_evaluation(actor=officer, tender=tender)
    assert report["lots"][0]["ranking"][0]["explanation"] == "accepted"
    factories.adopt_evaluation(tender)
    awards = services.award_tender(actor=officer, tender=tender)
    assert {(a.lot.number, a.supplier, a.value) for a in awards} == {
        (1, medina, Decimal("69999.999")), (2, medina, Decimal("70000"))}


def test_with_fewer_than_three_eligible_bids_nothing_is_abnormally_low(world, tender):
    report = evaluate(world, tender, [{"1": "100000"}, {"1": "10000"}])
    assert [r["abnormally_low"] for r in report["lots"][0]["ranking"]] == [False, False]
