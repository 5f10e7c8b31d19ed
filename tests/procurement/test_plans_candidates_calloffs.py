import datetime as dt

import pytest
import time_machine

from sahab.directory.selectors import SYSTEM
from sahab.procurement import services
from sahab.procurement.models import CallOff, Contract, Tender
from tests import factories
from tests.procurement.conftest import publish, tender_payload


def test_plans_through_the_api(world, client):
    officer = world["officer"]
    plan = officer.call("post", "/plans", {"administration": "MF", "year": 2027,
                                           "title": "Plan 2027"})
    assert plan.status_code == 201
    item = officer.call("post", f"/plans/{plan.json()['id']}/items", {
        "description": "Serveurs", "cpv": "48820000-2", "budget_line": "Titre II",
        "estimated_value": "300000", "quarter": 2, "procedure": "open"})
    assert item.status_code == 201
    assert officer.call("post", "/plans", {"administration": "MF", "year": 2027,
                                           "title": "again"}).status_code == 409
    assert world["other_officer"].call("post", "/plans", {
        "administration": "MF", "year": 2028, "title": "x"}).status_code == 403
    listed = client.get("/api/procurement/plans", {"administration": "MF"}).json()
    assert listed["items"][0]["items"][0]["description"] == "Serveurs"


def test_restricted_procedure_candidates(world):
    officer = world["officer"]
    (atlas, a), (_, c), _ = world["companies"]
    ref = officer.call("post", "/tenders", tender_payload(procedure="restricted")).json()[
        "reference"]
    publish(officer, ref)
    assert a.call("post", f"/tenders/{ref}/candidacy").status_code == 201
    assert c.call("post", f"/tenders/{ref}/candidacy").status_code == 201
    assert a.call("post", f"/tenders/{ref}/candidacy").status_code == 409
    assert a.call("get", f"/tenders/{ref}/candidates").status_code == 403
    assert len(officer.call("get", f"/tenders/{ref}/candidates").json()) == 2
    assert officer.call("post", f"/tenders/{ref}/candidates/{atlas.pk}",
                        {"qualified": True}).json()["status"] == "qualified"
    assert a.bid(ref, {"1": "100"}).status_code == 201
    assert c.bid(ref, {"1": "90"}).status_code == 403


@pytest.fixture
def framework_contract(world):
    """A completed framework agreement with one supplier per lot and its contract."""
    a = world["companies"][0][1]
    officer = world["officer"]
    ref = officer.call("post", "/tenders", tender_payload(procedure="framework")).json()[
        "reference"]
    publish(officer, ref)
    a.bid(ref, {"1": "1000", "2": "500"})
    tender = Tender.objects.get(reference=ref)
    with time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1)):
        services.advance_tenders()
        tender.refresh_from_db()
        ev = world["evaluators"][0]
        ev.call("post", f"/tenders/{ref}/declarations", {"no_conflict": True})
        for row in tender.bids.get().lot_prices.all():
            ev.call("post", f"/tenders/{ref}/eligibility",
                    {"bid": row.bid_id, "lot": row.lot.number, "eligible": True})
        officer.call("post", f"/tenders/{ref}/evaluation")
        factories.adopt_evaluation(tender)
        officer.call("post", f"/tenders/{ref}/award", {})
    with time_machine.travel(tender.submission_deadline + dt.timedelta(days=20)):
        services.advance_tenders()
    award = tender.awards.get(lot__number=1)
    return factories.countersign(services.sign_contract(
        actor=SYSTEM, award=award, start_date=dt.date(2027, 1, 1),
        end_date=dt.date(2028, 12, 31)))


def test_direct_call_offs_stay_within_the_framework(world, framework_contract):
    other = world["other_officer"]  # another ministry orders under the central framework
    url = f"/contracts/{framework_contract.pk}/call-offs"
    first = other.call("post", url, {"buyer": "MS", "description": "Serveurs pour MS",
                                     "quantity": "0.6"})
    assert first.status_code == 201 and first.json()["value"] == "600.000"
    assert other.call("post", url, {"buyer": "MS", "description": "x", "quantity": "0.5"}
                      ).status_code == 422  # would exceed the framework's value
    assert other.call("post", url, {"buyer": "MS", "description": "x", "quantity": "0.1",
                                    "unit_price": "2000"}).status_code == 422
    assert other.call("post", url, {"buyer": "MF", "description": "x", "quantity": "0.1"}
                      ).status_code == 403  # only for the caller's own administration
    assert CallOff.objects.count() == 1
    assert Contract.objects.get(pk=framework_contract.pk).tender.procedure == "framework"
