import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from sahab.core import keys
from sahab.directory import services as directory
from sahab.directory.models import AdministrationKind, Role
from sahab.directory.selectors import SYSTEM
from sahab.ledger import services as ledger
from tests import factories

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


class Actor:
    """A user with an API token, calling the JSON API."""

    def __init__(self, user):
        self.user = user
        self.token = directory.issue_api_token(actor=SYSTEM, user=user, name="test")[1]
        self.client = Client()

    def call(self, method: str, path: str, json=None):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}
        if json is not None or method != "get":  # the API reads JSON bodies only
            kwargs |= {"data": {} if json is None else json, "content_type": "application/json"}
        return getattr(self.client, method)(f"/api/procurement{path}", **kwargs)

    def bid(self, reference: str, prices: dict, **content):
        """Seal and sign on the company's side (from the public tender detail), then post
        only the envelope, as an API client does."""
        from sahab.directory.selectors import company_of
        from sahab.procurement import client

        detail = self.call("get", f"/tenders/{reference}").json()
        envelope = client.seal_bid(detail, company_id=company_of(self.user).pk,
                                   key=factories.signing_key(self.user), prices=prices,
                                   **content)
        return self.call("post", f"/tenders/{reference}/bids", {"envelope": envelope})


def publish(officer: Actor, reference: str, **committee):
    """Name a committee (3 members, 2 to open; their keys kept as the demo keeps them, so
    that the worker releases them after the deadline), then publish through the API."""
    from sahab.procurement.models import Tender

    factories.committee(Tender.objects.get(reference=reference), **committee)
    return officer.call("post", f"/tenders/{reference}/publish")


def published_through_api(world, **committee):
    """A new tender of ``world``'s officer (``tender_payload``), created and published
    through the API with its committee."""
    from sahab.procurement.models import Tender

    ref = world["officer"].call("post", "/tenders", tender_payload()).json()["reference"]
    assert publish(world["officer"], ref, **committee).status_code == 200
    return Tender.objects.get(reference=ref)


@pytest.fixture
def world(db, sahab_home):
    """Two ministries, their buyers, evaluators and finance, an auditor, three companies."""
    keys.ensure_ledger_key()
    keys.ensure_opening_key()
    ledger._signer.cache_clear()
    mf = factories.administration(code="MF", mail_domain="finances.gov.tn")
    ms = factories.administration(code="MS")
    oversight = factories.administration(code="HAICOP", kind=AdministrationKind.AGENCY)
    w = {"mf": mf, "ms": ms}
    w["officer"] = Actor(factories.agent(administration=mf,
                                         roles=[Role.PROCUREMENT_OFFICER]).user)
    w["other_officer"] = Actor(factories.agent(administration=ms,
                                               roles=[Role.PROCUREMENT_OFFICER]).user)
    w["evaluators"] = [Actor(factories.agent(administration=mf, roles=[Role.EVALUATOR]).user)
                       for _ in range(2)]
    w["finance"] = Actor(factories.agent(administration=mf, roles=[Role.FINANCE]).user)
    w["auditor"] = Actor(factories.agent(administration=oversight,
                                         roles=[Role.AUDITOR, Role.COMPLAINTS_BODY]).user)
    w["companies"] = []
    for name in ("Atlas", "Carthage", "Medina"):
        company, member = factories.company(name=name)
        w["companies"].append((company, Actor(member.user)))
    return w


def tender_payload(**overrides) -> dict:
    now = timezone.now()
    payload = {
        "buyer": "MF", "title": "Serveurs et stockage", "procedure": "open",
        "enquiry_deadline": (now + dt.timedelta(days=10)).isoformat(),
        "submission_deadline": (now + dt.timedelta(days=25)).isoformat(),
        "lots": [{"title": "Serveurs", "cpv": "48820000-2", "estimated_value": "300000"},
                 {"title": "Stockage", "cpv": "30233000-1", "estimated_value": "120000.500"}],
    }
    return payload | overrides


@pytest.fixture
def published_tender(world):
    """An open tender of ``world``'s officer, published through the API."""
    from sahab.procurement.models import Tender

    ref = world["officer"].call("post", "/tenders", tender_payload()).json()["reference"]
    assert publish(world["officer"], ref).status_code == 200
    return Tender.objects.get(reference=ref)
