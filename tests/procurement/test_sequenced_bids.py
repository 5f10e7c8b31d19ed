"""Bids go through the ledger's sequencer: the bid's transaction writes a pending entry
without the ledger's lock, the company gets the log's signed promise at once, and the
worker's sequencer gives the entry its index in a batch; a bid stays pending until then,
is integrated before the close of tendering, and is opened."""

import base64
import json

from django.test import Client

from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from sahab.procurement import services
from sahab.procurement.models import Bid
from tests import factories
from tests.procurement.bidding import opening_report, run_timers_at, sequence_bids

SECOND = __import__("datetime").timedelta(seconds=1)


def test_the_company_gets_a_promise_at_once_and_the_index_it_promised_after_the_sequencer(
        world, published_tender):
    company = world["companies"][0][1]
    response = company.call("post", f"/tenders/{published_tender.reference}/bids", {
        "envelope": factories.sealed(published_tender, company.user,
                                     {"1": "100000"}).decode()})
    assert response.status_code == 201, response.content
    receipt = response.json()
    promise = ledger.open_promise(receipt["promise"])  # signed by the log's key
    # the request neither waited for the tree nor wrote it
    assert receipt["ledger_index"] is None and receipt["receipt_url"] is None
    assert ledger.promised_index(promise) is None
    assert company.client.get(receipt["promise_url"]).json()["index"] is None
    sequence_bids()  # the worker, within a second
    state = company.client.get(receipt["promise_url"]).json()
    assert state["index"] == ledger.promised_index(promise) is not None
    assert ledger.leaf_hash_of(state["index"]) == promise.leaf_hash
    assert state["leaf_hash"] == base64.b64encode(promise.leaf_hash).decode()
    assert state["receipt_url"].endswith(f"/ledger/entries/{state['index']}/receipt")
    assert Bid.objects.get(pk=receipt["bid"]).ledger_index == state["index"]


def _bid_whose_server_stopped_after_its_commit(tender, company_user) -> Bid:
    """The bid's transaction committed; the process died before the sequencer ran."""
    envelope = factories.sealed(tender, company_user, {"1": "100000"})
    return services._store_bid(company_user, tender, envelope, services._now(None))


def test_a_bid_left_pending_by_a_stopped_server_is_shown_and_then_integrated(
        world, published_tender):
    company = world["companies"][0][1]
    bid = _bid_whose_server_stopped_after_its_commit(published_tender, company.user)
    bid.refresh_from_db()
    assert bid.ledger_index is None and bid.ledger_pending is not None
    mine = company.call("get", "/bids").json()
    assert [b["ledger_index"] for b in mine] == [None]
    web = Client()
    web.force_login(company.user)
    page = web.get(f"/tenders/{published_tender.reference}/")
    assert page.status_code == 200
    assert f"/ledger/promises/{bid.ledger_pending}".encode() in page.content
    ledger.integrate_pending()  # the worker's timer
    services.advance_tenders()  # its tick gives the bid its index
    bid.refresh_from_db()
    assert bid.ledger_index is not None
    assert ledger.leaf_hash_of(bid.ledger_index) == ledger.promise_of(
        bid.ledger_pending).leaf_hash


def test_a_pending_bid_is_in_the_log_before_the_close_of_tendering_and_is_opened(
        world, published_tender):
    company = world["companies"][0][1]
    bid = _bid_whose_server_stopped_after_its_commit(published_tender, company.user)
    run_timers_at(published_tender.submission_deadline + SECOND)
    run_timers_at(published_tender.submission_deadline + 2 * SECOND)
    bid.refresh_from_db()
    closed = Entry.objects.get(type="procurement.tender.tendering_closed",
                               subject=f"tender:{published_tender.reference}")
    assert bid.ledger_index is not None and bid.ledger_index < closed.index
    entry = json.loads(bytes(Entry.objects.get(index=bid.ledger_index).body))
    assert entry["data"]["commitment"] == bid.commitment
    assert [b["commitment"] for b in opening_report(published_tender)["bids"]] == [
        bid.commitment]


def test_a_bid_row_without_ledger_index_shows_on_the_public_pages_after_the_opening(
        world, published_tender, client):
    """An insider's bid row with neither index nor promise is rejected at the opening and
    named; the public page and API show it, they do not fail."""
    import datetime as dt

    import time_machine

    company = world["companies"][0][1]
    assert company.bid(published_tender.reference, {"1": "100000"}).status_code == 201
    real = Bid.objects.get(tender=published_tender)
    Bid.objects.create(tender=published_tender, company=world["companies"][1][0],
                       status="submitted", envelope=bytes(real.envelope) + b"x",
                       commitment="e" * 64)
    with time_machine.travel(published_tender.submission_deadline + dt.timedelta(seconds=1)):
        services.advance_tenders()
        services.advance_tenders()
    published_tender.refresh_from_db()
    assert published_tender.opened_at is not None
    assert client.get(f"/tenders/{published_tender.reference}/").status_code == 200
    detail = company.call("get", f"/tenders/{published_tender.reference}")
    assert detail.status_code == 200
    assert sorted(b["ledger_index"] is None for b in detail.json()["bids"]) == [False, True]
