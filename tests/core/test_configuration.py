"""Configuration (ASVS V14, 4.3.2, 13.2.5): no debug output, locked dependencies, the
methods and media types sahab answers, no listings, and cross-origin reads of open data
only."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from django.test import Client
from django.urls import path

import sahab.urls
from sahab.directory import services
from sahab.directory.selectors import SYSTEM
from tests import factories
from tests.core.test_headers import site, static_routes  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def product_settings(tmp_path: Path, **env: str) -> dict:
    """The product's settings (not the test suite's) in a fresh process, with ``env``."""
    home = tmp_path / "home"
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("SAHAB_") and k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    clean |= {"SAHAB_HOME": str(home), **env}
    names = ["DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_NAME",
             "CSRF_COOKIE_NAME", "SESSION_COOKIE_AGE", "SESSION_SAVE_EVERY_REQUEST",
             "SESSION_MAX_AGE_SECONDS", "OUTBOUND_ALLOW_HTTP"]
    code = ("import json, sahab.settings as s; "
            f"print(json.dumps({{n: getattr(s, n, None) for n in {names!r}}}))")
    out = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True,
                         text=True, check=True, timeout=60)
    return json.loads(out.stdout)


def _boom(request):
    raise RuntimeError("secret-internal-state at /srv/sahab/settings.py line 42")


urlpatterns = [path("boom/", _boom), path("api/boom", _boom), *sahab.urls.urlpatterns]
handler404 = sahab.urls.handler404
handler500 = sahab.urls.handler500


def test_debug_is_off_unless_asked_and_errors_show_no_traceback(tmp_path, settings):
    """14.1.3, 14.3.2: a platform started without SAHAB_DEBUG runs without debug, and a
    failure shows neither a traceback nor the exception to the visitor."""
    product = product_settings(tmp_path)
    assert product["DEBUG"] is False and product["OUTBOUND_ALLOW_HTTP"] is False
    assert product_settings(tmp_path, SAHAB_DEBUG="true")["DEBUG"] is True
    assert settings.DEBUG is False
    settings.ROOT_URLCONF = __name__
    client = Client(raise_request_exception=False)
    for url in ("/boom/", "/api/boom"):
        response = client.get(url)
        assert response.status_code == 500, url
        body = response.content.decode()
        for leak in ("Traceback", "RuntimeError", "secret-internal-state", "settings.py",
                     "DEBUG = True"):
            assert leak not in body, (url, leak)
    assert client.get("/api/boom")["Content-Type"] == "application/problem+json"


def test_dependencies_are_locked_with_hashes_and_installed_from_the_lock():
    """14.2.1: every dependency, direct or not, is pinned to one version from the package
    index with the SHA-256 of each file, the lock agrees with pyproject.toml, and the
    install (`make install`, the CI) refuses to resolve anything else (`uv sync --frozen`)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    packages = {p["name"]: p for p in lock["package"]}
    root = packages.pop("sahab")
    assert root["source"] == {"editable": "."}
    assert len(packages) > 50
    for name, package in packages.items():
        assert "registry" in package["source"], name
        assert package["version"], name
        files = ([package["sdist"]] if "sdist" in package else []) + package.get("wheels", [])
        assert files, name
        for file in files:
            assert file["hash"].startswith("sha256:") and len(file["hash"]) == 71, name

    def key(requirement: str) -> str:
        return requirement.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()

    locked = {r["name"] for r in root["metadata"]["requires-dist"]}
    wanted = {key(r) for r in project["dependencies"]}
    wanted |= {key(r) for r in project["optional-dependencies"]["dev"]}
    assert wanted == locked
    assert wanted - {"sahab"} <= set(packages)
    assert "uv sync --frozen" in (ROOT / "Makefile").read_text()


def test_every_response_names_its_type_and_text_its_charset(client, site):  # noqa: F811
    """14.4.1: every page and document says what it is, and text says it is UTF-8."""
    checked = 0
    for who in (None, site["admin"].user):
        if who is not None:
            client.force_login(who)
        for url in static_routes():
            response = client.get(url)
            content_type = response.get("Content-Type", "")
            assert content_type, url
            if response.status_code in (204, 304) or response.streaming:
                continue
            if content_type.startswith("text/"):
                charset = content_type.lower().replace('"', "").replace(" ", "")
                assert ";charset=utf-8" in charset, (url, content_type)
            checked += 1
    assert checked > 40


def test_only_the_methods_in_use_are_answered(client):
    """14.5.1: pages take GET, HEAD, POST (and OPTIONS); the machine interfaces also PUT,
    PATCH and DELETE; TRACE, CONNECT and unknown methods nothing."""
    for method in ("TRACE", "TRACK", "CONNECT", "PROPFIND", "PUT", "PATCH", "DELETE"):
        response = client.generic(method, "/")
        assert response.status_code == 405, method
        assert response["Allow"] == "GET, HEAD, POST, OPTIONS"
    for method in ("TRACE", "PROPFIND", "CONNECT"):
        for url in ("/api/administrations", "/osb/v2/catalog", "/ledger/checkpoint"):
            response = client.generic(method, url)
            assert response.status_code == 405, (method, url)
            assert response["Content-Type"] == "application/problem+json"
    assert client.get("/").status_code == 200 and client.head("/").status_code == 200
    # the API itself still answers 405 for a method a route does not have
    assert client.delete("/api/administrations").status_code == 405


def test_no_directory_listing_or_repository_files_are_served(client):
    """4.3.2: no listing of static or uploaded files, no repository or environment files."""
    assert client.get("/static/sahab/sahab.js").status_code == 200
    for url in ("/static/", "/static/sahab/", "/media/", "/.git/config", "/.git/HEAD",
                "/.env", "/var/secret_key", "/secret_key", "/static/../settings.py",
                "/.DS_Store"):
        assert client.get(url).status_code == 404, url


def test_the_api_reads_json_bodies_only(client):
    """13.2.5: a body of another type (such as a cross-site form or text/plain post) is
    refused with a 415 before any route reads it."""
    agent = factories.agent()
    _, token = services.issue_api_token(actor=SYSTEM, user=agent.user, name="x")
    headers = {"Authorization": f"Bearer {token}"}
    for content_type in ("text/plain", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", "application/xml"):
        response = client.post("/api/tokens", '{"name": "other"}', content_type=content_type,
                               headers=headers)
        assert response.status_code == 415, content_type
        assert "application/json" in response.json()["detail"]
    assert agent.user.api_tokens.count() == 1
    response = client.post("/api/tokens", {"name": "other"}, content_type="application/json",
                           headers=headers)
    assert response.status_code == 201


def test_only_open_data_is_shared_with_other_origins(client):
    """14.5.3: open-data downloads carry ``Access-Control-Allow-Origin: *`` (never with
    credentials); the API, the pages and a signed-in user's answers carry no CORS header,
    and no preflight lets another origin write."""
    factories.administration()
    evil = {"Origin": "https://evil.example"}
    shared = client.get("/directory/?format=csv", headers=evil)
    assert shared.status_code == 200 and shared["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in shared
    agent = factories.agent()
    client.force_login(agent.user)
    for url in ("/api/me", "/accounts/", "/", "/api/administrations"):
        response = client.get(url, headers=evil)
        assert response.status_code == 200, url
        assert "Access-Control-Allow-Origin" not in response, url
        assert "Access-Control-Allow-Credentials" not in response, url
    preflight = client.options("/api/tokens", headers={
        **evil, "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in preflight
    assert "Access-Control-Allow-Methods" not in preflight
