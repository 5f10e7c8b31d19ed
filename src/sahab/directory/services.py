"""Every write to the directory. Each function checks the actor's rights, validates,
and changes the database in one transaction."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable

import pyotp
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from sahab.core import keys
from sahab.core import secrets as sealing
from sahab.core.errors import (
    Conflict,
    CoreError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
)
from sahab.core.errors import from_validation_error as _invalid
from sahab.directory import notifications, rules, selectors
from sahab.directory import sessions as web_sessions
from sahab.directory.errors import DirectoryError
from sahab.directory.events import DirectoryEvent
from sahab.directory.models import (
    ALLOWED_PARENT_KINDS,
    Administration,
    Agent,
    AgentRole,
    ApiToken,
    Company,
    CompanyMember,
    PasswordResetMail,
    Role,
)
from sahab.directory.validators import normalize_matricule_fiscal
from sahab.ledger import services as ledger

User = get_user_model()
TOKEN_PREFIX = "sahab_"  # noqa: S105 (a marker that makes leaked tokens easy to scan for)


def _full_clean(obj, exclude: Iterable[str] | None = None) -> None:
    try:
        obj.full_clean(exclude=list(exclude or []))
    except ValidationError as exc:
        raise _invalid(exc) from None


def _require(condition: bool, error: DirectoryError) -> None:
    if not condition:
        raise PermissionDenied(error)


def _admin_data(admin: Administration) -> dict:
    return {"code": admin.code, "kind": admin.kind,
            "parent": admin.parent.code if admin.parent_id else None,
            "name_fr": admin.name_fr, "name_ar": admin.name_ar, "name_en": admin.name_en,
            "acronym": admin.acronym, "mail_domain": admin.mail_domain, "active": admin.active}


def _company_data(company: Company) -> dict:
    return {"name": company.name, "legal_form": company.legal_form,
            "matricule_fiscal": company.matricule_fiscal, "city": company.city,
            "is_bidder": company.is_bidder, "is_cloud_provider": company.is_cloud_provider,
            "active": company.active}


# --- administrations -------------------------------------------------------------------

def check_parent(kind: str, parent: Administration | None) -> None:
    """Refuse a kind of administration under a parent the organisation chart does not allow."""
    allowed = ALLOWED_PARENT_KINDS.get(kind)
    if allowed is None:
        raise InvalidInput(DirectoryError.UNKNOWN_ADMINISTRATION_KIND, kind=kind,
                           field_errors={"kind": [_("Unknown kind.")]})
    if (parent.kind if parent else None) not in allowed:
        raise InvalidInput(
            DirectoryError.KIND_NOT_PLACEABLE,
            field_errors={"parent": [_("Not allowed as parent of this kind.")]})


@transaction.atomic
def create_administration(*, actor, code: str, kind: str, name_fr: str, name_ar: str,
                          name_en: str = "", acronym: str = "",
                          parent: Administration | None = None,
                          mail_domain: str | None = None) -> Administration:
    """Add an administration to the tree.

    Platform admins create anywhere; an administration admin creates only inside their
    own subtree (never a new top-level body).
    """
    if parent is None:
        _require(selectors.is_platform_admin(actor),
                 DirectoryError.TOP_LEVEL_FORBIDDEN)
    else:
        _require(selectors.can_manage_administration(actor, parent),
                 DirectoryError.ADD_OUTSIDE_OWN)
    check_parent(kind, parent)
    admin = Administration(
        code=(code or "").strip().upper(), kind=kind, parent=parent,
        name_fr=(name_fr or "").strip(), name_ar=(name_ar or "").strip(),
        name_en=(name_en or "").strip(), acronym=(acronym or "").strip(),
        mail_domain=(mail_domain or "").strip().lower() or None)
    admin.path = f"{parent.path if parent else '/'}{admin.code}/"
    _full_clean(admin, exclude=["path"])
    if admin.mail_domain:
        _check_mail_domain(actor, admin.mail_domain)
    try:
        with transaction.atomic():
            admin.save()
    except IntegrityError:
        raise Conflict(DirectoryError.ADMINISTRATION_EXISTS) from None
    ledger.enqueue(
        DirectoryEvent.ADMINISTRATION_CREATED,
        f"administration:{admin.code}",
        actor,
        **_admin_data(admin),
    )
    if admin.mail_domain:
        _mail_domain_assigned(actor, admin)
    return admin


_EDITABLE_ADMIN_FIELDS = {"name_fr", "name_ar", "name_en", "acronym", "mail_domain", "active"}


def update_administration(*, actor, administration: Administration,
                          parent: Administration | str | None = "unchanged",
                          **changes) -> Administration:
    """Change names, acronym, mail domain or active flag, or move it under a new parent."""
    _require(selectors.can_manage_administration(actor, administration),
             DirectoryError.ADMINISTRATION_CHANGE_FORBIDDEN)
    unknown = set(changes) - _EDITABLE_ADMIN_FIELDS
    if unknown:
        raise InvalidInput(DirectoryError.FIELDS_NOT_EDITABLE, fields=", ".join(sorted(unknown)))
    root = selectors.managed_root(actor)
    if root is not None and administration.pk == root.pk and "active" in changes:
        raise PermissionDenied(DirectoryError.DEACTIVATE_OWN_ADMINISTRATION)
    with transaction.atomic():
        admin = Administration.objects.select_for_update().get(pk=administration.pk)
        old_mail_domain = admin.mail_domain
        for field, value in changes.items():
            if field == "mail_domain":
                value = (value or "").strip().lower() or None
            elif isinstance(value, str):
                value = value.strip()
            setattr(admin, field, value)
        if parent != "unchanged":
            _move(actor, admin, parent)
        _full_clean(admin, exclude=["path"])
        if admin.mail_domain != old_mail_domain:
            _check_mail_domain(actor, admin.mail_domain)
        try:
            with transaction.atomic():
                admin.save()
        except IntegrityError:
            raise Conflict(DirectoryError.MAIL_DOMAIN_TAKEN) from None
        ledger.enqueue(
            DirectoryEvent.ADMINISTRATION_UPDATED,
            f"administration:{admin.code}",
            actor,
            **_admin_data(admin),
        )
        if admin.mail_domain != old_mail_domain:
            _mail_domain_assigned(actor, admin)
    return admin


# Mail domains are vetted by the mail pillar: only platform admins assign them, from the
# state's list, and the DKIM keys are made then (docs/mail.md).

def _check_mail_domain(actor, name: str | None) -> None:
    from sahab.mail import services as mail

    mail.check_domain_assignment(actor=actor, name=name)


def _mail_domain_assigned(actor, admin: Administration) -> None:
    from sahab.mail import services as mail

    mail.domain_assigned(actor=actor, administration=admin)


def _move(actor, admin: Administration, parent: Administration | None) -> None:
    if parent is None:
        _require(selectors.is_platform_admin(actor),
                 DirectoryError.TOP_LEVEL_FORBIDDEN)
    else:
        _require(selectors.can_manage_administration(actor, parent),
                 DirectoryError.MOVE_OUTSIDE_OWN)
        if parent.is_within(admin):
            raise InvalidInput(DirectoryError.MOVE_UNDER_ITSELF,
                               field_errors={"parent": [_("Creates a cycle.")]})
    root = selectors.managed_root(actor)
    if root is not None and admin.pk == root.pk:
        raise PermissionDenied(DirectoryError.MOVE_OWN_ADMINISTRATION)
    check_parent(admin.kind, parent)
    old_path = admin.path
    admin.parent = parent
    admin.path = f"{parent.path if parent else '/'}{admin.code}/"
    for child in Administration.objects.filter(path__startswith=old_path).exclude(pk=admin.pk):
        child.path = admin.path + child.path[len(old_path):]
        child.save(update_fields=["path"])


# --- agents -----------------------------------------------------------------------------

def _validate_roles(actor, roles: Iterable[str], administration: Administration,
                    current: set[str] = frozenset()) -> list[str]:
    """The new role list, once every role given or taken away is the actor's to grant."""
    roles = sorted(set(roles))
    unknown = [r for r in roles if r not in Role.values]
    if unknown:
        raise InvalidInput(DirectoryError.UNKNOWN_ROLES, roles=", ".join(unknown),
                           field_errors={"roles": [_("Unknown role.")]})
    refused = sorted(r for r in set(roles) ^ set(current)
                     if not rules.can_grant_role(actor, r, administration))
    if refused:
        powerful = [r for r in refused if r in rules.POWERFUL_ROLES]
        field_errors = {"roles": [_("Not yours to grant.")]}
        if not powerful and set(refused) <= rules.MINISTRY_WIDE_ROLES:
            raise PermissionDenied(DirectoryError.ROLES_FOR_MINISTRY_ADMINS,
                                   roles=", ".join(str(Role(r).label) for r in refused),
                                   field_errors=field_errors)
        raise PermissionDenied(
            DirectoryError.ROLES_FOR_PLATFORM_ADMINS,
            roles=", ".join(str(Role(r).label) for r in (powerful or refused)),
            field_errors=field_errors)
    return roles


def _validate_password(password: str, user) -> None:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput(DirectoryError.PASSWORD_REFUSED, reasons=" ".join(exc.messages),
                           field_errors={"password": list(exc.messages)}) from None


def _new_user(*, username: str, email: str, first_name: str, last_name: str,
              password: str | None) -> tuple:
    username = (username or "").strip()
    user = User(username=username, email=(email or "").strip().lower(),
                first_name=(first_name or "").strip(), last_name=(last_name or "").strip())
    _full_clean(user, exclude=["password"])
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict(DirectoryError.USERNAME_TAKEN, username=username)
    generated = None
    if password is None:
        generated = password = secrets.token_urlsafe(12)
    else:
        _validate_password(password, user)
    user.set_password(password)
    user.save()
    return user, generated


def _sync_staff_flags(agent: Agent) -> None:
    """Platform admins use Django's admin screens; nobody else does."""
    is_admin = agent.has_role(Role.PLATFORM_ADMIN)
    user = agent.user
    if user.is_staff != is_admin or user.is_superuser != is_admin:
        user.is_staff = user.is_superuser = is_admin
        user.save(update_fields=["is_staff", "is_superuser"])


@transaction.atomic
def create_agent(*, actor, administration: Administration, username: str, email: str,
                 first_name: str = "", last_name: str = "", roles: Iterable[str] = (),
                 title: str = "", phone: str = "",
                 password: str | None = None) -> tuple[Agent, str | None]:
    """Create an agent in ``administration``; returns the agent and a generated password
    when none was given (shown once to the administrator who created the account)."""
    _require(selectors.can_manage_administration(actor, administration),
             DirectoryError.AGENTS_OUTSIDE_OWN)
    if not administration.active:
        raise InvalidInput(DirectoryError.ADMINISTRATION_INACTIVE)
    roles = _validate_roles(actor, roles, administration)
    user, generated = _new_user(username=username, email=email, first_name=first_name,
                                last_name=last_name, password=password)
    agent = Agent(user=user, administration=administration, title=title.strip(),
                  phone=phone.strip())
    _full_clean(agent, exclude=["user"])
    agent.save()
    AgentRole.objects.bulk_create([AgentRole(agent=agent, role=r) for r in roles])
    _sync_staff_flags(agent)
    ledger.enqueue(
        DirectoryEvent.AGENT_CREATED,
        f"user:{user.pk}",
        actor,
        administration=administration.code,
        roles=roles,
    )
    return agent, generated


@transaction.atomic
def set_agent_roles(*, actor, agent: Agent, roles: Iterable[str]) -> Agent:
    """Replace an agent's roles."""
    _require(rules.can_manage_agent(actor, agent),
             DirectoryError.ROLES_CHANGE_FORBIDDEN)
    roles = _validate_roles(actor, roles, agent.administration, agent.role_set)
    if selectors.agent_of(actor) == agent and Role.ADMINISTRATION_ADMIN not in roles \
            and not selectors.is_platform_admin(actor):
        raise PermissionDenied(DirectoryError.REMOVE_OWN_ADMIN_ROLE)
    AgentRole.objects.filter(agent=agent).exclude(role__in=roles).delete()
    existing = set(AgentRole.objects.filter(agent=agent).values_list("role", flat=True))
    AgentRole.objects.bulk_create(
        [AgentRole(agent=agent, role=r) for r in roles if r not in existing])
    agent = Agent.objects.prefetch_related("roles").get(pk=agent.pk)
    _sync_staff_flags(agent)
    ledger.enqueue(DirectoryEvent.AGENT_ROLES_CHANGED, f"user:{agent.user_id}", actor, roles=roles)
    return agent


@transaction.atomic
def set_agent_active(*, actor, agent: Agent, active: bool) -> Agent:
    """Enable or disable an agent's sign-in; disabling also revokes their API tokens and
    ends their web sessions in the store, so that enabling the account again does not
    bring back a session opened before (perhaps by whoever it was disabled against)."""
    if selectors.agent_of(actor) == agent and not active:
        raise PermissionDenied(DirectoryError.DISABLE_OWN_ACCOUNT)
    _require(rules.can_set_agent_active(actor, agent), DirectoryError.AGENT_CHANGE_FORBIDDEN)
    agent.user.is_active = active
    agent.user.save(update_fields=["is_active"])
    if not active:
        ApiToken.objects.filter(user=agent.user, revoked_at=None).update(
            revoked_at=timezone.now())
        web_sessions.end_all_sessions(agent.user)
    ledger.enqueue(
        DirectoryEvent.AGENT_ENABLED if active else DirectoryEvent.AGENT_DISABLED,
        f"user:{agent.user_id}",
        actor,
    )
    return agent


@transaction.atomic
def move_agent(*, actor, agent: Agent, administration: Administration) -> Agent:
    _require(rules.can_move_agent(actor, agent, administration),
             DirectoryError.AGENT_MOVE_OUTSIDE_OWN)
    agent.administration = administration
    agent.save(update_fields=["administration"])
    ledger.enqueue(
        DirectoryEvent.AGENT_MOVED,
        f"user:{agent.user_id}",
        actor,
        administration=administration.code,
    )
    return agent


# --- companies --------------------------------------------------------------------------

def _company_fields(fields: dict) -> dict:
    cleaned = {k: (v.strip() if isinstance(v, str) else v) for k, v in fields.items()}
    if "matricule_fiscal" in cleaned:
        try:
            cleaned["matricule_fiscal"] = normalize_matricule_fiscal(cleaned["matricule_fiscal"])
        except ValidationError as exc:
            raise InvalidInput(DirectoryError.MATRICULE_INVALID, reasons=" ".join(exc.messages),
                               field_errors={"matricule_fiscal": list(exc.messages)}) from None
    return cleaned


def _check_company_identity(company: Company) -> None:
    """A company is one legal person: its *identifiant unique* (the matricule fiscal's first
    eight characters, the registre national's id and the OCDS party id) is held by one
    company only, whether written short or with another establishment number. Another
    registration under it would take the identity of the company that holds it."""
    identifier = company.matricule_fiscal[:8]
    others = Company.objects.filter(matricule_fiscal__startswith=identifier)
    if company.pk is not None:
        others = others.exclude(pk=company.pk)
    if others.exists():
        raise Conflict(DirectoryError.COMPANY_EXISTS,
                       field_errors={"matricule_fiscal": [
                           _("A company with this matricule fiscal is registered.")]})


_COMPANY_FIELDS = {"name", "legal_form", "matricule_fiscal", "address", "city", "postal_code",
                   "email", "phone", "website", "is_bidder", "is_cloud_provider"}


@transaction.atomic
def register_company(*, actor, admin_username: str, admin_email: str, admin_password: str | None,
                     admin_first_name: str = "", admin_last_name: str = "",
                     **company_fields) -> tuple[Company, CompanyMember, str | None]:
    """Register a company together with its first user, who administers it.

    Anybody may register a company (``actor`` is then the anonymous user); the tax
    identifier must be valid and unique.
    """
    unknown = set(company_fields) - _COMPANY_FIELDS
    if unknown:
        raise InvalidInput(CoreError.UNKNOWN_FIELDS, fields=", ".join(sorted(unknown)))
    company = Company(**_company_fields(company_fields))
    _check_company_identity(company)  # before the model's checks: a 409 naming the field
    _full_clean(company)
    user, generated = _new_user(username=admin_username, email=admin_email,
                                first_name=admin_first_name, last_name=admin_last_name,
                                password=admin_password)
    try:
        with transaction.atomic():
            company.save()
    except IntegrityError:
        raise Conflict(DirectoryError.COMPANY_EXISTS) from None
    member = CompanyMember.objects.create(user=user, company=company, is_company_admin=True)
    ledger.enqueue(
        DirectoryEvent.COMPANY_REGISTERED,
        f"company:{company.pk}",
        actor,
        **_company_data(company),
        admin=f"user:{user.pk}",
    )
    return company, member, generated


def _can_manage_company(actor, company: Company) -> bool:
    if selectors.is_platform_admin(actor):
        return True
    member = getattr(actor, "company_member", None) if actor.is_authenticated else None
    return bool(member and member.company_id == company.pk and member.is_company_admin)


@transaction.atomic
def update_company(*, actor, company: Company, **changes) -> Company:
    _require(_can_manage_company(actor, company), DirectoryError.COMPANY_CHANGE_FORBIDDEN)
    unknown = set(changes) - (_COMPANY_FIELDS | {"active"})
    if unknown:
        raise InvalidInput(DirectoryError.FIELDS_NOT_EDITABLE, fields=", ".join(sorted(unknown)))
    if "active" in changes:
        _require(selectors.is_platform_admin(actor),
                 DirectoryError.SUSPEND_FORBIDDEN)
    company = Company.objects.select_for_update().get(pk=company.pk)
    for field, value in _company_fields(changes).items():
        setattr(company, field, value)
    _check_company_identity(company)
    _full_clean(company)
    try:
        with transaction.atomic():
            company.save()
    except IntegrityError:
        raise Conflict(DirectoryError.COMPANY_EXISTS) from None
    ledger.enqueue(
        DirectoryEvent.COMPANY_UPDATED, f"company:{company.pk}", actor, **_company_data(company)
    )
    return company


@transaction.atomic
def add_company_user(*, actor, company: Company, username: str, email: str,
                     first_name: str = "", last_name: str = "", is_company_admin: bool = False,
                     password: str | None = None) -> tuple[CompanyMember, str | None]:
    _require(_can_manage_company(actor, company),
             DirectoryError.COMPANY_USERS_FORBIDDEN)
    user, generated = _new_user(username=username, email=email, first_name=first_name,
                                last_name=last_name, password=password)
    member = CompanyMember.objects.create(user=user, company=company,
                                          is_company_admin=is_company_admin)
    ledger.enqueue(
        DirectoryEvent.COMPANY_USER_ADDED,
        f"company:{company.pk}",
        actor,
        user=f"user:{user.pk}",
        is_company_admin=is_company_admin,
    )
    return member, generated


# --- passwords and second factor ----------------------------------------------------------

@transaction.atomic
def change_password(*, user, old_password: str, new_password: str) -> None:
    if not user.check_password(old_password):
        raise InvalidInput(DirectoryError.CURRENT_PASSWORD_WRONG,
                           field_errors={"old_password": [_("Wrong password.")]})
    _validate_password(new_password, user)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    ledger.enqueue(DirectoryEvent.USER_PASSWORD_CHANGED, f"user:{user.pk}", user)
    notifications.sign_in_changed(user, "password_changed")


# Reset links sent per account and hour: enough for a lost mail, too few to flood a box.
RESET_MAILS_PER_HOUR = 3


def _accounts_for(identifier: str) -> list:
    """Active accounts named by a username, an address or an agent's mailbox address."""
    from django.db.models import Q

    identifier = identifier.strip()
    if not identifier:
        return []
    return list(User.objects.filter(is_active=True).filter(
        Q(username__iexact=identifier) | Q(email__iexact=identifier)
        | Q(agent__mailbox__address__iexact=identifier)).distinct()[:5])


def request_password_reset(*, identifier: str) -> int:
    """Mail a one-time link to set a new password to the account named by ``identifier``.

    The person asking is told the same thing whether or not the account exists (no way to
    learn who has an account); an account gets at most ``RESET_MAILS_PER_HOUR`` links an
    hour. Returns how many links were sent, for tests and logs only. The link carries
    Django's signed token: valid for ``PASSWORD_RESET_TIMEOUT``, and dead as soon as the
    password changes or the account signs in."""
    from django.contrib.auth.tokens import default_token_generator
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from sahab.mail import delivery, notices

    sent = 0
    hour_ago = timezone.now() - dt.timedelta(hours=1)
    for user in _accounts_for(identifier):
        address = notices.address_of(user)
        if not address or not user.has_usable_password():
            continue
        with transaction.atomic():
            User.objects.select_for_update().filter(pk=user.pk).first()  # one count at a time
            if PasswordResetMail.objects.filter(user=user, sent_at__gte=hour_ago).count() \
                    >= RESET_MAILS_PER_HOUR:
                continue
            PasswordResetMail.objects.create(user=user)
        uid = urlsafe_base64_encode(force_bytes(user.pk))
        link = settings.PUBLIC_URL.rstrip("/") + reverse(
            "directory:password_reset_confirm",
            args=(uid, default_token_generator.make_token(user)))
        body = _("Someone, probably you, asked to set a new password for the account "
                 "%(username)s. Open this link within an hour to choose it:\n\n%(link)s\n\n"
                 "If you did not ask, ignore this message: your password stays as it is.") \
            % {"username": user.username, "link": link}
        try:
            notices.send(sender=settings.ACCOUNTS_MAIL_FROM, to=address,
                         subject=_("Set a new password"), body=body, helo="sahab-accounts")
        except (OSError, delivery.Refused):
            continue  # the same answer to the person asking; the trace above remains
        sent += 1
    return sent


def account_for_reset_link(uidb64: str, token: str, *, for_update: bool = False):
    """The account a reset link names if the link is still valid, else None; with
    ``for_update``, read under the account's lock."""
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.http import urlsafe_base64_decode

    try:
        pk = int(urlsafe_base64_decode(uidb64).decode())
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        return None
    accounts = User.objects.select_for_update() if for_update else User.objects
    user = accounts.filter(pk=pk, is_active=True).first()
    if user is None or not default_token_generator.check_token(user, token):
        return None
    return user


@transaction.atomic
def reset_password(*, uidb64: str, token: str, new_password: str):
    """Set a new password with a reset link: once only (the password's change ends the
    link), checked under the account's lock so that two uses cannot both pass. The
    second factor, where the account has one, is still asked at the next sign-in."""
    user = account_for_reset_link(uidb64, token, for_update=True)
    if user is None:
        raise InvalidInput(DirectoryError.LINK_NO_LONGER_VALID)
    _validate_password(new_password, user)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    ledger.enqueue(DirectoryEvent.USER_PASSWORD_RESET_BY_MAIL, f"user:{user.pk}", user)
    notifications.sign_in_changed(user, "password_reset")
    return user


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(agent: Agent, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=agent.user.username, issuer_name="sahab")


def _seal_totp(agent: Agent, secret: str) -> str:
    """The secret sealed under the platform's secrets key, bound to its account."""
    keys.ensure_secrets_key()  # as `sahab init` does; an existing key is kept
    sealed = sealing.seal(secret.encode(), f"totp:{agent.user_id}")
    return base64.b64encode(sealed).decode()


def _unseal_totp(agent: Agent) -> str:
    return sealing.unseal(base64.b64decode(agent.totp_secret), f"totp:{agent.user_id}").decode()


def _accept_totp(agent: Agent, secret: str, code: str) -> bool:
    """Check a code against ``secret``, refusing a step that was already used (replay)."""
    code = (code or "").strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(secret)
    now = int(timezone.now().timestamp())
    for offset in (-1, 0, 1):  # one step of clock drift either way
        step = now // totp.interval + offset
        if step > agent.totp_last_step and secrets.compare_digest(
                totp.at(step * totp.interval), code):
            Agent.objects.filter(pk=agent.pk).update(totp_last_step=step)
            agent.totp_last_step = step
            return True
    return False


@transaction.atomic
def enable_totp(*, agent: Agent, secret: str, code: str) -> None:
    """Turn on the second factor once the agent proves their app holds ``secret``."""
    if agent.totp_enabled:
        raise Conflict(DirectoryError.TOTP_ALREADY_ON)
    try:
        pyotp.TOTP(secret).now()
    except Exception:
        raise InvalidInput(DirectoryError.TOTP_SECRET_INVALID) from None
    if not _accept_totp(agent, secret, code):
        raise InvalidInput(DirectoryError.TOTP_CODE_INVALID,
                           field_errors={"code": [_("Wrong code.")]})
    agent.totp_secret = _seal_totp(agent, secret)
    agent.totp_enabled = True
    agent.totp_failures, agent.totp_locked_until = 0, None
    agent.save(update_fields=["totp_secret", "totp_enabled", "totp_failures",
                              "totp_locked_until"])
    ledger.enqueue(DirectoryEvent.AGENT_SECOND_FACTOR_ENABLED, f"user:{agent.user_id}", agent.user)
    notifications.sign_in_changed(agent.user, "second_factor_on")


def totp_locked(agent: Agent) -> bool:
    """Whether the account waits out a lockout after too many wrong codes."""
    return agent.totp_locked_until is not None and agent.totp_locked_until > timezone.now()


def verify_totp(*, agent: Agent, code: str) -> bool:
    """True when ``code`` is the agent's current one-time code (each code works once).

    Wrong codes count per account (ASVS 2.2.1): after ``SAHAB_TOTP_MAX_FAILURES`` of them
    the account refuses every code, the right one included, for
    ``SAHAB_TOTP_LOCKOUT_MINUTES``; only a right code accepted resets the count.
    Raises ``TooManyAttempts`` while locked.
    """
    with transaction.atomic():
        agent = Agent.objects.select_for_update().get(pk=agent.pk)
        if not agent.totp_enabled:
            return False
        if totp_locked(agent):
            raise TooManyAttempts(DirectoryError.TOTP_LOCKED)
        if _accept_totp(agent, _unseal_totp(agent), code):
            Agent.objects.filter(pk=agent.pk).update(totp_failures=0, totp_locked_until=None)
            return True
        failures = agent.totp_failures + 1
        locked_until = None
        if failures >= settings.TOTP_MAX_FAILURES:
            locked_until = timezone.now() + dt.timedelta(minutes=settings.TOTP_LOCKOUT_MINUTES)
            failures = 0  # a fresh allowance once the lockout is over
        Agent.objects.filter(pk=agent.pk).update(totp_failures=failures,
                                                 totp_locked_until=locked_until)
    if locked_until is not None:
        with transaction.atomic():
            ledger.enqueue(DirectoryEvent.AGENT_SECOND_FACTOR_LOCKED, f"user:{agent.user_id}",
                          agent.user)
    return False


def require_second_factor(*, user, code: str | None) -> None:
    """Refuse a sensitive act (a new API token) without the current code of an account
    whose second factor is on."""
    agent = selectors.agent_of(user)
    if agent is None or not agent.totp_enabled:
        return
    if not code:
        raise PermissionDenied(DirectoryError.TOTP_CODE_REQUIRED,
                               field_errors={"code": [_("Required.")]})
    if not verify_totp(agent=agent, code=code):
        raise PermissionDenied(DirectoryError.TOTP_CODE_INVALID,
                               field_errors={"code": [_("Wrong code.")]})


def disable_totp(*, actor, agent: Agent, code: str | None = None) -> None:
    """The agent turns it off with a valid code; an administrator may reset it."""
    if selectors.agent_of(actor) == agent:
        if not verify_totp(agent=agent, code=code or ""):  # counts outside the write
            raise InvalidInput(DirectoryError.TOTP_CODE_INVALID,
                               field_errors={"code": [_("Wrong code.")]})
    else:
        _require(rules.can_reset_second_factor(actor, agent),
                 DirectoryError.RESET_SECOND_FACTOR_FORBIDDEN)
    with transaction.atomic():
        _turn_off_totp(actor, agent)


def _turn_off_totp(actor, agent: Agent) -> None:
    Agent.objects.filter(pk=agent.pk).update(totp_enabled=False, totp_secret="",
                                             totp_failures=0, totp_locked_until=None)
    ledger.enqueue(DirectoryEvent.AGENT_SECOND_FACTOR_DISABLED, f"user:{agent.user_id}", actor)
    notifications.sign_in_changed(agent.user, "second_factor_off")


# --- web sessions ---------------------------------------------------------------------------

@transaction.atomic
def end_sessions(*, user, password: str, current_key: str | None,
                 sign_in_id: int | None = None) -> int:
    """The user ends one of their own web sessions (``sign_in_id``), or every one but the
    session they are using (``current_key``), after typing their password again (ASVS
    3.3.4); returns how many ended. Each ended session is gone from the session store,
    so it stops working at once wherever it is used."""
    if not user.check_password(password or ""):
        raise InvalidInput(DirectoryError.PASSWORD_WRONG,
                           field_errors={"password": [_("Wrong password.")]})
    alive = {s.pk: s.session_key for s in web_sessions.active_sessions(user)}
    if sign_in_id is not None:
        if sign_in_id not in alive:
            raise NotFound(DirectoryError.NO_SUCH_SESSION)
        keys = [alive[sign_in_id]]
    else:
        keys = [key for key in alive.values() if key != current_key]
    for key in keys:
        web_sessions.end_session(key)
    ledger.enqueue(DirectoryEvent.USER_SESSIONS_ENDED, f"user:{user.pk}", user,
                  {"count": len(keys)})
    notifications.sign_in_changed(user, "sessions_ended")
    return len(keys)


# --- API tokens -------------------------------------------------------------------------

def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


MAX_TOKEN_LIFETIME = dt.timedelta(days=3 * 366)


def _token_expiry(expires_at: dt.datetime) -> dt.datetime:
    """The expiry in UTC, between now and three years from now (naive means UTC)."""
    try:
        if timezone.is_naive(expires_at):
            expires_at = expires_at.replace(tzinfo=dt.UTC)
        expires_at = expires_at.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        expires_at = dt.datetime.max.replace(tzinfo=dt.UTC)
    now = timezone.now()
    if expires_at <= now:
        raise InvalidInput(DirectoryError.TOKEN_EXPIRY_PAST,
                           field_errors={"expires_at": [_("Must be in the future.")]})
    if expires_at > now + MAX_TOKEN_LIFETIME:
        raise InvalidInput(DirectoryError.TOKEN_TOO_LONG_LIVED,
                           field_errors={"expires_at": [_("At most three years from now.")]})
    return expires_at


def issue_api_token(*, actor, user, name: str, expires_at: dt.datetime | None = None,
                    code: str | None = None) -> tuple[ApiToken, str]:
    """Create a bearer token for ``user``; the clear token is returned once, never stored.

    Users issue their own tokens; platform admins issue tokens for machine accounts. A
    token is a sign-in of its own: an actor whose second factor is on gives its current
    ``code``, whether they come with a session or with another token.
    """
    _require(selectors.is_platform_admin(actor) or getattr(actor, "pk", None) == user.pk,
             DirectoryError.TOKENS_FOR_YOURSELF)
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput(DirectoryError.TOKEN_NAME_LENGTH,
                           field_errors={"name": [_("Required, 100 characters at most.")]})
    if expires_at is not None:
        expires_at = _token_expiry(expires_at)
    # outside the write's transaction: a wrong code must count even though it refuses
    require_second_factor(user=actor, code=code)
    with transaction.atomic():
        return _issue_token(actor, user, name, expires_at)


def _issue_token(actor, user, name: str, expires_at: dt.datetime | None) -> tuple[ApiToken, str]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken.objects.create(user=user, name=name, prefix=token[:12],
                                     digest=token_digest(token), expires_at=expires_at)
    ledger.enqueue(
        DirectoryEvent.TOKEN_ISSUED,
        f"user:{user.pk}",
        actor,
        token=record.pk,
        expires_at=expires_at.isoformat() if expires_at else None,
    )
    return record, token


@transaction.atomic
def revoke_api_token(*, actor, token_id: int) -> ApiToken:
    token = ApiToken.objects.filter(pk=token_id).select_related("user").first()
    if token is None or not (selectors.is_platform_admin(actor) or token.user_id == actor.pk):
        raise NotFound(DirectoryError.NO_SUCH_TOKEN)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        ledger.enqueue(DirectoryEvent.TOKEN_REVOKED, f"user:{token.user_id}", actor, token=token.pk)
    return token


def authenticate_token(token: str):
    """The active user a bearer token belongs to, or None. Records the last use."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    # the agent or company member with the user: every API call asks who they are
    record = selectors.token_with_holder(token_digest(token))
    if record is None:
        return None
    if not record.is_usable or not record.user.is_active:
        return None
    now = timezone.now()
    # Write at most once a minute per token: reads must not turn into writes under load.
    if record.last_used_at is None or now - record.last_used_at > dt.timedelta(minutes=1):
        ApiToken.objects.filter(pk=record.pk).update(last_used_at=now)
    return record.user
