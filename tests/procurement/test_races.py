"""Bids and withdrawals in flight at the deadline, raced against the opening on
PostgreSQL, with two database connections and the interleaving forced: the bidder stops
inside its transaction (checks done, locks held) while the worker's timer tries to close
and open the tender.

Whatever the order, a bid is either refused or opened — never accepted and missed — and a
bid the ledger shows withdrawn is never opened. Raced against an amendment, a bid is either
in before it (and its bidder told of the change) or after it, under the amended terms."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from sahab.ledger.models import Entry
from sahab.procurement import services
from sahab.procurement.models import Bid, Notice, Step, Tender
from tests.procurement.bidding import (
    opening_report,
    paused_before_commit,
    run_timers_at,
    sequence_bids,
    submit_bid,
    withdraw_bid,
)
from tests.threads import append_beside_open_change, in_thread

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif("connection.vendor != 'postgresql'",
                                 reason="SQLite runs one writing transaction at a time: "
                                        "there is no interleaving to race")]
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def tender(published_tender) -> Tender:
    return published_tender


def opened_commitments(tender: Tender) -> set[str]:
    if not Entry.objects.filter(type="procurement.tender.opened",
                                subject=f"tender:{tender.reference}").exists():
        return set()
    return {b["commitment"] for b in opening_report(tender)["bids"]}


def race_the_opening(tender: Tender, action, event: str) -> dict:
    """``action`` runs in a thread and stops just before its ledger entry ``event``; the
    worker's timer runs at the deadline meanwhile (blocked or not), then ``action`` is let
    go, and the timer runs again (its next tick)."""
    outcome: dict = {}
    with paused_before_commit(event) as (arm, reached, release):
        def armed():
            arm()
            return action()

        actor = in_thread(armed, outcome)
        assert reached.wait(15), outcome
        timer = threading.Thread(target=lambda: (
            run_timers_at(tender.submission_deadline + SECOND),
            connection.close()), daemon=True)
        timer.start()
        timer.join(3)  # it returns at once, or waits for the bidder's locks: both are fine
        release.set()
        actor.join(30)
        timer.join(30)
    assert not actor.is_alive() and not timer.is_alive()
    assert "error" not in outcome, outcome
    run_timers_at(tender.submission_deadline + 2 * SECOND)
    return outcome


def test_a_bid_in_flight_at_the_deadline_is_refused_or_opened_never_missed(world, tender):
    bidder = world["companies"][0][1].user
    outcome = race_the_opening(
        tender, lambda: submit_bid(bidder, tender, {"1": "100000"},
                                   now=tender.submission_deadline - SECOND),
        "bid.submitted")
    bids = list(Bid.objects.filter(tender=tender))
    if "refused" in outcome:
        assert bids == []
    else:
        [bid] = bids
        assert bid.status == Bid.Status.OPENED, "a bid was accepted and missed by the opening"
        assert opened_commitments(tender) == {bid.commitment}
    tender.refresh_from_db()
    assert tender.opened_at is not None


def test_a_withdrawal_in_flight_at_the_deadline_is_refused_or_the_bid_stays_closed(
        world, tender):
    bidder = world["companies"][0][1].user
    bid = submit_bid(bidder, tender, {"1": "100000"}, now=tender.submission_deadline - 60 * SECOND)
    submit_bid(world["companies"][1][1].user, tender, {"1": "120000"},
               now=tender.submission_deadline - 60 * SECOND)
    outcome = race_the_opening(
        tender, lambda: withdraw_bid(bidder, bid, now=tender.submission_deadline - SECOND),
        "bid.withdrawn")
    bid.refresh_from_db()
    withdrawn = Step.objects.filter(tender=tender, type="bid.withdrawn").exists()
    if "refused" in outcome:
        assert not withdrawn and bid.status == Bid.Status.OPENED
        assert bid.commitment in opened_commitments(tender)
    else:
        assert withdrawn
        assert bid.commitment not in opened_commitments(tender), \
            "a bid the ledger shows withdrawn was opened"
        assert bid.status == Bid.Status.WITHDRAWN


def test_an_open_withdrawal_does_not_hold_back_other_writes(world, tender):
    """Before: a withdrawal appended its entry under the ledger's lock and held it until
    its commit, so every write of the platform queued behind it. Now another change
    appends and commits while the withdrawal's transaction is still open; the opening
    still waits for it (the race above), through the tender's shared lock."""
    bidder = world["companies"][0][1].user
    bid = submit_bid(bidder, tender, {"1": "100000"}, now=tender.submission_deadline - 60 * SECOND)
    added = append_beside_open_change(
        lambda: withdraw_bid(bidder, bid, now=tender.submission_deadline - SECOND))
    assert added[:2] == ["test.other", "procurement.bid.withdrawn"]


def _amend(world, tender: Tender):
    return lambda: services.amend_tender(
        actor=world["officer"].user, tender=tender, rationale="Clavier bilingue exigé.",
        submission_deadline=tender.submission_deadline + 5 * dt.timedelta(days=1))


def _index(bid: Bid) -> int:
    return Bid.objects.values_list("ledger_index", flat=True).get(pk=bid.pk)


def _told_of_the_amendment(company) -> bool:
    return Notice.objects.filter(company=company, text__contains="amendment no. 1",
                                 text__icontains="sealed bid").exists()


def test_a_bid_in_flight_during_an_amendment_is_committed_first_and_its_bidder_told(
        world, tender):
    """The amendment waits for the bid's lock: the bid is in before it, so its company is
    among the bidders told of the change (and may replace its bid)."""
    company, bidder = world["companies"][0][0], world["companies"][0][1].user
    bid, amended = {}, {}
    with paused_before_commit("bid.submitted") as (arm, reached, release):
        def armed():
            arm()
            return submit_bid(bidder, tender, {"1": "100000"})

        bidding = in_thread(armed, bid)
        assert reached.wait(15), bid
        amending = in_thread(_amend(world, tender), amended)
        amending.join(3)
        assert amending.is_alive(), "the amendment did not wait for the bid in flight"
        release.set()
        bidding.join(30)
        amending.join(30)
    assert set(bid) == {"result"} and set(amended) == {"result"}, (bid, amended)
    sequence_bids()  # the worker gives the bid's pending entry its index
    assert _index(bid["result"]) < amended["result"].ledger_index
    assert _told_of_the_amendment(company)


def test_a_bid_sent_while_an_amendment_is_written_comes_after_it_under_its_terms(
        world, tender):
    """The bid waits for the amendment's lock: it is recorded after the amendment, and
    reads the amended deadline — no bid straddles the change."""
    company, bidder = world["companies"][0][0], world["companies"][0][1].user
    bid, amended = {}, {}
    with paused_before_commit("tender.amended") as (arm, reached, release):
        def armed():
            arm()
            return _amend(world, tender)()

        amending = in_thread(armed, amended)
        assert reached.wait(15), amended
        bidding = in_thread(lambda: submit_bid(bidder, tender, {"1": "100000"}), bid)
        bidding.join(3)
        assert bidding.is_alive(), "the bid did not wait for the amendment being written"
        release.set()
        amending.join(30)
        bidding.join(30)
    assert set(bid) == {"result"} and set(amended) == {"result"}, (bid, amended)
    sequence_bids()  # the worker gives the bid's pending entry its index
    assert _index(bid["result"]) > amended["result"].ledger_index
    assert not _told_of_the_amendment(company)  # it bid on the amended tender
    tender.refresh_from_db()
    assert tender.submission_deadline == amended["result"].new_submission_deadline
