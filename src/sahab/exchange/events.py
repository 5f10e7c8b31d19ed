"""The exchange's entries: every entry type it records, with its data fields."""

from sahab.ledger.vocabulary import LedgerEvent


class ExchangeEvent(LedgerEvent):
    """The exchange's entries: subsystems, provider hosts, services, grants, certificates,
    tokens, and every message."""

    CERTIFICATE_ISSUED = (
        "exchange.certificate.issued",
        "The platform CA issued a client certificate to a subsystem.",
        ("fingerprint", "not_after", "serial"),
    )
    CERTIFICATE_REVOKED = (
        "exchange.certificate.revoked",
        "A subsystem's client certificate was revoked, with the reason.",
        ("reason", "serial"),
    )
    GRANT_APPROVED = (
        "exchange.grant.approved",
        "A provider's administration approved a client's access to a service "
        "(endpoints, rate, expiry).",
        ("client", "endpoints", "expires_at", "grant", "rate_per_minute"),
    )
    GRANT_REFUSED = (
        "exchange.grant.refused",
        "A provider's administration refused a client's access to a service.",
        ("client", "endpoints", "expires_at", "grant", "rate_per_minute"),
    )
    GRANT_REQUESTED = (
        "exchange.grant.requested",
        "A client subsystem asked for access to a service, with its legal basis and purpose.",
        ("client", "endpoints", "grant", "legal_basis", "purpose"),
    )
    GRANT_REVOKED = (
        "exchange.grant.revoked",
        "A client's access to a service was revoked.",
        ("client", "grant"),
    )
    HOST_REGISTERED = (
        "exchange.host.registered",
        "A platform administrator registered a provider host for an administration.",
        ("allow_internal", "host", "path_prefix", "port"),
    )
    HOST_REVOKED = (
        "exchange.host.revoked",
        "A registered provider host was revoked.",
        ("host", "path_prefix", "port"),
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
            "service",
            "started_at",
            "status",
            "x_road_id",
        ),
    )
    SERVICE_CHANGED = (
        "exchange.service.changed",
        "A service's settings changed (hashes of its base URL and OpenAPI description).",
        ("active", "base_url_sha256", "fields", "openapi_sha256"),
    )
    SERVICE_REGISTERED = (
        "exchange.service.registered",
        "A subsystem registered a REST service (the hash of its base URL).",
        ("base_url_sha256", "classification", "name"),
    )
    SUBSYSTEM_REGISTERED = (
        "exchange.subsystem.registered",
        "An administration registered an information system as a subsystem.",
        ("name",),
    )
    TOKEN_ISSUED = (
        "exchange.token.issued",
        "A subsystem's gateway token was issued (its id, never its secret).",
        ("token",),
    )
    TOKEN_REVOKED = (
        "exchange.token.revoked",
        "A subsystem's gateway token was revoked.",
        ("token",),
    )
