"""A question's ledger entry is written pending, as a bid's: companies asking before the
enquiry deadline never queue on the ledger's lock nor hold up other writes; the question's
step shows the log's promise until the worker's sequencer gives it its index."""

import pytest
from django.db import connection
from django.test import Client

from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from sahab.ledger.services import Record
from sahab.procurement import services
from sahab.procurement.models import Step
from tests.threads import waits_for_open_transaction

TEXT = "Les serveurs sont-ils livrés montés en baie ?"


def _changes(cursor: str = "") -> dict:
    return Client().get("/api/procurement/changes", {"cursor": cursor}).json()


def test_a_question_is_promised_at_once_and_indexed_by_the_sequencer(world, published_tender):
    reference = published_tender.reference
    _, company = world["companies"][0]
    before = _changes()
    asked = company.call("post", f"/tenders/{reference}/questions", {"text": TEXT})
    assert asked.status_code == 201, asked.content
    step = Step.objects.get(tender=published_tender, type="question.asked")
    assert step.ledger_index is None and step.ledger_pending is not None
    promise_url = f"http://testserver/ledger/promises/{step.ledger_pending}"
    # the API and the page show the promise, and a mirror's feed waits for the index
    shown = company.call("get", f"/tenders/{reference}").json()["steps"][-1]
    assert shown["type"] == "question.asked" and shown["ledger_index"] is None
    assert shown["promise_url"] == promise_url
    page = Client().get(f"/tenders/{reference}/").content.decode()
    assert f'href="/ledger/promises/{step.ledger_pending}"' in page
    assert _changes(before["next_cursor"])["items"] == []

    ledger.integrate_pending()  # the worker's timer, every second

    step.refresh_from_db()
    assert step.ledger_index == ledger.promised_index(step.ledger_pending) is not None
    entry = Entry.objects.get(index=step.ledger_index)
    assert (entry.type, entry.subject) == ("procurement.question.asked", f"tender:{reference}")
    shown = company.call("get", f"/tenders/{reference}").json()["steps"][-1]
    assert (shown["ledger_index"], shown["promise_url"]) == (step.ledger_index, None)
    assert [(i["type"], i["ledger_index"]) for i in _changes(before["next_cursor"])["items"]] \
        == [("question.asked", step.ledger_index)]
    assert f'href="/ledger/view/{step.ledger_index}/"' in \
        Client().get(f"/tenders/{reference}/").content.decode()


def test_a_mirror_never_sees_a_later_step_before_the_question_it_follows(
        world, published_tender):
    """The answer's append integrates the pending question first (commit order): the
    question's step gets its index in that same transaction, so the feed never lists the
    answer (and moves its cursor past it) while the question still has no index, which
    would hide the question from every mirror for good."""
    reference = published_tender.reference
    _, company = world["companies"][0]
    cursor = _changes()["next_cursor"]
    question = company.call("post", f"/tenders/{reference}/questions", {"text": TEXT}).json()
    answered = world["officer"].call("post", f"/questions/{question['id']}/answer",
                                     {"answer": "Oui, montés et câblés."})
    assert answered.status_code == 200, answered.content
    items = _changes(cursor)["items"]  # no sequencer tick in between
    assert [i["type"] for i in items] == ["question.asked", "question.answered"]
    assert items[1]["ledger_index"] == items[0]["ledger_index"] + 1


def test_only_a_step_that_publishes_nothing_may_wait_for_its_index(published_tender):
    from sahab.procurement import ocds
    from sahab.procurement.events import ProcurementEvent

    with pytest.raises(ValueError, match="may wait for its index"):
        services._pending_step(published_tender, ProcurementEvent.QUESTION_ANSWERED,
                               "system", {})
    # a release's id and date come from its step's index
    assert not {e.value.removeprefix("procurement.") for e in services.PENDING_STEPS} \
        & set(ocds.STEP_TAGS)


@pytest.mark.django_db(transaction=True)
def test_an_open_question_does_not_hold_back_other_writes(world, published_tender):
    """Before: the question appended its entry under the ledger's lock and held it until
    its commit, so every write of the platform (another tender's step, an order, a
    directory change) queued behind a company's question. Now another change appends
    and commits while the question's transaction is still open."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time whatever the ledger does")
    _, company = world["companies"][0]
    size = ledger.tree_size()
    asking, other, held_back = waits_for_open_transaction(
        lambda: services.ask_question(actor=company.user, tender=published_tender, text=TEXT),
        lambda: ledger.append_many([Record("test.other", "s", {}, "system")]))
    assert set(asking) == {"result"} and set(other) == {"result"}, (asking, other)
    assert not held_back, "the other write waited for the open question's transaction"
    ledger.integrate_pending()
    # in commit order, dense: the other change committed first
    assert list(Entry.objects.filter(index__gte=size).order_by("index")
                .values_list("type", flat=True)) == ["test.other", "procurement.question.asked"]
    assert Step.objects.get(type="question.asked").ledger_index == size + 1
