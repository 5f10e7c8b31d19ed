"""``/metrics`` and ``/readyz``: for the operators' monitoring only."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse, JsonResponse

from sahab.ops import health, metrics


def client_address(request) -> str:
    """The peer, or behind ``SAHAB_PROXY_COUNT`` proxies the address they saw."""
    proxies = settings.PROXY_COUNT
    if proxies:
        forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",")
                     if a.strip()]
        return forwarded[-proxies] if len(forwarded) >= proxies else ""
    return request.META.get("REMOTE_ADDR", "")


def _allowed_networks():
    networks = []
    for item in settings.METRICS_ALLOWED.split(","):
        if item.strip():
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
    return networks


def allowed(request) -> bool:
    """A configured address, or the configured token as ``Authorization: Bearer``."""
    token = settings.METRICS_TOKEN
    offered = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(offered.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(client_address(request))
    except ValueError:
        return False
    return any(address in network for network in _allowed_networks())


def _forbidden() -> HttpResponse:
    return HttpResponse("Forbidden: monitoring endpoints answer configured addresses or a "
                        "token only (SAHAB_METRICS_ALLOWED, SAHAB_METRICS_TOKEN).\n",
                        status=403, content_type="text/plain")


def metrics_view(request):
    if not allowed(request):
        return _forbidden()
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)


def readyz(request):
    if not allowed(request):
        return _forbidden()
    results = health.readiness()
    ready = all(r.ok for r in results)
    return JsonResponse({"status": "ready" if ready else "not ready",
                         "checks": {r.name: {"ok": r.ok, "detail": r.detail} for r in results}},
                        status=200 if ready else 503)
