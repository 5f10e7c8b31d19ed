"""A small cloud market: the ministry of finance buys PostgreSQL from one qualified
provider whose broker is sahab's reference broker, reached through real HTTP handling
in-process (the same test database), and whose databases are made on a real PostgreSQL
cluster (127.0.0.1:5432, else a throwaway one)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import httpx
import pytest
from django.utils import timezone

from sahab.cloud import broker, operations, services
from sahab.cloud.models import Label, Provider, ServicePlan
from sahab.core import keys
from sahab.core.inprocess import InProcessWSGI
from sahab.directory.models import AdministrationKind, Role
from sahab.ledger import services as ledger
from sahab.procurement import services as procurement
from tests import factories
from tests.databases import postgres_url

PRICES = {"pg-small": "0.150", "pg-medium": "0.600", "pg-large": "2.100"}


@pytest.fixture
def dbaas(settings):
    """The PostgreSQL cluster the reference broker provisions on."""
    settings.DBAAS_URL = postgres_url()
    return settings.DBAAS_URL


@pytest.fixture
def transport():
    return httpx.WSGITransport(app=InProcessWSGI())


@dataclass
class Market:
    mf: object
    cni: object
    it: object
    finance: object
    other_it: object
    reviewer: object
    provider: Provider
    provider_user: object
    contract: object
    transport: httpx.WSGITransport
    clock: dt.datetime = None

    def __post_init__(self):
        self.clock = timezone.now()

    def plan(self, name: str) -> ServicePlan:
        return ServicePlan.objects.get(name=name, offering__broker__provider=self.provider)

    def work(self, rounds: int = 1) -> None:
        """Passes of the worker, a minute apart: the platform's broker calls (requests,
        polls, retries whose back-off has passed), then the reference broker's jobs, then
        the sequencer, which integrates the ledger entries they left pending."""
        for _ in range(rounds):
            self.clock += dt.timedelta(minutes=1)
            operations.advance_operations(self.clock, transport=self.transport)
            broker.run_pending_operations()
            ledger.integrate_pending()


def make_provider(*, name: str, reviewer, labels=(Label.G_CLOUD, Label.ISO_27001),
                  qualify: bool = True, expires_in_days: int = 365):
    company, member = factories.company(name=name, provider=True)
    provider = services.apply_as_provider(actor=member.user, description="Hébergeur",
                                          locations="Tunis, Sfax")
    today = timezone.localdate()
    for label in labels:
        attestation = services.submit_attestation(
            actor=member.user, label=label, issuer="ANCS", scope="Hébergement en nuage",
            reference=f"{label}-{company.pk}", valid_from=today - dt.timedelta(days=30),
            expires_on=today + dt.timedelta(days=expires_in_days), document=b"%PDF-1.4 test",
            document_name="label.pdf")
        services.review_attestation(actor=reviewer, attestation=attestation, accept=True)
    if qualify:
        services.decide_provider(actor=reviewer, provider=provider, qualify=True)
    return provider, member.user


@pytest.fixture
def market(db, sahab_home, settings, dbaas, transport):
    keys.ensure_ledger_key()
    keys.ensure_secrets_key()
    keys.ensure_osb_password()
    ledger._signer.cache_clear()
    settings.PUBLIC_URL = "http://testserver/"
    settings.CLOUD_RETRY_BASE_SECONDS = 1
    mf = factories.administration(code="MF")
    cni = factories.administration(code="CNI", kind=AdministrationKind.AGENCY)
    it = factories.agent(administration=mf, roles=[Role.IT_OFFICER]).user
    finance = factories.agent(administration=mf, roles=[Role.FINANCE]).user
    other_it = factories.agent(roles=[Role.IT_OFFICER]).user
    buyer = factories.agent(administration=cni, roles=[Role.PROCUREMENT_OFFICER]).user
    reviewer = factories.platform_admin().user
    provider, provider_user = make_provider(name="Carthage Cloud", reviewer=reviewer)
    contract = factories.framework_contract(buyer=cni, supplier=provider.company)
    for plan in broker.PLANS:
        procurement.set_contract_price(actor=buyer, contract=contract, code=plan["id"],
                                       description=plan["displayName"],
                                       unit_price=PRICES[plan["name"]])
    registered = services.register_broker(actor=provider_user, url="http://testserver/osb/",
                                          username=broker.USERNAME,
                                          password=keys.load_osb_password())
    services.refresh_catalog(registered, transport=transport)
    assert registered.catalog_error == ""
    services.set_budget(actor=finance, administration=mf, year=timezone.now().year,
                        amount="50000")
    yield Market(mf=mf, cni=cni, it=it, finance=finance, other_it=other_it, reviewer=reviewer,
                 provider=provider, provider_user=provider_user, contract=contract,
                 transport=transport)
    drop_leftover_databases()


def drop_leftover_databases() -> None:
    """Whatever databases a test left on the cluster (a failing test must not leak)."""
    from sahab.cloud import dbaas as clusters
    from sahab.cloud.models import DbaasInstance

    for instance in DbaasInstance.objects.all():
        names = clusters.names_for(instance.instance_id)
        clusters.drop_database(names, list(instance.bindings.values_list("role", flat=True)))
