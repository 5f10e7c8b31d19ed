"""Conformance with X-Road's message protocol for REST (PR-REST) and its metadata services
(PR-MREST), row by row of the table in docs/exchange.md: an X-Road information system
drives the gateway exactly as it would drive its security server."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import uuid
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

import httpx
import pytest

from sahab.exchange import services
from sahab.exchange.models import Message
from tests.exchange.conftest import Provider

DOC = Path(__file__).resolve().parents[2] / "docs" / "exchange.md"
DOC_RESERVED_CODES = ("listClients", "listMethods", "allowedMethods", "getOpenAPI", "getWsdl",
                      "listCentralServices")


class XRoadClient:
    """An information system speaking PR-REST r1: it names itself in X-Road-Client, sends
    its own X-Road-Id and reads errors by X-Road-Error and the body's ``type``."""

    def __init__(self, intranet, *, prefix: str = "/r1"):
        self.intranet, self.prefix = intranet, prefix

    def service_url(self, path: str = "", service=None) -> str:
        service = service or self.intranet.service
        return f"{self.prefix}/{service.identifier}" + (f"/{path}" if path else "")

    def send(self, method: str, target: str, headers: dict | None = None, body: bytes = b""):
        headers = {"X-Road-Client": self.intranet.client.identifier,
                   "Authorization": f"Bearer {self.intranet.token}",
                   "X-Road-Id": str(uuid.uuid4()), **(headers or {})}
        return self.intranet.raw(method, target, {k: v for k, v in headers.items() if v},
                                 body)


@pytest.fixture
def xroad(intranet):
    return XRoadClient(intranet)


def test_row_request_format_service_id_then_path_and_query(xroad):
    """4.1 `{method} /r1/{serviceId}[/path][?query]`; also under /exchange/r1."""
    for prefix in ("/r1", "/exchange/r1"):
        status, _, _ = XRoadClient(xroad.intranet, prefix=prefix).send(
            "GET", f"{prefix}/{xroad.intranet.service.identifier}/v1/persons/7?quu=1&a=%20b")
        assert status == 200
        assert Provider.seen[-1]["path"] == "/registry/v1/persons/7?quu=1&a=%20b"


def test_row_member_and_subsystem_level_clients(intranet):
    """4.1 X-Road-Client is `INSTANCE/CLASS/MEMBER[/SUBSYSTEM]`."""
    member = services.register_subsystem(actor=intranet.it_finances,
                                          administration=intranet.finances, code="")
    assert member.identifier == "TN/GOV/MF"
    token = services.issue_client_token(actor=intranet.it_finances, subsystem=member,
                                        name="ministry")[1]
    grant = services.request_grant(actor=intranet.it_finances, client=member,
                                   service=intranet.service, legal_basis="Loi", purpose="x")
    services.decide_grant(actor=intranet.it_interior, grant=grant, approve=True)
    response = intranet.call(token=token, client="TN/GOV/MF")
    assert response.status_code == 200 and response.headers["X-Road-Client"] == "TN/GOV/MF"
    assert Provider.seen[-1]["headers"]["X-Road-Client"] == "TN/GOV/MF"


def test_row_percent_encoded_identifier_parts(xroad):
    """4.2 each identifier part is percent-encoded UTF-8."""
    status, _, _ = xroad.send("GET", "/r1/TN/GOV/%4DI/ETAT-CIVIL/personnes/1",
                              {"X-Road-Client": "TN/GOV/M%46/IMPOTS"})
    assert status == 200


def test_row_request_uris_are_validated_and_limited(xroad):
    """4.2 strict validation, length limit (2000 characters)."""
    status, headers, _ = xroad.send("GET", xroad.service_url("a" * 2100))
    assert status == 414 and headers["x-road-error"] == "Client.BadRequest"
    status, headers, _ = xroad.send("GET", "/r1/TN/GOV/MI/ETAT CIVIL/personnes/1".replace(
        " ", "%20"))
    assert status == 400 and headers["x-road-error"] == "Client.InvalidServiceIdentifier"
    assert Provider.seen == []


def test_row_content_type_and_accept_pass_unmodified(xroad):
    """4.3 Content-Type and Accept reach the provider unmodified, and back."""
    status, headers, _ = xroad.send("POST", xroad.service_url("persons"), {
        "Content-Type": "multipart/form-data; boundary=something",
        "Accept": "application/xml;q=0.9"}, b"--something--")
    assert status == 200 and headers["content-type"] == "application/json"
    seen = Provider.seen[-1]["headers"]
    assert seen["Content-Type"] == "multipart/form-data; boundary=something"
    assert seen["Accept"] == "application/xml;q=0.9"


def test_row_user_defined_headers_pass_both_ways(xroad):
    """4.3 user-defined headers pass unmodified; JWTs for the provider too."""
    status, headers, _ = xroad.send("GET", xroad.service_url("x"), {
        "X-Powered-By": "PHP/5.2.17", "X-Pingback": "https://example.com/xmlrpc.php",
        "X-Road-Represented-Party": "COM/12345"})
    assert status == 200
    seen = Provider.seen[-1]["headers"]
    assert seen["X-Powered-By"] == "PHP/5.2.17"
    assert seen["X-Road-Represented-Party"] == "COM/12345"
    assert headers["x-internal-trace"] == "abc-123"
    assert headers["set-cookie"] == "session=provider-secret; HttpOnly"
    intranet = xroad.intranet
    certificate_user = intranet.call(headers={"Authorization": "Bearer eyJhbGciOi.jwt.sig"},
                                     token=None)
    assert certificate_user.status_code == 401  # a JWT is not a gateway credential…
    assert Provider.seen[-1]["headers"]["X-Powered-By"] == "PHP/5.2.17"


def test_row_filtered_headers_are_not_passed(xroad):
    """4.3 hop-by-hop headers and those naming the origin (Host, User-Agent, Server)."""
    status, headers, _ = xroad.send("GET", xroad.service_url("x"), {
        "User-Agent": "curl/8.0", "Connection": "keep-alive, X-Secret",
        "Keep-Alive": "timeout=5", "Proxy-Authorization": "Basic abc", "TE": "trailers",
        "Upgrade": "h2c", "X-Secret": "named in Connection"})
    assert status == 200
    seen = {k.lower() for k in Provider.seen[-1]["headers"]}
    assert not seen & {"user-agent", "keep-alive", "proxy-authorization", "te", "upgrade",
                       "authorization", "x-secret"}
    assert Provider.seen[-1]["headers"]["Host"].startswith("127.0.0.1:")  # the provider's
    assert headers["server"] == "sahab"  # not "Apache/2.4.1 (Debian)"


def test_row_cache_headers_pass_as_is(xroad):
    """4.3 X-Road caches nothing; cache headers pass."""
    status, headers, _ = xroad.send("GET", xroad.service_url("x"), {
        "Cache-Control": "no-cache", "Pragma": "no-cache"})
    assert status == 200 and headers["cache-control"] == "no-store"
    assert Provider.seen[-1]["headers"]["Pragma"] == "no-cache"


def test_row_x_road_id_is_kept_or_generated(xroad):
    """4.3 X-Road-Id: the client's, else a UUID; returned in the response."""
    _, headers, _ = xroad.send("GET", xroad.service_url("x"), {"X-Road-Id": "abc-1"})
    assert headers["x-road-id"] == "abc-1" == Provider.seen[-1]["headers"]["X-Road-Id"]
    _, headers, _ = xroad.send("GET", xroad.service_url("x"), {"X-Road-Id": None})
    assert uuid.UUID(headers["x-road-id"])
    status, headers, _ = xroad.send("GET", xroad.service_url("x"),
                                    {"X-Road-Id": "<script>alert(1)</script>"})
    assert status == 400 and headers["x-road-error"] == "Client.BadRequest"


def test_row_user_id_and_issue_reach_the_provider(xroad):
    """4.3 X-Road-UserId and X-Road-Issue."""
    xroad.send("GET", xroad.service_url("x"), {"X-Road-UserId": "TN12345678",
                                               "X-Road-Issue": "MT324223MSD"})
    seen = Provider.seen[-1]["headers"]
    assert seen["X-Road-UserId"] == "TN12345678" and seen["X-Road-Issue"] == "MT324223MSD"


def test_row_response_carries_the_x_road_headers_set_by_the_gateway(xroad):
    """4.3 X-Road-Client, -Service, -Id, -Request-Id, -Request-Hash; the provider's own
    values of these are overwritten (the test provider forges X-Road-Client and -Error)."""
    _, headers, _ = xroad.send("GET", xroad.service_url("x"))
    assert headers["x-road-client"] == "TN/GOV/MF/IMPOTS"
    assert headers["x-road-service"] == "TN/GOV/MI/ETAT-CIVIL/personnes"
    assert uuid.UUID(headers["x-road-request-id"])
    assert "x-road-error" not in headers  # the provider's forged one is dropped


def test_row_request_hash_is_computed_as_the_specification_says(xroad):
    """4.3 X-Road-Request-Hash = base64 SHA-512(SHA-512(headers) + SHA-512(body)); without
    a body, SHA-512(headers). The client recomputes it from what it sent."""
    for body in (b"", b'{"q": 42}'):
        sent = [("X-Road-Client", "TN/GOV/MF/IMPOTS"), ("X-Road-Id", "hash-1"),
                ("Accept", "application/json"), ("X-Custom", "v")]
        if body:
            sent.append(("Content-Type", "application/json"))
        target = xroad.service_url("persons/1") + "?a=1"
        status, headers, _ = xroad.intranet.raw(
            "POST" if body else "GET", target,
            {**dict(sent), "Authorization": f"Bearer {xroad.intranet.token}"}, body)
        assert status == 200
        # What the gateway hashes: method, URI, then the headers received in order
        # (without the filtered ones and the gateway token), then X-Road-Request-Id.
        received = [("Host", "ignored"), *sent]
        lines = [("POST" if body else "GET").encode(), target.encode()]
        lines += [f"{n}:{v}".encode() for n, v in received if n != "Host"]
        lines += [f"X-Road-Request-Id:{headers['x-road-request-id']}".encode()]
        head = hashlib.sha512(b"".join(line + b"\r\n" for line in lines)).digest()
        expected = head if not body else hashlib.sha512(
            head + hashlib.sha512(body).digest()).digest()
        assert base64.b64decode(headers["x-road-request-hash"]) == expected


def test_row_x_road_security_server_is_passed_as_a_user_header(xroad):
    """4.3 X-Road-Security-Server: one gateway, nothing to choose; it reaches the provider
    as any user-defined header, and the provider's own comes back."""
    status, _, _ = xroad.send("GET", xroad.service_url("x"), {
        "X-Road-Security-Server": "TN/GOV/MI/ss1"})
    assert status == 200
    assert Provider.seen[-1]["headers"]["X-Road-Security-Server"] == "TN/GOV/MI/ss1"


def test_row_soap_and_its_metaservices_are_answered_with_x_road_errors(xroad):
    """SOAP, getWsdl and listCentralServices are not offered: each gets an X-Road error (a
    4xx with X-Road-Error and its typed body), none reaches a provider."""
    envelope = (b'<?xml version="1.0"?><SOAP-ENV:Envelope xmlns:SOAP-ENV='
                b'"http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body/>'
                b'</SOAP-ENV:Envelope>')
    for target in ("/", "/cgi-bin/consumer_proxy"):
        status, headers, body = xroad.send("POST", target, {
            "Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""',
            "Accept": "text/xml"}, envelope)
        assert status == 404 and headers["x-road-error"] == "Client.BadRequest"
        assert ET.fromstring(body).findtext("type") == "Client.BadRequest"  # noqa: S314
    for target in ("/listCentralServices", "/r1/listCentralServices",
                   "/exchange/r1/listCentralServices"):
        status, headers, body = xroad.send("GET", target)
        assert status == 404 and headers["x-road-error"] == "Client.BadRequest"
        assert "no central services" in json.loads(body)["message"]
    provider = xroad.intranet.service.subsystem.identifier
    for target in (f"/r1/{provider}/getWsdl?serviceCode=personnes",
                   f"/r1/{provider}/listCentralServices"):
        status, headers, body = xroad.send("GET", target)
        assert status == 404
        assert headers["x-road-error"] == "Server.ServerProxy.UnknownService"
        assert "REST services only" in json.loads(body)["message"]
    assert Provider.seen == []
    assert Message.objects.filter(service=f"{provider}/getWsdl", status=404).count() == 1


def test_row_http2_is_answered_in_http_1_1(xroad):
    """HTTP/2 is not spoken: an h2c upgrade is answered in HTTP/1.1 (no 101, Upgrade and
    HTTP2-Settings never reach the provider); the HTTP/2 preface sent with prior knowledge
    gets a 400 X-Road error from the gateway; TLS negotiates no h2 by ALPN."""
    import ssl

    from sahab.core import keys

    intranet = xroad.intranet
    url = urlsplit(intranet.gateway.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall((f"GET {xroad.service_url('x')} HTTP/1.1\r\nHost: x\r\n"
                      f"X-Road-Client: TN/GOV/MF/IMPOTS\r\nAuthorization: Bearer "
                      f"{intranet.token}\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                      "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
                      ).encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")
    seen = {k.lower() for k in Provider.seen[-1]["headers"]}
    assert not seen & {"upgrade", "http2-settings", "connection"}
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"400"
    assert b"\r\nX-Road-Error: Client.BadRequest\r\n" in head
    assert b"\r\nServer: sahab\r\n" in head and b"aiohttp" not in answer
    assert json.loads(body)["type"] == "Client.BadRequest"
    context = ssl.create_default_context(cafile=str(keys.tls_cert_path()))
    context.check_hostname = False
    context.set_alpn_protocols(["h2", "http/1.1"])
    tls = urlsplit(intranet.gateway.tls_url)
    with socket.create_connection((tls.hostname, tls.port), timeout=10) as raw, \
            context.wrap_socket(raw) as sock:
        assert sock.selected_alpn_protocol() in (None, "http/1.1")
    assert len(Provider.seen) == 1


def test_row_redirects_pass_unmodified_and_are_not_followed(xroad):
    """4.4 a provider's redirect reaches the client with its Location."""
    status, headers, _ = xroad.send("GET", xroad.service_url("redirect"))
    assert status == 302 and headers["location"] == "http://127.0.0.1:9/elsewhere"
    assert len(Provider.seen) == 1


def test_row_query_parameters_pass_unmodified(xroad):
    """4.5 query parameters, encoding included, even repeated ones."""
    xroad.send("GET", xroad.service_url("x") + "?q=a%2Bb&q=c&empty=&%C3%A9=1")
    assert Provider.seen[-1]["path"].endswith("/x?q=a%2Bb&q=c&empty=&%C3%A9=1")


def test_row_provider_errors_are_returned_as_is(xroad):
    """4.6 category 1: the provider's error, without X-Road-Error."""
    status, headers, body = xroad.send("GET", xroad.service_url("broken"))
    assert status == 500 and "x-road-error" not in headers
    assert json.loads(body)["citizen"]


@pytest.mark.parametrize("accept,xml", [(None, False), ("application/json", False),
                                        ("application/xml", True), ("text/xml", True)])
def test_row_gateway_errors_have_x_road_error_and_a_typed_body(xroad, accept, xml):
    """4.6 categories 2 to 4: X-Road-Error, a body with type, message and detail, in the
    content type asked for (JSON by default), with its charset."""
    status, headers, body = xroad.send("GET", xroad.service_url("x"), {
        "Authorization": "Bearer xrd_nope", "Accept": accept})
    assert status == 401 and headers["x-road-error"] == "Client.Unauthorized"
    if xml:
        assert headers["content-type"] == "text/xml;charset=utf-8"
        root = ET.fromstring(body)  # noqa: S314 (the gateway's own answer)
        assert root.findtext("type") == "Client.Unauthorized" and root.findtext("message")
        assert root.findtext("detail") == headers["x-road-request-id"]
    else:
        assert headers["content-type"] == "application/json;charset=utf-8"
        document = json.loads(body)
        assert set(document) == {"type", "message", "detail"}
        assert document["type"] == "Client.Unauthorized"


def test_row_provider_failures_are_server_errors_with_x_road_error(xroad):
    """4.6 category 2: the provider did not answer."""
    status, headers, body = xroad.send("GET", xroad.service_url("hang"))
    assert status == 504 and headers["x-road-error"] == "Server.ServerProxy.ServiceTimeout"
    assert json.loads(body)["type"] == "Server.ServerProxy.ServiceTimeout"


def test_row_expect_100_continue_is_answered_by_the_gateway(xroad):
    """4.3 specially handled: Expect: 100-continue is answered locally."""
    url = urlsplit(xroad.intranet.gateway.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        head = (f"POST {xroad.service_url('persons')} HTTP/1.1\r\nHost: x\r\n"
                f"X-Road-Client: TN/GOV/MF/IMPOTS\r\nAuthorization: Bearer "
                f"{xroad.intranet.token}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        sock.sendall(head.encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"hello")
        assert b"200 OK" in sock.recv(4096)
    assert Provider.seen[-1]["body"] == b"hello" and "Expect" not in Provider.seen[-1]["headers"]


def test_row_any_payload_type_within_the_size_limit(xroad):
    """3.1 any payload; a configurable maximum message size."""
    payload = bytes(range(256)) * 40
    status, _, _ = xroad.send("PUT", xroad.service_url("blob"), {
        "Content-Type": "application/octet-stream"}, payload)
    assert status == 200 and Provider.seen[-1]["body"] == payload


def test_row_mutual_tls_between_client_and_gateway(intranet, tmp_path):
    """4.7 mutual TLS with client certificates; the certificate authenticates."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from sahab.core import keys

    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "x")])).sign(key, hashes.SHA256())
    record = services.issue_certificate(
        actor=intranet.it_finances, subsystem=intranet.client,
        csr_pem=csr.public_bytes(serialization.Encoding.PEM).decode())
    (tmp_path / "c.pem").write_text(record.pem)
    (tmp_path / "c.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    import ssl

    context = ssl.create_default_context(cafile=str(keys.tls_cert_path()))
    context.load_cert_chain(str(tmp_path / "c.pem"), str(tmp_path / "c.key"))
    with httpx.Client(verify=context, timeout=10) as http:
        url = f"{intranet.gateway.tls_url}/r1/{intranet.service.identifier}/x"
        ok = http.get(url, headers={"X-Road-Client": intranet.client.identifier})
        assert ok.status_code == 200
        services.revoke_certificate(actor=intranet.it_finances, certificate=record,
                                    reason="key lost")
        assert http.get(url, headers={"X-Road-Client": intranet.client.identifier}
                        ).status_code == 401


@pytest.mark.parametrize("accept", ["application/json", "*/*"])
def test_row_list_clients(intranet, accept):
    """PR-META 2: listClients (JSON when asked, the XML clientList otherwise)."""
    response = httpx.get(f"{intranet.gateway.url}/listClients", headers={
        "Authorization": f"Bearer {intranet.token}", "Accept": accept})
    assert response.status_code == 200
    if accept == "application/json":
        members = response.json()["member"]
        assert {"member_class": "GOV", "member_code": "MI", "subsystem_code": "ETAT-CIVIL",
                "object_type": "SUBSYSTEM", "xroad_instance": "TN"} in [m["id"] for m in members]
        assert any(m["id"]["object_type"] == "MEMBER" and m["id"]["member_code"] == "MF"
                   for m in members)
    else:
        root = ET.fromstring(response.content)  # noqa: S314 (the gateway's own answer)
        assert root.tag == "{http://x-road.eu/xsd/xroad.xsd}clientList"
        assert "ETAT-CIVIL" in response.text
    anonymous = httpx.get(f"{intranet.gateway.url}/listClients")
    assert anonymous.status_code == 401


def test_row_list_methods_and_allowed_methods(intranet):
    """PR-MREST 4: listMethods (every service of the provider), allowedMethods (those the
    caller may call, with the endpoints of its grant)."""
    services.update_service(actor=intranet.it_interior, service=intranet.service,
                            openapi=json.dumps({"openapi": "3.0.0", "info": {}, "paths": {
                                "/persons/{id}": {"get": {}, "delete": {}}}}))
    subsystem = intranet.service.subsystem
    services.register_service(actor=intranet.it_interior, subsystem=subsystem, code="actes",
                              name="Actes", base_url=intranet.service.base_url + "/actes",
                              owner="DSI")
    base = f"{intranet.gateway.url}/r1/{subsystem.identifier}"
    listed = httpx.get(f"{base}/listMethods", headers=intranet.headers()).json()["service"]
    assert [s["service_code"] for s in listed] == ["actes", "personnes"]
    personnes = listed[1]
    assert personnes["service_type"] == "OPENAPI" and personnes["object_type"] == "SERVICE"
    assert {"method": "GET", "path": "/persons/*"} in personnes["endpoint_list"]
    allowed = httpx.get(f"{base}/allowedMethods", headers=intranet.headers()).json()["service"]
    assert [s["service_code"] for s in allowed] == ["personnes"]
    other = httpx.get(f"{base}/allowedMethods", headers=intranet.headers(
        token=intranet.other_token, client=intranet.other.identifier)).json()
    assert other == {"service": []}
    assert not any(s["service_code"] in ("listMethods", "allowedMethods") for s in listed)
    assert Message.objects.filter(service=f"{subsystem.identifier}/listMethods").exists()


def test_row_get_openapi_serves_each_services_description(intranet):
    """PR-MREST 5: getOpenAPI?serviceCode=…; the servers point at the gateway, never at
    the provider's internal address."""
    document = {"openapi": "3.0.3", "info": {"title": "Personnes", "version": "1"},
                "servers": [{"url": "http://10.1.2.3:8080/internal"}],
                "paths": {"/persons/{id}": {"get": {}}}}
    services.update_service(actor=intranet.it_interior, service=intranet.service,
                            openapi=json.dumps(document))
    base = f"{intranet.gateway.url}/r1/{intranet.service.subsystem.identifier}"
    response = httpx.get(f"{base}/getOpenAPI?serviceCode=personnes", headers=intranet.headers())
    assert response.status_code == 200
    served = response.json()
    assert served["paths"] == document["paths"]
    assert "10.1.2.3" not in response.text and served["servers"][0]["url"].endswith(
        "/r1/TN/GOV/MI/ETAT-CIVIL/personnes")
    missing = httpx.get(f"{base}/getOpenAPI?serviceCode=nothing", headers=intranet.headers())
    assert missing.status_code == 404


def test_row_metaservice_codes_are_reserved(intranet):
    """Service codes of the metaservices cannot be registered."""
    from sahab.core.errors import InvalidInput
    from sahab.exchange import protocol

    # The doc's list (docs/exchange.md, "Registry") and the code's agree …
    assert set(DOC_RESERVED_CODES) == protocol.RESERVED_CODES
    doc = DOC.read_text()
    sentence = doc[doc.index("The codes `listClients`"):]
    sentence = sentence[:sentence.index("reserved for the metaservices")]
    assert set(re.findall(r"`(\w+)`", sentence)) == protocol.RESERVED_CODES
    # … and none of them can be registered.
    for code in sorted(protocol.RESERVED_CODES):
        with pytest.raises(InvalidInput):
            services.register_service(actor=intranet.it_interior,
                                      subsystem=intranet.service.subsystem, code=code,
                                      name="x", base_url=intranet.service.base_url, owner="x")


def test_row_access_rights_per_endpoint(intranet):
    """Security server: access rights per REST endpoint (method and path, wildcards)."""
    services.revoke_grant(actor=intranet.it_interior, grant=intranet.grant, reason="narrow")
    grant = services.request_grant(
        actor=intranet.it_finances, client=intranet.client, service=intranet.service,
        legal_basis="Loi", purpose="Lecture seule",
        endpoints=[{"method": "GET", "path": "/persons/*"},
                   {"method": "POST", "path": "/search/**"}])
    services.decide_grant(actor=intranet.it_interior, grant=grant, approve=True)
    assert intranet.call("persons/1").status_code == 200
    assert intranet.call("persons/1", method="DELETE").status_code == 403
    assert intranet.call("persons/1/children").status_code == 403
    assert intranet.call("search", method="POST").status_code == 200
    assert intranet.call("search/a/b/c", method="POST").status_code == 200
    denied = intranet.call("admin/users")
    assert denied.headers["X-Road-Error"] == "Server.ServerProxy.AccessDenied"
    assert [s["path"] for s in Provider.seen] == ["/registry/persons/1", "/registry/search",
                                                  "/registry/search/a/b/c"]


def test_every_row_of_the_conformance_table_names_an_existing_test():
    """docs/exchange.md: each row of the conformance table names at least one test, and
    every test it names is defined under tests/exchange/."""
    doc = DOC.read_text()
    section = doc[doc.index("### Conformance with X-Road"):]
    section = section[:section.index("\n## ")]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]
    assert len(rows) >= 25
    defined = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        defined |= set(re.findall(r"^(?:async )?def (test_\w+)\(", path.read_text(),
                                  flags=re.MULTILINE))
    for row in rows:
        cited = re.findall(r"`(test_\w+)`", row.rstrip(" |").rsplit("|", 1)[1])
        assert cited, f"no test named in: {row}"
        missing = [name for name in cited if name not in defined]
        assert not missing, f"{missing} cited in docs/exchange.md do not exist"
