"""A real platform for end-to-end tests: ``sahab demo`` then ``sahab serve`` in a
subprocess on a free port of 127.0.0.1, stopped when the tests end."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests.conftest import missing, shared_static_root
from tests.databases import postgres_url
from tests.ports import free_port, listening


def _database_url_for_subprocess(home: Path) -> tuple[str, callable]:
    """The same kind of database as the test run, but a fresh one for the subprocess."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{home / 'sahab.sqlite3'}", lambda: None
    import psycopg

    name = f"sahab_e2e_{uuid.uuid4().hex[:10]}"
    dsn = _postgres_admin_dsn()
    with psycopg.connect(**dsn) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(**dsn) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    auth = f"{db['USER']}:{db['PASSWORD']}@" if db["PASSWORD"] else f"{db['USER']}@"
    return f"postgresql://{auth}{db['HOST']}:{db['PORT'] or 5432}/{name}", drop


def _postgres_admin_dsn() -> dict:
    db = settings.DATABASES["default"]
    return dict(host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"],
                password=db["PASSWORD"] or None, dbname="postgres", autocommit=True)


@functools.cache
def _migrated_template() -> str:
    """A database migrated once per run, of the run's kind, that the installations the
    tests start are copied from: migrating each of them again costs seconds."""
    home = Path(tempfile.mkdtemp(prefix="sahab-template-"))
    url, drop = _database_url_for_subprocess(home)
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    atexit.register(drop)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SAHAB_"))}
    env |= {"SAHAB_HOME": str(home), "DATABASE_URL": url,
            "DJANGO_SETTINGS_MODULE": "sahab.settings"}
    subprocess.run([sys.executable, "-m", "sahab.cli", "manage", "migrate", "--verbosity", "0"],
                   env=env, check=True, capture_output=True, timeout=600)
    return url


def start_from_migrated_template(url: str) -> None:
    """Replace the (new, unused) database at ``url`` with a copy of the migrated template,
    so that ``sahab init`` or ``sahab demo`` finds its migrations applied."""
    template = _migrated_template()
    if url.startswith("sqlite:///"):
        source = sqlite3.connect(template.removeprefix("sqlite:///"))
        target = sqlite3.connect(url.removeprefix("sqlite:///"))
        with source, target:
            source.backup(target)
        source.close()
        target.close()
        return
    import psycopg

    name, template_name = url.rsplit("/", 1)[-1], template.rsplit("/", 1)[-1]
    with psycopg.connect(**_postgres_admin_dsn()) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')


# The platform's demo databases live on the shared PostgreSQL cluster: drop them at the end.
DROP_DBAAS_DATABASES = """
from sahab.cloud import dbaas
from sahab.cloud.models import DbaasInstance
for instance in DbaasInstance.objects.all():
    dbaas.drop_database(dbaas.names_for(instance.instance_id),
                        list(instance.bindings.values_list("role", flat=True)))
"""


def _wait_until_serving(proc: subprocess.Popen, home: Path, base: str,
                        ports: list[int], seconds: float = 90) -> None:
    """Wait until the web answers /healthz and every other server accepts connections."""
    deadline = time.monotonic() + seconds
    waiting = list(ports)
    while True:
        try:
            healthy = httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            healthy = False
        waiting = [port for port in waiting if not listening(port)]
        if healthy and not waiting:
            return
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"sahab serve did not start (healthy: {healthy}, not listening:"
                               f" {waiting}):\n" + _serve_log(home))
        time.sleep(0.3)


def _serve_log(home: Path, tail: int = 12000) -> str:
    try:
        return (home / "serve.log").read_text(errors="replace")[-tail:]
    except OSError:
        return "(no serve.log)"


@pytest.fixture(scope="session")
def platform():
    """URL, demo data and environment of a running sahab."""
    home = Path(tempfile.mkdtemp(prefix="sahab-e2e-"))
    port = free_port()
    url, drop = _database_url_for_subprocess(home)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SAHAB_"))}
    env |= {"SAHAB_HOME": str(home), "DATABASE_URL": url, "SAHAB_HTTP_PORT": str(port),
            "SAHAB_SMTP_PORT": str(free_port()), "SAHAB_SUBMISSION_PORT": str(free_port()),
            "SAHAB_IMAP_PORT": str(free_port()), "DJANGO_SETTINGS_MODULE": "sahab.settings",
            "SAHAB_SMTPS_PORT": str(free_port()), "SAHAB_IMAPS_PORT": str(free_port()),
            "SAHAB_MANAGESIEVE_PORT": str(free_port()),
            "SAHAB_EXCHANGE_TLS_PORT": str(free_port()), "SAHAB_WITNESS_PORT": str(free_port()),
            "SAHAB_EXCHANGE_PORT": (exchange_port := str(free_port())),
            "SAHAB_EXCHANGE_URL": f"http://127.0.0.1:{exchange_port}/",
            "SAHAB_EXCHANGE_DEMO_PORT": str(free_port()),
            # a training platform: tenders may close within seconds
            "SAHAB_PROCUREMENT_MIN_DAYS": "0",
            "SAHAB_DEMO_TENDERS": "0",  # the planted cases: the ordinary year is tested apart
            # the reference broker makes real databases on the tests' PostgreSQL
            "SAHAB_DBAAS_URL": postgres_url(), "SAHAB_CLOUD_POLL_SECONDS": "1",
            "SAHAB_STATIC_ROOT": shared_static_root()}
    sahab = [sys.executable, "-m", "sahab.cli"]
    start_from_migrated_template(url)
    subprocess.run([*sahab, "demo"], env=env, check=True, capture_output=True, timeout=300)
    log = open(home / "serve.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([*sahab, "serve", "--workers", "1"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(proc, home, base, [int(env[f"SAHAB_{name}_PORT"]) for name in (
            "SMTP", "SUBMISSION", "IMAP", "EXCHANGE", "EXCHANGE_DEMO")])
        yield {"url": base, "home": home, "env": env,
               "demo": json.loads((home / "demo.json").read_text())}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        subprocess.run([*sahab, "manage", "shell", "-c", DROP_DBAAS_DATABASES], env=env,
                       capture_output=True, timeout=120)
        drop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def output_dir(request) -> Path:
    """Where a test leaves files for people to look at (screenshots)."""
    path = Path(__file__).resolve().parents[2] / "test-results" / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path


CHROMIUM = "/usr/bin/chromium"


# What Chromium reported as refused by sahab's Content-Security-Policy, in every page of
# every test (a script, style or connection the policy blocks is a page that half works).
CSP_VIOLATIONS: list[str] = []


def _note_csp_violation(message) -> None:
    if "Content Security Policy" in message.text:
        CSP_VIOLATIONS.append(f"{message.location.get('url', '?')}: {message.text}")


class _WatchedBrowser:
    """The browser, whose every new context listens for Content-Security-Policy refusals."""

    def __init__(self, browser) -> None:
        self._browser = browser

    def new_context(self, **kwargs):
        context = self._browser.new_context(**kwargs)
        context.on("console", _note_csp_violation)
        return context

    def __getattr__(self, name):
        return getattr(self._browser, name)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright."""
    if not Path(CHROMIUM).exists():
        missing(CHROMIUM, "chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield _WatchedBrowser(browser)
        browser.close()


@pytest.fixture(autouse=True)
def _no_content_security_policy_violation():
    """Every journey of every browser test runs under the policy without a refusal."""
    before = len(CSP_VIOLATIONS)
    yield
    assert CSP_VIOLATIONS[before:] == [], "Chromium refused under the CSP:\n" + \
        "\n".join(CSP_VIOLATIONS[before:])


def sign_in(browser, platform, username):
    """A new browser context signed in as a demo user (French interface)."""
    password = next(u["password"] for u in platform["demo"]["users"]
                    if u["username"] == username)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
    page = context.new_page()
    page.goto(platform["url"] + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form.card button[type=submit]")
    page.wait_for_url("**/accounts/")
    return page


PHONE = {"width": 390, "height": 844}


def translated_msgids(language: str) -> set[str]:
    """English sentences of the catalogue that have a different translation in
    ``language`` (words that read the same in both are not counted)."""
    from django.utils import translation

    catalog = translation.trans_real.translation(language)._catalog
    return {key for key, value in catalog.items()
            if isinstance(key, str) and key and value != key and len(key) > 3}


def on_a_phone(browser, platform, language: str, username: str | None):
    """A new phone-sized browser context in ``language``, signed in as ``username`` (a
    demo user) unless None."""
    from urllib.parse import urlparse

    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    host = urlparse(platform["url"]).hostname
    context.add_cookies([{"name": "sahab_language", "value": language, "domain": host,
                          "path": "/"}])
    page = context.new_page()
    if username is not None:
        password = next(u["password"] for u in platform["demo"]["users"]
                        if u["username"] == username)
        page.goto(platform["url"] + "/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("form.card button[type=submit]")
        page.wait_for_url("**/accounts/")
    return context, page


def phone_problems(page, english: set[str]) -> list[str]:
    """What is wrong with the page shown: wider than the phone's screen, or lines left
    in English although the catalogue translates them."""
    problems = []
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > PHONE["width"] + 1:
        problems.append(f"{page.url} is {width}px wide")
    lines = page.evaluate("(document.querySelector('main') || document.body).innerText")
    untranslated = sorted({line.strip() for line in lines.splitlines()} & english)
    if untranslated:
        problems.append(f"{page.url} shows in English: {untranslated[:5]}")
    return problems


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test against the running platform shows the end of its serve log."""
    report = yield
    platform = getattr(item, "funcargs", {}).get("platform")
    if report.failed and isinstance(platform, dict) and "home" in platform:
        report.sections.append(("sahab serve log (end)", _serve_log(platform["home"], 6000)))
    return report
