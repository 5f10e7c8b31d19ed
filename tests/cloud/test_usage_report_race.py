"""Two reports of one hour not yet metered, at the same moment (a provider's retry, or
the reference broker's hourly job beside the provider's own report), are answered as
when they come one after the other."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from sahab.cloud import metering, services
from sahab.cloud.models import Instance, UsageRecord
from tests.threads import in_thread

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(connection.vendor != "postgresql",
                                 reason="needs concurrent writers")]


def _paused_report(market, instance, hour, figures):
    """Two reports of ``hour``: the first held just before its ledger entry (its record
    made and locked, not committed) while the second starts."""
    reached, release = threading.Event(), threading.Event()
    armed = threading.local()
    enqueue = metering.ledger.enqueue

    def paused(event, *args, **kwargs):
        if getattr(armed, "on", False):
            reached.set()
            release.wait(10)
        return enqueue(event, *args, **kwargs)

    def report(size, first=False):
        armed.on = first
        return metering.report_usage(actor=market.provider_user,
                                     instance_id=instance.instance_id, period_start=hour,
                                     size_bytes=size, connections=1)

    first, second = {}, {}
    metering.ledger.enqueue = paused
    try:
        one = in_thread(lambda: report(figures[0], True), first)
        assert reached.wait(15)
        two = in_thread(lambda: report(figures[1]), second)
        two.join(2)
        release.set()
        one.join(30)
        two.join(30)
    finally:
        metering.ledger.enqueue = enqueue
        release.set()
    return first, second


@pytest.mark.parametrize("figures, answer", [((1, 1), "result"), ((1, 2), "refused")],
                         ids=["same figures", "other figures"])
def test_two_reports_of_one_hour_at_once_are_answered_as_one_after_the_other(
        market, figures, answer):
    """Two reports of one hour at once: the second failed on the unique hour (a 500)
    instead of being taken (same figures) or refused as a conflict (other figures)."""
    order = services.place_order(actor=market.it, plan=market.plan("pg-small"), purpose="Web")
    market.work(rounds=3)
    instance = Instance.objects.get(order=order)
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
    Instance.objects.filter(pk=instance.pk).update(activated_at=hour - dt.timedelta(hours=2))
    first, second = _paused_report(market, instance, hour, figures)
    assert "result" in first, first
    assert answer in second, second
    if answer == "refused":
        assert second["refused"].code == "hour_already_reported"
    record = UsageRecord.objects.get(instance=instance, period_start=hour)
    assert (record.size_bytes, record.connections) == (1, 1)
