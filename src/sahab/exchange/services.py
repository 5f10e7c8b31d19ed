"""Every write of the exchange pillar, each with its ledger entry: subsystems and
services, access grants, client tokens, and the message log's batches."""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import secrets
import threading
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from sahab.core.errors import Conflict, InvalidInput, PermissionDenied, from_validation_error
from sahab.core.inputs import text as _text
from sahab.directory import selectors as directory
from sahab.directory.models import Administration, Role
from sahab.directory.services import token_digest
from sahab.exchange.models import (
    Classification,
    ClientCertificate,
    ClientToken,
    Grant,
    Message,
    RegistryVersion,
    Service,
    Subsystem,
)
from sahab.ledger import services as ledger

log = logging.getLogger(__name__)
TOKEN_PREFIX = "xrd_"  # noqa: S105 (a marker, not a secret)
MANAGERS = {Role.IT_OFFICER, Role.ADMINISTRATION_ADMIN}


def _record(event: str, subject: str, actor, data: dict) -> int:
    """The ledger entry of a registry change; gateways see the change at once."""
    bump_registry_version()
    return ledger.append(type=f"exchange.{event}", subject=subject, data=data,
                         actor=directory.actor_id(actor)).index


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
        raise PermissionDenied(f"Only an IT officer or administrator of {administration.name_fr} "
                               "manages its information systems.")


def _clean(obj) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        raise from_validation_error(exc) from None


@transaction.atomic
def register_subsystem(*, actor, administration: Administration, code: str,
                       name: str) -> Subsystem:
    _manager(actor, administration)
    subsystem = Subsystem(administration=administration, code=(code or "").strip(),
                          name=_text(name, "The name", 200))
    _clean(subsystem)
    subsystem.save()
    _record("subsystem.registered", subsystem.identifier, actor, {"name": subsystem.name})
    return subsystem


def _check_base_url(url: str) -> str:
    url = _text(url, "The base URL", 500)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or \
            parts.fragment or parts.username or parts.password:
        raise InvalidInput("The base URL must be http(s), without credentials, query or fragment.")
    return url.rstrip("/")


@transaction.atomic
def register_service(*, actor, subsystem: Subsystem, code: str, name: str, base_url: str,
                     owner: str, classification: str = Classification.INTERNAL,
                     openapi_url: str = "", timeout_seconds: int = 10) -> Service:
    """A subsystem offers a REST service at ``base_url`` inside the intranet."""
    _manager(actor, subsystem.administration)
    if classification not in Classification.values:
        raise InvalidInput(f"Unknown classification {classification!r}.")
    if not isinstance(timeout_seconds, int) or not 1 <= timeout_seconds <= 120:
        raise InvalidInput("The timeout is between 1 and 120 seconds.")
    service = Service(subsystem=subsystem, code=(code or "").strip(),
                      name=_text(name, "The name", 200), base_url=_check_base_url(base_url),
                      openapi_url=_text(openapi_url, "The OpenAPI URL", 500, required=False),
                      classification=classification, owner=_text(owner, "The owner", 200),
                      timeout_seconds=timeout_seconds)
    _clean(service)
    service.save()
    _record("service.registered", service.identifier, actor, {
        "name": service.name, "classification": classification})
    return service


@transaction.atomic
def request_grant(*, actor, client: Subsystem, service: Service, legal_basis: str,
                  purpose: str, expires_at: dt.datetime | None = None) -> Grant:
    """A client subsystem asks for access, citing the law that allows it and why."""
    _manager(actor, client.administration)
    if client.pk == service.subsystem_id:
        raise InvalidInput("A subsystem does not need a grant for its own services.")
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("The grant must expire in the future.")
    if Grant.objects.filter(client=client, service=service,
                            status__in=[Grant.Status.REQUESTED, Grant.Status.APPROVED]).exists():
        raise Conflict("A request or grant for this service already exists.")
    grant = Grant.objects.create(
        client=client, service=service, requested_by=actor if getattr(actor, "pk", None) else None,
        legal_basis=_text(legal_basis, "The legal basis", 500),
        purpose=_text(purpose, "The purpose", 500), expires_at=expires_at)
    _record("grant.requested", service.identifier, actor, {
        "grant": grant.pk, "client": client.identifier, "legal_basis": grant.legal_basis,
        "purpose": grant.purpose})
    return grant


@transaction.atomic
def decide_grant(*, actor, grant: Grant, approve: bool, note: str = "",
                 rate_per_minute: int | None = None,
                 expires_at: dt.datetime | None = None) -> Grant:
    """The provider's administration approves (deny is the default) or refuses."""
    grant = Grant.objects.select_for_update().select_related(
        "service__subsystem__administration", "client__administration").get(pk=grant.pk)
    _manager(actor, grant.service.subsystem.administration)
    if grant.status != Grant.Status.REQUESTED:
        raise Conflict("Only a requested grant is decided.")
    if rate_per_minute is not None:
        if not isinstance(rate_per_minute, int) or not 1 <= rate_per_minute <= 100_000:
            raise InvalidInput("The rate is between 1 and 100,000 calls per minute.")
        grant.rate_per_minute = rate_per_minute
    if expires_at is not None:
        grant.expires_at = expires_at
    grant.status = Grant.Status.APPROVED if approve else Grant.Status.REFUSED
    grant.decided_at = timezone.now()
    grant.decision_note = _text(note, "The note", 2000, required=not approve)
    grant.save()
    _record("grant." + ("approved" if approve else "refused"), grant.service.identifier, actor, {
        "grant": grant.pk, "client": grant.client.identifier,
        "rate_per_minute": grant.rate_per_minute,
        "expires_at": grant.expires_at.isoformat() if grant.expires_at else None})
    return grant


@transaction.atomic
def revoke_grant(*, actor, grant: Grant, reason: str) -> Grant:
    grant = Grant.objects.select_for_update().select_related(
        "service__subsystem__administration", "client").get(pk=grant.pk)
    _manager(actor, grant.service.subsystem.administration)
    if grant.status != Grant.Status.APPROVED:
        raise Conflict("Only an approved grant is revoked.")
    grant.status = Grant.Status.REVOKED
    grant.decision_note = _text(reason, "The reason", 2000)
    grant.save()
    _record("grant.revoked", grant.service.identifier, actor, {
        "grant": grant.pk, "client": grant.client.identifier})
    return grant


@transaction.atomic
def issue_client_token(*, actor, subsystem: Subsystem, name: str) -> tuple[ClientToken, str]:
    """A gateway token for the subsystem; the clear token is returned once, never stored."""
    _manager(actor, subsystem.administration)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ClientToken.objects.create(subsystem=subsystem, name=_text(name, "The name", 100),
                                        prefix=token[:12], digest=token_digest(token))
    _record("token.issued", subsystem.identifier, actor, {"token": record.prefix})
    return record, token


@transaction.atomic
def revoke_client_token(*, actor, token: ClientToken) -> ClientToken:
    _manager(actor, token.subsystem.administration)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        _record("token.revoked", token.subsystem.identifier, actor, {"token": token.prefix})
    return token


@transaction.atomic
def issue_certificate(*, actor, subsystem: Subsystem, csr_pem: str, days: int = 365,
                      not_before: dt.datetime | None = None) -> ClientCertificate:
    """Sign the subsystem's certificate request; the subject is the subsystem's identifier."""
    from cryptography.hazmat.primitives import serialization

    from sahab.exchange import ca

    _manager(actor, subsystem.administration)
    if not isinstance(days, int) or not 1 <= days <= 825:
        raise InvalidInput("Certificates last 1 to 825 days.")
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
    _record("certificate.issued", subsystem.identifier, actor, {
        "serial": record.serial, "fingerprint": record.fingerprint,
        "not_after": record.not_after.isoformat()})
    return record


@transaction.atomic
def revoke_certificate(*, actor, certificate: ClientCertificate, reason: str) -> ClientCertificate:
    certificate = ClientCertificate.objects.select_for_update().select_related(
        "subsystem__administration").get(pk=certificate.pk)
    _manager(actor, certificate.subsystem.administration)
    if certificate.revoked_at is not None:
        raise Conflict("The certificate is already revoked.")
    certificate.revoked_at = timezone.now()
    certificate.save(update_fields=["revoked_at"])
    _record("certificate.revoked", certificate.subsystem.identifier, actor, {
        "serial": certificate.serial, "reason": _text(reason, "The reason", 500)})
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


class _MessageBuffer:
    """Exchanges waiting to be written, flushed in one transaction by a thread.

    A durable commit per call would cost the gateway more than the call itself; the
    buffer is written every ``EXCHANGE_LOG_BATCH_SECONDS`` (and when the process stops).
    With 0 every exchange is written before its answer ends (tests, strict setups).
    """

    def __init__(self) -> None:
        self.pending: list[Message] = []
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def add(self, message: Message) -> None:
        with self.lock:
            self.pending.append(message)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="sahab-message-log",
                                               daemon=True)
                self.thread.start()

    def _run(self) -> None:
        from django.db import connection

        while True:
            time.sleep(settings.EXCHANGE_LOG_BATCH_SECONDS)
            try:
                self.flush()
            except Exception:  # keep the buffer and try again on the next tick
                log.exception("writing the message log failed; retrying")
            finally:
                connection.close()

    def flush(self) -> int:
        with self.lock:
            batch, self.pending = self.pending, []
        if batch:
            try:
                Message.objects.bulk_create(batch)
            except IntegrityError:  # a grant was deleted meanwhile: keep the exchanges
                for message in batch:
                    message.grant = None
                Message.objects.bulk_create(batch)
        return len(batch)


_buffer = _MessageBuffer()
atexit.register(lambda: _buffer.flush())


def log_message(**fields) -> None:
    """Keep one exchange in the message log; it reaches the ledger with the next batch."""
    message = Message(**fields)
    if settings.EXCHANGE_LOG_BATCH_SECONDS <= 0:
        _buffer.pending.append(message)
        _buffer.flush()
    else:
        _buffer.add(message)


def flush_message_log(limit: int = 2000) -> int:
    """Timer: append the exchanges not yet in the ledger, one entry each, in one batch."""
    with transaction.atomic():
        pending = list(Message.objects.select_for_update().filter(ledger_index__isnull=True)
                       .order_by("started_at", "pk")[:limit])
        if not pending:
            return 0
        records = [ledger.Record(type="exchange.message", subject=m.service, actor="system",
                                 data=_ledger_data(m)) for m in pending]
        for message, appended in zip(pending, ledger.append_many(records), strict=True):
            Message.objects.filter(pk=message.pk).update(ledger_index=appended.index)
    return len(pending)


def _ledger_data(message: Message) -> dict:
    return {"x_road_id": message.x_road_id, "client": message.client, "method": message.method,
            "path_sha256": message.path_sha256, "request_sha256": message.request_sha256,
            "request_bytes": message.request_bytes, "response_sha256": message.response_sha256,
            "response_bytes": message.response_bytes, "status": message.status,
            "error": message.error, "started_at": message.started_at.isoformat(),
            "duration_ms": round(message.duration_ms, 3)}


def check_services(*, timeout: float = 5.0) -> int:
    """Timer: call each active service's OpenAPI description (or base URL) and record
    whether it answers. Monitoring data: kept on the service, not in the ledger."""
    import httpx

    checked = 0
    with httpx.Client(timeout=timeout, follow_redirects=False) as http:
        for service in Service.objects.filter(active=True):
            url = service.openapi_url or service.base_url
            start = time.perf_counter()
            try:
                status = http.get(url, headers={"X-Road-Client": "TN/GOV/sahab/monitor",
                                                "X-Road-Id": f"health-{service.pk}"}).status_code
            except httpx.HTTPError:
                status = None
            Service.objects.filter(pk=service.pk).update(
                checked_at=timezone.now(), check_status=status,
                check_ms=(time.perf_counter() - start) * 1000,
                healthy=status is not None and status < 500)
            checked += 1
    return checked
