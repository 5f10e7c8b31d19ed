"""The cloud API as its users call it with their tokens: public catalogue, orders and
approvals, credentials, provider usage reports, budgets, costs and the FOCUS export."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from sahab.cloud.models import Instance
from sahab.directory import services as directory
from sahab.directory.selectors import SYSTEM


class Caller:
    def __init__(self, user=None):
        self.client = Client()
        self.headers = {}
        if user is not None:
            token = directory.issue_api_token(actor=SYSTEM, user=user, name="test")[1]
            self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def __call__(self, method, path, json=None, **params):
        kwargs = dict(self.headers)
        if json is not None or (method != "get" and not params):  # the API reads JSON only
            kwargs |= {"data": {} if json is None else json, "content_type": "application/json"}
        elif params:
            kwargs["data"] = params
        return getattr(self.client, method)(f"/api/cloud{path}", **kwargs)


@pytest.fixture
def api(market):
    return {name: Caller(getattr(market, name)) for name in
            ("it", "finance", "other_it", "reviewer", "provider_user")} | {"public": Caller()}


def test_the_catalogue_is_public_priced_by_contract_and_filterable(market, api):
    rows = api["public"]("get", "/catalogue").json()
    assert {r["plan_name"]: r["hourly_price"] for r in rows} == {
        "PostgreSQL S": "0.150", "PostgreSQL M": "0.600", "PostgreSQL L": "2.100"}
    assert all(r["orderable"] and "g-cloud" in r["labels"] for r in rows)
    assert rows[0]["contract_ocid"] == market.contract.tender.ocid
    assert len(api["public"]("get", "/catalogue", max_price="0.6").json()) == 2
    assert api["public"]("get", "/catalogue", category="compute").json() == []
    assert api["public"]("get", "/catalogue", location="Sfax").json() != []
    assert api["public"]("get", "/catalogue", category="nope").status_code == 422
    provider = api["public"]("get", f"/providers/{market.provider.pk}").json()
    assert provider["can_take_orders"] and provider["attestations"]


def test_an_order_through_the_api_from_placing_to_credentials(market, api):
    plan = api["public"]("get", "/catalogue").json()[1]["plan"]  # PostgreSQL M
    assert api["finance"]("post", "/orders", json={"plan": plan, "purpose": "x"}) \
        .status_code == 403
    placed = api["it"]("post", "/orders", json={"plan": plan, "purpose": "GRH",
                                                "parameters": {"environment": "production"}})
    assert placed.status_code == 201, placed.json()
    number = placed.json()["number"]
    assert placed.json()["status"] == "pending_approval" and placed.json()["instance"] is None
    assert api["other_it"]("get", f"/orders/{number}").status_code == 404
    assert api["public"]("get", f"/orders/{number}").status_code == 401
    decided = api["finance"]("post", f"/orders/{number}/decision", json={"approve": True})
    assert decided.json()["status"] == "approved"
    market.work(rounds=3)
    assert api["it"]("get", f"/orders/{number}").json()["instance"]["state"] == "active"
    binding = api["it"]("post", f"/orders/{number}/bindings", json={"name": "grh"}).json()
    market.work()
    path = f"/orders/{number}/bindings/{binding['binding_id']}"
    assert api["finance"]("post", path + "/reveal").status_code == 403
    credentials = api["it"]("post", path + "/reveal").json()
    assert credentials["uri"].startswith("postgresql://")
    assert api["it"]("post", path + "/reveal").status_code == 409
    assert api["it"]("delete", path).json()["state"] == "unbinding"
    market.work()
    assert api["it"]("delete", f"/orders/{number}/instance").json()["state"] == "deprovisioning"
    market.work(rounds=3)
    assert api["it"]("get", f"/orders/{number}").json()["instance"]["state"] == "deleted"


def test_bad_orders_get_clear_errors(market, api):
    assert api["it"]("post", "/orders", json={"plan": 999999, "purpose": "x"}).status_code == 404
    plan = api["public"]("get", "/catalogue").json()[0]["plan"]
    assert api["it"]("post", "/orders", json={"plan": plan}).status_code == 422
    wrong = api["it"]("post", "/orders", json={"plan": plan, "purpose": "x",
                                               "parameters": {"unknown": True}})
    assert wrong.status_code == 422 and "parameters" in wrong.json()["detail"]
    assert api["it"]("post", "/orders", json={"plan": plan, "purpose": "x",
                                              "administration": "NOPE"}).status_code == 404


def test_an_order_beyond_the_budget_is_refused(market, api):
    api["finance"]("put", "/budgets", json={"administration": market.mf.code,
                                           "year": timezone.now().year, "amount": "10"})
    plan = api["public"]("get", "/catalogue").json()[2]["plan"]
    refused = api["it"]("post", "/orders", json={"plan": plan, "purpose": "Trop cher"})
    assert refused.status_code == 409 and "budget" in refused.json()["detail"]


def test_providers_report_usage_of_their_own_instances_only(market, api):
    plan = api["public"]("get", "/catalogue").json()[0]["plan"]
    number = api["it"]("post", "/orders", json={"plan": plan, "purpose": "Web"}).json()["number"]
    market.work(rounds=3)
    instance = Instance.objects.get(order__number=number)
    Instance.objects.filter(pk=instance.pk).update(
        activated_at=timezone.now() - dt.timedelta(hours=5))
    hour = (timezone.now() - dt.timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    report = {"instance_id": instance.instance_id, "period_start": hour.isoformat(),
              "size_bytes": 10 * 1024**3, "connections": 3}
    assert api["it"]("post", "/provider/usage", json=report).status_code == 403
    created = api["provider_user"]("post", "/provider/usage", json=report)
    assert created.status_code == 201 and Decimal(created.json()["cost"]) == Decimal("0.15")
    assert api["provider_user"]("post", "/provider/usage", json=report).status_code == 201
    changed = api["provider_user"]("post", "/provider/usage", json={**report, "connections": 9})
    assert changed.status_code == 409
    half = api["provider_user"]("post", "/provider/usage",
                                json={**report, "period_start": (hour.replace(minute=30))
                                      .isoformat()})
    assert half.status_code == 422
    # 10 GiB is over the small plan's 5 GB: the administration is alerted
    assert market.mf.cloud_alerts.filter(kind="limit").exists()
    usage = api["it"]("get", f"/orders/{number}/usage").json()
    assert usage["count"] == 1 and usage["items"][0]["size_bytes"] == 10 * 1024**3


def test_costs_budgets_savings_and_focus_export(market, api):
    from sahab.cloud import metering

    plan = api["public"]("get", "/catalogue").json()[0]["plan"]
    api["it"]("post", "/orders", json={"plan": plan, "purpose": "Web"})
    market.work(rounds=3)
    Instance.objects.update(activated_at=timezone.now() - dt.timedelta(hours=30))
    assert metering.meter_usage() >= 29
    costs = api["it"]("get", "/costs").json()
    assert costs["by_provider"][0]["key"] == "Carthage Cloud"
    assert float(costs["total"]) == pytest.approx(0.15 * 29, abs=0.2)
    assert api["other_it"]("get", "/costs").json()["total"] == "0.000"
    savings = api["it"]("get", "/savings").json()
    assert float(savings["onprem"]) > float(savings["cloud"]) > 0
    budgets = api["finance"]("get", "/budgets").json()
    assert budgets[0]["administration"] == market.mf.code and float(budgets[0]["spent"]) > 0
    export = api["it"]("get", "/focus.csv")
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    text = b"".join(export.streaming_content).decode()
    assert text.startswith("BilledCost,") and "Carthage Cloud" in text
    assert api["other_it"]("get", "/focus.csv").streaming_content  # header only


def test_the_contract_price_schedule_is_recorded_by_the_buyer_and_public(market):
    from sahab.directory.models import Role
    from tests import factories

    buyer = Caller(factories.agent(administration=market.cni,
                                   roles=[Role.PROCUREMENT_OFFICER]).user)
    path = f"/api/procurement/contracts/{market.contract.pk}/prices"
    line = {"code": "extra-plan", "description": "Sauvegarde", "unit_price": "0.020"}
    assert Caller(market.it).client.post(path, line, content_type="application/json",
                                         **Caller(market.it).headers).status_code == 403
    created = buyer.client.post(path, line, content_type="application/json", **buyer.headers)
    assert created.status_code == 201 and created.json()["unit_price"] == "0.020"
    again = buyer.client.post(path, line, content_type="application/json", **buyer.headers)
    assert again.status_code == 409
    public = Client().get(path).json()
    assert {p["code"] for p in public} >= {"extra-plan"} and len(public) == 4
    page = Client().get(f"/tenders/{market.contract.tender.reference}/").content.decode()
    assert "Sauvegarde" in page
