"""A ministry's finance directorate approves the orders of every unit of the ministry, on
the page and in the API, as the service allows (the journey that did not finish: order
CL-2026-00007 of MF-DSI answered 404 to the finance officer of MF-DAF)."""

from types import SimpleNamespace

import pytest
from django.test import Client
from django.urls import reverse

from sahab.cloud import selectors, services
from sahab.cloud.models import Order
from sahab.core.errors import PermissionDenied
from sahab.directory.models import AdministrationKind, Role
from tests import factories
from tests.cloud.test_api import Caller


@pytest.fixture
def ministry(market):
    """MF-DSI orders; the finance officer sits in MF-DAF, a sibling unit of the ministry."""
    dsi = factories.administration(code="MF-DSI", kind=AdministrationKind.DIRECTORATE,
                                   parent=market.mf)
    daf = factories.administration(code="MF-DAF", kind=AdministrationKind.DIRECTORATE,
                                   parent=market.mf)
    it = factories.agent(administration=dsi, roles=[Role.IT_OFFICER]).user
    finance = factories.agent(administration=daf, roles=[Role.FINANCE]).user
    elsewhere = factories.agent(roles=[Role.FINANCE]).user  # another ministry's
    order = services.place_order(actor=it, plan=market.plan("pg-medium"), purpose="Paie")
    assert order.status == Order.Status.PENDING_APPROVAL
    return SimpleNamespace(dsi=dsi, it=it, finance=finance, elsewhere=elsewhere, order=order)


def test_the_finance_officer_of_the_ministry_sees_and_approves_a_units_order_on_the_page(
        ministry):
    finance, elsewhere, order = ministry.finance, ministry.elsewhere, ministry.order
    web = Client()
    web.force_login(finance)
    assert order.number in web.get(reverse("cloud:orders")).content.decode()
    page = web.get(reverse("cloud:order", args=[order.number]))
    assert page.status_code == 200
    approve = reverse("cloud:order_action", args=[order.number, "approve"])
    assert approve in page.content.decode()  # the page offers what the service allows
    web.post(approve, {"note": ""})
    order.refresh_from_db()
    assert order.status == Order.Status.APPROVED

    # another ministry's finance officer neither sees it nor is offered anything
    other = Client()
    other.force_login(elsewhere)
    assert other.get(reverse("cloud:order", args=[order.number])).status_code == 404


def test_the_same_decision_through_the_api_and_the_same_refusals(market, ministry):
    it, finance, elsewhere, order = (ministry.it, ministry.finance, ministry.elsewhere,
                                     ministry.order)
    assert Caller(elsewhere)("post", f"/orders/{order.number}/decision",
                             json={"approve": True}).status_code == 404
    assert Caller(finance)("get", f"/orders/{order.number}").status_code == 200
    decided = Caller(finance)("post", f"/orders/{order.number}/decision",
                              json={"approve": False, "note": "Pas au budget"})
    assert decided.status_code == 200 and decided.json()["status"] == "refused"
    # the one predicate, as the service reads it
    second = services.place_order(actor=it, plan=market.plan("pg-medium"), purpose="GRH")
    assert selectors.may_decide_order(finance, second)
    assert not selectors.may_decide_order(it, second)
    assert not selectors.may_decide_order(elsewhere, second)
    with pytest.raises(PermissionDenied):
        services.decide_order(actor=elsewhere, order=second, approve=True)


def test_the_finance_officers_dashboard_counts_the_units_spending(ministry):
    finance, elsewhere = ministry.finance, ministry.elsewhere
    visible = selectors.administrations_visible_to(finance)
    assert visible.filter(code="MF-DSI").exists() and visible.filter(code="MF").exists()
    assert not selectors.administrations_visible_to(elsewhere).filter(code="MF-DSI").exists()
