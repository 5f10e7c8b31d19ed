"""Complaints tell the people who must act on them, by mail through sahab's own mail
system, and appear in their "waiting for you" list: the complaints body when a complaint
waits for its ruling, the buyer's officers when their tender is complained against, the
company at each ruling. No one else is told."""

import datetime as dt

import pytest

from sahab.core import waiting
from sahab.directory.models import Role
from sahab.procurement import services
from sahab.procurement.models import Tender
from tests import factories, notices


@pytest.fixture
def outsiders(world):
    """Who must hear nothing: another ministry's officer, a complaints body member of the
    buyer's own line, a company that did not complain."""
    return [world["other_officer"].user,
            factories.agent(administration=world["mf"], roles=[Role.COMPLAINTS_BODY]).user,
            world["companies"][1][1].user]


def test_a_complaint_is_mailed_to_the_complaints_body_and_the_buyer_only(
        world, published_tender, outsiders, commits):
    company = world["companies"][0][1].user
    complaint = commits(services.file_complaint, actor=company, tender=published_tender,
                        text="Le cahier des charges favorise une marque.")
    reference = published_tender.reference
    [to_body] = notices.subjects_to(world["auditor"].user)
    assert "waits for your ruling" in to_body and reference in to_body
    [to_buyer] = notices.subjects_to(world["officer"].user)
    assert f"Complaint filed against {reference}" == to_buyer
    assert notices.subjects_to(company) == []
    for user in outsiders:
        assert notices.subjects_to(user) == []
    [(_, message)] = [(t, m) for t, m in notices.sent() if t == world["auditor"].user.email]
    assert f"/tenders/{reference}/" in message.get_content()
    assert complaint.company.name in message.get_content()


def test_each_ruling_is_mailed_to_the_company_and_the_buyer(world, published_tender,
                                                           outsiders, commits):
    company = world["companies"][0][1].user
    complaint = commits(services.file_complaint, actor=company, tender=published_tender,
                        text="Le cahier des charges favorise une marque.")
    body = world["auditor"].user
    commits(services.rule_admissibility, actor=body, complaint=complaint, admissible=True,
            reason="Recours motivé, déposé dans le délai.")
    commits(services.decide_complaint, actor=body, complaint=complaint, upheld=False,
            decision="Les spécifications sont justifiées par le besoin.")
    number = f"Complaint no. {complaint.pk} on {published_tender.reference}"
    assert notices.subjects_to(company) == [f"{number}: admitted", f"{number}: rejected"]
    assert notices.subjects_to(world["officer"].user)[1:] == [f"{number}: admitted",
                                                               f"{number}: rejected"]
    [(_, rejected)] = [(t, m) for t, m in notices.sent()
                       if t == company.email and m["Subject"].endswith("rejected")]
    assert "justifiées par le besoin" in rejected.get_content()
    for user in outsiders:
        assert notices.subjects_to(user) == []


def test_complaints_and_evaluations_wait_for_those_who_may_act_on_them(world,
                                                                       published_tender):
    body = world["auditor"].user
    complaint = services.file_complaint(actor=world["companies"][0][1].user,
                                        tender=published_tender, text="Grief précis.")

    def labels(user) -> list[str]:
        return [w.label for w in waiting.for_user(user)]

    assert labels(body) == [f"Rule on the admissibility of complaint no. {complaint.pk} on "
                            f"{published_tender.reference}"]
    services.rule_admissibility(actor=body, complaint=complaint, admissible=True,
                                reason="Recevable.")
    assert labels(body) == [f"Decide complaint no. {complaint.pk} on "
                            f"{published_tender.reference}"]
    services.decide_complaint(actor=body, complaint=complaint, upheld=False,
                              decision="Rejeté.")
    assert labels(body) == []

    evaluator, other = world["evaluators"][0].user, world["other_officer"].user
    assert labels(evaluator) == []
    Tender.objects.filter(pk=published_tender.pk).update(state="evaluation")
    assert labels(evaluator) == [f"Evaluate the bids of {published_tender.reference}"]
    assert labels(other) == []
    # an evaluator of the buyer who is not on the tender's committee has nothing to do
    outsider = factories.agent(administration=world["mf"], roles=[Role.EVALUATOR]).user
    assert labels(outsider) == []


def test_a_person_who_turned_complaint_notices_off_is_not_mailed_them(
        world, published_tender, commits):
    from sahab.mail import services as mail

    officer = world["officer"].user
    mail.choose_notices(actor=officer, user=officer, wanted=["approvals", "tenders"])
    commits(services.file_complaint, actor=world["companies"][0][1].user,
            tender=published_tender, text="Grief précis.")
    assert notices.subjects_to(officer) == []
    assert len(notices.subjects_to(world["auditor"].user)) == 1  # the others still are


def test_a_proposed_report_asks_each_voting_member_for_their_vote(world, published_tender,
                                                                   commits):
    """Each committee member without a conflict is mailed the proposed report and finds
    it waiting until they voted; a member with a conflict, and everyone else, hear
    nothing."""
    from sahab.procurement.models import BidLot
    from tests.procurement.bidding import run_timers_at, submit_bid

    tender = published_tender
    members = [m.member for m in tender.evaluation_committee.select_related("member")]
    assert len(members) >= 2
    for (_company, member), price in zip(world["companies"], ("100000", "105000"),
                                         strict=False):
        submit_bid(member.user, tender, {"1": price})
    run_timers_at(tender.submission_deadline + dt.timedelta(seconds=1))
    tender.refresh_from_db()
    assert tender.state == "evaluation"
    voter = members[0]
    services.declare_conflict_of_interest(actor=voter, tender=tender, no_conflict=True)
    conflicted = factories.agent(administration=world["mf"], roles=[Role.EVALUATOR]).user
    services.name_evaluation_committee(actor=world["officer"].user, tender=tender,
                                       members=[*members, conflicted], chair=voter,
                                       quorum=2)
    services.declare_conflict_of_interest(actor=conflicted, tender=tender, no_conflict=False,
                                          statement="Mon frère dirige un soumissionnaire.")
    for row in BidLot.objects.filter(bid__tender=tender):
        services.decide_eligibility(actor=voter, bid_lot=row, eligible=True)
    commits(services.complete_evaluation, actor=world["officer"].user, tender=tender)
    subject = f"Evaluation report no. 1 of {tender.reference} waits for your vote"
    for member in members:
        assert subject in notices.subjects_to(member), member
    assert subject not in notices.subjects_to(conflicted)  # out of the committee's votes
    assert subject not in notices.subjects_to(world["other_officer"].user)
    to_vote = f"Vote on evaluation report no. 1 of {tender.reference}"
    assert to_vote in [w.label for w in waiting.for_user(voter)]
    report = tender.evaluation_reports.get()
    services.approve_evaluation(actor=voter, tender=tender, sha256=report.sha256)
    assert to_vote not in [w.label for w in waiting.for_user(voter)]
