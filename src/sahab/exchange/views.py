"""Pages of the exchange pillar (registry, monitoring) and the CA's public files."""

import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from sahab.core.actions import run_form_action
from sahab.core.charts import bars
from sahab.core.downloads import table_response
from sahab.directory import selectors as directory
from sahab.directory.models import Administration
from sahab.exchange import ca, forms, messagelog, selectors, services
from sahab.exchange.models import Classification, Grant, ProviderHost, Service, Subsystem


def _registry_user(request):
    """Agents see their administration's part; platform administrators see all."""
    agent = directory.agent_of(request.user)
    if agent is not None:
        return directory.subtree(agent.administration)
    if directory.is_platform_admin(request.user):
        return Administration.objects.all()
    raise Http404


@login_required
def registry(request):
    """The administration's systems, services and hosts, its grants, and the forms to
    manage them (platform administrators also register provider hosts)."""
    own = _registry_user(request)
    agent = directory.agent_of(request.user)
    hosts = ProviderHost.objects.filter(revoked_at__isnull=True).select_related("administration")
    if agent is not None and not directory.is_platform_admin(request.user):
        hosts = hosts.filter(administration__code__in=directory.lineage_codes(
            agent.administration))
    return render(request, "exchange/registry.html", {
        "subsystems": Subsystem.objects.filter(administration__in=own)
        .select_related("administration").prefetch_related("services", "tokens"),
        "administrations": own, "classifications": Classification.choices,
        "services": Service.objects.filter(active=True).select_related(
            "subsystem__administration"),
        "incoming": Grant.objects.filter(service__subsystem__administration__in=own)
        .select_related("client__administration", "service__subsystem__administration"),
        "outgoing": Grant.objects.filter(client__administration__in=own)
        .select_related("client__administration", "service__subsystem__administration"),
        "hosts": hosts, "platform_admin": directory.is_platform_admin(request.user),
        "all_administrations": Administration.objects.order_by("code")
        if directory.is_platform_admin(request.user) else [],
    })


def _subsystem(user, data: dict) -> None:
    services.register_subsystem(actor=user, administration=data["administration"],
                                code=data["code"], name=data["name"])


def _service(user, data: dict) -> None:
    services.register_service(
        actor=user, subsystem=data["subsystem"], code=data["code"], name=data["name"],
        base_url=data["base_url"], owner=data["owner"], classification=data["classification"],
        openapi_url=data["openapi_url"], openapi=data["openapi"],
        max_concurrency=data["max_concurrency"] or 100)


def _ask(user, data: dict) -> None:
    services.request_grant(actor=user, client=data["client"], service=data["service"],
                           legal_basis=data["legal_basis"], purpose=data["purpose"],
                           endpoints=data["endpoints"])


def _decide(approve: bool):
    def decide(user, data: dict) -> None:
        services.decide_grant(actor=user, grant=data["grant"], approve=approve,
                              note=data["note"], endpoints=data["endpoints"].strip() or None)
    return decide


def _host(user, data: dict) -> None:
    services.register_provider_host(
        actor=user, administration=data["administration"], host=data["host"],
        port=data["port"] or 443, path_prefix=data["path_prefix"] or "/",
        allow_internal=data["allow_internal"], note=data["note"])


# action → (form, what it does with the form's data)
REGISTRY_ACTIONS = {
    "subsystem": (forms.SubsystemForm, _subsystem),
    "service": (forms.ServiceForm, _service),
    "ask": (forms.GrantRequestForm, _ask),
    "approve": (forms.GrantDecisionForm, _decide(approve=True)),
    "refuse": (forms.GrantDecisionForm, _decide(approve=False)),
    "revoke": (forms.GrantRevocationForm, lambda user, data: services.revoke_grant(
        actor=user, grant=data["grant"], reason=data["note"])),
    "host": (forms.HostForm, _host),
    "host-revoke": (forms.HostRevocationForm, lambda user, data: services.revoke_provider_host(
        actor=user, host=data["host"])),
    "token-revoke": (forms.TokenRevocationForm, lambda user, data: services.revoke_client_token(
        actor=user, token=data["token"])),
}


@login_required
@require_POST
def registry_action(request, action: str):
    """One form of the registry page; the services decide and record."""
    own = _registry_user(request)
    if action == "token":
        return _issue_token(request)
    if action not in REGISTRY_ACTIONS:
        raise Http404
    form_class, perform = REGISTRY_ACTIONS[action]
    form = (form_class(request.POST, administrations=own) if form_class is forms.SubsystemForm
            else form_class(request.POST))
    run_form_action(request, form, lambda data: perform(request.user, data) or
                    _("Recorded in the ledger."))
    return redirect("exchange:registry")


def _issue_token(request):
    """A new gateway token, shown once on a page that is never cached."""
    form = forms.TokenForm(request.POST)
    token = None

    def issue(data: dict) -> str:
        nonlocal token
        _record, token = services.issue_client_token(actor=request.user,
                                                     subsystem=data["subsystem"],
                                                     name=data["name"] or "web")
        return _("Recorded in the ledger.")

    if not run_form_action(request, form, issue):
        return redirect("exchange:registry")
    response = render(request, "exchange/token.html",
                      {"subsystem": form.cleaned_data["subsystem"], "token": token})
    response["Cache-Control"] = "no-store"
    return response


@login_required
def monitoring(request):
    """Calls, errors and latency per service and client, with charts; service health."""
    if not (directory.is_agent(request.user) or directory.is_platform_admin(request.user)):
        raise Http404
    try:
        days = min(max(int(request.GET.get("days", 7)), 1), 366)
    except ValueError:
        days = 7
    rows = selectors.statistics(request.user, days=days)
    if request.GET.get("format") in ("csv", "json"):
        return table_response(request.GET["format"], f"exchange-{days}d", rows)
    for row in rows:
        row["label"] = f"{row['client']} → {row['service']}"
    services_ = Service.objects.filter(active=True).select_related("subsystem__administration")
    return render(request, "exchange/monitoring.html", {
        "days": days, "rows": rows, "services": services_, "log": messagelog.status(),
        "grants": selectors.grants_visible_to(request.user)[:100],
        "call_bars": bars(rows, "label", "calls"),
        "error_bars": bars(rows, "label", "errors"),
        "latency_bars": bars([r for r in rows if r["p95_ms"] is not None], "label", "p95_ms")})


@csrf_exempt
def to_gateway(request, target: str = "") -> HttpResponse:
    """The gateway listens on its own port: a 308 keeps the method and the body."""
    location = settings.EXCHANGE_URL.rstrip("/") + request.get_full_path()
    response = HttpResponse(status=308, content_type="application/json;charset=utf-8",
                            content=json.dumps({
                                "type": "Client.BadRequest",
                                "message": f"The exchange gateway answers at {location}.",
                                "detail": ""}))
    response["Location"] = location
    return response


def gateway_certificate(request) -> HttpResponse:
    """The certificate the gateway shows to providers: they accept only this one."""
    from sahab.exchange import gateway

    gateway.prepare_keys()
    return HttpResponse(ca.gateway_cert_path().read_bytes(),
                        content_type="application/x-pem-file")


def ca_certificate(request) -> HttpResponse:
    ca.ensure_ca()
    return HttpResponse(ca.ca_cert_path().read_bytes(), content_type="application/x-pem-file")


def ca_revocation_list(request) -> HttpResponse:
    response = HttpResponse(services.revocation_list(), content_type="application/pkix-crl")
    response["Cache-Control"] = "max-age=300"
    return response
