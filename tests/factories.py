"""Test data made through the services, so tests see what the product would make."""

from __future__ import annotations

import itertools

from sahab.directory import services
from sahab.directory.models import Administration, AdministrationKind, Role
from sahab.directory.selectors import SYSTEM

_seq = itertools.count(1)
PASSWORD = "correct horse battery staple"


def administration(*, code: str | None = None, kind: str = AdministrationKind.MINISTRY,
                   parent: Administration | None = None, mail_domain: str | None = None,
                   **names) -> Administration:
    n = next(_seq)
    code = code or f"ADM{n}"
    return services.create_administration(
        actor=SYSTEM, code=code, kind=kind, parent=parent,
        name_fr=names.get("name_fr", f"Administration {n}"),
        name_ar=names.get("name_ar", f"إدارة {n}"), name_en=names.get("name_en", ""),
        mail_domain=mail_domain)


def agent(*, administration: Administration | None = None, roles=(), username: str | None = None,
          password: str = PASSWORD):
    n = next(_seq)
    administration = administration or globals()["administration"]()
    created, _ = services.create_agent(
        actor=SYSTEM, administration=administration, username=username or f"agent{n}",
        email=f"agent{n}@example.gov.tn", first_name="Agent", last_name=str(n), roles=roles,
        password=password)
    return created


def platform_admin(**kwargs):
    return agent(roles=[Role.PLATFORM_ADMIN], **kwargs)


def company(*, name: str | None = None, matricule: str | None = None,
            username: str | None = None, provider: bool = False):
    n = next(_seq)
    created, member, _ = services.register_company(
        actor=SYSTEM, name=name or f"Company {n}",
        matricule_fiscal=matricule or f"{1000000 + n:07d}A/A/M/000",
        admin_username=username or f"company{n}", admin_email=f"c{n}@example.tn",
        admin_password=PASSWORD, is_cloud_provider=provider)
    return created, member


def framework_contract(*, buyer: Administration, supplier, value="1000000", years: int = 3):
    """A signed framework agreement with ``supplier``, as if its tender had run its course.

    Built from the models (the tender's whole procedure is tested in tests/procurement);
    the cloud tests need only the signed contract and its price schedule.
    """
    import datetime as dt
    from decimal import Decimal

    from django.utils import timezone

    from sahab.procurement.models import (
        Award,
        Bid,
        BidLot,
        Contract,
        Lot,
        Procedure,
        State,
        Tender,
    )

    n = next(_seq)
    now = timezone.now()
    tender = Tender.objects.create(
        reference=f"FW-{n}", ocid=f"ocds-test00-fw-{n}", buyer=buyer,
        title=f"Accord-cadre {n}", procedure=Procedure.FRAMEWORK, state=State.COMPLETE,
        estimated_value=Decimal(value), enquiry_deadline=now - dt.timedelta(days=40),
        submission_deadline=now - dt.timedelta(days=30), published_at=now - dt.timedelta(days=50))
    lot = Lot.objects.create(tender=tender, number=1, title="Services en nuage", cpv="72317000-0",
                             estimated_value=Decimal(value))
    bid = Bid.objects.create(tender=tender, company=supplier, status="opened", envelope=b"",
                             commitment="0" * 64, ledger_index=0)
    bid_lot = BidLot.objects.create(bid=bid, lot=lot, price=Decimal(value), eligible=True)
    award = Award.objects.create(tender=tender, lot=lot, bid_lot=bid_lot, supplier=supplier,
                                 value=Decimal(value))
    return Contract.objects.create(tender=tender, award=award, supplier=supplier,
                                   value=Decimal(value), start_date=now.date(),
                                   end_date=now.date() + dt.timedelta(days=365 * years))
