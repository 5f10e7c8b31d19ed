"""JSON API of the directory: administrations, agents, companies, tokens."""


import datetime as dt

from django.db import transaction
from django.shortcuts import get_object_or_404
from ninja import Field, Path, Query, Router, Schema, Status
from ninja.pagination import paginate
from pydantic import EmailStr

from sahab.core.errors import CoreError, NotFound, PermissionDenied
from sahab.core.pagination import Paging
from sahab.directory import rules, selectors, services
from sahab.directory.errors import DirectoryError
from sahab.directory.models import Administration, AdministrationKind, Agent, Role

router = Router(tags=["directory"])

Code = Field(..., min_length=2, max_length=32, pattern=r"^[A-Za-z][A-Za-z0-9-]{1,31}$")


class AdministrationOut(Schema):
    code: str
    kind: AdministrationKind
    parent: str | None = Field(None, description="The parent administration's code.")
    name_fr: str
    name_ar: str
    name_en: str
    acronym: str
    mail_domain: str | None
    active: bool

    @staticmethod
    def resolve_parent(obj: Administration) -> str | None:
        return obj.parent.code if obj.parent_id else None


class AdministrationIn(Schema):
    code: str = Code
    kind: AdministrationKind
    parent: str | None = Field(None, max_length=32)
    name_fr: str = Field(..., min_length=1, max_length=300)
    name_ar: str = Field(..., min_length=1, max_length=300)
    name_en: str = Field("", max_length=300)
    acronym: str = Field("", max_length=32)
    mail_domain: str | None = Field(None, max_length=253)


class AdministrationPatch(Schema):
    parent: str | None = Field("", max_length=32,
                               description="New parent code; null for top level; "
                                           "omit to keep.")
    name_fr: str | None = Field(None, min_length=1, max_length=300)
    name_ar: str | None = Field(None, min_length=1, max_length=300)
    name_en: str | None = Field(None, max_length=300)
    acronym: str | None = Field(None, max_length=32)
    mail_domain: str | None = Field(None, max_length=253)
    active: bool | None = None


class AdministrationFilter(Schema):
    q: str = Field("", max_length=100)
    kind: AdministrationKind | None = None
    parent: str = Field("", max_length=32)


_DETAILS = ("Shown to the agent and to those who manage the agent's administration; "
            "null to every other reader of the address book.")


def _details_visible(agent: Agent, context) -> bool:
    """The caller's right to an agent's roles, status and second factor, decided once a
    request (``selectors.agent_details_visible_to``)."""
    request = context["request"]
    rule = getattr(request, "_agent_details_visible", None)
    if rule is None:
        rule = request._agent_details_visible = selectors.agent_details_visible_to(
            request.user)
    return rule(agent)


class AgentOut(Schema):
    username: str
    first_name: str
    last_name: str
    email: str
    administration: str
    title: str
    roles: list[Role] | None = Field(description=_DETAILS)
    active: bool | None = Field(description=_DETAILS)
    totp_enabled: bool | None = Field(description=_DETAILS)

    @staticmethod
    def resolve_username(obj: Agent) -> str:
        return obj.user.username

    @staticmethod
    def resolve_first_name(obj: Agent) -> str:
        return obj.user.first_name

    @staticmethod
    def resolve_last_name(obj: Agent) -> str:
        return obj.user.last_name

    @staticmethod
    def resolve_email(obj: Agent) -> str:
        return obj.user.email

    @staticmethod
    def resolve_administration(obj: Agent) -> str:
        return obj.administration.code

    @staticmethod
    def resolve_roles(obj: Agent, context) -> list[str] | None:
        return sorted(obj.role_set) if _details_visible(obj, context) else None

    @staticmethod
    def resolve_active(obj: Agent, context) -> bool | None:
        return obj.user.is_active if _details_visible(obj, context) else None

    @staticmethod
    def resolve_totp_enabled(obj: Agent, context) -> bool | None:
        return obj.totp_enabled if _details_visible(obj, context) else None


class AgentIn(Schema):
    username: str = Field(..., min_length=1, max_length=150, pattern=r"^[\w.@+-]+$")
    email: EmailStr
    first_name: str = Field("", max_length=150)
    last_name: str = Field("", max_length=150)
    administration: str = Field(..., max_length=32)
    title: str = Field("", max_length=200)
    roles: list[Role] = []


class AgentCreated(AgentOut):
    initial_password: str | None = Field(
        None, description="Generated password, shown once; the agent changes it.")


class AgentPatch(Schema):
    roles: list[Role] | None = None
    active: bool | None = None
    administration: str | None = Field(None, max_length=32)
    reset_second_factor: bool = Field(False, description=(
        "Turn the agent's two-factor sign-in off (a lost phone); they set it up again."))


class CompanyOut(Schema):
    id: int
    name: str
    legal_form: str
    matricule_fiscal: str
    city: str
    is_bidder: bool
    is_cloud_provider: bool


class CompanyFilter(Schema):
    q: str = Field("", max_length=100)
    cloud_providers_only: bool = False


class CompanyIn(Schema):
    name: str = Field(..., min_length=1, max_length=300)
    legal_form: str = Field("", max_length=50)
    matricule_fiscal: str = Field(..., max_length=20)
    address: str = Field("", max_length=300)
    city: str = Field("", max_length=100)
    postal_code: str = Field("", max_length=10)
    email: EmailStr | None = None
    phone: str = Field("", max_length=32)
    is_bidder: bool = True
    is_cloud_provider: bool = False
    admin_username: str = Field(..., min_length=1, max_length=150, pattern=r"^[\w.@+-]+$")
    admin_email: EmailStr
    admin_password: str | None = Field(None, min_length=1, max_length=128)


class CompanyCreated(CompanyOut):
    admin_username: str
    initial_password: str | None = None


class MeOut(Schema):
    username: str
    kind: str
    administration: str | None = None
    company: int | None = None
    roles: list[str]


class TokenIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    expires_at: dt.datetime | None = None
    code: str | None = Field(None, max_length=7, description=(
        "The current six-digit code, required when the account uses two-factor sign-in."))


class TokenOut(Schema):
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


class TokenCreated(TokenOut):
    token: str = Field(..., description="The bearer token, shown once.")


def _administration(code: str) -> Administration:
    admin = Administration.objects.filter(code=code.upper()).select_related("parent").first()
    if admin is None:
        raise NotFound(CoreError.NO_ADMINISTRATION, code=code)
    return admin


@router.get("/me", response=MeOut, summary="Who the token or session belongs to")
def me(request):
    agent = selectors.agent_of(request.user)
    company = selectors.company_of(request.user)
    return {"username": request.user.username,
            "kind": "agent" if agent else "company" if company else "user",
            "administration": agent.administration.code if agent else None,
            "company": company.pk if company else None,
            "roles": sorted(selectors.roles_of(request.user))}


@router.get("/administrations", response=list[AdministrationOut], auth=None,
            summary="List administrations (public)")
@paginate(Paging)
def list_administrations(request, filters: Query[AdministrationFilter]):
    return selectors.administrations(q=filters.q, kind=filters.kind or "",
                                     parent=filters.parent.upper())


@router.get("/administrations/{code}", response=AdministrationOut, auth=None,
            summary="One administration (public)")
def get_administration(request, code: str):
    return _administration(code)


@router.post("/administrations", response={201: AdministrationOut},
             summary="Create an administration")
def create_administration(request, payload: AdministrationIn):
    data = payload.dict()
    parent_code = data.pop("parent")
    parent = _administration(parent_code) if parent_code else None
    return Status(201, services.create_administration(actor=request.user, parent=parent, **data))


@router.patch("/administrations/{code}", response=AdministrationOut,
              summary="Change or move an administration")
def update_administration(request, code: str, payload: AdministrationPatch):
    admin = _administration(code)
    changes = payload.dict(exclude_unset=True)
    parent: Administration | str | None = "unchanged"
    if "parent" in changes:
        code_ = changes.pop("parent")
        parent = _administration(code_) if code_ else None
    changes = {k: v for k, v in changes.items() if v is not None or k == "mail_domain"}
    return services.update_administration(actor=request.user, administration=admin,
                                          parent=parent, **changes)


def _agent(username: str, user) -> Agent:
    agent = selectors.agents_visible_to(user).filter(user__username=username).first()
    if agent is None:
        raise NotFound(DirectoryError.NO_AGENT, username=username)
    return agent


@router.get("/agents", response=list[AgentOut], summary="The government address book")
@paginate(Paging)
def list_agents(request, q: str = Query("", max_length=100),
                administration: str = Query("", max_length=32)):
    if not (selectors.is_agent(request.user) or selectors.is_platform_admin(request.user)):
        raise PermissionDenied(DirectoryError.ADDRESS_BOOK_FOR_AGENTS)
    return selectors.agents_visible_to(request.user, q=q, administration=administration.upper())


@router.get("/agents/{username}", response=AgentOut, summary="One agent")
def get_agent(request, username: str):
    return _agent(username, request.user)


@router.post("/agents", response={201: AgentCreated}, summary="Create an agent")
def create_agent(request, payload: AgentIn):
    data = payload.dict()
    administration = _administration(data.pop("administration"))
    agent, password = services.create_agent(actor=request.user, administration=administration,
                                            **data)
    agent.initial_password = password
    return Status(201, agent)


@router.patch("/agents/{username}", response=AgentOut,
              summary="Change an agent's roles, status or administration")
def update_agent(request, username: str, payload: AgentPatch):
    agent = _agent(username, request.user)
    # the rule table first: a refused change leaves the agent as it was (no partial update)
    if not rules.can_manage_agent(request.user, agent):
        if rules.can_manage_administration(request.user, agent.administration) \
                and not agent.role_set & rules.POWERFUL_ROLES:
            raise PermissionDenied(DirectoryError.MINISTRY_ROLE_HOLDER)
        raise PermissionDenied(DirectoryError.PROTECTED_ROLES)
    # one change: a refusal of any part leaves every part undone, the ledger's entries too
    with transaction.atomic():
        if payload.reset_second_factor:
            services.disable_totp(actor=request.user, agent=agent)
        if payload.administration is not None:
            agent = services.move_agent(actor=request.user, agent=agent,
                                        administration=_administration(payload.administration))
        if payload.roles is not None:
            agent = services.set_agent_roles(actor=request.user, agent=agent,
                                             roles=payload.roles)
        if payload.active is not None:
            agent = services.set_agent_active(actor=request.user, agent=agent,
                                              active=payload.active)
    return Agent.objects.select_related("user", "administration").get(pk=agent.pk)


@router.get("/companies", response=list[CompanyOut], auth=None,
            summary="List companies (public)")
@paginate(Paging)
def list_companies(request, filters: Query[CompanyFilter]):
    return selectors.companies(q=filters.q, cloud_providers_only=filters.cloud_providers_only)


@router.get("/companies/{company_id}", response=CompanyOut, auth=None,
            summary="One company (public)")
def get_company(request, company_id: int = Path(..., ge=1, le=2**63 - 1)):
    return get_object_or_404(selectors.companies(), pk=company_id)


@router.post("/companies", response={201: CompanyCreated},
             summary="Register a company with its first user (platform administrators)")
def create_company(request, payload: CompanyIn):
    if not selectors.is_platform_admin(request.user):
        raise PermissionDenied(DirectoryError.COMPANIES_REGISTER_ON_WEB)
    data = payload.dict()
    data["email"] = data["email"] or ""
    company, member, password = services.register_company(actor=request.user, **data)
    company.admin_username, company.initial_password = member.user.username, password
    return Status(201, company)


@router.get("/tokens", response=list[TokenOut], summary="Your API tokens")
def list_tokens(request):
    return list(selectors.tokens_of(request.user))


@router.post("/tokens", response={201: TokenCreated}, summary="Create an API token for yourself")
def create_token(request, payload: TokenIn):
    record, token = services.issue_api_token(actor=request.user, user=request.user,
                                             name=payload.name, expires_at=payload.expires_at,
                                             code=payload.code)
    record.token = token
    return Status(201, record)


@router.delete("/tokens/{token_id}", response=TokenOut, summary="Revoke an API token")
def revoke_token(request, token_id: int = Path(..., ge=1, le=2**63 - 1)):
    return services.revoke_api_token(actor=request.user, token_id=token_id)
