"""Pages of the exchange pillar (monitoring) and the CA's public files."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sahab.core.charts import bars
from sahab.core.downloads import table_response
from sahab.core.errors import DomainError, InvalidInput
from sahab.directory import selectors as directory
from sahab.exchange import ca, selectors, services
from sahab.exchange.models import Classification, Grant, Service, Subsystem


def _agent_only(request):
    agent = directory.agent_of(request.user)
    if agent is None:
        raise Http404
    return agent


@login_required
def registry(request):
    """The administration's systems and services, its grants, and the forms to manage them."""
    agent = _agent_only(request)
    own = directory.subtree(agent.administration)
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
    })


@login_required
@require_POST
def registry_action(request, action: str):
    """Every form of the registry page posts here; the services decide and record."""
    agent = _agent_only(request)
    post, user = request.POST, request.user
    own = directory.subtree(agent.administration)
    try:
        if action == "subsystem":
            administration = get_object_or_404(own, code=post.get("administration", ""))
            services.register_subsystem(actor=user, administration=administration,
                                        code=post.get("code", ""), name=post.get("name", ""))
        elif action == "service":
            subsystem = get_object_or_404(Subsystem, pk=post.get("subsystem"))
            services.register_service(
                actor=user, subsystem=subsystem, code=post.get("code", ""),
                name=post.get("name", ""), base_url=post.get("base_url", ""),
                owner=post.get("owner", ""), classification=post.get("classification", ""),
                openapi_url=post.get("openapi_url", ""))
        elif action == "ask":
            services.request_grant(
                actor=user, client=get_object_or_404(Subsystem, pk=post.get("client")),
                service=get_object_or_404(Service, pk=post.get("service")),
                legal_basis=post.get("legal_basis", ""), purpose=post.get("purpose", ""))
        elif action in ("approve", "refuse"):
            services.decide_grant(actor=user, grant=get_object_or_404(Grant, pk=post.get("grant")),
                                  approve=action == "approve", note=post.get("note", ""))
        elif action == "revoke":
            services.revoke_grant(actor=user, grant=get_object_or_404(Grant, pk=post.get("grant")),
                                  reason=post.get("note", ""))
        elif action == "token":
            subsystem = get_object_or_404(Subsystem, pk=post.get("subsystem"))
            _record, token = services.issue_client_token(actor=user, subsystem=subsystem,
                                                         name=post.get("name", "") or "web")
            response = render(request, "exchange/token.html",
                              {"subsystem": subsystem, "token": token})
            response["Cache-Control"] = "no-store"
            return response
        else:
            raise InvalidInput(_("Unknown action."))
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
        "days": days, "rows": rows, "services": services_,
        "grants": selectors.grants_visible_to(request.user)[:100],
        "call_bars": bars(rows, "label", "calls"),
        "error_bars": bars(rows, "label", "errors"),
        "latency_bars": bars([r for r in rows if r["p95_ms"] is not None], "label", "p95_ms")})


def ca_certificate(request) -> HttpResponse:
    ca.ensure_ca()
    return HttpResponse(ca.ca_cert_path().read_bytes(), content_type="application/x-pem-file")


def ca_revocation_list(request) -> HttpResponse:
    response = HttpResponse(services.revocation_list(), content_type="application/pkix-crl")
    response["Cache-Control"] = "max-age=300"
    return response
