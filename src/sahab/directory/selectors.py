"""Reads of the directory, and the rights questions every pillar asks about a user."""

from __future__ import annotations

from collections.abc import Callable

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connections, router
from django.db.models import Q, QuerySet

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
# every call, so it is built once per database, from the models' own fields (a field added to
# one of them is read too), and the rows go through the fields' own converters, as the
# ORM's would.

# alias, model (None: the user model), join condition (alias, field = alias, field); the
# user is always there, an agent or a company membership may not be (left joins)
_HOLDER_JOINS = (
    ("t", "directory.ApiToken", None),
    ("u", None, ("u", "pk", "t", "user")),
    ("a", "directory.Agent", ("a", "user", "u", "pk")),
    ("ad", "directory.Administration", ("ad", "pk", "a", "administration")),
    ("m", "directory.CompanyMember", ("m", "user", "u", "pk")),
    ("c", "directory.Company", ("c", "pk", "m", "company")),
)


class _HolderQuery:
    """The SQL of the token read on one database, and each column's converters."""

    def __init__(self, connection) -> None:
        quote = connection.ops.quote_name
        self.models = {alias: apps.get_model(label) if label else get_user_model()
                       for alias, label, _join in _HOLDER_JOINS}

        def column(alias: str, name: str) -> str:
            meta = self.models[alias]._meta
            field = meta.pk if name == "pk" else meta.get_field(name)
            return f"{alias}.{quote(field.column)}"

        columns, tables = [], []
        self.parts = []  # (model, attribute names, (column, converters) per field)
        for alias, _label, join in _HOLDER_JOINS:
            model = self.models[alias]
            fields = model._meta.concrete_fields
            columns += [f"{alias}.{quote(f.column)}" for f in fields]
            table = f"{quote(model._meta.db_table)} {alias}"
            if join is None:
                tables.append(f"FROM {table}")
            else:
                kind = "INNER" if alias == "u" else "LEFT"
                tables.append(f"{kind} JOIN {table} ON {column(*join[:2])} = "
                              f"{column(*join[2:])}")
            self.parts.append((model, [f.attname for f in fields], [
                (f.get_col(alias), connection.ops.get_db_converters(f.get_col(alias))
                 + f.get_db_converters(connection)) for f in fields]))
        self.sql = (f"SELECT {', '.join(columns)} {' '.join(tables)}"
                    f" WHERE {column('t', 'digest')} = %s")

    def instances(self, row, connection, db: str) -> list:
        """One instance per model of the join (None where a left join found no row)."""
        found, start = [], 0
        for model, names, converters in self.parts:
            values = list(row[start:start + len(names)])
            start += len(names)
            if values[0] is None:  # no primary key: no such row
                found.append(None)
                continue
            for i, (column, functions) in enumerate(converters):
                for convert in functions:
                    values[i] = convert(values[i], column, connection)
            found.append(model.from_db(db, names, values))
        return found


_holder_queries: dict[tuple[str, str], _HolderQuery] = {}


def token_with_holder(digest: str) -> ApiToken | None:
    """The API token of ``digest`` with its user, and the user's agent (with its
    administration) or company membership (with its company) already at hand: asking
    for them makes no further query, as after ``select_related``."""
    db = router.db_for_read(ApiToken)
    connection = connections[db]
    query = _holder_queries.get((db, connection.vendor))
    if query is None:
        query = _holder_queries[db, connection.vendor] = _HolderQuery(connection)
    with connection.cursor() as cursor:
        cursor.execute(query.sql, [digest])
        row = cursor.fetchone()
    if row is None:
        return None
    token, user, agent, administration, member, company = query.instances(row, connection, db)
    token.user = user
    _attach(user, query.models["a"], agent, "administration", administration)
    _attach(user, query.models["m"], member, "company", company)
    return token


def _attach(user, model, holder, field_name: str, held) -> None:
    """``user.agent`` or ``user.company_member`` as ``select_related`` leaves it: the row
    with what it points to, or a known absence (no query when asked)."""
    link = model._meta.get_field("user")
    link.remote_field.set_cached_value(user, holder)
    if holder is not None:
        link.set_cached_value(holder, user)
        setattr(holder, field_name, held)
