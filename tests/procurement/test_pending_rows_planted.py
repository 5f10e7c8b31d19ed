"""Rows planted or edited in the database by someone who can write it (not the ledger's
append-only tables: the steps and bids that keep a promise number) never borrow a real
entry's index, and never stop the sequencer, the appends or the tenders' timers: they stay
without an index and the ledger's status reports them."""

import pytest
from django.test import Client

from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from sahab.ledger.services import Record
from sahab.procurement import services
from sahab.procurement.models import Bid, Step
from tests import factories

TEXT = "Les serveurs sont-ils livrés montés en baie ?"


@pytest.fixture
def report_at_once(monkeypatch):
    """The status reports a row left without its index once its entry is older than the
    merge delay; here at once."""
    monkeypatch.setattr(ledger, "MAX_MERGE_DELAY_SECONDS", 0)


def _ask(world, tender, text: str = TEXT) -> Step:
    """A company's question, committed, its entry still pending (the sequencer not run)."""
    services.ask_question(actor=world["companies"][0][1].user, tender=tender, text=text)
    return Step.objects.filter(type="question.asked").latest("id")


def _changes(cursor: str = "") -> dict:
    return Client().get("/api/procurement/changes", {"cursor": cursor}).json()


def _pending_bid(world, tender, company: int = 0) -> Bid:
    """A bid committed, its entry still pending (its server stopped before sequencing)."""
    user = world["companies"][company][1].user
    envelope = factories.sealed(tender, user, {"1": "100000"})
    return services._store_bid(user, tender, envelope, services._now(None))


def test_a_step_planted_with_the_next_index_stops_neither_appends_nor_the_sequencer(
        world, published_tender, report_at_once):
    """Replayed from the review: a question waits for its index; a database writer
    plants ``Step(type="tender.awarded", ledger_index=<the size of the log>)``, the index
    the sequencer is about to give the question. Before: copying that index to the
    question's step, in the transaction that integrates it, broke the unique constraint,
    so every integration and every append of the platform failed until the row was
    removed."""
    question = _ask(world, published_tender)
    size = ledger.tree_size()
    Step.objects.create(tender=published_tender, type="tender.awarded", ledger_index=size)

    appended = ledger.append_many([Record("test.other", "s", {}, "system")])

    # the append integrated the question first, as always, and went on
    assert appended[0].index == size + 1
    assert ledger.promised_index(question.ledger_pending) == size
    ledger.integrate_pending()  # the worker's timer goes on too
    question.refresh_from_db()
    assert question.ledger_index is None  # the planted row holds its index
    later = _ask(world, published_tender, TEXT + " (bis)")
    ledger.integrate_pending()
    later.refresh_from_db()
    assert later.ledger_index == size + 2
    assert ledger.pending_state()["rows_without_index"] == {"procurement.step": 1}
    assert not ledger.status()["ok"]


@pytest.mark.parametrize("how", ["planted", "retyped"])
def test_a_step_holding_a_questions_promise_under_another_type_gets_no_index(
        world, published_tender, report_at_once, how):
    """Replayed from the review: ``Step(type="tender.awarded", ledger_pending=<a
    question's promise>)`` planted in the database (or the question's own step retyped
    so). Before: the fill copied whatever entry ``ledger_pending`` named, so the award
    that never happened got a real, in-order index and reached every mirror through the
    changes feed. Only a question's step may hold a question's entry now."""
    question = _ask(world, published_tender)
    promise = question.ledger_pending
    if how == "planted":
        question.delete()
        Step.objects.create(tender=published_tender, type="tender.awarded",
                            ledger_pending=promise)
    else:
        Step.objects.filter(pk=question.pk).update(type="tender.awarded")
    cursor = _changes()["next_cursor"]

    ledger.integrate_pending()

    awarded = Step.objects.get(ledger_pending=promise)
    assert awarded.type == "tender.awarded" and awarded.ledger_index is None
    entry = Entry.objects.get(index=ledger.promised_index(promise))
    assert entry.type == "procurement.question.asked"  # the log itself is unchanged
    assert _changes(cursor)["items"] == []
    assert ledger.pending_state()["rows_without_index"] == {"procurement.step": 1}


def test_a_step_naming_a_bids_pending_entry_gets_no_index(world, published_tender,
                                                          report_at_once):
    """A question's step planted to borrow a sealed bid's entry (another subject, another
    type) gets no index; the bid gets its own."""
    bid = _pending_bid(world, published_tender)
    planted = Step.objects.create(tender=published_tender, type="question.asked",
                                  ledger_pending=bid.ledger_pending)

    ledger.integrate_pending()

    bid.refresh_from_db()
    planted.refresh_from_db()
    assert bid.ledger_index == ledger.promised_index(bid.ledger_pending) is not None
    assert planted.ledger_index is None
    assert ledger.pending_state()["rows_without_index"] == {"procurement.step": 1}


def test_a_bid_naming_a_questions_pending_entry_gets_no_index(world, published_tender,
                                                             report_at_once):
    """A sealed bid's row pointed, in the database, at a question's pending entry.
    Before: the bid got the question's index, and its receipt proved an entry that is no
    bid; the question's step still gets its own."""
    bid = _pending_bid(world, published_tender)
    question = _ask(world, published_tender)
    Bid.objects.filter(pk=bid.pk).update(ledger_pending=question.ledger_pending)

    ledger.integrate()
    services.advance_tenders()  # the worker's tick copies the bids' indexes

    bid.refresh_from_db()
    question.refresh_from_db()
    assert bid.ledger_index is None
    assert question.ledger_index == ledger.promised_index(question.ledger_pending) is not None
    assert ledger.pending_state()["rows_without_index"] == {"procurement.bid": 1}


def test_the_admin_status_page_names_the_tables_with_such_rows(world, published_tender,
                                                              report_at_once, admin_client):
    question = _ask(world, published_tender)
    Step.objects.filter(pk=question.pk).update(type="tender.awarded")
    ledger.integrate_pending()

    page = admin_client.get("/admin/ledger/checkpoint/status/", HTTP_ACCEPT_LANGUAGE="fr")

    assert page.status_code == 200
    text = page.content.decode()
    assert "Lignes laissées sans l'index de leur entrée" in text
    assert "<strong>procurement.step: 1</strong>" in text
    assert "Entrées en attente du séquenceur</th><td>0</td>" in text
