"""A qualified provider's broker catalogue is outside input: values of the wrong type are
refused with the catalogue, a parameter schema that points elsewhere is refused at the
order, one broker's failure stops no other broker's refresh, and no plan keeps an
operation polled for ever."""

import datetime as dt
import urllib.request

import httpx
import pytest
from django.test import Client

from sahab.cloud import models, operations, services
from sahab.cloud.models import Broker, Instance, InstanceState, Order, ServicePlan
from sahab.core.errors import InvalidInput
from tests.cloud.conftest import make_provider
from tests.cloud.test_api import Caller


def _hostile_broker(market) -> Broker:
    other = make_provider(name="Djerba Hosting", reviewer=market.reviewer)[0]
    return Broker.objects.create(provider=other, url="https://broker.example/", username="u",
                                 password_sealed=b"x")


def _service(plan: dict, **service) -> dict:
    return {"services": [{"id": "s", "name": "s", **service,
                          "plans": [{"id": "p", "name": "p", **plan}]}]}


WRONG_TYPES = {
    "a schema as text": _service({"schemas": "surprise"}),
    "instance schemas as a list": _service({"schemas": {"service_instance": []}}),
    "parameters as text": _service({"schemas": {"service_instance": {"create": {
        "parameters": "x"}}}}),
    "parameters not a schema": _service({"schemas": {"service_instance": {"create": {
        "parameters": {"type": 5}}}}}),
    "plan metadata as text": _service({"metadata": "x"}),
    "limits as text": _service({"metadata": {"limits": "x"}}),
    "resources as text": _service({"metadata": {"resources": {"vcpu": "many"}}}),
    "costs as text": _service({"metadata": {"costs": "x"}}),
    "polling duration as text": _service({"maximum_polling_duration": "60"}),
    "polling duration as true": _service({"maximum_polling_duration": True}),
    "negative polling duration": _service({"maximum_polling_duration": -1}),
    "tags as a number": _service({}, tags=5),
    "a tag as a number": _service({}, tags=[5]),
    "service metadata as a list": _service({}, metadata=[]),
    "locations as text": _service({}, metadata={"locations": "Tunis"}),
}


@pytest.mark.parametrize("catalog", WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_a_catalogue_value_of_the_wrong_type_is_refused_with_its_catalogue(market, catalog):
    """A broker listed a plan whose "schemas" (or another field the platform reads) was of
    the wrong type; it was stored and made the public catalogue of every provider a 500."""
    hostile = _hostile_broker(market)
    with pytest.raises(InvalidInput) as refused:
        services.store_catalog(hostile, catalog)
    assert refused.value.code == "catalogue_field_wrong_type"
    assert not ServicePlan.objects.filter(offering__broker=hostile).exists()
    public = Client(raise_request_exception=False).get("/api/cloud/catalogue")
    assert public.status_code == 200 and public.json()


def test_a_parameter_schema_pointing_elsewhere_refuses_the_order_and_fetches_nothing(
        market, monkeypatch):
    """A plan's parameter schema was a "$ref" to a URL: every order of the plan was a 500
    (and the schema library would have fetched the URL)."""
    fetched = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: fetched.append(a))
    plan = market.plan("pg-small")
    ServicePlan.objects.filter(pk=plan.pk).update(schemas={"service_instance": {"create": {
        "parameters": {"$ref": "https://schemas.example/params.json"}}}})
    caller = Caller(market.it)
    caller.client.raise_request_exception = False
    orders = Order.objects.count()
    reply = caller("post", "/orders", json={"plan": plan.pk, "purpose": "x", "parameters": {}})
    assert reply.status_code == 422, reply.json()
    assert reply.json()["code"] == "parameter_schema_invalid"
    assert Order.objects.count() == orders
    assert fetched == []


def test_one_brokers_bad_catalogue_stops_no_other_refresh(market, monkeypatch):
    """A broker whose catalogue had "tags": 5, read first, stopped the hourly refresh of
    every other broker, and was not even told why."""
    good = Broker.objects.get(provider=market.provider)
    hostile = _hostile_broker(market)
    bad = _service({}, tags=5)

    def client_for(broker, **options):
        if broker.pk == hostile.pk:
            transport = httpx.MockTransport(lambda request: httpx.Response(200, json=bad))
            return services.osb.Client(broker.url, "u", "p", transport=transport)
        return real(broker, transport=market.transport)

    real = services.broker_client
    monkeypatch.setattr(services, "broker_client", client_for)
    Broker.objects.filter(pk=good.pk).update(catalog_read_at=None)
    _hostile_first(monkeypatch, hostile)
    assert services.refresh_all_catalogs() == 2
    good.refresh_from_db()
    hostile.refresh_from_db()
    assert good.catalog_read_at is not None and good.catalog_error == ""
    assert "tags" in hostile.catalog_error and hostile.catalog_read_at is None


def test_an_unexpected_failure_of_one_broker_is_recorded_and_stops_no_other(market,
                                                                           monkeypatch):
    """Whatever else goes wrong with one broker's catalogue stays that broker's error."""
    good = Broker.objects.get(provider=market.provider)
    hostile = _hostile_broker(market)
    real = services.refresh_catalog

    def refresh(broker, **options):
        if broker.pk == hostile.pk:
            raise TypeError("unexpected")
        return real(broker, transport=market.transport)

    monkeypatch.setattr(services, "refresh_catalog", refresh)
    Broker.objects.filter(pk=good.pk).update(catalog_read_at=None)
    _hostile_first(monkeypatch, hostile)
    assert services.refresh_all_catalogs() == 2
    good.refresh_from_db()
    hostile.refresh_from_db()
    assert good.catalog_read_at is not None
    assert "TypeError" in hostile.catalog_error


def _hostile_first(monkeypatch, hostile: Broker) -> None:
    """The refresh reads the hostile broker before the others."""
    brokers = sorted(Broker.objects.filter(provider__status="qualified"),
                     key=lambda b: b.pk != hostile.pk)
    monkeypatch.setattr(Broker.objects, "select_related",
                        lambda *a: type("Q", (), {"filter": lambda self, **k: brokers})())


def test_a_deletion_the_broker_never_finishes_ends_within_the_polling_cap(market):
    """A catalogue set a plan's maximum_polling_duration to 63 years and its broker
    answered every poll of a deletion "in progress": the instance stayed "deprovisioning",
    billed, and the agent could not delete it again."""
    broker = Broker.objects.get(provider=market.provider)
    with services.broker_client(broker, transport=market.transport) as client:
        catalog = client.catalog().body
    for service in catalog["services"]:
        for plan in service["plans"]:
            plan["maximum_polling_duration"] = 2_000_000_000
    services.store_catalog(broker, catalog)
    order = services.place_order(actor=market.it, plan=market.plan("pg-small"), purpose="Web")
    market.work(rounds=3)
    instance = Instance.objects.get(order=order)
    start = market.clock
    services.request_deprovision(actor=market.it, instance=instance, now=start)

    def hostile(request):
        if request.method == "DELETE":
            return httpx.Response(202, json={"operation": "del"})
        return httpx.Response(200, json={"state": "in progress"})

    clock = start
    for _ in range(48):  # two days of the worker, hourly
        clock += dt.timedelta(hours=1)
        operations.advance_operations(clock, transport=httpx.MockTransport(hostile))
    instance.refresh_from_db()
    # the deletion failed: the instance is usable and deletable again
    assert instance.state == InstanceState.ACTIVE and instance.last_error
    assert market.plan("pg-small").maximum_polling_duration == models.MAX_POLLING_SECONDS
    services.request_deprovision(actor=market.it, instance=instance, now=clock)
    market.clock = clock
    market.work(rounds=3)
    instance.refresh_from_db()
    assert instance.state == InstanceState.DELETED and instance.ended_at is not None
