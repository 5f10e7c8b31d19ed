"""What the ledger says was billed is what the usage table bills.

Before: a provider's report of the running hour made its record bill the whole hour,
even for an instance deleted minutes later; the metering entry counted (at metering's
price) an hour a report had already recorded, which the insert skipped; the reports'
records carried no cost on any entry; and two metering runs at once each put the full
count and cost on the ledger."""

import datetime as dt
import json
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from sahab.cloud import metering, services
from sahab.cloud.models import Instance, InstanceState, UsageRecord
from sahab.core.errors import InvalidInput
from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from tests.threads import in_thread


def _active(market) -> Instance:
    order = services.place_order(actor=market.it, plan=market.plan("pg-small"), purpose="Web")
    market.work(rounds=3)
    instance = Instance.objects.get(order=order)
    assert instance.state == InstanceState.ACTIVE
    return instance


def _entries(type_: str, after: int = 0) -> list[dict]:
    ledger.integrate_pending()
    return [json.loads(bytes(e.body))["data"]
            for e in Entry.objects.filter(type=type_, index__gte=after).order_by("index")]


def _billed(instance: Instance) -> Decimal:
    return UsageRecord.objects.filter(instance=instance).aggregate(c=Sum("cost"))["c"]


def test_the_running_hour_cannot_be_reported(market):
    """The provider reported the hour 30 s after it began, and its record billed the
    hour whole though the instance was deleted 6 minutes in: 0.1 h used, 1 billed."""
    instance = _active(market)
    this_hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    Instance.objects.filter(pk=instance.pk).update(activated_at=this_hour - dt.timedelta(hours=5))
    with pytest.raises(InvalidInput) as refused:
        metering.report_usage(actor=market.provider_user, instance_id=instance.instance_id,
                              period_start=this_hour, size_bytes=1, connections=1,
                              now=this_hour + dt.timedelta(seconds=30))
    assert refused.value.code == "hour_not_over"
    assert not UsageRecord.objects.filter(instance=instance, period_start=this_hour).exists()
    Instance.objects.filter(pk=instance.pk).update(state="deleted",
                                                   ended_at=this_hour + dt.timedelta(minutes=6))
    metering.meter_usage(this_hour + dt.timedelta(hours=2))
    record = UsageRecord.objects.get(instance=instance, period_start=this_hour)
    assert record.hours == Decimal("0.1000")


def test_every_billed_record_is_on_the_ledger_once_at_its_cost(market):
    """A reported hour was counted again by metering (3 records, 0.315 on the ledger, 2
    inserted and 0.450 billed). Now the report's entry carries the cost of the record it
    made, and metering's entry only what metering inserted."""
    instance = _active(market)
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=3)
    Instance.objects.filter(pk=instance.pk).update(activated_at=hour - dt.timedelta(hours=2),
                                                   metered_until=None)
    start = ledger.tree_size()
    metering.report_usage(actor=market.provider_user, instance_id=instance.instance_id,
                          period_start=hour, size_bytes=1, connections=1, now=now)
    Instance.objects.filter(pk=instance.pk).update(state="deleted",
                                                   ended_at=hour + dt.timedelta(minutes=6))
    metering.meter_usage(hour + dt.timedelta(hours=2))
    [report] = _entries("cloud.usage.reported", start)
    [metered] = _entries("cloud.usage.metered", start)
    assert Decimal(report["cost"]) == Decimal("0.150") and Decimal(report["hours"]) == 1
    assert metered["records"] == 2 == UsageRecord.objects.filter(instance=instance).count() - 1
    assert Decimal(report["cost"]) + Decimal(metered["cost"]) == _billed(instance)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent writers")
def test_two_metering_runs_at_once_put_the_cost_on_the_ledger_once(market):
    """Two runs at once (two workers, or the command beside the worker) billed each hour
    once but both wrote the full count and cost: the ledger said twice what was billed.
    Each batch now locks its instances and leaves one another run metered to it."""
    instance = _active(market)
    now = timezone.now()
    start = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=10)
    Instance.objects.filter(pk=instance.pk).update(activated_at=start, metered_until=None)
    before = ledger.tree_size()
    reached, release = threading.Event(), threading.Event()
    armed = threading.local()
    insert = metering._insert

    def paused(rows):
        if getattr(armed, "on", False):  # the first run holds its batch open
            reached.set()
            release.wait(10)
        return insert(rows)

    def run(first=False):
        armed.on = first
        return metering.meter_usage(now)

    one_out, two_out = {}, {}
    metering._insert = paused
    try:
        one = in_thread(lambda: run(True), one_out)
        assert reached.wait(15)
        two = in_thread(run, two_out)
        two.join(2)
        release.set()
        one.join(30)
        two.join(30)
    finally:
        metering._insert = insert
        release.set()
    assert "error" not in one_out and "error" not in two_out, (one_out, two_out)
    entries = _entries("cloud.usage.metered", before)
    assert UsageRecord.objects.filter(instance=instance).count() == 10
    assert sum(e["records"] for e in entries) == 10
    assert sum(Decimal(e["cost"]) for e in entries) == _billed(instance)


def test_hours_before_a_plan_change_are_billed_at_the_former_price(market, settings):
    """Six hours used on pg-small (0.150/h), metered once an upgrade to pg-large had
    finished, were all billed at 2.100/h: metering priced past hours at the price in
    force when it ran. The hours before a change are now metered as it takes effect."""
    instance = _active(market)
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
    now = market.clock = hour + dt.timedelta(minutes=10)  # the worker's clock too
    start = hour - dt.timedelta(hours=6)
    Instance.objects.filter(pk=instance.pk).update(activated_at=start, metered_until=None)
    instance.refresh_from_db()
    settings.CLOUD_APPROVAL_THRESHOLD = Decimal("5000")  # the upgrade needs no approval
    services.request_plan_change(actor=market.it, instance=instance,
                                 plan=market.plan("pg-large"), now=now)
    market.work(rounds=3)
    instance.refresh_from_db()
    assert instance.state == InstanceState.ACTIVE and instance.unit_price == Decimal("2.100")
    metering.meter_usage(now)
    records = UsageRecord.objects.filter(instance=instance)
    assert records.count() == 6
    assert set(records.values_list("unit_price", flat=True)) == {Decimal("0.150")}
