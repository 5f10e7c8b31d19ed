"""An order's ledger entries are written pending, as a bid's: the order holds its budget's
row until its commit, never the ledger's lock, and gets the log's signed promise at once;
the worker's sequencer gives the entries their indexes and copies the order's to its row."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from sahab.cloud import services
from sahab.cloud.models import Order
from sahab.ledger import merkle
from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from sahab.ledger.services import Record
from tests.cloud.test_api import Caller
from tests.threads import waits_for_open_transaction

HOUR = dt.timedelta(hours=1)
HOURS_5 = 5 * HOUR


def _types_from(index: int) -> list[str]:
    return list(Entry.objects.filter(index__gte=index).order_by("index")
                .values_list("type", flat=True))


def test_an_order_gets_a_promise_at_once_and_its_index_from_the_sequencer(market):
    order = services.place_order(actor=market.it, plan=market.plan("pg-small"),
                                 purpose="Paie")
    assert order.ledger_index is None and order.ledger_pending is not None
    promise = ledger.open_promise(order.promise.signed())  # verifies with the log's key
    assert promise.pending == order.ledger_pending
    ledger.integrate_pending()  # the worker's timer, every second
    order.refresh_from_db()
    entry = Entry.objects.get(index=order.ledger_index)
    assert merkle.leaf_hash(bytes(entry.body)) == promise.leaf_hash
    assert entry.subject == f"cloud:order:{order.number}"
    # approved at once (under the threshold): the instance's request follows the order
    assert _types_from(order.ledger_index) == ["cloud.order.placed", "cloud.instance.requested"]


def test_the_api_hands_the_promise_then_the_index(market):
    it = Caller(market.it)
    plan = Caller()("get", "/catalogue").json()[0]["plan"]
    placed = it("post", "/orders", json={"plan": plan, "purpose": "GRH",
                                        "parameters": {"environment": "production"}})
    assert placed.status_code == 201, placed.json()
    body = placed.json()
    assert body["ledger_index"] is None
    pending = ledger.open_promise(body["promise"]).pending
    assert body["promise_url"] == f"http://testserver/ledger/promises/{pending}"
    ledger.integrate_pending()
    shown = it("get", f"/orders/{body['number']}").json()
    assert shown["ledger_index"] == ledger.promised_index(pending) is not None
    assert shown["promise"] is None  # handed once, with the order; promise_url stays


@pytest.mark.django_db(transaction=True)
def test_an_open_order_does_not_hold_back_other_writes(market):
    """Before: the order appended its entry under the ledger's lock and held it until its
    commit, so every write of the platform (a bid, a mail receipt, another budget's order)
    queued behind an order whose transaction was slow. Now another change appends and
    commits while the order's transaction is still open."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time whatever the ledger does")
    plan = market.plan("pg-small")
    ledger.integrate_pending()  # the market's own entries, written pending
    size = ledger.tree_size()
    ordered, other, held_back = waits_for_open_transaction(
        lambda: services.place_order(actor=market.it, plan=plan, purpose="Paie"),
        lambda: ledger.append_many([Record("test.other", "s", {}, "system")]))
    assert set(ordered) == {"result"} and set(other) == {"result"}, (ordered, other)
    assert not held_back, "the other write waited for the open order's transaction"
    ledger.integrate_pending()
    order_row = Order.objects.get(pk=ordered["result"].pk)
    # in commit order, dense: the other change committed first
    assert _types_from(size) == ["test.other", "cloud.order.placed", "cloud.instance.requested"]
    assert order_row.ledger_index == size + 1


def test_an_order_pointed_at_another_entry_gets_no_index(market, report_at_once):
    """An order's row pointed, in the database, at its instance's pending entry (the same
    subject, another event). Before: the order got that entry's index, and its receipt
    proved an entry that places no order. Now it stays without one and the status says
    so."""
    from sahab.ledger.models import PendingEntry

    order = services.place_order(actor=market.it, plan=market.plan("pg-small"),
                                 purpose="Paie")
    instance = PendingEntry.objects.filter(type="cloud.instance.requested").latest("id")
    Order.objects.filter(pk=order.pk).update(ledger_pending=instance.pk)

    ledger.integrate_pending()

    order.refresh_from_db()
    assert order.ledger_index is None
    assert ledger.pending_state()["rows_without_index"] == {"cloud.order": 1}


@pytest.mark.django_db(transaction=True)
def test_an_open_usage_report_does_not_hold_back_other_writes(market):
    """Before: a provider's usage report (one per instance and hour, the cloud's busiest
    write) and every other cloud change (an approval, a binding, the worker's provisioning
    steps) appended under the ledger's lock and held it until its commit. Now another
    change appends and commits while the report's transaction is still open, and the
    report's entry follows it in the log."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time whatever the ledger does")
    from sahab.cloud import metering
    from sahab.cloud.models import Instance
    from tests.threads import append_beside_open_change

    services.place_order(actor=market.it, plan=market.plan("pg-small"), purpose="Web")
    market.work(rounds=3)
    instance = Instance.objects.get()
    Instance.objects.filter(pk=instance.pk).update(activated_at=timezone.now() - HOURS_5)
    hour = (timezone.now() - 2 * HOUR).replace(minute=0, second=0, microsecond=0)
    added = append_beside_open_change(lambda: metering.report_usage(
        actor=market.provider_user, instance_id=instance.instance_id, period_start=hour,
        size_bytes=1024, connections=1))
    assert added[:2] == ["test.other", "cloud.usage.reported"]
