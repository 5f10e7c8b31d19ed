"""Where the exchange gateway may send requests: the one place that decides.

The exchange's own outbound-URL rules, kept in this small module so that they can join
the platform's general policy for user-set URLs (``sahab.core.outbound``) in one piece:

- a provider URL is http(s) (plain http only where ``EXCHANGE_ALLOW_HTTP_PROVIDERS``),
  without credentials, query, fragment, dot segments or encoded separators;
- it must fall under a host (name or address, port, path prefix) that a platform
  administrator registered for the service's administration (``ProviderHost``);
- loopback, link-local, private and other non-public addresses are refused unless that
  registration allows internal addresses;
- names are resolved once per connection, checked, and the connection goes to exactly
  the addresses checked (the resolver below: no second lookup that could be rebound);
- redirects are never followed, timeouts are short, and failures are reported without
  saying why (no port-scan oracle): see the gateway.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from aiohttp.abc import AbstractResolver
from aiohttp.resolver import ThreadedResolver
from django.conf import settings

from sahab.core.errors import InvalidInput
from sahab.core.outbound import unicast_ip
from sahab.exchange.errors import ExchangeError

_HOST_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-")


@dataclass(frozen=True)
class ProviderURL:
    scheme: str
    host: str
    port: int
    path: str  # without trailing slash; "" for the root


def parse_url(url: str) -> ProviderURL:
    """A provider URL split and checked, or ``InvalidInput`` saying what is wrong."""
    if not isinstance(url, str) or not url or len(url) > 500 or any(
            ord(c) < 33 or ord(c) > 126 for c in url):
        raise InvalidInput(ExchangeError.URL_NOT_PRINTABLE)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise InvalidInput(ExchangeError.URL_INVALID) from None
    allowed = ("https", "http") if settings.EXCHANGE_ALLOW_HTTP_PROVIDERS else ("https",)
    if parts.scheme not in allowed:
        raise InvalidInput(ExchangeError.URL_SCHEME_REFUSED, schemes=" or ".join(allowed))
    if parts.username or parts.password or parts.query or parts.fragment or "#" in url:
        raise InvalidInput(ExchangeError.URL_HAS_CREDENTIALS)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidInput(ExchangeError.URL_PORT_INVALID) from None
    host = normalise_host(parts.hostname or "")
    return ProviderURL(parts.scheme, host, port, clean_path(parts.path))


def normalise_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if not host:
        raise InvalidInput(ExchangeError.URL_WITHOUT_HOST)
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    if len(host) > 253 or not set(host) <= _HOST_CHARS or ".." in host or \
            host.startswith(("-", ".")):
        raise InvalidInput(ExchangeError.HOST_NAME_INVALID)
    return host


def clean_path(path: str) -> str:
    """The path without its trailing slash, refused if it could escape its prefix."""
    path = path.rstrip("/")
    for segment in path.split("/")[1:]:
        decoded = unquote(segment)
        if decoded.split(";", 1)[0] in (".", "..") or any(c in decoded for c in "/\\\x00") \
                or "\\" in segment:
            raise InvalidInput(ExchangeError.URL_PATH_UNSAFE)
    return path


def clean_prefix(prefix: str) -> str:
    prefix = (prefix or "/").strip()
    if not prefix.startswith("/") or len(prefix) > 300 or any(
            ord(c) < 33 or ord(c) > 126 for c in prefix):
        raise InvalidInput(ExchangeError.PATH_PREFIX_INVALID)
    return clean_path(prefix) or "/"


def under_prefix(path: str, prefix: str) -> bool:
    """Whether ``path`` is ``prefix`` or below it, segment by segment."""
    if prefix in ("", "/"):
        return True
    return path == prefix or path.startswith(prefix + "/")


def prefixes_overlap(a: str, b: str) -> bool:
    return under_prefix(a, b) or under_prefix(b, a)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def address_allowed(address: str, *, allow_internal: bool) -> bool:
    """Public unicast addresses always; internal ones only where the host allows them."""
    ip = unicast_ip(address)
    return ip is not None and (ip.is_global or allow_internal)


class PinnedResolver(AbstractResolver):
    """Resolves a provider's name once for each new connection and keeps only the
    addresses the policy allows: the connection is made to those very addresses."""

    def __init__(self, *, allow_internal: bool) -> None:
        self.allow_internal = allow_internal
        self._resolver: ThreadedResolver | None = None

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET):
        if self._resolver is None:
            self._resolver = ThreadedResolver()
        infos = await self._resolver.resolve(host, port, family)
        allowed = [i for i in infos if address_allowed(i["host"],
                                                       allow_internal=self.allow_internal)]
        if not allowed:
            raise OSError(f"no allowed address for {host}")
        return allowed

    async def close(self) -> None:
        if self._resolver is not None:
            await self._resolver.close()


def client_ssl_context() -> ssl.SSLContext:
    """TLS towards providers: the system's CAs, the platform's own server certificate
    (the demo providers use it) and ``EXCHANGE_PROVIDER_CA_FILE``; the gateway shows its
    client certificate of the platform CA so that providers can refuse anyone else."""
    from sahab.core import keys
    from sahab.exchange import ca

    context = ssl.create_default_context()
    if keys.tls_cert_path().exists():
        context.load_verify_locations(cafile=str(keys.tls_cert_path()))
    if settings.EXCHANGE_PROVIDER_CA_FILE:
        context.load_verify_locations(cafile=settings.EXCHANGE_PROVIDER_CA_FILE)
    ca.ensure_gateway_certificate()
    context.load_cert_chain(str(ca.gateway_cert_path()), str(ca.gateway_key_path()))
    return context
