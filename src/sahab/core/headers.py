"""Security headers on every response (OWASP ASVS 14.4): a strict Content-Security-Policy,
Permissions-Policy; Referrer-Policy, HSTS and the rest come from Django's
SecurityMiddleware (settings.py).

The policy allows scripts and styles from the platform's own origin only: templates
carry no inline script, event handler or style attribute (static/sahab/sahab.js reads
``data-`` attributes; bar widths are classes), and htmx is told not to inject its
indicator styles (``<meta name="htmx-config">`` in base.html). Browsers report
violations to ``/csp-report``, which logs them.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

log = logging.getLogger("sahab.csp")

CSP_REPORT_PATH = "/csp-report"
MAX_REPORT_BYTES = 16 * 1024


def content_security_policy() -> str:
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "font-src": "'self'",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'self'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
        "report-uri": CSP_REPORT_PATH,
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


PERMISSIONS_POLICY = ("camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
                      "interest-cohort=()")


class SecurityHeadersMiddleware:
    """Adds the Content-Security-Policy and Permissions-Policy to every response."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = content_security_policy()

    def __call__(self, request):
        response = self.get_response(request)
        header = ("Content-Security-Policy-Report-Only" if settings.CSP_REPORT_ONLY
                  else "Content-Security-Policy")
        response.headers.setdefault(header, self.policy)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        return response


@csrf_exempt  # browsers send reports without a token; the view only logs
@require_POST
def csp_report(request):
    """Log a browser's report of a policy violation (application/csp-report)."""
    body = request.body[:MAX_REPORT_BYTES]
    try:
        report = json.loads(body).get("csp-report", {})
    except (ValueError, AttributeError):
        return HttpResponse(status=400)
    if isinstance(report, dict):
        log.warning("CSP violation: %s blocked on %s (%s)",
                    str(report.get("blocked-uri", ""))[:200],
                    str(report.get("document-uri", ""))[:200],
                    str(report.get("violated-directive", ""))[:100])
    return HttpResponse(status=204)
