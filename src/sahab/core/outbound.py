"""Where the platform may send a request: the one policy for URLs that users set.

Broker URLs (cloud), witness URLs (ledger) and any other URL a user can give go through
``check_url`` when they are saved and ``pin`` when they are called (the exchange applies
the same rules with its per-administration registered hosts, ``sahab.exchange.outbound``):

- https only; plain http where ``SAHAB_OUTBOUND_ALLOW_HTTP`` (default: ``SAHAB_DEBUG``) and
  for the platform's own public URL (the reference broker of the demo);
- no credentials, fragment, or control characters; 500 characters at most;
- the name is resolved once; every address must be public unicast, unless the host is
  the platform's own or one a platform administrator listed in
  ``SAHAB_OUTBOUND_INTERNAL_HOSTS`` (``host`` or ``host:port``);
- the connection then goes to exactly the addresses checked (no second lookup that
  could be rebound), with short timeouts and without following redirects;
- every refusal and every failure says the same thing (``UNREACHABLE``): whether a port
  is open, closed or filtered, or a name exists, is never told.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

from sahab.core.errors import InvalidInput

log = logging.getLogger(__name__)

# One text for every refusal and failure, so that nobody learns the state of a target.
UNREACHABLE = ("This address is not allowed or could not be reached. Use an https URL on a "
               "public host, or ask a platform administrator to register an internal one.")
CONNECT_TIMEOUT_SECONDS = 5.0


class OutboundRefused(InvalidInput):
    """A URL the policy refuses; its detail is always ``UNREACHABLE``."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(UNREACHABLE, field_errors={"url": [UNREACHABLE]})
        self.reason = reason  # for the server's log only, never shown


@dataclass(frozen=True)
class Target:
    """A checked URL and the addresses the connection must go to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]
    trusted: bool  # the platform's own host or one a platform administrator listed

    def pinned_url(self) -> str:
        """The URL with its host replaced by the first checked address."""
        parts = urlsplit(self.url)
        if not self.addresses:
            return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        address = self.addresses[0]
        literal = f"[{address}]" if ":" in address else address
        return urlunsplit((parts.scheme, f"{literal}:{self.port}", parts.path, "", ""))


def _own_host() -> tuple[str, int]:
    parts = urlsplit(settings.PUBLIC_URL)
    return (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


def _listed(host: str, port: int) -> bool:
    """Whether a platform administrator listed the host (and port) as internal but allowed."""
    for entry in settings.OUTBOUND_INTERNAL_HOSTS:
        parts = urlsplit("//" + entry.strip().lower())
        try:
            listed_port = parts.port
        except ValueError:
            continue
        if parts.hostname == host and listed_port in (None, port):
            return True
    return False


def unicast_ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address as an IP (IPv4-mapped IPv6 read as IPv4, a zone id dropped), or None when
    it is no address, multicast or unspecified: nothing a request may be sent to."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return None if ip.is_multicast or ip.is_unspecified else ip


def public_address(address: str) -> bool:
    """Public unicast only: no loopback, link-local, private, shared or reserved range."""
    ip = unicast_ip(address)
    return ip is not None and ip.is_global


def _resolve(host: str, port: int) -> tuple[str, ...]:
    try:
        return (str(ipaddress.ip_address(host)),)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise OutboundRefused(f"{host} does not resolve: {exc}") from None
    return tuple(dict.fromkeys(info[4][0] for info in infos))


def check_url(url: str, *, allow_http: bool | None = None, resolve: bool = True) -> Target:
    """``url`` checked against the policy, its name resolved once; ``OutboundRefused``
    (always the same text) when it may not be called."""
    if not isinstance(url, str) or not url or len(url) > 500 or any(
            ord(c) < 33 or ord(c) == 127 for c in url):
        raise OutboundRefused("not a printable URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutboundRefused("unparsable") from None
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("http", "https") or not host or parts.username or \
            parts.password or parts.fragment or "#" in url:
        raise OutboundRefused("scheme, host, credentials or fragment")
    port = port or (443 if parts.scheme == "https" else 80)
    own = (host, port) == _own_host()
    trusted = own or _listed(host, port)
    if allow_http is None:
        allow_http = settings.OUTBOUND_ALLOW_HTTP
    if parts.scheme == "http" and not (allow_http or own):
        raise OutboundRefused("plain http")
    addresses: tuple[str, ...] = ()
    if resolve and not trusted:  # a trusted host is the operator's: reached by its name
        addresses = _resolve(host, port)
        if not all(public_address(a) for a in addresses):
            raise OutboundRefused(f"{host} has a non-public address {addresses}")
    return Target(url=url, scheme=parts.scheme, host=host, port=port, addresses=addresses,
                  trusted=trusted)


def http_client_options(target: Target) -> dict:
    """Options of an ``httpx.Client`` that reaches ``target`` on its checked address only:
    the host header and TLS name stay the URL's, redirects are not followed, timeouts are
    short."""
    import httpx

    return {"headers": {"Host": target.host if target.port in (80, 443)
                        else f"{target.host}:{target.port}"},
            "follow_redirects": False,
            "timeout": httpx.Timeout(settings.CLOUD_BROKER_TIMEOUT,
                                     connect=CONNECT_TIMEOUT_SECONDS)}


def sni_extensions(target: Target) -> dict:
    """The per-request httpx extension that keeps TLS verification on the URL's name."""
    return {"sni_hostname": target.host} if target.scheme == "https" else {}
