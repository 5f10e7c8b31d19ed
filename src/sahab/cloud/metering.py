"""Hourly usage: one record per instance and hour it existed, priced at the contract's
hourly rate; providers add what they measured (size, connections) through usage reports.
Budgets are checked after each metering run and alert at their thresholds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
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


def _rows(instance: Instance, hours: list[dt.datetime]) -> tuple[list[tuple], list[Decimal]]:
    """The instance's usage rows for these hours, ready for the driver, and each one's
    cost."""
    ops = connection.ops
    head = (instance.pk, instance.order.administration_id,
            instance.plan.offering.broker.provider_id)
    price = instance.unit_price
    whole = (ops.adapt_decimalfield_value(ONE), ops.adapt_decimalfield_value(price),
             ops.adapt_decimalfield_value(price))
    rows, costs = [], []
    for hour in hours:
        record = _record_for(instance, hour) if hour < instance.activated_at or (
            instance.ended_at and instance.ended_at < hour + HOUR) else None
        if record is None:  # a whole hour: the common case, no Decimal arithmetic
            rows.append((*head, ops.adapt_datetimefield_value(hour), *whole))
            costs.append(price)
        else:
            rows.append((*head, ops.adapt_datetimefield_value(hour),
                         ops.adapt_decimalfield_value(record.hours),
                         ops.adapt_decimalfield_value(price),
                         ops.adapt_decimalfield_value(record.cost)))
            costs.append(record.cost)
    return rows, costs


def _insert(rows: list[tuple]) -> int:
    """Insert usage rows, skipping hours already billed (unique instance and hour);
    returns how many it inserted.

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
        if len(rows) == 1:
            cursor.execute(statement, rows[0])
        else:
            cursor.executemany(statement, rows)
        return cursor.rowcount


@dataclass
class _Metering:
    """One instance's hours to meter in a run, and what it read them from."""

    instance: int
    read_until: dt.datetime | None  # the instance's ``metered_until`` when read
    until: dt.datetime  # what it becomes
    hours: list[dt.datetime]
    rows: list[tuple]
    costs: list[Decimal]


def _planned(instance: Instance, hours: list[dt.datetime]) -> _Metering:
    """What metering ``hours`` (not empty) of ``instance`` inserts, and where its
    ``metered_until`` ends: after the last hour, or at the instance's end within it."""
    rows, costs = _rows(instance, hours)
    end = hours[-1] + HOUR
    until = min(end, instance.ended_at) if instance.ended_at else end
    return _Metering(instance.pk, instance.metered_until, until, hours, rows, costs)


def _record_batch(batch: list[_Metering], until: dt.datetime) -> tuple[int, int]:
    """Insert a batch's usage rows and its ``cloud.usage.metered`` entry, in one
    transaction; returns (records, instances).

    The entry says exactly what the table bills: the instances are locked, one that
    another run metered meanwhile (its ``metered_until`` moved) is left to that run, and
    an hour a provider's report already recorded (whose cost is on the report's entry)
    is neither inserted nor counted. Before, two runs at once put twice the cost on the
    ledger, and a reported hour was counted again at metering's price."""
    with transaction.atomic():
        locked = dict(Instance.objects.select_for_update().filter(
            pk__in=[m.instance for m in batch]).order_by("pk").values_list("pk",
                                                                          "metered_until"))
        batch = [m for m in batch if m.instance in locked and
                 locked[m.instance] == m.read_until]
        taken = set(UsageRecord.objects.filter(
            instance_id__in=[m.instance for m in batch],
            period_start__gte=min((m.hours[0] for m in batch), default=until))
            .values_list("instance_id", "period_start")) if batch else set()
        rows, cost = [], Decimal(0)
        for m in batch:
            for hour, row, row_cost in zip(m.hours, m.rows, m.costs, strict=True):
                if (m.instance, hour) not in taken:
                    rows.append(row)
                    cost += row_cost
        inserted = _insert(rows) if rows else 0
        for m in batch:
            Instance.objects.filter(pk=m.instance).update(metered_until=m.until)
        if batch:
            ledger.enqueue(CloudEvent.USAGE_METERED, "cloud:usage", "system",
                           {"records": inserted, "instances": len(batch),
                            "until": until.isoformat(), "cost": str(cost)})
    return inserted, len(batch)


def meter_usage(now: dt.datetime | None = None, *, batch: int = 5000, progress=None) -> int:
    """Create the usage records of every complete hour not yet metered; returns how many.

    Runs hourly (and catches up after downtime); records are unique per instance and
    hour, and each batch locks its instances, so a run repeated by two workers bills an
    hour once and puts it once on the ledger.
    """
    now = now or timezone.now()
    until = _floor_hour(now)
    pending = Instance.objects.filter(activated_at__isnull=False).filter(
        Q(metered_until__isnull=True) | Q(metered_until__lt=until)).filter(
        Q(ended_at__isnull=True) | Q(metered_until__isnull=True) |
        Q(metered_until__lt=F("ended_at"))).select_related("order", "plan__offering__broker")
    created = waiting = 0
    touched: set[int] = set()
    planned: list[_Metering] = []

    def flush() -> None:
        nonlocal created, waiting
        records, instances = _record_batch(planned, until)
        created += records
        if progress:
            progress(instances)
        planned.clear()
        waiting = 0

    for instance in pending.iterator(chunk_size=1000):
        hours = _hours_to_meter(instance, until)
        if not hours:
            continue
        planned.append(_planned(instance, hours))
        touched.add(instance.order.administration_id)
        waiting += len(hours)
        if waiting >= batch:
            flush()
    if planned:
        flush()
    check_budgets(now, Administration.objects.filter(pk__in=touched))
    return created


def meter_instance(instance: Instance, now: dt.datetime) -> int:
    """Meter one instance's complete hours before ``now`` at its price now; returns how
    many records. Called before a plan change takes effect, so that hours used on the
    former plan are billed at its price, not at the new one's when metering comes (every
    hour of a worker that was behind). The hour of the change is billed at the new price.
    ``instance.metered_until`` is brought up to date, for a caller that saves it."""
    until = _floor_hour(now)
    instance.metered_until = Instance.objects.filter(pk=instance.pk).values_list(
        "metered_until", flat=True).get()
    hours = _hours_to_meter(instance, until)
    if not hours:
        return 0
    planned = _planned(instance, hours)
    records, metered = _record_batch([planned], until)
    if metered:
        instance.metered_until = planned.until
    return records


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
    # locked, as metering locks the instances it meters: one of the two records an hour
    instance = Instance.objects.select_related(
        "order__administration", "plan__offering__broker__provider__company").select_for_update(
        of=("self",)).filter(instance_id=instance_id).first()
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
    if period_start + HOUR > now:
        # its record would bill the whole hour, the instance deleted minutes later or not
        raise InvalidInput(CloudError.HOUR_NOT_OVER)
    for value, what in ((size_bytes, "size_bytes"), (connections, "connections")):
        if value is not None and (not isinstance(value, int) or not 0 <= value < 2**62):
            raise InvalidInput(CloudError.USAGE_NOT_WHOLE_NUMBER, what=what)
    record, created = _hour_record_for_update(instance, period_start)
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
            # the hour's record, when this report made it (metering then skips it): its
            # cost is on the ledger once, here
            "hours": str(record.hours) if created else None,
            "cost": str(record.cost) if created else None,
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


def _hour_record_for_update(instance: Instance, hour: dt.datetime
                            ) -> tuple[UsageRecord, bool]:
    """The instance's usage record of ``hour``, locked, and whether this call made it
    (as metering would, if it was not there yet). The insert skips a record another
    report or metering run made meanwhile, so two reports of one hour at once wait for
    each other instead of failing on the unique hour."""
    rows, _ = _rows(instance, [hour])
    created = _insert(rows) == 1
    return (UsageRecord.objects.select_for_update().get(instance=instance, period_start=hour),
            created)


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
