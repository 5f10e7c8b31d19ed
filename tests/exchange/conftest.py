"""Two administrations on the intranet: the ministry of the interior provides a
civil-registry lookup (a real HTTP server on 127.0.0.1, on a host a platform
administrator registered for it), the ministry of finance's tax system calls it through
the gateway, which runs on its own event loop with its thread pool, as in production."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from sahab.core import keys
from sahab.directory.models import Role
from sahab.directory.selectors import SYSTEM
from sahab.exchange import services
from sahab.exchange.gateway import InThread
from sahab.ledger import services as ledger
from tests import factories


class Provider(BaseHTTPRequestHandler):
    """A civil-registry service: echoes what reached it; can hang, fail, redirect, set
    cookies or break off in the middle of its answer."""

    seen: list[dict] = []
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep the test output clean
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Provider.seen.append({"method": self.command, "path": self.path,
                              "headers": dict(self.headers), "body": body,
                              "raw_headers": list(self.headers.items())})
        if "/hang-long" in self.path:
            time.sleep(12)
        elif "/hang" in self.path:
            time.sleep(4)
        if "/redirect" in self.path:
            self._send(302, b"", {"Location": "http://127.0.0.1:9/elsewhere"})
            return
        if "/half" in self.path:  # promises 1000 bytes, sends 10 and hangs up
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
            return
        payload = json.dumps({"path": self.path, "client": self.headers.get("X-Road-Client"),
                              "citizen": {"id": "09876543", "name": "Sonia Gharbi"},
                              "received": len(body)}).encode()
        if "/big" in self.path:
            payload = b"x" * 300_000
        status = 500 if "/broken" in self.path else 200
        self._send(status, payload if self.command != "HEAD" else b"", {
            "Content-Type": "application/json", "X-Internal-Trace": "abc-123",
            "Set-Cookie": "session=provider-secret; HttpOnly", "Server": "Apache/2.4.1 (Debian)",
            "X-Road-Error": "Server.Forged", "X-Road-Client": "TN/GOV/XX/FORGED",
            "Cache-Control": "no-store"}, length=len(payload))

    def _send(self, status: int, payload: bytes, headers: dict, length: int | None = None):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload) if length is None else length))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _answer


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    # The gateway opens a connection per concurrent call: with socketserver's backlog of 5,
    # a burst of them overflows it and the dropped SYNs are retried a second later.
    request_queue_size = 128

    def handle_error(self, request, client_address):  # broken pipes of hung-up clients
        pass


@pytest.fixture(scope="session")
def provider_server():
    server = QuietServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def provider_url(provider_server):
    return f"http://127.0.0.1:{provider_server.server_address[1]}/registry"


@dataclass
class Intranet:
    gateway: InThread
    interior: object
    finances: object
    service: object
    client: object
    other: object
    token: str
    other_token: str
    grant: object
    it_interior: object
    it_finances: object
    host: object

    @property
    def base(self) -> str:
        return f"{self.gateway.url}/r1/{self.service.identifier}"

    def headers(self, *, token=None, client=None, **extra) -> dict:
        headers = {"Authorization": f"Bearer {token or self.token}",
                   "X-Road-Client": client or self.client.identifier}
        headers.update(extra)
        return {k: v for k, v in headers.items() if v is not None}

    def raw(self, method: str, target: str, headers: dict | None = None, body: bytes = b""
            ) -> tuple[int, dict, bytes]:
        """A request sent exactly as written (no client-side normalisation of the path)."""
        return raw_request(self.gateway.url, method, target, headers or self.headers(), body)

    def call(self, path: str = "persons/09876543", *, method: str = "GET", token=None,
             client=None, headers=None, **kwargs) -> httpx.Response:
        return httpx.request(method, f"{self.base}/{path}",
                             headers=self.headers(token=token, client=client, **(headers or {})),
                             timeout=15, **kwargs)


def raw_request(base: str, method: str, target: str, headers: dict, body: bytes = b""
                ) -> tuple[int, dict, bytes]:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        connection.putrequest(method, target, skip_host=False, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        if body:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, \
            response.read()
    finally:
        connection.close()


@pytest.fixture
def gateway(transactional_db, sahab_home, settings):
    """The gateway in this process, on free ports; every registry change applies to the
    next call, and every log record is committed before its answer ends."""
    settings.EXCHANGE_REGISTRY_MAX_AGE_SECONDS = 0
    settings.EXCHANGE_LOG_BATCH_SECONDS = 0
    settings.EXCHANGE_ALLOW_HTTP_PROVIDERS = True
    keys.ensure_ledger_key()
    ledger._signer.cache_clear()
    with InThread() as running:
        yield running


@pytest.fixture
def intranet(gateway, provider_url):
    Provider.seen.clear()
    interior = factories.administration(code="MI")
    finances = factories.administration(code="MF")
    it_interior = factories.agent(administration=interior, roles=[Role.IT_OFFICER]).user
    it_finances = factories.agent(administration=finances, roles=[Role.IT_OFFICER]).user
    port = int(provider_url.rsplit(":", 1)[1].split("/")[0])
    host = services.register_provider_host(
        actor=SYSTEM, administration=interior, host="127.0.0.1", port=port,
        path_prefix="/registry", allow_internal=True, note="Backends of the interior")
    registry = services.register_subsystem(actor=it_interior, administration=interior,
                                           code="ETAT-CIVIL", name="État civil")
    service = services.register_service(
        actor=it_interior, subsystem=registry, code="personnes", name="Recherche de personnes",
        base_url=provider_url, owner="DSI du ministère de l'Intérieur",
        classification="confidential", timeout_seconds=2)
    tax = services.register_subsystem(actor=it_finances, administration=finances,
                                      code="IMPOTS", name="Système fiscal")
    other = services.register_subsystem(actor=it_finances, administration=finances,
                                        code="DOUANE", name="Douane")
    grant = services.request_grant(actor=it_finances, client=tax, service=service,
                                   legal_basis="Code des droits et procédures fiscaux, art. 17",
                                   purpose="Vérifier l'identité des contribuables")
    services.decide_grant(actor=it_interior, grant=grant, approve=True, rate_per_minute=30)
    grant.refresh_from_db()
    token = services.issue_client_token(actor=it_finances, subsystem=tax, name="prod")[1]
    other_token = services.issue_client_token(actor=it_finances, subsystem=other, name="p")[1]
    return Intranet(gateway=gateway, interior=interior, finances=finances, service=service,
                    client=tax, other=other, token=token, other_token=other_token, grant=grant,
                    it_interior=it_interior, it_finances=it_finances, host=host)
