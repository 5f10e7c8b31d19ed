"""Readiness: can this installation serve every pillar right now?

``/healthz`` says the web process and its database answer (for a load balancer's
liveness probe); ``/readyz`` checks each part the platform needs: the database, the task
queue and a live worker, the SMTP listener, Dovecot, and every witness the log submits
checkpoints to. Each check has a short timeout and they run side by side.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

TIMEOUT = 2.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


class NotReady(Exception):
    pass


def _database() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return connection.vendor


def _queue() -> str:
    import datetime as dt

    from django.utils import timezone

    from sahab.ops import heartbeats

    now = timezone.now()
    workers = heartbeats.live_workers(now)
    if not workers:
        raise NotReady(f"no worker seen in the last {heartbeats.WORKER_SILENCE_SECONDS} s")
    from django_tasks_db.models import DBTaskResult

    oldest = (DBTaskResult.objects.filter(status="READY", run_after__lte=now)
              .order_by("enqueued_at").values_list("enqueued_at", flat=True).first())
    if oldest is not None and now - oldest > dt.timedelta(seconds=settings.READY_QUEUE_MAX_AGE):
        raise NotReady(f"the oldest task has waited {(now - oldest).total_seconds():.0f} s")
    return f"{workers} worker(s)"


def _banner(address: str, expected: bytes) -> Callable[[], str]:
    def check() -> str:
        host, _, port = address.rpartition(":")
        with socket.create_connection((host.strip("[]"), int(port)), timeout=TIMEOUT) as sock:
            sock.settimeout(TIMEOUT)
            greeting = sock.recv(512)
        if not greeting.startswith(expected):
            raise NotReady(f"unexpected greeting {greeting[:60]!r}")
        return address
    return check


def _reachable(url: str) -> Callable[[], str]:
    def check() -> str:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname, port), timeout=TIMEOUT):
            return f"{parts.hostname}:{port}"
    return check


def network_checks() -> dict[str, Callable[[], str]]:
    """The listeners and witnesses this installation needs, by name."""
    found: dict[str, Callable[[], str]] = {}
    smtp, imap = settings.READY_SMTP, settings.READY_IMAP
    if smtp is None:  # unset: the listener ``sahab serve`` runs on this machine
        smtp = f"127.0.0.1:{settings.SMTP_PORT}"
    if imap is None:
        from sahab.mail import dovecot

        imap = f"127.0.0.1:{settings.IMAP_PORT}" if dovecot.binary() else ""
    if smtp:
        found["smtp"] = _banner(smtp, b"220")
    if imap:
        found["imap"] = _banner(imap, b"* OK")
    from sahab.ledger.models import Witness

    try:
        witnesses = list(Witness.objects.filter(active=True).exclude(url="")
                         .values_list("name", "url"))
    except Exception:  # the database check reports it
        witnesses = []
    for name, url in witnesses:
        found[f"witness {name}"] = _reachable(url)
    return found


def _run(name: str, check: Callable[[], str]) -> Check:
    try:
        return Check(name, True, check())
    except (NotReady, OSError, ValueError) as exc:
        return Check(name, False, str(exc) or type(exc).__name__)
    except Exception as exc:  # a database error is an answer too: not ready
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def readiness() -> list[Check]:
    """Every check's result: the database's in this thread, the sockets side by side."""
    results = [_run("database", _database)]
    results.append(_run("queue", _queue) if results[0].ok else
                   Check("queue", False, "the database does not answer"))
    remote = network_checks()
    if remote:
        with ThreadPoolExecutor(max_workers=len(remote)) as pool:
            results.extend(pool.map(lambda item: _run(*item), remote.items()))
    return results
