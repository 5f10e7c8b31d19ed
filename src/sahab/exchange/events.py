"""The exchange's entries: every entry type it records, with its data fields."""

from sahab.ledger.vocabulary import LedgerEvent
from sahab.ledger.vocabulary import translatable as _


class ExchangeEvent(LedgerEvent):
    """The exchange's entries: subsystems, provider hosts, services, grants, certificates,
    tokens, and every message."""

    CERTIFICATE_ISSUED = (
        "exchange.certificate.issued",
        "The platform CA issued a client certificate to a subsystem.",
        ("fingerprint", "not_after", "serial"),
        _("Client certificate issued"),
    )
    CERTIFICATE_REVOKED = (
        "exchange.certificate.revoked",
        "A subsystem's client certificate was revoked, with the reason.",
        ("reason", "serial"),
        _("Client certificate revoked"),
    )
    GRANT_APPROVED = (
        "exchange.grant.approved",
        "A provider's administration approved a client's access to a service "
        "(endpoints, rate, expiry).",
        ("client", "endpoints", "expires_at", "grant", "rate_per_minute"),
        _("Service access approved"),
    )
    GRANT_REFUSED = (
        "exchange.grant.refused",
        "A provider's administration refused a client's access to a service.",
        ("client", "endpoints", "expires_at", "grant", "rate_per_minute"),
        _("Service access refused"),
    )
    GRANT_REQUESTED = (
        "exchange.grant.requested",
        "A client subsystem asked for access to a service, with its legal basis and purpose.",
        ("client", "endpoints", "grant", "legal_basis", "purpose"),
        _("Service access requested"),
    )
    GRANT_REVOKED = (
        "exchange.grant.revoked",
        "A client's access to a service was revoked.",
        ("client", "grant"),
        _("Service access revoked"),
    )
    HOST_REGISTERED = (
        "exchange.host.registered",
        "A platform administrator registered a provider host for an administration.",
        ("allow_internal", "host", "path_prefix", "port"),
        _("Provider host registered"),
    )
    HOST_REVOKED = (
        "exchange.host.revoked",
        "A registered provider host was revoked.",
        ("host", "path_prefix", "port"),
        _("Provider host revoked"),
    )
    MESSAGE = (
        "exchange.message",
        "One exchange through the gateway (hashes and sizes, never a body).",
        (
            "client",
            "duration_ms",
            "error",
            "method",
            "path_sha256",
            "request_bytes",
            "request_hash",
            "request_id",
            "request_sha256",
            "response_bytes",
            "response_sha256",
            "run",
            "seq",
            "service",
            "started_at",
            "status",
            "x_road_id",
        ),
        _("Exchange message"),
    )
    MESSAGES_MISSING = (
        "exchange.message.missing",
        "Records of a gateway process not in the message log when the record above them "
        "was logged: its numbers first to last never reached the ledger (deleted in the "
        "database, or never written there).",
        ("first", "last", "run"),
        _("Exchange records missing"),
    )
    SERVICE_CHANGED = (
        "exchange.service.changed",
        "A service's settings changed (hashes of its base URL and OpenAPI description).",
        ("active", "base_url_sha256", "fields", "openapi_sha256"),
        _("Service settings changed"),
    )
    SERVICE_REGISTERED = (
        "exchange.service.registered",
        "A subsystem registered a REST service (the hash of its base URL).",
        ("base_url_sha256", "classification", "name"),
        _("Service registered"),
    )
    SUBSYSTEM_REGISTERED = (
        "exchange.subsystem.registered",
        "An administration registered an information system as a subsystem.",
        ("name",),
        _("Subsystem registered"),
    )
    TOKEN_ISSUED = (
        "exchange.token.issued",
        "A subsystem's gateway token was issued (its id, never its secret).",
        ("token",),
        _("Gateway token issued"),
    )
    TOKEN_REVOKED = (
        "exchange.token.revoked",
        "A subsystem's gateway token was revoked.",
        ("token",),
        _("Gateway token revoked"),
    )
