"""The FOCUS 1.2 export checked against the official rule model: every static MUST rule
that applies to sahab's data passes; and the evaluator itself catches broken files."""

import csv
import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from sahab.cloud import focus, metering, services
from sahab.cloud.models import Instance, UsageRecord
from tests.cloud.focus_rules import Model


@pytest.fixture
def usage(market, settings):
    """Two instances metered over three days, one of them changing plan on the way."""
    settings.CLOUD_APPROVAL_THRESHOLD = Decimal("1000")  # the change needs no approval
    now = timezone.now()
    started = now - dt.timedelta(days=3, minutes=20)
    for plan in ("pg-small", "pg-small"):
        services.place_order(actor=market.it, plan=market.plan(plan), purpose="Paie")
    market.work(rounds=3)
    Instance.objects.update(activated_at=started)
    metering.meter_usage(now - dt.timedelta(days=1))
    first = Instance.objects.order_by("pk").first()
    market.clock = now - dt.timedelta(days=1)  # the change takes effect a day ago
    services.request_plan_change(actor=market.it, instance=first,
                                 plan=market.plan("pg-medium"), now=market.clock)
    market.work(rounds=3)
    first.refresh_from_db()
    assert first.plan.name == "pg-medium"
    metering.meter_usage(now)
    return UsageRecord.objects.all()


def test_the_export_passes_every_applicable_must_rule(usage, tmp_path):
    path = tmp_path / "focus.csv"
    rows = focus.write(path)
    assert rows >= 6
    report = Model(focus.SUPPORTED).check(path)
    assert report.failed == {}
    assert len(report.checked) > 250
    for rule in ("BilledCost-C-000-M", "ContractedUnitPrice-C-011-C", "ListUnitPrice-C-010-C",
                 "BillingCurrency-C-003-M", "ServiceSubcategory-C-004-M",
                 "CostAndUsage-D-000-M"):
        assert rule in report.checked


def test_the_export_adds_up_to_the_usage_records(usage, tmp_path):
    path = tmp_path / "focus.csv"
    focus.write(path)
    with open(path, newline="") as f:
        lines = list(csv.DictReader(f))
    billed = sum(Decimal(line["BilledCost"]) for line in lines)
    assert billed == sum(r.cost for r in usage)
    assert {line["BillingCurrency"] for line in lines} == {"TND"}
    assert {line["ContractedUnitPrice"] for line in lines} == {"0.15", "0.6"}


@pytest.mark.parametrize("column,value,rule", [
    ("BillingCurrency", "XYZ", "BillingCurrency-C-003-M"),
    ("ChargeCategory", "Fee", "ChargeCategory-C-003-M"),
    ("BilledCost", "1,5", "BilledCost-C-002-M"),
    ("ChargePeriodStart", "2026-01-01 00:00", "ChargePeriodStart-C-002-M"),
    ("ListCost", "999", "ListCost-C-009-C"),
    ("ServiceSubcategory", "Virtual Machines", "ServiceSubcategory-C-004-M"),
    ("SkuPriceDetails", "not json", "SkuPriceDetails-C-001-M"),
])
def test_the_rule_model_catches_a_broken_export(usage, tmp_path, column, value, rule):
    path = tmp_path / "focus.csv"
    focus.write(path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        lines, fields = list(reader), reader.fieldnames
    lines[0][column] = value
    broken = tmp_path / "broken.csv"
    with open(broken, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(lines)
    assert rule in Model(focus.SUPPORTED).check(broken).failed


def test_a_missing_mandatory_column_fails(usage, tmp_path):
    path = tmp_path / "focus.csv"
    focus.write(path)
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        lines = list(reader)
        fields = [c for c in reader.fieldnames if c != "BilledCost"]
    broken = tmp_path / "broken.csv"
    with open(broken, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(lines)
    assert "CostAndUsage-D-006-M" in Model(focus.SUPPORTED).check(broken).failed
