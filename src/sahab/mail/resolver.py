"""The DNS resolver of the mail pillar (``SAHAB_MAIL_DNS``), for SPF, DKIM and DMARC.

dkimpy, pyspf and authheaders all ask dnspython's default resolver; this module points it
at the configured one:

- ``false`` (closed networks): no lookups; hosted domains' keys come from the database
  and other domains are reported ``none``/``neutral``;
- ``true``: the system's resolver (``/etc/resolv.conf``);
- ``IP`` or ``IP:PORT``: that resolver only.
"""

from __future__ import annotations

import threading

import dns.exception
import dns.resolver
from django.conf import settings

TIMEOUT = 5.0
_lock = threading.Lock()
_configured: str | None = None


def enabled() -> bool:
    return settings.MAIL_DNS not in ("", "false", "off", "no", "0")


def configure() -> None:
    """Point dnspython's default resolver at ``SAHAB_MAIL_DNS`` (once per value)."""
    global _configured
    value = settings.MAIL_DNS
    if value == _configured or not enabled():
        return
    with _lock:
        if value in ("true", "on", "yes", "1", "system"):
            resolver = dns.resolver.Resolver()
        else:
            host, _, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [host or value]
            resolver.port = int(port) if port.isdigit() else 53
        resolver.lifetime = resolver.timeout = TIMEOUT
        dns.resolver.default_resolver = resolver
        _configured = value


def txt_records(name: str) -> list[str]:
    """Every TXT record at ``name`` (each with its strings joined); none when DNS is off.

    Raises ``TemporaryFailure`` when the resolver does not answer.
    """
    if not enabled():
        return []
    configure()
    try:
        answer = dns.resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


TemporaryFailure = dns.exception.DNSException
