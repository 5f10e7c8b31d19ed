"""The security gateway at ``/exchange/r1/<service identifier>/<path>``.

It speaks X-Road's message protocol for REST: the client names itself in
``X-Road-Client`` and authenticates as that subsystem (bearer token); the gateway checks
the grant (deny by default) and its rate limit, forwards the request to the provider's
base URL, streams the answer back with ``X-Road-Client``, ``X-Road-Service``,
``X-Road-Id`` and ``X-Road-Request-Hash``, and keeps hashes, sizes, status and timing in
the message log (never the bodies). Failures inside the gateway carry ``X-Road-Error``
and an RFC 9457 problem body.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from sahab.core.problems import problem_response
from sahab.exchange import services
from sahab.exchange.models import INSTANCE, MEMBER_CLASS, Grant, Service
from sahab.ops import metrics

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
FORWARDED_HEADERS = ("Accept", "Accept-Language", "Content-Type", "If-None-Match",
                     "If-Modified-Since")
# Bodies are relayed byte for byte (iter_raw), so their length and encoding stay true.
RETURNED_HEADERS = ("Content-Type", "Content-Length", "Content-Encoding", "Content-Language",
                    "Cache-Control", "ETag", "Last-Modified", "Retry-After")
PASSED_X_ROAD = ("X-Road-UserId", "X-Road-Issue")

_http = httpx.Client(follow_redirects=False, limits=httpx.Limits(max_connections=200,
                                                                  max_keepalive_connections=50))


class GatewayError(Exception):
    def __init__(self, status: int, code: str, detail: str):
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _error(exc: GatewayError, headers: dict) -> HttpResponse:
    response = problem_response(exc.status, exc.code, exc.detail,
                                headers={**headers, "X-Road-Error": exc.code})
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="sahab exchange"'
    return response


def _parse_target(target: str) -> tuple[str, str, str]:
    """(service identifier, subsystem part, forwarded path) of ``TN/GOV/M/S/SVC/path``."""
    parts = target.split("/", 5)
    if len(parts) < 5 or parts[0] != INSTANCE or parts[1] != MEMBER_CLASS:
        raise GatewayError(400, "Client.InvalidServiceIdentifier",
                           f"The service identifier must read {INSTANCE}/{MEMBER_CLASS}/"
                           "<member>/<subsystem>/<service>.")
    path = parts[5] if len(parts) == 6 else ""
    segments = path.split("/")
    if any(s in (".", "..") for s in segments) or "\\" in path or "\x00" in path:
        raise GatewayError(400, "Client.InvalidRequest", "The forwarded path may not contain "
                                                         "'.', '..' or backslashes.")
    return "/".join(parts[:5]), "/".join(parts[:4]), path


class _Registry:
    """This process's cache of registry lookups (services, credentials, grants).

    Each request reads the registry's version (one indexed read); any change of a
    subsystem, service, grant, token or certificate bumps it, so revocations apply to
    the very next call while steady traffic costs no other query.
    """

    def __init__(self) -> None:
        self.version: int | None = None
        self.entries: dict = {}
        self.lock = threading.Lock()

    def refresh(self) -> None:
        """Read the registry's version (once per call) and drop stale lookups."""
        version = services.registry_version()
        with self.lock:
            if version != self.version:
                self.entries.clear()
                self.version = version

    def get(self, key, load):
        with self.lock:
            version = self.version
            if key in self.entries:
                return self.entries[key]
        value = load()
        with self.lock:
            if self.version == version:
                self.entries[key] = value
        return value


_registry = _Registry()


def _service(identifier: str) -> Service:
    def load():
        _, _, member, subsystem, code = identifier.split("/")
        return Service.objects.select_related("subsystem__administration").filter(
            subsystem__administration__code=member, subsystem__code=subsystem, code=code,
            active=True).first()

    service = _registry.get(("service", identifier), load)
    if service is None:
        raise GatewayError(404, "Client.UnknownService", f"No service {identifier}.")
    return service


def _client(request: HttpRequest) -> str:
    claimed = request.headers.get("X-Road-Client", "").strip()
    if not claimed:
        raise GatewayError(400, "Client.MissingHeader", "X-Road-Client is required.")
    parts = claimed.split("/")
    if len(parts) != 4 or parts[0] != INSTANCE or parts[1] != MEMBER_CLASS or \
            not all(parts) or len(claimed) > 300:
        raise GatewayError(400, "Client.InvalidClientIdentifier",
                           f"X-Road-Client must read {INSTANCE}/{MEMBER_CLASS}/<member>/"
                           "<subsystem>.")
    der = _peer_certificate(request)
    if der is not None:
        subsystem = _registry.get(("cert", hashlib.sha256(der).digest()),
                                  lambda: services.subsystem_for_certificate(der))
        if subsystem is not None and not services.certificate_in_date(der):
            subsystem = None
    else:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.startswith("Bearer ") else ""
        subsystem = _registry.get(("token", hashlib.sha256(token.encode()).digest()),
                                  lambda: services.subsystem_for_token(token))
    if subsystem is None:
        raise GatewayError(401, "Client.Unauthorized",
                           "Authenticate as the client subsystem: its certificate (mutual "
                           "TLS) or its gateway token.")
    if subsystem.identifier != claimed:
        raise GatewayError(403, "Client.InvalidClientIdentifier",
                           f"Authenticated as {subsystem.identifier}, not {claimed}.")
    return claimed


def _peer_certificate(request: HttpRequest) -> bytes | None:
    """The client certificate of a mutual-TLS connection (the gateway's TLS listener)."""
    sock = request.META.get("gunicorn.socket")
    if isinstance(sock, ssl.SSLSocket):
        return sock.getpeercert(binary_form=True)
    return None


def _grant(client: str, service: Service, now) -> Grant:
    grant = _registry.get(("grant", client, service.pk), lambda: Grant.objects.filter(
        client__administration__code=client.split("/")[2], client__code=client.split("/")[3],
        service=service, status=Grant.Status.APPROVED).order_by("-decided_at").first())
    if grant is None or not grant.usable(now):
        raise GatewayError(403, "Client.AccessDenied",
                           f"{client} has no valid grant for {service.identifier}.")
    return grant


class _RateLimiter:
    """Calls per grant and minute, counted in this process.

    With several gateway processes, each allows the grant's rate: operators divide the
    rates they grant by the number of processes when the limit must be strict.
    """

    def __init__(self) -> None:
        self.windows: dict[tuple[int, int], int] = {}
        self.lock = threading.Lock()

    def allow(self, grant: Grant, now) -> bool:
        minute = int(now.timestamp()) // 60
        with self.lock:
            if len(self.windows) > 10_000:
                self.windows = {k: v for k, v in self.windows.items() if k[1] >= minute}
            calls = self.windows.get((grant.pk, minute), 0)
            if calls >= grant.rate_per_minute:
                return False
            self.windows[(grant.pk, minute)] = calls + 1
            return True


_rates = _RateLimiter()


def _within_rate(grant: Grant, now) -> None:
    if not _rates.allow(grant, now):
        raise GatewayError(429, "Client.RateLimitExceeded",
                           f"The grant allows {grant.rate_per_minute} calls a minute.")


def _body(request: HttpRequest) -> bytes:
    if request.headers.get("Transfer-Encoding") and request.headers.get("Content-Length"):
        raise GatewayError(400, "Client.InvalidRequest",
                           "Content-Length and Transfer-Encoding together are refused.")
    limit = settings.EXCHANGE_MAX_BODY_BYTES
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise GatewayError(400, "Client.InvalidRequest", "Content-Length is not a number.") \
            from None
    if declared > limit:
        raise GatewayError(413, "Client.RequestTooLarge", f"Bodies are {limit} bytes at most.")
    body = request.body
    if len(body) > limit:
        raise GatewayError(413, "Client.RequestTooLarge", f"Bodies are {limit} bytes at most.")
    return body


def request_hash(method: str, path: str, query: str, body: bytes) -> bytes:
    """SHA-256 of the request as forwarded: method, path, query string and body."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode()):
        digest.update(part + b"\n")
    digest.update(body)
    return digest.digest()


@csrf_exempt
def gateway(request: HttpRequest, target: str) -> HttpResponse:
    started, clock = timezone.now(), time.perf_counter()
    x_road_id = (request.headers.get("X-Road-Id") or str(uuid.uuid4()))[:100]
    headers = {"X-Road-Id": x_road_id}
    log = {"x_road_id": x_road_id, "client": request.headers.get("X-Road-Client", "")[:300],
           "service": "", "method": request.method[:10],
           "path_sha256": hashlib.sha256(target.encode()).hexdigest(),
           "user_id": request.headers.get("X-Road-UserId", "")[:200],
           "issue": request.headers.get("X-Road-Issue", "")[:200], "request_sha256": "",
           "started_at": started}
    try:
        if request.method not in METHODS:
            raise GatewayError(405, "Client.InvalidRequest", f"{request.method} is not relayed.")
        identifier, _, path = _parse_target(target)
        _registry.refresh()
        log["service"], headers["X-Road-Service"] = identifier, identifier
        service = _service(identifier)
        client = _client(request)
        headers["X-Road-Client"] = client
        grant = _grant(client, service, started)
        log["grant"] = grant
        body = _body(request)
        query = request.META.get("QUERY_STRING", "")
        digest = request_hash(request.method, path, query, body)
        headers["X-Road-Request-Hash"] = base64.b64encode(digest).decode()
        log.update(request_sha256=digest.hex(), request_bytes=len(body))
        _within_rate(grant, started)
        return _forward(request, service, path, query, body, headers, log, clock)
    except GatewayError as exc:
        services.log_message(**log, status=exc.status, error=exc.code,
                             duration_ms=(time.perf_counter() - clock) * 1000)
        metrics.observe_gateway("", exc.status, time.perf_counter() - clock)
        return _error(exc, headers)


def _forward(request, service: Service, path: str, query: str, body: bytes, headers: dict,
             log: dict, clock: float) -> HttpResponse:
    url = f"{service.base_url}/{path}" + (f"?{query}" if query else "")
    outgoing = {name: request.headers[name] for name in FORWARDED_HEADERS
                if name in request.headers}
    outgoing.update({name: request.headers[name] for name in PASSED_X_ROAD
                     if name in request.headers})
    outgoing["Accept-Encoding"] = request.headers.get("Accept-Encoding", "identity")
    outgoing.update({"X-Road-Client": headers["X-Road-Client"],
                     "X-Road-Service": headers["X-Road-Service"],
                     "X-Road-Id": headers["X-Road-Id"]})
    upstream_request = _http.build_request(request.method, url, content=body, headers=outgoing,
                                           timeout=httpx.Timeout(service.timeout_seconds))
    try:
        upstream = _http.send(upstream_request, stream=True)
    except httpx.TimeoutException:
        raise GatewayError(504, "Server.ServiceTimeout",
                           f"{service.identifier} did not answer within "
                           f"{service.timeout_seconds} s.") from None
    except httpx.HTTPError as exc:
        raise GatewayError(502, "Server.ServiceFailed",
                           f"{service.identifier} is unreachable ({type(exc).__name__}).") \
            from None
    response = StreamingHttpResponse(_relay(upstream, log, clock), status=upstream.status_code)
    for name in RETURNED_HEADERS:
        if name in upstream.headers:
            response[name] = upstream.headers[name]
    for name, value in headers.items():
        response[name] = value
    return response


def _relay(upstream: httpx.Response, log: dict, clock: float) -> Iterator[bytes]:
    """Stream the provider's answer, hashing it; log the exchange once it is complete.

    The last chunk leaves after the exchange is logged: a client that received the whole
    answer knows it is in the message log (with ``SAHAB_EXCHANGE_LOG_BATCH_SECONDS=0``),
    even if the process dies right after.
    """
    digest, size, error = hashlib.sha256(), 0, ""
    held = None
    try:
        for chunk in upstream.iter_raw():
            digest.update(chunk)
            size += len(chunk)
            if held is not None:
                yield held
            held = chunk
    except httpx.HTTPError:
        error = "Server.ServiceFailed"  # the provider broke off in the middle
    finally:
        upstream.close()
        services.log_message(**log, status=upstream.status_code, error=error,
                             response_sha256=digest.hexdigest(), response_bytes=size,
                             duration_ms=(time.perf_counter() - clock) * 1000)
        metrics.observe_gateway(log["service"], upstream.status_code,
                                time.perf_counter() - clock)
    if held is not None:
        yield held
