"""The gateway as its users see it: granted calls reach the provider and come back with
the X-Road headers; everything else is refused before anything is forwarded; every
exchange of a known client is logged by hash and reaches the ledger, where its proof
verifies."""

import base64
import datetime as dt
import hashlib
import json

import httpx
import pytest
from django.utils import timezone

from sahab.core.errors import Conflict, PermissionDenied
from sahab.exchange import messagelog, selectors, services
from sahab.exchange.models import Grant, Message, Service
from sahab.ledger import merkle
from sahab.ledger import services as ledger
from tests.exchange.conftest import Provider


def test_a_granted_client_gets_the_answer_with_the_x_road_headers(intranet):
    response = intranet.call("persons/09876543?fields=name", headers={
        "X-Road-Id": "req-42", "X-Road-UserId": "TN1234567", "X-Road-Issue": "dossier 7"})
    assert response.status_code == 200, response.text
    assert response.json()["citizen"]["name"] == "Sonia Gharbi"
    assert response.headers["X-Road-Client"] == intranet.client.identifier == "TN/GOV/MF/IMPOTS"
    assert response.headers["X-Road-Service"] == "TN/GOV/MI/ETAT-CIVIL/personnes"
    assert response.headers["X-Road-Id"] == "req-42"
    assert len(base64.b64decode(response.headers["X-Road-Request-Hash"])) == 64  # SHA-512
    seen = Provider.seen[-1]
    assert seen["path"] == "/registry/persons/09876543?fields=name"
    assert seen["headers"]["X-Road-UserId"] == "TN1234567"
    assert seen["headers"]["X-Road-Request-Id"] == response.headers["X-Road-Request-Id"]
    assert "Authorization" not in seen["headers"]  # the client's token stays at the gateway
    message = Message.objects.get(x_road_id="req-42")
    assert message.status == 200
    assert message.response_sha256 == hashlib.sha256(response.content).hexdigest()
    assert message.response_bytes == len(response.content)
    assert message.request_hash == response.headers["X-Road-Request-Hash"]
    assert message.user_id == "TN1234567" and message.issue == "dossier 7"


def test_the_message_log_reaches_the_ledger_and_its_proofs_verify(intranet):
    for n in range(3):
        assert intranet.call(f"persons/{n}").status_code == 200
    assert messagelog.flush_to_ledger() == 3
    assert messagelog.flush_to_ledger() == 0
    size = ledger.tree_size()
    for message in Message.objects.all():
        entry = ledger.get_entry(message.ledger_index)
        data = json.loads(bytes(entry.body))["data"]
        assert data["request_hash"] == message.request_hash
        assert "Sonia" not in bytes(entry.body).decode()  # hashes, never bodies
        assert "TN1234567" not in bytes(entry.body).decode()
        proof = ledger.inclusion_proof(message.ledger_index, size)
        merkle.verify_inclusion(message.ledger_index, size, merkle.leaf_hash(bytes(entry.body)),
                                proof, ledger.root_at(size))  # raises if it does not hold


@pytest.mark.parametrize("headers,status,error", [
    ({"X-Road-Client": ""}, 400, "Client.MissingHeader"),
    ({"X-Road-Client": "TN/GOV"}, 400, "Client.InvalidClientIdentifier"),
    ({"Authorization": "Bearer xrd_wrong"}, 401, "Client.Unauthorized"),
    ({"Authorization": ""}, 401, "Client.Unauthorized"),
])
def test_missing_or_false_credentials_are_refused_and_not_logged(intranet, headers, status,
                                                                    error):
    response = httpx.get(f"{intranet.base}/persons/1", headers=intranet.headers(**headers))
    assert response.status_code == status and response.headers["X-Road-Error"] == error
    assert response.json()["type"] == error
    assert Provider.seen == [] and not Message.objects.exists()  # nothing exchanged


def test_a_client_claiming_another_subsystem_is_refused_and_logged_as_itself(intranet):
    response = intranet.call(token=intranet.other_token)
    assert response.status_code == 403
    assert response.headers["X-Road-Error"] == "Client.InvalidClientIdentifier"
    assert Provider.seen == []
    assert Message.objects.get().client == intranet.other.identifier


def test_ungranted_and_revoked_grants_are_refused(intranet):
    ungranted = intranet.call(token=intranet.other_token, client=intranet.other.identifier)
    assert ungranted.status_code == 403
    assert ungranted.headers["X-Road-Error"] == "Server.ServerProxy.AccessDenied"
    services.revoke_grant(actor=intranet.it_interior, grant=intranet.grant, reason="Fin")
    assert intranet.call().status_code == 403  # the very next call
    with pytest.raises(Conflict):
        services.revoke_grant(actor=intranet.it_interior, grant=intranet.grant, reason="x")
    assert Provider.seen == []
    assert set(Message.objects.values_list("error", flat=True)) == {
        "Server.ServerProxy.AccessDenied"}


def test_a_grant_expires_at_its_expiry_instant(intranet):
    def expires(at):
        Grant.objects.filter(pk=intranet.grant.pk).update(expires_at=at)
        services.bump_registry_version()

    expires(timezone.now() + dt.timedelta(minutes=5))
    assert intranet.call().status_code == 200
    expires(timezone.now() - dt.timedelta(seconds=1))
    expired = intranet.call()
    assert expired.status_code == 403
    assert expired.headers["X-Road-Error"] == "Server.ServerProxy.AccessDenied"
    assert len(Provider.seen) == 1  # only the call made before the expiry
    grant = selectors.grant_for(intranet.client.pk, intranet.service.pk)
    assert grant.usable(grant.expires_at - dt.timedelta(microseconds=1))
    assert not grant.usable(grant.expires_at)  # the instant itself is already too late
    assert selectors.GrantInfo(1, 5, None, ()).usable(timezone.now())  # no expiry


def test_a_grant_opens_only_the_service_it_names(intranet):
    addresses = services.register_service(
        actor=intranet.it_interior, subsystem=intranet.service.subsystem, code="adresses",
        name="Adresses", base_url=intranet.service.base_url,
        owner="DSI du ministère de l'Intérieur", timeout_seconds=2)
    response = httpx.get(f"{intranet.gateway.url}/r1/{addresses.identifier}/persons/1",
                         headers=intranet.headers())
    assert response.status_code == 403
    assert response.headers["X-Road-Error"] == "Server.ServerProxy.AccessDenied"
    assert Provider.seen == []
    assert selectors.grant_for(intranet.client.pk, addresses.pk) is None
    assert intranet.call().status_code == 200  # the granted service still answers


def test_only_the_providers_administration_decides(intranet):
    grant = services.request_grant(actor=intranet.it_finances, client=intranet.other,
                                   service=intranet.service, legal_basis="Loi", purpose="Test")
    with pytest.raises(PermissionDenied):
        services.decide_grant(actor=intranet.it_finances, grant=grant, approve=True)
    with pytest.raises(Conflict):
        services.request_grant(actor=intranet.it_finances, client=intranet.other,
                               service=intranet.service, legal_basis="Loi", purpose="Encore")


def test_the_rate_limit_of_the_grant_applies(intranet):
    services.revoke_grant(actor=intranet.it_interior, grant=intranet.grant, reason="new rate")
    grant = services.request_grant(actor=intranet.it_finances, client=intranet.client,
                                   service=intranet.service, legal_basis="Loi", purpose="x")
    services.decide_grant(actor=intranet.it_interior, grant=grant, approve=True,
                          rate_per_minute=5)
    statuses = [intranet.call().status_code for _ in range(7)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]


@pytest.mark.parametrize("target", [
    "TN/GOV/MI/ETAT-CIVIL/inconnu/x", "TN/GOV/XX/ETAT-CIVIL/personnes/x",
])
def test_unknown_services_are_named_only_to_authenticated_clients(intranet, target):
    known = httpx.get(f"{intranet.gateway.url}/r1/{target}",
                      headers=intranet.headers())
    assert known.status_code == 404
    assert known.headers["X-Road-Error"] == "Server.ServerProxy.UnknownService"
    anonymous = [httpx.get(f"{intranet.gateway.url}/r1/{t}",
                           headers={"X-Road-Client": intranet.client.identifier})
                 for t in (target, f"{intranet.service.identifier}/x")]
    # A stranger cannot tell an existing service from an unknown one.
    assert [r.status_code for r in anonymous] == [401, 401]
    assert anonymous[0].json()["message"] == anonymous[1].json()["message"]
    assert Provider.seen == []


@pytest.mark.parametrize("target", ["EE/GOV/MI/a/b", "TN/COM/MI/ETAT-CIVIL/personnes",
                                    "TN/GOV/MI", "TN/GOV/M%20I/a/b"])
def test_malformed_service_identifiers_are_clear_errors(intranet, target):
    response = httpx.get(f"{intranet.gateway.url}/r1/{target}", headers=intranet.headers())
    assert response.status_code == 400
    assert response.headers["X-Road-Error"] == "Client.InvalidServiceIdentifier"


@pytest.mark.parametrize("path", ["../admin", "persons/../../etc/passwd", "a/./b",
                                  "persons/%2e%2e/secret", "a%5cb", "a%2Fb", "a%00b"])
def test_path_traversal_is_refused(intranet, path):
    status, headers, _ = intranet.raw("GET", f"/r1/{intranet.service.identifier}/{path}")
    assert status == 400 and headers["x-road-error"] == "Client.BadRequest"
    assert Provider.seen == []


def test_oversized_bodies_are_refused_and_bodies_are_relayed_exactly(intranet, settings):
    settings.EXCHANGE_MAX_BODY_BYTES = 1000
    big = intranet.call("persons", method="POST", content=b"x" * 2000,
                        headers={"Content-Type": "application/octet-stream"})
    assert big.status_code == 413 and big.headers["X-Road-Error"] == "Client.RequestTooLarge"
    assert Provider.seen == []
    ok = intranet.call("persons", method="POST", content=b'{"q": 1}',
                       headers={"Content-Type": "application/json"})
    assert ok.status_code == 200 and ok.json()["received"] == 8
    assert Provider.seen[-1]["body"] == b'{"q": 1}'
    assert Provider.seen[-1]["headers"]["Content-Type"] == "application/json"


def test_a_provider_that_hangs_gives_a_504_and_its_record(intranet):
    response = intranet.call("hang")
    assert response.status_code == 504
    assert response.headers["X-Road-Error"] == "Server.ServerProxy.ServiceTimeout"
    record = Message.objects.get(status=504)
    assert record.error == "Server.ServerProxy.ServiceTimeout"
    assert record.duration_ms < 4000  # the service's 2-second timeout, not the provider's 4


def test_provider_errors_pass_through_and_unreachable_providers_give_502(intranet):
    broken = intranet.call("broken")
    assert broken.status_code == 500 and "X-Road-Error" not in broken.headers
    Service.objects.filter(pk=intranet.service.pk).update(
        base_url=intranet.service.base_url.rsplit(":", 1)[0] + ":9/registry")
    services.bump_registry_version()
    unreachable = intranet.call()
    assert unreachable.status_code == 502
    assert unreachable.headers["X-Road-Error"] == "Server.ServerProxy.ServiceFailed"


def test_an_answer_that_breaks_off_is_logged_as_such(intranet):
    with pytest.raises(httpx.HTTPError):
        intranet.call("half")
    record = Message.objects.get()
    assert record.status == 200 and record.error == "Server.ServerProxy.ServiceFailed"
    assert record.response_bytes == 10


def test_large_answers_stream_through_byte_for_byte(intranet):
    response = intranet.call("big")
    assert response.status_code == 200 and response.content == b"x" * 300_000
    assert Message.objects.get().response_bytes == 300_000


def test_the_web_port_sends_gateway_calls_to_the_gateway(client, settings):
    response = client.get("/exchange/r1/TN/GOV/MI/ETAT-CIVIL/personnes/1?x=2")
    assert response.status_code == 308
    assert response["Location"] == settings.EXCHANGE_URL.rstrip("/") + \
        "/exchange/r1/TN/GOV/MI/ETAT-CIVIL/personnes/1?x=2"
