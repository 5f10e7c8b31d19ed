"""Is a mail domain's DNS published as sahab needs it? Each record of
``services.dns_records`` is looked up through the configured resolver (``SAHAB_MAIL_DNS``,
see ``resolver``) and compared with what it should say.

A record is *published* when one of the answers at its name and type means the same as the
expected value (case, spacing and the order of a TXT record's ``tag=value`` pairs aside),
*wrong* when answers exist but none does, *missing* when there is none, and *unchecked*
when DNS lookups are off or the resolver does not answer. A name can hold TXT records of
other uses (site verifications…): only those of the same kind (same ``v=`` tag) count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import dns.exception
import dns.resolver

from sahab.mail import resolver
from sahab.mail.models import MailDomain

PUBLISHED, WRONG, MISSING, UNCHECKED = "published", "wrong", "missing", "unchecked"


@dataclass(frozen=True)
class RecordCheck:
    """One expected record and what DNS answered for it."""

    name: str
    type: str
    expected: str
    status: str
    found: list[str] = field(default_factory=list)


def _tags(value: str) -> dict[str, str]:
    """``v=DKIM1; k=ed25519; p=…`` as a dict (keys lower-cased, spaces dropped)."""
    pairs = (part.split("=", 1) for part in value.split(";") if "=" in part)
    return {k.strip().lower(): re.sub(r"\s+", "", v) for k, v in pairs}


def _normal(type_: str, value: str) -> object:
    """A comparable form of a record's value."""
    value = " ".join(value.split())
    if type_ == "TXT":
        if value.lower().startswith("v=spf1"):
            return ("spf", tuple(sorted(value.lower().split()[1:])))
        if "=" in value and ";" in value:
            return ("tags", tuple(sorted(_tags(value).items())))
        return ("text", value)
    return value.lower().rstrip(".")


def _kind(value: str) -> str:
    """The ``v=`` tag of a TXT value (``spf1``, ``DKIM1``, ``DMARC1``…), upper-cased."""
    match = re.match(r"\s*v\s*=\s*([^;\s]+)", value)
    return match.group(1).upper() if match else ""


def _answers(name: str, type_: str) -> list[str]:
    try:
        answer = dns.resolver.resolve(name, type_)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    if type_ == "TXT":
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
    return [r.to_text() for r in answer]


def check_record(name: str, type_: str, expected: str) -> RecordCheck:
    """Look ``name``/``type_`` up and compare each answer with ``expected``."""
    if not resolver.enabled():
        return RecordCheck(name, type_, expected, UNCHECKED)
    resolver.configure()
    try:
        found = _answers(name, type_)
    except dns.exception.DNSException:
        return RecordCheck(name, type_, expected, UNCHECKED)
    if type_ == "TXT":
        found = [v for v in found if _kind(v) == _kind(expected)]
    if not found:
        return RecordCheck(name, type_, expected, MISSING)
    wanted = _normal(type_, expected)
    status = PUBLISHED if any(_normal(type_, v) == wanted for v in found) else WRONG
    return RecordCheck(name, type_, expected, status, found)


def check_domain(domain: MailDomain) -> list[RecordCheck]:
    """Every record of ``domain`` that sahab asks the operators to publish, checked."""
    from sahab.mail import services

    return [check_record(name, type_, value)
            for name, type_, value in services.dns_records(domain)]
