"""Every write to the mail directory: domains, mailboxes, passwords, aliases and lists,
delegations. Each checks the actor's rights and records a ledger entry in its
transaction; the SMTP servers and Dovecot pick the change up after the commit.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import re
import secrets
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from sahab.core import keys
from sahab.core import secrets as sealing
from sahab.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    read_when_rendered,
)
from sahab.directory import notifications, rules
from sahab.directory import selectors as directory
from sahab.directory.errors import DirectoryError
from sahab.directory.models import Administration, Agent, Role
from sahab.ledger import services as ledger
from sahab.mail import dkim
from sahab.mail.delivery import LINE_BREAKS, normalise
from sahab.mail.errors import MailError
from sahab.mail.events import MailEvent
from sahab.mail.models import (
    Alias,
    AliasMember,
    Delegation,
    Mailbox,
    MailDomain,
    NoticeKind,
    NoticePreference,
    RoutingVersion,
)

# OWASP's argon2id parameters: Dovecot verifies the same digest on every IMAP login.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
LOCAL_PART = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
REGISTRY_LOCAL_PART = "bureau-ordre"


# --- rights -----------------------------------------------------------------------------

def can_manage_mail(user, administration: Administration) -> bool:
    """Platform admins everywhere; administration and mail admins in their subtree."""
    if directory.is_platform_admin(user):
        return True
    agent = directory.agent_of(user)
    if agent is None:
        return False
    roles = agent.role_set
    if Role.ADMINISTRATION_ADMIN in roles or Role.MAIL_ADMIN in roles:
        return administration.is_within(agent.administration)
    return False


def _require_manager(actor, administration: Administration) -> None:
    if not can_manage_mail(actor, administration):
        raise PermissionDenied(MailError.MAIL_ADMINISTRATORS_ONLY, name=administration.name)


def _routing_changed() -> None:
    """Bump the routing version and rewrite Dovecot's users after the commit."""
    if not RoutingVersion.objects.update(version=F("version") + 1):
        RoutingVersion.objects.create(version=1)

    def sync() -> None:
        from sahab.mail import dovecot

        dovecot.write_passwd_file()

    transaction.on_commit(sync)


# --- domains ----------------------------------------------------------------------------

def domain_allowed(name: str) -> bool:
    """Whether ``name`` is one of the domains the state holds (SAHAB_MAIL_DOMAINS)."""
    name = (name or "").strip().lower().rstrip(".")
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in settings.MAIL_DOMAINS_ALLOWED)


def check_domain_assignment(*, actor, name: str | None) -> None:
    """Refuse giving (or taking) an administration's mail domain to anyone but a platform
    administrator, and any domain outside the state's list. Called by the directory
    before it saves the change."""
    if not rules.can_assign_mail_domain(actor):
        raise PermissionDenied(MailError.DOMAIN_ASSIGNMENT_FORBIDDEN)
    if name and not domain_allowed(name):
        raise InvalidInput(
            MailError.DOMAIN_NOT_ALLOWED, name=name,
            allowed=", ".join(settings.MAIL_DOMAINS_ALLOWED),
            field_errors={"mail_domain": [_("Not a domain of the state.")]})


@transaction.atomic
def ensure_domain(*, actor, administration: Administration, name: str) -> MailDomain:
    """The mail domain ``name`` of ``administration``; a new one (with its DKIM keys) is
    made only by a platform administrator, for a domain of the state's list."""
    name = name.strip().lower().rstrip(".")
    existing = MailDomain.objects.filter(name=name).first()
    if existing is not None:
        if existing.administration_id != administration.pk:
            raise Conflict(MailError.DOMAIN_OF_ANOTHER_ADMINISTRATION, domain=name)
        return existing
    check_domain_assignment(actor=actor, name=name)
    keys.ensure_secrets_key()  # as `sahab init` does; an existing key is kept
    rsa_pem, rsa_public, seed, ed_public = dkim.generate_keys()
    domain = MailDomain.objects.create(
        administration=administration, name=name,
        dkim_selector=f"sahab{timezone.now():%Y%m}",
        dkim_rsa_private=sealing.seal(rsa_pem, f"dkim-rsa:{name}"), dkim_rsa_public=rsa_public,
        dkim_ed25519_private=sealing.seal(seed, f"dkim-ed25519:{name}"),
        dkim_ed25519_public=ed_public)
    ledger.enqueue(
        MailEvent.DOMAIN_CREATED,
        f"mail:domain:{name}",
        actor,
        administration=administration.code,
        dkim_selector=domain.dkim_selector,
        ed25519_key=ed_public,
        rsa_key=rsa_public,
    )
    _routing_changed()
    return domain


def domain_assigned(*, actor, administration: Administration) -> MailDomain | None:
    """The directory gave ``administration`` its mail domain: make it (keys included)."""
    if not administration.mail_domain:
        return None
    return ensure_domain(actor=actor, administration=administration,
                         name=administration.mail_domain)


def domain_for(administration: Administration) -> MailDomain | None:
    """The domain of an administration, or of its nearest ancestor that has one.

    Only domains made by ``ensure_domain`` count: a name written into the directory by
    any other way gets neither keys nor mailboxes.
    """
    codes = directory.lineage_codes(administration)
    by_code = {a.code: a for a in Administration.objects.filter(code__in=codes)}
    for code in codes:
        owner = by_code.get(code)
        if owner is not None and owner.mail_domain:
            return MailDomain.objects.filter(name=owner.mail_domain, administration=owner,
                                             active=True).first()
    return None


def mta_sts_policy() -> str:
    """The MTA-STS policy of every hosted domain (RFC 8461 §3.2): our MX, TLS enforced."""
    return (f"version: STSv1\r\nmode: enforce\r\nmx: {settings.MAIL_HOSTNAME}\r\n"
            f"max_age: 604800\r\n")


def normalise_address(address: str) -> str | None:
    return normalise(address) if address else None


def dns_records(domain: MailDomain) -> list[tuple[str, str, str]]:
    """What the operators publish in DNS for ``domain``: (name, type, value).

    Besides MX, SPF, DMARC and the two DKIM keys: MTA-STS (RFC 8461; the policy itself is
    served by sahab at https://mta-sts.<domain>/.well-known/mta-sts.txt, whose id changes
    with it), TLS reporting (RFC 8460) to the domain's administrators, and the names mail
    clients look up (RFC 6186 SRV records, Outlook's autodiscover, Thunderbird's
    autoconfig).
    """
    host = settings.MAIL_HOSTNAME
    web = settings.PUBLIC_URL.split("//", 1)[-1].split("/", 1)[0].split(":")[0]
    policy_id = hashlib.sha256(mta_sts_policy().encode()).hexdigest()[:20]
    public = settings.MAIL_PUBLIC_HOST
    return [
        (domain.name, "MX", f"10 {host}."),
        (domain.name, "TXT", f"v=spf1 mx a:{host} -all"),
        (f"_mta-sts.{domain.name}", "TXT", f"v=STSv1; id={policy_id}"),
        (f"mta-sts.{domain.name}", "CNAME", f"{web}."),
        (f"_smtp._tls.{domain.name}", "TXT", f"v=TLSRPTv1; rua=mailto:postmaster@{domain.name}"),
        (f"_imaps._tcp.{domain.name}", "SRV", f"0 1 {settings.IMAPS_PORT} {public}."),
        (f"_submissions._tcp.{domain.name}", "SRV", f"0 1 {settings.SMTPS_PORT} {public}."),
        (f"autodiscover.{domain.name}", "CNAME", f"{web}."),
        (f"autoconfig.{domain.name}", "CNAME", f"{web}."),
        (f"_dmarc.{domain.name}", "TXT",
         f"v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:dmarc@{domain.name}"),
        (f"{domain.ed25519_selector}._domainkey.{domain.name}", "TXT",
         dkim.ed25519_record(domain.dkim_ed25519_public)),
        (f"{domain.rsa_selector}._domainkey.{domain.name}", "TXT",
         dkim.rsa_record(domain.dkim_rsa_public)),
    ]


# --- mailboxes --------------------------------------------------------------------------

def _local_part(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", ascii_text.lower()).strip("._-")
    return re.sub(r"([._-])[._-]+", r"\1", cleaned)[:64]


def _check_local_part(local_part: str) -> str:
    local_part = local_part.strip().lower()
    if not LOCAL_PART.match(local_part):
        raise InvalidInput(MailError.ADDRESS_CHARACTERS,
                           field_errors={"local_part": [_("Invalid address.")]})
    return local_part


def _address_taken(address: str) -> bool:
    return Mailbox.objects.filter(address=address).exists() or \
        Alias.objects.filter(address=address).exists()


def _create_mailbox(actor, domain: MailDomain, local_part: str, kind: str,
                    display_name: str, agent: Agent | None = None) -> Mailbox:
    address = f"{local_part}@{domain.name}"
    if _address_taken(address):
        raise Conflict(MailError.ADDRESS_IN_USE, address=address)
    # the display name goes into From: headers: one line, whatever the directory holds
    display_name = "".join(" " if c in LINE_BREAKS or c == "\x00" else c
                           for c in display_name).strip()
    mailbox = Mailbox.objects.create(domain=domain, local_part=local_part, address=address,
                                     kind=kind, agent=agent, display_name=display_name[:200],
                                     quota_bytes=settings.MAIL_DEFAULT_QUOTA_BYTES)
    ledger.enqueue(
        MailEvent.MAILBOX_CREATED,
        f"mail:mailbox:{mailbox.pk}",
        actor,
        domain=domain.name,
        kind=kind,
    )
    _routing_changed()
    return mailbox


@transaction.atomic
def provision_agent_mailbox(agent: Agent) -> Mailbox | None:
    """The agent's own mailbox, made when the agent is created (None: no mail domain)."""
    existing = Mailbox.objects.filter(agent=agent).first()
    if existing is not None:
        return existing
    domain = domain_for(agent.administration)
    if domain is None:
        return None
    user = agent.user
    candidates = []
    if user.email.lower().endswith("@" + domain.name):
        candidates.append(user.email.lower().split("@")[0])
    candidates.append(_local_part(f"{user.first_name}.{user.last_name}"))
    candidates.append(_local_part(user.username))
    for local_part in candidates:
        if LOCAL_PART.match(local_part or "-") and \
                not _address_taken(f"{local_part}@{domain.name}"):
            break
    else:
        local_part = f"{_local_part(user.username) or 'agent'}-{agent.pk}"
    return _create_mailbox(directory.SYSTEM, domain, local_part, Mailbox.Kind.PERSONAL,
                           user.get_full_name() or user.username, agent=agent)


def _domain_to_give_addresses_in(actor, administration: Administration) -> MailDomain:
    """The domain in which ``actor`` makes an address for ``administration``: its own or
    its nearest ancestor's. The addresses of a domain are given by the mail
    administrators of the administration that holds it — the same who manage its
    mailboxes afterwards — so that a unit's administrator cannot take ``postmaster@``,
    the registry office or any free name of the ministry's domain."""
    _require_manager(actor, administration)
    domain = domain_for(administration)
    if domain is None:
        raise InvalidInput(MailError.NO_MAIL_DOMAIN)
    _require_manager(actor, domain.administration)
    return domain


@transaction.atomic
def create_shared_mailbox(*, actor, administration: Administration, local_part: str,
                          display_name: str, registry: bool = False) -> Mailbox:
    """A mailbox of a service (shared) or the administration's registry office."""
    domain = _domain_to_give_addresses_in(actor, administration)
    if registry and Mailbox.objects.filter(domain=domain, kind=Mailbox.Kind.REGISTRY).exists():
        # one registry office per domain: letters to the administration go there, and a
        # second one would take them (docs/mail.md)
        raise Conflict(MailError.REGISTRY_MAILBOX_EXISTS)
    kind = Mailbox.Kind.REGISTRY if registry else Mailbox.Kind.SHARED
    return _create_mailbox(actor, domain, _check_local_part(local_part), kind, display_name)


@transaction.atomic
def set_mailbox_active(*, actor, mailbox: Mailbox, active: bool) -> Mailbox:
    """Enable or disable a mailbox. Another agent's personal mailbox is switched only by
    someone who could set its password: while it is off, the links that reset its owner's
    sign-in go to the account's e-mail address instead, and its owner gets no mail."""
    _require_manager(actor, mailbox.domain.administration)
    if mailbox.agent_id is not None and directory.agent_of(actor) != mailbox.agent \
            and not rules.can_set_personal_mailbox(actor, mailbox.agent):
        owner = mailbox.agent
        raise PermissionDenied(MailError.PERSONAL_MAILBOX_SWITCH_OUT_OF_REACH,
                               name=read_when_rendered(lambda: str(owner)))
    if mailbox.active != active:
        mailbox.active = active
        mailbox.save(update_fields=["active"])
        ledger.enqueue(
            MailEvent.MAILBOX_ENABLED if active else MailEvent.MAILBOX_DISABLED,
            f"mail:mailbox:{mailbox.pk}",
            actor,
        )
        _routing_changed()
    return mailbox


@transaction.atomic
def set_quota(*, actor, mailbox: Mailbox, quota_bytes: int) -> Mailbox:
    _require_manager(actor, mailbox.domain.administration)
    if quota_bytes < 1024 * 1024 or quota_bytes > settings.MAIL_MAX_QUOTA_BYTES:
        raise InvalidInput(MailError.QUOTA_OUT_OF_RANGE, max=settings.MAIL_MAX_QUOTA_BYTES,
                           field_errors={"quota_bytes": [_("Out of range.")]})
    mailbox.quota_bytes = quota_bytes
    mailbox.save(update_fields=["quota_bytes"])
    ledger.enqueue(
        MailEvent.MAILBOX_QUOTA_SET, f"mail:mailbox:{mailbox.pk}", actor, quota_bytes=quota_bytes
    )
    _routing_changed()
    return mailbox


def can_use_mailbox(user, mailbox: Mailbox, *, send: bool = False) -> bool:
    """The owner, or an agent the mailbox was delegated to (with the send right to send)."""
    agent = directory.agent_of(user)
    if agent is None or not mailbox.active:
        return False
    if mailbox.agent_id == agent.pk:
        return True
    delegation = Delegation.objects.filter(mailbox=mailbox, agent=agent).first()
    return delegation is not None and (delegation.can_send or not send)


@transaction.atomic
def set_password(*, actor, mailbox: Mailbox, password: str | None = None) -> str:
    """Set the password mail clients use (IMAP and submission); generated when not given.

    Returns the password: a generated one is shown once and never stored in clear.
    """
    own = mailbox.agent_id is not None and directory.agent_of(actor) == mailbox.agent
    if not own:
        _require_manager(actor, mailbox.domain.administration)
        # password-reset links go to a personal mailbox: holding it is holding the account
        if mailbox.agent_id is not None and \
                not rules.can_set_personal_mailbox(actor, mailbox.agent):
            owner = mailbox.agent
            raise PermissionDenied(DirectoryError.PERSONAL_MAILBOX_OUT_OF_REACH,
                                   name=read_when_rendered(lambda: str(owner)))
    if password is None:
        password = "-".join(secrets.token_urlsafe(6).replace("-", "x").replace("_", "y")
                            for _ in range(3))
    elif len(password) < 12 or len(password) > 200:
        raise InvalidInput(MailError.PASSWORD_LENGTH,
                           field_errors={"password": [_("12 to 200 characters.")]})
    mailbox.password_digest = "{ARGON2ID}" + _HASHER.hash(password)
    mailbox.password_set_at = timezone.now()
    mailbox.save(update_fields=["password_digest", "password_set_at"])
    ledger.enqueue(MailEvent.MAILBOX_PASSWORD_SET, f"mail:mailbox:{mailbox.pk}", actor)
    _routing_changed()
    if not own and mailbox.agent_id is not None and actor is not directory.SYSTEM:
        # whoever set it can read this mailbox now: the account page says it too (the
        # platform itself, at the demo or from the command line, is the operator, who
        # holds the mail storage anyway)
        notifications.sign_in_changed(mailbox.agent.user, "mailbox_password_set")
    return password


def password_matches(digest: str, password: str | bytes) -> bool:
    """Check a password against a mailbox digest as Dovecot stores it ({ARGON2ID}…)."""
    if not digest:
        return False
    try:
        return _HASHER.verify(digest.removeprefix("{ARGON2ID}"), password)
    except (VerificationError, InvalidHashError):
        return False


def check_password(mailbox: Mailbox, password: str) -> bool:
    return password_matches(mailbox.password_digest, password)


# --- aliases, lists and delegations ------------------------------------------------------

@transaction.atomic
def create_alias(*, actor, administration: Administration, local_part: str,
                 members: list[Mailbox], is_list: bool = False, description: str = "") -> Alias:
    """An alias (one mailbox) or a distribution list (several) in the administration's
    domain; members may be mailboxes of any administration."""
    domain = _domain_to_give_addresses_in(actor, administration)
    if not members or (not is_list and len(members) != 1):
        raise InvalidInput(MailError.ALIAS_TARGETS,
                           field_errors={"members": [_("Choose the members.")]})
    address = f"{_check_local_part(local_part)}@{domain.name}"
    if _address_taken(address):
        raise Conflict(MailError.ADDRESS_IN_USE, address=address)
    alias = Alias.objects.create(domain=domain, address=address, is_list=is_list,
                                 description=description.strip()[:200])
    AliasMember.objects.bulk_create([AliasMember(alias=alias, mailbox=m) for m in members])
    ledger.enqueue(
        MailEvent.LIST_CREATED if is_list else MailEvent.ALIAS_CREATED,
        f"mail:alias:{alias.pk}",
        actor,
        domain=domain.name,
        members=sorted(m.pk for m in members),
    )
    _routing_changed()
    return alias


@transaction.atomic
def delete_alias(*, actor, alias: Alias) -> None:
    _require_manager(actor, alias.domain.administration)
    ledger.enqueue(MailEvent.ALIAS_DELETED, f"mail:alias:{alias.pk}", actor)
    alias.delete()
    _routing_changed()


@transaction.atomic
def delegate(*, actor, mailbox: Mailbox, agent: Agent, can_send: bool) -> Delegation:
    """Give an agent access to a shared or registry mailbox of the administration."""
    _require_manager(actor, mailbox.domain.administration)
    if mailbox.kind == Mailbox.Kind.PERSONAL:
        raise InvalidInput(MailError.PERSONAL_NOT_DELEGATED)
    if not agent.administration.is_within(mailbox.domain.administration):
        raise InvalidInput(MailError.DELEGATE_AGENTS_ONLY)
    delegation, _created = Delegation.objects.update_or_create(
        mailbox=mailbox, agent=agent, defaults={"can_send": can_send})
    ledger.enqueue(
        MailEvent.DELEGATION_GRANTED,
        f"mail:mailbox:{mailbox.pk}",
        actor,
        agent=f"user:{agent.user_id}",
        can_send=can_send,
    )
    _routing_changed()
    return delegation


@transaction.atomic
def revoke_delegation(*, actor, delegation: Delegation) -> None:
    _require_manager(actor, delegation.mailbox.domain.administration)
    ledger.enqueue(
        MailEvent.DELEGATION_REVOKED,
        f"mail:mailbox:{delegation.mailbox_id}",
        actor,
        agent=f"user:{delegation.agent.user_id}",
    )
    delegation.delete()
    _routing_changed()


def mailbox_by_address(address: str) -> Mailbox:
    normal = normalise(address)
    mailbox = Mailbox.objects.filter(address=normal).select_related("domain").first() \
        if normal else None
    if mailbox is None:
        raise NotFound(MailError.NO_MAILBOX, address=address)
    return mailbox


def measure_usage() -> int:
    """Record each mailbox's size on disk (Dovecot's deletions included)."""
    from sahab.mail import maildir

    changed = 0
    for mailbox in Mailbox.objects.select_related("domain"):
        used = maildir.size_of(mailbox.maildir) if mailbox.maildir.exists() else 0
        if used != mailbox.used_bytes:
            Mailbox.objects.filter(pk=mailbox.pk).update(used_bytes=used)
            changed += 1
    if changed:
        RoutingVersion.objects.update(version=F("version") + 1)
    return changed


def sync_agent_mailboxes() -> int:
    """Make the mailboxes that agents created meanwhile are still missing (safety net)."""
    made = 0
    for agent in Agent.objects.filter(mailbox__isnull=True, user__is_active=True) \
            .select_related("user", "administration"):
        if provision_agent_mailbox(agent) is not None:
            made += 1
    return made


def prune_delivery_markers() -> int:
    from sahab.mail import maildir
    from sahab.mail.models import mail_root

    return maildir.prune_markers(mail_root(), dt.timedelta(days=7).total_seconds())


# --- vacation replies ---------------------------------------------------------------------

def _sieve_string(value: str) -> str:
    """A Sieve quoted string (RFC 5228 §2.4.2): backslash and double quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@transaction.atomic
def set_vacation(*, actor, mailbox: Mailbox, enabled: bool, subject: str = "",
                 text: str = "") -> None:
    """Turn the mailbox's vacation reply (a Sieve script Dovecot runs at delivery) on
    with this subject and text, or off. Each sender is answered once a day at most."""
    from sahab.mail import dovecot

    if not can_use_mailbox(actor, mailbox, send=True):
        raise PermissionDenied(MailError.MAILBOX_CHANGE_FORBIDDEN)
    script = dovecot.vacation_script(mailbox.home)
    if not enabled:
        script.unlink(missing_ok=True)
        ledger.enqueue(MailEvent.VACATION_DISABLED, f"mail:mailbox:{mailbox.pk}", actor)
        return
    subject, text = subject.strip(), text.strip()
    errors = {}
    if not subject or len(subject) > 200 or any(c in subject for c in "\r\n\0"):
        errors["subject"] = [_("A subject of 1 to 200 characters on one line.")]
    if not text or len(text) > 10_000 or "\0" in text:
        errors["text"] = [_("A text of 1 to 10,000 characters.")]
    if errors:
        raise InvalidInput(MailError.VACATION_INCOMPLETE, field_errors=errors)
    body = (f'require ["vacation"];\nvacation :days 1 :subject {_sieve_string(subject)} '
            f':addresses [{_sieve_string(mailbox.address)}] {_sieve_string(text)};\n')
    from sahab.mail import maildir

    maildir.ensure_maildir(mailbox.home, owner=maildir.mail_owner())
    staged = script.with_name(script.name + ".new")
    staged.unlink(missing_ok=True)
    maildir.write_durably(staged, body.encode(), maildir.mail_owner())
    staged.replace(script)
    ledger.enqueue(MailEvent.VACATION_ENABLED, f"mail:mailbox:{mailbox.pk}", actor)


def vacation_of(mailbox: Mailbox) -> bool:
    from sahab.mail import dovecot

    return dovecot.vacation_script(mailbox.home).exists()


# --- the platform's notices ------------------------------------------------------------

@transaction.atomic
def choose_notices(*, actor, user, wanted) -> NoticePreference:
    """``user`` chooses which kinds of the platform's notices they are mailed: every kind
    not in ``wanted`` is turned off. A person chooses for themself only, so that nobody
    can silence the notices meant for someone else."""
    if actor is None or getattr(actor, "pk", None) != user.pk:
        raise PermissionDenied(MailError.NOTICES_OWN_ONLY)
    wanted = set(wanted)
    unknown = sorted(wanted - set(NoticeKind.values))
    if unknown:
        raise InvalidInput(MailError.UNKNOWN_NOTICE_KIND, kinds=", ".join(unknown))
    preference, _created = NoticePreference.objects.select_for_update().get_or_create(
        user=user)
    preference.muted = sorted(set(NoticeKind.values) - wanted)
    preference.save(update_fields=["muted"])
    ledger.enqueue(MailEvent.NOTICES_CHOSEN, f"user:{user.pk}", actor,
                  {"muted": preference.muted})
    return preference


def muted_notices(user) -> set[str]:
    """The kinds of notice ``user`` turned off."""
    return set(NoticePreference.objects.filter(user=user).values_list("muted", flat=True)
               .first() or [])
