"""The security gateway: X-Road's message protocol for REST on its own asynchronous
processes (``sahab exchange gateway``, started by ``sahab serve``).

    GET /r1/TN/GOV/MI/ETAT-CIVIL/personnes/08123456     (also under /exchange/r1/)
    X-Road-Client: TN/GOV/MS/DOSSIER-PATIENT
    (client certificate on the TLS port, or Authorization: Bearer xrd_…)

One event loop per process relays every call: a provider that hangs holds only its own
calls (each service has its concurrency limit and timeout), never a thread of the others.
The database is read in a small thread pool, through a cache that the registry's version
keeps fresh; the message log is written in batches (or each record before its answer
ends, in strict mode) by ``messagelog``. The order of the checks is the protocol's and the
auditor's: the request's form, then who is calling (nothing about services is revealed
before), then the service, the grant and its endpoints, the body, the rate, the
provider's capacity; only then is anything forwarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import sqlite3
import ssl
import threading
import time
import urllib.parse
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from django.conf import settings
from django.utils import timezone
from yarl import URL

from sahab.core.ratelimit import SlidingWindow
from sahab.exchange import messagelog, outbound, protocol, selectors
from sahab.exchange.protocol import ProtocolError
from sahab.ops import metrics

log = logging.getLogger(__name__)
SERVER = "sahab"
TOKEN_PREFIX = "Bearer xrd_"  # noqa: S105 (a marker, not a secret)


class _Ids:
    """Random UUIDs for X-Road-Id and X-Road-Request-Id, drawn from the system's random
    source 64 at a time (one system call for 64 calls, not two per call)."""

    def __init__(self) -> None:
        self.pool = b""

    def __call__(self) -> str:
        if not self.pool:
            self.pool = os.urandom(16 * 64)
        raw, self.pool = self.pool[:16], self.pool[16:]
        return str(uuid.UUID(bytes=raw, version=4))


new_id = _Ids()


class Refused(ProtocolError):
    """A call refused after the client was known: recorded in the message log."""


# --- the registry, as this process sees it ---------------------------------------------------

class Registry:
    """Lookups of credentials, services and grants, kept until the registry's version
    moves. The version is read whenever the last reading is older than
    ``EXCHANGE_REGISTRY_MAX_AGE_SECONDS`` (0: for every call, so that a revocation applies
    to the very next call). Each call uses a reading that started after it arrived, and
    the calls that arrive while one is under way share the next: under load, one reading
    (one hop to the database thread) serves many calls."""

    MAX_ENTRIES = 20_000

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.executor = executor
        self.local_version = _local_version_reader()
        self.version: int | None = None
        self.read_at = float("-inf")  # when the reading in force started
        self.inflight: tuple[float, asyncio.Future] | None = None
        self.entries: OrderedDict = OrderedDict()

    async def db(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, _db, fn, args)

    async def refresh(self) -> None:
        start = time.monotonic()
        max_age = settings.EXCHANGE_REGISTRY_MAX_AGE_SECONDS
        oldest = start - max_age
        if max_age > 0 and self.version is not None and self.read_at >= oldest:
            return
        if self.local_version is not None:
            try:
                version = self.local_version()
            except sqlite3.Error:  # never waits: the database thread reads it instead
                pass
            else:
                self.read_at = start
                if version != self.version:
                    self.entries.clear()
                    self.version = version
                return
        while self.inflight is not None and not self.inflight[1].done():
            started, reading = self.inflight
            if started >= oldest:  # a reading this call may use: share it
                await asyncio.shield(reading)
                return
            # A reading that started too early for this call (a revocation committed just
            # before the call may be missing from it): wait for its end, then share the
            # next one with every call that arrived meanwhile, or start it.
            with contextlib.suppress(Exception):
                await asyncio.shield(reading)
        future = asyncio.ensure_future(self.db(_registry_version))
        self.inflight = (start, future)
        version = await future
        if start >= self.read_at:
            self.read_at = start
            if version != self.version:
                self.entries.clear()
                self.version = version

    async def get(self, key, fn, *args):
        if key in self.entries:
            return self.entries[key]
        version = self.version
        value = await self.db(fn, *args)
        if version == self.version:
            self.entries[key] = value
            if len(self.entries) > self.MAX_ENTRIES:
                self.entries.popitem(last=False)
        return value


def _db(fn, args):
    from django.db import DatabaseError, connection

    try:
        return fn(*args)
    except DatabaseError:
        connection.close_if_unusable_or_obsolete()
        raise


def _local_version_reader():
    """On SQLite (WAL), the registry's version is read on the event loop itself through a
    read-only connection of its own: a read of a few microseconds that never waits for a
    lock (``timeout=0``; a busy database makes it fail, and the database thread reads
    instead), where a hop to the database thread cost a third of the gateway's time per
    call. None on other databases, or when the database is not a file."""
    from django.db import connection

    from sahab.exchange.models import RegistryVersion

    name = str(connection.settings_dict.get("NAME") or "")
    if connection.vendor != "sqlite" or not name or name.startswith("file:") or \
            ":memory:" in name or not os.path.isfile(name):
        return None
    reader = sqlite3.connect(f"file:{urllib.parse.quote(name)}?mode=ro", uri=True, timeout=0,
                             isolation_level=None, check_same_thread=False)
    sql = f'SELECT version FROM "{RegistryVersion._meta.db_table}" WHERE id = 1'  # noqa: S608

    def read() -> int:
        row = reader.execute(sql).fetchone()
        return row[0] if row else 0

    read.close = reader.close  # type: ignore[attr-defined]
    return read


def _registry_version() -> int:
    from sahab.exchange import services

    return services.registry_version()


class RateLimiter(SlidingWindow):
    """Calls per grant in any sliding minute, counted in this process (with N gateway
    processes, each allows the grant's rate)."""

    def allow(self, grant: selectors.GrantInfo, now: float) -> bool:  # type: ignore[override]
        return super().allow(grant.id, grant.rate_per_minute, now)


# --- towards providers ----------------------------------------------------------------------

class NotConnected(OSError):
    """No connection to the provider within the time (a name that did not resolve, a
    port that drops packets): the caller gets the same answer as for a refused one."""


async def _connected(session, context, params) -> None:
    context.trace_request_ctx["connected"] = True


class Outbound:
    """Two connection pools: one whose resolver keeps public addresses only, one for the
    hosts a platform administrator allowed on internal addresses. Neither follows
    redirects, keeps cookies or decodes bodies."""

    def __init__(self) -> None:
        self.sessions: dict[bool, aiohttp.ClientSession] = {}

    async def open(self) -> Outbound:
        context = outbound.client_ssl_context()
        tracing = aiohttp.TraceConfig()
        tracing.on_connection_create_end.append(_connected)
        tracing.on_connection_reuseconn.append(_connected)
        for internal in (False, True):
            connector = aiohttp.TCPConnector(
                resolver=outbound.PinnedResolver(allow_internal=internal), ssl=context,
                limit=0, ttl_dns_cache=10, enable_cleanup_closed=False)
            self.sessions[internal] = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
                max_field_size=16384, trace_configs=[tracing])
        return self

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()

    async def send(self, method: str, url: str, headers, body: bytes, *,
                   allow_internal: bool, timeout: float, checked: bool = False
                   ) -> aiohttp.ClientResponse:
        """``checked``: an address written in the URL was checked already (the registry
        lookup does it once per service); names are checked by the resolver.

        A time-out before the connection is made raises ``NotConnected``, not
        ``TimeoutError``: only a provider that took the call and did not answer in time is
        a time-out for the caller (ASVS 8.3.4, docs/security.md)."""
        target = URL(url, encoded=True)
        if not checked and target.host and outbound.is_ip(target.host) and \
                not outbound.address_allowed(target.host, allow_internal=allow_internal):
            raise OSError("address refused by the outbound policy")
        connect = min(settings.EXCHANGE_CONNECT_TIMEOUT_SECONDS, timeout)
        state = {"connected": False}
        try:
            async with asyncio.timeout(timeout):
                return await self.sessions[allow_internal].request(
                    method, target, headers=headers, data=body or None, allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect,
                                                  sock_read=timeout),
                    trace_request_ctx=state)
        except TimeoutError as exc:
            if state["connected"] and not isinstance(exc, aiohttp.ConnectionTimeoutError):
                raise
            raise NotConnected(f"no connection to {target.host}:{target.port} within "
                               f"{connect:g} s") from None


class _Relayed(web.StreamResponse):
    """A provider's answer on its way to the client: the status line and headers stay in the
    writer until the first chunk of the body (or the end of the answer) goes out, in the same
    write. aiohttp's StreamResponse sends them at ``prepare`` by default, which costs a
    second write per call and would let a bodiless answer reach the client before its log
    record is committed in strict mode."""

    _send_headers_immediately = False


# --- one call -------------------------------------------------------------------------------

@dataclass
class Call:
    """What the gateway knows of a call so far: enough for its log record at any step."""

    request: web.BaseRequest
    started: object
    clock: float
    request_id: str
    x_road_id: str
    target: bytes
    caller: selectors.Caller | None = None
    service: str = ""
    grant_id: int | None = None
    request_hash: str = ""
    request_sha256: str = ""
    request_bytes: int = 0

    def headers(self) -> dict:
        headers = {"X-Road-Id": self.x_road_id, "X-Road-Request-Id": self.request_id}
        if self.caller is not None:
            headers["X-Road-Client"] = self.caller.identifier
        if self.service:
            headers["X-Road-Service"] = self.service
        if self.request_hash:
            headers["X-Road-Request-Hash"] = self.request_hash
        return headers

    def record(self, **fields):
        request = self.request
        metrics.observe_gateway(self.service, fields.get("status", 0),
                                time.perf_counter() - self.clock)
        return messagelog.capture(
            x_road_id=self.x_road_id, request_id=self.request_id,
            client=self.caller.identifier if self.caller else "", service=self.service,
            grant_id=self.grant_id, method=request.method,
            path_sha256=hashlib.sha256(self.target).hexdigest(),
            user_id=request.headers.get("X-Road-UserId", ""),
            issue=request.headers.get("X-Road-Issue", ""), request_hash=self.request_hash,
            request_sha256=self.request_sha256, request_bytes=self.request_bytes,
            started_at=self.started, duration_ms=(time.perf_counter() - self.clock) * 1000,
            **fields)


class Gateway:
    def __init__(self, executor: ThreadPoolExecutor, message_log: messagelog.MessageLog,
                 outbound_: Outbound) -> None:
        self.registry = Registry(executor)
        self.log = message_log
        self.outbound = outbound_
        self.rates = RateLimiter()
        self.limits: dict[tuple[int, int], asyncio.Semaphore] = {}
        self.refused_anonymous = 0

    # -- routing --

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if isinstance(request.protocol, _Connection):
            request.protocol.head_received()
        path = request.raw_path.split("?", 1)[0]
        if path in ("/listCentralServices", "/exchange/listCentralServices",
                    "/r1/listCentralServices", "/exchange/r1/listCentralServices"):
            return self.error(request, ProtocolError(
                404, "Client.BadRequest", "listCentralServices is not offered: there are no "
                "central services, the gateway relays REST services only."),
                {"X-Road-Request-Id": new_id()})
        for prefix in ("/exchange/r1/", "/r1/"):
            if path.startswith(prefix):
                return await self.call(request, path[len(prefix):])
        if path in ("/listClients", "/exchange/listClients", "/r1/listClients",
                    "/exchange/r1/listClients"):
            return await self.call(request, "listClients")
        for prefix in ("/exchange/receipts/", "/receipts/"):
            if path.startswith(prefix):
                return await self.receipts(request, path[len(prefix):])
        if path == "/healthz":
            return self.health()
        return self.error(request, ProtocolError(404, "Client.BadRequest",
                                                 "Unknown path: the gateway answers under "
                                                 "/r1/ (X-Road message protocol for REST)."),
                          {"X-Road-Request-Id": str(uuid.uuid4())})

    def error(self, request: web.BaseRequest, exc: ProtocolError, headers: dict
              ) -> web.Response:
        detail = headers.get("X-Road-Request-Id", "")
        body, content_type = protocol.error_body(
            exc.type, exc.message, detail, xml=protocol.wants_xml(request.headers.get("Accept")))
        response = web.Response(status=exc.status, body=body, headers={
            **headers, "X-Road-Error": exc.type, "Content-Type": content_type,
            "Server": SERVER})
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="sahab exchange"'
        if exc.status in (429, 503):
            response.headers["Retry-After"] = "1" if exc.status == 503 else "60"
        return response

    async def call(self, request: web.BaseRequest, rest: str) -> web.StreamResponse:
        raw_id = request.headers.get("X-Road-Id")
        call = Call(request=request, started=timezone.now(), clock=time.perf_counter(),
                    request_id=new_id(),
                    x_road_id=raw_id if raw_id and protocol.valid_x_road_id(raw_id)
                    else new_id(),
                    target=request.raw_path.encode("utf-8", "surrogateescape"))
        try:
            return await self._call(call, rest)
        except Refused as exc:
            await self.log.record(call.record(status=exc.status, error=exc.type))
            response = self.error(request, exc, call.headers())
            if exc.status == 408:  # the rest of the body is not waited for
                response.force_close()
            return response
        except ProtocolError as exc:  # before the caller was known: nothing exchanged
            self.refused_anonymous += 1
            log.info("refused %s %s: %s", request.method, request.raw_path[:200], exc.type)
            return self.error(request, exc, call.headers())
        except Exception:
            log.exception("the gateway failed on %s", call.x_road_id)
            exc = ProtocolError(500, "Server.ServerProxy.InternalError",
                                "The gateway could not handle the request.")
            if call.caller is not None:
                await self.log.record(call.record(status=500, error=exc.type))
            return self.error(request, exc, call.headers())

    async def _call(self, call: Call, rest: str) -> web.StreamResponse:
        request = call.request
        if request.method not in protocol.METHODS:
            raise ProtocolError(405, "Client.BadRequest", f"{request.method[:20]} is not relayed.")
        if len(request.raw_path) > protocol.MAX_TARGET:
            raise ProtocolError(414, "Client.BadRequest", "The request URI is too long.")
        protocol.check_target(request.raw_path)
        target = None if rest == "listClients" else protocol.parse_target(rest)
        claimed = request.headers.get("X-Road-Client")
        client = protocol.parse_client(claimed) if (claimed or target is not None) else None
        await self.registry.refresh()
        call.caller = await self.authenticate(request)
        # From here the caller is known: every outcome is recorded.
        if client is not None and str(client) != call.caller.identifier:
            raise Refused(403, "Client.InvalidClientIdentifier",
                          f"Authenticated as {call.caller.identifier}, not {client}.")
        raw_id = request.headers.get("X-Road-Id")
        if raw_id is not None and not protocol.valid_x_road_id(raw_id):
            raise Refused(400, "Client.BadRequest", "X-Road-Id is 1 to 100 letters, digits or "
                                                    "'.', '_', ':', '-'.")
        if target is None:
            call.service = f"{protocol.INSTANCE}/{protocol.MEMBER_CLASS}/listClients"
            return await self.list_clients(call)
        call.service = target.identifier
        if target.service in protocol.UNSUPPORTED_METASERVICES:
            raise Refused(404, "Server.ServerProxy.UnknownService",
                          f"{target.service} is not offered: the gateway relays REST services "
                          "only (no SOAP, no WSDL).")
        if target.is_metaservice:
            return await self.metaservice(call, target)
        return await self.relay(call, target)

    async def authenticate(self, request: web.BaseRequest) -> selectors.Caller:
        der = _peer_certificate(request)
        authorization = request.headers.get("Authorization", "")
        if der is not None:
            caller = await self.registry.get(("cert", hashlib.sha256(der).digest()),
                                             selectors.caller_for_certificate, der)
            if caller is not None and not (caller.not_before <= timezone.now() <
                                           caller.not_after):
                caller = None
        elif authorization.startswith("Bearer "):
            token = authorization[7:].strip()
            caller = await self.registry.get(("token", hashlib.sha256(token.encode()).digest()),
                                             selectors.caller_for_token, token)
        else:
            caller = None
        if caller is None:
            raise ProtocolError(401, "Client.Unauthorized",
                                "Authenticate as the client: its certificate (mutual TLS on "
                                "the TLS port) or its gateway token.")
        return caller

    # -- relaying --

    async def relay(self, call: Call, target: protocol.Target) -> web.StreamResponse:
        request, caller = call.request, call.caller
        service = await self.registry.get(
            ("service", target.member, target.subsystem, target.service),
            selectors.service_for, target)
        if service is None:
            raise Refused(404, "Server.ServerProxy.UnknownService",
                          f"No service {target.identifier}.")
        grant = await self.registry.get(("grant", caller.subsystem_id, service.id),
                                        selectors.grant_for, caller.subsystem_id, service.id)
        if grant is None or not grant.usable(timezone.now()):
            raise Refused(403, "Server.ServerProxy.AccessDenied",
                          f"{caller.identifier} has no valid grant for {service.identifier}.")
        call.grant_id = grant.id
        if not protocol.allowed(grant.endpoints, request.method, target.path):
            raise Refused(403, "Server.ServerProxy.AccessDenied",
                          f"The grant of {caller.identifier} does not cover {request.method} "
                          f"on this path of {service.identifier}.")
        body = await self.read_body(call, service.timeout_seconds)
        if not self.rates.allow(grant, time.monotonic()):
            raise Refused(429, "Client.RateLimitExceeded",
                          f"The grant allows {grant.rate_per_minute} calls a minute.")
        if self.log.full():
            raise Refused(503, "Server.ServerProxy.MessageLogUnavailable",
                          "The message log is not keeping up: try again shortly.")
        if service.allow_internal is None:  # its host was revoked meanwhile
            log.warning("%s: base URL on no registered host", service.identifier)
            raise Refused(502, "Server.ServerProxy.ServiceFailed",
                          "The service could not be reached.")
        deadline = time.monotonic() + service.timeout_seconds
        limit = self.limits.get((service.id, service.max_concurrency))
        if limit is None:
            limit = self.limits[(service.id, service.max_concurrency)] = \
                asyncio.Semaphore(service.max_concurrency)
        try:
            if limit.locked():  # wait for a place, within the call's time
                async with asyncio.timeout(service.timeout_seconds):
                    await limit.acquire()
            else:
                await limit.acquire()
        except TimeoutError:
            raise Refused(503, "Server.ServerProxy.ServiceBusy",
                          f"{service.identifier} is at its limit of "
                          f"{service.max_concurrency} calls at once.") from None
        try:
            return await self.forward(call, target, service, body, deadline)
        finally:
            limit.release()

    async def read_body(self, call: Call, timeout: float) -> bytes:
        """The whole body, within the service's timeout: a client that sends it slowly
        (or not at all) holds its connection no longer than a provider may take."""
        request, limit = call.request, settings.EXCHANGE_MAX_BODY_BYTES
        if (request.content_length or 0) > limit:
            raise Refused(413, "Client.RequestTooLarge", f"Bodies are {limit} bytes at most.")
        chunks, size = [], 0
        try:
            async with asyncio.timeout(timeout):
                if request.headers.get("Expect", "").lower() == "100-continue":
                    # Answered here, once the call is known to be allowed (PR-REST 4.3).
                    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                while chunk := await request.content.read(65536):
                    size += len(chunk)
                    if size > limit:
                        raise Refused(413, "Client.RequestTooLarge",
                                      f"Bodies are {limit} bytes at most.")
                    chunks.append(chunk)
        except TimeoutError:
            raise Refused(408, "Client.RequestTimeout", f"The request body did not arrive "
                                                         f"within {timeout:g} s.") from None
        except (ConnectionError, aiohttp.ClientPayloadError, HttpProcessingError):
            # the client hung up, or its chunked body was malformed
            raise Refused(400, "Client.BadRequest", "The client broke off its request "
                                                    "body.") from None
        body = b"".join(chunks)
        call.request_bytes = len(body)
        call.request_sha256 = hashlib.sha256(body).hexdigest()
        call.request_hash = protocol.b64(protocol.request_hash(
            request.method, call.target, _hashed_headers(request, call), body))
        return body

    async def forward(self, call: Call, target: protocol.Target,
                      service: selectors.ServiceInfo, body: bytes,
                      deadline: float) -> web.StreamResponse:
        request = call.request
        query = request.raw_path.split("?", 1)[1] if "?" in request.raw_path else ""
        url = f"{service.base_url}/{target.path}" + (f"?{query}" if query else "")
        dropped = protocol.filtered(request.headers.getall("Connection", []))
        headers = [(n, v) for n, v in request.headers.items()
                   if n.lower() not in dropped and not protocol.gateway_header(n)
                   and not _is_gateway_token(n, v)]
        headers += [("X-Road-Client", call.caller.identifier), ("X-Road-Service", call.service),
                    ("X-Road-Id", call.x_road_id), ("X-Road-Request-Id", call.request_id)]
        remaining = max(0.001, deadline - time.monotonic())
        try:
            upstream = await self.outbound.send(request.method, url, headers, body,
                                                allow_internal=bool(service.allow_internal),
                                                timeout=remaining, checked=True)
        except TimeoutError:
            raise Refused(504, "Server.ServerProxy.ServiceTimeout",
                          f"{service.identifier} did not answer within "
                          f"{service.timeout_seconds} s.") from None
        except (aiohttp.ClientError, OSError, ssl.SSLError, ValueError) as exc:
            # One answer whatever went wrong (refused, reset, no route, TLS, policy): the
            # caller learns nothing about the provider's network. The operator's log says.
            log.warning("%s %s: %s: %s", call.x_road_id, service.identifier,
                        type(exc).__name__, exc)
            raise Refused(502, "Server.ServerProxy.ServiceFailed",
                          "The service could not be reached.") from None
        try:
            return await self.answer(call, upstream)
        finally:
            upstream.release()

    async def answer(self, call: Call, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        """Relay the provider's answer byte for byte, hashing it. In strict mode the last
        chunk (or, without a body, the headers) waits until the log record is committed:
        no client holds a complete answer whose exchange is not in the log."""
        request = call.request
        response = _Relayed(status=upstream.status, reason=upstream.reason)
        dropped = protocol.filtered(upstream.headers.getall("Connection", []))
        for name, value in upstream.raw_headers:
            lower = name.lower().decode("latin-1")
            if lower not in dropped and not protocol.gateway_header(lower) and \
                    lower != "date":
                response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
        if upstream.content_length is not None:
            response.content_length = upstream.content_length
        for name, value in call.headers().items():
            response.headers[name] = value
        response.headers["Server"] = SERVER
        digest, size, error, held = hashlib.sha256(), 0, "", None
        await response.prepare(request)  # headers wait in the writer for the first chunk
        try:
            async for chunk in upstream.content.iter_any():
                digest.update(chunk)
                size += len(chunk)
                if held is not None:
                    await response.write(held)
                held = chunk
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            error = "Server.ServerProxy.ServiceFailed"  # the provider broke off
            log.warning("%s: the answer broke off (%s)", call.x_road_id, type(exc).__name__)
        await self.log.record(call.record(status=upstream.status, error=error,
                                          response_sha256=digest.hexdigest(),
                                          response_bytes=size))
        try:
            if error:
                if held is not None:
                    await response.write(held)
                response.force_close()
                if request.transport is not None:
                    request.transport.close()
                return response
            # The last chunk (with the headers, when it is the only one) goes out with the
            # end of the answer: in strict mode, once the record above is committed.
            await response.write_eof(held or b"")
        except (ConnectionError, RuntimeError):
            pass  # the client went away; its exchange is in the log all the same
        return response

    # -- metaservices --

    async def list_clients(self, call: Call) -> web.Response:
        members, subsystems = await self.registry.get(("clients",), selectors.client_listing)
        accept = call.request.headers.get("Accept", "")
        body, content_type = protocol.client_list(members, subsystems,
                                                  as_json="application/json" in accept)
        return await self.local_answer(call, body, content_type)

    async def metaservice(self, call: Call, target: protocol.Target) -> web.Response:
        if call.request.method != "GET" or target.path:
            raise Refused(400, "Client.BadRequest", f"{target.service} is called with GET "
                                                    "and no path.")
        if not await self.registry.get(("provider", target.member, target.subsystem),
                                       selectors.provider_exists, target.member,
                                       target.subsystem):
            raise Refused(404, "Server.ServerProxy.UnknownService",
                          f"No provider {target.provider}.")
        if target.service == "getOpenAPI":
            query = parse_qs(call.request.raw_path.split("?", 1)[1]
                             if "?" in call.request.raw_path else "")
            code = (query.get("serviceCode") or [""])[0]
            text = await self.registry.get(("openapi", target.provider, code),
                                           selectors.openapi_of, target.member,
                                           target.subsystem, code) if code else None
            if not text:
                raise Refused(404, "Server.ServerProxy.UnknownService",
                              f"No OpenAPI description of {target.provider}/{code[:64]}.")
            server = settings.EXCHANGE_URL.rstrip("/") + f"/r1/{target.provider}/{code}"
            body, content_type = protocol.public_openapi(text, server)
            return await self.local_answer(call, body, content_type)
        caller_id = call.caller.subsystem_id if target.service == "allowedMethods" else None
        rows = await self.registry.get(("methods", target.provider, caller_id),
                                       selectors.method_listing, target.member,
                                       target.subsystem, caller_id)
        return await self.local_answer(call, protocol.method_list(target.provider, rows),
                                       protocol.JSON_TYPE)

    async def local_answer(self, call: Call, body: bytes, content_type: str) -> web.Response:
        """An answer the gateway gives itself (metaservices), logged like any exchange."""
        call.request_hash = protocol.b64(protocol.request_hash(
            call.request.method, call.target, _hashed_headers(call.request, call), b""))
        await self.log.record(call.record(status=200, response_bytes=len(body),
                                          response_sha256=hashlib.sha256(body).hexdigest()))
        return web.Response(status=200, body=body, headers={
            **call.headers(), "Content-Type": content_type, "Server": SERVER})

    # -- receipts and health --

    async def receipts(self, request: web.BaseRequest, x_road_id: str) -> web.Response:
        headers = {"X-Road-Request-Id": str(uuid.uuid4())}
        try:
            if request.method != "GET":
                raise ProtocolError(405, "Client.BadRequest", "Receipts are read with GET.")
            await self.registry.refresh()
            caller = await self.authenticate(request)
            if not protocol.valid_x_road_id(x_road_id):
                raise ProtocolError(400, "Client.BadRequest", "Not an X-Road-Id.")
            found, waiting = await self.registry.db(
                lambda: selectors.receipts(x_road_id=x_road_id,
                                           subsystem_id=caller.subsystem_id))
        except ProtocolError as exc:
            return self.error(request, exc, headers)
        if found:
            return web.json_response({"receipts": found}, headers={**headers, "Server": SERVER})
        if waiting:
            return web.json_response({"receipts": [], "waiting": waiting}, status=202,
                                     headers={**headers, "Retry-After": "1", "Server": SERVER})
        return self.error(request, ProtocolError(
            404, "Client.BadRequest", "No exchange of yours has this X-Road-Id."), headers)

    def health(self) -> web.Response:
        stuck = self.log.full() or self.log.age() > settings.EXCHANGE_LOG_ALERT_SECONDS
        return web.json_response({
            "status": "degraded" if stuck else "ok", "log_mode": "strict" if self.log.strict
            else "batch", "log_buffered": len(self.log.pending),
            "log_buffer_age_seconds": round(self.log.age(), 3),
            "refused_before_authentication": self.refused_anonymous},
            status=503 if stuck else 200, headers={"Server": SERVER})


def _peer_certificate(request: web.BaseRequest) -> bytes | None:
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport else None
    return ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None


def _is_gateway_token(name: str, value: str) -> bool:
    """The client's gateway token is for the gateway: it never reaches the provider,
    however the Authorization header spaces it (``Bearer  xrd_…``, a tab) or spells its
    scheme."""
    if name.lower() != "authorization":
        return False
    parts = value.split(None, 1)
    credentials = parts[1] if len(parts) == 2 and parts[0].lower() == "bearer" else value
    return credentials.strip().startswith(TOKEN_PREFIX[len("Bearer "):])


def _hashed_headers(request: web.BaseRequest, call: Call) -> list[tuple[bytes, bytes]]:
    dropped = protocol.filtered(request.headers.getall("Connection", []))
    headers = [(n, v) for n, v in request.raw_headers
               if n.lower().decode("latin-1") not in dropped
               and n.lower() not in (b"x-road-request-id", b"x-road-request-hash")
               and not _is_gateway_token(n.decode("latin-1"), v.decode("latin-1"))]
    if not any(n.lower() == b"x-road-id" for n, _ in headers):
        headers.append((b"X-Road-Id", call.x_road_id.encode()))
    headers.append((b"X-Road-Request-Id", call.request_id.encode()))
    return headers


# --- processes ------------------------------------------------------------------------------

# A new connection sends its first request line and headers within this time, or is
# closed: a stranger cannot hold the gateway's connections by sending them byte by byte
# (later requests on a kept-alive connection are bounded by aiohttp's keep-alive timeout).
HEAD_TIMEOUT_SECONDS = 10.0


class _Connection(RequestHandler):
    """aiohttp's connection handler, but what its HTTP/1.1 parser refuses (an HTTP/2
    preface sent with prior knowledge, a garbled request line) is answered with an X-Road
    error from ``Server: sahab``, not aiohttp's text page naming its version; and a
    connection whose first request does not arrive in ``HEAD_TIMEOUT_SECONDS`` is closed."""

    gateway: Gateway
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._head_timer = asyncio.get_running_loop().call_later(
            HEAD_TIMEOUT_SECONDS, self._head_timed_out, transport)

    def head_received(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self, transport) -> None:
        self._head_timer = None
        log.info("closed a connection that sent no request within %g s", HEAD_TIMEOUT_SECONDS)
        self.gateway.refused_anonymous += 1
        self.force_close()
        transport.close()

    def connection_lost(self, exc) -> None:
        self.head_received()
        super().connection_lost(exc)

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None, message: str | None = None
                     ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send another response")
        if status < 500:
            log.info("refused a request that is not HTTP/1.1 (%s)", type(exc).__name__)
            self.gateway.refused_anonymous += 1
            error = ProtocolError(status, "Client.BadRequest",
                                  "Not an HTTP/1.1 request: the gateway speaks HTTP/1.1 only "
                                  "(X-Road message protocol for REST).")
        else:
            log.error("the gateway failed on a request", exc_info=exc)
            error = ProtocolError(status, "Server.ServerProxy.InternalError",
                                  "The gateway could not handle the request.")
        response = self.gateway.error(request, error, {"X-Road-Request-Id": new_id()})
        response.force_close()
        return response


class _Server(web.Server):
    def __init__(self, gateway: Gateway, **kwargs) -> None:
        super().__init__(gateway.handle, **kwargs)
        self.gateway = gateway

    def __call__(self) -> RequestHandler:
        connection = _Connection(self, loop=self._loop, **self._kwargs)
        connection.gateway = self.gateway
        return connection


def server_ssl_context() -> ssl.SSLContext:
    """The TLS port: the platform's server certificate; client certificates of the
    platform CA are checked in the handshake (optional, so token clients may use it)."""
    from sahab.core import keys
    from sahab.exchange import ca

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(keys.tls_cert_path()), str(keys.tls_key_path()))
    context.load_verify_locations(cafile=str(ca.ca_cert_path()))
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


@dataclass
class Running:
    gateway: Gateway
    servers: list
    executor: ThreadPoolExecutor
    ports: tuple[int, int]

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()
        await self.gateway.log.close()
        await self.gateway.outbound.close()
        if self.gateway.registry.local_version is not None:
            self.gateway.registry.local_version.close()
        self.executor.shutdown(wait=True)


def prepare_keys() -> None:
    """Keys and certificates the gateway reads, made once before its processes start."""
    from sahab.core import keys
    from sahab.exchange import ca

    ca.ensure_ca()
    ca.ensure_gateway_certificate()
    keys.ensure_tls_certificate()
    messagelog.ensure_key()


async def start(host: str = "127.0.0.1", port: int | None = None,
                tls_port: int | None = None, *, reuse_port: bool = False) -> Running:
    """Listen on the plain and the TLS port (0: any free port) in this event loop."""
    executor = ThreadPoolExecutor(settings.EXCHANGE_DB_THREADS, thread_name_prefix="gateway-db")
    gateway = Gateway(executor, messagelog.MessageLog(executor), await Outbound().open())
    factory = _Server(gateway, access_log=None, max_field_size=16384)
    loop = asyncio.get_running_loop()
    plain = await loop.create_server(factory, host, settings.EXCHANGE_PORT if port is None
                                     else port, reuse_port=reuse_port or None)
    tls = await loop.create_server(factory, host, settings.EXCHANGE_TLS_PORT if tls_port is None
                                   else tls_port, ssl=server_ssl_context(),
                                   reuse_port=reuse_port or None)
    ports = (plain.sockets[0].getsockname()[1], tls.sockets[0].getsockname()[1])
    return Running(gateway, [plain, tls], executor, ports)


async def _serve(host: str) -> None:
    running = await start(host, reuse_port=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"sahab exchange: gateway on http://{host}:{running.ports[0]}/r1/ and "
          f"https://{host}:{running.ports[1]}/r1/ (process {os.getpid()})", flush=True)
    await stop.wait()
    await running.stop()


def serve(host: str = "127.0.0.1", processes: int | None = None) -> None:
    """Run the gateway in ``processes`` processes sharing its ports until SIGTERM."""
    import uvloop
    from django.db import connections

    prepare_keys()
    connections.close_all()  # no database connection may cross the fork
    children = []
    for _ in range(max(1, processes or settings.EXCHANGE_GATEWAY_PROCESSES) - 1):
        pid = os.fork()
        if pid == 0:
            try:
                uvloop.run(_serve(host))
            finally:
                os._exit(0)
        children.append(pid)
    try:
        uvloop.run(_serve(host))
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


class InThread:
    """The gateway on its own event loop in a thread of this process (tests, tools)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name="sahab-gateway")
        self.running: Running | None = None

    def __enter__(self) -> InThread:
        prepare_keys()
        self.thread.start()
        self.running = asyncio.run_coroutine_threadsafe(
            start(self.host, 0, 0), self.loop).result(30)
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.running.ports[0]}"

    @property
    def tls_url(self) -> str:
        return f"https://{self.host}:{self.running.ports[1]}"

    @property
    def gateway(self) -> Gateway:
        return self.running.gateway

    def run(self, coroutine, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            self.run(self.running.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


# --- health checks (the worker) ---------------------------------------------------------------

async def probe(targets: list[tuple[int, str, bool | None]], *, timeout: float
                ) -> dict[int, tuple[int | None, float]]:
    """GET each URL through the outbound policy: (status or None, milliseconds)."""
    client = await Outbound().open()
    results = {}
    try:
        for pk, url, allow_internal in targets:
            start = time.perf_counter()
            status = None
            if allow_internal is not None:
                try:
                    response = await client.send("GET", url, [
                        ("X-Road-Client", f"{protocol.INSTANCE}/{protocol.MEMBER_CLASS}/sahab"),
                        ("X-Road-Id", f"health-{pk}")], b"", allow_internal=allow_internal,
                        timeout=timeout)
                    status = response.status
                    response.release()
                except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
                    status = None
            results[pk] = (status, (time.perf_counter() - start) * 1000)
    finally:
        await client.close()
    return results
