"""Security headers on every page (issue: "Headers: no Content-Security-Policy, no
HSTS") and pages that keep to the policy: no inline script, handler or style."""

import json
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from sahab.core.headers import content_security_policy
from sahab.directory.models import Role
from tests import factories

pytestmark = pytest.mark.django_db

INLINE = [
    # a script element without src runs inline code, unless it only carries JSON data
    (re.compile(rb"<script(?![^>]*\ssrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
     "inline <script>"),
    (re.compile(rb"<style[\s>]", re.I), "<style> element"),
    (re.compile(rb"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(rb"\son[a-z]+\s*=\s*[\"']", re.I), "event handler attribute"),
    (re.compile(rb"javascript:", re.I), "javascript: URL"),
]


def static_routes(resolver=None, prefix: str = "") -> list[str]:
    """Every URL of the project that needs no parameter: the pages a crawler reaches."""
    resolver = resolver or get_resolver()
    found = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if "<" in route or route.startswith("^") or "(?P" in route:
            continue
        if isinstance(entry, URLResolver):
            found += static_routes(entry, route)
        elif isinstance(entry, URLPattern):
            found.append("/" + route)
    return sorted(set(found))


def pages(tender_reference: str, admin_code: str, username: str) -> list[str]:
    return [*static_routes(), f"/tenders/{tender_reference}/", f"/directory/{admin_code}/",
            f"/directory/{admin_code}/manage/", f"/directory/agents/{username}/manage/",
            "/admin/directory/agent/", "/admin/directory/administration/add/",
            "/admin/auth/user/", "/no-such-page/"]


@pytest.fixture
def site(sahab_home):
    from sahab.core import keys
    from sahab.exchange import ca
    from sahab.ledger import services as ledger

    for ensure in (keys.ensure_ledger_key, keys.ensure_witness_key, keys.ensure_secrets_key,
                   keys.ensure_opening_key, keys.ensure_osb_password, ca.ensure_ca):
        ensure()
    ledger._signer.cache_clear()
    ministry = factories.administration(code="MF", mail_domain="finances.gov.tn")
    admin = factories.agent(administration=ministry, roles=[Role.PLATFORM_ADMIN])
    return {"admin": admin, "ministry": ministry}


def check_headers(response, path: str, *, https: bool = False) -> None:
    assert response["Content-Security-Policy"] == content_security_policy(), path
    assert response["Referrer-Policy"] == "same-origin", path
    assert "camera=()" in response["Permissions-Policy"], path
    assert response["X-Content-Type-Options"] == "nosniff", path
    if https:
        assert response["Strict-Transport-Security"].startswith("max-age=31536000"), path


def check_body(response, path: str) -> None:
    if "text/html" not in response.get("Content-Type", "") or response.streaming:
        return
    for pattern, what in INLINE:
        match = pattern.search(response.content)
        assert match is None, f"{path}: {what}: {match.group(0)[:80]!r}"


def test_every_page_has_the_headers_and_no_inline_code(client, site):
    """Every page, signed out and as a platform administrator, in French and Arabic."""
    routes = pages("NONE", site["ministry"].code, site["admin"].user.username)
    assert len(routes) > 40
    checked = 0
    for who in (None, site["admin"].user):
        client.logout()
        if who is not None:
            client.force_login(who)
        for language in ("fr", "ar"):
            client.cookies["sahab_language"] = language
            for path in routes:
                response = client.get(path)
                check_headers(response, path)
                check_body(response, path)
                checked += 1
    assert checked == 4 * len(routes)


def test_hsts_and_the_policy_over_https(client, site, settings):
    settings.SECURE_HSTS_SECONDS = 31536000
    for path in ("/", "/accounts/login/", "/api/openapi.json", "/ledger/checkpoint"):
        check_headers(client.get(path, secure=True), path, https=True)
    assert "Strict-Transport-Security" not in client.get("/")  # never over plain http


def test_the_policy_forbids_inline_code_and_framing():
    policy = dict(d.split(" ", 1) for d in content_security_policy().split("; "))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert "unsafe" not in content_security_policy()
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"


def test_htmx_is_told_not_to_inject_styles(client):
    page = client.get("/").content
    assert b'name="htmx-config"' in page and b'"includeIndicatorStyles": false' in page


def test_violations_are_reported_and_logged(client, caplog):
    report = {"csp-report": {"document-uri": "https://sahab.example/",
                             "blocked-uri": "inline", "violated-directive": "script-src"}}
    response = client.post("/csp-report", json.dumps(report),
                           content_type="application/csp-report")
    assert response.status_code == 204
    assert "CSP violation: inline blocked" in caplog.text
    assert client.post("/csp-report", "garbage", content_type="application/csp-report") \
        .status_code == 400
    assert client.get("/csp-report").status_code == 405
