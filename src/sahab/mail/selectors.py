"""Reads of the mail pillar: whose mailboxes an agent may use, the global address book."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from django.db.models import Count, ExpressionWrapper, F, FloatField, Q, QuerySet, Sum, Value
from django.db.models.functions import Greatest

from sahab.directory import selectors as directory
from sahab.directory.models import Administration, Role
from sahab.mail.events import MailEvent
from sahab.mail.models import Alias, Mailbox, MailDomain


def usable_by(agent) -> Q:
    """Mailboxes an agent may use: their own, and those delegated to them."""
    return Q(agent=agent) | Q(delegations__agent=agent)


def mailboxes_of(user) -> list[Mailbox]:
    """The agent's own mailbox first, then those delegated to the agent."""
    agent = directory.agent_of(user)
    if agent is None:
        return []
    boxes = Mailbox.objects.filter(usable_by(agent), active=True) \
        .select_related("domain").distinct()
    return sorted(boxes, key=lambda m: (m.agent_id != agent.pk, m.address))


def sending_mailboxes_of(user) -> QuerySet[Mailbox]:
    agent = directory.agent_of(user)
    if agent is None:
        return Mailbox.objects.none()
    return Mailbox.objects.filter(
        Q(agent=agent) | Q(delegations__agent=agent, delegations__can_send=True),
        active=True).select_related("domain").distinct().order_by("kind", "address")


def administrations_with_registry() -> QuerySet[Administration]:
    return Administration.objects.filter(
        mail_domains__mailboxes__kind=Mailbox.Kind.REGISTRY,
        mail_domains__mailboxes__active=True).distinct().order_by("name_fr")


@dataclass
class Entry:
    """One line of the government's address book."""

    address: str
    name: str
    kind: str
    title: str
    administration: str
    administration_code: str
    phone: str

    def as_dict(self) -> dict:
        return asdict(self)


def address_book(query: str = "") -> list[Entry]:
    """Every active mailbox and list of every administration, filtered by ``query``."""
    boxes = Mailbox.objects.filter(active=True, domain__active=True).select_related(
        "domain__administration", "agent__user", "agent__administration")
    aliases = Alias.objects.filter(domain__active=True).select_related("domain__administration")
    if query:
        words = query.split()
        for word in words:
            boxes = boxes.filter(Q(address__icontains=word) | Q(display_name__icontains=word)
                                 | Q(agent__title__icontains=word)
                                 | Q(domain__administration__name_fr__icontains=word)
                                 | Q(domain__administration__name_ar__icontains=word)
                                 | Q(domain__administration__code__iexact=word))
            aliases = aliases.filter(Q(address__icontains=word)
                                     | Q(description__icontains=word)
                                     | Q(domain__administration__name_fr__icontains=word))
    entries = []
    for box in boxes[:5000]:
        owner = box.agent.administration if box.agent_id else box.domain.administration
        entries.append(Entry(box.address, box.display_name, box.get_kind_display(),
                             box.agent.title if box.agent_id else "", owner.name, owner.code,
                             box.agent.phone if box.agent_id else ""))
    for alias in aliases[:2000]:
        owner = alias.domain.administration
        entries.append(Entry(alias.address, alias.description or alias.address,
                             str(Alias._meta.get_field("is_list").verbose_name)
                             if alias.is_list else str(Alias._meta.verbose_name),
                             "", owner.name, owner.code, ""))
    entries.sort(key=lambda e: (e.administration, e.name.lower()))
    return entries


def vcards(entries: list[Entry]) -> str:
    """The address book as vCard 3.0 (RFC 2426), one card per entry."""
    import vobject

    cards = []
    for entry in entries:
        card = vobject.vCard()
        card.add("fn").value = entry.name or entry.address
        card.add("n").value = vobject.vcard.Name(family=entry.name or entry.address)
        mail = card.add("email")
        mail.value = entry.address
        mail.type_param = "INTERNET"
        card.add("org").value = [entry.administration]
        if entry.title:
            card.add("title").value = entry.title
        if entry.phone:
            card.add("tel").value = entry.phone
        cards.append(card.serialize())
    return "".join(cards)


def managed_domains(user, q: str = "") -> QuerySet[MailDomain]:
    """The mail domains ``user`` administers (``services.can_manage_mail`` as a query),
    matching ``q`` in the domain or the administration's code or names, each with its
    mailbox count and the bytes used and allowed."""
    domains = MailDomain.objects.select_related("administration")
    if not directory.is_platform_admin(user):
        agent = directory.agent_of(user)
        if agent is None or not agent.role_set & {Role.ADMINISTRATION_ADMIN, Role.MAIL_ADMIN}:
            return domains.none()
        domains = domains.filter(administration__path__startswith=agent.administration.path)
    if q := q.strip():
        domains = domains.filter(
            Q(name__icontains=q) | Q(administration__code__iexact=q)
            | Q(administration__name_fr__icontains=q) | Q(administration__name_ar__icontains=q)
            | Q(administration__name_en__icontains=q))
    return domains.annotate(mailbox_count=Count("mailboxes"),
                            used_bytes=Sum("mailboxes__used_bytes"),
                            quota_bytes=Sum("mailboxes__quota_bytes")).order_by("name")


def domain_mailboxes(domain: MailDomain, q: str = "") -> QuerySet[Mailbox]:
    """The mailboxes of ``domain``, matching ``q`` in their address or display name."""
    boxes = Mailbox.objects.filter(domain=domain).select_related("agent__user")
    if q := q.strip():
        boxes = boxes.filter(Q(address__icontains=q) | Q(display_name__icontains=q))
    return boxes.order_by("address")


def fullest_mailboxes(domain: MailDomain, limit: int = 15) -> list[Mailbox]:
    """The ``limit`` mailboxes of ``domain`` using the largest share of their quota,
    ranked by the database (a domain may hold thousands)."""
    share = ExpressionWrapper(F("used_bytes") * 1.0 / Greatest(F("quota_bytes"), Value(1)),
                              output_field=FloatField())
    return list(Mailbox.objects.filter(domain=domain).annotate(share=share)
                .order_by("-share", "address")[:limit])


def password_set_by_someone_else(user) -> dt.datetime | None:
    """When the password of ``user``'s personal mailbox was last set, if it was set by
    another user (a mail administrator; not the platform itself, see
    ``services.set_password``): read from the ledger's entries, the integrated ones and
    those still pending, not from a row the setter could edit."""
    from sahab.ledger import services as ledger
    from sahab.ledger.models import PendingEntry

    agent = directory.agent_of(user)
    mailbox = Mailbox.objects.filter(agent=agent).only("pk").first() if agent else None
    if mailbox is None:
        return None
    subject, kind = f"mail:mailbox:{mailbox.pk}", MailEvent.MAILBOX_PASSWORD_SET.value
    # the pending rows first: an entry integrated between the two reads is then found
    # in the log, never missed by both. The log's side reads only the signed log's
    # entries: a row planted beyond it must not hide the notice.
    pending = PendingEntry.objects.filter(subject=subject, type=kind, index__isnull=True,
                                          refused="").order_by("-at")[:1]
    logged = ledger.entries_about(subject).filter(type=kind).order_by("-index")[:1]
    last = max((row for rows in (pending, logged) for row in rows.values("actor", "at")),
               key=lambda row: row["at"], default=None)
    if last is None or last["actor"] in (directory.actor_id(user),
                                         directory.actor_id(directory.SYSTEM)):
        return None
    return last["at"]
