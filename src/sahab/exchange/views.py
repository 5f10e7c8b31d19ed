"""Pages of the exchange pillar (monitoring) and the CA's public files."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render

from sahab.core.charts import bars
from sahab.core.downloads import table_response
from sahab.directory import selectors as directory
from sahab.exchange import ca, selectors, services
from sahab.exchange.models import Service


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
