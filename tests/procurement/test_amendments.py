"""Amendments of a published tender (docs/procurement.md, "Amendments").

The walk found that a new version of the specifications uploaded minutes before the
deadline kept the deadline and the bids and told nobody, and that a tender could not be
amended nor its deadline extended. Now an amendment carries its rationale, keeps the
legal minimum of days after it, tells the bidders (who must confirm, replace or
withdraw a sealed bid when the conditions changed), is on the ledger and in OCDS, and
remedies an upheld complaint that waits for the documents to be amended."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from sahab.core.errors import Conflict, InvalidInput, PermissionDenied
from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from sahab.procurement import ocds, services
from sahab.procurement.models import (
    Bid,
    Complaint,
    Notice,
    Release,
    Step,
    Tender,
    TenderAmendment,
    TenderDocument,
)
from tests import notices
from tests.procurement.bidding import run_timers_at, submit_bid, withdraw_bid
from tests.procurement.conftest import PDF

DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)
SPECS = "cahier-des-charges.pdf"


def officer(world):
    return world["officer"].user


def company(world, i: int):
    return world["companies"][i][1].user


def written(tender: Tender) -> tuple:
    """What an amendment writes: rows, documents, steps, ledger entries, releases."""
    return (TenderAmendment.objects.count(), TenderDocument.objects.count(),
            Step.objects.filter(tender=tender).count(), Entry.objects.count(),
            Release.objects.count(), Notice.objects.count(),
            Tender.objects.filter(pk=tender.pk).values_list(
                "submission_deadline", "enquiry_deadline").get())


def test_an_amendment_extends_the_deadline_on_the_ledger_and_in_ocds(world,
                                                                   published_tender):
    tender = published_tender
    old = tender.submission_deadline
    new = old + 7 * DAY
    amendment = services.amend_tender(
        actor=officer(world), tender=tender, rationale="Spécifications du lot 2 précisées.",
        documents=[(SPECS, PDF)], submission_deadline=new)
    tender.refresh_from_db()
    assert tender.submission_deadline == new
    assert amendment.number == 1 and amendment.extends_deadline
    assert [d["name"] for d in amendment.documents] == [SPECS]
    entry = ledger.get_entry(amendment.ledger_index)
    assert entry.type == "procurement.tender.amended"
    assert entry.subject == f"tender:{tender.reference}"
    assert Step.objects.filter(tender=tender, type="tender.amended",
                               ledger_index=amendment.ledger_index).exists()
    body = bytes(entry.body).decode()
    assert new.isoformat() in body and old.isoformat() in body
    assert "Spécifications du lot 2 précisées." in body
    # OCDS: a tenderAmendment release with the amendment, the new period, the document
    release = Release.objects.get(ledger_index=amendment.ledger_index)
    assert release.tags == ["tenderAmendment"]
    [shown] = release.data["tender"]["amendments"]
    assert shown["id"] == "1" and shown["rationale"] == "Spécifications du lot 2 précisées."
    assert "date limite de remise des offres" in shown["description"]
    assert SPECS in shown["description"]
    assert shown["releaseID"] == release.release_id
    assert shown["amendsReleaseID"] == Release.objects.filter(
        ocid=release.ocid, ledger_index__lt=release.ledger_index).last().release_id
    assert release.data["tender"]["tenderPeriod"]["endDate"] == ocds._date(new)
    # the merge tooling keeps the amendment in the compiled record
    record = ocds.compile_record(ocds.releases_of(ocds.ocid(tender)))
    assert [a["id"] for a in record["compiledRelease"]["tender"]["amendments"]] == ["1"]
    # a second amendment is number 2, and the first stays in the history
    services.amend_tender(actor=officer(world), tender=tender, rationale="Report.",
                          submission_deadline=new + DAY)
    latest = ocds.releases_of(ocds.ocid(tender))[-1]
    assert [a["id"] for a in latest["tender"]["amendments"]] == ["1", "2"]


def test_an_amendment_too_close_to_the_deadline_must_extend_it(world, published_tender):
    """The walk: a new version of the specifications 2.5 minutes before the deadline kept
    the deadline. Now it is refused unless the deadline is extended, with nothing written."""
    tender = published_tender
    deadline = tender.submission_deadline
    late = deadline - dt.timedelta(minutes=2, seconds=30)
    before = written(tender)
    with pytest.raises(InvalidInput, match="at least 10 days"):
        services.amend_tender(actor=officer(world), tender=tender, rationale="Nouvelle "
                              "version.", documents=[(SPECS, PDF)], now=late)
    # an extension that leaves less than the minimum is refused too
    with pytest.raises(InvalidInput, match="extend it to"):
        services.amend_tender(actor=officer(world), tender=tender, rationale="Report court.",
                              documents=[(SPECS, PDF)], submission_deadline=deadline + DAY,
                              now=late)
    assert written(tender) == before
    # a deadline never comes forward; an amendment changes something
    with pytest.raises(InvalidInput, match="only extend"):
        services.amend_tender(actor=officer(world), tender=tender, rationale="Avancée.",
                              submission_deadline=deadline - DAY)
    with pytest.raises(InvalidInput, match="changed or new lots, or later deadlines"):
        services.amend_tender(actor=officer(world), tender=tender, rationale="Rien.")
    assert written(tender) == before
    amendment = services.amend_tender(actor=officer(world), tender=tender,
                                      rationale="Nouvelle version.", documents=[(SPECS, PDF)],
                                      submission_deadline=late + 10 * DAY, now=late)
    tender.refresh_from_db()
    assert tender.submission_deadline == late + 10 * DAY
    assert amendment.old_submission_deadline == deadline


@override_settings(PROCUREMENT_MIN_DAYS=0)
def test_the_training_platforms_override_applies_to_amendments(world, published_tender):
    tender = published_tender
    late = tender.submission_deadline - dt.timedelta(minutes=5)
    services.amend_tender(actor=officer(world), tender=tender, rationale="Formation.",
                          documents=[(SPECS, PDF)], now=late)
    tender.refresh_from_db()
    assert tender.submission_deadline - late == dt.timedelta(minutes=5)


def test_only_an_officer_of_the_buyer_amends(world, published_tender):
    tender = published_tender
    before = written(tender)
    for actor in (world["other_officer"].user, company(world, 0),
                  world["evaluators"][0].user, world["auditor"].user):
        with pytest.raises(PermissionDenied):
            services.amend_tender(actor=actor, tender=tender, rationale="Intrus.",
                                  documents=[(SPECS, PDF)],
                                  submission_deadline=tender.submission_deadline + DAY)
    assert written(tender) == before


def test_no_amendment_after_the_deadline_nor_of_a_draft(world, published_tender):
    tender = published_tender
    before = written(tender)
    with pytest.raises(Conflict, match="before its submission deadline"):
        services.amend_tender(actor=officer(world), tender=tender, rationale="Trop tard.",
                              submission_deadline=tender.submission_deadline + 30 * DAY,
                              now=tender.submission_deadline + SECOND)
    run_timers_at(tender.submission_deadline + SECOND)
    tender.refresh_from_db()
    assert tender.state != "tendering"
    with pytest.raises(Conflict):
        services.amend_tender(actor=officer(world), tender=tender, rationale="Trop tard.",
                              submission_deadline=tender.submission_deadline + 30 * DAY)
    from tests.procurement.conftest import tender_payload

    draft = world["officer"].call("post", "/tenders", tender_payload()).json()["reference"]
    with pytest.raises(Conflict, match="draft"):
        services.amend_tender(actor=officer(world), tender=Tender.objects.get(reference=draft),
                              rationale="Brouillon.", documents=[(SPECS, PDF)])
    assert TenderAmendment.objects.count() == before[0]


def test_a_published_tenders_documents_change_only_by_an_amendment(world, published_tender):
    """The walk's silent new version: add_document no longer changes a published tender."""
    with pytest.raises(Conflict, match="amendment"):
        services.add_document(actor=officer(world), tender=published_tender, name=SPECS,
                              content=PDF)
    assert not published_tender.documents.exists()


def test_bidders_are_told_and_must_confirm_replace_or_withdraw_their_bid(world,
                                                                        published_tender,
                                                                        commits):
    tender = published_tender
    deadline = tender.submission_deadline
    atlas, carthage, medina = (company(world, i) for i in range(3))
    a = submit_bid(atlas, tender, {"1": "100000"}, now=deadline - 12 * DAY)
    c = submit_bid(carthage, tender, {"1": "105000"}, now=deadline - 12 * DAY)
    withdraw_bid(carthage, c, now=deadline - 11 * DAY)
    amendment = commits(services.amend_tender, actor=officer(world), tender=tender,
                        rationale="Quantités du lot 1 revues.", documents=[(SPECS, PDF)],
                        submission_deadline=deadline + 5 * DAY, now=deadline - 10 * DAY)
    subject = f"{tender.reference} is amended (amendment no. {amendment.number})"
    # Atlas bid: told in the platform and by mail; Carthage withdrew; Medina never bid
    [notice] = Notice.objects.filter(company=world["companies"][0][0], tender=tender)
    new_deadline = f"{(deadline + 5 * DAY):%Y-%m-%d %H:%M} UTC"
    assert "Quantités du lot 1 revues." in notice.text
    assert f"must confirm or replace your sealed bid by {new_deadline}" in notice.text
    assert notices.subjects_to(atlas) == [subject]
    [(_, message)] = [(t, m) for t, m in notices.sent() if t == atlas.email]
    content = message.get_content()
    assert f"confirm or replace your sealed bid by {new_deadline}" in content
    assert "withdraw" in content and f"/tenders/{tender.reference}/" in content
    for user, row in ((carthage, world["companies"][1][0]), (medina, world["companies"][2][0])):
        assert notices.subjects_to(user) == []
        assert not Notice.objects.filter(company=row, tender=tender).exists()
    # the sealed bid waits for its confirmation; its company may replace it instead,
    # another may still bid
    assert Bid.objects.filter(pk=a.pk).values_list("status", "confirm_amendment").get() \
        == (Bid.Status.SUBMITTED, amendment.number)
    replaced = submit_bid(atlas, tender, {"1": "98000"}, now=deadline + DAY)
    assert Bid.objects.get(pk=a.pk).status == Bid.Status.REPLACED
    submit_bid(medina, tender, {"1": "99000"}, now=deadline + 2 * DAY)
    withdraw_bid(atlas, replaced, now=deadline + 3 * DAY)
    assert Bid.objects.get(pk=replaced.pk).status == Bid.Status.WITHDRAWN
    # after the new deadline the tender opens with the live bid only
    tender.refresh_from_db()
    run_timers_at(tender.submission_deadline + SECOND)
    tender.refresh_from_db()
    assert tender.state == "evaluation"
    assert list(tender.bids.filter(status=Bid.Status.OPENED)
                .values_list("company__name", flat=True)) == ["Medina"]


def test_a_bid_sealed_before_an_amendment_is_opened_only_if_confirmed_or_deadline_only(
        world, published_tender):
    """A bid sealed before an amendment of the documents is opened once its company
    confirmed it; a later amendment of the deadline alone asks nothing more."""
    tender = published_tender
    deadline = tender.submission_deadline
    bid = submit_bid(company(world, 0), tender, {"1": "100000"}, now=deadline - 12 * DAY)
    services.amend_tender(actor=officer(world), tender=tender, rationale="Précision.",
                          documents=[(SPECS, PDF)], now=deadline - 11 * DAY)
    services.confirm_bid(actor=company(world, 0), bid=bid, now=deadline - 10 * DAY)
    services.amend_tender(actor=officer(world), tender=tender, rationale="Report.",
                          submission_deadline=deadline + DAY, now=deadline - 9 * DAY)
    assert Bid.objects.get(pk=bid.pk).confirm_amendment is None
    run_timers_at(deadline + DAY + SECOND)
    tender.refresh_from_db()
    assert tender.state == "evaluation"
    assert tender.bids.filter(status=Bid.Status.OPENED).count() == 1


def test_an_amendment_remedies_an_upheld_complaint_with_the_legal_minimum(
        world, published_tender):
    tender = published_tender
    deadline = tender.submission_deadline
    body = world["auditor"].user
    complaint = services.file_complaint(actor=company(world, 1), tender=tender,
                                        text="Le critère 3 exclut les PME.", lots=[1],
                                        now=deadline - 3 * DAY)
    services.rule_admissibility(actor=body, complaint=complaint, admissible=True,
                                reason="Recevable.", now=deadline - 2 * DAY)
    decided = deadline + DAY
    services.decide_complaint(actor=body, complaint=complaint, upheld=True,
                              remedy="amend_documents", decision="Critère 3 à reformuler.",
                              now=decided)
    tender.refresh_from_db()
    assert tender.suspended  # waiting for the documents to be amended
    at = decided + DAY
    # the two days the suspension took are given back, but the minimum is 10 days
    with pytest.raises(InvalidInput, match="at least 10 days"):
        services.amend_tender(actor=officer(world), tender=tender, rationale="Critère 3 "
                              "reformulé.", documents=[(SPECS, PDF)], now=at)
    tender.refresh_from_db()
    assert tender.suspended and Complaint.objects.get(pk=complaint.pk).remedied_at is None
    # an amendment of the deadlines alone amends no document: the remedy still waits
    services.amend_tender(actor=officer(world), tender=tender, rationale="Report.",
                          submission_deadline=at + 12 * DAY, now=at)
    tender.refresh_from_db()
    assert tender.suspended
    amendment = services.amend_tender(actor=officer(world), tender=tender,
                                      rationale="Critère 3 reformulé.",
                                      documents=[(SPECS, PDF)],
                                      submission_deadline=at + 15 * DAY, now=at)
    tender.refresh_from_db()
    complaint.refresh_from_db()
    assert not tender.suspended and tender.submission_deadline == at + 15 * DAY
    assert complaint.remedied_at == at and complaint.remedied_index > amendment.ledger_index
    entry = ledger.get_entry(complaint.remedied_index)
    assert entry.type == "procurement.complaint.remedied"
    assert b'"amendment":2' in bytes(entry.body).replace(b" ", b"")
    run_timers_at(at + 15 * DAY - SECOND)
    tender.refresh_from_db()
    assert tender.state in ("enquiries", "tendering")


# --- through the API and the web page -------------------------------------------------

def test_amendments_through_the_api(world, published_tender):
    ref = published_tender.reference
    officer_, other = world["officer"], world["other_officer"]
    new = (published_tender.submission_deadline + 5 * DAY).isoformat()
    body = {"rationale": "Lot 2 : quantités revues.", "submission_deadline": new,
            "documents": [{"name": SPECS, "content_base64": base64.b64encode(PDF).decode()}]}
    assert other.call("post", f"/tenders/{ref}/amendments", body).status_code == 403
    assert world["companies"][0][1].call("post", f"/tenders/{ref}/amendments",
                                         body).status_code == 403
    refused = officer_.call("post", f"/tenders/{ref}/amendments",
                            {**body, "submission_deadline": "2020-01-01T00:00:00+00:00"})
    assert refused.status_code == 422 and "only extend" in refused.json()["detail"]
    bad = officer_.call("post", f"/tenders/{ref}/amendments",
                        {**body, "documents": [{"name": "x.exe", "content_base64": "AAAA"}]})
    assert bad.status_code == 422
    assert officer_.call("post", f"/tenders/{ref}/amendments",
                         {"rationale": ""}).status_code == 422
    assert officer_.call("post", "/tenders/NOPE-1/amendments", body).status_code == 404
    assert not TenderAmendment.objects.exists()
    made = officer_.call("post", f"/tenders/{ref}/amendments", body)
    assert made.status_code == 201, made.content
    shown = made.json()
    assert shown["number"] == 1 and shown["documents"][0]["name"] == SPECS
    assert shown["new_submission_deadline"] != shown["old_submission_deadline"]
    public = Client().get(f"/api/procurement/tenders/{ref}").json()
    assert [a["rationale"] for a in public["amendments"]] == ["Lot 2 : quantités revues."]
    assert public["submission_deadline"] == shown["new_submission_deadline"]
    listed = Client().get(f"/api/procurement/tenders/{ref}/amendments").json()
    assert listed[0]["ledger_index"] == shown["ledger_index"]
    # a published tender's document is no longer replaced silently
    silent = officer_.call("post", f"/tenders/{ref}/documents", body["documents"][0])
    assert silent.status_code == 409 and "amendment" in silent.json()["detail"]


def test_amendments_through_the_web_page(world, published_tender):
    from django.core.files.uploadedfile import SimpleUploadedFile

    ref = published_tender.reference
    browser = Client()
    browser.force_login(officer(world))
    page = browser.get(f"/tenders/{ref}/").content.decode()
    assert f'action="/tenders/{ref}/amend_tender/"' in page
    new = published_tender.submission_deadline + 4 * DAY
    answer = browser.post(f"/tenders/{ref}/amend_tender/", {
        "amendment-rationale": "Plans du site ajoutés.",
        "amendment-submission_deadline": timezone.localtime(new).strftime("%Y-%m-%dT%H:%M:%S"),
        "amendment-documents": SimpleUploadedFile("plans.pdf", PDF, "application/pdf")},
        follow=True)
    assert [str(m) for m in answer.context["messages"]] == [
        "Done: the step is recorded in the public ledger."]
    amendment = TenderAmendment.objects.get(tender=published_tender)
    assert amendment.documents[0]["name"] == "plans.pdf"
    assert amendment.new_submission_deadline == new.replace(microsecond=0)
    refused = browser.post(f"/tenders/{ref}/amend_tender/", {
        "amendment-rationale": "Sans rien.",
        "amendment-submission_deadline": ""}, follow=True)
    assert "changed or new lots, or later deadlines" in str(
        next(iter(refused.context["messages"])))
    public = Client().get(f"/tenders/{ref}/").content.decode()
    assert "Plans du site ajoutés." in public and "plans.pdf" in public
    # others see no form
    other = Client()
    other.force_login(world["other_officer"].user)
    assert "amend_tender" not in other.get(f"/tenders/{ref}/").content.decode()
    later = timezone.localtime(new + DAY).strftime("%Y-%m-%dT%H:%M:%S")
    assert other.post(f"/tenders/{ref}/amend_tender/", {
        "amendment-rationale": "Intrus.", "amendment-submission_deadline": later,
    }).status_code == 302
    assert TenderAmendment.objects.count() == 1


def test_an_amendment_changes_the_compliance_criteria_and_bids_are_checked_against_them(
        world, published_tender):
    tender = published_tender
    before = list(tender.compliance_criteria)
    new = [*before, "Attestation de conformité à la norme ISO 27001"]
    with pytest.raises(InvalidInput):  # the same criterion twice
        services.amend_tender(actor=officer(world), tender=tender, rationale="Doublon.",
                              compliance_criteria=[*before, before[0]])
    with pytest.raises(InvalidInput):  # the same list is no change
        services.amend_tender(actor=officer(world), tender=tender, rationale="Rien.",
                              compliance_criteria=before)
    amendment = services.amend_tender(actor=officer(world), tender=tender,
                                      rationale="Sécurité exigée.", compliance_criteria=new)
    tender.refresh_from_db()
    assert tender.compliance_criteria == new
    assert (amendment.old_compliance_criteria, amendment.new_compliance_criteria) == \
        (before, new)
    data = ledger.get_entry(amendment.ledger_index)
    assert b"ISO 27001" in bytes(data.body) and b"old_compliance_criteria" in bytes(data.body)
    [published] = ocds.compile_record(ocds.releases_of(ocds.ocid(tender)))[
        "compiledRelease"]["tender"]["amendments"]
    assert "ISO 27001" in published["description"]
    public = Client().get(f"/api/procurement/tenders/{tender.reference}/amendments").json()
    assert public[0]["new_compliance_criteria"] == new
    # the web form: one criterion per line; the evaluation checks the new list
    browser = Client()
    browser.force_login(officer(world))
    answer = browser.post(f"/tenders/{tender.reference}/amend_tender/", {
        "amendment-rationale": "Critère retiré.",
        "amendment-compliance_criteria": "\n".join(before) + "\n\n"}, follow=True)
    assert [str(m) for m in answer.context["messages"]] == [
        "Done: the step is recorded in the public ledger."]
    tender.refresh_from_db()
    assert tender.compliance_criteria == before


def test_a_company_whose_bid_predates_a_later_deadline_is_told_beside_its_bid(
        world, published_tender):
    """An amendment that leaves the bids valid (a later deadline) asks nothing of the
    company, but the tender page says, beside its sealed bid, that the tender changed after
    it, until it seals a new one; an amendment that asks for confirmation waits on its
    account page instead (tests/procurement/test_bid_confirmation.py)."""
    from sahab.core import waiting

    tender, ref = published_tender, published_tender.reference
    deadline = tender.submission_deadline
    atlas = company(world, 0)
    submit_bid(atlas, tender, {"1": "100000"}, now=deadline - 12 * DAY)
    services.amend_tender(actor=officer(world), tender=tender, rationale="Quantités revues.",
                          submission_deadline=deadline + 5 * DAY, now=deadline - 10 * DAY)
    assert [w.label for w in waiting.for_user(atlas) if ref in w.label] == []
    page = Client()
    page.force_login(atlas)
    assert "The tender was amended after your bid (amendment no. 1)." in \
        page.get(f"/tenders/{ref}/").content.decode()
    submit_bid(atlas, tender, {"1": "98000"}, now=deadline - 9 * DAY)  # sealed anew
    assert "amended after your bid" not in page.get(f"/tenders/{ref}/").content.decode()
