"""The whole cycle against the reference broker and a real PostgreSQL cluster: order,
approval, asynchronous provisioning, credentials that work, revocation, deletion."""

import psycopg
import pytest

from sahab.cloud import dbaas, services
from sahab.cloud.models import BindingState, Instance, InstanceState, Order
from sahab.core.errors import Conflict, PermissionDenied
from sahab.ledger.models import Entry


def test_order_approve_provision_bind_write_unbind_and_deprovision(market):
    plan = market.plan("pg-medium")  # 0.600 TND/h: above the approval threshold
    order = services.place_order(actor=market.it, plan=plan, purpose="Base de la paie",
                                 parameters={"application": "paie"})
    assert order.status == Order.Status.PENDING_APPROVAL
    assert not Instance.objects.filter(order=order).exists()
    with pytest.raises(PermissionDenied):
        services.decide_order(actor=market.it, order=order, approve=True)
    services.decide_order(actor=market.finance, order=order, approve=True)
    instance = Instance.objects.get(order=order)

    market.work()  # provision request: the broker answers 202 and works in the background
    instance.refresh_from_db()
    assert instance.state in (InstanceState.PROVISIONING, InstanceState.ACTIVE)
    names = dbaas.names_for(instance.instance_id)
    market.work(rounds=2)
    instance.refresh_from_db()
    assert instance.state == InstanceState.ACTIVE, instance.last_error
    assert dbaas.database_exists(names)

    binding = services.request_binding(actor=market.it, instance=instance, name="paie-app")
    market.work()
    binding.refresh_from_db()
    assert binding.state == BindingState.READY, binding.last_error
    with pytest.raises(PermissionDenied):
        services.reveal_credentials(actor=market.finance, binding=binding)
    credentials = services.reveal_credentials(actor=market.it, binding=binding)
    with pytest.raises(Conflict):
        services.reveal_credentials(actor=market.it, binding=binding)

    with psycopg.connect(credentials["uri"], connect_timeout=5) as connection:
        connection.execute("CREATE TABLE agents (id int PRIMARY KEY, name text)")
        connection.execute("INSERT INTO agents VALUES (1, 'Sonia')")
        connection.commit()
        assert connection.execute("SELECT name FROM agents").fetchone() == ("Sonia",)

    services.request_unbind(actor=market.it, binding=binding)
    market.work()
    binding.refresh_from_db()
    assert binding.state == BindingState.DELETED
    assert not dbaas.role_exists(credentials["username"])
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(credentials["uri"], connect_timeout=5).close()

    services.request_deprovision(actor=market.it, instance=instance)
    market.work(rounds=3)
    instance.refresh_from_db()
    assert instance.state == InstanceState.DELETED
    assert not dbaas.database_exists(names)

    events = list(Entry.objects.filter(subject=f"cloud:order:{order.number}")
                  .values_list("type", flat=True))
    for event in ("cloud.order.placed", "cloud.order.approved", "cloud.instance.requested",
                  "cloud.instance.active", "cloud.binding.ready",
                  "cloud.binding.credentials_shown", "cloud.binding.deleted",
                  "cloud.instance.deleted"):
        assert event in events
    bodies = b"".join(bytes(b) for b in Entry.objects.values_list("body", flat=True))
    assert credentials["password"].encode() not in bodies
