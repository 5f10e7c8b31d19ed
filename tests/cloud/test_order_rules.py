"""Who may approve or refuse an order, walked as a table: for each actor (role and place
in the tree), the one predicate, the order page's buttons, the API and the service give
the same answer — what a page offers is exactly what the service allows."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from sahab.cloud import selectors, services
from sahab.cloud.models import Order
from sahab.core.errors import DomainError, PermissionDenied
from sahab.directory.models import AdministrationKind, Role
from tests import factories
from tests.cloud.test_api import Caller

# Where the actor sits, seen from the ordering unit MF-DSI: "unit" is MF-DSI itself,
# "sibling" another unit of the same ministry (MF-DAF), "ministry" the ministry (MF),
# "other" another ministry. Written from docs/cloud.md, apart from the code under test:
# the finance service of the ordering unit's ministry decides, anywhere in that ministry,
# except the agent who placed the order.
TABLE = [
    # (actor, expected)
    ("finance@unit", True),
    ("finance@sibling", True),
    ("finance@ministry", True),
    ("finance@other", False),
    ("finance+it@unit (placed it)", False),
    ("it@unit", False),
    ("it@ministry", False),
    ("admin@ministry", False),
    ("procurement@ministry", False),
    ("auditor@other", False),
    ("platform admin", False),
    ("company member", False),
]


class Rollback(Exception):
    """Undoes a decision that the table only needed to see accepted."""


@pytest.fixture
def tree(market):
    dsi = factories.administration(code="MF-DSI", kind=AdministrationKind.DIRECTORATE,
                                   parent=market.mf)
    daf = factories.administration(code="MF-DAF", kind=AdministrationKind.DIRECTORATE,
                                   parent=market.mf)
    other = factories.administration(code="MS")
    places = {"unit": dsi, "sibling": daf, "ministry": market.mf, "other": other}
    roles = {"finance": [Role.FINANCE], "it": [Role.IT_OFFICER],
             "admin": [Role.ADMINISTRATION_ADMIN], "procurement": [Role.PROCUREMENT_OFFICER],
             "auditor": [Role.AUDITOR], "finance+it": [Role.FINANCE, Role.IT_OFFICER]}
    actors = {}
    for name, _expected in TABLE:
        if name == "platform admin":
            actors[name] = factories.platform_admin().user
        elif name == "company member":
            actors[name] = factories.company(name="Sfax Conseil")[1].user
        else:
            role, place = name.split(" ")[0].split("@")
            actors[name] = factories.agent(administration=places[place],
                                           roles=roles[role]).user
    orderer = actors["finance+it@unit (placed it)"]
    order = services.place_order(actor=orderer, plan=market.plan("pg-medium"),
                                 purpose="Paie", administration=dsi)
    assert order.status == Order.Status.PENDING_APPROVAL
    return actors, order


def _service_accepts(user, order: Order) -> bool:
    try:
        with transaction.atomic():
            services.decide_order(actor=user, order=order, approve=True)
            raise Rollback
    except Rollback:
        return True
    except PermissionDenied:
        return False


def _page_offers(user, order: Order) -> bool:
    web = Client()
    web.force_login(user)
    page = web.get(reverse("cloud:order", args=[order.number]))
    assert page.status_code in (200, 404)
    approve = reverse("cloud:order_action", args=[order.number, "approve"])
    return page.status_code == 200 and f'action="{approve}"' in page.content.decode()


def _api_accepts(user, order: Order) -> bool:
    try:
        with transaction.atomic():
            answer = Caller(user)("post", f"/orders/{order.number}/decision",
                                  {"approve": True, "note": ""})
            if answer.status_code == 200:
                raise Rollback
    except Rollback:
        return True
    assert answer.status_code in (403, 404), answer.content
    return False


@pytest.mark.parametrize(("actor", "allowed"), TABLE, ids=[name for name, _ in TABLE])
def test_one_answer_to_who_decides_an_order(tree, actor, allowed):
    actors, order = tree
    user = actors[actor]
    assert selectors.may_decide_order(user, order) is allowed
    assert _page_offers(user, order) is allowed
    assert _service_accepts(user, order) is allowed
    assert _api_accepts(user, order) is allowed
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_APPROVAL  # the table changed nothing


def test_a_decided_order_offers_no_decision_to_anyone(tree):
    actors, order = tree
    services.decide_order(actor=actors["finance@sibling"], order=order, approve=False,
                          note="Hors budget")
    order.refresh_from_db()
    for name, _allowed in TABLE:
        assert not _page_offers(actors[name], order), name
        with pytest.raises(DomainError):
            services.decide_order(actor=actors[name], order=order, approve=True)
