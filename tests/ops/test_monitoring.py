"""Operators read metrics and readiness; nobody else does. Logs carry request ids."""

import contextlib
import json
import logging
import socket
import threading

import pytest

from sahab.ops import heartbeats

pytestmark = pytest.mark.django_db

FAMILIES = [
    "sahab_http_requests_total", "sahab_http_request_duration_seconds",
    "sahab_procurement_bids", "sahab_procurement_bids_submitted_total",
    "sahab_procurement_bids_opened_total", "sahab_cloud_orders", "sahab_cloud_instances",
    "sahab_cloud_broker_work_pending", "sahab_mail_outbound", "sahab_ledger_entries_total",
    "sahab_ledger_checkpoint_size", "sahab_ledger_checkpoint_age_seconds",
    "sahab_ledger_unsigned_entries", "sahab_ledger_witness_lag_entries",
    "sahab_task_queue_depth", "sahab_task_queue_oldest_age_seconds", "sahab_workers_live",
    "sahab_exchange_messages_recent", "sahab_exchange_messages_unledgered", "sahab_tasks",
    "sahab_cloud_broker_work_overdue",
]
# counted where they happen: announced even before the first event
EVENT_FAMILIES = [
    "sahab_cloud_osb_calls_total", "sahab_cloud_osb_call_duration_seconds",
    "sahab_mail_smtp_messages_total", "sahab_exchange_gateway_calls_total",
    "sahab_exchange_provider_duration_seconds",
]


def test_metrics_answer_the_monitoring_address_with_every_pillar(client):
    client.get("/healthz")
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    text = response.content.decode()
    for family in FAMILIES + EVENT_FAMILIES:
        assert f"\n# TYPE {family.removesuffix('_total')} " in text or \
            f"# TYPE {family} " in text, family
    assert 'sahab_http_requests_total{method="GET",route="healthz",status="200"}' in text


def test_metrics_and_readiness_are_refused_to_other_addresses_and_wrong_tokens(client, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    for path in ("/metrics", "/readyz"):
        assert client.get(path, REMOTE_ADDR="203.0.113.7").status_code == 403
        assert client.get(path, REMOTE_ADDR="203.0.113.7",
                          HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    with_token = client.get("/metrics", REMOTE_ADDR="203.0.113.7",
                            HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert with_token.status_code == 200
    assert b"sahab_ledger_entries_total" in with_token.content


def test_behind_a_proxy_the_forwarded_address_decides_not_the_proxy(client, settings):
    settings.PROXY_COUNT = 1
    settings.METRICS_ALLOWED = "10.9.0.0/16"
    # the proxy itself is on 127.0.0.1: a public client must not pass through it
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1",
                      HTTP_X_FORWARDED_FOR="198.51.100.4").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1",
                      HTTP_X_FORWARDED_FOR="10.9.3.3").status_code == 200


class Greeter:
    """A real TCP listener that greets like an SMTP or IMAP server, on a free port."""

    def __init__(self, greeting: bytes):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.greeting = greeting
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(self.greeting)

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread: the port closes
        self.sock.close()


@pytest.fixture
def listeners(settings):
    smtp, imap = Greeter(b"220 sahab ESMTP\r\n"), Greeter(b"* OK Dovecot ready.\r\n")
    settings.READY_SMTP, settings.READY_IMAP = smtp.address, imap.address
    yield smtp, imap
    for listener in (smtp, imap):
        with contextlib.suppress(OSError):
            listener.close()


def test_readiness_needs_a_live_worker_and_every_listener(client, listeners, settings):
    _smtp, imap = listeners
    response = client.get("/readyz")
    assert response.status_code == 503
    assert not response.json()["checks"]["queue"]["ok"]
    assert "no worker" in response.json()["checks"]["queue"]["detail"]

    heartbeats.beat_worker()
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert set(response.json()["checks"]) == {"database", "queue", "smtp", "imap"}

    imap.close()  # Dovecot stopped: the platform is not ready
    response = client.get("/readyz")
    assert response.status_code == 503
    assert not response.json()["checks"]["imap"]["ok"]
    assert response.json()["checks"]["smtp"]["ok"]


def test_a_worker_silent_too_long_is_not_counted(settings):
    import datetime as dt

    from django.utils import timezone

    heartbeats.beat_worker()
    assert heartbeats.live_workers() == 1
    later = timezone.now() + dt.timedelta(seconds=heartbeats.WORKER_SILENCE_SECONDS + 1)
    assert heartbeats.live_workers(later) == 0


def test_every_log_line_of_a_request_carries_its_id_and_so_do_ledger_appends(
        client, caplog, django_capture_on_commit_callbacks):
    from sahab.ledger import services as ledger
    from sahab.ops.logs import JsonFormatter, current_request_id

    seen = {}

    def view_like_work():
        seen["id"] = current_request_id()
        ledger.append(type="test.thing", subject="thing:1", data={}, actor="system")

    caplog.set_level(logging.INFO)
    response = client.get("/healthz", HTTP_X_REQUEST_ID="trace-0123456789")
    assert response["X-Request-ID"] == "trace-0123456789"
    made_up = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert len(made_up) == 32 and made_up != "bad id with spaces"

    from sahab.ops.logs import REQUEST_ID

    token = REQUEST_ID.set("req-append-42")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            view_like_work()
    finally:
        REQUEST_ID.reset(token)
    assert seen["id"] == "req-append-42"
    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(r)) for r in caplog.records]
    request_line = next(line for line in lines if line["logger"] == "sahab.request"
                        and line["request_id"] == "trace-0123456789")
    assert request_line["route"] == "healthz" and request_line["status"] == 200
    appended = next(line for line in lines if "ledger_first" in line)
    assert appended["request_id"] == "req-append-42"


def test_a_task_enqueued_by_a_request_keeps_its_id_for_the_worker(settings):
    from django_tasks_db.models import DBTaskResult

    from sahab.core.tasks import housekeeping
    from sahab.ops.logs import REQUEST_ID

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend",
                                  "QUEUES": ["default"]}}
    token = REQUEST_ID.set("req-task-7")
    try:
        result = housekeeping.enqueue()
    finally:
        REQUEST_ID.reset(token)
    stored = DBTaskResult.objects.get(id=result.id)
    assert stored.args_kwargs["request_id"] == "req-task-7"
    assert stored.task_result.args == [] and stored.task_result.kwargs == {}


def test_the_dashboard_and_alert_rules_use_only_metrics_the_platform_serves(client):
    import re
    from pathlib import Path

    docs = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
    used = set()
    for name in ("sahab-dashboard.json", "sahab-alerts.yml"):
        used |= set(re.findall(r"\bsahab_[a-z_]+", (docs / name).read_text()))
    text = client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    served = set(re.findall(r"^# TYPE (sahab_[a-z_]+) ", text, re.MULTILINE))
    suffixes = ("_bucket", "_total", "_count", "_sum")
    unknown = {m for m in used if m not in served and not any(
        m.endswith(s) and m.removesuffix(s) in served for s in suffixes)}
    assert unknown == set()
    assert len(used) >= 20
