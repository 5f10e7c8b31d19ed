"""The gateway as X-Road clients see it: granted calls reach the provider and come back
with the X-Road headers; everything else is refused before anything is forwarded; every
exchange is logged by hash and reaches the ledger, where its proof verifies."""

import base64
import hashlib
import json
import time

import pytest

from sahab.core.errors import Conflict, PermissionDenied
from sahab.exchange import services
from sahab.exchange.gateway import request_hash
from sahab.exchange.models import Message
from sahab.ledger import merkle
from sahab.ledger import services as ledger
from tests.exchange.conftest import Provider


def test_a_granted_client_gets_the_answer_with_the_x_road_headers(intranet):
    response = intranet.call("persons/09876543?fields=name", HTTP_X_ROAD_ID="req-42",
                             HTTP_X_ROAD_USERID="TN1234567", HTTP_X_ROAD_ISSUE="dossier 7")
    body = b"".join(response.streaming_content)
    assert response.status_code == 200, body
    assert json.loads(body)["citizen"]["name"] == "Sonia Gharbi"
    assert response["X-Road-Client"] == intranet.client.identifier == "TN/GOV/MF/IMPOTS"
    assert response["X-Road-Service"] == "TN/GOV/MI/ETAT-CIVIL/personnes"
    assert response["X-Road-Id"] == "req-42"
    assert base64.b64decode(response["X-Road-Request-Hash"]) == request_hash(
        "GET", "persons/09876543", "fields=name", b"")
    assert "X-Internal-Secret" not in response
    seen = Provider.seen[-1]
    assert seen["path"] == "/registry/persons/09876543?fields=name"
    assert seen["headers"]["X-Road-UserId"] == "TN1234567"
    assert "Authorization" not in seen["headers"]  # the client's token stays at the gateway
    message = Message.objects.get(x_road_id="req-42")
    assert message.status == 200 and message.response_sha256 == hashlib.sha256(body).hexdigest()
    assert message.response_bytes == len(body) and message.request_sha256


def test_the_message_log_reaches_the_ledger_and_its_proofs_verify(intranet):
    for n in range(3):
        b"".join(intranet.call(f"persons/{n}").streaming_content)
    assert services.flush_message_log() == 3
    assert services.flush_message_log() == 0
    size = ledger.tree_size()
    for message in Message.objects.all():
        entry = ledger.get_entry(message.ledger_index)
        data = json.loads(bytes(entry.body))["data"]
        assert data["request_sha256"] == message.request_sha256
        assert "Sonia" not in bytes(entry.body).decode()  # hashes, never bodies
        proof = ledger.inclusion_proof(message.ledger_index, size)
        merkle.verify_inclusion(message.ledger_index, size, merkle.leaf_hash(bytes(entry.body)),
                                proof, ledger.root_at(size))  # raises if it does not hold


@pytest.mark.parametrize("headers,status,code", [
    ({"HTTP_X_ROAD_CLIENT": ""}, 400, "Client.MissingHeader"),
    ({"HTTP_X_ROAD_CLIENT": "TN/GOV/MF"}, 400, "Client.InvalidClientIdentifier"),
    ({"HTTP_AUTHORIZATION": "Bearer xrd_wrong"}, 401, "Client.Unauthorized"),
    ({"HTTP_AUTHORIZATION": ""}, 401, "Client.Unauthorized"),
])
def test_missing_or_false_credentials_are_refused(intranet, headers, status, code):
    response = intranet.call(**headers)
    assert response.status_code == status and response["X-Road-Error"] == code
    assert response["Content-Type"] == "application/problem+json"
    assert Provider.seen == []


def test_a_client_claiming_another_subsystem_is_refused(intranet):
    response = intranet.call(token=intranet.other_token)
    assert response.status_code == 403 and Provider.seen == []


def test_ungranted_revoked_and_expired_grants_are_refused(intranet):
    ungranted = intranet.call(token=intranet.other_token, client=intranet.other.identifier)
    assert ungranted.status_code == 403 and ungranted["X-Road-Error"] == "Client.AccessDenied"
    services.revoke_grant(actor=intranet.it_interior, grant=intranet.grant, reason="Fin")
    assert intranet.call().status_code == 403
    with pytest.raises(Conflict):
        services.revoke_grant(actor=intranet.it_interior, grant=intranet.grant, reason="x")
    assert Provider.seen == []


def test_only_the_providers_administration_decides(intranet):
    grant = services.request_grant(actor=intranet.it_finances, client=intranet.other,
                                   service=intranet.service, legal_basis="Loi", purpose="Test")
    with pytest.raises(PermissionDenied):
        services.decide_grant(actor=intranet.it_finances, grant=grant, approve=True)
    with pytest.raises(Conflict):
        services.request_grant(actor=intranet.it_finances, client=intranet.other,
                               service=intranet.service, legal_basis="Loi", purpose="Encore")


def test_the_rate_limit_of_the_grant_applies(intranet):
    statuses = [intranet.call().status_code for _ in range(7)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]


@pytest.mark.parametrize("target", [
    "TN/GOV/MI/ETAT-CIVIL/inconnu/x", "TN/GOV/XX/ETAT-CIVIL/personnes/x", "EE/GOV/MI/a/b",
    "TN/COM/MI/ETAT-CIVIL/personnes", "TN/GOV/MI",
])
def test_unknown_identifiers_are_clear_errors(intranet, target):
    from django.test import Client

    response = Client().get(f"/exchange/r1/{target}", HTTP_AUTHORIZATION=f"Bearer "
                            f"{intranet.token}", HTTP_X_ROAD_CLIENT=intranet.client.identifier)
    assert response.status_code in (400, 404) and response["X-Road-Error"]
    assert Provider.seen == []


@pytest.mark.parametrize("path", ["../admin", "persons/../../etc/passwd", "a/./b",
                                  "persons/%2e%2e/secret", "a\\b"])
def test_path_traversal_is_refused(intranet, path):
    response = intranet.call(path)
    assert response.status_code == 400 and Provider.seen == []


def test_oversized_bodies_and_smuggling_attempts_are_refused(intranet, settings):
    settings.EXCHANGE_MAX_BODY_BYTES = 1000
    big = intranet.call("persons", method="post", data=b"x" * 2000,
                        content_type="application/octet-stream")
    assert big.status_code == 413
    smuggled = intranet.call("persons", method="post", data=b"{}",
                             content_type="application/json", HTTP_TRANSFER_ENCODING="chunked")
    assert smuggled.status_code == 400
    assert Provider.seen == []
    ok = intranet.call("persons", method="post", data=b'{"q": 1}',
                       content_type="application/json")
    assert ok.status_code == 200 and json.loads(b"".join(ok.streaming_content))["received"] == 8


def test_a_provider_that_hangs_gives_a_504_within_its_timeout(intranet):
    start = time.monotonic()
    response = intranet.call("hang")
    assert response.status_code == 504 and response["X-Road-Error"] == "Server.ServiceTimeout"
    assert time.monotonic() - start < 2.5  # the service's timeout is 1 s
    assert Message.objects.get(status=504).error == "Server.ServiceTimeout"


def test_provider_errors_pass_through_and_unreachable_providers_give_502(intranet):
    broken = intranet.call("broken")
    assert broken.status_code == 500 and "X-Road-Error" not in broken
    type(intranet.service).objects.filter(pk=intranet.service.pk).update(
        base_url="http://127.0.0.1:9/none")
    services.bump_registry_version()
    unreachable = intranet.call()
    assert unreachable.status_code == 502 and unreachable["X-Road-Error"] == \
        "Server.ServiceFailed"


def test_a_hanging_provider_does_not_block_other_calls(transactional_db, intranet, live_server):
    """Over a real threaded server: the hung call ends in 504, the others go through."""
    import concurrent.futures

    import httpx

    type(intranet.service).objects.filter(pk=intranet.service.pk).update(timeout_seconds=2)
    services.bump_registry_version()
    headers = {"Authorization": f"Bearer {intranet.token}",
               "X-Road-Client": intranet.client.identifier}
    base = f"{live_server.url}/exchange/r1/{intranet.service.identifier}"
    assert httpx.get(f"{base}/persons/0", headers=headers, timeout=10).status_code == 200
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        hung = pool.submit(httpx.get, f"{base}/hang", headers=headers, timeout=10)
        time.sleep(0.3)
        quick = [pool.submit(httpx.get, f"{base}/persons/{n}", headers=headers, timeout=10)
                 for n in range(1, 3)]
        assert [f.result().status_code for f in quick] == [200, 200]
        assert not hung.done()  # the others were answered while this one hangs
        assert hung.result().status_code == 504
    timed_out = Message.objects.get(status=504)
    assert 1900 < timed_out.duration_ms < 2900  # the service's 2-second timeout
    assert all(m.duration_ms < 1000 for m in Message.objects.filter(status=200))
