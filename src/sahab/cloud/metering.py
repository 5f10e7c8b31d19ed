"""Hourly usage: one record per instance and hour it existed, priced at the contract's
hourly rate; providers add what they measured (size, connections) through usage reports.
Budgets are checked after each metering run and alert at their thresholds."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from sahab.cloud import selectors
from sahab.cloud.errors import CloudError
from sahab.cloud.events import CloudEvent
from sahab.cloud.models import Alert, Budget, Instance, UsageRecord
from sahab.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sahab.directory import selectors as directory
from sahab.directory.models import Administration
from sahab.ledger import services as ledger

HOUR = dt.timedelta(hours=1)
ONE = Decimal(1)



def _floor_hour(moment: dt.datetime) -> dt.datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _fraction(instance: Instance, hour: dt.datetime) -> Decimal:
    """The part of ``hour`` during which the instance existed (first and last are partial)."""
    start = max(hour, instance.activated_at)
    end = min(hour + HOUR, instance.ended_at or hour + HOUR)
    seconds = max((end - start).total_seconds(), 0)
    return (Decimal(seconds) / Decimal(3600)).quantize(Decimal("0.0001"))


def _record_for(instance: Instance, hour: dt.datetime) -> UsageRecord:
    whole = instance.activated_at <= hour and (
        instance.ended_at is None or instance.ended_at >= hour + HOUR)
    hours = ONE if whole else _fraction(instance, hour)  # only the first and last are partial
    return UsageRecord(
        instance=instance, administration_id=instance.order.administration_id,
        provider_id=instance.plan.offering.broker.provider_id, period_start=hour, hours=hours,
        unit_price=instance.unit_price, cost=hours * instance.unit_price)


def _hours_to_meter(instance: Instance, until: dt.datetime) -> list[dt.datetime]:
    """Complete hours from the last metered one up to ``until`` (or the end of the instance)."""
    hour = _floor_hour(instance.metered_until or instance.activated_at)
    stop = min(until, instance.ended_at) if instance.ended_at else until
    hours = []
    while hour < stop and hour + HOUR <= until:
        hours.append(hour)
        hour += HOUR
    return hours


_COLUMNS = ("instance_id", "administration_id", "provider_id", "period_start", "hours",
            "unit_price", "cost")


def _rows(instance: Instance, hours: list[dt.datetime]) -> tuple[list[tuple], Decimal]:
    """The instance's usage rows for these hours, ready for the driver, and their cost."""
    ops = connection.ops
    head = (instance.pk, instance.order.administration_id,
            instance.plan.offering.broker.provider_id)
    price = instance.unit_price
    whole = (ops.adapt_decimalfield_value(ONE), ops.adapt_decimalfield_value(price),
             ops.adapt_decimalfield_value(price))
    rows, total = [], Decimal(0)
    for hour in hours:
        record = _record_for(instance, hour) if hour < instance.activated_at or (
            instance.ended_at and instance.ended_at < hour + HOUR) else None
        if record is None:  # a whole hour: the common case, no Decimal arithmetic
            rows.append((*head, ops.adapt_datetimefield_value(hour), *whole))
            total += price
        else:
            rows.append((*head, ops.adapt_datetimefield_value(hour),
                         ops.adapt_decimalfield_value(record.hours),
                         ops.adapt_decimalfield_value(price),
                         ops.adapt_decimalfield_value(record.cost)))
            total += record.cost
    return rows, total


def _insert(rows: list[tuple]) -> None:
    """Insert usage rows, skipping hours already billed (unique instance and hour).

    Through the driver's executemany: the ORM's bulk_create spends most of its time
    preparing each field of millions of rows (bench/bench_cloud.py).
    """
    ops = connection.ops
    table = ops.quote_name(UsageRecord._meta.db_table)
    columns = ", ".join(ops.quote_name(c) for c in _COLUMNS)
    statement = (f"INSERT INTO {table} ({columns}) VALUES "  # noqa: S608 (names from the model)
                 f"({', '.join(['%s'] * len(_COLUMNS))}) "
                 "ON CONFLICT (instance_id, period_start) DO NOTHING")
    with connection.cursor() as cursor:
        cursor.executemany(statement, rows)


def meter_usage(now: dt.datetime | None = None, *, batch: int = 5000, progress=None) -> int:
    """Create the usage records of every complete hour not yet metered; returns how many.

    Runs hourly (and catches up after downtime); records are unique per instance and
    hour, so a run repeated by two workers cannot bill an hour twice.
    """
    now = now or timezone.now()
    until = _floor_hour(now)
    pending = Instance.objects.filter(activated_at__isnull=False).filter(
        Q(metered_until__isnull=True) | Q(metered_until__lt=until)).filter(
        Q(ended_at__isnull=True) | Q(metered_until__isnull=True) |
        Q(metered_until__lt=F("ended_at"))).select_related("order", "plan__offering__broker")
    created = 0
    cost = Decimal(0)
    touched: set[int] = set()
    records: list[tuple] = []
    metered: list[tuple[int, dt.datetime]] = []

    def flush() -> None:
        nonlocal created, cost
        with transaction.atomic():
            _insert(records)
            for pk, until_ in metered:
                Instance.objects.filter(pk=pk).update(metered_until=until_)
            ledger.enqueue(
                CloudEvent.USAGE_METERED,
                "cloud:usage",
                "system",
                {
                    "records": len(records),
                    "instances": len(metered),
                    "until": until.isoformat(),
                    "cost": str(cost),
                },
            )
        created += len(records)
        if progress:
            progress(len(metered))
        records.clear()
        metered.clear()
        cost = Decimal(0)

    for instance in pending.iterator(chunk_size=1000):
        hours = _hours_to_meter(instance, until)
        if not hours:
            continue
        rows, total = _rows(instance, hours)
        records.extend(rows)
        cost += total
        end = hours[-1] + HOUR
        metered.append((instance.pk, min(end, instance.ended_at) if instance.ended_at else end))
        touched.add(instance.order.administration_id)
        if len(records) >= batch:
            flush()
    if records or metered:
        flush()
    check_budgets(now, Administration.objects.filter(pk__in=touched))
    return created


def check_budgets(now: dt.datetime, administrations) -> list[Alert]:
    """Alert once per threshold crossed by the administration's (or a parent's) budget."""
    alerts = []
    paths = [a.path for a in administrations]
    budgets = Budget.objects.filter(year=now.year).select_related("administration")
    for budget in budgets:
        if not any(path.startswith(budget.administration.path) for path in paths):
            continue
        with transaction.atomic():
            budget = Budget.objects.select_for_update().get(pk=budget.pk)
            spent = selectors.spent(budget.administration, now.year)
            for threshold in budget.thresholds:
                if threshold in budget.alerted or spent * 100 < budget.amount * threshold:
                    continue
                budget.alerted = sorted([*budget.alerted, threshold])
                alerts.append(Alert.objects.create(
                    administration=budget.administration, kind=Alert.Kind.BUDGET,
                    message=f"{threshold} % of the {now.year} cloud budget is used: "
                            f"{spent} of {budget.amount} TND."))
                ledger.enqueue(
                    CloudEvent.BUDGET_THRESHOLD,
                    f"cloud:budget:{budget.administration.code}:{now.year}",
                    "system",
                    {"threshold": threshold, "spent": str(spent)},
                )
            budget.save(update_fields=["alerted"])
    return alerts


@transaction.atomic
def report_usage(*, actor, instance_id: str, period_start: dt.datetime,
                 size_bytes: int | None = None, connections: int | None = None,
                 now: dt.datetime | None = None) -> UsageRecord:
    """A provider reports what it measured for one instance and hour.

    The record of that hour is created if metering has not reached it yet; the cost is
    always the contract's, whatever the provider reports.
    """
    now = now or timezone.now()
    instance = Instance.objects.select_related(
        "order__administration", "plan__offering__broker__provider__company").filter(
        instance_id=instance_id).first()
    if instance is None:
        raise NotFound(CloudError.NO_SUCH_INSTANCE)
    provider = instance.plan.offering.broker.provider
    if not isinstance(actor, directory.SystemActor) and \
            directory.company_of(actor) != provider.company:
        raise PermissionDenied(CloudError.USAGE_FROM_PROVIDER_ONLY)
    period_start = _utc_hour(period_start)
    if instance.activated_at is None or period_start + HOUR <= instance.activated_at or \
            period_start > now or (instance.ended_at and period_start >= instance.ended_at):
        raise InvalidInput(CloudError.INSTANCE_ABSENT_THAT_HOUR)
    for value, what in ((size_bytes, "size_bytes"), (connections, "connections")):
        if value is not None and (not isinstance(value, int) or not 0 <= value < 2**62):
            raise InvalidInput(CloudError.USAGE_NOT_WHOLE_NUMBER, what=what)
    record = _hour_record_for_update(instance, period_start)
    if record.reported_at is not None and (record.size_bytes, record.connections) != \
            (size_bytes, connections):
        raise Conflict(CloudError.HOUR_ALREADY_REPORTED)
    record.size_bytes, record.connections, record.reported_at = size_bytes, connections, now
    record.save()
    ledger.enqueue(
        CloudEvent.USAGE_REPORTED,
        f"cloud:order:{instance.order.number}",
        actor,
        {
            "instance": instance_id,
            "period_start": period_start.isoformat(),
            "size_bytes": size_bytes,
            "connections": connections,
        },
    )
    _alert_if_over_limit(instance, record)
    return record


def _utc_hour(period_start: dt.datetime) -> dt.datetime:
    """The reported hour in UTC, which must start on it. Hours are billed per UTC hour:
    with zones a few minutes apart, "the start of an hour" would name many moments of
    one UTC hour, each billed as another."""
    utc = period_start.astimezone(dt.UTC) if period_start.tzinfo is not None else None
    if utc is None or utc != _floor_hour(utc):
        raise InvalidInput(CloudError.PERIOD_NOT_AN_HOUR)
    return utc


def _hour_record_for_update(instance: Instance, hour: dt.datetime) -> UsageRecord:
    """The instance's usage record of ``hour``, locked; made as metering would if it is
    not there yet. The insert skips a record another report or metering run made
    meanwhile, so two reports of one hour at once wait for each other instead of
    failing on the unique hour."""
    rows, _ = _rows(instance, [hour])
    _insert(rows)
    return UsageRecord.objects.select_for_update().get(instance=instance, period_start=hour)


def _alert_if_over_limit(instance: Instance, record: UsageRecord) -> None:
    limits = instance.plan.metadata.get("limits") or {}
    limit = limits.get("size_bytes")
    if not isinstance(limit, int) or record.size_bytes is None or record.size_bytes <= limit:
        return
    today = timezone.localdate()
    message = (f"{instance.order.number}: the database holds {record.size_bytes} bytes, over "
               f"the {instance.plan.display_name} plan's {limit}; change to a larger plan.")
    if not Alert.objects.filter(administration=instance.order.administration,
                                kind=Alert.Kind.LIMIT, created_at__date=today,
                                message__startswith=f"{instance.order.number}:").exists():
        Alert.objects.create(administration=instance.order.administration,
                             kind=Alert.Kind.LIMIT, message=message)


def report_reference_broker_usage(now: dt.datetime | None = None) -> int:
    """Timer: the reference broker reports the size and connections of its databases."""
    from sahab.cloud import broker

    now = now or timezone.now()
    hour = _floor_hour(now) - HOUR  # the hour that just ended, measured now
    reported = 0
    known = set(Instance.objects.filter(activated_at__isnull=False, ended_at__isnull=True)
                .values_list("instance_id", flat=True))
    for instance_id, measured in broker.measurements():
        if instance_id not in known:
            continue
        try:
            report_usage(actor=directory.SYSTEM, instance_id=instance_id, period_start=hour,
                         size_bytes=measured.size_bytes, connections=measured.connections,
                         now=now)
            reported += 1
        except (Conflict, InvalidInput):
            continue  # already reported this hour, or activated within it
    return reported
