"""JSON API of the exchange pillar: the registry of subsystems and services, access
grants, gateway tokens and the exchange statistics. Rights are checked in services."""

from __future__ import annotations

import datetime as dt

from django.shortcuts import get_object_or_404
from ninja import Field, Path, Query, Router, Schema, Status
from ninja.pagination import paginate

from sahab.core.errors import CoreError, NotFound, PermissionDenied
from sahab.core.pagination import Paging
from sahab.directory import selectors as directory
from sahab.directory.models import Administration
from sahab.exchange import messagelog, selectors, services
from sahab.exchange.errors import ExchangeError
from sahab.exchange.models import (
    Classification,
    ClientCertificate,
    ClientToken,
    Grant,
    ProviderHost,
    Service,
    Subsystem,
)

router = Router(tags=["exchange"])
Id = Path(..., ge=1, le=2**63 - 1)


class SubsystemIn(Schema):
    administration: str = Field(..., max_length=32)
    code: str = Field(..., max_length=64, description="Empty: the administration itself, "
                                                      "as a member-level client")
    name: str = Field("", max_length=200)


class SubsystemOut(Schema):
    id: int
    identifier: str
    name: str


class ServiceIn(Schema):
    subsystem: int = Field(..., ge=1, le=2**63 - 1)
    code: str = Field(..., min_length=1, max_length=64)
    name: str = Field(..., min_length=1, max_length=200)
    base_url: str = Field(..., min_length=1, max_length=500,
                          description="Where the gateway forwards, inside the intranet")
    owner: str = Field(..., min_length=1, max_length=200)
    classification: Classification = Classification.INTERNAL
    openapi_url: str = Field("", max_length=500)
    timeout_seconds: int = Field(10, ge=1, le=120)
    max_concurrency: int = Field(100, ge=1, le=10_000,
                                 description="Calls relayed at once; more wait")
    openapi: str = Field("", max_length=2_000_000,
                         description="The OpenAPI 3 description (JSON or YAML)")


class ServiceChange(Schema):
    name: str | None = Field(None, min_length=1, max_length=200)
    base_url: str | None = Field(None, min_length=1, max_length=500)
    openapi_url: str | None = Field(None, max_length=500)
    openapi: str | None = Field(None, max_length=2_000_000)
    owner: str | None = Field(None, min_length=1, max_length=200)
    classification: Classification | None = None
    timeout_seconds: int | None = Field(None, ge=1, le=120)
    max_concurrency: int | None = Field(None, ge=1, le=10_000)
    active: bool | None = None


class EndpointIO(Schema):
    method: str = Field(..., max_length=10, description="GET, POST… or * for any")
    path: str = Field(..., max_length=300, description="/persons/* (one segment), "
                                                       "/persons/** (any depth)")


class HostIn(Schema):
    administration: str = Field(..., max_length=32)
    host: str = Field(..., min_length=1, max_length=253)
    port: int = Field(443, ge=1, le=65535)
    path_prefix: str = Field("/", min_length=1, max_length=300)
    allow_internal: bool = Field(False, description="Allow loopback, link-local and "
                                                    "private addresses")
    note: str = Field("", max_length=500)


class HostOut(Schema):
    id: int
    administration: str
    host: str
    port: int
    path_prefix: str
    allow_internal: bool
    note: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @staticmethod
    def resolve_administration(obj: ProviderHost) -> str:
        return obj.administration.code


class LogStatusOut(Schema):
    backlog: int
    oldest_pending_at: dt.datetime | None
    backlog_age_seconds: float
    refused: int
    disagreeing: int = Field(..., description="Latest logged records that differ from "
                                              "their ledger entry")
    missing: int = Field(..., description="Records the worker reported missing from a "
                                          "gateway process's numbering in the last 7 days "
                                          "(deleted in the database, or never written "
                                          "there)")
    alert: bool
    alert_reasons: list[str]
    alert_after_seconds: int


class ExchangeReceiptOut(Schema):
    x_road_id: str
    client: str
    service: str
    status: int
    ledger_index: int
    entry: str = Field(..., description="The ledger entry's exact bytes (JSON)")
    receipt: str = Field(..., description="c2sp.org/tlog-proof@v1 receipt")


class ExchangeReceiptsOut(Schema):
    receipts: list[ExchangeReceiptOut]
    waiting: int = Field(..., description="Exchanges with this id not on the ledger yet")


class ServiceOut(Schema):
    id: int
    identifier: str
    name: str
    classification: Classification
    owner: str
    openapi_url: str
    gateway_url: str

    @staticmethod
    def resolve_gateway_url(obj: Service) -> str:
        return f"/exchange/r1/{obj.identifier}/"


class GrantIn(Schema):
    client: int = Field(..., ge=1, le=2**63 - 1, description="The client subsystem's id")
    service: int = Field(..., ge=1, le=2**63 - 1)
    legal_basis: str = Field(..., min_length=1, max_length=500)
    purpose: str = Field(..., min_length=1, max_length=500)
    expires_at: dt.datetime | None = None
    endpoints: list[EndpointIO] = Field([], max_length=100,
                                        description="Empty: the whole service")


class GrantDecisionIn(Schema):
    approve: bool
    note: str = Field("", max_length=2000)
    rate_per_minute: int | None = Field(None, ge=1, le=100_000)
    expires_at: dt.datetime | None = None
    endpoints: list[EndpointIO] | None = Field(
        None, max_length=100, description="Approve fewer endpoints than asked")


class ExchangeReasonIn(Schema):
    reason: str = Field(..., min_length=1, max_length=2000)


class GrantOut(Schema):
    id: int
    client: str
    service: str
    legal_basis: str
    purpose: str
    status: Grant.Status
    expires_at: dt.datetime | None
    rate_per_minute: int
    requested_at: dt.datetime
    decided_at: dt.datetime | None
    endpoints: list[EndpointIO]

    @staticmethod
    def resolve_client(obj: Grant) -> str:
        return obj.client.identifier

    @staticmethod
    def resolve_service(obj: Grant) -> str:
        return obj.service.identifier


class GatewayTokenIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)


class GatewayTokenOut(Schema):
    id: int
    token: str = Field(..., description="Shown once; send it as Authorization: Bearer")
    prefix: str
    subsystem: str


class GatewayTokenInfo(Schema):
    id: int
    name: str
    prefix: str
    subsystem: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @staticmethod
    def resolve_subsystem(obj: ClientToken) -> str:
        return obj.subsystem.identifier


class StatsOut(Schema):
    service: str
    client: str
    calls: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None


class StatsFilter(Schema):
    days: int = Field(7, ge=1, le=366)


def _agent_required(request) -> None:
    if not (directory.is_agent(request.user) or directory.is_platform_admin(request.user)):
        raise PermissionDenied(ExchangeError.REGISTRY_FOR_AGENTS)


@router.get("/exchange/services", response=list[ServiceOut],
            summary="The services of the intranet (agents)")
@paginate(Paging)
def list_services(request):
    _agent_required(request)
    return Service.objects.filter(active=True).select_related("subsystem__administration")


@router.post("/exchange/subsystems", response={201: SubsystemOut},
             summary="Register an information system of an administration")
def add_subsystem(request, payload: SubsystemIn):
    administration = Administration.objects.filter(code=payload.administration.upper()).first()
    if administration is None:
        raise NotFound(CoreError.NO_ADMINISTRATION, code=payload.administration)
    return Status(201, services.register_subsystem(
        actor=request.user, administration=administration, code=payload.code, name=payload.name))


@router.post("/exchange/services", response={201: ServiceOut},
             summary="Register a REST service a subsystem provides")
def add_service(request, payload: ServiceIn):
    subsystem = get_object_or_404(Subsystem.objects.select_related("administration"),
                                  pk=payload.subsystem)
    return Status(201, services.register_service(
        actor=request.user, subsystem=subsystem, code=payload.code, name=payload.name,
        base_url=payload.base_url, owner=payload.owner, classification=payload.classification,
        openapi_url=payload.openapi_url, timeout_seconds=payload.timeout_seconds,
        max_concurrency=payload.max_concurrency, openapi=payload.openapi))


@router.patch("/exchange/services/{service_id}", response=ServiceOut,
              summary="Change a service's address, description or limits")
def change_service(request, payload: ServiceChange, service_id: int = Id):
    service = get_object_or_404(Service.objects.select_related("subsystem__administration"),
                                pk=service_id)
    changes = payload.dict(exclude_unset=True, exclude_none=True)
    return services.update_service(actor=request.user, service=service, **changes)


@router.get("/exchange/grants", response=list[GrantOut],
            summary="Grants given or received by your administration")
@paginate(Paging)
def list_grants(request):
    return selectors.grants_visible_to(request.user)


@router.post("/exchange/grants", response={201: GrantOut},
             summary="Ask for access to a service, with a legal basis and a purpose")
def ask_grant(request, payload: GrantIn):
    client = get_object_or_404(Subsystem.objects.select_related("administration"),
                               pk=payload.client)
    service = get_object_or_404(Service, pk=payload.service)
    return Status(201, services.request_grant(
        actor=request.user, client=client, service=service, legal_basis=payload.legal_basis,
        purpose=payload.purpose, expires_at=payload.expires_at,
        endpoints=[e.dict() for e in payload.endpoints]))


@router.post("/exchange/grants/{grant_id}/decision", response=GrantOut,
             summary="Approve or refuse a request (the provider's administration)")
def decide(request, payload: GrantDecisionIn, grant_id: int = Id):
    return services.decide_grant(actor=request.user, grant=get_object_or_404(Grant, pk=grant_id),
                                 approve=payload.approve, note=payload.note,
                                 rate_per_minute=payload.rate_per_minute,
                                 expires_at=payload.expires_at,
                                 endpoints=None if payload.endpoints is None else
                                 [e.dict() for e in payload.endpoints])


@router.post("/exchange/grants/{grant_id}/revoke", response=GrantOut,
             summary="Revoke an approved grant")
def revoke(request, payload: ExchangeReasonIn, grant_id: int = Id):
    return services.revoke_grant(actor=request.user, grant=get_object_or_404(Grant, pk=grant_id),
                                 reason=payload.reason)


@router.post("/exchange/subsystems/{subsystem_id}/tokens", response={201: GatewayTokenOut},
             summary="A gateway token for a client subsystem (shown once)")
def issue_token(request, payload: GatewayTokenIn, subsystem_id: int = Id):
    subsystem = get_object_or_404(Subsystem.objects.select_related("administration"),
                                  pk=subsystem_id)
    record, token = services.issue_client_token(actor=request.user, subsystem=subsystem,
                                                name=payload.name)
    return Status(201, {"id": record.pk, "token": token, "prefix": record.prefix,
                        "subsystem": subsystem.identifier})


@router.get("/exchange/subsystems/{subsystem_id}/tokens", response=list[GatewayTokenInfo],
            summary="A client subsystem's gateway tokens (never the tokens themselves)")
def list_tokens(request, subsystem_id: int = Id):
    subsystem = get_object_or_404(Subsystem.objects.select_related("administration"),
                                  pk=subsystem_id)
    return services.client_tokens(actor=request.user, subsystem=subsystem)


@router.post("/exchange/tokens/{token_id}/revoke", response=GatewayTokenInfo,
             summary="Revoke a gateway token: the very next call with it is refused")
def revoke_token(request, token_id: int = Id):
    token = get_object_or_404(ClientToken.objects.select_related("subsystem__administration"),
                              pk=token_id)
    return services.revoke_client_token(actor=request.user, token=token)


class CertificateIn(Schema):
    csr_pem: str = Field(..., min_length=1, max_length=20000,
                         description="PEM certificate signing request of the client's key")
    days: int = Field(365, ge=1, le=825)


class CertificateOut(Schema):
    id: int
    serial: str
    fingerprint: str
    pem: str
    not_before: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None


@router.post("/exchange/subsystems/{subsystem_id}/certificates", response={201: CertificateOut},
             summary="Issue a client certificate for mutual TLS from a CSR")
def issue_certificate(request, payload: CertificateIn, subsystem_id: int = Id):
    subsystem = get_object_or_404(Subsystem.objects.select_related("administration"),
                                  pk=subsystem_id)
    return Status(201, services.issue_certificate(actor=request.user, subsystem=subsystem,
                                                  csr_pem=payload.csr_pem, days=payload.days))


@router.post("/exchange/certificates/{certificate_id}/revoke", response=CertificateOut,
             summary="Revoke a client certificate (it joins the CRL at /exchange/ca.crl)")
def revoke_certificate(request, payload: ExchangeReasonIn, certificate_id: int = Id):
    return services.revoke_certificate(
        actor=request.user, reason=payload.reason,
        certificate=get_object_or_404(ClientCertificate, pk=certificate_id))


@router.get("/exchange/stats", response=list[StatsOut],
            summary="Calls, errors and latency per service and client (your administration's)")
def stats(request, filters: Query[StatsFilter]):
    _agent_required(request)
    return selectors.statistics(request.user, days=filters.days)


@router.get("/exchange/hosts", response=list[HostOut],
            summary="Hosts registered for administrations' services (yours; all for "
                    "platform administrators)")
@paginate(Paging)
def list_hosts(request):
    _agent_required(request)
    hosts = ProviderHost.objects.select_related("administration")
    if directory.is_platform_admin(request.user):
        return hosts
    agent = directory.agent_of(request.user)
    return hosts.filter(administration__code__in=directory.lineage_codes(agent.administration))


@router.post("/exchange/hosts", response={201: HostOut},
             summary="Register a host for an administration's services (platform "
                     "administrators)")
def add_host(request, payload: HostIn):
    administration = Administration.objects.filter(code=payload.administration.upper()).first()
    if administration is None:
        raise NotFound(CoreError.NO_ADMINISTRATION, code=payload.administration)
    return Status(201, services.register_provider_host(
        actor=request.user, administration=administration, host=payload.host,
        port=payload.port, path_prefix=payload.path_prefix,
        allow_internal=payload.allow_internal, note=payload.note))


@router.post("/exchange/hosts/{host_id}/revoke", response=HostOut,
             summary="Revoke a host: its services stop being relayed")
def revoke_host(request, host_id: int = Id):
    return services.revoke_provider_host(actor=request.user,
                                         host=get_object_or_404(ProviderHost, pk=host_id))


@router.get("/exchange/message-log", response=LogStatusOut,
            summary="The message log: records waiting for the ledger, their age, alert")
def message_log(request):
    _agent_required(request)
    return messagelog.status()


@router.get("/exchange/receipts/{x_road_id}", response=ExchangeReceiptsOut,
            summary="Ledger receipts of an exchange of your administration, by X-Road-Id")
def receipts(request, x_road_id: str = Path(..., min_length=1, max_length=100,
                                             pattern=r"^[A-Za-z0-9._:-]+$")):
    _agent_required(request)
    path = None
    if not selectors.sees_everything(request.user):
        path = directory.agent_of(request.user).administration.path
    found, waiting = selectors.receipts(x_road_id=x_road_id, administration_path=path)
    if not found and not waiting:
        raise NotFound(ExchangeError.NO_EXCHANGE_WITH_ID, id=x_road_id)
    return {"receipts": found, "waiting": waiting}
