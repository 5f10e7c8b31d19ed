"""The exchange's refusals: members, hosts, services, grants, certificates and the log."""

from django.utils.translation import gettext_lazy as _

from sahab.core.errors import ErrorCode


class ExchangeError(ErrorCode):
    """The data exchange between administrations: the registry of members, subsystems and
    services, the hosts providers answer on, the grants, the certificates and the message
    log."""

    REGISTRY_FOR_AGENTS = _("The intranet's registry is for the administrations' agents.")
    NO_EXCHANGE_WITH_ID = _("No exchange of your administration has the X-Road-Id %(id)s.")
    CSR_TOO_LARGE = _("The certificate signing request is too large.")
    CSR_NOT_PEM = _("This is not a PEM certificate signing request.")
    CSR_SIGNATURE_INVALID = _("The request's signature is not valid.")
    KEY_TOO_WEAK = _("Keys must be ECDSA P-256 or larger, RSA 2048 or larger, or Ed25519.")
    CERTIFICATE_NOT_OURS = _("The certificate was not issued by the platform's CA.")
    LOG_RETRY_FORBIDDEN = _("Only platform administrators retry refused log records.")
    URL_NOT_PRINTABLE = _(
        "A provider URL is printable ASCII without spaces, 500 characters at most.")
    URL_INVALID = _("This is not a valid URL.")
    URL_SCHEME_REFUSED = _("A provider URL must use %(schemes)s.")
    URL_HAS_CREDENTIALS = _("A provider URL has no credentials, query or fragment.")
    URL_PORT_INVALID = _("The port of the provider URL is not valid.")
    URL_WITHOUT_HOST = _("A provider URL names a host.")
    HOST_NAME_INVALID = _(
        "A host is a DNS name (letters, digits, '-' and '.') or an IP address.")
    URL_PATH_UNSAFE = _(
        "A provider URL's path has no '.' or '..' segments and no encoded '/', '\\' or NUL.")
    PATH_PREFIX_INVALID = _("A path prefix starts with '/' (printable ASCII, 300 at most).")
    SYSTEMS_FORBIDDEN = _(
        "Only an IT officer or administrator of %(administration)s manages its information "
        "systems.")
    CODE_RESERVED = _("%(code)s is reserved for the X-Road metaservices.")
    CLIENT_EXISTS = _("%(code)s is already registered as a client.")
    HOST_REGISTRATION_FORBIDDEN = _("Only platform administrators register provider hosts.")
    PORT_OUT_OF_RANGE = _("The port is between 1 and 65535.")
    HOST_TAKEN = _("%(host)s is already registered for %(administration)s.")
    HOST_ALREADY_REVOKED = _("The host is already revoked.")
    URL_NOT_ON_REGISTERED_HOST = _(
        "%(what)s must be on a host registered for %(administration)s (%(url)s is not): a "
        "platform administrator registers the administration's hosts.")
    INTERNAL_ADDRESS_REFUSED = _(
        "%(host)s is an internal address that the host's registration does not allow.")
    OPENAPI_INVALID = _("The OpenAPI description is not valid: %(error)s")
    ENDPOINTS_INVALID = _("The endpoints are not valid: %(error)s")
    TIMEOUT_OUT_OF_RANGE = _("The timeout is between 1 and 120 seconds.")
    CONCURRENCY_OUT_OF_RANGE = _("The concurrency limit is between 1 and 10,000 calls.")
    SERVICE_NEEDS_SUBSYSTEM = _("Services belong to a subsystem, not to the member itself.")
    UNKNOWN_CLASSIFICATION = _("Unknown classification %(classification)s.")
    GRANT_TO_ITSELF = _("A subsystem does not need a grant for its own services.")
    GRANT_EXPIRY_PAST = _("The grant must expire in the future.")
    GRANT_EXISTS = _("A request or grant for this service already exists.")
    GRANT_NOT_REQUESTED = _("Only a requested grant is decided.")
    RATE_OUT_OF_RANGE = _("The rate is between 1 and 100,000 calls per minute.")
    GRANT_NOT_APPROVED = _("Only an approved grant is revoked.")
    CERTIFICATE_LIFETIME = _("Certificates last 1 to 825 days.")
    CERTIFICATE_ALREADY_REVOKED = _("The certificate is already revoked.")
