"""Complaints as a review procedure (docs/procurement.md, "Complaints").

Each failure found when a tender was walked end to end is replayed here exactly, and
shown refused or fixed: an outsider froze a whole tender by filing; there was no
admissibility step and no limit; bids were refused while a complaint was pending and
the lost time was not given back; an upheld complaint had no effect on the award and
cancelled the other lot's; a company that withdrew its bid complained against the
award; any auditor decided; nothing of it was public. Then the new procedure through
the API and the web page.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.test import Client, override_settings

from sahab.core.errors import Conflict, InvalidInput, PermissionDenied
from sahab.directory.models import AdministrationKind, Role
from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from sahab.procurement import ocds, services
from sahab.procurement.models import Award, Bid, BidLot, Complaint, Step, Tender
from tests import factories
from tests.procurement.bidding import run_timers_at, submit_bid, withdraw_bid

SECOND = dt.timedelta(seconds=1)
DAY = dt.timedelta(days=1)


def company(world, i: int):
    return world["companies"][i][1].user


def body(world):
    """The complaints body (HAICOP's committee), outside the buyer's line."""
    return world["auditor"].user


def file(world, i: int, tender: Tender, text: str = "Grief.", **kwargs) -> Complaint:
    return services.file_complaint(actor=company(world, i), tender=tender, text=text, **kwargs)


def admit(world, complaint: Complaint, *, now=None) -> Complaint:
    return services.rule_admissibility(actor=body(world), complaint=complaint,
                                       admissible=True, reason="Recours recevable.", now=now)


def awarded(world, tender: Tender, bidders: int = 3) -> dt.datetime:
    """The first ``bidders`` companies bid; every bid is eligible and the tender awarded:
    Atlas wins lot 1, Carthage lot 2. Returns the award's time.

    Lot 1: Atlas 100,000, Carthage 105,000, Medina 110,000.
    Lot 2: Carthage 50,000, Medina 52,000 (Atlas does not bid on lot 2)."""
    deadline = tender.submission_deadline
    offers = ({"1": "100000"}, {"1": "105000", "2": "50000"}, {"1": "110000", "2": "52000"})
    for i, prices in enumerate(offers[:bidders]):
        submit_bid(company(world, i), tender, prices, now=deadline - DAY)
    run_timers_at(deadline + SECOND)
    tender.refresh_from_db()
    assert tender.state == "evaluation", tender.state
    evaluator = world["evaluators"][0].user
    services.declare_conflict_of_interest(actor=evaluator, tender=tender, no_conflict=True)
    for row in BidLot.objects.filter(bid__tender=tender):
        services.decide_eligibility(actor=evaluator, bid_lot=row, eligible=True)
    services.complete_evaluation(actor=world["officer"].user, tender=tender)
    factories.adopt_evaluation(tender)
    at = deadline + DAY
    services.award_tender(actor=world["officer"].user, tender=tender, now=at)
    tender.refresh_from_db()
    assert tender.state == "standstill"
    return at


def active_awards(tender: Tender) -> dict[int, str]:
    return {a.lot.number: a.supplier.name
            for a in Award.objects.filter(tender=tender, status=Award.Status.ACTIVE)}


# --- the failures of the walk, replayed --------------------------------------------------

def test_an_outsider_filing_freezes_nothing_and_never_complains_against_an_award(
        world, published_tender):
    tender = published_tender
    _outsider, _member = factories.company(name="Kasserine Négoce")  # never bids
    complaint = services.file_complaint(actor=_member.user, tender=tender,
                                        text="Le cahier des charges favorise un fournisseur.")
    tender.refresh_from_db()
    assert complaint.status == "filed" and complaint.kind == "documents"
    assert not tender.suspended
    assert not tender.lots.exclude(suspended_since=None).exists()
    # the tender goes on: bids come in, and it closes at its deadline
    submit_bid(company(world, 0), tender, {"1": "100000"})
    run_timers_at(tender.submission_deadline + SECOND)
    tender.refresh_from_db()
    assert tender.state == "evaluation"
    # and against an award only the bidders of the lot may complain
    tender2 = Tender.objects.get(reference=world["officer"].call(
        "post", "/tenders", _payload()).json()["reference"])
    factories.committee(tender2)
    services.publish_tender(actor=world["officer"].user, tender=tender2)
    tender2.refresh_from_db()
    at = awarded(world, tender2)
    with pytest.raises(PermissionDenied, match="Only the bidders of lot 1"):
        services.file_complaint(actor=_member.user, tender=tender2, text="Grief.", lots=[1],
                                now=at + DAY)


def _payload():
    from tests.procurement.conftest import tender_payload

    return tender_payload()


def test_the_complaints_body_rules_on_admissibility_before_the_merits(world,
                                                                      published_tender):
    complaint = file(world, 0, published_tender)
    with pytest.raises(Conflict, match="admissibility first"):
        services.decide_complaint(actor=body(world), complaint=complaint, upheld=True,
                                  remedy="amend_documents", decision="Fondé.")
    inadmissible = services.rule_admissibility(actor=body(world), complaint=complaint,
                                               admissible=False, reason="Aucun grief précis.")
    assert inadmissible.status == "inadmissible"
    published_tender.refresh_from_db()
    assert not published_tender.suspended  # an inadmissible complaint never suspended
    with pytest.raises(Conflict, match="decided already"):
        services.decide_complaint(actor=body(world), complaint=complaint, upheld=False,
                                  decision="Rejeté.")
    with pytest.raises(Conflict, match="ruled already"):
        admit(world, complaint)


def test_a_company_has_a_limited_number_of_undecided_complaints_per_tender(world,
                                                                           published_tender):
    first, _second = file(world, 0, published_tender), file(world, 0, published_tender)
    entries = Entry.objects.count()
    with pytest.raises(Conflict, match="2 undecided complaint"):
        file(world, 0, published_tender)
    assert Entry.objects.count() == entries
    file(world, 1, published_tender)  # the limit is per company
    services.rule_admissibility(actor=body(world), complaint=first, admissible=False,
                                reason="Irrecevable.")
    file(world, 0, published_tender)  # a decided complaint no longer counts
    with override_settings(PROCUREMENT_COMPLAINTS_PER_COMPANY=4):
        file(world, 0, published_tender)


def test_bids_go_on_while_a_complaint_is_pending_and_the_suspension_is_given_back(
        world, published_tender):
    """The walk: one bid sent, a complaint filed, bids refused, the complaint rejected
    after the deadline, and the tender closed with that single bid."""
    tender = published_tender
    deadline = tender.submission_deadline
    submit_bid(company(world, 0), tender, {"1": "100000"}, now=deadline - 3 * DAY)
    complaint = file(world, 1, tender, now=deadline - 3 * DAY)
    # pending: bids are accepted
    submit_bid(company(world, 1), tender, {"1": "101000"}, now=deadline - 2 * DAY)
    admit(world, complaint, now=deadline - 2 * DAY)  # two days left when suspended
    tender.refresh_from_db()
    assert tender.suspended and tender.lots.filter(suspended_since__isnull=False).count() == 2
    # the timer does not close a suspended tender
    assert run_timers_at(deadline + SECOND) == []
    tender.refresh_from_db()
    assert tender.state == "enquiries"
    decided = deadline + DAY
    services.decide_complaint(actor=body(world), complaint=complaint, upheld=False,
                              decision="Le cahier des charges est neutre.", now=decided)
    tender.refresh_from_db()
    assert not tender.suspended
    assert tender.submission_deadline == decided + 2 * DAY  # the two days, given back
    entry = ledger.get_entry(Complaint.objects.get(pk=complaint.pk).decided_index)
    assert entry.type == "procurement.complaint.decided"
    assert tender.submission_deadline.isoformat().encode() in bytes(entry.body)
    submit_bid(company(world, 2), tender, {"1": "99000"}, now=decided + DAY)
    run_timers_at(tender.submission_deadline + SECOND)
    tender.refresh_from_db()
    assert tender.state == "evaluation"
    assert tender.bids.filter(status=Bid.Status.OPENED).count() == 3


def test_an_upheld_complaint_binds_on_its_lot_only(world, published_tender):
    """The walk: "re-examine lot 2" upheld; the buyer re-awarded the same suppliers
    seconds later, and lot 1's award was cancelled too."""
    tender = published_tender
    at = awarded(world, tender)
    assert active_awards(tender) == {1: "Atlas", 2: "Carthage"}
    complaint = file(world, 2, tender, "Réexaminer le lot 2 : l'offre de Carthage est "
                     "non conforme.", lots=[2], now=at + DAY)
    admit(world, complaint, now=at + DAY)
    services.decide_complaint(actor=body(world), complaint=complaint, upheld=True,
                              remedy="reevaluate", decision="Réexaminer le lot 2.",
                              now=at + 2 * DAY)
    tender.refresh_from_db()
    assert tender.state == "evaluation"
    assert active_awards(tender) == {1: "Atlas"}  # lot 1 untouched
    officer = world["officer"].user
    # the old evaluation step no longer satisfies the award
    with pytest.raises(Conflict, match="evaluate it again"):
        services.award_tender(actor=officer, tender=tender, now=at + 2 * DAY + SECOND)
    assert active_awards(tender) == {1: "Atlas"}
    # lot 2 is evaluated anew: every eligibility again (lot 1's is final)
    evaluator = world["evaluators"][0].user
    with pytest.raises(Conflict, match="Decide the eligibility"):
        services.complete_evaluation(actor=officer, tender=tender)
    lot1 = BidLot.objects.filter(lot__number=1, bid__tender=tender).first()
    with pytest.raises(Conflict, match="final"):
        services.decide_eligibility(actor=evaluator, bid_lot=lot1, eligible=False,
                                    reason="Tentative.")
    for row in BidLot.objects.filter(lot__number=2, bid__tender=tender):
        carthage = row.bid.company.name == "Carthage"
        services.decide_eligibility(actor=evaluator, bid_lot=row, eligible=not carthage,
                                    reason="Non conforme." if carthage else "")
    report = services.complete_evaluation(actor=officer, tender=tender)
    assert [lot["lot"] for lot in report["lots"]] == [2]
    # the new evaluation is a new report: the committee adopts it before the award
    with pytest.raises(Conflict, match="not adopted"):
        services.award_tender(actor=officer, tender=tender, now=at + 3 * DAY)
    factories.adopt_evaluation(tender)
    services.award_tender(actor=officer, tender=tender, now=at + 3 * DAY)
    tender.refresh_from_db()
    assert active_awards(tender) == {1: "Atlas", 2: "Medina"}
    assert tender.state == "standstill"
    # the public API lists them lot by lot, the cancelled award before its successor
    listed = Client().get(f"/api/procurement/tenders/{tender.reference}").json()["awards"]
    assert [(a["lot"], a["supplier"], a["status"]) for a in listed] == [
        (1, "Atlas", "active"), (2, "Carthage", "cancelled"), (2, "Medina", "active")]
    # lot 1's contract waits only for lot 1's own standstill
    lot1_award = Award.objects.get(tender=tender, lot__number=1, status="active")
    moment = lot1_award.standstill_until + SECOND
    with time_machine.travel(moment):
        contract = services.sign_contract(actor=officer, award=lot1_award,
                                          start_date=dt.date(2027, 1, 1),
                                          end_date=dt.date(2027, 12, 31), now=moment)
    assert contract.value == Decimal("100000")
    lot2_award = Award.objects.get(tender=tender, lot__number=2, status="active")
    with time_machine.travel(moment), pytest.raises(Conflict, match="standstill"):
        services.sign_contract(actor=officer, award=lot2_award,
                               start_date=dt.date(2027, 1, 1),
                               end_date=dt.date(2027, 12, 31), now=moment)


def test_an_upheld_complaint_may_cancel_its_lot_only(world, published_tender):
    tender = published_tender
    at = awarded(world, tender)
    complaint = file(world, 2, tender, lots=[2], now=at + DAY)
    admit(world, complaint, now=at + DAY)
    with pytest.raises(InvalidInput, match="remedy"):
        services.decide_complaint(actor=body(world), complaint=complaint, upheld=True,
                                  decision="Fondé.", now=at + 2 * DAY)
    with pytest.raises(InvalidInput, match="remedy"):  # not a remedy of an award complaint
        services.decide_complaint(actor=body(world), complaint=complaint, upheld=True,
                                  remedy="amend_documents", decision="Fondé.",
                                  now=at + 2 * DAY)
    services.decide_complaint(actor=body(world), complaint=complaint, upheld=True,
                              remedy="cancel_lot", decision="Lot 2 annulé.", now=at + 2 * DAY)
    tender.refresh_from_db()
    assert active_awards(tender) == {1: "Atlas"} and tender.state == "standstill"
    assert list(tender.lots.filter(cancelled=True).values_list("number", flat=True)) == [2]
    lots = {lot["id"]: lot["status"] for lot in ocds.releases_of(ocds.ocid(tender))[-1]
            ["tender"]["lots"]}
    assert lots["2"] == "cancelled"
    # the public reads, on the lot itself, that it is cancelled and why (lot 1 stands)
    page = Client().get(f"/tenders/{tender.reference}/").content.decode()
    assert "<strong>Lot cancelled</strong>: Lot 2 annulé." in page
    assert page.count("Lot cancelled") == 1


def test_a_company_that_withdrew_its_bid_cannot_complain_against_the_award(
        world, published_tender):
    tender = published_tender
    deadline = tender.submission_deadline
    medina = company(world, 2)
    bid = submit_bid(medina, tender, {"1": "90000"}, now=deadline - 2 * DAY)
    withdraw_bid(medina, bid, now=deadline - DAY)
    at = awarded(world, tender, bidders=2)  # Medina's bid was withdrawn
    with pytest.raises(PermissionDenied, match="Only the bidders of lot 1"):
        file(world, 2, tender, lots=[1], now=at + DAY)
    # Atlas did not bid on lot 2: it complains against lot 1's award only
    with pytest.raises(PermissionDenied, match="Only the bidders of lot 2"):
        file(world, 0, tender, lots=[2], now=at + DAY)
    with pytest.raises(InvalidInput, match="one lot"):
        file(world, 1, tender, now=at + DAY)
    assert file(world, 1, tender, lots=[1], now=at + DAY).kind == "award"
    # after the standstill, no more
    with pytest.raises(Conflict, match="standstill"):
        file(world, 1, tender, lots=[1], now=at + 11 * DAY)


def test_only_the_complaints_body_outside_the_buyers_line_rules(world, published_tender):
    complaint = file(world, 0, published_tender)
    audit = factories.administration(code="COUR", kind=AdministrationKind.AGENCY)
    auditor = factories.agent(administration=audit, roles=[Role.AUDITOR]).user
    inside = factories.agent(administration=world["mf"], roles=[Role.COMPLAINTS_BODY]).user
    for actor in (auditor, inside, world["officer"].user, company(world, 1)):
        with pytest.raises(PermissionDenied, match="complaints body"):
            services.rule_admissibility(actor=actor, complaint=complaint, admissible=True,
                                        reason="Recevable.")
    assert admit(world, complaint).status == "admitted"
    for actor in (auditor, inside):
        with pytest.raises(PermissionDenied, match="complaints body"):
            services.decide_complaint(actor=actor, complaint=complaint, upheld=False,
                                      decision="Rejeté.")


def test_complaints_and_every_ruling_are_public_with_their_ledger_indexes(
        world, published_tender, client):
    tender = published_tender
    complaint = file(world, 0, tender, "Le critère 3 exclut les PME.", lots=[1])
    admit(world, complaint)
    services.decide_complaint(actor=body(world), complaint=complaint, upheld=True,
                              remedy="amend_documents", decision="Critère 3 à reformuler.")
    tender.refresh_from_db()
    assert tender.suspended  # until the documents are amended
    from tests.procurement.conftest import PDF

    services.amend_tender(actor=world["officer"].user, tender=tender,
                          rationale="Critère 3 reformulé.",
                          documents=[("cahier-des-charges.pdf", PDF)])
    tender.refresh_from_db()
    complaint.refresh_from_db()
    assert not tender.suspended and complaint.remedied_index is not None
    indexes = [complaint.filed_index, complaint.admissibility_index,
               complaint.decided_index, complaint.remedied_index]
    assert all(isinstance(i, int) for i in indexes) and indexes == sorted(indexes)
    types = [ledger.get_entry(i).type for i in indexes]
    assert ledger.get_entry(complaint.remedied_index - 1).type == "procurement.tender.amended"
    assert types == ["procurement.complaint.filed", "procurement.complaint.admitted",
                     "procurement.complaint.decided", "procurement.complaint.remedied"]
    # the API
    public = Client().get(f"/api/procurement/tenders/{tender.reference}").json()
    [shown] = public["complaints"]
    assert shown["text"] == "Le critère 3 exclut les PME." and shown["lots"] == [1]
    assert shown["decision"] == "Critère 3 à reformuler."
    assert shown["remedy"] == "amend_documents" and shown["status"] == "upheld"
    assert [shown[k] for k in ("filed_index", "admissibility_index", "decided_index",
                               "remedied_index")] == indexes
    listed = Client().get(f"/api/procurement/tenders/{tender.reference}/complaints").json()
    assert listed == public["complaints"]
    # the page
    page = Client().get(f"/tenders/{tender.reference}/").content.decode()
    assert "Le critère 3 exclut les PME." in page and "Critère 3 à reformuler." in page
    for index in indexes:
        assert f"#{index}" in page
    # OCDS
    release = ocds.releases_of(ocds.ocid(tender))[-1]
    [published] = release["tender"]["complaints"]
    assert published["description"] == "Le critère 3 exclut les PME."
    assert published["decision"]["rationale"] == "Critère 3 à reformuler."
    assert published["remedy"] == "amendDocuments"
    assert [published["ledgerIndex"], published["admissibility"]["ledgerIndex"],
            published["decision"]["ledgerIndex"], published["remedyLedgerIndex"]] == indexes
    assert any(e.endswith("/ocds/extensions/complaints/extension.json") for e in ocds.EXTENSIONS)


# --- time limits -----------------------------------------------------------------------

def test_the_complaints_bodys_time_limits_lapse_a_complaint_and_lift_a_suspension(
        world, published_tender):
    tender = published_tender
    start = tender.published_at
    late = file(world, 0, tender, now=start + DAY)
    admitted = file(world, 1, tender, now=start + DAY)
    admit(world, admitted, now=start + 2 * DAY)
    # admissibility: 5 days; after them the complaint lapses and cannot be admitted
    done = services.complaint_timers(now=start + 6 * DAY + SECOND)
    late.refresh_from_db()
    assert late.status == "lapsed" and any("lapsed" in d for d in done)
    with pytest.raises(Conflict, match="lapsed"):
        services.rule_admissibility(actor=body(world), complaint=late, admissible=True,
                                    reason="Recevable.", now=start + 6 * DAY + SECOND)
    # the merits: 15 days after admission the lots resume; the complaint stays to decide
    tender.refresh_from_db()
    assert tender.suspended
    services.complaint_timers(now=start + 17 * DAY + SECOND)
    tender.refresh_from_db()
    admitted.refresh_from_db()
    assert not tender.suspended and admitted.status == "admitted"
    assert Step.objects.filter(tender=tender, type="complaint.suspension_lifted").exists()
    services.decide_complaint(actor=body(world), complaint=admitted, upheld=False,
                              decision="Rejeté.", now=start + 18 * DAY)


# --- through the API and the web page -------------------------------------------------

def test_the_review_procedure_through_the_api(world, published_tender):
    ref = published_tender.reference
    officer, carthage = world["officer"], world["companies"][1][1]
    haicop = world["auditor"]
    filed = carthage.call("post", f"/tenders/{ref}/complaints",
                          {"text": "Spécifications orientées.", "lots": [2]})
    assert filed.status_code == 201, filed.content
    complaint = filed.json()
    assert complaint["status"] == "filed" and complaint["kind"] == "documents"
    assert complaint["lots"] == [2] and complaint["decide_by"] is None
    cid = complaint["id"]
    # bad input is a 4xx problem, never a 500
    assert carthage.call("post", f"/tenders/{ref}/complaints",
                         {"text": "x", "lots": [9]}).status_code == 422
    assert carthage.call("post", f"/tenders/{ref}/complaints",
                         {"text": "x", "lots": ["deux"]}).status_code == 422
    assert carthage.call("post", f"/tenders/{ref}/complaints", {"text": ""}).status_code == 422
    assert haicop.call("post", "/complaints/999999/admissibility",
                       {"admissible": True, "reason": "x"}).status_code == 404
    assert haicop.call("post", f"/complaints/{cid}/decision",
                       {"upheld": True, "decision": "x", "remedy": "jail"}).status_code == 422
    assert carthage.call("post", f"/complaints/{cid}/admissibility",
                         {"admissible": True, "reason": "moi"}).status_code == 403
    assert officer.call("post", f"/complaints/{cid}/decision",
                        {"upheld": False, "decision": "x"}).status_code == 403
    assert haicop.call("post", f"/complaints/{cid}/decision",
                       {"upheld": False, "decision": "x"}).status_code == 409

    ruled = haicop.call("post", f"/complaints/{cid}/admissibility",
                        {"admissible": True, "reason": "Motivé, dans le délai."})
    assert ruled.status_code == 200 and ruled.json()["status"] == "admitted"
    assert ruled.json()["decide_by"] is not None
    detail = officer.call("get", f"/tenders/{ref}").json()
    assert detail["suspended"] is True
    assert [lot["suspended_since"] is not None for lot in detail["lots"]] == [False, True]
    decided = haicop.call("post", f"/complaints/{cid}/decision",
                          {"upheld": False, "decision": "Spécifications neutres."})
    assert decided.status_code == 200 and decided.json()["status"] == "rejected"
    assert decided.json()["decided_index"] > decided.json()["admissibility_index"]
    assert officer.call("get", f"/tenders/{ref}").json()["suspended"] is False


def test_the_review_procedure_through_the_web_page(world, published_tender):
    ref = published_tender.reference
    carthage = Client()
    carthage.force_login(company(world, 1))
    answer = carthage.post(f"/tenders/{ref}/complaint/", {"complaint-text": "Lot 1 orienté.",
                                                         "lot": ["1"]}, follow=True)
    assert answer.status_code == 200
    assert [str(m) for m in answer.context["messages"]] == [
        "Done: the step is recorded in the public ledger."]
    complaint = Complaint.objects.get(tender=published_tender)
    assert [lot.number for lot in complaint.lots.all()] == [1]
    haicop = Client()
    haicop.force_login(body(world))
    page = haicop.get(f"/tenders/{ref}/").content.decode()
    assert "Lot 1 orienté." in page and 'name="admissible"' in page
    haicop.post(f"/tenders/{ref}/admissibility/",
                {"complaint": str(complaint.pk), "admissible": "yes",
                 f"admissibility{complaint.pk}-text": "Recevable."})
    complaint.refresh_from_db()
    assert complaint.status == "admitted"
    # a forged id finds nothing: a 404, not a 500
    assert haicop.post(f"/tenders/{ref}/decide/",
                       {"complaint": "1e99", "upheld": "no",
                        "decide1e99-text": "x"}).status_code == 404
    haicop.post(f"/tenders/{ref}/decide/",
                {"complaint": str(complaint.pk), "upheld": "yes", "remedy": "cancel_lot",
                 f"decide{complaint.pk}-text": "Lot 1 annulé."})
    complaint.refresh_from_db()
    assert complaint.status == "upheld" and complaint.remedy == "cancel_lot"
    published_tender.refresh_from_db()
    assert published_tender.state == "enquiries" and not published_tender.suspended
    page = Client().get(f"/tenders/{ref}/").content.decode()
    assert "Lot 1 annulé." in page


# --- pre-qualification -------------------------------------------------------------------

def test_a_candidate_refused_at_prequalification_complains_and_is_admitted_to_bid(world):
    """In a restricted procedure, a refused candidate's complaint is against its refusal:
    admitted, it suspends the tender; upheld, the candidate is qualified and bids, with the
    suspension's time given back to everyone."""
    from tests.procurement.conftest import publish, tender_payload

    officer = world["officer"]
    ref = officer.call("post", "/tenders", tender_payload(procedure="restricted")).json()[
        "reference"]
    publish(officer, ref)
    tender = Tender.objects.get(reference=ref)
    atlas, carthage = world["companies"][0][0], world["companies"][1][0]
    for i in (0, 1):
        services.apply_for_prequalification(actor=company(world, i), tender=tender)
    refused = tender.participants.get(company=carthage)
    deadline = tender.submission_deadline
    services.decide_prequalification(actor=officer.user, participation=refused,
                                     qualified=False, reason="Références insuffisantes.",
                                     now=deadline - 12 * DAY)
    services.decide_prequalification(actor=officer.user,
                                     participation=tender.participants.get(company=atlas),
                                     qualified=True, now=deadline - 12 * DAY)
    assert not services.may_bid(tender, carthage)
    complaint = file(world, 1, tender, "Nos références ont été ignorées.",
                     now=deadline - 5 * DAY)
    assert complaint.kind == Complaint.Kind.QUALIFICATION
    assert complaint.lots.count() == tender.lots.count()  # shut out of every lot
    # a qualified candidate's complaint is against the documents, as before
    assert file(world, 0, tender, now=deadline - 5 * DAY).kind == Complaint.Kind.DOCUMENTS
    admit(world, complaint, now=deadline - 4 * DAY)  # four days left when suspended
    with pytest.raises(InvalidInput):  # the documents are not what was complained of
        services.decide_complaint(actor=body(world), complaint=complaint, upheld=True,
                                  decision="Fondé.", remedy="amend_documents",
                                  now=deadline - 3 * DAY)
    decided = deadline - 2 * DAY
    services.decide_complaint(actor=body(world), complaint=complaint, upheld=True,
                              decision="Les références répondent au règlement.",
                              remedy="qualify", now=decided)
    tender.refresh_from_db()
    refused.refresh_from_db()
    assert refused.kind == "qualified" and services.may_bid(tender, carthage)
    assert not tender.suspended and tender.submission_deadline == decided + 4 * DAY
    steps = list(Step.objects.filter(tender=tender).values_list("type", flat=True))
    assert steps[-2:] == ["candidate.qualified", "complaint.decided"]
    submit_bid(company(world, 1), tender, {"1": "98000"}, now=decided + DAY)
    # public, with its kind and remedy, in the OCDS release
    release = ocds.releases_of(ocds.ocid(tender))[-1]
    [published] = [c for c in release["tender"]["complaints"] if c["id"] == str(complaint.pk)]
    assert published["type"] == "qualification" and published["remedy"] == "qualify"


def test_a_company_never_refused_cannot_complain_against_a_prequalification(world):
    from tests.procurement.conftest import publish, tender_payload

    officer = world["officer"]
    ref = officer.call("post", "/tenders", tender_payload(procedure="restricted")).json()[
        "reference"]
    publish(officer, ref)
    tender = Tender.objects.get(reference=ref)
    services.apply_for_prequalification(actor=company(world, 2), tender=tender)
    # a pending candidate, or a company that never applied, complains against the documents
    assert file(world, 2, tender).kind == Complaint.Kind.DOCUMENTS
    assert file(world, 1, tender).kind == Complaint.Kind.DOCUMENTS
