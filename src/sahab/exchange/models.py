"""The government intranet: information systems (subsystems) of administrations, the
REST services they provide, access grants between them, client credentials, and the
message log of every exchange through the gateway (hashes, never bodies).

Identifiers follow X-Road: ``TN/GOV/<administration code>/<subsystem>`` for a client,
``TN/GOV/<administration code>/<subsystem>/<service>`` for a service.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from sahab.directory.models import Administration
from sahab.exchange.protocol import INSTANCE, MEMBER_CLASS

CODE = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                      _("Letters, digits, '_', '.' and '-', 64 at most."))


class Classification(models.TextChoices):
    PUBLIC = "public", _("Public")
    INTERNAL = "internal", _("Internal")
    CONFIDENTIAL = "confidential", _("Confidential (personal data)")
    SECRET = "secret", _("Secret")


class Subsystem(models.Model):
    """An information system of an administration (an X-Road member's subsystem).

    The row with an empty code stands for the member itself: X-Road clients may call as
    a member (``TN/GOV/MI``) as well as a subsystem (``TN/GOV/MI/ETAT-CIVIL``).
    """

    administration = models.ForeignKey(Administration, on_delete=models.PROTECT,
                                       related_name="subsystems")
    code = models.CharField(max_length=64, validators=[CODE], blank=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("subsystem")
        verbose_name_plural = _("subsystems")
        constraints = [models.UniqueConstraint(fields=["administration", "code"],
                                               name="one_subsystem_code_per_member")]
        ordering = ["administration__code", "code"]

    def __str__(self) -> str:
        return self.identifier

    @property
    def identifier(self) -> str:
        member = f"{INSTANCE}/{MEMBER_CLASS}/{self.administration.code}"
        return f"{member}/{self.code}" if self.code else member

    @property
    def is_member(self) -> bool:
        return not self.code


class Service(models.Model):
    """A REST service a subsystem provides inside the intranet."""

    subsystem = models.ForeignKey(Subsystem, on_delete=models.PROTECT, related_name="services")
    code = models.CharField(max_length=64, validators=[CODE])
    name = models.CharField(max_length=200)
    base_url = models.URLField(max_length=500)
    openapi_url = models.URLField(max_length=500, blank=True)
    classification = models.CharField(max_length=20, choices=Classification.choices,
                                      default=Classification.INTERNAL)
    owner = models.CharField(max_length=200, help_text=_("Who answers for the service"))
    timeout_seconds = models.PositiveSmallIntegerField(default=10)
    # Calls relayed at once; more wait (within the timeout) so that a slow provider only
    # holds its own callers.
    max_concurrency = models.PositiveIntegerField(default=100)
    # The OpenAPI 3 description served by the getOpenAPI metaservice (JSON or YAML).
    openapi = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    # The last health check (monitoring data, not a registry change).
    checked_at = models.DateTimeField(null=True, blank=True)
    check_status = models.PositiveSmallIntegerField(null=True, blank=True)
    check_ms = models.FloatField(null=True, blank=True)
    healthy = models.BooleanField(null=True, blank=True)

    class Meta:
        verbose_name = _("exchange service")
        verbose_name_plural = _("exchange services")
        constraints = [models.UniqueConstraint(fields=["subsystem", "code"],
                                               name="one_service_code_per_subsystem")]
        ordering = ["subsystem__administration__code", "subsystem__code", "code"]

    def __str__(self) -> str:
        return self.identifier

    @property
    def identifier(self) -> str:
        return f"{self.subsystem.identifier}/{self.code}"


class Grant(models.Model):
    """A client subsystem's right to call a service, with its legal basis and limits."""

    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        APPROVED = "approved", _("Approved")
        REFUSED = "refused", _("Refused")
        REVOKED = "revoked", _("Revoked")

    client = models.ForeignKey(Subsystem, on_delete=models.PROTECT, related_name="grants")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="grants")
    legal_basis = models.CharField(max_length=500)
    purpose = models.CharField(max_length=500)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.REQUESTED)
    expires_at = models.DateTimeField(null=True, blank=True)
    rate_per_minute = models.PositiveIntegerField(default=600)
    # [{"method": "GET" or "*", "path": "/persons/*"}]; empty: the whole service.
    endpoints = models.JSONField(default=list, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                     null=True, blank=True, related_name="+")  # None: platform
    requested_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        verbose_name = _("access grant")
        verbose_name_plural = _("access grants")
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"{self.client} → {self.service}"

    def usable(self, now) -> bool:
        return self.status == self.Status.APPROVED and (
            self.expires_at is None or self.expires_at > now)


class ClientToken(models.Model):
    """A bearer token of a client subsystem for the gateway; only its digest is stored."""

    subsystem = models.ForeignKey(Subsystem, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("client token")
        verbose_name_plural = _("client tokens")

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.subsystem})"


class ClientCertificate(models.Model):
    """An X.509 client certificate the platform CA issued to a subsystem (mutual TLS)."""

    subsystem = models.ForeignKey(Subsystem, on_delete=models.CASCADE,
                                  related_name="certificates")
    serial = models.CharField(max_length=40, unique=True)  # hexadecimal
    fingerprint = models.CharField(max_length=64, unique=True)  # SHA-256 of the DER
    pem = models.TextField()
    not_before = models.DateTimeField()
    not_after = models.DateTimeField()
    issued_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.subsystem} {self.serial}"

    def valid(self, now) -> bool:
        return self.revoked_at is None and self.not_before <= now < self.not_after


class ProviderHost(models.Model):
    """Where an administration's services may live: a host, port and path prefix that a
    platform administrator registered for it. A service's base URL must fall under one of
    its administration's hosts, so that no one can point the gateway at another
    ministry's backend or at the platform's own internal addresses."""

    administration = models.ForeignKey(Administration, on_delete=models.PROTECT,
                                       related_name="provider_hosts")
    host = models.CharField(max_length=253)  # lower-case name or IP address
    port = models.PositiveIntegerField()
    path_prefix = models.CharField(max_length=300, default="/")
    # Loopback, link-local and private addresses are refused unless allowed here.
    allow_internal = models.BooleanField(default=False)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["host", "port", "path_prefix"], condition=models.Q(revoked_at__isnull=True),
            name="one_active_provider_host")]
        ordering = ["administration__code", "host", "port", "path_prefix"]

    def __str__(self) -> str:
        return f"{self.host}:{self.port}{self.path_prefix}"


class RegistryVersion(models.Model):
    """One row, bumped by every change of subsystems, services, grants and credentials:
    gateways cache their lookups and drop the cache when the version moves."""

    version = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return str(self.version)


class Message(models.Model):
    """One exchange through the gateway: who called what, hashes, sizes, status, timing.

    Bodies are never stored; the hashes let both sides prove what was sent. The entry
    goes into the ledger in batches (``ledger_index``). ``request_sha256`` is the SHA-256
    of the request body, ``request_hash`` the X-Road-Request-Hash returned to the client.
    """

    x_road_id = models.CharField(max_length=100, db_index=True)
    client = models.CharField(max_length=300)
    service = models.CharField(max_length=300)
    grant = models.ForeignKey(Grant, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="messages")
    method = models.CharField(max_length=10)
    path_sha256 = models.CharField(max_length=64)
    request_id = models.CharField(max_length=40, blank=True)  # X-Road-Request-Id
    request_hash = models.CharField(max_length=100, blank=True)  # X-Road-Request-Hash
    user_id = models.CharField(max_length=200, blank=True)
    issue = models.CharField(max_length=200, blank=True)
    request_sha256 = models.CharField(max_length=64)
    request_bytes = models.PositiveBigIntegerField(default=0)
    response_sha256 = models.CharField(max_length=64, blank=True)
    response_bytes = models.PositiveBigIntegerField(default=0)
    status = models.PositiveSmallIntegerField()
    error = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField(db_index=True)
    duration_ms = models.FloatField()
    ledger_index = models.BigIntegerField(null=True, blank=True, db_index=True)
    # A record the ledger refused: kept for inspection, out of the backlog's way.
    ledger_failed_at = models.DateTimeField(null=True, blank=True)
    ledger_error = models.TextField(blank=True)
    # The gateway's MAC of the record (``messagelog.seal``), which the database cannot
    # make: the worker logs no record without it. Unique, so that a copy is refused.
    # None: written before the MAC existed (a nullable column: no table rebuild).
    mac = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # The gateway process that wrote the record (a random id drawn at its start) and the
    # record's number in that process, from 1, both under the MAC: a record deleted
    # before it reached the ledger leaves a hole in its process's numbers
    # (``messagelog.gaps``). None: written before the numbering existed (nullable
    # columns: no table rebuild).
    run = models.CharField(max_length=32, null=True, blank=True)  # noqa: DJ001
    seq = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("exchange message")
        verbose_name_plural = _("exchange messages")
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["started_at", "id"], name="message_log_backlog",
                                condition=models.Q(ledger_index__isnull=True,
                                                   ledger_failed_at__isnull=True)),
                   models.Index(fields=["run", "seq"], name="message_log_numbers",
                                condition=models.Q(seq__isnull=False))]
        constraints = [models.UniqueConstraint(fields=["mac"], name="one_record_per_mac",
                                               condition=models.Q(mac__isnull=False))]

    def __str__(self) -> str:
        return f"{self.x_road_id} {self.client} → {self.service} {self.status}"
