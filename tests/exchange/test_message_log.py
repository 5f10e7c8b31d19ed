"""The message log never stops: whatever a request looks like and whatever fails, every
exchange of a known client reaches the ledger, and a record the ledger refuses is set
aside without holding the others."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from sahab.directory.selectors import SYSTEM
from sahab.exchange import messagelog
from sahab.exchange.models import Message
from sahab.ledger import services as ledger
from tests.exchange.conftest import Provider


def _in_ledger(message: Message) -> dict:
    return json.loads(bytes(ledger.get_entry(message.ledger_index).body))


def test_the_anonymous_request_of_the_finding_does_not_stop_the_log(intranet):
    """Finding: `curl -H 'X-Road-Client: TN/GOV/MS/DOSSIER-PATIENT' /exchange/r1/listClients`
    (no credentials) was logged with an empty service, and from then on every batch of
    the message log failed: granted exchanges never reached the ledger."""
    status, headers, _ = intranet.raw("GET", "/exchange/r1/listClients",
                                      {"X-Road-Client": "TN/GOV/MS/DOSSIER-PATIENT"})
    assert status == 401 and headers["x-road-error"] == "Client.Unauthorized"
    assert not Message.objects.exists()  # nothing was exchanged, nobody is accountable
    ledger.integrate_pending()  # the registry's entries, written pending at its set-up
    size = ledger.tree_size()
    for n in range(3):
        assert intranet.call(f"persons/{n}").status_code == 200
    assert messagelog.flush_to_ledger() == 3
    assert ledger.tree_size() == size + 3
    assert all(m.ledger_index is not None for m in Message.objects.all())
    assert messagelog.status()["backlog"] == 0


def test_a_record_the_ledger_refuses_is_set_aside_and_the_others_go_on(intranet):
    """A record the ledger cannot take (written by an older gateway or by hand: an empty
    client and service) no longer blocks the batch it is in."""
    assert intranet.call("persons/1").status_code == 200
    bad = Message(x_road_id="x", client="", service="", method="GET", path_sha256="",
                  request_sha256="", status=400, started_at=timezone.now(), duration_ms=1)
    bad.mac = messagelog.seal(bad)  # as a gateway would have written it
    bad.save()
    assert intranet.call("persons/2").status_code == 200
    assert messagelog.flush_to_ledger() == 2
    bad.refresh_from_db()
    assert bad.ledger_index is None and bad.ledger_failed_at is not None
    assert "subject" in bad.ledger_error
    status = messagelog.status()
    assert status["backlog"] == 0 and status["refused"] == 1
    assert status["alert"] and status["alert_reasons"] == ["refused"]
    assert intranet.call("persons/3").status_code == 200
    assert messagelog.flush_to_ledger() == 1  # later records are not held either
    assert messagelog.retry_refused(actor=SYSTEM) == 1
    assert messagelog.flush_to_ledger() == 0  # tried again, set aside again
    assert Message.objects.filter(ledger_index__isnull=False).count() == 3


def test_the_backlog_and_its_age_raise_an_alert_on_the_page_and_the_api(intranet, settings):
    from sahab.directory import services as directory

    assert intranet.call().status_code == 200
    Message.objects.update(started_at=timezone.now() - dt.timedelta(minutes=5))
    for message in Message.objects.all():  # as the gateway wrote it five minutes ago
        message.mac = messagelog.seal(message)
        message.save(update_fields=["mac"])
    settings.EXCHANGE_LOG_ALERT_SECONDS = 60
    status = messagelog.status()
    assert status["backlog"] == 1 and status["backlog_age_seconds"] >= 300
    assert status["alert"] and status["alert_reasons"] == ["backlog"]
    token = directory.issue_api_token(actor=SYSTEM, user=intranet.it_finances, name="t")[1]
    api = Client().get("/api/exchange/message-log", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.json()["alert"] is True and api.json()["backlog"] == 1
    page = Client()
    page.force_login(intranet.it_finances)
    text = page.get("/exchange/monitoring/").content.decode()
    assert 'role="alert"' in text and "check the worker" in text
    messagelog.flush_to_ledger()
    assert messagelog.status()["alert"] is False


def test_records_wait_in_the_gateway_while_the_database_cannot_take_them(intranet, settings):
    """Batch mode: the table the log is written to disappears for a while (a fault of the
    database); calls are still answered, their records wait in the gateway and are all
    written once it is back."""
    settings.EXCHANGE_LOG_BATCH_SECONDS = 0.05
    table = connection.ops.quote_name(Message._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO exchange_message_away")
    try:
        for n in range(5):
            assert intranet.call(f"persons/{n}").status_code == 200
        time.sleep(0.3)  # some writes fail meanwhile
        assert len(intranet.gateway.gateway.log.pending) == 5
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE exchange_message_away RENAME TO {table}")
    deadline = time.monotonic() + 20
    while Message.objects.count() < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert Message.objects.count() == 5 and not intranet.gateway.gateway.log.pending


# Requests as a stranger, a confused client or a hostile one might send them.
_token_chars = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_header_names = st.one_of(
    st.sampled_from(["X-Road-Client", "X-Road-Id", "X-Road-UserId", "X-Road-Issue",
                     "Authorization", "Content-Type", "Accept", "X-Road-Request-Hash",
                     "Transfer-Encoding", "Expect", "Connection", "X-Forwarded-For"]),
    st.text(_token_chars, min_size=1, max_size=20))
_header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=120)
_segments = st.lists(st.one_of(
    st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="?#%/"),
            min_size=0, max_size=12),
    st.sampled_from(["..", ".", "%2e%2e", "%2F", "%00", "%ZZ", "personnes", "TN", "GOV", "MI",
                     "ETAT-CIVIL", "listMethods", "getOpenAPI", "listClients"])),
    max_size=8)


@st.composite
def hostile_requests(draw):
    prefix = draw(st.sampled_from(["/r1/", "/exchange/r1/", "/", "/receipts/", "/r1/TN/GOV/"]))
    target = prefix + "/".join(draw(_segments))
    if draw(st.booleans()):
        target += "?" + draw(st.text(st.characters(min_codepoint=33, max_codepoint=126,
                                                   exclude_characters="#"), max_size=40))
    headers = draw(st.dictionaries(_header_names, _header_values, max_size=6))
    credential = draw(st.sampled_from(["none", "wrong", "client", "other"]))
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS",
                                   "TRACE", "PROPFIND"]))
    body = draw(st.binary(max_size=2000)) if method in ("POST", "PUT", "PATCH") else b""
    return method, target, headers, credential, body


@pytest.mark.slow
@hypothesis_settings(max_examples=120, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture,
                                            HealthCheck.too_slow])
@given(request=hostile_requests())
def test_no_request_ever_stops_the_message_log(intranet, request):
    """Whatever arrives (headers, paths, bodies, credentials), the next granted exchange is
    answered and every exchange of a known client reaches the ledger."""
    method, target, headers, credential, body = request
    headers = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "host")}
    if credential != "none":
        headers["Authorization"] = "Bearer " + {
            "wrong": "xrd_not-a-token", "client": intranet.token,
            "other": intranet.other_token}[credential]
    headers.pop("Transfer-Encoding", None)
    if headers.get("Expect"):
        headers.pop("Expect")
    try:
        status, _, _ = intranet.raw(method, target, headers, body)
        assert status < 500 or status in (502, 503, 504)
    except OSError:
        pass  # the gateway may close a connection it cannot parse
    assert intranet.call("persons/12345678").status_code in (200, 429)
    assert messagelog.flush_to_ledger() >= 1
    status = messagelog.status()
    assert status["backlog"] == 0 and status["refused"] == 0
    assert Message.objects.filter(ledger_index__isnull=True).count() == 0


_anything = st.one_of(st.none(), st.text(max_size=400), st.integers(), st.floats(),
                      st.booleans(), st.binary(max_size=50), st.datetimes(),
                      st.lists(st.integers(), max_size=3))


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fields=st.fixed_dictionaries({}, optional={
    name: _anything for name in (
        "x_road_id", "request_id", "client", "service", "grant_id", "method", "path_sha256",
        "user_id", "issue", "request_hash", "request_sha256", "request_bytes",
        "response_sha256", "response_bytes", "status", "error", "started_at",
        "duration_ms")}))
def test_every_captured_record_is_one_the_ledger_can_take(fields):
    """Validation at capture: whatever the gateway passes, the record encodes."""
    row = messagelog.capture(**fields)
    entry = ledger.encode_entry(messagelog.ledger_record(Message(**row)), timezone.now())
    assert json.loads(entry)["subject"]
    for field in Message._meta.concrete_fields:
        if field.attname in row and getattr(field, "max_length", None) and \
                isinstance(row[field.attname], str):
            assert len(row[field.attname]) <= field.max_length


@pytest.mark.slow
def test_strict_mode_loses_no_acknowledged_exchange_when_the_gateway_is_killed(
        transactional_db, sahab_home, provider_url, settings, tmp_path):
    """Strict mode: each record is committed before its answer is complete, so killing
    the gateway (SIGKILL, no shutdown) right after the answers loses none of them."""
    import os
    import signal
    import subprocess
    import sys

    import httpx

    from sahab.core import keys
    from sahab.directory.models import Role
    from sahab.exchange import services
    from tests import factories
    from tests.e2e.conftest import free_port

    keys.ensure_ledger_key()
    settings.EXCHANGE_ALLOW_HTTP_PROVIDERS = True
    interior, finances = factories.administration(code="MI"), factories.administration(code="MF")
    port = int(provider_url.rsplit(":", 1)[1].split("/")[0])
    services.register_provider_host(actor=SYSTEM, administration=interior, host="127.0.0.1",
                                    port=port, path_prefix="/", allow_internal=True)
    registry = services.register_subsystem(actor=SYSTEM, administration=interior, code="EC",
                                           name="État civil")
    service = services.register_service(actor=SYSTEM, subsystem=registry, code="p", name="P",
                                        base_url=provider_url, owner="DSI")
    client = services.register_subsystem(actor=SYSTEM, administration=finances, code="TAX",
                                         name="Impôts")
    grant = services.request_grant(actor=SYSTEM, client=client, service=service,
                                   legal_basis="Loi", purpose="x")
    services.decide_grant(actor=SYSTEM, grant=grant, approve=True, rate_per_minute=10_000)
    token = services.issue_client_token(actor=SYSTEM, subsystem=client, name="t")[1]
    factories.agent(administration=finances, roles=[Role.IT_OFFICER])
    plain, tls = free_port(), free_port()
    env = {**os.environ, "SAHAB_HOME": str(sahab_home), "DJANGO_SETTINGS_MODULE":
           "sahab.settings", "DATABASE_URL": _database_url(), "SAHAB_EXCHANGE_PORT": str(plain),
           "SAHAB_EXCHANGE_TLS_PORT": str(tls), "SAHAB_EXCHANGE_LOG_STRICT": "true",
           "SAHAB_EXCHANGE_ALLOW_HTTP_PROVIDERS": "true", "SAHAB_LOG_LEVEL": "WARNING"}
    gateway = subprocess.Popen([sys.executable, "-m", "sahab.cli", "exchange", "gateway",
                                "--processes", "1"], env=env, stdout=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{plain}/r1/{service.identifier}/persons/1"
        headers = {"X-Road-Client": client.identifier, "Authorization": f"Bearer {token}"}
        _wait_for(f"http://127.0.0.1:{plain}/healthz")
        answered = 0
        with httpx.Client(headers=headers, timeout=10) as http:
            for _ in range(40):
                assert http.get(url).status_code == 200
                answered += 1
    finally:
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(10)
    assert Message.objects.filter(status=200).count() == answered == 40


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    host = db.get("HOST") or "127.0.0.1"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgresql://{auth}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def _wait_for(url: str) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not start")


@pytest.fixture(autouse=True)
def _no_stale_provider_calls():
    Provider.seen.clear()


def test_in_strict_mode_a_bodiless_answer_waits_for_its_record(intranet, monkeypatch):
    """A provider's answer without a body (here a 302, Content-Length: 0) is complete with
    its headers: those too wait until the record is committed, not just the last chunk."""
    import concurrent.futures
    import threading

    committed = threading.Event()
    gate = threading.Event()
    write = messagelog._write_and_close

    def held(batch):
        gate.wait(10)
        write(batch)
        committed.set()

    monkeypatch.setattr(messagelog, "_write_and_close", held)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(intranet.call, "redirect")
        deadline = time.monotonic() + 10
        while not Provider.seen and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        assert not pending.done()  # the answer is held while its record is not committed
        gate.set()
        response = pending.result()
    assert response.status_code == 302 and committed.is_set()
    assert Message.objects.get(status=302).response_bytes == 0
