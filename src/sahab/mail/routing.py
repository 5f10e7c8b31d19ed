"""The routing table: hosted domains, mailboxes, aliases, credentials and sender rights,
loaded from the database into memory.

The SMTP server answers RCPT and AUTH from this table without touching the database,
and reloads it when ``RoutingVersion`` moves (checked at most once a second).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from sahab.core import secrets as sealing
from sahab.mail import dkim

# Addresses every hosted domain has (RFC 5321 §4.5.1, RFC 2142, and the DMARC report
# address the published record names): unless a mailbox or alias of that name exists,
# they reach the domain's mail administrators. The bare "postmaster" reaches the
# platform's administrators.
STANDARD_LOCAL_PARTS = ("postmaster", "abuse", "dmarc")
POSTMASTER = "postmaster"
# A registered letter sent from a mail client: to <registry>+lettre@<its domain>.
LETTER_TAG = "+lettre"


def letter_registry(address: str) -> str:
    """The registry office a registered-letter address stands for, or ""."""
    local, _, domain = address.rpartition("@")
    if not local.endswith(LETTER_TAG):
        return ""
    return f"{local.removesuffix(LETTER_TAG)}@{domain}"


@dataclass
class Route:
    """Where mail for one mailbox goes, and what is left of its quota."""

    address: str
    home: Path
    quota: int
    used: int
    active: bool

    def has_room_for(self, size: int) -> bool:
        return self.used + size <= self.quota


@dataclass
class Routing:
    version: int = -1
    domains: dict[str, dkim.DomainKeys] = field(default_factory=dict)
    mailboxes: dict[str, Route] = field(default_factory=dict)
    aliases: dict[str, list[str]] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)  # login → argon2 digest
    senders: dict[str, set[str]] = field(default_factory=dict)  # login → allowed From
    registries: set[str] = field(default_factory=set)  # registry offices (letters go there)
    records: dict[str, str] = field(default_factory=dict)  # DKIM TXT of hosted domains

    def is_hosted(self, address: str) -> bool:
        return address.rpartition("@")[2] in self.domains or address == POSTMASTER

    def knows(self, address: str) -> bool:
        route = self.mailboxes.get(address)
        return (route is not None and route.active) or address in self.aliases

    def expand(self, address: str) -> list[Route]:
        """The active mailboxes that mail for ``address`` reaches."""
        if address in self.mailboxes:
            route = self.mailboxes[address]
            return [route] if route.active else []
        return [self.mailboxes[a] for a in self.aliases.get(address, [])
                if a in self.mailboxes and self.mailboxes[a].active]


def current_version() -> int:
    from sahab.mail.models import RoutingVersion

    row = RoutingVersion.objects.first()
    return row.version if row else 0


def load() -> Routing:
    """Read the whole table (a few queries, whatever the number of mailboxes)."""
    from sahab.mail.models import Alias, AliasMember, Delegation, Mailbox, MailDomain

    routing = Routing(version=current_version())
    for domain in MailDomain.objects.filter(active=True):
        keys = domain_keys(domain)
        routing.domains[domain.name] = keys
        routing.records[f"{keys.rsa_selector}._domainkey.{domain.name}"] = \
            dkim.rsa_record(keys.rsa_public_b64)
        routing.records[f"{keys.ed25519_selector}._domainkey.{domain.name}"] = \
            dkim.ed25519_record(keys.ed25519_public_b64)
    boxes = Mailbox.objects.filter(domain__active=True).select_related("domain")
    by_id: dict[int, str] = {}
    for box in boxes:
        by_id[box.pk] = box.address
        routing.mailboxes[box.address] = Route(box.address, box.home, box.quota_bytes,
                                               box.used_bytes, box.active)
        if box.active and box.kind == Mailbox.Kind.REGISTRY:
            routing.registries.add(box.address)
        if box.active and box.password_digest:
            routing.credentials[box.address] = box.password_digest
            routing.senders.setdefault(box.address, set()).add(box.address)
    lists = set()
    for address, is_list in Alias.objects.filter(domain__active=True).values_list(
            "address", "is_list"):
        routing.aliases[address] = []
        if is_list:
            lists.add(address)
    for member in AliasMember.objects.select_related("alias"):
        if member.alias.address in routing.aliases and member.mailbox_id in by_id:
            routing.aliases[member.alias.address].append(by_id[member.mailbox_id])
    _sender_rights(routing, by_id, lists, Delegation, Mailbox)
    _standard_addresses(routing)
    return routing


def _standard_addresses(routing: Routing) -> None:
    """postmaster@, abuse@ and dmarc@ of every domain, and the bare postmaster."""
    from sahab.directory.models import AgentRole, Role
    from sahab.mail.models import Mailbox, MailDomain

    admins = (AgentRole.objects.filter(
        role__in=[Role.PLATFORM_ADMIN, Role.ADMINISTRATION_ADMIN, Role.MAIL_ADMIN],
        agent__mailbox__active=True, agent__user__is_active=True)
        .values_list("role", "agent__administration__path", "agent__mailbox__address"))
    platform = sorted({address for role, _path, address in admins if role == Role.PLATFORM_ADMIN})
    registries = dict(Mailbox.objects.filter(kind=Mailbox.Kind.REGISTRY, active=True)
                      .values_list("domain__name", "address"))
    for name, path in MailDomain.objects.filter(active=True).values_list(
            "name", "administration__path"):
        # the administrators of the domain's administration or of one above it
        targets = sorted({address for role, admin_path, address in admins
                          if role != Role.PLATFORM_ADMIN and path.startswith(admin_path)})
        targets = targets or ([registries[name]] if name in registries else platform)
        for local_part in STANDARD_LOCAL_PARTS:
            address = f"{local_part}@{name}"
            if targets and address not in routing.mailboxes and address not in routing.aliases:
                routing.aliases[address] = targets
    if platform:
        routing.aliases[POSTMASTER] = platform


def domain_keys(domain) -> dkim.DomainKeys:
    """The signing keys of a ``MailDomain``, unsealed."""
    import base64

    return dkim.DomainKeys(
        domain=domain.name, selector=domain.dkim_selector,
        rsa_pem=sealing.unseal(domain.dkim_rsa_private, f"dkim-rsa:{domain.name}"),
        ed25519_seed_b64=base64.b64encode(sealing.unseal(domain.dkim_ed25519_private,
                                                         f"dkim-ed25519:{domain.name}")),
        rsa_public_b64=domain.dkim_rsa_public, ed25519_public_b64=domain.dkim_ed25519_public)


def _sender_rights(routing: Routing, by_id: dict[int, str], lists: set[str], Delegation,
                   Mailbox) -> None:
    """Who may send as what: one's own address, aliases (not lists) that reach only one's
    mailbox, and the shared mailboxes one was given the right to send as."""
    for address, targets in routing.aliases.items():
        if len(targets) == 1 and targets[0] in routing.senders and address not in lists:
            routing.senders[targets[0]].add(address)
    agent_box = dict(Mailbox.objects.filter(agent__isnull=False, active=True)
                     .values_list("agent_id", "address"))
    for delegation in Delegation.objects.filter(can_send=True):
        login = agent_box.get(delegation.agent_id)
        if login in routing.senders and delegation.mailbox_id in by_id:
            routing.senders[login].add(by_id[delegation.mailbox_id])


class LiveRouting:
    """A routing table kept fresh by a background thread (for long-running servers)."""

    def __init__(self, interval: float = 1.0):
        self.table = load()
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mail-routing", daemon=True)

    def start(self) -> LiveRouting:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def refresh(self) -> None:
        from django.db import close_old_connections

        try:
            if current_version() != self.table.version:
                fresh = load()
                # keep what this process delivered since the last measurement
                for address, route in fresh.mailboxes.items():
                    old = self.table.mailboxes.get(address)
                    if old is not None and old.used > route.used:
                        route.used = old.used
                self.table = fresh
        finally:
            close_old_connections()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # a database hiccup: keep serving the table we have
                time.sleep(self.interval)
