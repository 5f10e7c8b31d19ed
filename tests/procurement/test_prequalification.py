"""Pre-qualification of a restricted procedure as a protective step: the buyer refuses a
candidate only with reasons, published with the decision on the ledger; the refused
candidate is told, with the date until which it may complain; a complaint against the
refusal is heard only within that time (a refusal could otherwise be contested at the
last minute and freeze the tender). The same steps through the API and the web page."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from sahab.core.errors import Conflict, InvalidInput
from sahab.ledger.models import Entry
from sahab.procurement import services
from sahab.procurement.models import Complaint, Notice, Participation, Tender
from tests import notices
from tests.procurement.conftest import publish, tender_payload

DAY = dt.timedelta(days=1)
REASONS = "Aucune référence comparable au cours des trois dernières années."


@pytest.fixture
def restricted(world) -> Tender:
    """A published restricted procedure; Atlas and Carthage have applied."""
    officer = world["officer"]
    ref = officer.call("post", "/tenders", tender_payload(procedure="restricted")).json()[
        "reference"]
    publish(officer, ref)
    tender = Tender.objects.get(reference=ref)
    for _company, member in world["companies"][:2]:
        services.apply_for_prequalification(actor=member.user, tender=tender)
    return tender


def _candidate(world, tender: Tender, i: int) -> Participation:
    return tender.participants.get(company=world["companies"][i][0])


def _entry(type_: str) -> dict:
    return json.loads(bytes(Entry.objects.filter(type=type_).latest("index").body))


def test_a_candidate_is_refused_only_with_reasons_published_on_the_ledger(world,
                                                                          restricted):
    officer = world["officer"].user
    carthage = _candidate(world, restricted, 1)
    with pytest.raises(InvalidInput):
        services.decide_prequalification(actor=officer, participation=carthage,
                                         qualified=False, reason="  ")
    carthage.refresh_from_db()
    assert carthage.kind == Participation.Kind.CANDIDATE  # nothing half-written
    decided = restricted.submission_deadline - 20 * DAY
    services.decide_prequalification(actor=officer, participation=carthage, qualified=False,
                                     reason=REASONS, now=decided)
    data = _entry("procurement.candidate.not_qualified")["data"]
    assert data["reason"] == REASONS
    assert data["complain_by"] == (decided + 10 * DAY).isoformat()
    # a qualification needs no reasons (but may give them)
    services.decide_prequalification(actor=officer, participation=_candidate(world, restricted, 0),
                                     qualified=True, now=decided)
    assert _entry("procurement.candidate.qualified")["data"]["reason"] == ""


def test_the_refused_candidate_is_told_why_and_until_when_it_may_complain(world, restricted,
                                                                          commits):
    carthage_user = world["companies"][1][1].user
    decided = restricted.submission_deadline - 20 * DAY
    commits(services.decide_prequalification, actor=world["officer"].user,
            participation=_candidate(world, restricted, 1), qualified=False, reason=REASONS,
            now=decided)
    due = f"{decided + 10 * DAY:%Y-%m-%d %H:%M}"
    [notice] = Notice.objects.filter(tender=restricted, company=world["companies"][1][0])
    assert REASONS in notice.text and due in notice.text
    assert notices.subjects_to(carthage_user) == [
        f"{restricted.reference}: your company is not qualified"]
    [(_, message)] = [(t, m) for t, m in notices.sent() if t == carthage_user.email]
    assert REASONS in message.get_content() and due in message.get_content()
    assert notices.subjects_to(world["companies"][0][1].user) == []  # not its business


def test_a_complaint_against_a_refusal_is_heard_only_within_its_days(world, restricted):
    """Replays the gap: a refused candidate could complain at any time before the
    deadline, long after its refusal."""
    deadline = restricted.submission_deadline
    decided = deadline - 20 * DAY
    services.decide_prequalification(actor=world["officer"].user,
                                     participation=_candidate(world, restricted, 1),
                                     qualified=False, reason=REASONS, now=decided)
    carthage = world["companies"][1][1].user
    with pytest.raises(Conflict) as refused:
        services.file_complaint(actor=carthage, tender=restricted, text="Trop tard ?",
                                now=decided + 10 * DAY + dt.timedelta(seconds=1))
    assert refused.value.code == "qualification_complaint_late"
    assert not Complaint.objects.filter(tender=restricted).exists()
    complaint = services.file_complaint(actor=carthage, tender=restricted,
                                        text="Nos références ont été ignorées.",
                                        now=decided + 10 * DAY)
    assert complaint.kind == Complaint.Kind.QUALIFICATION


def test_a_refusal_leaves_the_candidate_its_whole_time_to_complain(world, restricted):
    """Replays the finding: a refusal two minutes before the deadline left a window of two
    minutes to complain."""
    deadline = restricted.submission_deadline
    refused = _candidate(world, restricted, 1)
    for when in (deadline - dt.timedelta(minutes=2), deadline - 10 * DAY + dt.timedelta(
            seconds=1)):
        with pytest.raises(Conflict) as late:
            services.decide_prequalification(actor=world["officer"].user,
                                             participation=refused, qualified=False,
                                             reason=REASONS, now=when)
        assert late.value.code == "refusal_too_late"
    refused.refresh_from_db()
    assert refused.kind == Participation.Kind.CANDIDATE
    services.decide_prequalification(actor=world["officer"].user, participation=refused,
                                     qualified=False, reason=REASONS, now=deadline - 10 * DAY)
    assert services.refusal_complaint_due(restricted, refused.company) == deadline


def test_the_window_to_complain_is_the_one_the_ledger_published(world, restricted):
    """Replays the finding: the window was computed from the candidate's row, which a
    database writer could move forward to let a complaint in at the last minute (and
    freeze the tender) or back to shut the candidate out."""
    deadline = restricted.submission_deadline
    refused = _candidate(world, restricted, 1)
    decided = deadline - 20 * DAY
    services.decide_prequalification(actor=world["officer"].user, participation=refused,
                                     qualified=False, reason=REASONS, now=decided)
    Participation.objects.filter(pk=refused.pk).update(updated_at=deadline - DAY)
    with pytest.raises(Conflict):
        services.file_complaint(actor=world["companies"][1][1].user, tender=restricted,
                                text="Après coup.", now=deadline - 2 * DAY)
    Participation.objects.filter(pk=refused.pk).update(updated_at=decided - 30 * DAY)
    services.file_complaint(actor=world["companies"][1][1].user, tender=restricted,
                            text="Dans le délai.", now=decided + 9 * DAY)


def test_the_buyer_does_not_refuse_again_a_candidate_the_complaints_body_qualified(
        world, restricted):
    """Replays the finding: the buyer refused again, at the last minute, the candidate an
    upheld complaint had just qualified."""
    deadline = restricted.submission_deadline
    refused = _candidate(world, restricted, 1)
    services.decide_prequalification(actor=world["officer"].user, participation=refused,
                                     qualified=False, reason=REASONS, now=deadline - 20 * DAY)
    complaint = services.file_complaint(actor=world["companies"][1][1].user,
                                        tender=restricted, text="Références ignorées.",
                                        now=deadline - 19 * DAY)
    body = world["auditor"].user
    services.rule_admissibility(actor=body, complaint=complaint, admissible=True,
                                reason="Recevable.", now=deadline - 18 * DAY)
    services.decide_complaint(actor=body, complaint=complaint, upheld=True,
                              decision="Références suffisantes.", remedy="qualify",
                              now=deadline - 17 * DAY)
    refused.refresh_from_db()
    assert refused.kind == Participation.Kind.QUALIFIED
    with pytest.raises(Conflict) as overridden:
        services.decide_prequalification(actor=world["officer"].user, participation=refused,
                                         qualified=False, reason="Quand même.",
                                         now=deadline - 16 * DAY)
    assert overridden.value.code == "qualified_by_complaints_body"


def test_an_invitation_is_not_withdrawn_as_a_refusal(world):
    """Replays the finding: the qualification action turned a company invited to a
    negotiated procedure into a refused candidate, shutting it out."""
    from sahab.core.errors import NotFound
    from tests.procurement.conftest import tender_payload

    officer = world["officer"]
    invited = world["companies"][0][0]
    ref = officer.call("post", "/tenders", tender_payload(
        procedure="negotiated", invited=[invited.pk])).json()["reference"]
    publish(officer, ref)
    tender = Tender.objects.get(reference=ref)
    invitation = tender.participants.get(company=invited)
    with pytest.raises(NotFound):
        services.decide_prequalification(actor=officer.user, participation=invitation,
                                         qualified=False, reason=REASONS)
    invitation.refresh_from_db()
    assert invitation.kind == Participation.Kind.INVITED
    assert services.may_bid(tender, invited)


def test_no_decision_on_candidates_once_the_deadline_has_passed(world, restricted):
    with pytest.raises(Conflict):
        services.decide_prequalification(
            actor=world["officer"].user, participation=_candidate(world, restricted, 0),
            qualified=True, now=restricted.submission_deadline)


@override_settings(PROCUREMENT_QUALIFICATION_COMPLAINT_DAYS=3)
def test_the_days_to_complain_are_a_setting(world, restricted):
    deadline = restricted.submission_deadline
    refused = _candidate(world, restricted, 1)
    services.decide_prequalification(actor=world["officer"].user, participation=refused,
                                     qualified=False, reason=REASONS, now=deadline - 20 * DAY)
    refused.refresh_from_db()
    assert services.qualification_complaint_due(refused, restricted) == deadline - 17 * DAY


def test_the_api_refuses_a_candidate_without_reasons_and_with_them(world, restricted):
    officer = world["officer"]
    carthage = world["companies"][1][0]
    path = f"/tenders/{restricted.reference}/candidates/{carthage.pk}"
    bare = officer.call("post", path, {"qualified": False})
    assert bare.status_code == 422 and bare["Content-Type"] == "application/problem+json"
    answer = officer.call("post", path, {"qualified": False, "reason": REASONS})
    assert answer.status_code == 200 and answer.json()["status"] == "not_qualified"
    assert _entry("procurement.candidate.not_qualified")["data"]["reason"] == REASONS


def test_candidates_apply_and_are_decided_on_the_tender_page(world):
    officer = world["officer"]
    ref = officer.call("post", "/tenders", tender_payload(procedure="restricted")).json()[
        "reference"]
    publish(officer, ref)
    url = f"/tenders/{ref}/"
    company = Client()
    company.force_login(world["companies"][1][1].user)
    page = company.get(url).content.decode()
    assert "Apply to be qualified" in page
    company.post(f"/tenders/{ref}/apply/")
    candidate = Participation.objects.get(tender__reference=ref)
    assert candidate.kind == Participation.Kind.CANDIDATE
    assert "Apply to be qualified" not in company.get(url).content.decode()

    buyer = Client()
    buyer.force_login(officer.user)
    page = buyer.get(url).content.decode()
    assert world["companies"][1][0].name in page and 'name="qualified"' in page
    # refusing without reasons is refused, with the service's message on the page
    answer = buyer.post(f"/tenders/{ref}/qualify/", {
        "participation": str(candidate.pk), "qualified": "no"}, follow=True)
    assert "The reason" in answer.content.decode()
    candidate.refresh_from_db()
    assert candidate.kind == Participation.Kind.CANDIDATE
    buyer.post(f"/tenders/{ref}/qualify/", {
        "participation": str(candidate.pk), "qualified": "no",
        f"qualify{candidate.pk}-text": REASONS})
    candidate.refresh_from_db()
    assert candidate.kind == Participation.Kind.NOT_QUALIFIED
    # a forged candidate id finds nothing: a 404, not a 500
    assert buyer.post(f"/tenders/{ref}/qualify/", {
        "participation": "1e99", "qualified": "yes"}).status_code == 404

    page = company.get(url).content.decode()
    assert "You may complain against this refusal until" in page
    # the reasons are public: the step's ledger entry, linked from the page, holds them
    entry = Entry.objects.filter(type="procurement.candidate.not_qualified").latest("index")
    link = reverse("ledger:entry_page", args=(entry.index,))
    assert f'href="{link}"' in Client().get(url).content.decode()
