"""What a member system sends is what the grant was checked against, and nothing it
sends can speak for the gateway towards the provider."""

from __future__ import annotations

import pytest

from sahab.exchange import services
from sahab.exchange.models import Message
from tests.exchange.conftest import Provider


def _narrower_grant(intranet, path: str, purpose: str) -> None:
    """The client's grant replaced by one for GET ``path`` only."""
    services.revoke_grant(actor=intranet.it_interior, grant=intranet.grant, reason="narrower")
    grant = services.request_grant(
        actor=intranet.it_finances, client=intranet.client, service=intranet.service,
        legal_basis="Décret 2020-1", purpose=purpose,
        endpoints=[{"method": "GET", "path": path}])
    services.decide_grant(actor=intranet.it_interior, grant=grant, approve=True)


def _only_public_records(intranet):
    _narrower_grant(intranet, "/persons/*/public", "Fiche publique")


@pytest.mark.parametrize("target", ["persons/123#/public", "persons/123?x=1#/public",
                                    "persons/123%23/public#"])
def test_a_fragment_cannot_shorten_the_path_the_grant_was_checked_on(intranet, target):
    """Finding: with a grant for GET /persons/*/public only, `GET …/personnes/persons/123#/public`
    passed the endpoint check (segments persons, 123#, public) and reached the provider as
    GET /registry/persons/123: the fragment was cut off on the way out."""
    _only_public_records(intranet)
    Provider.seen.clear()
    status, headers, body = intranet.raw("GET", f"/r1/{intranet.service.identifier}/{target}")
    assert status == 400 and headers["x-road-error"] == "Client.BadRequest"
    assert b"#" in body and Provider.seen == []
    assert not Message.objects.exists()  # refused for its form, before the caller is known
    status, _, _ = intranet.raw("GET", f"/r1/{intranet.service.identifier}/persons/123/public")
    assert status == 200 and Provider.seen[-1]["path"] == "/registry/persons/123/public"


@pytest.mark.parametrize("authorization", ["Bearer  {t}", "Bearer \t{t}", "Bearer {t} "])
def test_the_gateway_token_never_reaches_the_provider_however_it_is_spaced(
        intranet, authorization):
    """Finding: `Authorization: Bearer  xrd_…` (two spaces) authenticated the client and
    went on to the provider as it was: the provider's operators could call any service as
    that client."""
    Provider.seen.clear()
    headers = intranet.headers(Authorization=authorization.format(t=intranet.token))
    status, _, _ = intranet.raw("GET", f"/r1/{intranet.service.identifier}/persons/1", headers)
    assert status == 200
    sent = Provider.seen[-1]["raw_headers"]
    assert not any(intranet.token in value for _, value in sent)
    assert not any(name.lower() == "authorization" for name, _ in sent)


def test_a_provider_jwt_still_passes(intranet):
    """The gateway token is the one Authorization kept back; a provider's JWT on another
    Authorization line passes on."""
    import http.client
    from urllib.parse import urlsplit

    Provider.seen.clear()
    parts = urlsplit(intranet.gateway.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    connection.putrequest("GET", f"/r1/{intranet.service.identifier}/persons/1")
    connection.putheader("X-Road-Client", intranet.client.identifier)
    connection.putheader("Authorization", f"Bearer {intranet.token}")
    connection.putheader("Authorization", "Bearer eyJhbGciOi.x.y")
    connection.endheaders()
    assert connection.getresponse().status == 200
    connection.close()
    sent = [(n.lower(), v) for n, v in Provider.seen[-1]["raw_headers"]]
    assert ("authorization", "Bearer eyJhbGciOi.x.y") in sent
    assert not any(intranet.token in v for _, v in sent)


@pytest.mark.parametrize("name", ["X_Road_Client", "x_road_client", "X-Road_Client",
                                  "X_ROAD_SERVICE", "X_Road_Id"])
def test_a_client_cannot_pass_an_x_road_header_under_another_spelling(intranet, name):
    """Finding: `X_Road_Client: TN/GOV/PM/CABINET` reached the provider next to the
    gateway's X-Road-Client; WSGI, CGI and FastCGI servers read both as HTTP_X_ROAD_CLIENT,
    so a provider that serves each client its own data could take the call for the
    cabinet's."""
    Provider.seen.clear()
    status, _, _ = intranet.raw("GET", f"/r1/{intranet.service.identifier}/persons/1",
                                intranet.headers(**{name: "TN/GOV/PM/CABINET"}))
    assert status == 200
    sent = Provider.seen[-1]["raw_headers"]
    assert not any(v == "TN/GOV/PM/CABINET" for _, v in sent)
    assert ("X-Road-Client", intranet.client.identifier) in sent


@pytest.mark.parametrize("path", ["persons/..;/..;/admin", "persons/..;x=1/secret",
                                  "persons/%2e%2e;/secret", "persons/.;/1"])
def test_dot_segments_with_parameters_are_refused(intranet, path):
    """Finding: `GET …/personnes/persons/..;/..;/admin` under a grant for GET /persons/**
    reached the provider as /registry/persons/..;/..;/admin, which Tomcat, Jetty and
    Spring read as /admin: out of the service's base URL, to whatever else the host
    serves."""
    _narrower_grant(intranet, "/persons/**", "Fiches")
    Provider.seen.clear()
    status, headers, _ = intranet.raw("GET", f"/r1/{intranet.service.identifier}/{path}")
    assert status == 400 and headers["x-road-error"] == "Client.BadRequest"
    assert Provider.seen == []


def test_a_provider_url_with_a_dot_segment_and_parameters_is_refused(intranet, provider_url):
    from sahab.core.errors import InvalidInput

    with pytest.raises(InvalidInput):
        services.update_service(actor=intranet.it_interior, service=intranet.service,
                                base_url=provider_url + "/..;/other")


def test_one_segment_of_a_grant_is_never_an_empty_one(intranet):
    """Finding: a grant for GET /persons/* (one person) let `GET …/personnes/persons/`
    through to the provider, which most frameworks serve as /persons, the whole list."""
    _narrower_grant(intranet, "/persons/*", "Une fiche")
    Provider.seen.clear()
    for path in ("persons/", "persons//"):
        status, headers, _ = intranet.raw("GET", f"/r1/{intranet.service.identifier}/{path}")
        assert status == 403 and headers["x-road-error"] == "Server.ServerProxy.AccessDenied"
    assert Provider.seen == []
    status, _, _ = intranet.raw("GET", f"/r1/{intranet.service.identifier}/persons/1")
    assert status == 200
