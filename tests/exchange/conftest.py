"""Two administrations on the intranet: the ministry of the interior provides a
civil-registry lookup (a real HTTP server on 127.0.0.1), the ministry of finance's tax
system calls it through the gateway."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client

from sahab.core import keys
from sahab.directory.models import Role
from sahab.exchange import services
from sahab.ledger import services as ledger
from tests import factories


class Provider(BaseHTTPRequestHandler):
    """A civil-registry service: echoes what reached it, can be slow or hang."""

    seen: list[dict] = []

    def log_message(self, *args):  # keep the test output clean
        pass

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        Provider.seen.append({"method": self.command, "path": self.path,
                              "headers": dict(self.headers), "body": body})
        if "/hang" in self.path:
            time.sleep(3)
        payload = json.dumps({"path": self.path, "client": self.headers.get("X-Road-Client"),
                              "citizen": {"id": "09876543", "name": "Sonia Gharbi"},
                              "received": len(body)}).encode()
        status = 500 if "/broken" in self.path else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Internal-Secret", "not for clients")
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = _answer


@pytest.fixture(scope="session")
def provider_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/registry"
    server.shutdown()


@dataclass
class Intranet:
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

    def call(self, path: str = "persons/09876543", *, method: str = "get", token=None,
             client=None, **extra):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token or self.token}",
                   "HTTP_X_ROAD_CLIENT": client or self.client.identifier}
        headers.update(extra)
        return getattr(Client(), method)(
            f"/exchange/r1/{self.service.identifier}/{path}", **headers)


@pytest.fixture(autouse=True)
def _fresh_gateway_state():
    """Each test starts with empty per-process caches and rate counters (ids and registry
    versions repeat from test to test, as each test's data is rolled back)."""
    from sahab.exchange import gateway

    gateway._registry.entries.clear()
    gateway._registry.version = None
    gateway._rates.windows.clear()


@pytest.fixture
def intranet(db, sahab_home, provider_url):
    keys.ensure_ledger_key()
    ledger._signer.cache_clear()
    Provider.seen.clear()
    interior = factories.administration(code="MI")
    finances = factories.administration(code="MF")
    it_interior = factories.agent(administration=interior, roles=[Role.IT_OFFICER]).user
    it_finances = factories.agent(administration=finances, roles=[Role.IT_OFFICER]).user
    registry = services.register_subsystem(actor=it_interior, administration=interior,
                                           code="ETAT-CIVIL", name="État civil")
    service = services.register_service(
        actor=it_interior, subsystem=registry, code="personnes", name="Recherche de personnes",
        base_url=provider_url, owner="DSI du ministère de l'Intérieur",
        classification="confidential", timeout_seconds=1)
    tax = services.register_subsystem(actor=it_finances, administration=finances,
                                      code="IMPOTS", name="Système fiscal")
    other = services.register_subsystem(actor=it_finances, administration=finances,
                                        code="DOUANE", name="Douane")
    grant = services.request_grant(actor=it_finances, client=tax, service=service,
                                   legal_basis="Code des droits et procédures fiscaux, art. 17",
                                   purpose="Vérifier l'identité des contribuables")
    services.decide_grant(actor=it_interior, grant=grant, approve=True, rate_per_minute=5)
    grant.refresh_from_db()
    token = services.issue_client_token(actor=it_finances, subsystem=tax, name="prod")[1]
    other_token = services.issue_client_token(actor=it_finances, subsystem=other, name="p")[1]
    return Intranet(interior=interior, finances=finances, service=service, client=tax,
                    other=other, token=token, other_token=other_token, grant=grant,
                    it_interior=it_interior, it_finances=it_finances)
