"""Public reads from a PostgreSQL streaming replica; everything else on the primary.

When ``DATABASE_REPLICA_URL`` is set, a request reads from the replica only if all of
these hold, and from the primary otherwise:

- it is a GET, HEAD or OPTIONS request for a public page or API (``PUBLIC_PATHS``);
- it comes from nobody signed in: no session cookie, no ``Authorization`` header;
- its browser wrote nothing within the lag window (``RECENT_WRITE_COOKIE``), so that a
  visitor who just registered or signed out still reads what they wrote;
- the query runs outside a transaction on the primary, and the request has not written
  (a write pins the rest of the request to the primary);
- the replica answers, is still a standby, and has every transaction that the primary
  had committed ``REPLICA_MAX_LAG_SECONDS`` ago, or the primary does not answer at all:
  public pages slightly stale are better than no pages.

The choice is made at the request's first read and kept for the whole request, so that a
page never mixes rows of both databases. Every write goes to the primary, and so does
everything outside a request (the worker, the SMTP server, the command line): only the
middleware lets reads go to the replica.

How stale the replica may be is measured, not guessed: every ``REPLICA_CHECK_SECONDS``
each process reads the primary's WAL position (``pg_current_wal_lsn()``), keeps it with
the time it read it, and asks the replica how far it has replayed
(``pg_last_wal_replay_lsn()``). Once the replica has replayed past a position read at
time *t*, it holds every transaction committed before *t*: its staleness is at most
*now - t*. An idle primary thus never looks lagging, and a replica cut off from its
primary is noticed even though it believes itself up to date.

A database that cannot be reached makes a request that needs it a 503 with
``Retry-After`` (a problem document on the machine interfaces); a public read that hit
the unreachable database is retried once on the other one.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import re
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessionMiddleware
from django.core.signals import request_finished
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from sahab.core.problems import is_machine_path, problem_response

log = logging.getLogger(__name__)

PRIMARY = DEFAULT_DB_ALIAS
REPLICA = "replica"
# Pages and APIs that anybody may read: the portal, tenders, the directory, the cloud
# catalogue, OCDS, the ledger and the public API. Paths not listed always read from the
# primary (the exchange gateway decides on grants, which must never be stale).
PUBLIC_PATHS = re.compile(
    r"^/(?:$|tenders/|ocds/|ledger/|api/|directory/|cloud/(?:$|providers/))")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Set on a browser that wrote something: its reads stay on the primary for the lag window.
RECENT_WRITE_COOKIE = "sahab_recent_write"
RETRY_AFTER_SECONDS = 30

# Where this request reads: PRIMARY, REPLICA, or UNDECIDED until its first read (then
# the whole request reads from the same database, unless it writes).
UNDECIDED = None
_route: ContextVar[str | None] = ContextVar("sahab_database_route", default=PRIMARY)
_wrote: ContextVar[bool] = ContextVar("sahab_wrote", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def stick_to_primary() -> None:
    """Read from the primary for the rest of this request.

    Call it before reading what a write will be computed from, when that write may
    happen in a request that reads from the replica (for example a checkpoint signed
    on demand): the write goes to the primary anyway, and must not be based on a
    stale read.
    """
    _route.set(PRIMARY)


def recent_write_window() -> int:
    """Seconds a writer's browser reads from the primary: the longest the replica may
    lag, plus the age of the lag measurement it was allowed on."""
    return math.ceil(settings.REPLICA_MAX_LAG_SECONDS + settings.REPLICA_CHECK_SECONDS)


# --- the router ------------------------------------------------------------------------

class ReplicaRouter:
    """Django database router (``DATABASE_ROUTERS``) for a primary and one replica."""

    def db_for_read(self, model, **hints):
        route = _route.get()
        if route == PRIMARY or connections[PRIMARY].in_atomic_block:
            return PRIMARY
        if route is UNDECIDED:
            route = REPLICA if monitor.replica_readable() else PRIMARY
            _route.set(route)
        return route

    def db_for_write(self, model, **hints):
        _route.set(PRIMARY)
        _wrote.set(True)
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica holds the same rows as the primary

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == PRIMARY


# --- how far behind the replica is -------------------------------------------------------

def _lsn(text: str | None) -> int | None:
    """A WAL position such as ``16/B374D848`` as an integer."""
    if not text:
        return None
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


@dataclass(frozen=True)
class Health:
    checked_at: float  # time.monotonic() of the check
    primary_up: bool
    replica_up: bool  # it answers and is still a standby
    fresh_as_of: float | None  # the replica holds every commit made before this moment

    def staleness(self, now: float | None = None) -> float | None:
        """Seconds of commits the replica may miss (None: not known)."""
        if self.fresh_as_of is None:
            return None
        return max(0.0, (time.monotonic() if now is None else now) - self.fresh_as_of)


class ReplicaMonitor:
    """Measures, once per ``REPLICA_CHECK_SECONDS`` per process, whether the primary
    and the replica answer and how stale the replica may be.

    It uses connections of its own with a short connect timeout, so that a database
    that does not answer delays one request per check, not every request.
    """

    SAMPLES = 600  # primary WAL positions kept while the replica catches up

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._health: Health | None = None
        self._samples: collections.deque[tuple[float, int]] = collections.deque(
            maxlen=self.SAMPLES)
        self._connections: dict[str, object] = {}
        self._pid = os.getpid()

    def health(self) -> Health:
        health = self._health
        if health is not None and (time.monotonic() - health.checked_at
                                   < settings.REPLICA_CHECK_SECONDS):
            return health
        # One thread checks; the others go on with the last result meanwhile.
        if not self._lock.acquire(blocking=health is None):
            return health
        try:
            if self._health is health:
                self._health = self._check(health)
            return self._health
        finally:
            self._lock.release()

    def replica_readable(self) -> bool:
        health = self.health()
        if not health.replica_up:
            return False
        if not health.primary_up:
            return True
        staleness = health.staleness()
        return staleness is not None and staleness <= settings.REPLICA_MAX_LAG_SECONDS

    def mark_down(self, alias: str) -> None:
        """A request found ``alias`` unreachable: believe it until the next check."""
        with self._lock:
            health = self._health or Health(time.monotonic(), True, True, None)
            self._health = Health(
                health.checked_at, health.primary_up and alias != PRIMARY,
                health.replica_up and alias != REPLICA, health.fresh_as_of)

    def _check(self, previous: Health | None) -> Health:
        if self._pid != os.getpid():  # forked: the parent's sockets are not ours
            self._connections, self._pid = {}, os.getpid()
        now = time.monotonic()
        row = self._query(PRIMARY, "SELECT pg_current_wal_lsn()::text")
        primary_up = row is not None
        if primary_up:
            self._samples.append((now, _lsn(row[0])))
        row = self._query(REPLICA, "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text")
        replica_up = row is not None and row[0]
        if row is not None and not row[0]:
            log.warning("the replica is not a standby any more (promoted?): not reading from it")
        fresh_as_of = previous.fresh_as_of if previous else None
        replayed = _lsn(row[1]) if replica_up else None
        if replayed is not None:
            caught_up = [t for t, position in self._samples if position <= replayed]
            if caught_up:
                fresh_as_of = max(caught_up[-1], fresh_as_of or caught_up[-1])
                while self._samples and self._samples[0][0] < caught_up[-1]:
                    self._samples.popleft()
        health = Health(now, primary_up, bool(replica_up), fresh_as_of)
        if previous is None or (previous.primary_up, previous.replica_up) != (
                health.primary_up, health.replica_up):
            log.info("databases: primary %s, replica %s",
                     "up" if health.primary_up else "DOWN",
                     "up" if health.replica_up else "DOWN")
        return health

    def _query(self, alias: str, sql: str) -> tuple | None:
        """One row from ``alias``, or None if it cannot be reached."""
        import psycopg

        conn = self._connections.pop(alias, None)
        for fresh in (conn is None, True):  # a kept connection may have died: reconnect once
            try:
                if conn is None:
                    conn = self._connect(alias)
                row = conn.execute(sql).fetchone()
            except psycopg.Error as exc:
                if conn is not None:
                    conn.close()
                conn = None
                if fresh:
                    log.debug("the %s database does not answer: %s", alias, exc)
                    return None
            else:
                self._connections[alias] = conn
                return row
        return None

    def _connect(self, alias: str):
        import psycopg

        params = connections[alias].get_connection_params()
        for name in ("cursor_factory", "context", "prepare_threshold"):
            params.pop(name, None)
        timeout = max(1, math.ceil(settings.REPLICA_CHECK_SECONDS * 2))
        options = f"{params.get('options', '')} -c statement_timeout={timeout * 1000}"
        params |= {"autocommit": True, "application_name": "sahab replica check",
                   "connect_timeout": timeout, "tcp_user_timeout": timeout * 1000,
                   "options": options.strip()}
        return psycopg.connect(**params)


monitor = ReplicaMonitor()


# --- the middleware ----------------------------------------------------------------------

def _may_read_replica(request) -> bool:
    return (request.method in SAFE_METHODS
            and PUBLIC_PATHS.match(request.path_info) is not None
            and settings.SESSION_COOKIE_NAME not in request.COOKIES
            and RECENT_WRITE_COOKIE not in request.COOKIES
            and "HTTP_AUTHORIZATION" not in request.META)


def _unreachable(exception: Exception) -> str | None:
    """The database that ``exception`` shows to be unreachable, if that is what it is.

    Other database errors (a lock timeout, a constraint) leave the connection usable and
    stay what they are.
    """
    if not isinstance(exception, OperationalError | InterfaceError):
        return None
    for alias in (PRIMARY, REPLICA) if replica_configured() else (PRIMARY,):
        wrapper = connections[alias]
        if wrapper.vendor != "postgresql" or not wrapper.errors_occurred:
            continue
        if wrapper.connection is None or not wrapper.is_usable():
            return alias
    return None


def unavailable_response(request) -> HttpResponse:
    """503: what a request that needs an unreachable database gets."""
    detail = _("The platform's main database cannot be reached for the moment. Public "
               "pages are still served; signing in and changes are not. Please try again "
               "in a few minutes.")
    return _service_unavailable(request, "Service unavailable", detail, RETRY_AFTER_SECONDS)


def _service_unavailable(request, title: str, detail: str, retry_after: int) -> HttpResponse:
    """503 with Retry-After: a problem for machines, a page for people."""
    headers = {"Retry-After": str(retry_after), "Cache-Control": "no-store"}
    if is_machine_path(request.path):
        return problem_response(503, title, detail, headers=headers)
    # No context processors: they would ask the database for the user's menu.
    response = HttpResponse(render_to_string("core/unavailable.html", {"detail": detail}),
                            status=503)
    for key, value in headers.items():
        response[key] = value
    return response


class DatabaseRoutingMiddleware:
    """Decides where each request reads from (see the module's documentation) and turns
    an unreachable database into a 503."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        routed = replica_configured()
        eligible = routed and _may_read_replica(request)
        _route.set(UNDECIDED if eligible else PRIMARY)
        _wrote.set(False)
        response = self.get_response(request)
        if getattr(response, "unreachable_database", None) and eligible and not _wrote.get():
            # Nothing was written: read again, from the database that still answers.
            _route.set(UNDECIDED)
            response = self.get_response(request)
        if routed and _wrote.get():
            response.set_cookie(RECENT_WRITE_COOKIE, "1", max_age=recent_write_window(),
                                httponly=True, samesite="Lax",
                                secure=settings.SESSION_COOKIE_SECURE)
        return response

    def process_exception(self, request, exception):
        return answer_unreachable(request, exception) or answer_busy(request, exception)


def answer_unreachable(request, exception: Exception) -> HttpResponse | None:
    """The 503 of a request that met an unreachable database, or None for any other
    error (which stays what it is). For middleware that reads the database outside the
    view, where ``DatabaseRoutingMiddleware.process_exception`` does not reach."""
    alias = _unreachable(exception)
    if alias is None:
        return None
    log.warning("%s %s: the %s database cannot be reached (%s)", request.method,
                request.path, "replica" if alias == REPLICA else "primary",
                str(exception).strip().splitlines()[0] if str(exception) else "")
    monitor.mark_down(alias)
    connections[alias].close()
    response = unavailable_response(request)
    response.unreachable_database = alias
    return response


def _busy(exception: Exception) -> bool:
    """SQLite's write lock held by another writer past ``busy_timeout``: the transaction
    was rolled back whole, and the same request a moment later succeeds."""
    return isinstance(exception, OperationalError) and \
        "database is locked" in str(exception)


def answer_busy(request, exception: Exception) -> HttpResponse | None:
    """A 503 with Retry-After, rather than a 500, for a write that met a busy database;
    None for any other error."""
    if not _busy(exception):
        return None
    log.warning("%s %s: the database stayed busy past its timeout", request.method,
                request.path)
    detail = _("The platform is busy and could not save this change; nothing was saved. "
               "Please try again in a moment.")
    return _service_unavailable(request, "Service busy", detail, 5)


class SessionMiddleware(DjangoSessionMiddleware):
    """Django's, with the idle timeout kept by at most one write a minute, and kind to a
    main database that is busy or cannot be reached.

    A signed-in user's session is written again when a request comes more than
    ``SESSION_REFRESH_SECONDS`` after its last write (the store forgets a session not
    written for ``SESSION_COOKIE_AGE``: the idle timeout), not at every request, so that
    reading pages costs no write. That refresh runs after the view, where the 503 of
    ``DatabaseRoutingMiddleware`` does not reach: when only the refresh is lost (the
    database is locked or unreachable, or the session was ended meanwhile), the answer
    stands; when the session itself changed, an unreachable database gives the 503."""

    def process_response(self, request, response):
        refresh_only = _refresh_due(request)
        try:
            return super().process_response(request, response)
        except (DatabaseError, SessionInterrupted) as exc:
            if refresh_only:
                log.warning("session refresh not saved: %s", exc)
                return response
            if isinstance(exc, SessionInterrupted) or _unreachable(exc) is None:
                raise
            return answer_unreachable(request, exc)


SESSION_REFRESHED_AT = "sahab_refreshed_at"


def _refresh_due(request) -> bool:
    """Stamp a signed-in session whose last write is older than the refresh interval, so
    that Django saves it; True when that refresh is the only reason to save it."""
    session = getattr(request, "session", None)
    if session is None or not session.accessed or not session.session_key:
        return False  # a request that never looked at its session keeps it as it is
    try:
        if SESSION_KEY not in session:
            return False
    except DatabaseError:  # the store could not be read: the request was answered so
        return False
    now = int(time.time())
    last = session.get(SESSION_REFRESHED_AT)
    due = not isinstance(last, int) or now - last >= settings.SESSION_REFRESH_SECONDS
    if session.modified:
        session[SESSION_REFRESHED_AT] = now  # saved anyway: it counts as a refresh
        return False
    if due:
        session[SESSION_REFRESHED_AT] = now
    return due


def _request_finished(sender, **kwargs) -> None:
    # After the response (streamed ones included), the thread reads from the primary.
    _route.set(PRIMARY)


request_finished.connect(_request_finished)
