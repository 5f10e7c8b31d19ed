"""Web pages of the directory: sign-in, account, public directory, administration screens."""

from __future__ import annotations

from urllib.parse import urlencode

import segno
from django.contrib import messages
from django.contrib.auth import authenticate, get_user_model, login, logout
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sahab.core import waiting
from sahab.core.actions import run_form_action
from sahab.core.downloads import streamed_table_response, wants_download
from sahab.core.errors import DomainError, TooManyAttempts
from sahab.directory import forms, rules, selectors, services
from sahab.directory import sessions as web_sessions
from sahab.directory.errors import DirectoryError
from sahab.directory.models import Administration, AdministrationKind, Agent, Role
from sahab.mail import selectors as mail_selectors
from sahab.mail import views as mail_views

_PENDING_2FA = "sahab_pending_2fa"
_MAX_TOTP_TRIES = 5


def _safe_next(request, default: str, posted: str = "") -> str:
    """``posted`` (the form's) or ``?next=`` when it stays on this site, else ``default``."""
    target = posted or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return target
    return default


# --- sign-in ----------------------------------------------------------------------------

def login_view(request):
    form = forms.LoginForm(request.POST or None, initial={"next": _safe_next(request, "")})
    if request.method == "POST" and form.is_valid():
        posted = form.cleaned_data["next"]
        user = authenticate(request, username=form.cleaned_data["username"],
                            password=form.cleaned_data["password"])
        if getattr(request, "axes_locked_out", False):
            return render(request, "directory/locked_out.html", status=429)
        if user is None:
            form.add_error(None, _("Wrong username or password."))
        else:
            agent = selectors.agent_of(user)
            if agent and agent.totp_enabled:
                request.session[_PENDING_2FA] = {"user": user.pk, "tries": 0,
                                                 "next": _safe_next(request, "", posted)}
                return redirect("directory:login_totp")
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(_safe_next(request, reverse("directory:home"), posted))
    return render(request, "directory/login.html", {"form": form},
                  status=400 if form.errors else 200)


def password_reset_view(request):
    """Ask for a reset link; the answer never says whether the account exists."""
    form = forms.PasswordResetRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.request_password_reset(identifier=form.cleaned_data["identifier"])
        return render(request, "directory/password_reset.html", {"sent": True})
    return render(request, "directory/password_reset.html", {"form": form},
                  status=400 if form.errors else 200)


_RESET_SESSION_KEY = "sahab_password_reset"
_RESET_PLACEHOLDER = "set"


def password_reset_confirm_view(request, uidb64: str, token: str):
    """Choose a new password from a mailed link. As Django's own view does, the token
    moves from the address to the session at once, so that it never leaks through the
    page's address (history, a Referer header, a screenshot)."""
    if token != _RESET_PLACEHOLDER:
        request.session[_RESET_SESSION_KEY] = token
        return redirect("directory:password_reset_confirm", uidb64, _RESET_PLACEHOLDER)
    token = request.session.get(_RESET_SESSION_KEY, "")
    if services.account_for_reset_link(uidb64, token) is None:
        return render(request, "directory/password_reset_confirm.html", {"invalid": True},
                      status=400)
    form = forms.PasswordResetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.reset_password(uidb64=uidb64, token=token,
                                    new_password=form.cleaned_data["new_password"])
        except DomainError as exc:
            forms.apply_domain_error(form, exc)
        else:
            request.session.pop(_RESET_SESSION_KEY, None)
            messages.success(request, _("Your password is set. Sign in with it."))
            return redirect("directory:login")
    return render(request, "directory/password_reset_confirm.html", {"form": form},
                  status=400 if form.errors else 200)


def login_totp_view(request):
    pending = request.session.get(_PENDING_2FA)
    if not pending:
        return redirect("directory:login")
    user = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
    agent = selectors.agent_of(user) if user else None
    if agent is None:
        request.session.pop(_PENDING_2FA, None)
        return redirect("directory:login")
    form = forms.TotpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            accepted = services.verify_totp(agent=agent, code=form.cleaned_data["code"])
        except TooManyAttempts as exc:
            request.session.pop(_PENDING_2FA, None)
            return render(request, "directory/locked_out.html", {"detail": exc.detail},
                          status=429)
        if accepted:
            request.session.pop(_PENDING_2FA, None)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(pending.get("next") or reverse("directory:home"))
        pending["tries"] += 1
        request.session[_PENDING_2FA] = pending
        if pending["tries"] >= _MAX_TOTP_TRIES:
            request.session.pop(_PENDING_2FA, None)
            messages.error(request, _("Too many wrong codes. Sign in again."))
            return redirect("directory:login")
        form.add_error("code", _("Wrong code."))
    return render(request, "directory/login_totp.html", {"form": form},
                  status=400 if form.errors else 200)


def admin_login_view(request):
    """``/admin/login/``: Django's own admin sign-in would skip the second factor, so the
    admin screens are entered through sahab's sign-in, whatever is posted here."""
    target = reverse("directory:login")
    next_url = request.GET.get("next") or reverse("admin:index")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        target += "?" + urlencode({"next": next_url})
    return redirect(target)


@require_POST
def logout_view(request):
    logout(request)
    return redirect("portal:home")


# --- the signed-in user's account ---------------------------------------------------------

@login_required
def home(request):
    """The account page: who I am, my roles, my API tokens, second factor, password."""
    agent = selectors.agent_of(request.user)
    token_form = forms.TokenForm()
    new_token = request.session.pop("sahab_new_token", None)
    return render(request, "directory/home.html", {
        "agent": agent,
        "company": selectors.company_of(request.user),
        "roles": [Role(r).label for r in sorted(selectors.roles_of(request.user))],
        "tokens": selectors.tokens_of(request.user),
        "token_form": token_form,
        "new_token": new_token,
        "password_form": forms.PasswordChangeForm(),
        "can_manage": selectors.managed_root(request.user) is not None
        or selectors.is_platform_admin(request.user),
        "waiting": waiting.for_user(request.user),
        "notices_form": mail_views.notices_form(request.user),
        "sessions": web_sessions.active_sessions(request.user),
        "current_session": request.session.session_key,
        "end_sessions_form": forms.EndSessionsForm(),
        "mailbox_password_set_by_another": mail_selectors.password_set_by_someone_else(
            request.user),
    })


@login_required
@require_POST
def end_sessions_view(request):
    """End one of my sessions, or all the others (the password is asked again)."""
    form = forms.EndSessionsForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Type your password to end sessions."))
        return redirect("directory:home")
    try:
        ended = services.end_sessions(user=request.user, password=form.cleaned_data["password"],
                                      current_key=request.session.session_key,
                                      sign_in_id=form.cleaned_data["sign_in"])
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, _("Sessions ended: %(count)s.") % {"count": ended})
    return redirect("directory:home")


@login_required
@require_POST
def create_token_view(request):
    def issue(data: dict) -> str:
        request.session["sahab_new_token"] = services.issue_api_token(
            actor=request.user, user=request.user, name=data["name"],
            expires_at=data["expires_at"], code=data["code"])[1]
        return _("The token is issued: copy it now, it is shown only once.")

    run_form_action(request, forms.TokenForm(request.POST), issue)
    return redirect("directory:home")


@login_required
@require_POST
def revoke_token_view(request, token_id: int):
    try:
        services.revoke_api_token(actor=request.user, token_id=token_id)
        messages.success(request, _("The token is revoked."))
    except DomainError as exc:
        messages.error(request, exc.detail)
    return redirect("directory:home")


@login_required
def password_view(request):
    form = forms.PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.change_password(user=request.user, **form.cleaned_data)
        except DomainError as exc:
            forms.apply_domain_error(form, exc)
        else:
            from django.contrib.auth import update_session_auth_hash
            update_session_auth_hash(request, request.user)
            messages.success(request, _("Your password is changed."))
            return redirect("directory:home")
    return render(request, "directory/password.html", {"form": form},
                  status=400 if form.errors else 200)


@login_required
def totp_setup_view(request):
    agent = selectors.agent_of(request.user)
    if agent is None:
        return HttpResponseForbidden(_("Two-factor sign-in is for agents."))
    if agent.totp_enabled:
        form = forms.TotpForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.disable_totp(actor=request.user, agent=agent,
                                      code=form.cleaned_data["code"])
            except DomainError as exc:
                forms.apply_domain_error(form, exc)
            else:
                messages.success(request, _("Two-factor sign-in is off."))
                return redirect("directory:home")
        return render(request, "directory/totp_disable.html", {"form": form},
                      status=400 if form.errors else 200)
    secret = request.session.get("sahab_totp_secret") or services.new_totp_secret()
    request.session["sahab_totp_secret"] = secret
    form = forms.TotpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.enable_totp(agent=agent, secret=secret, code=form.cleaned_data["code"])
        except DomainError as exc:
            forms.apply_domain_error(form, exc)
        else:
            request.session.pop("sahab_totp_secret", None)
            messages.success(request, _("Two-factor sign-in is on."))
            return redirect("directory:home")
    uri = services.totp_uri(agent, secret)
    qr = segno.make(uri, error="m").svg_inline(scale=4, title=_("QR code for your app"))
    return render(request, "directory/totp_setup.html",
                  {"form": form, "secret": secret, "qr": qr, "uri": uri},
                  status=400 if form.errors else 200)


def register_company_view(request):
    form = forms.CompanyRegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            member = services.register_company(actor=request.user, **data)[1]
        except DomainError as exc:
            forms.apply_domain_error(form, exc)
        else:
            login(request, member.user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, _("Your company is registered."))
            return redirect("directory:home")
    return render(request, "directory/register_company.html", {"form": form},
                  status=400 if form.errors else 200)


# --- public directory -------------------------------------------------------------------

def administrations_view(request):
    q = request.GET.get("q", "")[:100]
    kind = request.GET.get("kind", "")
    if kind not in AdministrationKind.values:
        kind = ""
    qs = selectors.administrations(q=q, kind=kind)
    if fmt := wants_download(request):
        # every administration of the state: streamed from a cursor, never held whole
        return streamed_table_response(fmt, "administrations", (
            {"code": a.code, "kind": a.kind, "parent": a.parent.code if a.parent else "",
             "name_fr": a.name_fr, "name_ar": a.name_ar, "name_en": a.name_en,
             "acronym": a.acronym, "mail_domain": a.mail_domain or ""}
            for a in qs.iterator(chunk_size=2000)))
    if not q and not kind:
        qs = qs.filter(parent=None)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    context = {"page": page, "q": q, "kind": kind, "kinds": AdministrationKind.choices}
    template = ("directory/_administration_rows.html" if request.headers.get("HX-Request")
                else "directory/administrations.html")
    return render(request, template, context)


def administration_view(request, code: str):
    admin = get_object_or_404(Administration.objects.select_related("parent"), code=code.upper())
    ancestors = [a for a in Administration.objects.filter(
        code__in=[c for c in admin.path.strip("/").split("/")[:-1]])]
    ancestors.sort(key=lambda a: len(a.path))
    agents = selectors.agents_visible_to(request.user, administration=admin.code)
    return render(request, "directory/administration.html", {
        "admin": admin, "ancestors": ancestors,
        "children": admin.children.filter(active=True),
        "agents": agents,
        "can_manage": request.user.is_authenticated
        and selectors.can_manage_administration(request.user, admin),
    })


def companies_view(request):
    q = request.GET.get("q", "")[:100]
    if fmt := wants_download(request):
        return streamed_table_response(fmt, "companies", (
            {"name": c.name, "legal_form": c.legal_form, "matricule_fiscal": c.matricule_fiscal,
             "city": c.city, "bidder": c.is_bidder, "cloud_provider": c.is_cloud_provider}
            for c in selectors.companies(q=q).iterator(chunk_size=2000)))
    page = Paginator(selectors.companies(q=q), 50).get_page(request.GET.get("page"))
    return render(request, "directory/companies.html", {"page": page, "q": q})


# --- administration screens (administration admins and platform admins) -------------------

def _manager_or_403(request):
    if not (selectors.is_platform_admin(request.user) or selectors.managed_root(request.user)):
        raise Http404


def _managed(request, code: str) -> Administration | None:
    """The administration ``code`` when the person manages it; None when they do not."""
    _manager_or_403(request)
    admin = get_object_or_404(Administration, code=code.upper())
    return admin if selectors.can_manage_administration(request.user, admin) else None


def _agent_form(request, admin: Administration, data=None) -> forms.AgentForm:
    return forms.AgentForm(data, prefix="agent", administrations=selectors.subtree(admin),
                           grantable=rules.grantable_roles(request.user, admin),
                           initial={"administration": admin.code})


def _manage_page(request, admin: Administration, *, admin_form=None, agent_form=None,
                 created_password: str | None = None, status: int = 200):
    agents = Agent.objects.filter(administration__in=selectors.subtree(admin)).select_related(
        "user", "administration").prefetch_related("roles")
    return render(request, "directory/manage.html", {
        "admin": admin, "admin_form": admin_form or forms.AdministrationForm(prefix="adm"),
        "agent_form": agent_form or _agent_form(request, admin),
        "agents": agents, "children": admin.children.all(),
        "created_password": created_password,
    }, status=status)


def _not_yours() -> HttpResponseForbidden:
    return HttpResponseForbidden(_("You do not manage this administration."))


@login_required
def manage_view(request, code: str):
    """Manage one administration: its sub-administrations and its agents."""
    admin = _managed(request, code)
    if admin is None:
        return _not_yours()
    return _manage_page(request, admin)


@login_required
@require_POST
def create_administration_view(request, code: str):
    """A sub-administration of ``code``."""
    admin = _managed(request, code)
    if admin is None:
        return _not_yours()
    form = forms.AdministrationForm(request.POST, prefix="adm")
    if form.is_valid():
        try:
            child = services.create_administration(actor=request.user, parent=admin,
                                                   **form.cleaned_data)
        except DomainError as exc:
            forms.apply_domain_error(form, exc)
        else:
            messages.success(request, _("%s is created.") % child.name)
            return redirect("directory:manage", code=admin.code)
    return _manage_page(request, admin, admin_form=form, status=400)


@login_required
@require_POST
def create_agent_view(request, code: str):
    """An agent's account in ``code`` or below; its first password is shown once."""
    admin = _managed(request, code)
    if admin is None:
        return _not_yours()
    form = _agent_form(request, admin, request.POST)
    if form.is_valid():
        data = dict(form.cleaned_data)
        target = Administration.objects.get(code=data.pop("administration"))
        try:
            agent, password = services.create_agent(actor=request.user, administration=target,
                                                    **data)
        except DomainError as exc:
            forms.apply_domain_error(form, exc)
        else:
            messages.success(request, _("The account %s is created.") % agent.user.username)
            response = _manage_page(request, admin, created_password=password)
            response["Cache-Control"] = "no-store"  # the first password is shown once
            return response
    return _manage_page(request, admin, agent_form=form, status=400)


@login_required
def manage_agent_view(request, username: str):
    _manager_or_403(request)
    agent = get_object_or_404(Agent.objects.select_related("user", "administration"),
                              user__username=username)
    if not rules.can_manage_agent(request.user, agent):
        if agent.role_set & rules.POWERFUL_ROLES \
                or not rules.can_manage_administration(request.user, agent.administration):
            return HttpResponseForbidden(_("You do not manage this agent: only platform "
                                           "administrators manage holders of powerful roles."))
        return HttpResponseForbidden(DirectoryError.MINISTRY_ROLE_HOLDER.render())
    form = forms.AgentRolesForm(request.POST or None,
                                grantable=rules.grantable_roles(request.user,
                                                                agent.administration),
                                initial={"roles": sorted(agent.role_set),
                                         "active": agent.user.is_active})
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():  # both or neither
                services.set_agent_roles(actor=request.user, agent=agent,
                                         roles=form.cleaned_data["roles"])
                if form.cleaned_data["active"] != agent.user.is_active:
                    services.set_agent_active(actor=request.user, agent=agent,
                                              active=form.cleaned_data["active"])
        except DomainError as exc:
            forms.apply_domain_error(form, exc)
        else:
            messages.success(request, _("The account %s is updated.") % agent.user.username)
            return redirect("directory:manage", code=agent.administration.code)
    return render(request, "directory/manage_agent.html", {"agent": agent, "form": form},
                  status=400 if form.errors else 200)
