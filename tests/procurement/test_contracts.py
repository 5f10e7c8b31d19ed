"""Contracts are signed by both parties over the same terms, completed once carried out,
and amended beyond a ceiling only with a control agent's approval (docs/procurement.md,
"Contracts"). Each refusal writes nothing: no row changes and no ledger entry."""

import datetime as dt
import json
from decimal import Decimal
from types import SimpleNamespace

import pytest
import time_machine
from django.test import Client

from sahab.core.errors import Conflict, PermissionDenied
from sahab.directory.models import Role
from sahab.ledger.models import Entry
from sahab.procurement import ocds, services
from sahab.procurement.models import Amendment, Contract, Payment, Release, Step, Tender
from tests import factories, notices
from tests.procurement.conftest import Actor, publish, tender_payload

START, END = dt.date(2027, 1, 1), dt.date(2027, 12, 31)


@pytest.fixture
def tender(world):
    """A tender past its standstill: lot 1 awarded to Atlas (100,000 TND), lot 2 to
    Carthage (50,000 TND)."""
    officer = world["officer"]
    (_, atlas), (_, carthage), _ = world["companies"]
    ref = officer.call("post", "/tenders", tender_payload()).json()["reference"]
    publish(officer, ref)
    assert atlas.bid(ref, {"1": "100000", "2": "60000"}).status_code == 201
    assert carthage.bid(ref, {"2": "50000"}).status_code == 201
    item = Tender.objects.get(reference=ref)
    with time_machine.travel(item.submission_deadline + dt.timedelta(seconds=1)):
        services.advance_tenders()
        evaluator = world["evaluators"][0]
        evaluator.call("post", f"/tenders/{ref}/declarations", {"no_conflict": True})
        for bid in item.bids.all():
            for row in bid.lot_prices.all():
                assert evaluator.call("post", f"/tenders/{ref}/eligibility", {
                    "bid": bid.pk, "lot": row.lot.number, "eligible": True}).status_code == 200
        officer.call("post", f"/tenders/{ref}/evaluation")
        item.refresh_from_db()
        factories.adopt_evaluation(item)  # the committee's quorum approves the report
        assert officer.call("post", f"/tenders/{ref}/award", {}).status_code == 200
    with time_machine.travel(item.submission_deadline + dt.timedelta(days=20)):
        services.advance_tenders()
    item.refresh_from_db()
    assert item.state == "complete"
    return item


@pytest.fixture
def controller(world):
    """The control of public contracts on the buyer's ministry line: an auditor of MF."""
    return factories.agent(administration=world["mf"], roles=[Role.AUDITOR]).user


def sign(world, tender, lot: int = 1) -> Contract:
    award = tender.awards.get(lot__number=lot, status="active")
    return services.sign_contract(actor=world["officer"].user, award=award, start_date=START,
                                  end_date=END)


def supplier_user(world, n: int):
    return world["companies"][n][1].user


def active(world, tender, lot: int = 1) -> Contract:
    return services.countersign_contract(actor=supplier_user(world, lot - 1),
                                         contract=sign(world, tender, lot))


def entries() -> int:
    return Entry.objects.count()


def recorded(index: int) -> SimpleNamespace:
    """The ledger entry at ``index``, as its canonical JSON says it."""
    body = json.loads(bytes(Entry.objects.get(index=index).body))
    return SimpleNamespace(type=body["type"], actor=body["actor"], data=body["data"])


# --- two-party signature ----------------------------------------------------------------

def test_a_contract_is_in_force_only_once_its_supplier_countersigns_the_same_terms(
        world, tender):
    contract = sign(world, tender)
    assert contract.status == "pending" and contract.supplier_signed_at is None
    signed = recorded(contract.signed_index)
    assert signed.type == "procurement.contract.signed"
    assert signed.actor == f"user:{world['officer'].user.pk}"
    assert signed.data["terms_sha256"] == services.terms_sha256(contract) == \
        contract.terms_sha256
    assert signed.data["value"] == "100000.000" and signed.data["lot"] == 1
    # OCDS: pending, no date of signature yet
    [published] = ocds.build_release(tender, Step.objects.get(
        ledger_index=contract.signed_index), ["contract"], "x")["contracts"]
    assert published["status"] == "pending" and "dateSigned" not in published

    atlas = supplier_user(world, 0)
    contract = services.countersign_contract(actor=atlas, contract=contract,
                                             terms_sha256_seen=contract.terms_sha256)
    assert contract.status == "active" and contract.supplier_signed_by == atlas
    countersigned = recorded(contract.supplier_signed_index)
    assert countersigned.type == "procurement.contract.countersigned"
    assert countersigned.actor == f"user:{atlas.pk}"
    assert countersigned.data["terms_sha256"] == signed.data["terms_sha256"]
    assert countersigned.data["company"] == "Atlas"
    release = Release.objects.get(ledger_index=contract.supplier_signed_index).data
    [published] = release["contracts"]
    assert published["status"] == "active"
    assert published["dateSigned"] == ocds._date(contract.supplier_signed_at)


def test_the_supplier_of_another_award_cannot_countersign_nor_sign_twice(world, tender):
    contract = sign(world, tender, lot=1)  # Atlas's
    sign(world, tender, lot=2)  # Carthage has its own award and contract
    before = entries()
    for intruder in (supplier_user(world, 1), supplier_user(world, 2),
                     world["officer"].user):
        with pytest.raises(PermissionDenied):
            services.countersign_contract(actor=intruder, contract=contract)
    contract.refresh_from_db()
    assert contract.status == "pending" and contract.supplier_signed_at is None
    assert entries() == before
    services.countersign_contract(actor=supplier_user(world, 0), contract=contract)
    before = entries()
    with pytest.raises(Conflict):
        services.countersign_contract(actor=supplier_user(world, 0), contract=contract)
    assert entries() == before


def test_terms_changed_after_the_buyer_signed_are_not_countersigned(world, tender):
    contract = sign(world, tender)
    before = entries()
    with pytest.raises(Conflict, match="read them again"):
        services.countersign_contract(actor=supplier_user(world, 0), contract=contract,
                                      terms_sha256_seen="0" * 64)
    # a value changed behind the signatures' back (in the database) breaks the hash
    Contract.objects.filter(pk=contract.pk).update(value=Decimal("150000"))
    with pytest.raises(Conflict, match="not the ones the buyer signed"):
        services.countersign_contract(actor=supplier_user(world, 0), contract=contract)
    assert entries() == before
    assert Contract.objects.get(pk=contract.pk).status == "pending"


def test_a_pending_contract_takes_no_payment_amendment_or_price(world, tender):
    contract = sign(world, tender)
    before = entries()
    with pytest.raises(Conflict, match="active"):
        services.record_payment(actor=world["finance"].user, contract=contract,
                                milestone="Avance", amount="1000")
    with pytest.raises(Conflict, match="active"):
        services.amend_contract(actor=world["officer"].user, contract=contract,
                                justification="x", new_value="101000")
    with pytest.raises(Conflict, match="active"):
        services.set_contract_price(actor=world["officer"].user, contract=contract,
                                    code="plan", description="x", unit_price="1")
    assert entries() == before
    assert not Payment.objects.exists() and not Amendment.objects.exists()


def test_the_supplier_countersigns_through_the_api_and_the_page(world, tender, client):
    first, second = sign(world, tender, lot=1), sign(world, tender, lot=2)
    atlas, carthage = world["companies"][0][1], world["companies"][1][1]
    detail = Client().get(f"/api/procurement/contracts/{first.pk}").json()
    assert detail["status"] == "pending" and detail["terms_sha256"] == first.terms_sha256
    from sahab.core import waiting
    assert [w.label for w in waiting.for_user(atlas.user)] == [
        f"Countersign contract no. {first.pk} of {tender.reference}"]
    refused = carthage.call("post", f"/contracts/{first.pk}/countersign")
    assert refused.status_code == 403
    done = atlas.call("post", f"/contracts/{first.pk}/countersign",
                      {"terms_sha256": first.terms_sha256})
    assert done.status_code == 200 and done.json()["status"] == "active"
    assert done.json()["supplier_signed_index"] is not None
    assert atlas.call("post", f"/contracts/{first.pk}/countersign").status_code == 409
    assert waiting.for_user(atlas.user) == []
    # the page offers Carthage its own contract only, and posts its countersignature
    client.force_login(carthage.user)
    page = client.get(f"/tenders/{tender.reference}/").content.decode()
    assert page.count('name="terms_sha256"') == 1 and second.terms_sha256 in page
    client.post(f"/tenders/{tender.reference}/countersign/",
                {"contract": second.pk, "terms_sha256": second.terms_sha256})
    assert Contract.objects.get(pk=second.pk).status == "active"
    page = client.get(f"/tenders/{tender.reference}/").content.decode()
    assert "Countersigned by the supplier" in page


# --- amendments beyond the ceiling ------------------------------------------------------

def test_a_sixty_percent_amendment_waits_for_the_controls_approval(world, tender, controller,
                                                                  commits):
    """The review's case: +60 % used to apply at once. It is now only proposed."""
    contract = active(world, tender)
    officer = world["officer"].user
    amendment = commits(services.amend_contract, actor=officer, contract=contract,
                        justification="Extension à deux sites", new_value="160000")
    assert amendment.status == "proposed" and amendment.cumulative_increase == Decimal("60")
    contract.refresh_from_db()
    assert contract.value == Decimal("100000")  # nothing changed yet
    proposed = recorded(amendment.ledger_index)
    assert proposed.type == "procurement.contract.amendment_proposed"
    assert proposed.data["ceiling"] == "20" and proposed.data["new_value"] == "160000.000"
    # the control is told by mail, and finds it in its "waiting for you" list
    assert notices.subjects_to(controller) == [
        f"Amendment no. {amendment.pk} of {tender.reference} waits for your approval"]
    assert notices.subjects_to(world["auditor"].user) == []  # another line's auditor
    from sahab.core import waiting
    assert any(f"amendment no. {amendment.pk}" in w.label for w in waiting.for_user(controller))
    # payments stay within the signed value until the approval
    with pytest.raises(Exception, match="exceed"):
        services.record_payment(actor=world["finance"].user, contract=contract,
                                milestone="x", amount="100001")
    # no second amendment while one waits
    with pytest.raises(Conflict, match="waits for approval"):
        services.amend_contract(actor=officer, contract=contract, justification="y",
                                new_end_date=dt.date(2028, 6, 30))
    commits(services.decide_amendment, actor=controller, amendment=amendment, approve=True,
            reason="Besoin justifié, crédits disponibles.")
    amendment.refresh_from_db()
    contract.refresh_from_db()
    assert amendment.status == "approved" and amendment.decided_by == controller
    assert contract.value == Decimal("160000")
    approved = recorded(amendment.decided_index)
    assert approved.type == "procurement.contract.amendment_approved"
    assert approved.actor == f"user:{controller.pk}"
    assert notices.subjects_to(world["officer"].user)[-1] == \
        f"Amendment no. {amendment.pk} of {tender.reference}: approved and applied"
    [published] = Release.objects.get(ledger_index=amendment.decided_index).data["contracts"]
    assert published["value"]["amount"] == 160000
    assert [a["id"] for a in published["amendments"]] == [str(amendment.pk)]
    assert published["milestones"][0]["type"] == "approval"
    assert published["milestones"][0]["status"] == "met"


def test_amendments_count_together_against_the_ceiling(world, tender):
    contract = active(world, tender)
    officer = world["officer"].user
    first = services.amend_contract(actor=officer, contract=contract,
                                    justification="Quantités +15 %", new_value="115000")
    assert first.status == "applied"
    contract.refresh_from_db()
    assert contract.value == Decimal("115000")
    second = services.amend_contract(actor=officer, contract=contract,
                                     justification="Encore +15 %", new_value="130000")
    assert second.status == "proposed" and second.cumulative_increase == Decimal("30")
    contract.refresh_from_db()
    assert contract.value == Decimal("115000")
    # a change of the end date alone, or a decrease, is within the ceiling
    other = active(world, tender, lot=2)
    assert services.amend_contract(actor=officer, contract=other, justification="Délai",
                                   new_end_date=dt.date(2028, 6, 30)).status == "applied"


def test_the_ceiling_is_a_setting(world, tender, settings):
    settings.PROCUREMENT_AMENDMENT_CEILING_PERCENT = 70
    contract = active(world, tender)
    amendment = services.amend_contract(actor=world["officer"].user, contract=contract,
                                        justification="x", new_value="160000")
    assert amendment.status == "applied"


def test_the_proposer_cannot_approve_nor_an_auditor_of_another_line(world, tender, controller):
    # an officer who also holds the auditor role proposes: someone else must decide
    both = factories.agent(administration=world["mf"],
                           roles=[Role.PROCUREMENT_OFFICER, Role.AUDITOR]).user
    contract = active(world, tender)
    amendment = services.amend_contract(actor=both, contract=contract,
                                        justification="Extension", new_value="160000")
    before = entries()
    for actor, refusal in ((both, "proposed"), (world["officer"].user, "auditor"),
                           (world["auditor"].user, "auditor"),  # HAICOP's: not MF's line
                           (supplier_user(world, 0), "auditor")):
        with pytest.raises(PermissionDenied, match=refusal):
            services.decide_amendment(actor=actor, amendment=amendment, approve=True,
                                      reason="ok")
    assert entries() == before
    amendment.refresh_from_db()
    assert amendment.status == "proposed"
    services.decide_amendment(actor=controller, amendment=amendment, approve=True,
                              reason="Contrôle fait.")
    with pytest.raises(Conflict):  # decided once
        services.decide_amendment(actor=controller, amendment=amendment, approve=False,
                                  reason="Après coup.")


def test_a_refused_amendment_changes_nothing(world, tender, controller):
    contract = active(world, tender)
    amendment = services.amend_contract(actor=world["officer"].user, contract=contract,
                                        justification="Extension", new_value="160000",
                                        new_end_date=dt.date(2028, 12, 31))
    services.decide_amendment(actor=controller, amendment=amendment, approve=False,
                              reason="Nouveau besoin : nouvelle mise en concurrence.")
    contract.refresh_from_db()
    amendment.refresh_from_db()
    assert amendment.status == "refused"
    assert (contract.value, contract.end_date) == (Decimal("100000"), END)
    refused = recorded(amendment.decided_index)
    assert refused.type == "procurement.contract.amendment_refused"
    assert "nouvelle mise en concurrence" in refused.data["reason"]
    [published] = Release.objects.get(ledger_index=amendment.decided_index).data["contracts"]
    assert "amendments" not in published
    assert published["milestones"][0]["status"] == "notMet"


def test_the_control_decides_through_the_api(world, tender, controller):
    contract = active(world, tender)
    officer = world["officer"]
    proposed = officer.call("post", f"/contracts/{contract.pk}/amendments",
                            {"justification": "Extension", "new_value": "160000"})
    assert proposed.status_code == 201
    body = proposed.json()
    assert body["value"] == "100000.000" and body["amendments"][0]["status"] == "proposed"
    amendment_id = body["amendments"][0]["id"]
    url = f"/contract-amendments/{amendment_id}/decision"
    assert officer.call("post", url, {"approve": True, "reason": "moi"}).status_code == 403
    decided = Actor(controller).call("post", url, {"approve": True, "reason": "Justifié."})
    assert decided.status_code == 200, decided.content
    assert decided.json()["value"] == "160000.000"
    assert decided.json()["amendments"][0]["status"] == "approved"


# --- completion -------------------------------------------------------------------------

def test_the_buyer_completes_an_active_contract_which_then_takes_nothing_more(world, tender):
    officer, finance = world["officer"].user, world["finance"].user
    pending = sign(world, tender, lot=2)
    with pytest.raises(Conflict, match="active"):
        services.complete_contract(actor=officer, contract=pending, reason="Livré")
    contract = active(world, tender)
    services.record_payment(actor=finance, contract=contract, milestone="Livraison",
                            amount="95000")
    with pytest.raises(PermissionDenied):
        services.complete_contract(actor=finance, contract=contract, reason="Livré")
    contract = services.complete_contract(actor=officer, contract=contract,
                                          reason="Réception définitive prononcée.")
    assert contract.status == "completed" and contract.final_value == Decimal("95000")
    completed = recorded(contract.completion_index)
    assert completed.type == "procurement.contract.completed"
    assert completed.data == {"contract": contract.pk, "final_value": "95000.000",
                              "reason": "Réception définitive prononcée.", "automatic": False}
    before = entries()
    with pytest.raises(Conflict):
        services.record_payment(actor=finance, contract=contract, milestone="Solde",
                                amount="5000")
    with pytest.raises(Conflict):
        services.amend_contract(actor=officer, contract=contract, justification="x",
                                new_value="120000")
    with pytest.raises(Conflict):
        services.complete_contract(actor=officer, contract=contract, reason="encore")
    with pytest.raises(Conflict):
        services.terminate_contract(actor=officer, contract=contract, reason="x")
    assert entries() == before
    # OCDS: the contract is terminated (the codelist's end), its completion a milestone
    release = Release.objects.get(ledger_index=contract.completion_index)
    assert release.tags == ["contractTermination"]
    [published] = [c for c in release.data["contracts"] if c["id"] == str(contract.pk)]
    assert published["status"] == "terminated"
    [milestone] = published["implementation"]["milestones"]
    assert milestone["status"] == "met" and "95000.000 TND" in milestone["description"]


def test_the_timer_completes_a_fully_paid_contract_past_its_end_date(world, tender):
    finance = world["finance"].user
    paid, unpaid = active(world, tender, lot=1), active(world, tender, lot=2)
    services.record_payment(actor=finance, contract=paid, milestone="Tout",
                            amount="100000")
    services.record_payment(actor=finance, contract=unpaid, milestone="Moitié",
                            amount="25000")
    before_end = dt.datetime(2027, 12, 31, 12, tzinfo=dt.UTC)
    assert services.complete_finished_contracts(before_end) == []
    done = services.complete_finished_contracts(before_end + dt.timedelta(days=1))
    assert len(done) == 1
    paid.refresh_from_db()
    unpaid.refresh_from_db()
    assert paid.status == "completed" and unpaid.status == "active"
    assert recorded(paid.completion_index).data["automatic"] is True
    assert services.complete_finished_contracts(before_end + dt.timedelta(days=2)) == []


def test_the_buyer_completes_through_the_api_and_the_page(world, tender, client):
    first, second = active(world, tender, lot=1), active(world, tender, lot=2)
    officer = world["officer"]
    assert world["finance"].call("post", f"/contracts/{first.pk}/complete",
                                 {"reason": "x"}).status_code == 403
    done = officer.call("post", f"/contracts/{first.pk}/complete",
                        {"reason": "Réception définitive."})
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert done.json()["final_value"] == "0.000"
    client.force_login(officer.user)
    client.post(f"/tenders/{tender.reference}/complete/",
                {"contract": second.pk, f"complete{second.pk}-text": "Livré et reçu."})
    second.refresh_from_db()
    assert second.status == "completed" and second.completion_reason == "Livré et reçu."


def test_the_cloud_catalogue_prices_plans_from_active_framework_agreements_only(world):
    """Once a framework agreement is completed its prices no longer price the catalogue."""
    from sahab.procurement import selectors

    supplier, _ = factories.company(name="Nuage", provider=True)
    framework = factories.framework_contract(buyer=world["mf"], supplier=supplier)
    services.set_contract_price(actor=world["officer"].user, contract=framework,
                                code="plan-small", description="Petite base",
                                unit_price="0.250")
    assert [p.code for p in selectors.framework_prices(supplier)] == ["plan-small"]
    services.complete_contract(actor=world["officer"].user, contract=framework,
                               reason="Accord-cadre arrivé à son terme.")
    assert list(selectors.framework_prices(supplier)) == []
    with pytest.raises(Conflict, match="active"):
        services.direct_call_off(actor=world["officer"].user, contract=framework,
                                 buyer=world["mf"], description="x", quantity="1")


def test_the_control_decides_on_the_tender_page(world, tender, controller, client):
    contract = active(world, tender)
    amendment = services.amend_contract(actor=world["officer"].user, contract=contract,
                                        justification="Extension", new_value="160000")
    client.force_login(world["officer"].user)  # the buyer sees it waiting, without the form
    page = client.get(f"/tenders/{tender.reference}/").content.decode()
    assert f'id="contract-amendment-{amendment.pk}"' in page
    assert 'name="approve"' not in page
    client.force_login(controller)
    page = client.get(f"/tenders/{tender.reference}/").content.decode()
    assert 'name="approve"' in page
    client.post(f"/tenders/{tender.reference}/decide_amendment/",
                {"amendment": amendment.pk, "approve": "no",
                 f"amendment{amendment.pk}-text": "Nouvelle mise en concurrence."})
    amendment.refresh_from_db()
    assert amendment.status == "refused" and amendment.decided_by == controller
    assert "Nouvelle mise en concurrence." in \
        client.get(f"/tenders/{tender.reference}/").content.decode()


def test_the_suppliers_users_are_asked_to_countersign_by_mail(world, tender, commits):
    award = tender.awards.get(lot__number=1, status="active")
    contract = commits(services.sign_contract, actor=world["officer"].user, award=award,
                       start_date=START, end_date=END)
    subject = f"Contract no. {contract.pk} of {tender.reference} waits for your signature"
    assert notices.subjects_to(supplier_user(world, 0)) == [subject]
    assert notices.subjects_to(supplier_user(world, 1)) == []  # the other lot's supplier
    [(_, message)] = [(t, m) for t, m in notices.sent() if m["Subject"] == subject]
    assert contract.terms_sha256 in message.get_content()
