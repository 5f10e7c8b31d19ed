"""Reads of the directory, and the rights questions every pillar asks about a user."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from sahab.core.prebuilt import Join, JoinedRead
from sahab.directory.models import Administration, Agent, ApiToken, Company, Role


class SystemActor:
    """The platform itself (CLI, demo loader, background jobs): allowed everything.

    Services take it explicitly so that a forgotten user can never mean "anybody".
    """

    is_authenticated = True
    username = "system"
    pk = None

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM = SystemActor()


def agent_of(user) -> Agent | None:
    if user is None or isinstance(user, SystemActor) or not user.is_authenticated:
        return None
    try:
        return user.agent
    except Agent.DoesNotExist:
        return None


def roles_of(user) -> set[str]:
    agent = agent_of(user)
    return agent.role_set if agent else set()


def is_platform_admin(user) -> bool:
    if isinstance(user, SystemActor):
        return True
    return bool(user and user.is_authenticated and
                (user.is_superuser or Role.PLATFORM_ADMIN in roles_of(user)))


def is_agent(user) -> bool:
    return agent_of(user) is not None


def company_of(user) -> Company | None:
    if user is None or isinstance(user, SystemActor) or not user.is_authenticated:
        return None
    member = getattr(user, "company_member", None)
    return member.company if member else None


def actor_id(user) -> str:
    """How an actor is named in ledger entries: a pseudonymous id, never a name."""
    if isinstance(user, SystemActor) or user is None:
        return "system"
    if not user.is_authenticated:
        return "anonymous"
    return f"user:{user.pk}"


def managed_root(user) -> Administration | None:
    """The administration whose subtree an administration admin manages."""
    agent = agent_of(user)
    if agent and Role.ADMINISTRATION_ADMIN in agent.role_set:
        return agent.administration
    return None


def can_manage_administration(user, administration: Administration) -> bool:
    """Platform admins manage every administration; administration admins their subtree."""
    if is_platform_admin(user):
        return True
    root = managed_root(user)
    return root is not None and administration.is_within(root)


def manageable_administrations(user) -> QuerySet[Administration]:
    if is_platform_admin(user):
        return Administration.objects.all()
    root = managed_root(user)
    if root is None:
        return Administration.objects.none()
    return Administration.objects.filter(path__startswith=root.path)


def administrations(*, q: str = "", kind: str = "", parent: str = "",
                    active_only: bool = True) -> QuerySet[Administration]:
    """The public list of administrations (the directory is public information)."""
    qs = Administration.objects.select_related("parent")
    if active_only:
        qs = qs.filter(active=True)
    if q:
        qs = qs.filter(Q(name_fr__icontains=q) | Q(name_ar__icontains=q) |
                       Q(name_en__icontains=q) | Q(code__icontains=q) |
                       Q(acronym__icontains=q) | Q(mail_domain__icontains=q))
    if kind:
        qs = qs.filter(kind=kind)
    if parent:
        qs = qs.filter(parent__code=parent)
    return qs


def lineage_codes(administration: Administration) -> list[str]:
    """The codes of an administration and its ancestors, nearest first."""
    return list(reversed(administration.path.strip("/").split("/")))


def subtree(administration: Administration) -> QuerySet[Administration]:
    return Administration.objects.filter(path__startswith=administration.path)


def agents_visible_to(user, *, q: str = "", administration: str = "") -> QuerySet[Agent]:
    """Agents form the government's address book: every agent may read it, companies may not."""
    if not (is_platform_admin(user) or is_agent(user)):
        return Agent.objects.none()
    qs = Agent.objects.select_related("user", "administration").prefetch_related("roles")
    if q:
        qs = qs.filter(Q(user__username__icontains=q) | Q(user__first_name__icontains=q) |
                       Q(user__last_name__icontains=q) | Q(user__email__icontains=q))
    if administration:
        qs = qs.filter(administration__code=administration)
    return qs


def agent_details_visible_to(user) -> Callable[[Agent], bool]:
    """Whether ``user`` may read an agent's roles, account status and second factor: the
    agent themself, and whoever manages the agent's administration. To everyone else
    the address book gives names, title, administration and address only: who holds
    which role and who signs in without a second factor is a map for an intruder."""
    if is_platform_admin(user):
        return lambda agent: True
    root = managed_root(user)
    user_id = getattr(user, "pk", None)
    return lambda agent: agent.user_id == user_id or (
        root is not None and agent.administration.is_within(root))


def companies(*, q: str = "", cloud_providers_only: bool = False) -> QuerySet[Company]:
    """Companies that bid or provide services are public (names and tax identifiers)."""
    qs = Company.objects.filter(active=True)
    if q:
        qs = qs.filter(Q(name__icontains=q) | Q(matricule_fiscal__icontains=q) |
                       Q(city__icontains=q))
    if cloud_providers_only:
        qs = qs.filter(is_cloud_provider=True)
    return qs


def tokens_of(user) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user)


def user_by_username(username: str):
    return get_user_model().objects.filter(username=username).first()


# --- the API token of a request, with who holds it ---------------------------------------
#
# Every API call reads its bearer token with the user, the user's agent and administration
# or company membership and company. Through the ORM that five-join query is compiled
# anew on each call, which was a seventh of a sealed bid's time; its SQL is the same on
# every call, so it is built once per database (``JoinedRead``). The user is always there,
# an agent or a company membership may not be (left joins).
_TOKEN_WITH_HOLDER = JoinedRead([
    Join("t", "directory.ApiToken"),
    Join("u", None, "{u.pk} = {t.user}", inner=True),
    Join("a", "directory.Agent", "{a.user} = {u.pk}"),
    Join("ad", "directory.Administration", "{ad.pk} = {a.administration}"),
    Join("m", "directory.CompanyMember", "{m.user} = {u.pk}"),
    Join("c", "directory.Company", "{c.pk} = {m.company}"),
], where="{t.digest} = %s")


def token_with_holder(digest: str) -> ApiToken | None:
    """The API token of ``digest`` with its user, and the user's agent (with its
    administration) or company membership (with its company) already at hand: asking
    for them makes no further query, as after ``select_related``."""
    (token, user, agent, administration, member, company), _ = \
        _TOKEN_WITH_HOLDER.fetch([digest])
    if token is None:
        return None
    token.user = user
    models = _TOKEN_WITH_HOLDER.models
    _attach(user, models["a"], agent, "administration", administration)
    _attach(user, models["m"], member, "company", company)
    return token


def _attach(user, model, holder, field_name: str, held) -> None:
    """``user.agent`` or ``user.company_member`` as ``select_related`` leaves it: the row
    with what it points to, or a known absence (no query when asked)."""
    link = model._meta.get_field("user")
    link.remote_field.set_cached_value(user, holder)
    if holder is not None:
        link.set_cached_value(holder, user)
        setattr(holder, field_name, held)
