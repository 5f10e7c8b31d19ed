"""Brokers that time out, fail, or report failed operations: every order ends in a clear
state — retried, or failed with the reason — and no database is left behind (OSB orphan
mitigation). Providers whose label expires take no new orders."""

import datetime as dt
import json

import httpx
import pytest
from django.utils import timezone

from sahab.cloud import dbaas, services
from sahab.cloud.models import Alert, Attestation, Instance, InstanceState, Label, Operation
from sahab.core import outbound
from sahab.core.errors import Conflict


class FaultyBroker(httpx.BaseTransport):
    """Forwards to the reference broker, except where ``fault`` decides otherwise.

    ``fault(request, forward)`` returns a response, raises like a network failure, or
    returns None to let the real broker answer.
    """

    def __init__(self, real: httpx.BaseTransport, fault):
        self.real, self.fault, self.calls = real, fault, []

    def handle_request(self, request):
        self.calls.append((request.method, request.url.path))
        answer = self.fault(request, lambda: self.real.handle_request(request))
        return answer if answer is not None else self.real.handle_request(request)


def _provision(request) -> bool:
    return request.method == "PUT" and "service_bindings" not in request.url.path


def _order(market, plan="pg-small"):
    order = services.place_order(actor=market.it, plan=market.plan(plan), purpose="Test")
    return Instance.objects.get(order=order)


def _exists(instance) -> bool:
    return dbaas.database_exists(dbaas.names_for(instance.instance_id))


def test_a_broker_that_times_out_after_acting_gets_its_orphan_deleted_then_a_retry(market):
    failures = {"left": 1}

    def fault(request, forward):
        if _provision(request) and failures["left"]:
            failures["left"] -= 1
            forward()  # the broker accepted it, the answer never came back
            raise httpx.ReadTimeout("timed out", request=request)
        return None

    market.transport = FaultyBroker(market.transport, fault)
    instance = _order(market)
    market.work()
    instance.refresh_from_db()
    assert instance.operation == Operation.ORPHAN_MITIGATION and instance.then_retry
    # one text for every failure: a timeout reads like a closed port (no scan oracle)
    assert instance.last_error == outbound.UNREACHABLE
    market.work(rounds=8)
    instance.refresh_from_db()
    assert instance.state == InstanceState.ACTIVE, instance.last_error
    calls = [m for m, _ in market.transport.calls if m in ("PUT", "DELETE")]
    assert calls[:3] == ["PUT", "DELETE", "PUT"]  # provision, mitigation, retry
    assert _exists(instance)


def test_a_broker_that_keeps_answering_500_ends_in_a_clear_failure_with_nothing_left(market):
    def fault(request, forward):
        if _provision(request):
            forward()
            return httpx.Response(500, json={"description": "disk full"})
        return None

    market.transport = FaultyBroker(market.transport, fault)
    instance = _order(market)
    market.work(rounds=25)
    instance.refresh_from_db()
    assert instance.state == InstanceState.FAILED
    assert "disk full" in instance.failure and "attempts" in instance.failure
    assert instance.operation == Operation.NONE
    assert not _exists(instance)
    assert Alert.objects.filter(kind=Alert.Kind.OPERATION, administration=market.mf).exists()
    services.retry_provisioning(actor=market.it, instance=instance)  # the user may try again
    instance.refresh_from_db()
    assert instance.state == InstanceState.REQUESTED


def test_a_failed_last_operation_is_mitigated_and_reported(market):
    def fault(request, forward):
        if request.url.path.endswith("/last_operation"):
            real = forward()
            if json.loads(real.read()).get("state") == "succeeded" and \
                    request.url.params.get("operation"):
                return httpx.Response(200, json={"state": "failed",
                                                 "description": "quota exceeded"})
            return httpx.Response(real.status_code, content=real.content,
                                  headers=real.headers)
        return None

    market.transport = FaultyBroker(market.transport, fault)
    instance = _order(market)
    market.work(rounds=6)
    instance.refresh_from_db()
    assert instance.state == InstanceState.FAILED
    assert "quota exceeded" in instance.failure
    assert ("DELETE", f"/osb/v2/service_instances/{instance.instance_id}") in \
        market.transport.calls
    assert not _exists(instance)


def test_a_refused_request_fails_at_once_without_mitigation(market):
    def fault(request, forward):
        if _provision(request):
            return httpx.Response(400, json={"description": "bad plan"})
        return None

    market.transport = FaultyBroker(market.transport, fault)
    instance = _order(market)
    market.work()
    instance.refresh_from_db()
    assert instance.state == InstanceState.FAILED and "bad plan" in instance.failure
    assert [m for m, _ in market.transport.calls] == ["PUT"]


def test_an_unreachable_broker_is_retried_with_back_off(market, settings):
    def fault(request, forward):
        raise httpx.ConnectError("connection refused", request=request)

    market.transport = FaultyBroker(market.transport, fault)
    instance = _order(market)
    market.work(rounds=2)  # the provision fails, then its mitigation fails too
    instance.refresh_from_db()
    assert instance.operation == Operation.ORPHAN_MITIGATION
    assert instance.next_attempt_at > market.clock  # backing off
    market.work(rounds=30)
    instance.refresh_from_db()
    # mitigation keeps trying to delete what it cannot be sure was not made
    assert instance.operation == Operation.ORPHAN_MITIGATION and instance.attempts > 3
    assert (instance.next_attempt_at - market.clock) <= dt.timedelta(
        seconds=settings.CLOUD_RETRY_MAX_SECONDS)


def test_a_provider_whose_label_expires_takes_no_new_orders(market):
    running = _order(market)
    market.work(rounds=3)
    pending = services.place_order(actor=market.it, plan=market.plan("pg-medium"),
                                   purpose="Attend l'approbation")
    g_cloud = Attestation.objects.get(provider=market.provider, label=Label.G_CLOUD)
    Attestation.objects.filter(pk=g_cloud.pk).update(
        expires_on=timezone.localdate() - dt.timedelta(days=1))
    assert services.expire_attestations() == 1
    g_cloud.refresh_from_db()
    assert g_cloud.status == Attestation.Status.EXPIRED
    with pytest.raises(Conflict, match="G-cloud"):
        services.place_order(actor=market.it, plan=market.plan("pg-small"), purpose="Non")
    with pytest.raises(Conflict, match="G-cloud"):
        services.decide_order(actor=market.finance, order=pending, approve=True)
    alert = Alert.objects.get(kind=Alert.Kind.PROVIDER)
    assert alert.administration == market.mf and "Carthage Cloud" in alert.message
    running.refresh_from_db()
    assert running.state == InstanceState.ACTIVE  # running services go on


def test_an_approved_order_whose_provider_lost_its_label_fails_clearly(market):
    instance = _order(market)
    services.revoke_attestation(actor=market.reviewer, reason="Audit défavorable",
                                attestation=Attestation.objects.get(
                                    provider=market.provider, label=Label.G_CLOUD))
    market.work()
    instance.refresh_from_db()
    assert instance.state == InstanceState.FAILED and "G-cloud" in instance.failure


def test_without_a_dbaas_cluster_the_plans_show_as_unavailable(market, settings):
    from sahab.cloud import selectors

    settings.DBAAS_URL = ""
    services.refresh_catalog(market.provider.broker, transport=market.transport)
    rows = selectors.catalogue()
    assert rows and not any(row.orderable for row in rows)
    assert all("SAHAB_DBAAS_URL" in row.reason for row in rows)
    with pytest.raises(Conflict, match="unavailable"):
        services.place_order(actor=market.it, plan=market.plan("pg-small"), purpose="Non")


def test_broker_jobs_are_enqueued_only_when_work_is_due(market, monkeypatch):
    from django_tasks_db.models import DBTaskResult

    from sahab.cloud import tasks

    enqueued = []

    class Recorded:
        def __init__(self, task, name):
            self.module_path, self.name = task.module_path, name

        def enqueue(self):
            enqueued.append(self.name)

    monkeypatch.setattr(tasks, "advance_operations",
                        Recorded(tasks.advance_operations, "advance"))
    monkeypatch.setattr(tasks, "run_broker_operations",
                        Recorded(tasks.run_broker_operations, "broker"))
    tasks.dispatch_due_work()
    assert enqueued == []  # an idle platform adds nothing to the queue
    _order(market)
    tasks.dispatch_due_work()
    assert enqueued == ["advance"]
    DBTaskResult.objects.create(task_path=tasks.advance_operations.module_path,
                                status="READY", args_kwargs={"args": [], "kwargs": {}},
                                backend_name="default", queue_name="default",
                                run_after=timezone.now(), priority=0)
    tasks.dispatch_due_work()
    assert enqueued == ["advance"]  # one is already waiting
    DBTaskResult.objects.update(status="RUNNING",
                                started_at=timezone.now() - dt.timedelta(hours=1))
    tasks.dispatch_due_work()
    assert enqueued == ["advance", "advance"]  # that worker died: enqueue again
