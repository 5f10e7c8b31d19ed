"""The cloud pages as their users see them: the catalogue, an order from the form to
credentials shown once, the reviewers' and providers' pages, the cost dashboards."""

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from sahab.cloud import metering, services
from sahab.cloud.models import Attestation, Binding, Instance, Order, Provider
from sahab.ledger import services as ledger
from tests import factories


def client_for(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_the_catalogue_shows_plans_side_by_side_with_a_chart(market):
    page = client_for().get("/cloud/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "PostgreSQL M" in text and "0.600" in text and 'class="chart"' in text
    assert "Carthage Cloud" in text
    it_page = client_for(market.it).get("/cloud/").content.decode()
    assert f"/cloud/plans/{market.plan('pg-small').pk}/order" in it_page
    filtered = client_for().get("/cloud/", {"max_price": "0.2"}).content.decode()
    assert "PostgreSQL S" in filtered and "PostgreSQL L" not in filtered
    csv = client_for().get("/cloud/", {"format": "csv"})
    assert csv["Content-Type"].startswith("text/csv") and b"pg-large" not in csv.content


def _described_ids(page: str) -> set[str]:
    import re

    return {i for ids in re.findall(r'aria-describedby="([^"]+)"', page) for i in ids.split()}


def test_the_order_form_is_made_from_the_plan_schema_and_shows_the_cost_first(market,
                                                                                settings):
    import re

    plan = market.plan("pg-medium")
    page = client_for(market.it).get(f"/cloud/plans/{plan.pk}/order").content.decode()
    # one field per parameter, with the schema's choices, limits and help
    assert '<select name="parameter_environment"' in page
    assert all(f'<option value="{v}"' in page for v in ("production", "staging", "test"))
    assert re.search(r'<input[^>]*name="parameter_application"[^>]*maxlength="100"', page)
    assert "The information system that will use the database." in page
    assert 'name="parameters"' not in page  # nothing is left for a JSON box
    assert "{'" not in page  # no schema printed as a Python dict
    # every help text a field names exists on the page
    ids = set(re.findall(r' id="([^"]+)"', page))
    assert _described_ids(page) and _described_ids(page) <= ids
    # the month's cost (0.600 TND an hour, 730 hours), the budget left, the approval rule
    assert "438.000\xa0TND" in page and "Left until 31 December" in page
    assert "your ministry's finance service approves it" in page
    settings.CLOUD_APPROVAL_THRESHOLD = 1000
    cheap = client_for(market.it).get(f"/cloud/plans/{plan.pk}/order").content.decode()
    assert "approved at once" in cheap


def test_a_schema_field_no_simple_input_holds_goes_to_the_json_box():
    from sahab.cloud.forms import OrderForm

    schema = {"type": "object", "required": ["replicas"], "properties": {
        "replicas": {"type": "integer", "minimum": 1, "maximum": 3, "title": "Replicas"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "backup": {"type": "boolean", "default": True}}}
    form = OrderForm({"purpose": "x", "parameter_replicas": "4", "parameters": "{}"},
                     schema=schema)
    assert not form.is_valid() and "parameter_replicas" in form.errors
    assert set(form.fields) == {"purpose", "parameter_replicas", "parameter_backup",
                                "parameters"}
    form = OrderForm({"purpose": "x", "parameter_replicas": "2", "parameter_backup": "on",
                      "parameters": '{"tags": ["paie"]}'}, schema=schema)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["parameters"] == {"tags": ["paie"], "replicas": 2, "backup": True}
    bad = OrderForm({"purpose": "x", "parameter_replicas": "2", "parameters": "[1"},
                    schema=schema)
    assert not bad.is_valid() and "not valid JSON" in str(bad.errors["parameters"])
    # a hostile catalogue: odd types are ignored, long texts cut, many fields bounded
    hostile = {"properties": {f"p{i}": {"type": "string", "title": "x" * 5000}
                              for i in range(100)} | {"q": "not a schema"}}
    form = OrderForm(schema=hostile)
    assert len(form.fields) <= 1 + 30 + 1
    assert all(len(str(f.label)) <= 300 for f in form.fields.values())


def test_an_order_placed_approved_and_credentials_shown_once_through_the_pages(market):
    it, finance = client_for(market.it), client_for(market.finance)
    plan = market.plan("pg-medium")
    bad = it.post(f"/cloud/plans/{plan.pk}/order",
                  {"purpose": "GRH", "parameter_environment": "prod"})
    assert bad.status_code == 200 and "Select a valid choice" in bad.content.decode()
    placed = it.post(f"/cloud/plans/{plan.pk}/order",
                     {"purpose": "GRH", "parameter_environment": "production",
                      "parameter_application": "Gestion des RH"})
    order = Order.objects.get()
    assert order.parameters == {"environment": "production", "application": "Gestion des RH"}
    assert placed.status_code == 302 and placed["Location"].endswith(f"/{order.number}/")
    page = finance.get(f"/cloud/orders/{order.number}/").content.decode()
    assert "Approve" in page
    # the order's entry is pending until the worker's sequencer integrates it
    assert f'href="/ledger/promises/{order.ledger_pending}">ledger entry promised' in page
    ledger.integrate_pending()
    order.refresh_from_db()
    page = finance.get(f"/cloud/orders/{order.number}/").content.decode()
    assert f'href="/ledger/view/{order.ledger_index}/">#{order.ledger_index}' in page
    assert '<span title="cloud.order.placed">Cloud order placed</span>' in page  # a title
    finance.post(f"/cloud/orders/{order.number}/approve", {"note": ""})
    market.work(rounds=3)
    partial = it.get(f"/cloud/orders/{order.number}/", HTTP_HX_REQUEST="true")
    assert partial.status_code == 200 and "Active" in partial.content.decode()
    it.post(f"/cloud/orders/{order.number}/bind", {"name": "grh"})
    market.work()
    binding = Binding.objects.get()
    shown = it.post(f"/cloud/orders/{order.number}/reveal", {"binding": binding.pk})
    assert shown.status_code == 200 and shown["Cache-Control"] == "no-store"
    assert "postgresql://" in shown.content.decode()
    again = it.post(f"/cloud/orders/{order.number}/reveal", {"binding": binding.pk}, follow=True)
    assert "already shown" in again.content.decode()
    assert client_for(market.other_it).get(f"/cloud/orders/{order.number}/").status_code == 404
    listing = it.get("/cloud/orders/", {"format": "json"}).json()
    assert listing[0]["number"] == order.number and listing[0]["instance_state"] == "active"


def test_the_brokers_dashboard_link_names_the_order_only_to_those_who_may_see_it(market):
    """The reference broker's dashboard_url (/osb/dashboard/<instance id>) redirected
    anybody, signed in or not, to the order's page, naming the order's number."""
    order = services.place_order(actor=market.it, plan=market.plan("pg-small"),
                                 purpose="Test")
    instance = Instance.objects.get(order=order)
    link = f"/osb/dashboard/{instance.instance_id}"
    anonymous = client_for().get(link)
    assert anonymous.status_code == 302 and order.number not in anonymous["Location"]
    assert "/login" in anonymous["Location"] or "/accounts/" in anonymous["Location"]
    assert client_for(market.other_it).get(link).status_code == 404
    assert client_for(market.it).get(link)["Location"] == f"/cloud/orders/{order.number}/"
    assert client_for(market.provider_user).get(link).status_code == 302
    assert client_for(market.it).get("/osb/dashboard/no-such-instance").status_code == 404


def test_a_refused_action_shows_its_reason(market):
    it = client_for(market.it)
    it.post(f"/cloud/plans/{market.plan('pg-small').pk}/order", {"purpose": "Web"})
    order = Order.objects.get()
    page = it.post(f"/cloud/orders/{order.number}/deprovision", follow=True).content.decode()
    assert "Only an active instance is deleted." in page


def test_reviewers_accept_and_revoke_attestations_from_the_provider_page(market):
    reviewer, provider = client_for(market.reviewer), market.provider
    company, member = factories.company(name="Jasmin Hosting")
    applicant = client_for(member.user)
    applicant.post("/cloud/provider/apply", {"locations": "Sousse", "description": ""})
    new = Provider.objects.get(company=company)
    today = timezone.localdate()
    upload = applicant.post("/cloud/provider/attestation", {
        "label": "g-cloud", "issuer": "ANCS", "scope": "IaaS", "reference": "GC-9",
        "valid_from": today.isoformat(), "expires_on": (today + dt.timedelta(days=90))
        .isoformat()}, follow=True)
    assert "Recorded in the ledger." in upload.content.decode()
    attestation = Attestation.objects.get(provider=new)
    page = reviewer.get(f"/cloud/providers/{new.pk}/").content.decode()
    assert "Accept" in page and "GC-9" in page
    reviewer.post(f"/cloud/providers/{new.pk}/accept", {"attestation": attestation.pk})
    reviewer.post(f"/cloud/providers/{new.pk}/qualify", {"note": ""})
    new.refresh_from_db()
    assert new.status == Provider.Status.QUALIFIED
    refused = applicant.post(f"/cloud/providers/{new.pk}/qualify", follow=True)
    assert "Only a platform administrator" in refused.content.decode()
    g_cloud = provider.attestations.get(label="g-cloud")
    reviewer.post(f"/cloud/providers/{provider.pk}/revoke",
                  {"attestation": g_cloud.pk, "note": "Audit"})
    assert "no valid ANCS G-cloud" in client_for().get("/cloud/").content.decode()


def test_a_provider_registers_a_broker_that_cannot_be_read(market):
    provider_page = client_for(market.provider_user)
    response = provider_page.post("/cloud/provider/broker", {
        "url": "http://127.0.0.1:9/osb/", "username": "x", "password": "y"}, follow=True)
    assert "not allowed or could not be reached" in response.content.decode()
    assert provider_page.get("/cloud/provider/").status_code == 200


@pytest.mark.parametrize("user", ["it", "reviewer"])
def test_the_dashboard_shows_spending_budgets_and_savings(market, user):
    client_for(market.it).post(f"/cloud/plans/{market.plan('pg-small').pk}/order",
                               {"purpose": "Web"})
    market.work(rounds=3)
    Instance.objects.update(activated_at=timezone.now() - dt.timedelta(hours=48))
    metering.meter_usage()
    page = client_for(getattr(market, user)).get("/cloud/dashboard/")
    text = page.content.decode()
    assert page.status_code == 200 and "Carthage Cloud" in text and 'class="chart"' in text
    assert "On-premise" in text
    assert ("Spending by administration" in text) == (user == "reviewer")
    months = client_for(market.it).get("/cloud/dashboard/", {"table": "months",
                                                             "format": "json"}).json()
    assert float(months[-1]["cost_tnd"]) > 0
    export = client_for(market.it).get("/cloud/focus.csv")
    assert b"".join(export.streaming_content).startswith(b"BilledCost,")


def test_finance_sets_the_budget_from_the_dashboard(market):
    finance = client_for(market.finance)
    year = timezone.now().year
    finance.post("/cloud/dashboard/budget", {"year": year, "amount": "1234.5",
                                             "thresholds": "50, 90"})
    budget = market.mf.cloud_budgets.get(year=year)
    assert budget.amount == 1234.5 and budget.thresholds == [50, 90]
    refused = client_for(market.it).post("/cloud/dashboard/budget", {
        "year": year, "amount": "1", "thresholds": "50"}, follow=True)
    assert "set its cloud budget" in refused.content.decode()


def test_the_admin_lists_cloud_records_without_secrets(market, admin_user):
    client_for(market.it).post(f"/cloud/plans/{market.plan('pg-small').pk}/order",
                               {"purpose": "Web"})
    market.work(rounds=3)
    admin = client_for(admin_user)
    for model in ("provider", "broker", "serviceplan", "order", "instance", "usagerecord",
                  "budget", "alert", "dbaasinstance", "brokerrequest"):
        page = admin.get(f"/admin/cloud/{model}/")
        assert page.status_code == 200, model
    broker = admin.get(f"/admin/cloud/broker/{market.provider.broker.pk}/change/")
    assert broker.status_code == 200 and b"password_sealed" not in broker.content


def test_attestation_documents_are_checked_and_shown_to_reviewers_only(market):
    from sahab.cloud import services
    from sahab.core.errors import InvalidInput

    today = timezone.localdate()
    with pytest.raises(InvalidInput, match=r"not a real \.pdf"):
        services.submit_attestation(actor=market.provider_user, label="sla", issuer="CNI",
                                    scope="SLA", reference="SLA-1", valid_from=today,
                                    expires_on=today + dt.timedelta(days=30),
                                    document=b"MZ\x90\x00 not a pdf", document_name="sla.pdf")
    attestation = market.provider.attestations.first()
    url = f"/cloud/attestations/{attestation.pk}/document"
    document = client_for(market.reviewer).get(url)
    assert document.status_code == 200 and document.content.startswith(b"%PDF")
    assert client_for(market.provider_user).get(url).status_code == 200
    assert client_for(market.it).get(url).status_code == 404
