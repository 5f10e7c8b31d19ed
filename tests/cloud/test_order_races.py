"""Two orders placed at the same moment by the agents of one administration: the budget
check of the second must see the first, so that together they never commit more than
the budget (PostgreSQL: SQLite runs one writing transaction at a time)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from sahab.cloud import selectors, services
from sahab.cloud.models import Order
from sahab.directory.models import Role
from sahab.ledger import services as ledger
from tests import factories
from tests.cloud.conftest import PRICES
from tests.threads import in_thread

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql",
                                 reason="SQLite runs one writing transaction at a time: "
                                        "there is no interleaving to race")]


def _race(first_order, second_order) -> tuple[dict, dict]:
    """``first_order`` runs in a thread and stops just before its ``cloud.order.placed``
    entry, its checks done and its locks held; ``second_order`` is placed meanwhile in
    another thread; then the first goes on. Returns both outcomes."""
    reached, release = threading.Event(), threading.Event()
    armed = threading.local()
    record = services.ledger.enqueue

    def paused(event, *args, **kwargs):
        if event == "cloud.order.placed" and getattr(armed, "on", False):
            reached.set()
            release.wait(10)
        return record(event, *args, **kwargs)

    def armed_first():
        armed.on = True
        return first_order()

    first, second = {}, {}
    services.ledger.enqueue = paused
    try:
        ordering = in_thread(armed_first, first)
        assert reached.wait(15), first
        other = in_thread(second_order, second)
        other.join(3)
        release.set()
        ordering.join(30)
        other.join(30)
    finally:
        services.ledger.enqueue = record
        release.set()
    return first, second


def _budget(market, administration, finance, times: str) -> None:
    """A budget for ``times`` pg-small orders until the end of the year."""
    now = timezone.now()
    needed = selectors.monthly_cost(Decimal(PRICES["pg-small"])) * selectors.months_left(now)
    services.set_budget(actor=finance, administration=administration, year=now.year,
                        amount=str((needed * Decimal(times)).quantize(Decimal("0.001"))))


def test_two_orders_at_once_never_commit_more_than_the_budget(market):
    """The first order stops after its checks; the second, on the same budget, waits for
    it and is then refused: only one fits, and neither fails with a database error."""
    _budget(market, market.mf, market.finance, "1.5")

    def order():
        return services.place_order(actor=market.it, plan=market.plan("pg-small"),
                                    purpose="Base RH")

    first, second = _race(order, order)
    assert set(first) == {"result"} and set(second) == {"refused"}, (first, second)
    assert second["refused"].code == "budget_exceeded"
    assert Order.objects.filter(administration=market.mf).count() == 1


def test_two_orders_of_two_budgets_at_once_both_go_in_under_their_own_numbers(market):
    """Orders of two ministries do not wait for each other; the second takes the next
    number the first would have drawn, and the first draws the one after it."""
    other = factories.administration(code="MS")
    _budget(market, market.mf, market.finance, "3")
    _budget(market, other, factories.agent(administration=other, roles=[Role.FINANCE]).user,
            "3")
    it_other = factories.agent(administration=other, roles=[Role.IT_OFFICER]).user

    first, second = _race(
        lambda: services.place_order(actor=market.it, plan=market.plan("pg-small"),
                                     purpose="Base RH"),
        lambda: services.place_order(actor=it_other, plan=market.plan("pg-small"),
                                     purpose="Dossier patient"))
    assert set(first) == {"result"} and set(second) == {"result"}, (first, second)
    numbers = sorted(Order.objects.values_list("number", flat=True))
    assert len(set(numbers)) == 2 and first["result"].number == numbers[1]
    ledger.integrate_pending()  # the worker's sequencer
    for order in Order.objects.all():
        entry = ledger.get_entry(order.ledger_index)
        assert entry.subject == f"cloud:order:{order.number}"
