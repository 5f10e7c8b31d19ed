"""No request forgery through the exchange: a service's base URL must be on a host a
platform administrator registered for its administration, internal addresses only where
that registration allows them, names resolved and checked for each connection, and the
gateway's errors say nothing about the networks behind it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading

import httpx
import pytest

from sahab.core.errors import InvalidInput, PermissionDenied
from sahab.directory.selectors import SYSTEM
from sahab.exchange import outbound, services
from sahab.exchange.models import Grant, Message, Service
from sahab.ledger import services as ledger
from tests.exchange.conftest import Provider


def test_an_it_officer_cannot_point_a_service_at_another_ministrys_backend(intranet):
    """Finding: an IT officer registered an exchange service whose base URL was another
    ministry's backend, granted it to themself and read that ministry's data through the
    gateway while the direct call was refused."""
    impots = intranet.client  # TN/GOV/MF/IMPOTS, the officer's own subsystem
    size, count = ledger.tree_size(), Service.objects.count()
    with pytest.raises(InvalidInput, match="registered for MF"):
        services.register_service(actor=intranet.it_finances, subsystem=impots,
                                  code="miroir", name="Miroir", owner="DSI MF",
                                  base_url=intranet.service.base_url)  # the interior's backend
    with pytest.raises(InvalidInput):  # nor its OpenAPI URL
        services.register_service(actor=intranet.it_finances, subsystem=impots, code="m",
                                  name="m", owner="x", base_url="https://impots.mf.gov.tn/x",
                                  openapi_url=intranet.service.base_url + "/openapi.json")
    with pytest.raises(PermissionDenied):  # nor register the host for their ministry
        services.register_provider_host(actor=intranet.it_finances,
                                        administration=intranet.finances, host="127.0.0.1",
                                        port=intranet.host.port, allow_internal=True)
    assert Service.objects.count() == count and ledger.tree_size() == size


def test_a_base_url_written_into_the_database_by_hand_is_not_followed(intranet):
    """An insider who writes another ministry's backend into a service row (and a grant
    for it) gets nothing: the gateway checks the host again for every call."""
    from sahab.exchange.models import Subsystem

    impots = Subsystem.objects.get(pk=intranet.client.pk)
    mirror = Service.objects.create(subsystem=impots, code="miroir", name="Miroir",
                                    owner="x", base_url=intranet.service.base_url)
    Grant.objects.create(client=intranet.other, service=mirror, legal_basis="x", purpose="x",
                         status=Grant.Status.APPROVED)
    services.bump_registry_version()
    answer = httpx.get(f"{intranet.gateway.url}/r1/{mirror.identifier}/persons/09876543",
                       headers=intranet.headers(token=intranet.other_token,
                                                client=intranet.other.identifier))
    assert answer.status_code == 502
    assert answer.json()["message"] == "The service could not be reached."
    assert Provider.seen == []  # the interior's backend saw nothing
    assert Message.objects.get(service=mirror.identifier).status == 502


def test_internal_addresses_need_a_registration_that_allows_them(intranet, settings):
    """Loopback, link-local and private addresses are refused unless a platform
    administrator registered them explicitly; a name is checked on what it resolves to."""
    port = intranet.host.port
    services.register_provider_host(actor=SYSTEM, administration=intranet.finances,
                                    host="127.0.0.1", port=port, path_prefix="/mf")
    with pytest.raises(InvalidInput, match="internal address"):
        services.register_service(actor=SYSTEM, subsystem=intranet.client, code="lo",
                                  name="lo", owner="x",
                                  base_url=f"http://127.0.0.1:{port}/mf")
    services.register_provider_host(actor=SYSTEM, administration=intranet.finances,
                                    host="localhost", port=port, path_prefix="/mf")
    by_name = services.register_service(actor=SYSTEM, subsystem=intranet.client,
                                        code="byname", name="x", owner="x",
                                        base_url=f"http://localhost:{port}/mf/data")
    grant = services.request_grant(actor=SYSTEM, client=intranet.other, service=by_name,
                                   legal_basis="x", purpose="x")
    services.decide_grant(actor=SYSTEM, grant=grant, approve=True)
    headers = intranet.headers(token=intranet.other_token, client=intranet.other.identifier)
    refused = httpx.get(f"{intranet.gateway.url}/r1/{by_name.identifier}/x", headers=headers)
    assert refused.status_code == 502 and Provider.seen == []  # localhost is 127.0.0.1


def test_errors_do_not_tell_a_closed_port_from_an_open_one(intranet):
    """Finding: the gateway's error named the exception class, a port-scan oracle."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def hang_up():  # an open port that speaks no HTTP
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                conn.close()
            except OSError:
                pass

    threading.Thread(target=hang_up, daemon=True).start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    answers = []
    try:
        for port in (closed_port, listener.getsockname()[1]):
            answers.append(_probe(intranet, port))
    finally:
        stop.set()
        listener.close()
    assert [a.status_code for a in answers] == [502, 502]
    bodies = [{k: v for k, v in a.json().items() if k != "detail"} for a in answers]
    assert bodies[0] == bodies[1] == {"type": "Server.ServerProxy.ServiceFailed",
                                      "message": "The service could not be reached."}
    for answer in answers:
        assert "Error" not in answer.json()["message"] and "refused" not in answer.text.lower()
    assert len({m.error for m in Message.objects.filter(status=502)}) == 1


def _probe(intranet, port: int) -> httpx.Response:
    services.register_provider_host(actor=SYSTEM, administration=intranet.interior,
                                    host="127.0.0.1", port=port, allow_internal=True)
    probe = services.register_service(
        actor=intranet.it_interior, subsystem=intranet.service.subsystem,
        code=f"f{port}", name="p", owner="x", base_url=f"http://127.0.0.1:{port}/x")
    grant = services.request_grant(actor=intranet.it_finances, client=intranet.client,
                                   service=probe, legal_basis="x", purpose="x")
    services.decide_grant(actor=intranet.it_interior, grant=grant, approve=True)
    return httpx.get(f"{intranet.gateway.url}/r1/{probe.identifier}/",
                     headers=intranet.headers(), timeout=30)


def test_a_filtered_port_reads_like_a_closed_one(intranet, settings, caplog):
    """Finding: a provider's connection time-out answered 504 with its own text while a
    refused connection answered 502, so a caller told a filtered port from a closed one.
    Both now get the same status, X-Road error and message; the operator's log says
    which it was. (A provider that took the call and did not answer in time is still a
    504 ServiceTimeout, test_gateway.py: that is the provider's own service, not a port.)"""
    settings.EXCHANGE_CONNECT_TIMEOUT_SECONDS = 0.5
    filtered = socket.socket()  # a full accept queue: the kernel drops further SYNs
    filtered.bind(("127.0.0.1", 0))
    filtered.listen(0)
    filler = socket.create_connection(filtered.getsockname())
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        answers = [_probe(intranet, port) for port in (closed_port, filtered.getsockname()[1])]
    finally:
        filler.close()
        filtered.close()
    assert [a.status_code for a in answers] == [502, 502]
    assert {a.headers["X-Road-Error"] for a in answers} == {"Server.ServerProxy.ServiceFailed"}
    bodies = [{k: v for k, v in a.json().items() if k != "detail"} for a in answers]
    assert bodies[0] == bodies[1] == {"type": "Server.ServerProxy.ServiceFailed",
                                      "message": "The service could not be reached."}
    assert [m.error for m in Message.objects.filter(status=502).order_by("pk")] == [
        "Server.ServerProxy.ServiceFailed"] * 2
    assert "NotConnected: no connection to 127.0.0.1" in caplog.text


def test_plain_http_providers_only_where_allowed(intranet, settings):
    settings.EXCHANGE_ALLOW_HTTP_PROVIDERS = False
    with pytest.raises(InvalidInput, match="https"):
        services.register_service(actor=intranet.it_interior,
                                  subsystem=intranet.service.subsystem, code="h", name="h",
                                  owner="x", base_url=intranet.service.base_url + "/h")


@pytest.mark.parametrize("url", [
    "https://user:pw@api.mi.gov.tn/x", "https://api.mi.gov.tn/x?a=1", "https://api.mi.gov.tn/#x",
    "https://api.mi.gov.tn/a/../b", "https://api.mi.gov.tn/a/%2e%2e/b", "https://api.mi.gov.tn/a%2fb",
    "ftp://api.mi.gov.tn/x", "https://api .mi.gov.tn/", "https://[::1", "https://api.mi.gov.tn:99999/",
])
def test_provider_urls_are_refused_when_they_could_escape_their_host(url):
    with pytest.raises(InvalidInput):
        outbound.parse_url(url)


def test_names_are_resolved_once_per_connection_and_checked():
    """The resolver the connections use keeps only allowed addresses: the connection goes
    to the very addresses checked, never to a second answer of the DNS."""
    public_only = outbound.PinnedResolver(allow_internal=False)
    internal_ok = outbound.PinnedResolver(allow_internal=True)

    async def resolve():
        try:
            with pytest.raises(OSError):
                await public_only.resolve("localhost", 443)
            found = await internal_ok.resolve("localhost", 443)
            return {r["host"] for r in found}
        finally:
            await public_only.close()
            await internal_ok.close()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a loop of its own
        assert pool.submit(asyncio.run, resolve()).result() <= {"127.0.0.1", "::1"}
    for address, allowed in [("10.0.0.1", False), ("169.254.169.254", False),
                             ("192.168.1.1", False), ("::ffff:127.0.0.1", False),
                             ("0.0.0.0", False), ("224.0.0.1", False),  # noqa: S104
                             ("196.203.4.1", True),
                             ("2001:4860:4860::8888", True)]:
        assert outbound.address_allowed(address, allow_internal=False) is allowed


def test_the_gateway_shows_providers_its_own_certificate(client, sahab_home):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from sahab.exchange import ca

    pem = client.get("/exchange/gateway.pem").content
    certificate = x509.load_pem_x509_certificate(pem)
    assert certificate.subject == ca.GATEWAY_NAME
    assert ca.is_gateway_certificate(certificate.public_bytes(Encoding.DER))
