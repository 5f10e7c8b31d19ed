"""Billing and budgets against the platform's own users: a provider reporting one hour
many times, and a ministry's agents stepping round its approvals and budgets. Each is
refused, and nothing is written or billed."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from sahab.cloud import metering, selectors, services
from sahab.cloud.events import CloudEvent
from sahab.cloud.models import Instance, InstanceState, Order, UsageRecord
from sahab.core.errors import Conflict
from sahab.directory.models import AdministrationKind, Role
from sahab.ledger.models import Entry, PendingEntry
from tests import factories
from tests.cloud.test_api import Caller


def _written(event: CloudEvent) -> int:
    """Ledger entries of ``event``, integrated or still pending."""
    return (Entry.objects.filter(type=event.value).count()
            + PendingEntry.objects.filter(type=event.value, index__isnull=True,
                                          refused="").count())


def _active(market, plan_name: str = "pg-small") -> Instance:
    order = services.place_order(actor=market.it, plan=market.plan(plan_name), purpose="Web")
    market.work(rounds=3)
    instance = Instance.objects.get(order=order)
    assert instance.state == InstanceState.ACTIVE
    return instance


def _started_hours_ago(instance: Instance, hours: int) -> dt.datetime:
    start = (timezone.now() - dt.timedelta(hours=hours)).replace(minute=0, second=0,
                                                                 microsecond=0)
    Instance.objects.filter(pk=instance.pk).update(activated_at=start)
    return start


def test_an_hour_reported_in_many_time_zones_is_billed_once(market):
    """A provider reported one UTC hour 59 times, each at "hh:00" of a zone a minute
    apart, and each report billed one more hour: only hours starting on a UTC hour count."""
    provider = Caller(market.provider_user)
    instance = _active(market)
    start = _started_hours_ago(instance, 5)
    utc_hour = start + dt.timedelta(hours=1)
    # a whole-hour zone names a UTC hour: accepted, as that hour
    reply = provider("post", "/provider/usage", json={
        "instance_id": instance.instance_id, "size_bytes": 1, "connections": 1,
        "period_start": utc_hour.astimezone(dt.timezone(dt.timedelta(hours=1))).isoformat()})
    assert reply.status_code == 201, reply.json()
    records, reports = UsageRecord.objects.count(), _written(CloudEvent.USAGE_REPORTED)
    for minutes in range(1, 60):
        zone = dt.timezone(dt.timedelta(minutes=minutes))
        moment = (utc_hour + dt.timedelta(hours=1, minutes=-minutes)).astimezone(zone)
        assert moment.minute == 0
        reply = provider("post", "/provider/usage", json={
            "instance_id": instance.instance_id, "period_start": moment.isoformat(),
            "size_bytes": 1, "connections": 1})
        assert reply.status_code == 422, reply.json()
        assert reply.json()["code"] == "period_not_an_hour"
    assert UsageRecord.objects.count() == records
    assert _written(CloudEvent.USAGE_REPORTED) == reports
    metering.meter_usage(timezone.now())
    billed = UsageRecord.objects.filter(instance=instance).aggregate(h=Sum("hours"),
                                                                     c=Sum("cost"))
    elapsed = Decimal((timezone.now().replace(minute=0, second=0, microsecond=0) - start)
                      .total_seconds() / 3600)
    assert billed["h"] == elapsed
    assert billed["c"].quantize(Decimal("0.001")) == elapsed * Decimal("0.150")
    assert UsageRecord.objects.get(instance=instance, period_start=utc_hour).reported_at


def test_a_change_to_a_plan_that_needs_approval_is_refused(market):
    """An IT officer ordered a small plan (approved at once), then changed it to a plan
    whose monthly cost needs the finance service's approval, which nobody gave."""
    instance = _active(market)
    large = market.plan("pg-large")
    assert selectors.needs_approval(selectors.monthly_cost(Decimal("2.100")))
    updates = _written(CloudEvent.INSTANCE_UPDATE_REQUESTED)
    reply = Caller(market.it)("post", f"/orders/{instance.order.number}/plan",
                              json={"plan": large.pk})
    assert reply.status_code == 409, reply.json()
    assert reply.json()["code"] == "plan_change_needs_approval"
    market.work(rounds=3)
    instance.refresh_from_db()
    assert instance.state == InstanceState.ACTIVE
    assert instance.plan == market.plan("pg-small") and instance.target_plan is None
    assert instance.unit_price == Decimal("0.150")
    assert _written(CloudEvent.INSTANCE_UPDATE_REQUESTED) == updates


def test_an_upgrade_under_way_keeps_the_budget_at_its_new_price(market, settings):
    """While the broker upgraded an instance, the budget counted it at its old price, so
    orders placed meanwhile spent the room the upgrade had been granted."""
    settings.CLOUD_APPROVAL_THRESHOLD = Decimal("5000")  # the upgrade needs no approval
    now = timezone.now()
    instance = _active(market)
    extra = (Decimal("2.100") - Decimal("0.150")) * selectors.HOURS_PER_MONTH
    check = selectors.budget_check(market.mf, extra, now)
    amount = (check.committed + check.needed + Decimal("1")).quantize(Decimal("0.001"))
    services.set_budget(actor=market.finance, administration=market.mf, year=now.year,
                        amount=amount)
    services.request_plan_change(actor=market.it, instance=instance,
                                 plan=market.plan("pg-large"), now=now)
    orders = Order.objects.count()
    with pytest.raises(Conflict) as refused:
        services.place_order(actor=market.it, plan=market.plan("pg-small"), purpose="Encore",
                             now=now)
    assert refused.value.code == "budget_exceeded"
    assert Order.objects.count() == orders
    assert selectors.committed_until_year_end(market.mf, now) <= amount


def test_trying_a_failed_instance_again_is_refused_when_the_budget_is_full(market, settings):
    """A failed instance counts for nothing in the budget; "Try again" provisioned it
    with no budget check, past a budget already full."""
    now = timezone.now()
    dbaas_url, settings.DBAAS_URL = settings.DBAAS_URL, None  # the broker answers 422
    first = services.place_order(actor=market.it, plan=market.plan("pg-small"),
                                 purpose="A", now=now)
    market.work(rounds=2)
    instance = Instance.objects.get(order=first)
    assert instance.state == InstanceState.FAILED
    settings.DBAAS_URL = dbaas_url
    one = selectors.budget_check(market.mf, selectors.monthly_cost(Decimal("0.150")), now)
    amount = (one.committed + one.needed + Decimal("0.5")).quantize(Decimal("0.001"))
    services.set_budget(actor=market.finance, administration=market.mf, year=now.year,
                        amount=amount)
    services.place_order(actor=market.it, plan=market.plan("pg-small"), purpose="B", now=now)
    retries = _written(CloudEvent.INSTANCE_RETRY_REQUESTED)
    reply = Caller(market.it)("post", f"/orders/{first.number}/retry")
    assert reply.status_code == 409, reply.json()
    assert reply.json()["code"] == "budget_exceeded"
    market.work(rounds=3)
    instance.refresh_from_db()
    assert instance.state == InstanceState.FAILED
    assert _written(CloudEvent.INSTANCE_RETRY_REQUESTED) == retries
    assert selectors.committed_until_year_end(market.mf, now) <= amount


def test_a_units_own_budget_does_not_lift_its_ministrys_cap(market):
    """A unit's administrator gave the unit a budget of its own, far above what the
    ministry's finance service allows the whole ministry, and its orders then fitted."""
    now = timezone.now()
    unit = factories.administration(code="MF-DSI", kind=AdministrationKind.DIRECTORATE,
                                    parent=market.mf)
    unit_admin = factories.agent(administration=unit, roles=[Role.ADMINISTRATION_ADMIN]).user
    unit_it = factories.agent(administration=unit, roles=[Role.IT_OFFICER]).user
    services.set_budget(actor=market.finance, administration=market.mf, year=now.year,
                        amount="10")
    services.set_budget(actor=unit_admin, administration=unit, year=now.year,
                        amount="1000000")
    orders = Order.objects.count()
    with pytest.raises(Conflict) as refused:
        services.place_order(actor=unit_it, plan=market.plan("pg-small"), purpose="x",
                             administration=unit)
    assert refused.value.code == "budget_exceeded"
    assert refused.value.params["amount"] == Decimal("10")  # the ministry's cap is named
    assert Order.objects.count() == orders
    assert selectors.committed_until_year_end(market.mf, now) <= Decimal("10")
