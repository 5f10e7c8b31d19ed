"""Reads of the exchange pillar: who sees which grants, and the exchange statistics."""

from __future__ import annotations

import datetime as dt
import statistics as stats
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from sahab.core.errors import InvalidInput
from sahab.directory import selectors as directory
from sahab.directory.models import Administration
from sahab.exchange import outbound, protocol
from sahab.exchange.models import ClientCertificate, Grant, Message, Service, Subsystem


def sees_everything(user) -> bool:
    """Platform admins and auditors see every administration's exchanges."""
    if directory.is_platform_admin(user):
        return True
    return "auditor" in directory.roles_of(user)


def _own_path(user) -> str | None:
    agent = directory.agent_of(user)
    return agent.administration.path if agent else None


def grants_visible_to(user) -> QuerySet[Grant]:
    """The grants the user's administration (or its units) asked for or gives."""
    grants = Grant.objects.select_related("client__administration",
                                          "service__subsystem__administration")
    if sees_everything(user):
        return grants
    path = _own_path(user)
    if path is None:
        return grants.none()
    return grants.filter(Q(client__administration__path__startswith=path) |
                         Q(service__subsystem__administration__path__startswith=path))


def _percentile(values: list[float], p: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 3)
    return round(stats.quantiles(values, n=100, method="inclusive")[p - 1], 3)


def statistics(user, *, days: int = 7) -> list[dict]:
    """Calls, errors and latency percentiles per service and client over ``days``."""
    since = timezone.now() - dt.timedelta(days=days)
    messages = Message.objects.filter(started_at__gte=since)
    if not sees_everything(user):
        agent = directory.agent_of(user)
        if agent is None:
            return []
        pattern = _codes_regex([a.code for a in directory.subtree(agent.administration)])
        messages = messages.filter(Q(client__regex=pattern) | Q(service__regex=pattern))
    groups: dict[tuple[str, str], list] = {}
    for service, client, status, duration in messages.values_list(
            "service", "client", "status", "duration_ms").iterator(chunk_size=5000):
        groups.setdefault((service, client), []).append((status, duration))
    rows = []
    for (service, client), calls in sorted(groups.items()):
        durations = [d for _, d in calls]
        rows.append({"service": service, "client": client, "calls": len(calls),
                     "errors": sum(1 for s, _ in calls if s >= 400),
                     "p50_ms": _percentile(durations, 50), "p95_ms": _percentile(durations, 95)})
    return rows


def _codes_regex(codes: list[str]) -> str:
    import re

    return r"^TN/GOV/(" + "|".join(re.escape(c) for c in codes) + r")(/|$)"


# --- what the gateway reads (run in its thread pool; plain values, no ORM objects) ----------

@dataclass(frozen=True)
class Caller:
    """An authenticated client: a subsystem, or a member calling as itself."""

    subsystem_id: int
    identifier: str
    administration_path: str
    not_before: dt.datetime | None = None  # of the certificate it used, if any
    not_after: dt.datetime | None = None


@dataclass(frozen=True)
class ServiceInfo:
    id: int
    identifier: str
    provider_id: int
    administration_path: str
    base_url: str
    timeout_seconds: int
    max_concurrency: int
    described: bool
    allow_internal: bool | None  # None: its base URL is on no registered host any more


@dataclass(frozen=True)
class GrantInfo:
    id: int
    rate_per_minute: int
    expires_at: dt.datetime | None
    endpoints: tuple[protocol.Endpoint, ...]

    def usable(self, now: dt.datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


def _caller(subsystem: Subsystem, record=None) -> Caller:
    return Caller(subsystem.pk, subsystem.identifier, subsystem.administration.path,
                  getattr(record, "not_before", None), getattr(record, "not_after", None))


def caller_for_token(token: str) -> Caller | None:
    from sahab.exchange import services

    subsystem = services.subsystem_for_token(token)
    return _caller(subsystem) if subsystem else None


def caller_for_certificate(der: bytes) -> Caller | None:
    from sahab.exchange import ca

    try:
        ca.verify_issued_by_ca(der)
        digest = ca.fingerprint(der)
    except (InvalidInput, ValueError):
        return None
    record = ClientCertificate.objects.select_related("subsystem__administration").filter(
        fingerprint=digest, revoked_at__isnull=True).first()
    if record is None:
        return None
    return _caller(record.subsystem, record)


def service_for(target: protocol.Target) -> ServiceInfo | None:
    from sahab.exchange import services

    service = Service.objects.select_related("subsystem__administration").filter(
        subsystem__administration__code=target.member, subsystem__code=target.subsystem,
        code=target.service, active=True).first()
    if service is None:
        return None
    host = services.host_for(service.subsystem.administration, service.base_url)
    allow_internal = host.allow_internal if host else None
    if allow_internal is not None:  # an address written in the URL is checked once, here
        address = outbound.parse_url(service.base_url).host
        if outbound.is_ip(address) and not outbound.address_allowed(
                address, allow_internal=allow_internal):
            allow_internal = None
    return ServiceInfo(service.pk, service.identifier, service.subsystem_id,
                       service.subsystem.administration.path, service.base_url,
                       service.timeout_seconds, service.max_concurrency, bool(service.openapi),
                       allow_internal)


def _grant_info(grant: Grant) -> GrantInfo:
    return GrantInfo(grant.pk, grant.rate_per_minute, grant.expires_at,
                     tuple(protocol.parse_endpoints(grant.endpoints or [])))


def grant_for(caller_id: int, service_id: int) -> GrantInfo | None:
    grant = Grant.objects.filter(client_id=caller_id, service_id=service_id,
                                 status=Grant.Status.APPROVED).order_by("-decided_at").first()
    return _grant_info(grant) if grant else None


def provider_exists(member: str, subsystem: str) -> bool:
    return Subsystem.objects.filter(administration__code=member, code=subsystem).exclude(
        code="").exists()


def client_listing() -> tuple[list[tuple[str, str]], list[tuple[str, str, str, str]]]:
    """listClients: every administration (member) and every subsystem."""
    from sahab.directory.models import Administration

    members = list(Administration.objects.order_by("code").values_list("code", "name_fr"))
    subsystems = [(s.administration.code, s.administration.name_fr, s.code, s.name)
                  for s in Subsystem.objects.exclude(code="").select_related("administration")
                  .order_by("administration__code", "code")]
    return members, subsystems


def _described_endpoints(service: Service) -> tuple[protocol.Endpoint, ...]:
    if service.openapi:
        try:
            return protocol.openapi_endpoints(protocol.load_openapi(service.openapi)) or \
                protocol.WHOLE_SERVICE
        except ValueError:
            pass
    return protocol.WHOLE_SERVICE


def method_listing(member: str, subsystem: str, caller_id: int | None = None
                   ) -> list[tuple[str, bool, tuple[protocol.Endpoint, ...]]]:
    """listMethods (every active service of the provider) or, with ``caller_id``,
    allowedMethods (those the caller holds a usable grant for, with the grant's endpoints)."""
    services = Service.objects.filter(subsystem__administration__code=member,
                                      subsystem__code=subsystem, active=True).order_by("code")
    now = timezone.now()
    rows = []
    for service in services:
        endpoints = _described_endpoints(service)
        if caller_id is not None:
            grant = grant_for(caller_id, service.pk)
            if grant is None or not grant.usable(now):
                continue
            endpoints = grant.endpoints or endpoints
        rows.append((service.code, bool(service.openapi), endpoints))
    return rows


def openapi_of(member: str, subsystem: str, code: str) -> str | None:
    return Service.objects.filter(subsystem__administration__code=member,
                                  subsystem__code=subsystem, code=code,
                                  active=True).values_list("openapi", flat=True).first()


def receipts(*, x_road_id: str, subsystem_id: int | None = None,
             administration_path: str | None = None) -> tuple[list[dict], int]:
    """The ledger receipts of the exchanges with this X-Road-Id that a party may see: a
    subsystem (as client or provider) or an administration's agents (either side).
    Returns (receipts, exchanges still waiting for the ledger)."""
    from sahab.ledger import services as ledger

    messages = Message.objects.filter(x_road_id=x_road_id, ledger_failed_at__isnull=True)
    if subsystem_id is not None:
        subsystem = Subsystem.objects.select_related("administration").get(pk=subsystem_id)
        own = [subsystem.identifier]
        services = [s.identifier for s in subsystem.services.select_related(
            "subsystem__administration")]
        messages = messages.filter(Q(client__in=own) | Q(service__in=services))
    elif administration_path is not None:
        codes = [a.code for a in Administration.objects.filter(
            path__startswith=administration_path)]
        pattern = _codes_regex(codes)
        messages = messages.filter(Q(client__regex=pattern) | Q(service__regex=pattern))
    found, waiting = [], 0
    for message in messages.order_by("started_at", "pk")[:20]:
        if message.ledger_index is None:
            waiting += 1
            continue
        receipt = ledger.receipt(message.ledger_index, wait=False)
        if receipt is None:
            waiting += 1
            continue
        found.append({"x_road_id": message.x_road_id, "client": message.client,
                      "service": message.service, "status": message.status,
                      "ledger_index": message.ledger_index,
                      "entry": bytes(ledger.get_entry(message.ledger_index).body).decode(),
                      "receipt": receipt})
    return found, waiting
