"""The reference service broker at ``/osb/v2/``: PostgreSQL databases as a service.

It speaks the Open Service Broker API v2.17 as a provider would: HTTP basic auth, the
``X-Broker-API-Version`` header (412 without a supported one), asynchronous
provisioning, update and deprovisioning (``accepts_incomplete=true`` is required: 422
AsyncRequired otherwise), synchronous bindings, last_operation for instances and
bindings, 400/404/409/410/412/422 errors with ConcurrencyError while an operation runs.
Every request is kept in ``BrokerRequest`` with its originating-identity header.

The slow work (creating and dropping databases) is done by ``run_pending_operations``,
a background job, never inside the HTTP request: the request records what is asked and
answers 202 with an operation id, as a provider's broker would.

openbrokerapi (Flask) was considered: it would need a second WSGI application and its
own storage beside Django's; these views are a few hundred lines on Django's own
request handling, database and audit trail.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import secrets
import uuid
from functools import wraps

import jsonschema
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from sahab.cloud import dbaas
from sahab.cloud.models import BrokerRequest, DbaasBinding, DbaasInstance
from sahab.core import keys
from sahab.core import secrets as sealing

log = logging.getLogger(__name__)

SERVICE_ID = "6f3d4b0e-5a51-4d8c-9a57-2f1a7c1e0d01"
USERNAME = "sahab-broker"
SUPPORTED_MINOR = range(13, 18)  # 2.13 … 2.17
_ID = re.compile(r"^[A-Za-z0-9._~:-]{1,200}$")

# The plans: limits are enforced (connections) or metered and alerted (size); the
# resources are what an equivalent on-premise server would need (savings report).
PLANS = [
    {"id": "6f3d4b0e-5a51-4d8c-9a57-2f1a7c1e0d11", "name": "pg-small",
     "displayName": "PostgreSQL S", "connections": 20, "size_gb": 5,
     "resources": {"vcpu": 1, "memory_gb": 2, "storage_gb": 5}, "list_price": "0.180"},
    {"id": "6f3d4b0e-5a51-4d8c-9a57-2f1a7c1e0d12", "name": "pg-medium",
     "displayName": "PostgreSQL M", "connections": 100, "size_gb": 50,
     "resources": {"vcpu": 2, "memory_gb": 8, "storage_gb": 50}, "list_price": "0.650"},
    {"id": "6f3d4b0e-5a51-4d8c-9a57-2f1a7c1e0d13", "name": "pg-large",
     "displayName": "PostgreSQL L", "connections": 300, "size_gb": 250,
     "resources": {"vcpu": 8, "memory_gb": 32, "storage_gb": 250}, "list_price": "2.400"},
]
PLAN_BY_ID = {plan["id"]: plan for plan in PLANS}

CREATE_PARAMETERS = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "application": {"type": "string", "maxLength": 100, "title": "Application",
                        "description": "The information system that will use the database."},
        "environment": {"type": "string", "enum": ["production", "staging", "test"],
                        "title": "Environment"},
    },
}


def catalog() -> dict:
    """The broker's catalogue; plans are unavailable while no DBaaS cluster is configured."""
    available = dbaas.configured()
    plans = []
    for plan in PLANS:
        plans.append({
            "id": plan["id"], "name": plan["name"],
            "description": f"PostgreSQL 15 database, {plan['size_gb']} GB, "
                           f"{plan['connections']} connections",
            "free": False, "bindable": True, "plan_updateable": True,
            "maximum_polling_duration": 3600,
            "metadata": {
                "displayName": plan["displayName"],
                "bullets": [f"{plan['size_gb']} GB", f"{plan['connections']} connections",
                            "Daily backups in Tunisia"],
                "costs": [{"amount": {"tnd": float(plan["list_price"])}, "unit": "HOURLY"}],
                "limits": {"connections": plan["connections"],
                           "size_bytes": plan["size_gb"] * 1024**3},
                "resources": plan["resources"],
                "available": available,
                **({} if available else {"unavailableReason":
                                         "No PostgreSQL cluster is configured (SAHAB_DBAAS_URL)."}),
            },
            "schemas": {"service_instance": {"create": {"parameters": CREATE_PARAMETERS},
                                             "update": {"parameters": CREATE_PARAMETERS}},
                        "service_binding": {"create": {"parameters": {
                            "$schema": "http://json-schema.org/draft-04/schema#",
                            "type": "object", "additionalProperties": False,
                            "properties": {}}}}},
        })
    return {"services": [{
        "id": SERVICE_ID, "name": "sahab-postgresql",
        "description": "Managed PostgreSQL databases hosted in Tunisia.",
        "bindable": True, "plan_updateable": True, "instances_retrievable": True,
        "bindings_retrievable": True, "allow_context_updates": True,
        "tags": ["postgresql", "database", "relational"],
        "metadata": {"displayName": "PostgreSQL", "category": "database",
                     "providerDisplayName": "sahab reference broker",
                     "locations": ["Tunis"]},
        "plans": plans,
    }]}


# --- HTTP plumbing ------------------------------------------------------------------------

class BrokerError(Exception):
    def __init__(self, status: int, description: str, error: str = "", **extra):
        super().__init__(description)
        self.status, self.description, self.error, self.extra = status, description, error, extra


def _error_response(exc: BrokerError) -> JsonResponse:
    body = {"description": exc.description, **exc.extra}
    if exc.error:
        body["error"] = exc.error
    return JsonResponse(body, status=exc.status)


def _authorised(request: HttpRequest) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return False
    try:
        username, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return secrets.compare_digest(username, USERNAME) and \
        secrets.compare_digest(password, keys.load_osb_password())


def _check_version(request: HttpRequest) -> None:
    version = request.headers.get("X-Broker-API-Version", "")
    match = re.fullmatch(r"2\.(\d{1,3})", version)
    if not match or int(match.group(1)) not in SUPPORTED_MINOR:
        raise BrokerError(412, f"X-Broker-API-Version 2.13 to 2.17 is required, got "
                               f"{version or 'none'}.")


def _identity(request: HttpRequest) -> tuple[str, str]:
    """The platform and the decoded JSON of ``X-Broker-API-Originating-Identity``."""
    header = request.headers.get("X-Broker-API-Originating-Identity", "")
    if not header:
        return "", ""
    platform, _, value = header.partition(" ")
    try:
        decoded = base64.b64decode(value, validate=True).decode()
        json.loads(decoded)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BrokerError(400, "X-Broker-API-Originating-Identity is not base64 JSON.") from None
    return platform[:100], decoded


def endpoint(view):
    """Auth, version check, error bodies and the audit trail for one OSB endpoint."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, instance_id: str = "", binding_id: str = ""):
        platform = identity = ""
        try:
            if not _authorised(request):
                response = JsonResponse({"description": "HTTP basic credentials required."},
                                        status=401)
                response["WWW-Authenticate"] = 'Basic realm="sahab broker"'
            else:
                _check_version(request)
                platform, identity = _identity(request)
                for value in (instance_id, binding_id):
                    if value and not _ID.match(value):
                        raise BrokerError(400, "Identifiers are 1 to 200 URL-safe characters.")
                kwargs = {"instance_id": instance_id} if instance_id else {}
                if binding_id:
                    kwargs["binding_id"] = binding_id
                response = view(request, **kwargs)
        except BrokerError as exc:
            response = _error_response(exc)
        BrokerRequest.objects.create(
            method=request.method, path=request.path[:500], status=response.status_code,
            api_version=request.headers.get("X-Broker-API-Version", "")[:20],
            originating_platform=platform, originating_identity=identity,
            request_identity=request.headers.get("X-Broker-API-Request-Identity", "")[:100],
            instance_id=instance_id[:200], binding_id=binding_id[:200])
        if rid := request.headers.get("X-Broker-API-Request-Identity"):
            response["X-Broker-API-Request-Identity"] = rid[:100]
        return response

    return wrapper


def _body(request: HttpRequest) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BrokerError(400, "The body is not JSON.") from None
    if not isinstance(body, dict):
        raise BrokerError(400, "The body must be a JSON object.")
    return body


def _require_async(request: HttpRequest) -> None:
    if request.GET.get("accepts_incomplete") != "true":
        raise BrokerError(422, "This service plan requires client support for asynchronous "
                               "service operations.", "AsyncRequired")


def _service_and_plan(service_id, plan_id) -> dict:
    if not isinstance(service_id, str) or not isinstance(plan_id, str) or \
            not service_id or not plan_id:
        raise BrokerError(400, "service_id and plan_id are required.")
    if service_id != SERVICE_ID:
        raise BrokerError(400, f"Unknown service_id {service_id[:100]}.")
    plan = PLAN_BY_ID.get(plan_id)
    if plan is None:
        raise BrokerError(400, f"Unknown plan_id {plan_id[:100]}.")
    return plan


def _parameters(body: dict) -> dict:
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        raise BrokerError(400, "parameters must be a JSON object.")
    try:
        jsonschema.validate(parameters, CREATE_PARAMETERS)
    except jsonschema.ValidationError as exc:
        raise BrokerError(400, f"Invalid parameters: {exc.message}") from None
    return parameters


def _locked(instance_id: str) -> DbaasInstance | None:
    return DbaasInstance.objects.select_for_update().filter(instance_id=instance_id).first()


def _dashboard(instance_id: str) -> str:
    return settings.PUBLIC_URL.rstrip("/") + f"/osb/dashboard/{instance_id}"


# --- instances ----------------------------------------------------------------------------

@endpoint
def catalog_view(request):
    if request.method != "GET":
        raise BrokerError(405, "GET only.")
    return JsonResponse(catalog())


@endpoint
@transaction.atomic
def instance_view(request, instance_id):
    handler = {"PUT": _provision, "PATCH": _update, "DELETE": _deprovision,
               "GET": _fetch_instance}.get(request.method)
    if handler is None:
        raise BrokerError(405, "PUT, PATCH, DELETE or GET.")
    return handler(request, instance_id)


def _provision(request, instance_id):
    body = _body(request)
    plan = _service_and_plan(body.get("service_id"), body.get("plan_id"))
    parameters = _parameters(body)
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise BrokerError(400, "context must be a JSON object.")
    _require_async(request)
    existing = _locked(instance_id)
    if existing is not None:
        same = (existing.service_id, existing.plan_id, existing.parameters) == \
            (SERVICE_ID, plan["id"], parameters) and existing.last_operation == "provision"
        if not same:
            raise BrokerError(409, "The instance exists with other attributes.")
        if existing.state == DbaasInstance.State.IN_PROGRESS:
            return JsonResponse({"operation": existing.operation_id,
                                 "dashboard_url": _dashboard(instance_id)}, status=202)
        if existing.state == DbaasInstance.State.SUCCEEDED:
            return JsonResponse({"dashboard_url": _dashboard(instance_id)}, status=200)
        raise BrokerError(409, "The instance failed to provision; delete it first.")
    if not dbaas.configured():
        raise BrokerError(422, "No PostgreSQL cluster is configured: the plan is unavailable.")
    names = dbaas.names_for(instance_id)
    operation = uuid.uuid4().hex
    DbaasInstance.objects.create(
        instance_id=instance_id, service_id=SERVICE_ID, plan_id=plan["id"],
        parameters=parameters, context=context,
        organization_guid=str(body.get("organization_guid", ""))[:200],
        space_guid=str(body.get("space_guid", ""))[:200], database=names.database,
        owner_role=names.owner, last_operation="provision", operation_id=operation,
        state=DbaasInstance.State.IN_PROGRESS)
    return JsonResponse({"operation": operation, "dashboard_url": _dashboard(instance_id)},
                        status=202)


def _busy(instance: DbaasInstance) -> None:
    if instance.state == DbaasInstance.State.IN_PROGRESS:
        raise BrokerError(422, f"A {instance.last_operation} operation is in progress.",
                          "ConcurrencyError")


def _update(request, instance_id):
    body = _body(request)
    service_id = body.get("service_id")
    plan_id = body.get("plan_id")
    instance = _locked(instance_id)
    if instance is None:
        raise BrokerError(404, "No such instance.")
    plan = _service_and_plan(service_id, plan_id or instance.plan_id)
    parameters = _parameters(body) if "parameters" in body else None
    _require_async(request)
    _busy(instance)
    if instance.last_operation == "deprovision":
        raise BrokerError(422, "The instance is being deleted.", "ConcurrencyError")
    if plan["id"] == instance.plan_id and parameters in (None, instance.parameters):
        return JsonResponse({}, status=200)
    if plan["id"] != instance.plan_id:
        measured = _measure_or_none(instance)
        limit = plan["size_gb"] * 1024**3
        if measured and measured.size_bytes > limit:
            raise BrokerError(422, f"The database holds {measured.size_bytes} bytes, more than "
                                   f"the {plan['name']} plan's {limit}.")
    if parameters is not None:
        instance.parameters = parameters
    instance.target_plan_id = plan["id"]
    instance.last_operation = "update"
    instance.operation_id = uuid.uuid4().hex
    instance.state = DbaasInstance.State.IN_PROGRESS
    instance.description = ""
    instance.updated_at = timezone.now()
    instance.save()
    return JsonResponse({"operation": instance.operation_id,
                         "dashboard_url": _dashboard(instance_id)}, status=202)


def _deprovision(request, instance_id):
    _service_and_plan(request.GET.get("service_id"), request.GET.get("plan_id"))
    instance = _locked(instance_id)
    if instance is None:
        raise BrokerError(410, "No such instance.")
    _require_async(request)
    if instance.state == DbaasInstance.State.IN_PROGRESS:
        if instance.last_operation == "deprovision":
            return JsonResponse({"operation": instance.operation_id}, status=202)
        _busy(instance)
    instance.last_operation = "deprovision"
    instance.operation_id = uuid.uuid4().hex
    instance.state = DbaasInstance.State.IN_PROGRESS
    instance.updated_at = timezone.now()
    instance.save()
    return JsonResponse({"operation": instance.operation_id}, status=202)


def _fetch_instance(request, instance_id):
    instance = DbaasInstance.objects.filter(instance_id=instance_id).first()
    if instance is None or (instance.last_operation == "provision" and
                            instance.state != DbaasInstance.State.SUCCEEDED):
        raise BrokerError(404, "No such instance.")
    if instance.state == DbaasInstance.State.IN_PROGRESS:
        raise BrokerError(422, f"A {instance.last_operation} operation is in progress.",
                          "ConcurrencyError")
    return JsonResponse({"service_id": instance.service_id, "plan_id": instance.plan_id,
                         "dashboard_url": _dashboard(instance_id),
                         "parameters": instance.parameters})


@endpoint
def instance_last_operation(request, instance_id):
    if request.method != "GET":
        raise BrokerError(405, "GET only.")
    instance = DbaasInstance.objects.filter(instance_id=instance_id).first()
    if instance is None:
        raise BrokerError(410, "No such instance.")
    operation = request.GET.get("operation")
    if operation and operation != instance.operation_id:
        raise BrokerError(400, "Unknown operation.")
    body = {"state": instance.state}
    if instance.description:
        body["description"] = instance.description
    if instance.state == DbaasInstance.State.FAILED and instance.last_operation == "update":
        body["instance_usable"] = True
        body["update_repeatable"] = True
    return JsonResponse(body)


# --- bindings -----------------------------------------------------------------------------

def _credentials(binding: DbaasBinding) -> dict:
    password = sealing.unseal(binding.password_sealed, f"dbaas-binding:{binding.binding_id}")
    host, port = dbaas.server_address()
    database = binding.instance.database
    return {"uri": f"postgresql://{binding.role}:{password.decode()}@{host}:{port}/{database}",
            "jdbcUrl": f"jdbc:postgresql://{host}:{port}/{database}",
            "username": binding.role, "password": password.decode(), "hostname": host,
            "port": port, "database": database}


@endpoint
@transaction.atomic
def binding_view(request, instance_id, binding_id):
    handler = {"PUT": _bind, "DELETE": _unbind, "GET": _fetch_binding}.get(request.method)
    if handler is None:
        raise BrokerError(405, "PUT, DELETE or GET.")
    return handler(request, instance_id, binding_id)


def _bind(request, instance_id, binding_id):
    body = _body(request)
    plan = _service_and_plan(body.get("service_id"), body.get("plan_id"))
    parameters = body.get("parameters", {})
    if parameters not in ({}, None):
        raise BrokerError(400, "This service takes no binding parameters.")
    bind_resource = body.get("bind_resource", {}) or {}
    if not isinstance(bind_resource, dict):
        raise BrokerError(400, "bind_resource must be a JSON object.")
    instance = _locked(instance_id)
    if instance is None or (instance.last_operation == "provision" and
                            instance.state != DbaasInstance.State.SUCCEEDED):
        raise BrokerError(404, "No such instance.")
    _busy(instance)
    if instance.last_operation == "deprovision":
        raise BrokerError(422, "The instance is being deleted.", "ConcurrencyError")
    existing = DbaasBinding.objects.filter(binding_id=binding_id).first()
    if existing is not None:
        if (existing.instance_id, existing.plan_id, existing.bind_resource) != \
                (instance_id, plan["id"], bind_resource):
            raise BrokerError(409, "The binding exists with other attributes.")
        return JsonResponse({"credentials": _credentials(existing)}, status=200)
    names = dbaas.names_for(instance_id)
    role = dbaas.binding_role_for(instance_id, binding_id)
    limit = PLAN_BY_ID[instance.plan_id]["connections"]
    try:
        password = dbaas.create_login(names, role, connection_limit=limit)
    except dbaas.DbaasUnavailable as exc:
        raise BrokerError(503, f"The database cluster is unavailable: {exc}") from None
    binding = DbaasBinding.objects.create(
        binding_id=binding_id, instance=instance, service_id=SERVICE_ID, plan_id=plan["id"],
        parameters={}, bind_resource=bind_resource, role=role,
        password_sealed=sealing.seal(password.encode(), f"dbaas-binding:{binding_id}"))
    return JsonResponse({"credentials": _credentials(binding)}, status=201)


def _unbind(request, instance_id, binding_id):
    _service_and_plan(request.GET.get("service_id"), request.GET.get("plan_id"))
    binding = DbaasBinding.objects.select_for_update().filter(
        binding_id=binding_id, instance_id=instance_id).first()
    if binding is None:
        raise BrokerError(410, "No such binding.")
    _busy(binding.instance)
    try:
        dbaas.drop_login(dbaas.names_for(instance_id), binding.role)
    except dbaas.DbaasUnavailable as exc:
        raise BrokerError(503, f"The database cluster is unavailable: {exc}") from None
    binding.delete()
    return JsonResponse({}, status=200)


def _fetch_binding(request, instance_id, binding_id):
    binding = DbaasBinding.objects.filter(binding_id=binding_id, instance_id=instance_id).first()
    if binding is None:
        raise BrokerError(404, "No such binding.")
    return JsonResponse({"credentials": _credentials(binding), "parameters": binding.parameters})


@endpoint
def binding_last_operation(request, instance_id, binding_id):
    if request.method != "GET":
        raise BrokerError(405, "GET only.")
    if not DbaasBinding.objects.filter(binding_id=binding_id, instance_id=instance_id).exists():
        raise BrokerError(410, "No such binding.")
    return JsonResponse({"state": "succeeded"})


# --- the background work ------------------------------------------------------------------

def _measure_or_none(instance: DbaasInstance):
    try:
        return dbaas.measure(dbaas.names_for(instance.instance_id))
    except dbaas.DbaasUnavailable:
        return None


def run_pending_operations() -> int:
    """Carry out the operations in progress; returns how many finished."""
    finished = 0
    for instance_id in DbaasInstance.objects.filter(
            state=DbaasInstance.State.IN_PROGRESS).values_list("instance_id", flat=True):
        finished += _run_one(instance_id)
    return finished


def _run_one(instance_id: str) -> int:
    instance = DbaasInstance.objects.filter(instance_id=instance_id,
                                            state=DbaasInstance.State.IN_PROGRESS).first()
    if instance is None:
        return 0
    names = dbaas.names_for(instance_id)
    operation = instance.operation_id
    try:
        if instance.last_operation == "provision":
            limit = PLAN_BY_ID[instance.plan_id]["connections"]
            dbaas.create_database(names, connection_limit=limit)
        elif instance.last_operation == "update":
            dbaas.set_connection_limit(names, PLAN_BY_ID[instance.target_plan_id]["connections"])
        elif instance.last_operation == "deprovision":
            roles = list(instance.bindings.values_list("role", flat=True))
            dbaas.drop_database(names, roles)
        outcome, description = DbaasInstance.State.SUCCEEDED, ""
    except dbaas.DbaasUnavailable as exc:
        log.warning("DBaaS operation on %s waits: %s", instance_id, exc)
        return 0  # the cluster is down: try again on the next run
    except Exception as exc:  # a failed statement: report it through last_operation
        log.exception("DBaaS %s of %s failed", instance.last_operation, instance_id)
        outcome, description = DbaasInstance.State.FAILED, str(exc)[:500]
    with transaction.atomic():
        instance = _locked(instance_id)
        if instance is None or instance.operation_id != operation:
            return 0  # superseded while working
        if instance.last_operation == "deprovision" and outcome == DbaasInstance.State.SUCCEEDED:
            instance.delete()
            return 1
        if instance.last_operation == "provision":
            instance.created = outcome == DbaasInstance.State.SUCCEEDED
        if instance.last_operation == "update" and outcome == DbaasInstance.State.SUCCEEDED:
            instance.plan_id, instance.target_plan_id = instance.target_plan_id, ""
        instance.state, instance.description = outcome, description
        instance.updated_at = timezone.now()
        instance.save()
    return 1


def measurements() -> list[tuple[str, dbaas.Measure]]:
    """Size and connections of every live database, for the hourly usage report."""
    result = []
    for instance in DbaasInstance.objects.filter(created=True).exclude(
            last_operation="deprovision", state=DbaasInstance.State.SUCCEEDED):
        measured = _measure_or_none(instance)
        if measured is not None:
            result.append((instance.instance_id, measured))
    return result
