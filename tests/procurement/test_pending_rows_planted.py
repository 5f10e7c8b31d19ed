"""Rows planted or edited in the database by someone who can write it (not the ledger's
append-only tables: the steps and bids that keep a promise number) never borrow a real
entry's index, and never stop the sequencer, the appends or the tenders' timers: they stay
without an index and the ledger's status reports them."""

import datetime as dt

import pytest
from django.db import connection
from django.test import Client

from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from sahab.ledger.services import Record
from sahab.procurement import services
from sahab.procurement.models import Bid, Step, Tender
from tests import factories
from tests.procurement.bidding import opening_report, run_timers_at
from tests.procurement.conftest import tender_payload
from tests.threads import waits_for_open_transaction

SECOND = dt.timedelta(seconds=1)
TEXT = "Les serveurs sont-ils livrés montés en baie ?"


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


# --- from the review of the fix ---------------------------------------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("edit", ["retyped", "pointed at a bid's entry"])
def test_a_step_edited_while_the_sequencer_copies_gets_no_index_and_holds_nothing(
        world, published_tender, report_at_once, edit):
    """Replayed from the review: a question waits for its index; a database writer
    edits its step (``type='tender.awarded'``, or ``ledger_pending`` = an integrated
    sealed bid's entry) in a transaction kept open while the sequencer runs, then
    commits. Before: the copy checked the row as read, then waited for the writer's lock
    (holding the append lock, so every append waited too) and wrote the index of the
    row's new promise: an award that never happened, or a sealed bid's existence, got a
    real, in-order index on the changes feed, and nothing was reported."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time")
    bid = _pending_bid(world, published_tender)
    ledger.integrate()
    question = _ask(world, published_tender)
    bid_entry = bid.ledger_pending
    assert ledger.promised_index(bid_entry) is not None
    assert ledger.promised_index(question.ledger_pending) is None
    change = {"type": "tender.awarded"} if edit == "retyped" else {"ledger_pending": bid_entry}
    Bid.objects.filter(pk=bid.pk).update(ledger_pending=None)  # frees its number

    editing, sequencing, held_back = waits_for_open_transaction(
        lambda: Step.objects.filter(pk=question.pk).update(**change),
        ledger.integrate_pending)

    assert set(editing) == {"result"} and set(sequencing) == {"result"}, (editing, sequencing)
    assert not held_back, "the sequencer waited for the writer's open transaction"
    ledger.integrate_pending()
    question.refresh_from_db()
    assert question.ledger_index is None
    assert _changes()["items"][-1]["type"] != "tender.awarded"
    assert ledger.pending_state()["rows_without_index"]["procurement.step"] == 1


@pytest.mark.parametrize("promise", [10**12, None])
def test_a_step_whose_promise_number_was_changed_is_reported(world, published_tender,
                                                             report_at_once, promise):
    """Replayed from the review: the question's step's ``ledger_pending`` set to a number
    the log never gave (or emptied). Before: the step waited for good and the status
    said all was well."""
    question = _ask(world, published_tender)
    Step.objects.filter(pk=question.pk).update(ledger_pending=promise)

    ledger.integrate_pending()

    question.refresh_from_db()
    assert question.ledger_index is None
    assert ledger.pending_state()["rows_without_index"] == {"procurement.step": 1}
    assert not ledger.status()["ok"]


def test_planted_rows_cost_the_fill_nothing_and_are_logged_once(world, published_tender,
                                                                 caplog):
    """Replayed from the review: 33,000 steps planted with promise numbers the log never
    gave made every append read them all (0.32 s instead of 5 ms). The fill reads only
    rows whose entry was integrated; rows it refuses are logged once, not at every
    append."""
    Step.objects.bulk_create(Step(tender=published_tender, type="question.asked",
                                  ledger_pending=10**9 + i) for i in range(3000))
    holder = ledger._holders[Step]
    assert ledger._fill_checked(holder, None, None, None) == (0, 0, None)  # none read
    bid = _pending_bid(world, published_tender)
    ledger.integrate()
    planted = Step.objects.create(tender=published_tender, type="question.asked",
                                  ledger_pending=bid.ledger_pending)
    for _ in range(3):
        ledger.fill_indexes(Step)
        ledger.append_many([Record("test.other", "s", {}, "system")])
    refusals = [r for r in caplog.records if f"procurement.Step {planted.pk} " in r.message]
    assert len(refusals) == 1, [r.message for r in refusals]


def test_a_step_refused_at_integration_is_not_given_its_index_late(
        world, published_tender, report_at_once):
    """Replayed from the review: once the step planted with the question's index is
    removed, the worker's tick gave the question that index, below the cursor of every
    mirror that had read the feed since: they never saw it. The worker leaves it
    reported; the operator's ``sahab ledger fill-rows`` copies it knowingly."""
    question = _ask(world, published_tender)
    size = ledger.tree_size()
    planted = Step.objects.create(tender=published_tender, type="tender.awarded",
                                  ledger_index=size)
    ledger.integrate_pending()
    planted.delete()

    ledger.integrate_pending()
    ledger.append_many([Record("test.other", "s", {}, "system")])

    question.refresh_from_db()
    assert question.ledger_index is None
    assert ledger.pending_state()["rows_without_index"] == {"procurement.step": 1}
    from sahab.cli import main

    assert main(["ledger", "fill-rows"]) == 0
    question.refresh_from_db()
    assert question.ledger_index == size
    assert ledger.pending_state()["rows_without_index"] == {}


def test_a_step_planted_with_the_next_index_does_not_stop_the_tenders_next_step(
        world, published_tender, report_at_once):
    """From the review: a step row planted with the index the ledger gives next made the
    tender step that got it (an answer, an award, a close of tendering) fail on the
    unique index, request after request while nothing else appended. Now the honest
    step takes its index and the planted row keeps none, reported."""
    _, company = world["companies"][0]
    reference = published_tender.reference
    question = company.call("post", f"/tenders/{reference}/questions", {"text": TEXT}).json()
    ledger.integrate_pending()
    planted = Step.objects.create(tender=published_tender, type="tender.awarded",
                                  ledger_index=ledger.tree_size())

    answered = world["officer"].call("post", f"/questions/{question['id']}/answer",
                                     {"answer": "Oui, montés et câblés."})

    assert answered.status_code == 200, answered.content
    step = Step.objects.get(tender=published_tender, type="question.answered")
    assert Entry.objects.get(index=step.ledger_index).type == "procurement.question.answered"
    planted.refresh_from_db()
    assert planted.ledger_index is None
    assert ledger.pending_state()["rows_without_index"] == {"procurement.step": 1}


def test_a_step_planted_on_another_tender_with_a_bids_index_does_not_stop_the_opening(
        world, published_tender, report_at_once):
    """From the review: a step planted on another tender with the index of a sealed
    bid's entry made this tender's opening fail on every tick (the opening stores a step
    per bid entry). Now the tender opens and the planted row loses the index."""
    other = world["officer"].call("post", "/tenders", tender_payload()).json()["reference"]
    bid = _pending_bid(world, published_tender)
    ledger.integrate_pending()
    bid.refresh_from_db()
    planted = Step.objects.create(tender=Tender.objects.get(reference=other),
                                  type="tender.awarded", ledger_index=bid.ledger_index)

    run_timers_at(published_tender.submission_deadline + SECOND)
    run_timers_at(published_tender.submission_deadline + 2 * SECOND)

    assert [b["commitment"] for b in opening_report(published_tender)["bids"]] == [
        bid.commitment]
    assert Step.objects.get(ledger_index=bid.ledger_index).tender == published_tender
    planted.refresh_from_db()
    assert planted.ledger_index is None


# --- from the second review -------------------------------------------------------------

def test_refused_rows_never_hide_an_honest_row_behind_them(world, published_tender,
                                                           report_at_once, monkeypatch):
    """From the second review: a fill read the newest promises first and stopped at a
    batch it filled nothing of, so a batch's worth of refused rows with higher promise
    numbers kept an honest row from its index for good. It pages on now."""
    monkeypatch.setattr(ledger, "FILL_BATCH", 2)
    honest, *later = [_pending_bid(world, published_tender, n) for n in range(3)]
    ledger.integrate()
    # a database writer changes the later bids' commitments: not what their entries say
    for n, bid in enumerate(later):
        Bid.objects.filter(pk=bid.pk).update(commitment=f"{n}" * 64)

    ledger.integrate_pending()

    honest.refresh_from_db()
    assert honest.ledger_index == ledger.promised_index(honest.ledger_pending) is not None
    assert ledger.pending_state()["rows_without_index"] == {"procurement.bid": 2}


def test_a_step_planted_with_a_bids_index_on_the_same_tender_loses_it_at_the_opening(
        world, published_tender, report_at_once):
    """From the second review: the opening skipped every index a step of the tender
    held already, so a step planted on the tender itself with a bid's index kept it, and
    the bid's step was never stored. Only the bid's own step counts as stored now."""
    bid = _pending_bid(world, published_tender)
    ledger.integrate_pending()
    bid.refresh_from_db()
    planted = Step.objects.create(tender=published_tender, type="tender.awarded",
                                  ledger_index=bid.ledger_index)

    run_timers_at(published_tender.submission_deadline + SECOND)
    run_timers_at(published_tender.submission_deadline + 2 * SECOND)

    assert Step.objects.get(ledger_index=bid.ledger_index).type == "bid.submitted"
    planted.refresh_from_db()
    assert planted.ledger_index is None


def test_the_opening_never_takes_its_index_from_another_tenders_bid_step(
        world, published_tender):
    """From the second review: a tender given, in the database, another opened tender's
    bid tag would read that tender's bid entries at its own opening, and took the index
    from its honest bid steps. A step of the entry's type on the entry's tender keeps
    it."""
    bid = _pending_bid(world, published_tender)
    ledger.integrate_pending()
    bid.refresh_from_db()
    run_timers_at(published_tender.submission_deadline + SECOND)
    run_timers_at(published_tender.submission_deadline + 2 * SECOND)
    entry = {"type": "procurement.bid.submitted",
             "subject": f"sealed-bids:{published_tender.bid_tag}"}

    assert services._evict_squatters({bid.ledger_index: entry}) == {bid.ledger_index}

    step = Step.objects.get(ledger_index=bid.ledger_index)
    assert (step.tender_id, step.type) == (published_tender.pk, "bid.submitted")


def test_pages_show_a_row_with_neither_index_nor_promise(world, published_tender):
    """From the second review: a step (or a letter's receipt) whose index and promise
    number were both emptied in the database made its page fail (a link to promise
    None)."""
    question = _ask(world, published_tender)
    Step.objects.filter(pk=question.pk).update(ledger_pending=None)

    page = Client().get(f"/tenders/{published_tender.reference}/")

    assert page.status_code == 200


def test_the_database_refuses_a_bid_tag_copied_onto_another_tender(world, published_tender):
    """From the second review: a tender given another tender's bid tag in the database
    would read that tender's sealed bids at its own opening. Two tenders never share a
    tag now (an unpublished tender has none)."""
    from django.db import IntegrityError, transaction

    other = Tender.objects.get(
        reference=world["officer"].call("post", "/tenders", tender_payload()).json()["reference"])
    assert other.bid_tag == ""
    with pytest.raises(IntegrityError), transaction.atomic():
        Tender.objects.filter(pk=other.pk).update(bid_tag=published_tender.bid_tag)
