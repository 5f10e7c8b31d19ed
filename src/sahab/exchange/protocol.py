"""X-Road's message protocol for REST (PR-REST 1.x) and its metadata services (PR-MREST),
as far as sahab speaks them: identifiers, which headers pass, the request hash, endpoint
patterns of access rights, error bodies and the metaservices' documents.

Pure functions over bytes and strings: the gateway calls them, tests check them alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from urllib.parse import unquote
from xml.etree import ElementTree as ET

INSTANCE = "TN"
MEMBER_CLASS = "GOV"
PROTOCOL = "r1"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
METASERVICES = frozenset({"listMethods", "allowedMethods", "getOpenAPI"})
# X-Road's SOAP-era metaservices: reserved, answered with an error (sahab relays REST only).
UNSUPPORTED_METASERVICES = frozenset({"listCentralServices", "getWsdl"})
RESERVED_CODES = METASERVICES | {"listClients"} | UNSUPPORTED_METASERVICES
MAX_TARGET = 2000  # request URIs longer than this are refused (PR-REST 4.2)
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
X_ROAD_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")

# Hop-by-hop headers and those that would tell the origin's name or software (PR-REST
# 4.3 "Filtered headers"), plus what the gateway recomputes itself.
FILTERED = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                      "te", "trailer", "transfer-encoding", "upgrade", "host", "user-agent",
                      "server", "content-length", "expect", "http2-settings"})
# X-Road headers the gateway sets; a client's or provider's own values are dropped.
GATEWAY_HEADERS = frozenset({"x-road-client", "x-road-service", "x-road-id",
                             "x-road-request-id", "x-road-request-hash", "x-road-error"})
JSON_TYPE = "application/json;charset=utf-8"


def gateway_header(name: str) -> bool:
    """Whether a header is one the gateway sets, however it is spelt: WSGI, CGI and
    FastCGI servers read ``X_Road_Client`` as ``X-Road-Client`` (both become
    ``HTTP_X_ROAD_CLIENT``), so a client's or provider's header of that spelling would
    speak for the gateway."""
    return name.lower().replace("_", "-") in GATEWAY_HEADERS


def filtered(connection_values: list[str]) -> frozenset[str]:
    """The filtered headers of one message: FILTERED and those its ``Connection`` header
    names (hop-by-hop by nomination, RFC 9110 7.6.1), in lower case."""
    named = {token.strip().lower() for value in connection_values for token in value.split(",")}
    return FILTERED | named if named - {"", "close", "keep-alive"} else FILTERED
XML_TYPE = "text/xml;charset=utf-8"


class ProtocolError(Exception):
    """A request that breaks the protocol: status, X-Road error type, message."""

    def __init__(self, status: int, type_: str, message: str):
        super().__init__(message)
        self.status, self.type, self.message = status, type_, message


# --- identifiers --------------------------------------------------------------------------

@dataclass(frozen=True)
class ClientId:
    member: str
    subsystem: str  # "" for a member-level client

    def __str__(self) -> str:
        member = f"{INSTANCE}/{MEMBER_CLASS}/{self.member}"
        return f"{member}/{self.subsystem}" if self.subsystem else member


@dataclass(frozen=True)
class Target:
    """What a request under /r1/ addresses: a service (or metaservice) and a path."""

    member: str
    subsystem: str
    service: str
    path: str  # raw (percent-encoded) path after the service code, without leading "/"

    @property
    def provider(self) -> ClientId:
        return ClientId(self.member, self.subsystem)

    @property
    def identifier(self) -> str:
        return f"{self.provider}/{self.service}"

    @property
    def is_metaservice(self) -> bool:
        return self.service in METASERVICES


def _code(raw: str, what: str, error: str) -> str:
    value = unquote(raw)
    if not CODE.fullmatch(value):
        raise ProtocolError(400, error, f"{what} {value[:80]!r} is not a valid code.")
    return value


def parse_client(header: str | None) -> ClientId:
    """``X-Road-Client``: ``TN/GOV/<member>[/<subsystem>]`` (parts percent-encoded)."""
    error = "Client.InvalidClientIdentifier"
    if not header or not header.strip():
        raise ProtocolError(400, "Client.MissingHeader", "X-Road-Client is required.")
    parts = header.strip().split("/")
    if len(parts) not in (3, 4) or len(header) > 300 or unquote(parts[0]) != INSTANCE or \
            unquote(parts[1]) != MEMBER_CLASS:
        raise ProtocolError(400, error, f"X-Road-Client reads {INSTANCE}/{MEMBER_CLASS}/"
                                        "<member>[/<subsystem>].")
    member = _code(parts[2], "The member", error)
    subsystem = _code(parts[3], "The subsystem", error) if len(parts) == 4 else ""
    return ClientId(member, subsystem)


def parse_target(raw: str) -> Target:
    """The part of a request URI after ``/r1/``: service identifier, then the path."""
    error = "Client.InvalidServiceIdentifier"
    parts = raw.split("/", 5)
    if len(parts) < 5 or unquote(parts[0]) != INSTANCE or unquote(parts[1]) != MEMBER_CLASS:
        raise ProtocolError(400, error, f"The service identifier reads {INSTANCE}/"
                                        f"{MEMBER_CLASS}/<member>/<subsystem>/<service>.")
    member = _code(parts[2], "The member", error)
    subsystem = _code(parts[3], "The subsystem", error)
    service = _code(parts[4], "The service", error)
    path = parts[5] if len(parts) == 6 else ""
    check_path(path)
    return Target(member, subsystem, service, path)


def check_target(target: str) -> None:
    """A request URI carries no fragment: a '#' would end the path (or the query) on
    the way to the provider, which would then read a shorter path than the one the grant
    was checked on."""
    if "#" in target:
        raise ProtocolError(400, "Client.BadRequest",
                            "The request URI may not contain '#' (a fragment is never sent; "
                            "encode it as %23).")


def check_path(path: str) -> None:
    """Refuse what could make the provider read another resource than the one named:
    dot segments (encoded or not), encoded separators, backslashes, NUL, a fragment."""
    check_target(path)
    for segment in path.split("/"):
        decoded = unquote(segment)
        if dot_segment(decoded) or "\\" in segment or any(c in decoded for c in "/\\\x00"):
            raise ProtocolError(400, "Client.BadRequest",
                                "The path may not contain '.' or '..' segments (with or "
                                "without ';' parameters), backslashes, encoded '/' or NUL.")


def dot_segment(decoded: str) -> bool:
    """Whether a decoded segment is '.' or '..' for some server: Tomcat, Jetty and Spring
    drop a segment's ';' parameters before they resolve dot segments, so '..;' and
    '..;x=1' climb a level there as '..' does."""
    return decoded.split(";", 1)[0] in (".", "..")


def valid_x_road_id(value: str) -> bool:
    return bool(X_ROAD_ID.fullmatch(value))


# --- access rights per endpoint ------------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    """A method (or ``*``) and a path pattern: ``*`` is one segment, a final ``**`` any
    number of segments (none included)."""

    method: str
    path: str

    def matches(self, method: str, segments: list[str]) -> bool:
        if self.method != "*" and self.method != method:
            return False
        # "/" is the service's root: no segment (as ``path_segments("")``)
        pattern = self.path.split("/")[1:] if self.path != "/" else []
        if pattern and pattern[-1] == "**":
            head = pattern[:-1]
            return len(segments) >= len(head) and _segments_match(head, segments[:len(head)])
        return len(segments) == len(pattern) and _segments_match(pattern, segments)

    def as_dict(self) -> dict:
        return {"method": self.method, "path": self.path}


def _segments_match(pattern: list[str], segments: list[str]) -> bool:
    """``*`` is one segment, never an empty one: a grant for ``/persons/*`` does not open
    ``/persons/``, which most frameworks serve as the collection ``/persons``."""
    return all(p == s or (p == "*" and s != "")
               for p, s in zip(pattern, segments, strict=True))


def path_segments(path: str) -> list[str]:
    """The decoded segments of a forwarded path ("" is the service's root)."""
    return [unquote(s) for s in path.split("/")] if path else []


def parse_endpoints(items) -> list[Endpoint]:
    """Endpoints from ``[{"method", "path"}]`` or lines ``GET /persons/*``; checked."""
    if isinstance(items, str):
        items = [dict(zip(("method", "path"), line.split(None, 1), strict=False))
                 for line in items.splitlines() if line.strip()]
    if not isinstance(items, list) or len(items) > 100:
        raise ValueError("Give at most 100 endpoints.")
    endpoints = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("An endpoint is a method and a path.")
        method = str(item.get("method") or "").strip().upper()
        path = str(item.get("path") or "").strip()
        if method != "*" and method not in METHODS:
            raise ValueError(f"Unknown method {method[:20]!r}: use one of "
                             f"{', '.join(sorted(METHODS))} or *.")
        if not path.startswith("/") or len(path) > 300 or any(
                ord(c) < 33 or ord(c) > 126 for c in path):
            raise ValueError("An endpoint's path starts with '/' (printable, 300 at most).")
        segments = path.split("/")[1:]
        if "**" in segments[:-1] or any(s in (".", "..") for s in segments):
            raise ValueError("'**' may only end a path; '.' and '..' are not segments.")
        endpoints.append(Endpoint(method, path))
    return list(dict.fromkeys(endpoints))


def allowed(endpoints: tuple[Endpoint, ...], method: str, path: str) -> bool:
    """Whether a grant with these endpoints (none: the whole service) allows the call."""
    if not endpoints:
        return True
    segments = path_segments(path)
    return any(e.matches(method, segments) for e in endpoints)


WHOLE_SERVICE = (Endpoint("*", "/**"),)


def openapi_endpoints(document: dict) -> tuple[Endpoint, ...]:
    """The endpoints an OpenAPI description declares, ``{parameter}`` segments as ``*``."""
    found = []
    for path, operations in (document.get("paths") or {}).items():
        if not isinstance(path, str) or not isinstance(operations, dict):
            continue
        pattern = "/".join("*" if s.startswith("{") and s.endswith("}") else s
                           for s in path.split("/"))
        for method in operations:
            if isinstance(method, str) and method.upper() in METHODS:
                found.append(Endpoint(method.upper(), pattern or "/"))
    return tuple(found)


# --- request hash (PR-REST 4.3) ------------------------------------------------------------

CRLF = b"\r\n"


def request_hash(method: str, target: bytes, headers: list[tuple[bytes, bytes]],
                 body: bytes) -> bytes:
    """``X-Road-Request-Hash``: SHA-512 over SHA-512 of the serialised request (method,
    request URI, then its headers as ``name:value`` lines, in the order received, without
    the filtered ones) and SHA-512 of the body; without a body, SHA-512 of the serialised
    request alone. ``headers`` already carry the X-Road-Id and X-Road-Request-Id."""
    serialised = [method.encode("ascii"), CRLF, target, CRLF]
    for name, value in headers:
        serialised += [name, b":", value, CRLF]
    head = hashlib.sha512(b"".join(serialised)).digest()
    if not body:
        return head
    return hashlib.sha512(head + hashlib.sha512(body).digest()).digest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- error bodies (PR-REST 4.6) --------------------------------------------------------------

def wants_xml(accept: str | None) -> bool:
    """Whether the client prefers XML to JSON (JSON is the default)."""
    for item in (accept or "").split(","):
        media = item.split(";", 1)[0].strip().lower()
        if media in ("application/json", "*/*", "application/*") or media.endswith("+json"):
            return False
        if media in ("application/xml", "text/xml") or media.endswith("+xml"):
            return True
    return False


def error_body(type_: str, message: str, detail: str, *, xml: bool = False) -> tuple[bytes, str]:
    """An X-Road error document: ``type``, ``message`` and ``detail`` (the request id)."""
    if xml:
        root = ET.Element("error")
        for name, value in (("type", type_), ("message", message), ("detail", detail)):
            ET.SubElement(root, name).text = value
        return ET.tostring(root, encoding="utf-8", xml_declaration=True), XML_TYPE
    return (json.dumps({"type": type_, "message": message, "detail": detail},
                       ensure_ascii=False).encode(), JSON_TYPE)


# --- metaservices (PR-META, PR-MREST) ----------------------------------------------------------

XROAD_NS = "http://x-road.eu/xsd/xroad.xsd"
ID_NS = "http://x-road.eu/xsd/identifiers"
ET.register_namespace("xroad", XROAD_NS)
ET.register_namespace("id", ID_NS)


def client_list(members: list[tuple[str, str]], subsystems: list[tuple[str, str, str, str]],
                *, as_json: bool) -> tuple[bytes, str]:
    """listClients: ``members`` as (code, name), ``subsystems`` as (member code, member
    name, subsystem code, subsystem name); JSON when asked, the XML ``clientList`` else."""
    rows = [({"member_class": MEMBER_CLASS, "member_code": code, "object_type": "MEMBER",
              "xroad_instance": INSTANCE}, name, None) for code, name in members]
    rows += [({"member_class": MEMBER_CLASS, "member_code": code, "subsystem_code": sub,
               "object_type": "SUBSYSTEM", "xroad_instance": INSTANCE}, name, sub_name)
             for code, name, sub, sub_name in subsystems]
    if as_json:
        body = {"member": [{"id": ident, "name": name,
                            **({"subsystem_name": sub_name} if sub_name else {})}
                           for ident, name, sub_name in rows]}
        return json.dumps(body, ensure_ascii=False).encode(), JSON_TYPE
    root = ET.Element(f"{{{XROAD_NS}}}clientList")
    for ident, name, sub_name in rows:
        member = ET.SubElement(root, f"{{{XROAD_NS}}}member")
        id_el = ET.SubElement(member, f"{{{XROAD_NS}}}id",
                              {f"{{{ID_NS}}}objectType": ident["object_type"]})
        for key, tag in (("xroad_instance", "xRoadInstance"), ("member_class", "memberClass"),
                         ("member_code", "memberCode"), ("subsystem_code", "subsystemCode")):
            if key in ident:
                ET.SubElement(id_el, f"{{{ID_NS}}}{tag}").text = ident[key]
        ET.SubElement(member, f"{{{XROAD_NS}}}name").text = name
        if sub_name:
            ET.SubElement(member, f"{{{XROAD_NS}}}subsystemName").text = sub_name
    return ET.tostring(root, encoding="utf-8", xml_declaration=True), XML_TYPE


def method_list(provider: ClientId, services: list[tuple[str, bool, tuple[Endpoint, ...]]]
                ) -> bytes:
    """listMethods / allowedMethods: each service as (code, has OpenAPI, endpoints)."""
    return json.dumps({"service": [{
        "member_class": MEMBER_CLASS, "member_code": provider.member, "object_type": "SERVICE",
        "service_code": code, "service_type": "OPENAPI" if described else "REST",
        "subsystem_code": provider.subsystem, "xroad_instance": INSTANCE,
        "endpoint_list": [e.as_dict() for e in endpoints]}
        for code, described, endpoints in services]}, ensure_ascii=False).encode()


def load_openapi(text: str) -> dict:
    """An OpenAPI 3 description (JSON or YAML) as a mapping; ``ValueError`` if it is not."""
    import yaml

    if not isinstance(text, str) or not text.strip() or len(text) > 2_000_000:
        raise ValueError("An OpenAPI description is JSON or YAML text of 2 MB at most.")
    try:
        if text.lstrip().startswith("{"):
            document = json.loads(text)
        else:
            # Aliases would let a few bytes expand into gigabytes when served again.
            if any(isinstance(event, yaml.AliasEvent)
                   for event in yaml.parse(text, Loader=yaml.SafeLoader)):
                raise ValueError("YAML aliases are not accepted in OpenAPI descriptions.")
            document = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        if "aliases" in str(exc):
            raise
        raise ValueError("The OpenAPI description is neither valid JSON nor YAML.") from None
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3.") \
            or not isinstance(document.get("paths", {}), dict):
        raise ValueError("This is not an OpenAPI 3 description (openapi: 3.x, paths).")
    return document


def public_openapi(text: str, server_url: str) -> tuple[bytes, str]:
    """A service's description as served through the gateway: its ``servers`` point at the
    gateway, never at the provider's internal address."""
    import yaml

    document = load_openapi(text)
    document["servers"] = [{"url": server_url}]
    if text.lstrip().startswith("{"):
        return json.dumps(document, ensure_ascii=False).encode(), JSON_TYPE
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False).encode(), \
        "text/yaml;charset=utf-8"
