"""The reference broker against the Open Service Broker API v2.17: every endpoint, its
success codes and its error cases (400, 401, 404, 409, 410, 412, 422 AsyncRequired and
ConcurrencyError), the audit trail of identity headers."""

import base64
import json
import uuid

import httpx
import pytest

from sahab.cloud import broker, dbaas
from sahab.cloud.models import BrokerRequest
from sahab.core import keys
from sahab.core.inprocess import InProcessWSGI
from tests.cloud.conftest import drop_leftover_databases

SMALL, MEDIUM = broker.PLANS[0]["id"], broker.PLANS[1]["id"]
IDS = {"service_id": broker.SERVICE_ID, "plan_id": SMALL}


class Broker:
    def __init__(self):
        self.http = httpx.Client(transport=httpx.WSGITransport(app=InProcessWSGI()),
                                 base_url="http://testserver/osb/v2",
                                 auth=(broker.USERNAME, keys.load_osb_password()),
                                 headers={"X-Broker-API-Version": "2.17"})

    def __getattr__(self, method):
        return getattr(self.http, method)

    def put_instance(self, instance_id, body=None, asynchronous=True, **kwargs):
        params = {"accepts_incomplete": "true"} if asynchronous else {}
        return self.http.put(f"/service_instances/{instance_id}", params=params,
                             json={**IDS, "context": {"platform": "test"}} if body is None
                             else body, **kwargs)

    def provisioned(self, instance_id=None):
        instance_id = instance_id or str(uuid.uuid4())
        assert self.put_instance(instance_id).status_code == 202
        broker.run_pending_operations()
        return instance_id

    def last_operation(self, instance_id, **params):
        return self.http.get(f"/service_instances/{instance_id}/last_operation",
                             params={**IDS, **params})


@pytest.fixture
def osb(db, sahab_home, settings, dbaas):
    keys.ensure_secrets_key()
    keys.ensure_osb_password()
    settings.PUBLIC_URL = "http://testserver/"
    yield Broker()
    drop_leftover_databases()


def test_catalog_lists_plans_with_schemas_and_tnd_prices(osb):
    response = osb.get("/catalog")
    assert response.status_code == 200
    [service] = response.json()["services"]
    assert service["id"] == broker.SERVICE_ID and service["bindable"] is True
    for plan in service["plans"]:
        assert plan["metadata"]["costs"][0]["amount"]["tnd"] > 0
        assert plan["schemas"]["service_instance"]["create"]["parameters"]["type"] == "object"
        assert plan["metadata"]["available"] is True


def test_catalog_marks_plans_unavailable_without_a_cluster(osb, settings):
    settings.DBAAS_URL = ""
    plans = osb.get("/catalog").json()["services"][0]["plans"]
    assert {p["metadata"]["available"] for p in plans} == {False}
    response = osb.put_instance(str(uuid.uuid4()))
    assert response.status_code == 422


def test_credentials_and_version_header_are_required(osb):
    assert osb.get("/catalog", auth=("sahab-broker", "wrong")).status_code == 401
    anonymous = httpx.Client(transport=osb.http._transport, base_url="http://testserver/osb/v2")
    response = anonymous.get("/catalog", headers={"X-Broker-API-Version": "2.17"})
    assert response.status_code == 401 and "Basic" in response.headers["WWW-Authenticate"]
    for version in ("", "1.0", "2.99", "three"):
        response = osb.get("/catalog", headers={"X-Broker-API-Version": version})
        assert response.status_code == 412, version
        assert "description" in response.json()


def test_provisioning_is_asynchronous_and_idempotent(osb):
    instance_id = str(uuid.uuid4())
    refused = osb.put_instance(instance_id, asynchronous=False)
    assert refused.status_code == 422 and refused.json()["error"] == "AsyncRequired"
    first = osb.put_instance(instance_id)
    assert first.status_code == 202 and first.json()["operation"]
    again = osb.put_instance(instance_id)
    assert again.status_code == 202 and again.json()["operation"] == first.json()["operation"]
    polled = osb.last_operation(instance_id, operation=first.json()["operation"])
    assert polled.json() == {"state": "in progress"}
    assert osb.get(f"/service_instances/{instance_id}").status_code == 404  # not yet made
    broker.run_pending_operations()
    assert osb.last_operation(instance_id).json()["state"] == "succeeded"
    assert dbaas.database_exists(dbaas.names_for(instance_id))
    assert osb.put_instance(instance_id).status_code == 200
    other = osb.put_instance(instance_id, {**IDS, "plan_id": MEDIUM})
    assert other.status_code == 409
    fetched = osb.get(f"/service_instances/{instance_id}").json()
    assert fetched["plan_id"] == SMALL and fetched["service_id"] == broker.SERVICE_ID


@pytest.mark.parametrize("body", [
    {"plan_id": SMALL}, {"service_id": broker.SERVICE_ID}, {**IDS, "plan_id": "nope"},
    {**IDS, "service_id": "nope"}, {**IDS, "parameters": {"unknown": 1}},
    {**IDS, "parameters": "text"}, {**IDS, "context": []}, [1, 2],
])
def test_malformed_provision_requests_get_400(osb, body):
    response = osb.put_instance(str(uuid.uuid4()), body)
    assert response.status_code == 400 and response.json()["description"]


def test_not_json_and_bad_identifiers_get_400(osb):
    response = osb.put(f"/service_instances/{uuid.uuid4()}", content=b"{not json",
                       params={"accepts_incomplete": "true"})
    assert response.status_code == 400
    assert osb.put_instance("a" * 201).status_code == 400
    assert osb.put_instance("bad$id").status_code == 400


def test_last_operation_of_unknown_instance_or_operation(osb):
    assert osb.last_operation(str(uuid.uuid4())).status_code == 410
    instance_id = osb.provisioned()
    assert osb.last_operation(instance_id, operation="other").status_code == 400


def test_update_changes_the_plan_asynchronously(osb):
    instance_id = osb.provisioned()
    path = f"/service_instances/{instance_id}"
    body = {"service_id": broker.SERVICE_ID, "plan_id": MEDIUM,
            "previous_values": {"plan_id": SMALL}}
    assert osb.patch(path, json=body).json()["error"] == "AsyncRequired"
    assert osb.patch(f"/service_instances/{uuid.uuid4()}", json=body,
                     params={"accepts_incomplete": "true"}).status_code == 404
    accepted = osb.patch(path, json=body, params={"accepts_incomplete": "true"})
    assert accepted.status_code == 202
    busy = osb.patch(path, json={**body, "plan_id": SMALL}, params={"accepts_incomplete": "true"})
    assert busy.status_code == 422 and busy.json()["error"] == "ConcurrencyError"
    assert osb.get(path).json()["error"] == "ConcurrencyError"
    broker.run_pending_operations()
    assert osb.last_operation(instance_id, plan_id=MEDIUM).json()["state"] == "succeeded"
    assert osb.get(path).json()["plan_id"] == MEDIUM
    same = osb.patch(path, json=body, params={"accepts_incomplete": "true"})
    assert same.status_code == 200 and same.json() == {}


def test_bindings_give_working_credentials_and_unbinding_revokes_them(osb):
    instance_id = osb.provisioned()
    binding_id = str(uuid.uuid4())
    path = f"/service_instances/{instance_id}/service_bindings/{binding_id}"
    assert osb.put(f"/service_instances/{uuid.uuid4()}/service_bindings/{binding_id}",
                   json=IDS).status_code == 404
    created = osb.put(path, json={**IDS, "bind_resource": {"app_guid": "paie"}})
    assert created.status_code == 201
    credentials = created.json()["credentials"]
    assert credentials["uri"].startswith("postgresql://")
    again = osb.put(path, json={**IDS, "bind_resource": {"app_guid": "paie"}})
    assert again.status_code == 200 and again.json()["credentials"] == credentials
    assert osb.put(path, json={**IDS, "bind_resource": {"app_guid": "other"}}).status_code == 409
    assert osb.put(path, json={**IDS, "parameters": {"x": 1}}).status_code == 400
    assert osb.get(path, params=IDS).json()["credentials"] == credentials
    assert osb.get(path + "/last_operation", params=IDS).json() == {"state": "succeeded"}
    assert osb.delete(path).status_code == 400  # service_id and plan_id are required
    assert osb.delete(path, params=IDS).status_code == 200
    assert not dbaas.role_exists(credentials["username"])
    assert osb.delete(path, params=IDS).status_code == 410
    assert osb.get(path, params=IDS).status_code == 404
    assert osb.get(path + "/last_operation", params=IDS).status_code == 410


def test_deprovisioning_is_asynchronous_and_reports_gone(osb):
    instance_id = osb.provisioned()
    path = f"/service_instances/{instance_id}"
    assert osb.delete(path, params={"accepts_incomplete": "true"}).status_code == 400
    refused = osb.delete(path, params=IDS)
    assert refused.status_code == 422 and refused.json()["error"] == "AsyncRequired"
    accepted = osb.delete(path, params={**IDS, "accepts_incomplete": "true"})
    assert accepted.status_code == 202
    repeated = osb.delete(path, params={**IDS, "accepts_incomplete": "true"})
    assert repeated.status_code == 202
    assert repeated.json()["operation"] == accepted.json()["operation"]
    binding = osb.put(f"{path}/service_bindings/{uuid.uuid4()}", json=IDS)
    assert binding.status_code == 422 and binding.json()["error"] == "ConcurrencyError"
    broker.run_pending_operations()
    assert osb.last_operation(instance_id).status_code == 410
    assert not dbaas.database_exists(dbaas.names_for(instance_id))
    assert osb.delete(path, params={**IDS, "accepts_incomplete": "true"}).status_code == 410


def test_deleting_while_provisioning_is_a_concurrency_error(osb):
    instance_id = str(uuid.uuid4())
    osb.put_instance(instance_id)
    response = osb.delete(f"/service_instances/{instance_id}",
                          params={**IDS, "accepts_incomplete": "true"})
    assert response.status_code == 422 and response.json()["error"] == "ConcurrencyError"
    broker.run_pending_operations()


def test_identity_headers_are_kept_in_the_audit_trail(osb):
    identity = base64.b64encode(json.dumps({"user_id": "user:7"}).encode()).decode()
    osb.get("/catalog", headers={"X-Broker-API-Originating-Identity": f"sahab {identity}",
                                 "X-Broker-API-Request-Identity": "req-1"})
    request = BrokerRequest.objects.first()
    assert (request.originating_platform, request.request_identity) == ("sahab", "req-1")
    assert json.loads(request.originating_identity) == {"user_id": "user:7"}
    assert request.api_version == "2.17" and request.status == 200
    bad = osb.get("/catalog", headers={"X-Broker-API-Originating-Identity": "sahab !!"})
    assert bad.status_code == 400


def test_unsupported_methods_are_refused(osb):
    assert osb.post("/catalog").status_code == 405
    assert osb.post(f"/service_instances/{uuid.uuid4()}").status_code == 405
