"""Pages of the exchange pillar (registry, monitoring) and the CA's public files."""

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from sahab.core.charts import bars
from sahab.core.downloads import table_response
from sahab.core.errors import DomainError, InvalidInput
from sahab.directory import selectors as directory
from sahab.directory.models import Administration
from sahab.exchange import ca, messagelog, selectors, services
from sahab.exchange.errors import ExchangeError
from sahab.exchange.models import Classification, Grant, ProviderHost, Service, Subsystem


def _registry_user(request):
    """Agents see their administration's part; platform administrators see all."""
    agent = directory.agent_of(request.user)
    if agent is not None:
        return directory.subtree(agent.administration)
    if directory.is_platform_admin(request.user):
        return Administration.objects.all()
    raise Http404


def _lines(text: str) -> str:
    return text if isinstance(text, str) else ""


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


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@login_required
@require_POST
def registry_action(request, action: str):
    """Every form of the registry page posts here; the services decide and record."""
    own = _registry_user(request)
    post, user = request.POST, request.user
    try:
        if action == "subsystem":
            administration = get_object_or_404(own, code=post.get("administration", ""))
            services.register_subsystem(actor=user, administration=administration,
                                        code=post.get("code", ""), name=post.get("name", ""))
        elif action == "service":
            subsystem = get_object_or_404(Subsystem, pk=_int(post.get("subsystem"), 0))
            services.register_service(
                actor=user, subsystem=subsystem, code=post.get("code", ""),
                name=post.get("name", ""), base_url=post.get("base_url", ""),
                owner=post.get("owner", ""), classification=post.get("classification", ""),
                openapi_url=post.get("openapi_url", ""), openapi=post.get("openapi", ""),
                max_concurrency=_int(post.get("max_concurrency"), 100))
        elif action == "ask":
            services.request_grant(
                actor=user, client=get_object_or_404(Subsystem, pk=_int(post.get("client"), 0)),
                service=get_object_or_404(Service, pk=_int(post.get("service"), 0)),
                legal_basis=post.get("legal_basis", ""), purpose=post.get("purpose", ""),
                endpoints=_lines(post.get("endpoints", "")))
        elif action in ("approve", "refuse"):
            endpoints = post.get("endpoints", "").strip()
            services.decide_grant(actor=user, grant=get_object_or_404(
                Grant, pk=_int(post.get("grant"), 0)), approve=action == "approve",
                note=post.get("note", ""), endpoints=endpoints or None)
        elif action == "revoke":
            services.revoke_grant(actor=user, grant=get_object_or_404(
                Grant, pk=_int(post.get("grant"), 0)), reason=post.get("note", ""))
        elif action == "host":
            services.register_provider_host(
                actor=user, administration=get_object_or_404(
                    Administration, code=post.get("administration", "")),
                host=post.get("host", ""), port=_int(post.get("port"), 443),
                path_prefix=post.get("path_prefix", "/") or "/",
                allow_internal=post.get("allow_internal") == "on", note=post.get("note", ""))
        elif action == "host-revoke":
            services.revoke_provider_host(actor=user, host=get_object_or_404(
                ProviderHost, pk=_int(post.get("host"), 0)))
        elif action == "token":
            subsystem = get_object_or_404(Subsystem, pk=_int(post.get("subsystem"), 0))
            _record, token = services.issue_client_token(actor=user, subsystem=subsystem,
                                                         name=post.get("name", "") or "web")
            response = render(request, "exchange/token.html",
                              {"subsystem": subsystem, "token": token})
            response["Cache-Control"] = "no-store"
            return response
        else:
            raise InvalidInput(ExchangeError.UNKNOWN_ACTION)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, _("Recorded in the ledger."))
    return redirect("exchange:registry")


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
