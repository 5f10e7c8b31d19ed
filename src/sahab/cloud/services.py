"""Every write of the cloud marketplace, each in one transaction with its ledger entry:
providers and their attestations, brokers and catalogues, budgets, orders and what
agents ask of their instances. Calls to brokers happen in ``operations`` (background),
usage in ``metering``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from decimal import Decimal
from typing import NoReturn
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from sahab.cloud import notifications, osb, selectors
from sahab.cloud.errors import CloudError
from sahab.cloud.events import CloudEvent
from sahab.cloud.models import (
    MAX_POLLING_SECONDS,
    Alert,
    Attestation,
    Binding,
    BindingState,
    Broker,
    Budget,
    Category,
    Instance,
    InstanceState,
    Label,
    Offering,
    Operation,
    Order,
    Provider,
    ServicePlan,
)
from sahab.core import documents, outbound
from sahab.core import secrets as sealing
from sahab.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, read_when_rendered
from sahab.core.inputs import money as _money
from sahab.core.inputs import text as _text
from sahab.directory import selectors as directory
from sahab.directory.models import Administration, Role
from sahab.ledger import services as ledger

log = logging.getLogger(__name__)


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or timezone.now()


# --- providers and attestations -----------------------------------------------------------

def _provider_of(actor) -> Provider:
    company = directory.company_of(actor)
    if company is None or not company.active:
        raise PermissionDenied(CloudError.COMPANY_MEMBERS_ONLY)
    provider = Provider.objects.filter(company=company).first()
    if provider is None:
        raise NotFound(CloudError.PROVIDER_NOT_APPLIED)
    return provider


def _require_reviewer(actor) -> None:
    if not directory.is_platform_admin(actor):
        raise PermissionDenied(CloudError.PROVIDER_REVIEW_FORBIDDEN)


@transaction.atomic
def apply_as_provider(*, actor, description: str, locations: str) -> Provider:
    """A company applies to sell cloud services; reviewers then qualify it."""
    company = directory.company_of(actor)
    if company is None or not company.active:
        raise PermissionDenied(CloudError.APPLY_COMPANY_MEMBERS_ONLY)
    if Provider.objects.filter(company=company).exists():
        raise Conflict(CloudError.PROVIDER_ALREADY_APPLIED)
    locations = _text(locations, "The data-centre locations", 300)
    provider = Provider.objects.create(company=company, locations=locations,
                                       description=_text(description, "The description", 5000,
                                                         required=False))
    if not company.is_cloud_provider:
        company.is_cloud_provider = True
        company.save(update_fields=["is_cloud_provider"])
    ledger.enqueue(
        CloudEvent.PROVIDER_APPLIED,
        f"cloud:provider:{provider.pk}",
        actor,
        {"company": company.matricule_fiscal, "locations": provider.location_list},
    )
    return provider


@transaction.atomic
def submit_attestation(*, actor, label: str, issuer: str, scope: str, reference: str,
                       valid_from: dt.date, expires_on: dt.date,
                       document: bytes | None = None, document_name: str = "",
                       provider: Provider | None = None) -> Attestation:
    """A provider submits a label or certificate; it counts once a reviewer accepts it."""
    if provider is None or not isinstance(actor, directory.SystemActor):
        provider = _provider_of(actor)
    if label not in Label.values:
        raise InvalidInput(CloudError.UNKNOWN_LABEL, label=repr(label))
    if not isinstance(valid_from, dt.date) or not isinstance(expires_on, dt.date) or \
            expires_on <= valid_from:
        raise InvalidInput(CloudError.ATTESTATION_DATES_INVALID)
    media_type = digest = ""
    if document is not None:
        media_type, digest = documents.check_document(document_name, document)
    attestation = Attestation.objects.create(
        provider=provider, label=label, issuer=_text(issuer, "The issuer", 200),
        scope=_text(scope, "The scope", 500), reference=_text(reference, "The reference", 100),
        valid_from=valid_from, expires_on=expires_on,
        document_name=document_name if document is not None else "", document_type=media_type,
        document_sha256=digest, document=document)
    ledger.enqueue(
        CloudEvent.ATTESTATION_SUBMITTED,
        f"cloud:provider:{provider.pk}",
        actor,
        {
            "attestation": attestation.pk,
            "label": label,
            "issuer": attestation.issuer,
            "reference": attestation.reference,
            "expires_on": expires_on.isoformat(),
            "document_sha256": attestation.document_sha256,
        },
    )
    return attestation


@transaction.atomic
def review_attestation(*, actor, attestation: Attestation, accept: bool,
                       note: str = "") -> Attestation:
    _require_reviewer(actor)
    attestation = Attestation.objects.select_for_update().get(pk=attestation.pk)
    if attestation.status != Attestation.Status.PENDING:
        raise Conflict(CloudError.ATTESTATION_NOT_PENDING)
    if accept and attestation.expires_on < timezone.localdate():
        raise Conflict(CloudError.ATTESTATION_EXPIRED)
    attestation.status = Attestation.Status.ACCEPTED if accept else Attestation.Status.REFUSED
    attestation.reviewed_at = timezone.now()
    attestation.review_note = _text(note, "The note", 2000, required=not accept)
    attestation.save()
    ledger.enqueue(
        (CloudEvent.ATTESTATION_ACCEPTED if accept else CloudEvent.ATTESTATION_REFUSED),
        f"cloud:provider:{attestation.provider_id}",
        actor,
        {"attestation": attestation.pk, "label": attestation.label},
    )
    return attestation


@transaction.atomic
def revoke_attestation(*, actor, attestation: Attestation, reason: str) -> Attestation:
    """The issuer withdrew a label: new orders stop, buyers are told."""
    _require_reviewer(actor)
    attestation = Attestation.objects.select_for_update().get(pk=attestation.pk)
    if attestation.status != Attestation.Status.ACCEPTED:
        raise Conflict(CloudError.ATTESTATION_NOT_ACCEPTED)
    attestation.status = Attestation.Status.REVOKED
    attestation.review_note = _text(reason, "The reason", 2000)
    attestation.save()
    ledger.enqueue(
        CloudEvent.ATTESTATION_REVOKED,
        f"cloud:provider:{attestation.provider_id}",
        actor,
        {"attestation": attestation.pk, "label": attestation.label},
    )
    _alert_buyers_if_suspended(attestation.provider, f"{attestation.get_label_display()} "
                                                     f"{attestation.reference} was revoked")
    return attestation


def expire_attestations(today: dt.date | None = None) -> int:
    """Timer: accepted attestations past their expiry become expired (and alert buyers)."""
    today = today or timezone.localdate()
    expired = 0
    for pk in Attestation.objects.filter(status=Attestation.Status.ACCEPTED,
                                         expires_on__lt=today).values_list("pk", flat=True):
        with transaction.atomic():
            attestation = Attestation.objects.select_for_update().get(pk=pk)
            if attestation.status != Attestation.Status.ACCEPTED:
                continue
            attestation.status = Attestation.Status.EXPIRED
            attestation.save(update_fields=["status"])
            ledger.enqueue(
                CloudEvent.ATTESTATION_EXPIRED,
                f"cloud:provider:{attestation.provider_id}",
                directory.SYSTEM,
                {
                    "attestation": attestation.pk,
                    "label": attestation.label,
                    "expired_on": attestation.expires_on.isoformat(),
                },
            )
            suspended = _alert_buyers_if_suspended(
                attestation.provider,
                f"{attestation.get_label_display()} {attestation.reference} expired")
            notifications.label_expired(attestation, suspended=suspended)
            expired += 1
    return expired


def warn_expiring_attestations(today: dt.date | None = None) -> int:
    """Timer: warn once per step of ``notifications.LABEL_WARNING_DAYS`` of every accepted
    label about to expire; returns how many warnings were sent. Each warning is on the
    ledger, so a provider suspended later cannot say it was never told."""
    today = today or timezone.localdate()
    horizon = today + dt.timedelta(days=max(notifications.LABEL_WARNING_DAYS))
    warned = 0
    for pk in Attestation.objects.filter(status=Attestation.Status.ACCEPTED,
                                         expires_on__gte=today, expires_on__lte=horizon,
                                         ).values_list("pk", flat=True):
        with transaction.atomic():
            attestation = Attestation.objects.select_for_update().select_related(
                "provider__company").get(pk=pk)
            step = _warning_due(attestation, today)
            if step is None:
                continue
            days_left = (attestation.expires_on - today).days
            suspends = _expiry_would_suspend(attestation, today)
            attestation.expiry_warned_days = step
            attestation.save(update_fields=["expiry_warned_days"])
            customers = notifications.label_expiring(attestation, days_left=days_left,
                                                     suspends=suspends)
            ledger.enqueue(CloudEvent.ATTESTATION_EXPIRY_WARNED,
                           f"cloud:provider:{attestation.provider_id}", directory.SYSTEM,
                           attestation=attestation.pk, label=attestation.label,
                           expires_on=attestation.expires_on.isoformat(),
                           days_left=days_left, customers_told=customers)
            warned += 1
    return warned


def _warning_due(attestation: Attestation, today: dt.date) -> int | None:
    """The warning step reached and not yet mailed (the smallest one reached), or None —
    also when a renewed label of the same kind was accepted already."""
    if attestation.status != Attestation.Status.ACCEPTED or attestation.expires_on < today:
        return None
    days_left = (attestation.expires_on - today).days
    reached = [step for step in notifications.LABEL_WARNING_DAYS if days_left <= step]
    if not reached:
        return None
    step = min(reached)
    already = attestation.expiry_warned_days
    if already is not None and step >= already:
        return None
    renewed = Attestation.objects.filter(
        provider=attestation.provider, label=attestation.label,
        status=Attestation.Status.ACCEPTED, expires_on__gt=attestation.expires_on).exists()
    return None if renewed else step


def _expiry_would_suspend(attestation: Attestation, today: dt.date) -> bool:
    """Whether the provider can take orders today and no longer could the day after this
    label expires (no other valid G-cloud label outlasts it)."""
    provider = attestation.provider
    after = attestation.expires_on + dt.timedelta(days=1)
    return (selectors.provider_can_take_orders(provider)
            and Label.G_CLOUD not in selectors.valid_labels(provider, after))


def _alert_buyers_if_suspended(provider: Provider, why: str) -> bool:
    """When a provider can no longer take orders, tell every administration using it;
    returns whether it is suspended."""
    if selectors.provider_can_take_orders(provider):
        return False
    concerned = Administration.objects.filter(
        cloud_orders__plan__offering__broker__provider=provider).distinct()
    for administration in concerned:
        Alert.objects.create(administration=administration, kind=Alert.Kind.PROVIDER,
                             message=f"{provider.company.name}: {why}. New orders from this "
                                     "provider are suspended until a valid G-cloud label is "
                                     "accepted again.")
    return True


@transaction.atomic
def decide_provider(*, actor, provider: Provider, qualify: bool, note: str = "") -> Provider:
    _require_reviewer(actor)
    provider = Provider.objects.select_for_update().get(pk=provider.pk)
    if qualify and not selectors.valid_labels(provider) & {Label.G_CLOUD, Label.N_CLOUD}:
        raise Conflict(CloudError.PROVIDER_WITHOUT_LABEL)
    provider.status = Provider.Status.QUALIFIED if qualify else Provider.Status.REFUSED
    provider.decided_at = timezone.now()
    provider.decision_note = _text(note, "The note", 2000, required=not qualify)
    provider.save()
    ledger.enqueue(
        (CloudEvent.PROVIDER_QUALIFIED if qualify else CloudEvent.PROVIDER_REFUSED),
        f"cloud:provider:{provider.pk}",
        actor,
        {"company": provider.company.matricule_fiscal},
    )
    return provider


# --- brokers and catalogues ---------------------------------------------------------------

def _check_broker_url(url: str) -> str:
    """The platform's outbound-URL policy (sahab.core.outbound): https, a public address
    or one a platform administrator listed, checked before anything is fetched."""
    url = _text(url, "The broker URL", 500)
    parts = urlsplit(url)
    if parts.query:
        raise InvalidInput(CloudError.BROKER_URL_HAS_QUERY)
    outbound.check_url(url, allow_http=settings.CLOUD_ALLOW_HTTP_BROKERS)
    return url


@transaction.atomic
def register_broker(*, actor, url: str, username: str, password: str,
                    provider: Provider | None = None) -> Broker:
    """A qualified provider tells sahab where its service broker is and how to log in."""
    if provider is None or not isinstance(actor, directory.SystemActor):
        provider = _provider_of(actor)
    provider = Provider.objects.select_for_update().get(pk=provider.pk)
    if provider.status != Provider.Status.QUALIFIED:
        raise PermissionDenied(CloudError.BROKER_BEFORE_QUALIFICATION)
    url = _check_broker_url(url)
    username = _text(username, "The user name", 200)
    password = _text(password, "The password", 500)
    broker, _ = Broker.objects.update_or_create(provider=provider, defaults={
        "url": url, "username": username, "catalog_error": "",
        "password_sealed": sealing.seal(password.encode(), f"broker:{provider.pk}")})
    ledger.enqueue(
        CloudEvent.BROKER_REGISTERED, f"cloud:provider:{provider.pk}", actor, {"url": url}
    )
    return broker


def broker_client(broker: Broker, **options) -> osb.Client:
    password = sealing.unseal(broker.password_sealed, f"broker:{broker.provider_id}").decode()
    return osb.Client(broker.url, broker.username, password, **options)


def refresh_catalog(broker: Broker, *, transport=None) -> Broker:
    """Read the broker's catalogue (GET /v2/catalog) and store its offerings and plans."""
    with broker_client(broker, transport=transport) as client:
        reply = client.catalog()
    if reply.outcome != osb.Outcome.DONE:
        Broker.objects.filter(pk=broker.pk).update(catalog_error=reply.description[:2000])
        broker.refresh_from_db()
        return broker
    try:
        store_catalog(broker, reply.body)
    except InvalidInput as exc:
        Broker.objects.filter(pk=broker.pk).update(catalog_error=exc.detail[:2000])
    broker.refresh_from_db()
    return broker


def _category(service: dict) -> str:
    hint = str((service.get("metadata") or {}).get("category", "")).lower()
    tags = {str(t).lower() for t in service.get("tags") or []}
    for category in Category.values:
        if hint == category or category in tags:
            return category
    return Category.OTHER


def _valid_catalog(catalog: dict) -> list[dict]:
    services = catalog.get("services")
    if not isinstance(services, list):
        raise InvalidInput(CloudError.CATALOGUE_WITHOUT_SERVICES)
    for service in services:
        if not isinstance(service, dict) or not all(
                isinstance(service.get(k), str) and service.get(k) for k in ("id", "name")) or \
                not isinstance(service.get("plans"), list) or not service["plans"]:
            raise InvalidInput(CloudError.CATALOGUE_SERVICE_INCOMPLETE)
        _check_service_types(service)
        for plan in service["plans"]:
            if not isinstance(plan, dict) or not all(
                    isinstance(plan.get(k), str) and plan.get(k) for k in ("id", "name")):
                raise InvalidInput(CloudError.CATALOGUE_PLAN_INCOMPLETE)
            _check_plan_types(plan)
    return services


# The catalogue fields the platform reads, with their types (the Open Service Broker API's,
# and the metadata conventions of docs/cloud.md). A catalogue is outside input: a value
# of another type is refused with it, not stored to break the public catalogue, orders,
# metering or reports later. Absent and null values are allowed.
_SERVICE_TYPES = {"tags": list, "metadata": dict}
_SERVICE_METADATA_TYPES = {"displayName": str, "category": str, "locations": list}
_PLAN_TYPES = {"metadata": dict, "schemas": dict, "maximum_polling_duration": int}
_PLAN_METADATA_TYPES = {"displayName": str, "unavailableReason": str, "limits": dict,
                        "resources": dict, "costs": list}
_SCHEMA_ACTIONS = {"service_instance": ("create", "update"), "service_binding": ("create",)}


def _check_types(values: dict, types: dict, *, item: str, within: str = "") -> None:
    for field, kind in types.items():
        value = values.get(field)
        # bool is an int to Python, never to the catalogue
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            _wrong_type(within + field, item)


def _wrong_type(field: str, item: str) -> NoReturn:
    raise InvalidInput(CloudError.CATALOGUE_FIELD_WRONG_TYPE, field=field, item=item)


def _check_service_types(service: dict) -> None:
    item = service["id"]
    _check_types(service, _SERVICE_TYPES, item=item)
    metadata = service.get("metadata") or {}
    _check_types(metadata, _SERVICE_METADATA_TYPES, item=item, within="metadata.")
    if not all(isinstance(tag, str) for tag in service.get("tags") or []):
        _wrong_type("tags", item)
    if not all(isinstance(place, str) for place in metadata.get("locations") or []):
        _wrong_type("metadata.locations", item)


def _check_plan_types(plan: dict) -> None:
    item = plan["id"]
    _check_types(plan, _PLAN_TYPES, item=item)
    if plan.get("maximum_polling_duration") is not None and plan["maximum_polling_duration"] <= 0:
        _wrong_type("maximum_polling_duration", item)
    metadata = plan.get("metadata") or {}
    _check_types(metadata, _PLAN_METADATA_TYPES, item=item, within="metadata.")
    for cost in metadata.get("costs") or []:
        if not isinstance(cost, dict) or not isinstance(cost.get("unit", ""), str) or \
                not isinstance(cost.get("amount") or {}, dict):
            _wrong_type("metadata.costs", item)
    if not all(isinstance(v, int | float) and not isinstance(v, bool)
               for v in (metadata.get("resources") or {}).values()):
        _wrong_type("metadata.resources", item)
    _check_schemas(plan.get("schemas") or {}, item)


def _check_schemas(schemas: dict, item: str) -> None:
    """Each parameters schema is an object and a valid JSON schema of its own draft."""
    import jsonschema

    for kind, actions in _SCHEMA_ACTIONS.items():
        steps = _object_or_absent(schemas.get(kind), f"schemas.{kind}", item)
        for action in actions:
            field = f"schemas.{kind}.{action}"
            step = _object_or_absent(steps.get(action), field, item)
            parameters = _object_or_absent(step.get("parameters"), f"{field}.parameters", item)
            try:
                jsonschema.validators.validator_for(parameters).check_schema(parameters)
            except jsonschema.SchemaError:
                _wrong_type(f"{field}.parameters", item)


def _object_or_absent(value, field: str, item: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        _wrong_type(field, item)
    return value


@transaction.atomic
def store_catalog(broker: Broker, catalog: dict) -> None:
    """Offerings and plans as the catalogue says; those it no longer lists stay, inactive."""
    services = _valid_catalog(catalog)
    seen_offerings, seen_plans = [], []
    for service in services:
        offering, _ = Offering.objects.update_or_create(
            broker=broker, service_id=service["id"][:200], defaults={
                "name": service["name"][:200],
                "description": str(service.get("description", ""))[:5000],
                "category": _category(service), "tags": list(service.get("tags") or [])[:50],
                "bindable": bool(service.get("bindable")),
                "plan_updateable": bool(service.get("plan_updateable")),
                "instances_retrievable": bool(service.get("instances_retrievable")),
                "bindings_retrievable": bool(service.get("bindings_retrievable")),
                "metadata": service.get("metadata") or {}, "active": True})
        seen_offerings.append(offering.pk)
        for plan in service["plans"]:
            metadata = plan.get("metadata") or {}
            polling = plan.get("maximum_polling_duration")
            record, _ = ServicePlan.objects.update_or_create(
                offering=offering, plan_id=plan["id"][:200], defaults={
                    "name": plan["name"][:200],
                    "description": str(plan.get("description", ""))[:5000],
                    "bindable": bool(plan.get("bindable", service.get("bindable"))),
                    "free": bool(plan.get("free", True)),
                    "plan_updateable": bool(plan.get("plan_updateable",
                                                     service.get("plan_updateable"))),
                    "metadata": metadata, "schemas": plan.get("schemas") or {},
                    "maximum_polling_duration": min(polling, MAX_POLLING_SECONDS)
                    if polling else None,
                    "available": metadata.get("available", True) is not False, "active": True})
            seen_plans.append(record.pk)
    Offering.objects.filter(broker=broker).exclude(pk__in=seen_offerings).update(active=False)
    ServicePlan.objects.filter(offering__broker=broker).exclude(pk__in=seen_plans) \
        .update(active=False)
    Broker.objects.filter(pk=broker.pk).update(catalog_read_at=timezone.now(), catalog_error="")
    ledger.enqueue(
        CloudEvent.CATALOG_READ,
        f"cloud:provider:{broker.provider_id}",
        directory.SYSTEM,
        {"services": len(services), "plans": len(seen_plans)},
    )


def refresh_all_catalogs() -> int:
    """Timer: read every registered broker's catalogue. One broker's failure, whatever
    it is, is recorded as its catalogue error and stops nobody else's refresh."""
    count = 0
    for broker in Broker.objects.select_related("provider").filter(
            provider__status=Provider.Status.QUALIFIED):
        try:
            refresh_catalog(broker)
        except Exception as exc:  # outside input: isolate, record, go on
            log.exception("The catalogue of broker %s could not be stored", broker.pk)
            refusal = InvalidInput(CloudError.CATALOGUE_NOT_STORED, error=type(exc).__name__)
            Broker.objects.filter(pk=broker.pk).update(catalog_error=refusal.detail[:2000])
        count += 1
    return count


# --- budgets ------------------------------------------------------------------------------

def _require_budget_holder(actor, administration: Administration) -> None:
    """Finance agents budget for their whole ministry; administrators for their subtree."""
    if directory.is_platform_admin(actor):
        return
    agent = directory.agent_of(actor)
    allowed = agent is not None and (
        (Role.FINANCE in agent.role_set and
         administration.path.startswith(selectors.ministry_path(agent.administration))) or
        (Role.ADMINISTRATION_ADMIN in agent.role_set and
         administration.is_within(agent.administration)))
    if not allowed:
        raise PermissionDenied(CloudError.BUDGET_FORBIDDEN,
                               administration=read_when_rendered(lambda: administration.name))


@transaction.atomic
def set_budget(*, actor, administration: Administration, year: int, amount,
               thresholds: list[int] | None = None) -> Budget:
    _require_budget_holder(actor, administration)
    if not isinstance(year, int) or not 2000 <= year <= 2100:
        raise InvalidInput(CloudError.BUDGET_YEAR_OUT_OF_RANGE)
    amount = _money(amount, "The budget")
    thresholds = sorted(set(thresholds if thresholds is not None else [50, 80, 100]))
    if not thresholds or any(not isinstance(t, int) or not 1 <= t <= 200 for t in thresholds):
        raise InvalidInput(CloudError.BUDGET_THRESHOLDS_INVALID)
    budget, _ = Budget.objects.update_or_create(
        administration=administration, year=year,
        defaults={"amount": amount, "thresholds": thresholds})
    spent = selectors.spent(administration, year)
    budget.alerted = [t for t in budget.alerted if spent * 100 >= amount * t]
    budget.save(update_fields=["alerted"])
    ledger.enqueue(
        CloudEvent.BUDGET_SET,
        f"cloud:budget:{administration.code}:{year}",
        actor,
        {
            "administration": administration.code,
            "year": year,
            "amount": str(amount),
            "thresholds": thresholds,
        },
    )
    return budget


# --- orders -------------------------------------------------------------------------------

def _agent_with_role(actor, administration: Administration, role: str, *,
                     ministry_wide: bool = False):
    """The actor is an agent with ``role`` over ``administration``: in its own subtree, or
    anywhere in its ministry for ``ministry_wide`` roles (finance)."""
    if isinstance(actor, directory.SystemActor):
        return None
    agent = directory.agent_of(actor)
    scope = selectors.ministry_path(agent.administration) if agent and ministry_wide \
        else (agent.administration.path if agent else None)
    if agent is None or role not in agent.role_set or not administration.path.startswith(scope):
        raise PermissionDenied(
            CloudError.ROLE_REQUIRED_IN_MINISTRY if ministry_wide else CloudError.ROLE_REQUIRED,
            role=read_when_rendered(lambda: str(Role(role).label).lower()),
            administration=read_when_rendered(lambda: administration.name))
    return agent


def _it_officer(actor, administration: Administration):
    return _agent_with_role(actor, administration, Role.IT_OFFICER)


# orders of different budgets are placed side by side and may draw the same next number
ORDER_NUMBER_ATTEMPTS = 5


def _next_number(now: dt.datetime) -> str:
    prefix = f"CL-{now.year}-"
    last = Order.objects.filter(number__startswith=prefix).order_by("-number") \
        .values_list("number", flat=True).first()
    return f"{prefix}{int(last.rsplit('-', 1)[1]) + 1 if last else 1:05d}"


def _check_parameters(plan: ServicePlan, parameters) -> dict:
    if not isinstance(parameters, dict):
        raise InvalidInput(CloudError.PARAMETERS_NOT_OBJECT)
    schema = plan.parameters_schema
    if schema:
        import jsonschema
        from referencing import Registry
        from referencing.exceptions import Unresolvable

        try:
            # an empty registry: a "$ref" to anything outside the schema is unresolvable,
            # never fetched (jsonschema's default would fetch remote URLs)
            jsonschema.validate(parameters, schema, registry=Registry())
        except jsonschema.ValidationError as exc:
            raise InvalidInput(CloudError.PARAMETERS_INVALID, error=exc.message) from None
        except (jsonschema.SchemaError, Unresolvable):
            raise InvalidInput(CloudError.PARAMETER_SCHEMA_INVALID) from None
    return parameters


def _check_budget(administration: Administration, monthly: Decimal, now: dt.datetime) -> None:
    """The order must fit in what is left of every budget over the administration this
    year (its own and its parents'), so that no unit's budget lifts its ministry's.

    The budgets' rows stay locked until the caller's commit, so that two writes
    spending one budget at the same moment (orders, approvals, plan changes) are checked
    one after the other, the second seeing what the first committed."""
    budgets = list(selectors.budgets_over(administration, now.year)
                   .select_for_update(of=("self",)))
    check = selectors.budget_check(administration, monthly, now, budgets)
    if check.budget is None:
        raise Conflict(CloudError.NO_BUDGET, year=now.year,
                       administration=read_when_rendered(lambda: administration.name))
    if not check.fits:
        raise Conflict(CloudError.BUDGET_EXCEEDED, year=now.year, amount=check.budget.amount,
                       committed=f"{check.committed:.3f}", needed=f"{check.needed:.3f}")


@transaction.atomic
def place_order(*, actor, plan: ServicePlan, purpose: str, parameters: dict | None = None,
                administration: Administration | None = None,
                now: dt.datetime | None = None) -> Order:
    """An IT officer orders a plan for their administration, at the contract's price.

    Orders above the approval threshold wait for the administration's finance role;
    the others are approved at once and provisioning starts.

    The order's entries are written pending (``ledger.enqueue``), as a bid's: the order
    holds its budget's row until its commit, but not the ledger's lock, so orders on
    other budgets and every other write go on meanwhile. ``order.promise`` is the log's
    signed promise; the sequencer gives the entry its index within a second and
    ``ledger.fill_indexes`` copies it to ``order.ledger_index``.
    """
    now = _now(now)
    if administration is None:
        agent = directory.agent_of(actor)
        if agent is None:
            raise PermissionDenied(CloudError.ORDER_AGENTS_ONLY)
        administration = agent.administration
    _it_officer(actor, administration)
    plan = ServicePlan.objects.select_related("offering__broker__provider__company").get(pk=plan.pk)
    if refusal := selectors.not_orderable(plan):
        raise refusal
    price = selectors.contract_price(plan)
    parameters = _check_parameters(plan, parameters or {})
    monthly = selectors.monthly_cost(price.unit_price)
    _check_budget(administration, monthly, now)
    needs_approval = selectors.needs_approval(monthly)
    purpose = _text(purpose, "The purpose", 500)
    for attempt in range(ORDER_NUMBER_ATTEMPTS):
        number = _next_number(now)
        try:
            # a savepoint: an order of another budget that took the number meanwhile
            # leaves this transaction usable, to try the next number
            with transaction.atomic():
                promise = ledger.enqueue(
                    CloudEvent.ORDER_PLACED,
                    f"cloud:order:{number}",
                    actor,
                    {
                        "administration": administration.code,
                        "provider": plan.offering.broker.provider.company.matricule_fiscal,
                        "service": plan.offering.service_id,
                        "plan": plan.plan_id,
                        "contract": price.contract.tender.ocid,
                        "unit_price": str(price.unit_price),
                        "monthly_estimate": str(monthly),
                        "needs_approval": needs_approval,
                    },
                )
                order = Order.objects.create(
                    number=number, administration=administration, ordered_by=actor,
                    plan=plan, contract=price.contract, unit_price=price.unit_price,
                    monthly_estimate=monthly, purpose=purpose, parameters=parameters,
                    status=Order.Status.PENDING_APPROVAL if needs_approval
                    else Order.Status.APPROVED,
                    created_at=now, ledger_pending=promise.pending)
            break
        except IntegrityError:
            if attempt + 1 == ORDER_NUMBER_ATTEMPTS or \
                    not Order.objects.filter(number=number).exists():
                raise
    if not needs_approval:
        order.decided_at = now
        order.save(update_fields=["decided_at"])
        _start_instance(order, now)
    else:
        notifications.approval_needed(order)
    order.promise = promise
    return order


def order_entry(order: dict) -> ledger.HeldEntry:
    """The pending entry an order row holds, from its ``number`` (unique, and the
    entry's subject: ``ledger.keeps_pending_entries``)."""
    return ledger.HeldEntry(CloudEvent.ORDER_PLACED.value, f"cloud:order:{order['number']}")


def _start_instance(order: Order, now: dt.datetime) -> Instance:
    instance = Instance.objects.create(
        order=order, instance_id=str(uuid.uuid4()), plan=order.plan, unit_price=order.unit_price,
        state=InstanceState.REQUESTED, operation=Operation.PROVISION, next_attempt_at=now,
        created_at=now, requested_by=order.ordered_by)
    # pending, as the order's own entry: after it in the log, since the sequencer
    # integrates entries in the order they were written
    ledger.enqueue(
        CloudEvent.INSTANCE_REQUESTED,
        f"cloud:order:{order.number}",
        directory.SYSTEM,
        {"instance": instance.instance_id, "plan": order.plan.plan_id},
    )
    return instance


def _finance_agent(actor, administration: Administration):
    return _agent_with_role(actor, administration, Role.FINANCE, ministry_wide=True)


@transaction.atomic
def decide_order(*, actor, order: Order, approve: bool, note: str = "",
                 now: dt.datetime | None = None) -> Order:
    now = _now(now)
    order = Order.objects.select_for_update().select_related("plan", "administration") \
        .get(pk=order.pk)
    if not selectors.may_decide_order(actor, order):
        if actor == order.ordered_by:
            raise PermissionDenied(CloudError.ORDER_SELF_APPROVAL)
        _finance_agent(actor, order.administration)  # says who may
        raise PermissionDenied(CloudError.ORDER_DECISION_FORBIDDEN)
    if order.status != Order.Status.PENDING_APPROVAL:
        raise Conflict(CloudError.ORDER_ALREADY_DECIDED)
    if approve:
        if refusal := selectors.not_orderable(order.plan):
            raise refusal
        _check_budget(order.administration, order.monthly_estimate, now)
    order.status = Order.Status.APPROVED if approve else Order.Status.REFUSED
    order.decided_at = now
    order.decision_note = _text(note, "The note", 2000, required=not approve)
    order.save()
    ledger.enqueue(
        (CloudEvent.ORDER_APPROVED if approve else CloudEvent.ORDER_REFUSED),
        f"cloud:order:{order.number}",
        actor,
        {"note_sha256": hashlib.sha256(order.decision_note.encode()).hexdigest()},
    )
    if approve:
        _start_instance(order, now)
    notifications.order_decided(order)
    return order


def _instance_for_update(instance: Instance) -> Instance:
    return Instance.objects.select_for_update().select_related(
        "order__administration", "plan__offering").get(pk=instance.pk)


@transaction.atomic
def request_binding(*, actor, instance: Instance, name: str,
                    now: dt.datetime | None = None) -> Binding:
    """Ask the broker for credentials for one application; they are shown once."""
    now = _now(now)
    instance = _instance_for_update(instance)
    _it_officer(actor, instance.order.administration)
    if instance.state != InstanceState.ACTIVE:
        raise Conflict(CloudError.CREDENTIALS_NEED_ACTIVE_INSTANCE)
    if not instance.plan.bindable:
        raise Conflict(CloudError.PLAN_WITHOUT_CREDENTIALS)
    binding = Binding.objects.create(
        instance=instance, binding_id=str(uuid.uuid4()), name=_text(name, "The name", 100),
        state=BindingState.REQUESTED, operation=Operation.BIND, next_attempt_at=now,
        created_by=actor, requested_by=actor, created_at=now)
    ledger.enqueue(
        CloudEvent.BINDING_REQUESTED,
        f"cloud:order:{instance.order.number}",
        actor,
        {"binding": binding.binding_id},
    )
    return binding


@transaction.atomic
def reveal_credentials(*, actor, binding: Binding) -> dict:
    """The credentials, once, to the agent who asked for them."""
    binding = Binding.objects.select_for_update().select_related("instance__order") \
        .get(pk=binding.pk)
    if binding.created_by_id != getattr(actor, "pk", None):
        raise PermissionDenied(CloudError.CREDENTIALS_OF_ANOTHER_AGENT)
    if binding.state != BindingState.READY or binding.credentials_sealed is None:
        raise Conflict(CloudError.CREDENTIALS_NOT_READY)
    if binding.credentials_revealed_at is not None:
        raise Conflict(CloudError.CREDENTIALS_ALREADY_SHOWN)
    binding.credentials_revealed_at = timezone.now()
    binding.save(update_fields=["credentials_revealed_at"])
    ledger.enqueue(
        CloudEvent.BINDING_CREDENTIALS_SHOWN,
        f"cloud:order:{binding.instance.order.number}",
        actor,
        {"binding": binding.binding_id},
    )
    return sealing.unseal_json(binding.credentials_sealed, f"binding:{binding.binding_id}")


@transaction.atomic
def request_unbind(*, actor, binding: Binding, now: dt.datetime | None = None) -> Binding:
    now = _now(now)
    binding = Binding.objects.select_for_update().select_related(
        "instance__order__administration").get(pk=binding.pk)
    _it_officer(actor, binding.instance.order.administration)
    if binding.state != BindingState.READY:
        raise Conflict(CloudError.CREDENTIALS_NOT_REVOCABLE)
    _schedule_unbind(binding, actor, now)
    return binding


def _schedule_unbind(binding: Binding, actor, now: dt.datetime) -> None:
    binding.state = BindingState.UNBINDING
    binding.operation, binding.polling, binding.attempts = Operation.UNBIND, False, 0
    binding.next_attempt_at, binding.requested_by = now, actor if actor.pk else None
    binding.save()
    ledger.enqueue(
        CloudEvent.BINDING_UNBIND_REQUESTED,
        f"cloud:order:{binding.instance.order.number}",
        actor,
        {"binding": binding.binding_id},
    )


def _refuse_unapproved_increase(unit_price: Decimal) -> None:
    """A change to a dearer plan whose monthly cost needs the finance service's approval
    is refused: only an order goes through that approval, so the larger plan is ordered
    as a new instance (an order approved for one plan approves no other)."""
    monthly = selectors.monthly_cost(unit_price)
    if selectors.needs_approval(monthly):
        raise Conflict(CloudError.PLAN_CHANGE_NEEDS_APPROVAL, monthly=f"{monthly:.3f}",
                       threshold=f"{settings.CLOUD_APPROVAL_THRESHOLD:.3f}")


@transaction.atomic
def request_plan_change(*, actor, instance: Instance, plan: ServicePlan,
                        now: dt.datetime | None = None) -> Instance:
    now = _now(now)
    instance = _instance_for_update(instance)
    _it_officer(actor, instance.order.administration)
    if instance.state != InstanceState.ACTIVE:
        raise Conflict(CloudError.PLAN_CHANGE_NEEDS_ACTIVE)
    if plan.offering_id != instance.plan.offering_id or plan.pk == instance.plan_id:
        raise InvalidInput(CloudError.PLAN_CHANGE_SAME_OR_OTHER_SERVICE)
    if not instance.plan.plan_updateable:
        raise Conflict(CloudError.PLAN_NOT_UPDATEABLE)
    if refusal := selectors.not_orderable(plan):
        raise refusal
    price = selectors.contract_price(plan)
    extra = (price.unit_price - instance.unit_price) * selectors.HOURS_PER_MONTH
    if extra > 0:
        _refuse_unapproved_increase(price.unit_price)
        _check_budget(instance.order.administration, extra, now)
    instance.state = InstanceState.UPDATING
    instance.target_plan, instance.target_unit_price = plan, price.unit_price
    instance.operation, instance.polling, instance.attempts = Operation.UPDATE, False, 0
    instance.next_attempt_at, instance.requested_by, instance.last_error = now, actor, ""
    instance.save()
    ledger.enqueue(
        CloudEvent.INSTANCE_UPDATE_REQUESTED,
        f"cloud:order:{instance.order.number}",
        actor,
        {"plan": plan.plan_id, "unit_price": str(price.unit_price)},
    )
    return instance


@transaction.atomic
def request_deprovision(*, actor, instance: Instance,
                        now: dt.datetime | None = None) -> Instance:
    """Delete the instance: its credentials are revoked first, then the broker deletes it."""
    now = _now(now)
    instance = _instance_for_update(instance)
    _it_officer(actor, instance.order.administration)
    if instance.state != InstanceState.ACTIVE:
        raise Conflict(CloudError.DELETE_NEEDS_ACTIVE)
    for binding in instance.bindings.select_for_update().filter(state=BindingState.READY):
        _schedule_unbind(binding, actor, now)
    instance.state = InstanceState.DEPROVISIONING
    instance.operation, instance.polling, instance.attempts = Operation.DEPROVISION, False, 0
    instance.next_attempt_at, instance.requested_by, instance.last_error = now, actor, ""
    instance.save()
    ledger.enqueue(
        CloudEvent.INSTANCE_DEPROVISION_REQUESTED,
        f"cloud:order:{instance.order.number}",
        actor,
        {"instance": instance.instance_id},
    )
    return instance


@transaction.atomic
def retry_provisioning(*, actor, instance: Instance, now: dt.datetime | None = None) -> Instance:
    """Try a failed provisioning again (after its cause was fixed), with the same id."""
    now = _now(now)
    instance = _instance_for_update(instance)
    _it_officer(actor, instance.order.administration)
    if instance.state != InstanceState.FAILED:
        raise Conflict(CloudError.RETRY_NEEDS_FAILED)
    if refusal := selectors.not_orderable(instance.plan):
        raise refusal
    # a failed instance counts for nothing in the budget: trying again spends it anew
    _check_budget(instance.order.administration, selectors.monthly_cost(instance.unit_price),
                  now)
    instance.state = InstanceState.REQUESTED
    instance.operation, instance.polling, instance.attempts = Operation.PROVISION, False, 0
    instance.next_attempt_at, instance.requested_by = now, actor
    instance.failure = instance.last_error = ""
    instance.save()
    ledger.enqueue(
        CloudEvent.INSTANCE_RETRY_REQUESTED,
        f"cloud:order:{instance.order.number}",
        actor,
        {"instance": instance.instance_id},
    )
    return instance
