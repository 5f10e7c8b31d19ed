"""Demo data of the cloud marketplace.

The three providers of the CNI's cloud-hosting framework agreement apply and submit
their labels: Carthage Cloud and Medina Data Services hold a valid G-cloud label, Jasmin
Hosting's expired (its customers are alerted, its plans cannot be ordered). Each demo
provider runs sahab's reference broker, registered at this installation's ``/osb/``;
the catalogues are read and, when a PostgreSQL cluster is configured
(``SAHAB_DBAAS_URL``), ministries' orders are really provisioned and metered from the
date they were placed. The historical hours are billed as if the databases had run
since then (the ledger entries carry today's time: a ledger cannot be back-dated).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from sahab.cloud import broker, dbaas, metering, operations, services
from sahab.cloud.models import Attestation, Instance, Label, Order, Provider, ServicePlan
from sahab.core import inprocess, keys
from sahab.directory.models import Administration, Company
from sahab.directory.selectors import SYSTEM, user_by_username
from sahab.procurement import services as procurement
from sahab.procurement.models import Contract

FRAMEWORK = "Accord-cadre d'hébergement en nuage des administrations"
LABELS = {
    "Carthage Cloud": [(Label.G_CLOUD, 400), (Label.N_CLOUD, 400), (Label.ISO_27001, 700),
                       (Label.ISO_27017, 700), (Label.ISO_27018, 700), (Label.SLA, 365)],
    "Medina Data Services": [(Label.G_CLOUD, 120), (Label.N_CLOUD, 120),
                             (Label.ISO_27001, 500), (Label.SLA, 365)],
    "Jasmin Hosting": [(Label.G_CLOUD, -10), (Label.N_CLOUD, 200), (Label.ISO_27001, 300)],
}
LOCATIONS = {"Carthage Cloud": "Tunis, Sfax", "Medina Data Services": "Ariana, Sousse",
             "Jasmin Hosting": "Sousse"}
ISSUERS = {Label.G_CLOUD: "ANCS", Label.N_CLOUD: "ANCS", Label.SLA: "CNI"}
# TND per hour for the small, medium and large plans, per provider's contract.
PRICES = {"Carthage Cloud": ("0.150", "0.600", "2.100"),
          "Medina Data Services": ("0.140", "0.620", "2.050"),
          "Jasmin Hosting": ("0.160", "0.580", "2.200")}
# Yearly budgets (TND) and alert thresholds (%); the ministry of health's is tight.
BUDGETS = {"MF": ("60000", [50, 80, 100]), "MS": ("2000", [40, 75, 100]),
           "CNI": ("40000", [50, 80, 100]), "COM-TUNIS": ("8000", [50, 80, 100])}
# (IT officer, provider, plan, purpose, days ago, approver or None)
ORDERS = [
    ("it.finances", "Carthage Cloud", "pg-medium", "Base de données de la paie", 150,
     "finance.finances"),
    ("it.finances", "Medina Data Services", "pg-small", "Portail fiscal — recette", 90, None),
    ("it.cni", "Medina Data Services", "pg-medium", "Annuaire national des agents", 120,
     "achats.cni"),
    ("it.sante", "Jasmin Hosting", "pg-small", "Registre des vaccinations", 170, None),
    ("it.sante", "Carthage Cloud", "pg-small", "Tableau de bord hospitalier", 60, None),
    ("it.sante", "Carthage Cloud", "pg-medium", "Dossier patient — pilote", 2, "pending"),
]


def _certificate_pdf(company: str, label: str) -> bytes:
    """A one-page PDF standing for the scanned certificate."""
    text = f"{label.upper()} - {company}".encode("latin-1", "replace")
    stream = b"BT /F1 18 Tf 72 720 Td (" + text + b") Tj ET"
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return out


def _provider(company: Company, now: dt.datetime) -> Provider:
    provider = Provider.objects.filter(company=company).first()
    if provider is not None:
        return provider
    member = company.members.select_related("user").first()
    provider = services.apply_as_provider(
        actor=member.user, locations=LOCATIONS[company.name],
        description=f"{company.name}: hébergement en nuage, centres principal et de secours "
                    "en Tunisie, support 24/7.")
    reviewer = user_by_username("admin")
    today = now.date()
    for label, days_left in LABELS[company.name]:
        attestation = services.submit_attestation(
            actor=member.user, label=label, issuer=ISSUERS.get(label, "Bureau Veritas"),
            scope="Hébergement IaaS/PaaS, centres de données en Tunisie",
            reference=f"{label.upper()}-{company.matricule_fiscal[:7]}",
            valid_from=today - dt.timedelta(days=365),
            expires_on=today + dt.timedelta(days=max(days_left, 30)),
            document=_certificate_pdf(company.name, label), document_name=f"{label}.pdf")
        services.review_attestation(actor=reviewer, attestation=attestation, accept=True)
    services.decide_provider(actor=reviewer, provider=provider, qualify=True)
    return provider


def _framework_contract(company: Company) -> Contract | None:
    return Contract.objects.filter(tender__title=FRAMEWORK, supplier=company,
                                   award__lot__number=1, status="active").first()


def _prices(company: Company) -> None:
    contract = _framework_contract(company)
    if contract is None or contract.prices.exists():
        return
    for plan, price in zip(broker.PLANS, PRICES[company.name], strict=True):
        procurement.set_contract_price(actor=SYSTEM, contract=contract, code=plan["id"],
                                       description=f"Base de données gérée {plan['displayName']}",
                                       unit_price=price)


def _broker(provider: Provider, transport) -> None:
    if not hasattr(provider, "broker"):
        services.register_broker(actor=SYSTEM, provider=provider,
                                 url=settings.PUBLIC_URL.rstrip("/") + "/osb/",
                                 username=broker.USERNAME, password=keys.load_osb_password())
        provider.refresh_from_db()
    services.refresh_catalog(provider.broker, transport=transport)


def _place_orders(now: dt.datetime, transport) -> list[Order]:
    placed = []
    for username, company, plan_name, purpose, days_ago, approver in ORDERS:
        agent = user_by_username(username)
        plan = ServicePlan.objects.get(name=plan_name,
                                       offering__broker__provider__company__name=company)
        when = now - dt.timedelta(days=days_ago)
        order = services.place_order(actor=agent, plan=plan, purpose=purpose, now=when)
        if approver not in (None, "pending"):
            services.decide_order(actor=user_by_username(approver), order=order, approve=True,
                                  now=when + dt.timedelta(hours=3))
        placed.append(order)
    return placed


def _provision_all(transport) -> None:
    """Run the platform's and the broker's jobs until nothing is pending (in-process)."""
    clock = timezone.now()
    for _ in range(12):
        clock += dt.timedelta(minutes=1)
        operations.advance_operations(clock, transport=transport)
        broker.run_pending_operations()
        if not Instance.objects.exclude(operation="").exists():
            break


def _backdate_history(orders: list[Order], now: dt.datetime) -> None:
    """Bill the demo instances from the day they were ordered."""
    for order in orders:
        instance = Instance.objects.filter(order=order, activated_at__isnull=False).first()
        if instance is not None:
            start = (order.decided_at or order.created_at) + dt.timedelta(minutes=20)
            Instance.objects.filter(pk=instance.pk).update(activated_at=start)
    metering.meter_usage(now)


def _credentials(orders: list[Order], transport) -> None:
    """The payroll database gets an application login (shown once to it.finances)."""
    instance = Instance.objects.filter(order=orders[0], state="active").first()
    if instance is not None and not instance.bindings.exists():
        services.request_binding(actor=instance.order.ordered_by, instance=instance,
                                 name="paie-application")
        _provision_all(transport)


def _expire_jasmin(now: dt.datetime) -> None:
    Attestation.objects.filter(provider__company__name="Jasmin Hosting", label=Label.G_CLOUD) \
        .update(expires_on=now.date() - dt.timedelta(days=10))
    services.expire_attestations(now.date())


def load(previous: dict, data: dict) -> None:
    now = timezone.now()
    transport = inprocess.transport()
    keys.ensure_secrets_key()
    keys.ensure_osb_password()
    companies = Company.objects.filter(name__in=list(LABELS))
    if not companies.exists():
        return
    for company in companies:
        provider = _provider(company, now)
        _prices(company)
        _broker(provider, transport)
    for code, (amount, thresholds) in BUDGETS.items():
        administration = Administration.objects.filter(code=code).first()
        if administration is not None and not administration.cloud_budgets.filter(
                year=now.year).exists():
            services.set_budget(actor=SYSTEM, administration=administration, year=now.year,
                                amount=Decimal(amount), thresholds=thresholds)
    fresh = not Order.objects.exists()
    if fresh and dbaas.configured() and dbaas.reachable():
        orders = _place_orders(now, transport)
        _provision_all(transport)
        _backdate_history(orders, now)
        _credentials(orders, transport)
        _expire_jasmin(now)
    elif fresh:
        _expire_jasmin(now)
    data["osb"] = {"username": broker.USERNAME, "password": keys.load_osb_password(),
                   "url": settings.PUBLIC_URL.rstrip("/") + "/osb/"}
    data.setdefault("urls", {})["osb"] = settings.PUBLIC_URL.rstrip("/") + "/osb/"
    data["cloud"] = {
        "dbaas": settings.DBAAS_URL.split("@")[-1] if dbaas.configured() else None,
        "orders": Order.objects.count(),
        "active_instances": Instance.objects.filter(state="active").count(),
        "unavailable_reason": None if dbaas.configured() else
        "SAHAB_DBAAS_URL is not set: the PostgreSQL plans show as unavailable.",
    }
