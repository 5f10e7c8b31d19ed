"""Every write of the exchange pillar, each with its ledger entry: provider hosts,
subsystems and services, access grants (per endpoint), client tokens and certificates.
The message log has its own module (``messagelog``)."""

from __future__ import annotations

import datetime as dt
import logging
import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from sahab.core.errors import (
    Conflict,
    CoreError,
    InvalidInput,
    PermissionDenied,
    from_validation_error,
    read_when_rendered,
)
from sahab.core.inputs import text as _text
from sahab.directory import selectors as directory
from sahab.directory.models import Administration, Role
from sahab.directory.services import token_digest
from sahab.exchange import outbound, protocol
from sahab.exchange.errors import ExchangeError
from sahab.exchange.events import ExchangeEvent
from sahab.exchange.models import (
    INSTANCE,
    MEMBER_CLASS,
    Classification,
    ClientCertificate,
    ClientToken,
    Grant,
    ProviderHost,
    RegistryVersion,
    Service,
    Subsystem,
)
from sahab.ledger import services as ledger

log = logging.getLogger(__name__)
TOKEN_PREFIX = "xrd_"  # noqa: S105 (a marker, not a secret)
MANAGERS = {Role.IT_OFFICER, Role.ADMINISTRATION_ADMIN}


def _record(event: ExchangeEvent, subject: str, actor, data: dict) -> None:
    """The ledger entry of a registry change, written pending (the worker's sequencer
    integrates it within a second); gateways see the change at once."""
    bump_registry_version()
    ledger.enqueue(event, subject, actor, data)


def bump_registry_version() -> None:
    if not RegistryVersion.objects.filter(pk=1).update(version=F("version") + 1):
        RegistryVersion.objects.get_or_create(pk=1, defaults={"version": 1})


def registry_version() -> int:
    """The registry's version: one indexed read, without the ORM (the gateway's hot path)."""
    from django.db import connection

    table = connection.ops.quote_name(RegistryVersion._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT version FROM {table} WHERE id = 1")  # noqa: S608 (model name)
        row = cursor.fetchone()
    return row[0] if row else 0


def _manager(actor, administration: Administration) -> None:
    """IT officers and administrators manage their administration's systems."""
    if directory.is_platform_admin(actor):
        return
    agent = directory.agent_of(actor)
    if agent is None or not agent.role_set & MANAGERS or \
            not administration.is_within(agent.administration):
        raise PermissionDenied(ExchangeError.SYSTEMS_FORBIDDEN,
                               administration=read_when_rendered(lambda: administration.name))


def _clean(obj) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise from_validation_error(exc) from None


@transaction.atomic
def register_subsystem(*, actor, administration: Administration, code: str,
                       name: str = "") -> Subsystem:
    """An information system of the administration; an empty code registers the
    administration itself as a client (X-Road member-level client ``TN/GOV/<code>``)."""
    _manager(actor, administration)
    code = (code or "").strip()
    if not code and not (name or "").strip():
        name = administration.name_fr
    if code in protocol.RESERVED_CODES:
        raise InvalidInput(ExchangeError.CODE_RESERVED, code=code)
    if not code and Subsystem.objects.filter(administration=administration, code="").exists():
        raise Conflict(ExchangeError.CLIENT_EXISTS, code=administration.code)
    subsystem = Subsystem(administration=administration, code=code,
                          name=_text(name, "The name", 200))
    _clean(subsystem)
    subsystem.save()
    _record(
        ExchangeEvent.SUBSYSTEM_REGISTERED, subsystem.identifier, actor, {"name": subsystem.name}
    )
    return subsystem


# --- provider hosts: where services may live ----------------------------------------------

def _platform_admin(actor) -> None:
    if not directory.is_platform_admin(actor):
        raise PermissionDenied(ExchangeError.HOST_REGISTRATION_FORBIDDEN)


@transaction.atomic
def register_provider_host(*, actor, administration: Administration, host: str,
                           port: int = 443, path_prefix: str = "/",
                           allow_internal: bool = False, note: str = "") -> ProviderHost:
    """A platform administrator states that ``host:port`` under ``path_prefix`` is the
    administration's: its IT officers may register services there, and only there."""
    _platform_admin(actor)
    host = outbound.normalise_host(host if isinstance(host, str) else "")
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInput(ExchangeError.PORT_OUT_OF_RANGE)
    prefix = outbound.clean_prefix(path_prefix)
    for other in ProviderHost.objects.select_for_update().filter(
            host=host, port=port, revoked_at__isnull=True):
        if outbound.prefixes_overlap(prefix, other.path_prefix):
            raise Conflict(ExchangeError.HOST_TAKEN, host=f"{host}:{port}{other.path_prefix}",
                           administration=other.administration.code)
    record = ProviderHost.objects.create(
        administration=administration, host=host, port=port, path_prefix=prefix,
        allow_internal=bool(allow_internal), note=_text(note, "The note", 500, required=False))
    _record(
        ExchangeEvent.HOST_REGISTERED,
        f"{INSTANCE}/{MEMBER_CLASS}/{administration.code}",
        actor,
        {
            "host": host,
            "port": port,
            "path_prefix": prefix,
            "allow_internal": record.allow_internal,
        },
    )
    return record


@transaction.atomic
def revoke_provider_host(*, actor, host: ProviderHost) -> ProviderHost:
    """The services under this host stop being relayed at once."""
    _platform_admin(actor)
    host = ProviderHost.objects.select_for_update().select_related("administration").get(
        pk=host.pk)
    if host.revoked_at is not None:
        raise Conflict(ExchangeError.HOST_ALREADY_REVOKED)
    host.revoked_at = timezone.now()
    host.save(update_fields=["revoked_at"])
    _record(
        ExchangeEvent.HOST_REVOKED,
        f"{INSTANCE}/{MEMBER_CLASS}/{host.administration.code}",
        actor,
        {"host": host.host, "port": host.port, "path_prefix": host.path_prefix},
    )
    return host


def host_for(administration: Administration, url: str) -> ProviderHost | None:
    """The active host registered for the administration (or an administration above
    it) under which ``url`` falls, or None."""
    try:
        parsed = outbound.parse_url(url)
    except InvalidInput:
        return None
    candidates = ProviderHost.objects.filter(
        revoked_at__isnull=True, host=parsed.host, port=parsed.port,
        administration__code__in=directory.lineage_codes(administration))
    return next((h for h in candidates if outbound.under_prefix(parsed.path, h.path_prefix)),
                None)


def _check_provider_url(url: str, administration: Administration, what: str) -> str:
    url = _text(url, what, 500)
    parsed = outbound.parse_url(url)
    host = host_for(administration, url)
    if host is None:
        raise InvalidInput(ExchangeError.URL_NOT_ON_REGISTERED_HOST, what=what,
                           administration=administration.code,
                           url=f"{parsed.host}:{parsed.port}{parsed.path or '/'}")
    if outbound.is_ip(parsed.host) and not outbound.address_allowed(
            parsed.host, allow_internal=host.allow_internal):
        raise InvalidInput(ExchangeError.INTERNAL_ADDRESS_REFUSED, host=parsed.host)
    return url.rstrip("/")


def _check_openapi(text: str) -> str:
    text = text if isinstance(text, str) else ""
    if not text.strip():
        return ""
    try:
        protocol.load_openapi(text)
    except ValueError as exc:
        raise InvalidInput(ExchangeError.OPENAPI_INVALID, error=str(exc)) from None
    return text


def _limits(timeout_seconds, max_concurrency) -> None:
    if not isinstance(timeout_seconds, int) or not 1 <= timeout_seconds <= 120:
        raise InvalidInput(ExchangeError.TIMEOUT_OUT_OF_RANGE)
    if not isinstance(max_concurrency, int) or not 1 <= max_concurrency <= 10_000:
        raise InvalidInput(ExchangeError.CONCURRENCY_OUT_OF_RANGE)


@transaction.atomic
def register_service(*, actor, subsystem: Subsystem, code: str, name: str, base_url: str,
                     owner: str, classification: str = Classification.INTERNAL,
                     openapi_url: str = "", timeout_seconds: int = 10,
                     max_concurrency: int = 100, openapi: str = "") -> Service:
    """A subsystem offers a REST service at ``base_url``, on one of its administration's
    registered hosts."""
    _manager(actor, subsystem.administration)
    if subsystem.is_member:
        raise InvalidInput(ExchangeError.SERVICE_NEEDS_SUBSYSTEM)
    if classification not in Classification.values:
        raise InvalidInput(ExchangeError.UNKNOWN_CLASSIFICATION,
                           classification=repr(classification))
    _limits(timeout_seconds, max_concurrency)
    code = (code or "").strip()
    if code in protocol.RESERVED_CODES:
        raise InvalidInput(ExchangeError.CODE_RESERVED, code=code)
    administration = subsystem.administration
    service = Service(
        subsystem=subsystem, code=code, name=_text(name, "The name", 200),
        base_url=_check_provider_url(base_url, administration, "The base URL"),
        openapi_url=_check_provider_url(openapi_url, administration, "The OpenAPI URL")
        if (openapi_url or "").strip() else "",
        classification=classification, owner=_text(owner, "The owner", 200),
        timeout_seconds=timeout_seconds, max_concurrency=max_concurrency,
        openapi=_check_openapi(openapi))
    _clean(service)
    service.save()
    _record(
        ExchangeEvent.SERVICE_REGISTERED,
        service.identifier,
        actor,
        {
            "name": service.name,
            "classification": classification,
            "base_url_sha256": _sha256(service.base_url),
        },
    )
    return service


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


@transaction.atomic
def update_service(*, actor, service: Service, **changes) -> Service:
    """Change a service's address, description or limits; ``active=False`` withdraws it."""
    service = Service.objects.select_for_update().select_related(
        "subsystem__administration").get(pk=service.pk)
    _manager(actor, service.subsystem.administration)
    administration = service.subsystem.administration
    allowed = {"name", "base_url", "openapi_url", "openapi", "owner", "timeout_seconds",
               "max_concurrency", "active", "classification"}
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidInput(CoreError.UNKNOWN_FIELDS, fields=", ".join(sorted(unknown)))
    if "base_url" in changes:
        service.base_url = _check_provider_url(changes["base_url"], administration,
                                               "The base URL")
    if "openapi_url" in changes:
        service.openapi_url = _check_provider_url(
            changes["openapi_url"], administration, "The OpenAPI URL") \
            if (changes["openapi_url"] or "").strip() else ""
    if "openapi" in changes:
        service.openapi = _check_openapi(changes["openapi"])
    for field, label, limit in (("name", "The name", 200), ("owner", "The owner", 200)):
        if field in changes:
            setattr(service, field, _text(changes[field], label, limit))
    if "classification" in changes:
        if changes["classification"] not in Classification.values:
            raise InvalidInput(ExchangeError.UNKNOWN_CLASSIFICATION,
                               classification=repr(changes["classification"]))
        service.classification = changes["classification"]
    service.timeout_seconds = changes.get("timeout_seconds", service.timeout_seconds)
    service.max_concurrency = changes.get("max_concurrency", service.max_concurrency)
    _limits(service.timeout_seconds, service.max_concurrency)
    if "active" in changes:
        service.active = bool(changes["active"])
    _clean(service)
    service.save()
    _record(
        ExchangeEvent.SERVICE_CHANGED,
        service.identifier,
        actor,
        {
            "fields": sorted(changes),
            "base_url_sha256": _sha256(service.base_url),
            "openapi_sha256": _sha256(service.openapi) if service.openapi else "",
            "active": service.active,
        },
    )
    return service


def _endpoints(endpoints) -> list[dict]:
    try:
        return [e.as_dict() for e in protocol.parse_endpoints(endpoints or [])]
    except ValueError as exc:
        raise InvalidInput(ExchangeError.ENDPOINTS_INVALID, error=str(exc)) from None


@transaction.atomic
def request_grant(*, actor, client: Subsystem, service: Service, legal_basis: str,
                  purpose: str, expires_at: dt.datetime | None = None,
                  endpoints=None) -> Grant:
    """A client subsystem asks for access, citing the law that allows it and why, to the
    whole service or to some endpoints (methods and path patterns)."""
    _manager(actor, client.administration)
    if client.pk == service.subsystem_id:
        raise InvalidInput(ExchangeError.GRANT_TO_ITSELF)
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput(ExchangeError.GRANT_EXPIRY_PAST)
    if Grant.objects.filter(client=client, service=service,
                            status__in=[Grant.Status.REQUESTED, Grant.Status.APPROVED]).exists():
        raise Conflict(ExchangeError.GRANT_EXISTS)
    grant = Grant.objects.create(
        client=client, service=service, requested_by=actor if getattr(actor, "pk", None) else None,
        legal_basis=_text(legal_basis, "The legal basis", 500),
        purpose=_text(purpose, "The purpose", 500), expires_at=expires_at,
        endpoints=_endpoints(endpoints))
    _record(
        ExchangeEvent.GRANT_REQUESTED,
        service.identifier,
        actor,
        {
            "grant": grant.pk,
            "client": client.identifier,
            "legal_basis": grant.legal_basis,
            "purpose": grant.purpose,
            "endpoints": grant.endpoints,
        },
    )
    return grant


@transaction.atomic
def decide_grant(*, actor, grant: Grant, approve: bool, note: str = "",
                 rate_per_minute: int | None = None,
                 expires_at: dt.datetime | None = None, endpoints=None) -> Grant:
    """The provider's administration approves (deny is the default) or refuses; it may
    approve fewer endpoints than asked (``endpoints``; None keeps the request's)."""
    grant = Grant.objects.select_for_update().select_related(
        "service__subsystem__administration", "client__administration").get(pk=grant.pk)
    _manager(actor, grant.service.subsystem.administration)
    if grant.status != Grant.Status.REQUESTED:
        raise Conflict(ExchangeError.GRANT_NOT_REQUESTED)
    if rate_per_minute is not None:
        if not isinstance(rate_per_minute, int) or not 1 <= rate_per_minute <= 100_000:
            raise InvalidInput(ExchangeError.RATE_OUT_OF_RANGE)
        grant.rate_per_minute = rate_per_minute
    if expires_at is not None:
        grant.expires_at = expires_at
    if endpoints is not None and approve:
        grant.endpoints = _endpoints(endpoints)
    grant.status = Grant.Status.APPROVED if approve else Grant.Status.REFUSED
    grant.decided_at = timezone.now()
    grant.decision_note = _text(note, "The note", 2000, required=not approve)
    grant.save()
    _record(
        ExchangeEvent.GRANT_APPROVED if approve else ExchangeEvent.GRANT_REFUSED,
        grant.service.identifier,
        actor,
        {
            "grant": grant.pk,
            "client": grant.client.identifier,
            "rate_per_minute": grant.rate_per_minute,
            "endpoints": grant.endpoints,
            "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
        },
    )
    return grant


@transaction.atomic
def revoke_grant(*, actor, grant: Grant, reason: str) -> Grant:
    grant = Grant.objects.select_for_update().select_related(
        "service__subsystem__administration", "client").get(pk=grant.pk)
    _manager(actor, grant.service.subsystem.administration)
    if grant.status != Grant.Status.APPROVED:
        raise Conflict(ExchangeError.GRANT_NOT_APPROVED)
    grant.status = Grant.Status.REVOKED
    grant.decision_note = _text(reason, "The reason", 2000)
    grant.save()
    _record(
        ExchangeEvent.GRANT_REVOKED,
        grant.service.identifier,
        actor,
        {"grant": grant.pk, "client": grant.client.identifier},
    )
    return grant


@transaction.atomic
def issue_client_token(*, actor, subsystem: Subsystem, name: str) -> tuple[ClientToken, str]:
    """A gateway token for the subsystem; the clear token is returned once, never stored."""
    _manager(actor, subsystem.administration)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ClientToken.objects.create(subsystem=subsystem, name=_text(name, "The name", 100),
                                        prefix=token[:12], digest=token_digest(token))
    _record(ExchangeEvent.TOKEN_ISSUED, subsystem.identifier, actor, {"token": record.prefix})
    return record, token


def client_tokens(*, actor, subsystem: Subsystem) -> list[ClientToken]:
    """The subsystem's gateway tokens (prefix, name, dates), for those who manage it."""
    _manager(actor, subsystem.administration)
    return list(subsystem.tokens.select_related("subsystem__administration")
                .order_by("-created_at", "-pk"))


@transaction.atomic
def revoke_client_token(*, actor, token: ClientToken) -> ClientToken:
    """A token that leaked stops at the next call (the registry's version moves)."""
    token = ClientToken.objects.select_for_update().select_related(
        "subsystem__administration").get(pk=token.pk)
    _manager(actor, token.subsystem.administration)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        _record(
            ExchangeEvent.TOKEN_REVOKED, token.subsystem.identifier, actor, {"token": token.prefix}
        )
    return token


@transaction.atomic
def issue_certificate(*, actor, subsystem: Subsystem, csr_pem: str, days: int = 365,
                      not_before: dt.datetime | None = None) -> ClientCertificate:
    """Sign the subsystem's certificate request; the subject is the subsystem's identifier."""
    from cryptography.hazmat.primitives import serialization

    from sahab.exchange import ca

    _manager(actor, subsystem.administration)
    if not isinstance(days, int) or not 1 <= days <= 825:
        raise InvalidInput(ExchangeError.CERTIFICATE_LIFETIME)
    ca.ensure_ca()
    cert = ca.issue(ca.load_csr(csr_pem), common_name=subsystem.identifier,
                    organisation=subsystem.administration.code, days=days,
                    not_before=not_before)
    der = cert.public_bytes(serialization.Encoding.DER)
    record = ClientCertificate.objects.create(
        subsystem=subsystem, serial=format(cert.serial_number, "x"),
        fingerprint=ca.fingerprint(der),
        pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc)
    _record(
        ExchangeEvent.CERTIFICATE_ISSUED,
        subsystem.identifier,
        actor,
        {
            "serial": record.serial,
            "fingerprint": record.fingerprint,
            "not_after": record.not_after.isoformat(),
        },
    )
    return record


@transaction.atomic
def revoke_certificate(*, actor, certificate: ClientCertificate, reason: str) -> ClientCertificate:
    certificate = ClientCertificate.objects.select_for_update().select_related(
        "subsystem__administration").get(pk=certificate.pk)
    _manager(actor, certificate.subsystem.administration)
    if certificate.revoked_at is not None:
        raise Conflict(ExchangeError.CERTIFICATE_ALREADY_REVOKED)
    certificate.revoked_at = timezone.now()
    certificate.save(update_fields=["revoked_at"])
    _record(
        ExchangeEvent.CERTIFICATE_REVOKED,
        certificate.subsystem.identifier,
        actor,
        {"serial": certificate.serial, "reason": _text(reason, "The reason", 500)},
    )
    return certificate


def revocation_list() -> bytes:
    from sahab.exchange import ca

    ca.ensure_ca()
    return ca.revocation_list([(int(c.serial, 16), c.revoked_at) for c in
                               ClientCertificate.objects.filter(revoked_at__isnull=False)])


def certificate_in_date(der: bytes) -> bool:
    """Whether the certificate is within its validity now (the cache keeps the rest)."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    return cert.not_valid_before_utc <= timezone.now() < cert.not_valid_after_utc


def subsystem_for_certificate(der: bytes) -> Subsystem | None:
    """The subsystem of a valid (issued here, unrevoked, in date) client certificate."""
    from sahab.exchange import ca

    try:
        ca.verify_issued_by_ca(der)
        digest = ca.fingerprint(der)
    except (InvalidInput, ValueError):
        return None
    record = ClientCertificate.objects.select_related("subsystem__administration").filter(
        fingerprint=digest).first()
    if record is None or not record.valid(timezone.now()):
        return None
    return record.subsystem


def subsystem_for_token(token: str) -> Subsystem | None:
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    record = ClientToken.objects.select_related("subsystem__administration").filter(
        digest=token_digest(token), revoked_at__isnull=True).first()
    return record.subsystem if record else None




def check_services(*, timeout: float = 5.0) -> int:
    """Timer: call each active service's OpenAPI URL (or base URL) through the gateway's
    outbound policy and record whether it answers. Monitoring data, not ledger entries."""
    import asyncio

    from sahab.exchange import gateway

    rows = [(s.pk, s.openapi_url or s.base_url, s.subsystem.administration)
            for s in Service.objects.filter(active=True).select_related(
                "subsystem__administration")]
    targets = [(pk, url, host_for(administration, url)) for pk, url, administration in rows]
    probe = gateway.probe([(pk, url, host.allow_internal if host else None)
                           for pk, url, host in targets], timeout=timeout)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        results = asyncio.run(probe)
    else:  # called from a thread that runs an event loop: probe on a thread of its own
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as pool:
            results = pool.submit(asyncio.run, probe).result()
    for pk, (status, ms) in results.items():
        Service.objects.filter(pk=pk).update(
            checked_at=timezone.now(), check_status=status, check_ms=ms,
            healthy=status is not None and status < 500)
    return len(results)
