"""Test data made through the services, so tests see what the product would make."""

from __future__ import annotations

import base64
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
    # signed by both parties: in force, as the catalogue needs it
    return Contract.objects.create(tender=tender, award=award, supplier=supplier,
                                   value=Decimal(value), start_date=now.date(),
                                   end_date=now.date() + dt.timedelta(days=365 * years),
                                   status=Contract.Status.ACTIVE, supplier_signed_at=now)


def countersign(contract):
    """The supplier's side of a contract the buyer signed: its company admin countersigns
    the terms it was shown, and the contract is in force."""
    from sahab.procurement import services as procurement

    member = contract.supplier.members.filter(is_company_admin=True).select_related("user") \
        .first()
    return procurement.countersign_contract(actor=member.user, contract=contract,
                                            terms_sha256_seen=contract.terms_sha256)


# --- sealed bids: the bidder's and the committee's side, done as they would ------------

_signing_keys: dict[int, object] = {}  # company id → Ed25519 private key (the company's)


def signing_key(company_user):
    """The company's registered bid-signing key (registered on first use)."""
    from sahab.directory.selectors import company_of
    from sahab.procurement import client
    from sahab.procurement import services as procurement
    from sahab.procurement.models import SigningKey

    company = company_of(company_user)
    key = _signing_keys.get(company.pk)
    if key is None or not SigningKey.objects.filter(company=company, revoked_at=None).exists():
        key = client.new_signing_key()
        body = client.registration(company.pk, key)
        procurement.register_signing_key(actor=company_user,
                                         public_key=base64.b64decode(body["public_key"]),
                                         proof=base64.b64decode(body["proof"]))
        _signing_keys[company.pk] = key
    return key


def committee(tender, *, n: int = 3, t: int = 2, demo_keys: bool = True,
              evaluators: bool = True) -> list:
    """Name an opening committee of ``n`` agents (``t`` of whom open), each registering a
    key made "on their machine"; returns [(user, private key bytes)]. With ``demo_keys``
    the private keys also go to SAHAB_HOME/demo-only-keys, as the demo does, so that the
    worker releases them after the deadline by itself. With ``evaluators``, the buyer's
    evaluators (when it has two or more) are named its evaluation committee too
    (``evaluation_committee``)."""
    from sahab.procurement import client
    from sahab.procurement import services as procurement

    users = [agent(administration=tender.buyer).user for _ in range(n)]
    procurement.name_committee(actor=SYSTEM, tender=tender, members=users, threshold=t)
    if evaluators and len(buyer_evaluators(tender)) >= 2:
        evaluation_committee(tender)
    members = []
    for user in users:
        private, public = client.committee_keygen()
        row = procurement.register_committee_key(actor=user, tender=tender,
                                                 public_key=base64.b64decode(public))
        if demo_keys:
            path = procurement.demo_key_path(tender, row.position)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(private)
        members.append((user, base64.b64decode(private)))
    return members


def buyer_evaluators(tender) -> list:
    """The users holding the evaluator role in the tender's buying administration, oldest
    first."""
    from sahab.directory.models import Agent

    return [a.user for a in Agent.objects.filter(administration=tender.buyer,
                                                 roles__role=Role.EVALUATOR)
            .select_related("user").order_by("pk").distinct()]


def evaluation_committee(tender, members=None, *, quorum: int = 2, chair=None) -> list:
    """Name the tender's evaluation committee: ``members`` (the buyer's evaluators by
    default), the first one chairing unless ``chair`` says otherwise."""
    from sahab.procurement import services as procurement

    members = list(members or buyer_evaluators(tender))
    return procurement.name_evaluation_committee(actor=SYSTEM, tender=tender, members=members,
                                                 chair=chair or members[0], quorum=quorum)


def adopt_evaluation(tender, members=None):
    """The committee's members (all by default) each declare no conflict of interest if
    they have not declared yet, then approve the current evaluation report, until it is
    adopted. Returns the report."""
    from sahab.procurement import services as procurement
    from sahab.procurement.models import ConflictDeclaration, EvaluationReport

    report = tender.evaluation_reports.order_by("-number").first()
    for row in tender.evaluation_committee.select_related("member"):
        if members is not None and row.member not in members:
            continue
        if not ConflictDeclaration.objects.filter(tender=tender, evaluator=row.member).exists():
            procurement.declare_conflict_of_interest(actor=row.member, tender=tender,
                                                     no_conflict=True)
        if report.status == EvaluationReport.Status.ADOPTED:
            break
        if not report.approvals.filter(member=row.member).exists():
            report = procurement.approve_evaluation(actor=row.member, tender=tender,
                                                    sha256=report.sha256)
    return report


def tender_detail(tender) -> dict:
    """The tender's public data a bidder seals to (what the API's detail gives)."""
    return {"reference": tender.reference,
            "lots": [{"number": lot.number} for lot in tender.lots.all()],
            "committee": {"threshold": tender.committee_threshold,
                          "members": [{"public_key": base64.b64encode(bytes(m.public_key))
                                       .decode()} for m in tender.committee.all()]}}


def sealed(tender, company_user, prices: dict, **content) -> bytes:
    """A bid sealed and signed on the company's side, ready to submit."""
    from sahab.directory.selectors import company_of
    from sahab.procurement import client

    return client.seal_bid(tender_detail(tender), company_id=company_of(company_user).pk,
                           key=signing_key(company_user), prices=prices,
                           **content).encode("ascii")


def submit_sealed(tender, company_user, prices: dict, **kwargs):
    from sahab.procurement import services as procurement

    content = {k: kwargs.pop(k) for k in ("technical_offer", "documents") if k in kwargs}
    return procurement.submit_bid(actor=company_user, tender=tender,
                                  envelope=sealed(tender, company_user, prices, **content),
                                  **kwargs)
