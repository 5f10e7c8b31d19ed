"""The background work that talks to brokers: provisioning, polling, binding, updates,
deletion, retries with back-off and orphan mitigation (OSB v2.17, "Orphan Mitigation").

Each instance and binding says what the platform owes its broker next (``operation``),
and when (``next_attempt_at``). ``advance_operations`` claims due rows, calls the broker
outside any database transaction (a slow broker never holds a lock), then records the
outcome and its ledger entry in one transaction. A crash between the call and the record
is safe: instance and binding ids are fixed, and every OSB request is idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sahab.cloud import metering, notifications, osb
from sahab.cloud.events import CloudEvent
from sahab.cloud.models import (
    MAX_POLLING_SECONDS,
    Alert,
    Binding,
    BindingState,
    Broker,
    Instance,
    InstanceState,
    Operation,
)
from sahab.cloud.osb import Outcome, Reply
from sahab.core import secrets as sealing
from sahab.directory import selectors as directory
from sahab.ledger import services as ledger

log = logging.getLogger(__name__)


def _record(event: CloudEvent, order_number: str, data: dict) -> None:
    """The ledger entry of what the broker did to an order (the platform acts)."""
    ledger.enqueue(event, f"cloud:order:{order_number}", "system", data)


def _backoff(attempts: int) -> dt.timedelta:
    seconds = settings.CLOUD_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return dt.timedelta(seconds=min(seconds, settings.CLOUD_RETRY_MAX_SECONDS))


def _poll_interval() -> dt.timedelta:
    return dt.timedelta(seconds=settings.CLOUD_POLL_SECONDS)


def _identity(user) -> str:
    if user is None:
        return osb.originating_identity("system", "sahab")
    return osb.originating_identity(directory.actor_id(user), user.get_username())


def _context(instance: Instance) -> dict:
    order = instance.order
    return {"platform": osb.PLATFORM, "organization_guid": order.administration.code,
            "space_guid": order.number, "administration": order.administration.name_fr,
            "order": order.number}


def _claim(model, pk: int, seen_at: dt.datetime, now: dt.datetime) -> bool:
    """Take a due row for this worker: nobody else will touch it until the lease ends."""
    lease = now + dt.timedelta(seconds=settings.CLOUD_BROKER_TIMEOUT + 30)
    return model.objects.filter(pk=pk, next_attempt_at=seen_at).update(next_attempt_at=lease) == 1


def advance_operations(now: dt.datetime | None = None, *, transport=None, limit: int = 100) -> int:
    """Make one step on every due instance and binding; returns how many were handled."""
    now = now or timezone.now()
    handled = 0
    for model, step in ((Instance, _step_instance), (Binding, _step_binding)):
        due = list(model.objects.exclude(operation="").filter(next_attempt_at__lte=now)
                   .order_by("next_attempt_at").values_list("pk", "next_attempt_at")[:limit])
        for pk, seen_at in due:
            if not _claim(model, pk, seen_at, now):
                continue
            try:
                step(pk, now, transport)
            except Exception:  # one broken row must not stop the others; it is retried
                log.exception("cloud operation on %s %s failed", model.__name__, pk)
                model.objects.filter(pk=pk).update(next_attempt_at=now + _backoff(3))
            handled += 1
    return handled


def _client(broker: Broker, transport):
    from sahab.cloud.services import broker_client

    return broker_client(broker, transport=transport)


# --- instances ----------------------------------------------------------------------------

def _load_instance(pk: int) -> Instance:
    return Instance.objects.select_related(
        "order__administration", "order__ordered_by", "plan__offering__broker__provider__company",
        "target_plan", "requested_by").get(pk=pk)


def _step_instance(pk: int, now: dt.datetime, transport) -> None:
    instance = _load_instance(pk)
    plan = instance.plan
    ids = {"service_id": plan.offering.service_id, "plan_id": plan.plan_id}
    with _client(plan.offering.broker, transport) as client:
        if instance.operation == Operation.PROVISION and not instance.polling:
            from sahab.cloud import selectors

            reason = selectors.not_orderable_reason(plan)
            if reason:
                return _finish_failed(instance, reason, now)
            reply = client.provision(instance.instance_id, context=_context(instance),
                                     parameters=instance.order.parameters,
                                     identity=_identity(instance.requested_by), **ids)
            return _after_provision(instance, reply, now)
        if instance.operation == Operation.UPDATE and not instance.polling:
            reply = client.update(instance.instance_id, service_id=ids["service_id"],
                                  plan_id=instance.target_plan.plan_id,
                                  previous_plan_id=plan.plan_id, context=_context(instance),
                                  parameters=None, identity=_identity(instance.requested_by))
            return _after_update(instance, reply, now)
        if instance.operation in (Operation.DEPROVISION, Operation.ORPHAN_MITIGATION) and \
                not instance.polling:
            if instance.operation == Operation.DEPROVISION and \
                    instance.bindings.exclude(state__in=[BindingState.DELETED,
                                                         BindingState.FAILED]).exists():
                return _wait(instance, now + _poll_interval())  # credentials are revoked first
            reply = client.deprovision(instance.instance_id, identity=_identity(
                instance.requested_by), **ids)
            return _after_delete(instance, reply, now)
        if instance.polling:
            reply = client.last_operation(instance.instance_id,
                                          operation=instance.broker_operation, **ids)
            return _after_poll(instance, reply, now)


def _save(instance, **fields) -> None:
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.save()


def _wait(work, when: dt.datetime) -> None:
    type(work).objects.filter(pk=work.pk).update(next_attempt_at=when)


def _retry_or(instance: Instance, reply: Reply, now: dt.datetime, give_up) -> None:
    attempts = instance.attempts + 1
    if attempts >= settings.CLOUD_MAX_ATTEMPTS:
        return give_up(f"{reply.description} (after {attempts} attempts)")
    type(instance).objects.filter(pk=instance.pk).update(
        attempts=attempts, last_error=reply.description[:2000], polling=False,
        next_attempt_at=now + _backoff(attempts))


@transaction.atomic
def _activate(instance: Instance, reply: Reply, now: dt.datetime) -> None:
    _save(instance, state=InstanceState.ACTIVE, operation=Operation.NONE, polling=False,
          broker_operation="", next_attempt_at=None, attempts=0, last_error="",
          activated_at=instance.activated_at or now,
          dashboard_url=str(reply.body.get("dashboard_url") or instance.dashboard_url)[:1000])
    _record(
        CloudEvent.INSTANCE_ACTIVE,
        instance.order.number,
        {"instance": instance.instance_id, "plan": instance.plan.plan_id},
    )
    notifications.instance_ready(instance)


def _start_polling(work, reply: Reply, now: dt.datetime, deadline_seconds: int) -> None:
    type(work).objects.filter(pk=work.pk).update(
        polling=True, broker_operation=str(reply.body.get("operation") or "")[:10000],
        poll_deadline=now + dt.timedelta(seconds=deadline_seconds),
        next_attempt_at=now + _poll_interval(), last_error="")
    if isinstance(work, Instance) and reply.body.get("dashboard_url"):
        Instance.objects.filter(pk=work.pk).update(
            dashboard_url=str(reply.body["dashboard_url"])[:1000])


def _polling_budget(instance: Instance) -> int:
    """The plan's polling duration, capped (plans stored before catalogues were checked
    may hold any number)."""
    return min(instance.plan.maximum_polling_duration or settings.CLOUD_MAX_POLLING_SECONDS,
               MAX_POLLING_SECONDS)


@transaction.atomic
def _mitigate(work, why: str, now: dt.datetime, *, then_retry: bool) -> None:
    """The broker may hold something the platform does not: delete it before going on."""
    work = type(work).objects.select_for_update().get(pk=work.pk)
    attempts = work.attempts + 1
    if then_retry and attempts >= settings.CLOUD_MAX_ATTEMPTS:
        then_retry, why = False, f"{why} (after {attempts} attempts)"
    unbinding = isinstance(work, Binding)
    _save(work, operation=Operation.ORPHAN_MITIGATION, polling=False, broker_operation="",
          attempts=attempts, then_retry=then_retry, last_error=why[:2000],
          next_attempt_at=now, **({} if then_retry else {"failure": why[:2000]}))
    number = (work.instance.order if unbinding else work.order).number
    _record(
        CloudEvent.BINDING_ORPHAN_MITIGATION
        if unbinding
        else CloudEvent.INSTANCE_ORPHAN_MITIGATION,
        number,
        {
            ("binding" if unbinding else "instance"): work.binding_id
            if unbinding
            else work.instance_id,
            "reason": why[:300],
        },
    )


@transaction.atomic
def _finish_failed(instance: Instance, why: str, now: dt.datetime) -> None:
    _save(instance, state=InstanceState.FAILED, operation=Operation.NONE, polling=False,
          broker_operation="", next_attempt_at=None, failure=why[:2000], last_error=why[:2000])
    _record(
        CloudEvent.INSTANCE_FAILED,
        instance.order.number,
        {"instance": instance.instance_id, "reason": why[:300]},
    )
    Alert.objects.create(administration=instance.order.administration, kind=Alert.Kind.OPERATION,
                         message=f"{instance.order.number}: provisioning failed — {why}")
    notifications.instance_failed(instance, why)


def _after_provision(instance: Instance, reply: Reply, now: dt.datetime) -> None:
    if reply.outcome == Outcome.DONE:
        return _activate(instance, reply, now)
    if reply.outcome == Outcome.ACCEPTED:
        _save(instance, state=InstanceState.PROVISIONING)
        return _start_polling(instance, reply, now, _polling_budget(instance))
    if reply.outcome == Outcome.REJECTED:
        if reply.status in (408, 429):  # not received / throttled: nothing was made
            return _retry_or(instance, reply, now,
                             lambda why: _finish_failed(instance, why, now))
        return _finish_failed(instance, f"The broker refused the request: {reply.description}",
                              now)
    # 5xx, timeout, malformed success: the broker may have made it.
    return _mitigate(instance, reply.description, now, then_retry=True)


def _after_poll(instance: Instance, reply: Reply, now: dt.datetime) -> None:
    operation = instance.operation
    if reply.outcome == Outcome.GONE and operation in (Operation.DEPROVISION,
                                                      Operation.ORPHAN_MITIGATION):
        return _deleted(instance, now)
    state = reply.body.get("state") if reply.outcome == Outcome.DONE else None
    if state == "succeeded":
        if operation == Operation.PROVISION:
            return _activate(instance, reply, now)
        if operation == Operation.UPDATE:
            return _updated(instance, now)
        return _deleted(instance, now)
    if state == "failed":
        return _polled_failure(instance, f"The broker reports the {operation} failed: "
                                         f"{reply.description}", now)
    # in progress, or the poll itself failed: poll again until the deadline.
    if instance.poll_deadline and now >= instance.poll_deadline:
        return _polled_failure(instance, f"The {operation} did not finish within the polling "
                                         "duration.", now)
    delay = _poll_interval() if state == "in progress" else _backoff(2)
    Instance.objects.filter(pk=instance.pk).update(
        next_attempt_at=now + delay, last_error="" if state else reply.description[:2000])


def _polled_failure(instance: Instance, why: str, now: dt.datetime) -> None:
    """An asynchronous operation failed or ran out of time: what the spec says to do."""
    if instance.operation == Operation.PROVISION:
        return _mitigate(instance, why, now, then_retry=False)
    if instance.operation == Operation.UPDATE:
        return _back_to_active(instance, why, CloudEvent.INSTANCE_UPDATE_FAILED)
    if instance.operation == Operation.DEPROVISION:
        return _back_to_active(instance, why, CloudEvent.INSTANCE_DEPROVISION_FAILED)
    return _retry_mitigation(instance, why, now)  # orphan mitigation never gives up


@transaction.atomic
def _updated(instance: Instance, now: dt.datetime) -> None:
    old = instance.plan.plan_id
    metering.meter_instance(instance, now)  # the hours before, at the former plan's price
    _save(instance, state=InstanceState.ACTIVE, plan=instance.target_plan, target_plan=None,
          unit_price=instance.target_unit_price or instance.unit_price, target_unit_price=None,
          operation=Operation.NONE, polling=False, broker_operation="", next_attempt_at=None,
          attempts=0, last_error="")
    _record(
        CloudEvent.INSTANCE_UPDATED,
        instance.order.number,
        {
            "instance": instance.instance_id,
            "from_plan": old,
            "plan": instance.plan.plan_id,
            "unit_price": str(instance.unit_price),
        },
    )


@transaction.atomic
def _back_to_active(instance: Instance, why: str, event: CloudEvent) -> None:
    """An update or a deletion that failed leaves the instance as it was, usable."""
    _save(instance, state=InstanceState.ACTIVE, target_plan=None, target_unit_price=None,
          operation=Operation.NONE, polling=False, broker_operation="", next_attempt_at=None,
          attempts=0, last_error=why[:2000])
    _record(event, instance.order.number, {"instance": instance.instance_id, "reason": why[:300]})


def _after_update(instance: Instance, reply: Reply, now: dt.datetime) -> None:
    if reply.outcome == Outcome.DONE:
        return _updated(instance, now)
    if reply.outcome == Outcome.ACCEPTED:
        return _start_polling(instance, reply, now, _polling_budget(instance))
    if reply.outcome == Outcome.REJECTED and reply.status not in (408, 429):
        if reply.body.get("error") == "ConcurrencyError":
            return _retry_or(
                instance,
                reply,
                now,
                lambda why: _back_to_active(instance, why, CloudEvent.INSTANCE_UPDATE_FAILED),
            )
        return _back_to_active(
            instance,
            f"The broker refused the change: {reply.description}",
            CloudEvent.INSTANCE_UPDATE_FAILED,
        )
    return _retry_or(
        instance,
        reply,
        now,
        lambda why: _back_to_active(instance, why, CloudEvent.INSTANCE_UPDATE_FAILED),
    )


def _after_delete(instance: Instance, reply: Reply, now: dt.datetime) -> None:
    mitigation = instance.operation == Operation.ORPHAN_MITIGATION
    if reply.outcome in (Outcome.DONE, Outcome.GONE):
        return _deleted(instance, now)
    if reply.outcome == Outcome.ACCEPTED:
        return _start_polling(instance, reply, now, _polling_budget(instance))
    if mitigation:
        return _retry_mitigation(instance, reply.description, now)
    return _retry_or(
        instance,
        reply,
        now,
        lambda why: _back_to_active(instance, why, CloudEvent.INSTANCE_DEPROVISION_FAILED),
    )


def _retry_mitigation(work, why: str, now: dt.datetime) -> None:
    """Orphan mitigation keeps trying until the broker confirms the deletion."""
    attempts = work.attempts + 1
    type(work).objects.filter(pk=work.pk).update(
        attempts=attempts, polling=False, last_error=why[:2000],
        next_attempt_at=now + _backoff(attempts))


@transaction.atomic
def _deleted(instance: Instance, now: dt.datetime) -> None:
    if instance.operation == Operation.ORPHAN_MITIGATION:
        _record(
            CloudEvent.INSTANCE_ORPHAN_REMOVED,
            instance.order.number,
            {"instance": instance.instance_id},
        )
        if instance.then_retry:
            return _save(instance, state=InstanceState.REQUESTED, operation=Operation.PROVISION,
                         polling=False, broker_operation="", then_retry=False,
                         next_attempt_at=now + _backoff(instance.attempts))
        return _finish_failed(instance, instance.failure or instance.last_error or
                              "provisioning failed", now)
    _save(instance, state=InstanceState.DELETED, operation=Operation.NONE, polling=False,
          broker_operation="", next_attempt_at=None, ended_at=now, last_error="")
    _record(CloudEvent.INSTANCE_DELETED, instance.order.number, {"instance": instance.instance_id})


# --- bindings -----------------------------------------------------------------------------

def _load_binding(pk: int) -> Binding:
    return Binding.objects.select_related(
        "instance__order__administration", "instance__plan__offering__broker",
        "requested_by").get(pk=pk)


def _step_binding(pk: int, now: dt.datetime, transport) -> None:
    binding = _load_binding(pk)
    instance = binding.instance
    ids = {"service_id": instance.plan.offering.service_id, "plan_id": instance.plan.plan_id}
    with _client(instance.plan.offering.broker, transport) as client:
        if binding.operation == Operation.BIND and not binding.polling:
            reply = client.bind(instance.instance_id, binding.binding_id,
                                context=_context(instance), parameters={},
                                identity=_identity(binding.requested_by), **ids)
            return _after_bind(binding, reply, now, client, ids)
        if binding.operation in (Operation.UNBIND, Operation.ORPHAN_MITIGATION) and \
                not binding.polling:
            reply = client.unbind(instance.instance_id, binding.binding_id,
                                  identity=_identity(binding.requested_by), **ids)
            return _after_unbind(binding, reply, now)
        if binding.polling:
            reply = client.binding_last_operation(instance.instance_id, binding.binding_id,
                                                  operation=binding.broker_operation, **ids)
            state = reply.body.get("state") if reply.outcome == Outcome.DONE else None
            if binding.operation == Operation.BIND and state == "succeeded":
                fetched = client.get_binding(instance.instance_id, binding.binding_id, **ids)
                return _after_bind(binding, fetched, now, client, ids)
            return _after_binding_poll(binding, reply, state, now)


def _after_bind(binding: Binding, reply: Reply, now, client, ids) -> None:
    if reply.outcome == Outcome.DONE:
        credentials = reply.body.get("credentials")
        if isinstance(credentials, dict) and credentials:
            return _binding_ready(binding, credentials)
        return _mitigate(binding, "The broker answered without credentials.", now,
                         then_retry=True)
    if reply.outcome == Outcome.ACCEPTED:
        return _start_polling(binding, reply, now, settings.CLOUD_MAX_POLLING_SECONDS)
    if reply.outcome == Outcome.REJECTED and reply.status not in (408, 429):
        return _binding_failed(binding, f"The broker refused: {reply.description}")
    if reply.outcome == Outcome.REJECTED:
        return _retry_or(binding, reply, now, lambda why: _binding_failed(binding, why))
    return _mitigate(binding, reply.description, now, then_retry=True)


@transaction.atomic
def _binding_ready(binding: Binding, credentials: dict) -> None:
    _save(binding, state=BindingState.READY, operation=Operation.NONE, polling=False,
          broker_operation="", next_attempt_at=None, attempts=0, last_error="",
          credentials_sealed=sealing.seal_json(credentials, f"binding:{binding.binding_id}"))
    _record(
        CloudEvent.BINDING_READY, binding.instance.order.number, {"binding": binding.binding_id}
    )


@transaction.atomic
def _binding_failed(binding: Binding, why: str) -> None:
    _save(binding, state=BindingState.FAILED, operation=Operation.NONE, polling=False,
          broker_operation="", next_attempt_at=None, failure=why[:2000], last_error=why[:2000])
    _record(
        CloudEvent.BINDING_FAILED,
        binding.instance.order.number,
        {"binding": binding.binding_id, "reason": why[:300]},
    )


def _after_unbind(binding: Binding, reply: Reply, now) -> None:
    if reply.outcome in (Outcome.DONE, Outcome.GONE):
        return _binding_deleted(binding, now)
    if reply.outcome == Outcome.ACCEPTED:
        return _start_polling(binding, reply, now, settings.CLOUD_MAX_POLLING_SECONDS)
    return _retry_mitigation(binding, reply.description, now)


def _after_binding_poll(binding: Binding, reply: Reply, state, now) -> None:
    if reply.outcome == Outcome.GONE and binding.operation != Operation.BIND:
        return _binding_deleted(binding, now)
    if state == "succeeded" and binding.operation != Operation.BIND:
        return _binding_deleted(binding, now)
    if state == "failed":
        if binding.operation == Operation.BIND:
            return _mitigate(binding, f"The broker reports the binding failed: "
                                      f"{reply.description}", now, then_retry=False)
        return _retry_mitigation(binding, reply.description, now)
    if binding.poll_deadline and now >= binding.poll_deadline and \
            binding.operation == Operation.BIND:
        return _mitigate(binding, "The binding did not finish in time.", now, then_retry=False)
    Binding.objects.filter(pk=binding.pk).update(next_attempt_at=now + _poll_interval())


@transaction.atomic
def _binding_deleted(binding: Binding, now) -> None:
    if binding.operation == Operation.ORPHAN_MITIGATION:
        _record(
            CloudEvent.BINDING_ORPHAN_REMOVED,
            binding.instance.order.number,
            {"binding": binding.binding_id},
        )
        if binding.then_retry:
            return _save(binding, state=BindingState.REQUESTED, operation=Operation.BIND,
                         polling=False, broker_operation="", then_retry=False,
                         next_attempt_at=now + _backoff(binding.attempts))
        return _binding_failed(binding, binding.failure or binding.last_error or
                               "binding failed")
    _save(binding, state=BindingState.DELETED, operation=Operation.NONE, polling=False,
          broker_operation="", next_attempt_at=None, credentials_sealed=None, last_error="")
    _record(
        CloudEvent.BINDING_DELETED, binding.instance.order.number, {"binding": binding.binding_id}
    )
