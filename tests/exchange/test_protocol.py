"""The pieces of X-Road's REST protocol on their own: identifiers, endpoint patterns of
access rights, error documents, OpenAPI descriptions."""

import json

import pytest

from sahab.exchange import protocol
from sahab.exchange.protocol import Endpoint, ProtocolError


@pytest.mark.parametrize("header,expected", [
    ("TN/GOV/MF/IMPOTS", "TN/GOV/MF/IMPOTS"), ("TN/GOV/MF", "TN/GOV/MF"),
    ("TN/GOV/M%46/IMPOTS", "TN/GOV/MF/IMPOTS"),
])
def test_client_identifiers_of_members_and_subsystems(header, expected):
    assert str(protocol.parse_client(header)) == expected


@pytest.mark.parametrize("header", ["", "TN", "TN/GOV", "EE/GOV/MF", "TN/GOV/MF/A/B",
                                    "TN/GOV/M F", "TN/GOV/MF/" + "x" * 300])
def test_malformed_client_identifiers_are_refused(header):
    with pytest.raises(ProtocolError) as refused:
        protocol.parse_client(header)
    assert refused.value.status == 400


def test_service_targets_split_identifier_and_path():
    target = protocol.parse_target("TN/GOV/MI/ETAT-CIVIL/personnes/v1/a%20b/c")
    assert target.identifier == "TN/GOV/MI/ETAT-CIVIL/personnes" and target.path == "v1/a%20b/c"
    assert protocol.parse_target("TN/GOV/MI/ETAT-CIVIL/listMethods").is_metaservice


@pytest.mark.parametrize("granted,pattern,method,path,allowed", [
    ("GET", "/persons/*", "GET", "persons/1", True),
    ("GET", "/persons/*", "GET", "persons", False),
    ("GET", "/persons/*", "GET", "persons/1/x", False),
    ("GET", "/persons/*", "POST", "persons/1", False),
    ("GET", "/persons/**", "GET", "persons", True),
    ("GET", "/persons/**", "GET", "persons/1/2/3", True),
    ("*", "/**", "DELETE", "", True), ("GET", "/persons", "GET", "persons/", False),
    ("GET", "/persons/*", "GET", "persons/%2A", True), ("PUT", "/a/b", "PUT", "a/b", True),
    # "**" ends a prefix that must match in full, segment by segment
    ("GET", "/persons/**", "GET", "companies/1", False),
    ("GET", "/persons/*/docs/**", "GET", "persons/1/docs/a.pdf", True),
    ("GET", "/persons/*/docs/**", "GET", "persons/1/other", False),
    ("GET", "/persons/*/docs/**", "GET", "persons/1", False),
    # "/" is the root of the service, and only that
    ("GET", "/", "GET", "", True), ("GET", "/", "GET", "persons", False),
    ("GET", "/*", "GET", "", False),
])
def test_endpoint_patterns(granted, pattern, method, path, allowed):
    endpoint = protocol.parse_endpoints([{"method": granted, "path": pattern}])
    assert protocol.allowed(tuple(endpoint), method, path) is allowed


def test_endpoints_are_read_from_lines_and_checked():
    assert protocol.parse_endpoints("get /a/*\n\n* /b/**") == [Endpoint("GET", "/a/*"),
                                                                Endpoint("*", "/b/**")]
    for bad in ("GET a", "BREW /x", "GET /a/**/b", "GET /a/../b", [1], "GET /" + "a" * 400):
        with pytest.raises(ValueError):
            protocol.parse_endpoints(bad)
    for bad in ("GET /**/x", "GET /../x", "GET /a/./b"):  # the first segment counts too
        with pytest.raises(ValueError, match=r"^'\*\*' may only end a path; '\.' and '\.\.' "
                                             r"are not segments\.$"):
            protocol.parse_endpoints(bad)
    assert protocol.allowed((), "DELETE", "anything/at/all")  # no endpoints: whole service


def test_openapi_descriptions_give_the_endpoints_and_hide_the_provider():
    text = json.dumps({"openapi": "3.0.0", "servers": [{"url": "http://10.0.0.5/api"}],
                       "paths": {"/pets/{id}": {"get": {}, "parameters": []},
                                 "/pets": {"post": {}}}})
    assert set(protocol.openapi_endpoints(protocol.load_openapi(text))) == {
        Endpoint("GET", "/pets/*"), Endpoint("POST", "/pets")}
    body, content_type = protocol.public_openapi(text, "https://gw/r1/TN/GOV/MI/X/pets")
    assert b"10.0.0.5" not in body and content_type.startswith("application/json")
    yaml_body, yaml_type = protocol.public_openapi(
        "openapi: 3.1.0\npaths: {}\nservers: [{url: 'http://10.0.0.5'}]\n", "https://gw/x")
    assert b"10.0.0.5" not in yaml_body and yaml_type.startswith("text/yaml")
    bomb = "openapi: 3.0.0\npaths: {}\na: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    for bad in ("", "{", "swagger: '2.0'", "[1, 2]", "openapi: 3.0.0\npaths: 3", bomb,
                '{"openapi": "3.0.0", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"):
        with pytest.raises(ValueError):
            protocol.load_openapi(bad)


def test_error_documents_follow_the_accept_header():
    assert not protocol.wants_xml(None) and not protocol.wants_xml("*/*")
    assert protocol.wants_xml("text/xml, application/json")
    assert not protocol.wants_xml("application/json, text/xml")
    body, content_type = protocol.error_body("Client.BadRequest", "é <x>", "id-1")
    assert json.loads(body) == {"type": "Client.BadRequest", "message": "é <x>",
                                "detail": "id-1"}
    assert content_type == "application/json;charset=utf-8"
    xml, xml_type = protocol.error_body("Client.BadRequest", "é <x>", "id-1", xml=True)
    assert b"&lt;x&gt;" in xml and xml_type == "text/xml;charset=utf-8"


def test_the_request_hash_binds_headers_and_body():
    headers = [(b"X-Road-Client", b"TN/GOV/MF/IMPOTS"), (b"X-Road-Request-Id", b"r")]
    empty = protocol.request_hash("GET", b"/r1/x", headers, b"")
    assert len(empty) == 64
    assert protocol.request_hash("GET", b"/r1/x", headers, b"a") != empty
    assert protocol.request_hash("GET", b"/r1/x", headers[:1], b"") != empty
    assert protocol.request_hash("POST", b"/r1/x", headers, b"") != empty
