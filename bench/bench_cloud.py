"""Cloud: provisioning round trips per minute through the reference broker, and the cost
of metering 10,000 instances for a month of hourly records.

Round trip: provision (PUT, 202), the broker's job creates the database and its owner
role, last_operation, bind (a login role), unbind, deprovision (202), the job drops it,
last_operation 410 — over sahab's HTTP handling in-process, on the real PostgreSQL
cluster. Anchor in the same run: the same DDL sent straight to PostgreSQL with psycopg
(CREATE ROLE/DATABASE, CREATE/DROP login, DROP DATABASE/ROLE), i.e. what any broker
must do at least.

Metering: N instances (SAHAB_BENCH_CLOUD_INSTANCES, default 10,000) active for H hours
(SAHAB_BENCH_CLOUD_HOURS, default 720 = 30 days) metered by ``meter_usage`` in one run
(N x H records, each priced by its contract). Anchor: inserting the same number of rows
into the same table with the driver's executemany, no logic. Then the FOCUS export of
the month (daily rows), as `sahab cloud focus-export` writes it.

    SAHAB_BENCH_CLOUD_INSTANCES=10000 python -m bench cloud
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid


def _cluster() -> str | None:
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return None
    return "postgresql://postgres@127.0.0.1:5432/postgres"


def _direct_ddl_round_trips(cluster: str, n: int) -> float:
    """The anchor: the DDL of n round trips, sent straight to PostgreSQL."""
    import psycopg
    from psycopg import sql

    start = time.perf_counter()
    for _ in range(n):
        tag = uuid.uuid4().hex[:12]
        db, owner, login = f"anchor_{tag}", f"anchor_{tag}_o", f"anchor_{tag}_a"
        with psycopg.connect(cluster, autocommit=True) as c:
            c.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(owner)))
            c.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(db),
                                                                   sql.Identifier(owner)))
            c.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'x' IN ROLE {}").format(
                sql.Identifier(login), sql.Identifier(owner)))
            c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(login)))
            c.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db)))
            c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(owner)))
    return n / (time.perf_counter() - start) * 60


def _broker_round_trips(n: int) -> float:
    from sahab.cloud import broker, osb
    from sahab.core import inprocess, keys

    ids = {"service_id": broker.SERVICE_ID, "plan_id": broker.PLANS[0]["id"]}
    from django.conf import settings

    client = osb.Client(settings.PUBLIC_URL + "osb/", broker.USERNAME, keys.load_osb_password(),
                        transport=inprocess.transport())
    identity = osb.originating_identity("bench", "bench")
    start = time.perf_counter()
    for _ in range(n):
        instance, binding = str(uuid.uuid4()), str(uuid.uuid4())
        assert client.provision(instance, context={}, parameters={}, identity=identity,
                                **ids).status == 202
        broker.run_pending_operations()
        assert client.last_operation(instance, **ids).body["state"] == "succeeded"
        assert client.bind(instance, binding, context={}, parameters={}, identity=identity,
                           **ids).status == 201
        assert client.unbind(instance, binding, identity=identity, **ids).status == 200
        assert client.deprovision(instance, identity=identity, **ids).status == 202
        broker.run_pending_operations()
        assert client.last_operation(instance, **ids).status == 410
    return n / (time.perf_counter() - start) * 60


def _market(instances: int, hours: int):
    """One qualified provider with a priced plan, and ``instances`` active instances."""
    import datetime as dt
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from sahab.cloud.models import (
        Broker,
        Instance,
        InstanceState,
        Offering,
        Order,
        Provider,
        ServicePlan,
    )
    from sahab.directory.models import Administration, Company
    from sahab.procurement.models import Award, Bid, BidLot, Contract, Lot, Tender

    now = timezone.now()
    admin = Administration.objects.create(code="MF", kind="ministry", name_fr="Finances",
                                          name_ar="المالية", path="/MF/")
    company = Company.objects.create(name="Carthage Cloud", matricule_fiscal="1402317K/A/M/000")
    user = get_user_model().objects.create(username="it")
    tender = Tender.objects.create(
        reference="FW-1", ocid="ocds-sahab0-fw-1", buyer=admin, title="Accord-cadre",
        procedure="framework", state="complete", estimated_value=10**9,
        enquiry_deadline=now, submission_deadline=now)
    lot = Lot.objects.create(tender=tender, number=1, title="Bases", cpv="72317000-0",
                             estimated_value=10**9)
    bid = Bid.objects.create(tender=tender, company=company, status="opened", envelope=b"",
                             commitment="0" * 64, ledger_index=0)
    bid_lot = BidLot.objects.create(bid=bid, lot=lot, price=10**9)
    award = Award.objects.create(tender=tender, lot=lot, bid_lot=bid_lot, supplier=company,
                                 value=10**9)
    contract = Contract.objects.create(tender=tender, award=award, supplier=company,
                                       value=10**9, start_date=now.date(),
                                       end_date=now.date() + dt.timedelta(days=900))
    provider = Provider.objects.create(company=company, status="qualified", locations="Tunis")
    broker = Broker.objects.create(provider=provider, url="http://testserver/osb/",
                                   username="x", password_sealed=b"")
    offering = Offering.objects.create(broker=broker, service_id="s", name="PostgreSQL",
                                       description="", category="database")
    plan = ServicePlan.objects.create(offering=offering, plan_id="p", name="pg-small",
                                      description="", metadata={"resources": {"vcpu": 1}})
    price = Decimal("0.150")
    orders = Order.objects.bulk_create(
        [Order(number=f"CL-{i:06d}", administration=admin, ordered_by=user, plan=plan,
               contract=contract, unit_price=price, monthly_estimate=price * 730,
               purpose="bench", status="approved", ledger_index=0) for i in range(instances)],
        batch_size=2000)
    started = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=hours)
    Instance.objects.bulk_create(
        [Instance(order=o, instance_id=str(uuid.uuid4()), plan=plan, unit_price=price,
                  state=InstanceState.ACTIVE, activated_at=started) for o in orders],
        batch_size=2000)
    return now


def _anchor_inserts(rows: int) -> float:
    """The same number of usage rows inserted with the driver's executemany, committed
    in metering's batches, then deleted (before metering runs)."""
    from django.db import connection, transaction

    from sahab.cloud.models import Instance, UsageRecord

    instance = Instance.objects.select_related("order", "plan__offering__broker").first()
    table = UsageRecord._meta.db_table
    placeholders = ", ".join(["%s"] * 7)
    query = (f"INSERT INTO {table} (instance_id, administration_id, provider_id, "  # noqa: S608
             f"period_start, hours, unit_price, cost) VALUES ({placeholders})")
    import datetime as dt

    base = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    batch = 5000
    start = time.perf_counter()
    done = 0
    while done < rows:
        values = [(instance.pk, instance.order.administration_id,
                   instance.plan.offering.broker.provider_id,
                   base + dt.timedelta(hours=done + i), 1, "0.150", "0.150")
                  for i in range(min(batch, rows - done))]
        # committed batch by batch, as metering commits: a rolled-back anchor skipped the
        # commit's WAL flush and PostgreSQL's deferred foreign-key checks
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(query, values)
        done += len(values)
    elapsed = time.perf_counter() - start
    UsageRecord.objects.filter(instance=instance).delete()  # metering has not run yet
    return rows / elapsed


def _inner(database_url: str, instances: int, hours: int) -> None:
    from bench.common import setup_django

    cluster = _cluster()
    if cluster:
        os.environ["SAHAB_DBAAS_URL"] = cluster
    setup_django(None if database_url == "sqlite" else database_url)
    from sahab.core import keys

    keys.ensure_ledger_key()
    keys.ensure_secrets_key()
    keys.ensure_osb_password()
    results: dict = {}
    if cluster:
        rounds = int(os.environ.get("SAHAB_BENCH_CLOUD_ROUNDS", "30"))
        results["direct_per_min"] = _direct_ddl_round_trips(cluster, rounds)
        results["broker_per_min"] = _broker_round_trips(rounds)
    from sahab.cloud import focus, metering

    now = _market(instances, hours)
    results["anchor_rows_per_s"] = _anchor_inserts(instances * hours)
    start = time.perf_counter()
    created = metering.meter_usage(now)
    elapsed = time.perf_counter() - start
    results.update(records=created, meter_seconds=elapsed, meter_rows_per_s=created / elapsed)
    start = time.perf_counter()
    rows = focus.write(os.path.join(tempfile.mkdtemp(), "focus.csv"))
    results.update(focus_rows=rows, focus_rows_per_s=rows / (time.perf_counter() - start))
    print(json.dumps(results))


def main() -> None:
    from bench.bench_ledger import _postgres_url
    from bench.common import report

    instances = int(os.environ.get("SAHAB_BENCH_CLOUD_INSTANCES", "10000"))
    hours = int(os.environ.get("SAHAB_BENCH_CLOUD_HOURS", "720"))
    runs: list[tuple[str, str, object]] = [("sqlite", "sqlite", lambda: None)]
    pg = _postgres_url()
    if pg:
        runs.append(("postgres", pg[0], pg[1]))
    for name, url, drop in runs:
        try:
            out = subprocess.run([sys.executable, "-m", "bench.bench_cloud", "--inner", url,
                                  str(instances), str(hours)], capture_output=True, text=True,
                                 check=True)
        finally:
            drop()
        r = json.loads(out.stdout.strip().splitlines()[-1])
        if "broker_per_min" in r:
            report(f"{name}: OSB round trips (provision…deprovision)", r["broker_per_min"],
                   "/min", "direct DDL", r["direct_per_min"])
        else:
            print("  no PostgreSQL cluster on 127.0.0.1:5432: round trips not measured")
        report(f"{name}: metering {instances:,}×{hours} h ({r['records']:,} records)",
               r["meter_rows_per_s"], "rows/s", "executemany", r["anchor_rows_per_s"])
        print(f"  {name}: metering took {r['meter_seconds']:.1f} s; FOCUS export "
              f"{r['focus_rows']:,} daily rows at {r['focus_rows_per_s']:,.0f} rows/s")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--inner":
        _inner(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
