"""Cost and usage export in the FinOps FOCUS 1.2 format (CSV, billing currency TND).

One row per instance, UTC day and unit price: a usage charge priced by the framework
contract (ContractedUnitPrice), with the catalogue's list price beside it. The billing
account is the administration, the sub-account the order; the resource is the service
instance. Custom columns start with ``x_`` as FOCUS requires.

What sahab declares it supports (the FOCUS applicability criteria the export is checked
against in tests/cloud/test_focus.py): negotiated and public list pricing, unit pricing,
usage measurement, sub-accounts, billing on provisioned resources with resource types,
regions. Not supported: commitment discounts, capacity reservations, tags, virtual
currencies, several billing-account or sub-account types.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal

from django.db.models import Max, Sum
from django.db.models.functions import TruncDate

from sahab.cloud.models import Category, Instance, UsageRecord
from sahab.core.downloads import csv_safe_row

SUPPORTED = {"NEGOTIATED_PRICING_SUPPORTED", "PUBLIC_PRICE_LIST_SUPPORTED",
             "UNIT_PRICING_SUPPORTED", "USAGE_MEASUREMENT_SUPPORTED", "SUB_ACCOUNT_SUPPORTED",
             "BILLING_BASED_ON_PROVISIONED_RESOURCES_SUPPORTED",
             "RESOURCE_TYPE_ASSIGNMENT_SUPPORTED", "REGION_SUPPORTED",
             "ACCOUNT_NAMING_SUPPORTED"}

COLUMNS = [
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "ContractedUnitPrice",
    "EffectiveCost", "InvoiceIssuerName", "ListCost", "ListUnitPrice", "PricingCategory",
    "PricingQuantity", "PricingUnit", "ProviderName", "PublisherName", "RegionId",
    "RegionName", "ResourceId", "ResourceName", "ResourceType", "ServiceCategory",
    "ServiceName", "ServiceSubcategory", "SkuId", "SkuMeter", "SkuPriceDetails", "SkuPriceId",
    "SubAccountId", "SubAccountName",
    "x_ContractOcid", "x_AdministrationCode", "x_MaxSizeBytes", "x_MaxConnections",
]

# sahab's categories in FOCUS's ServiceCategory / ServiceSubcategory values.
SERVICE_CATEGORY = {
    Category.DATABASE: ("Databases", "Relational Databases"),
    Category.COMPUTE: ("Compute", "Virtual Machines"),
    Category.STORAGE: ("Storage", "Object Storage"),
    Category.BACKUP: ("Storage", "Backup Storage"),
    Category.NETWORK: ("Networking", "Network Connectivity"),
    Category.OTHER: ("Other", "Other (Other)"),
}


def _when(moment: dt.datetime | dt.date) -> str:
    if isinstance(moment, dt.datetime):
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{moment:%Y-%m-%d}T00:00:00Z"


def _number(value: Decimal) -> str:
    """NumericFormat: plain decimal notation, no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text if text not in ("-0",) else "0"


def _month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    start = day.replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


def _list_price(instance: Instance, contracted: Decimal) -> Decimal:
    """The catalogue's public hourly price in TND, or the contract's when none is listed."""
    for cost in instance.plan.metadata.get("costs") or []:
        amount = (cost.get("amount") or {}).get("tnd")
        if cost.get("unit", "").upper() in ("HOURLY", "HOUR") and amount is not None:
            try:
                return Decimal(str(amount))
            except ArithmeticError:
                break
    return contracted


def _region(instance: Instance) -> tuple[str, str]:
    locations = instance.plan.offering.metadata.get("locations") or \
        instance.plan.offering.broker.provider.location_list or ["Tunis"]
    name = str(locations[0])
    return "tn-" + "".join(c for c in name.lower() if c.isalnum()), name


def daily_charges(usage, *, chunk: int = 2000) -> Iterator[dict]:
    """Usage records summed per instance, UTC day and unit price, with their instance."""
    groups = (usage.annotate(day=TruncDate("period_start", tzinfo=dt.UTC))
              .values("instance_id", "day", "unit_price")
              .annotate(hours=Sum("hours"), cost=Sum("cost"), size=Max("size_bytes"),
                        connections=Max("connections"))
              .order_by("day", "instance_id", "unit_price"))
    instances = Instance.objects.select_related(
        "order__administration", "order__contract__tender",
        "plan__offering__broker__provider__company")
    cache: dict[int, Instance] = {}
    batch: list[dict] = []

    def emit() -> Iterator[dict]:
        missing = {g["instance_id"] for g in batch} - cache.keys()
        if len(cache) + len(missing) > 20000:
            cache.clear()
            missing = {g["instance_id"] for g in batch}
        cache.update(instances.in_bulk(missing))
        for group in batch:
            yield {**group, "instance": cache[group["instance_id"]]}
        batch.clear()

    for group in groups.iterator(chunk_size=chunk):
        batch.append(group)
        if len(batch) >= chunk:
            yield from emit()
    yield from emit()


def row_for(charge: dict) -> dict:
    instance: Instance = charge["instance"]
    order, plan = instance.order, instance.plan
    offering, provider = plan.offering, plan.offering.broker.provider
    hours, price, cost = charge["hours"], charge["unit_price"], charge["cost"]
    list_price = _list_price(instance, price)
    day: dt.date = charge["day"]
    period_start, period_end = _month_bounds(day)
    category, subcategory = SERVICE_CATEGORY.get(offering.category, SERVICE_CATEGORY["other"])
    region_id, region_name = _region(instance)
    return {
        "BilledCost": _number(cost), "BillingAccountId": order.administration.code,
        "BillingAccountName": order.administration.name_fr, "BillingCurrency": "TND",
        "BillingPeriodStart": _when(period_start), "BillingPeriodEnd": _when(period_end),
        "ChargeCategory": "Usage", "ChargeClass": "",
        "ChargeDescription": f"{offering.display_name} {plan.display_name}: instance-hours",
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodStart": _when(day), "ChargePeriodEnd": _when(day + dt.timedelta(days=1)),
        "ConsumedQuantity": _number(hours), "ConsumedUnit": "Hours",
        "ContractedCost": _number(cost), "ContractedUnitPrice": _number(price),
        "EffectiveCost": _number(cost), "InvoiceIssuerName": provider.company.name,
        "ListCost": _number(list_price * hours), "ListUnitPrice": _number(list_price),
        "PricingCategory": "Standard", "PricingQuantity": _number(hours), "PricingUnit": "Hours",
        "ProviderName": provider.company.name, "PublisherName": provider.company.name,
        "RegionId": region_id, "RegionName": region_name,
        "ResourceId": instance.instance_id, "ResourceName": f"{order.number} {order.purpose}"[:200],
        "ResourceType": offering.display_name, "ServiceCategory": category,
        "ServiceName": offering.display_name, "ServiceSubcategory": subcategory,
        "SkuId": plan.plan_id, "SkuMeter": "Instance hours",
        "SkuPriceDetails": json.dumps({"x_PlanName": plan.name}, ensure_ascii=False),
        "SkuPriceId": f"{plan.plan_id}:hour", "SubAccountId": order.number,
        "SubAccountName": order.purpose[:200],
        "x_ContractOcid": order.contract.tender.ocid, "x_AdministrationCode":
            order.administration.code,
        "x_MaxSizeBytes": "" if charge["size"] is None else str(charge["size"]),
        "x_MaxConnections": "" if charge["connections"] is None else str(charge["connections"]),
    }


def rows(usage=None) -> Iterator[dict]:
    usage = UsageRecord.objects.all() if usage is None else usage
    for charge in daily_charges(usage):
        yield row_for(charge)


def csv_lines(usage=None) -> Iterator[str]:
    """The export as CSV text, line by line (for streaming responses and files)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writeheader()
    yield take()
    for row in rows(usage):
        writer.writerow(csv_safe_row(row))  # names come from providers: never a formula
        yield take()


def write(path, usage=None, *, progress: Iterable | None = None) -> int:
    """Write the export to ``path``; returns the number of charge rows."""
    count = -1
    with open(path, "w", encoding="utf-8", newline="") as f:
        for line in csv_lines(usage):
            f.write(line)
            count += 1
            if progress is not None:
                progress.update(1)
    return count
