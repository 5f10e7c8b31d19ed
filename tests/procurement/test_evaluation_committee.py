"""The evaluation committee (commission d'évaluation) and the explanation of abnormally low
prices: only members evaluate, the report is adopted by a quorum of members before any
award, an abnormally low price is awarded only once its bidder explained it and the
committee accepted the explanation — and no single account takes a tender from its
opening to its award."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sahab.core import waiting
from sahab.core.errors import Conflict, InvalidInput, PermissionDenied
from sahab.directory.models import Role
from sahab.directory.selectors import SYSTEM, actor_id
from sahab.ledger.models import Entry
from sahab.procurement import services
from sahab.procurement.models import (
    Award,
    BidLot,
    EvaluationReport,
    Explanation,
    Tender,
)
from tests import factories, notices
from tests.procurement.bidding import run_timers_at, submit_bid

SECOND = dt.timedelta(seconds=1)
# lot 1: Medina's 60,000 is under 70 % of the mean of the others (100,000): abnormally low
LOW = [{"1": "100000"}, {"1": "100000"}, {"1": "60000"}]


def company(world, i: int):
    return world["companies"][i][1].user


def entry(kind: str) -> dict:
    return json.loads(bytes(Entry.objects.filter(type=f"procurement.{kind}")
                            .order_by("-index").first().body))["data"]


def opened(world, tender: Tender, prices=LOW) -> Tender:
    """The companies bid ``prices``; the worker opens the bids after the deadline."""
    for i, offer in enumerate(prices):
        submit_bid(company(world, i), tender, offer)
    run_timers_at(tender.submission_deadline + SECOND)
    tender.refresh_from_db()
    assert tender.state == "evaluation"
    return tender


def eligible(world, tender: Tender, member=None) -> dict:
    """A member declares no conflict and finds every bid eligible; the officer proposes
    the report."""
    member = member or world["evaluators"][0].user
    services.declare_conflict_of_interest(actor=member, tender=tender, no_conflict=True)
    for row in BidLot.objects.filter(bid__tender=tender):
        services.decide_eligibility(actor=member, bid_lot=row, eligible=True)
    return services.complete_evaluation(actor=world["officer"].user, tender=tender)


def low_row(world, tender: Tender) -> BidLot:
    return BidLot.objects.get(bid__tender=tender, lot__number=1,
                              bid__company=world["companies"][2][0])


@pytest.fixture
def tender(published_tender) -> Tender:
    return published_tender


def test_the_committee_its_chair_and_quorum_are_on_the_ledger(world, tender):
    ev1, ev2 = (e.user for e in world["evaluators"])
    services.name_evaluation_committee(actor=world["officer"].user, tender=tender,
                                       members=[ev2, ev1], chair=ev2, quorum=2)
    assert entry("evaluation.committee_named") == {
        "members": [actor_id(ev2), actor_id(ev1)], "chair": actor_id(ev2), "quorum": 2}
    tender.refresh_from_db()
    assert tender.evaluation_quorum == 2
    assert [(m.member, m.chair) for m in tender.evaluation_committee.all()] == \
        [(ev2, True), (ev1, False)]


def _refusals(world, tender):
    """(what is tried, the error, its message): each is refused and writes nothing."""
    officer = world["officer"].user
    ev1, ev2 = (e.user for e in world["evaluators"])
    outsider = factories.agent(administration=world["mf"], roles=[Role.EVALUATOR]).user
    finance = world["finance"].user

    def name(actor=officer, members=(ev1, ev2), chair=ev1, quorum=2):
        return lambda: services.name_evaluation_committee(
            actor=actor, tender=tender, members=list(members), chair=chair, quorum=quorum)

    return {
        "single-member committee": (name(members=[ev1], quorum=1), InvalidInput, "2 to"),
        "the preparing officer alone": (name(members=[officer], chair=officer, quorum=1),
                                        InvalidInput, "2 to"),
        "quorum of one": (name(quorum=1), InvalidInput, "quorum"),
        "quorum above the members": (name(quorum=3), InvalidInput, "quorum"),
        "the same member twice": (name(members=[ev1, ev1]), InvalidInput, "distinct"),
        "a member who is no evaluator": (name(members=[ev1, finance]), InvalidInput,
                                         "not an evaluator"),
        "a chair who is no member": (name(chair=outsider), InvalidInput, "chair"),
        "named by an evaluator": (name(actor=ev1), PermissionDenied, "procurement officer"),
        "a non-member declares": (lambda: services.declare_conflict_of_interest(
            actor=outsider, tender=tender, no_conflict=True), PermissionDenied,
            "evaluation committee"),
    }


@pytest.mark.parametrize("case", ["single-member committee", "the preparing officer alone",
                                  "quorum of one", "quorum above the members",
                                  "the same member twice", "a member who is no evaluator",
                                  "a chair who is no member", "named by an evaluator",
                                  "a non-member declares"])
def test_committee_refusals_change_nothing(world, tender, case):
    tender = opened(world, tender)
    attempt, error, message = _refusals(world, tender)[case]
    entries = Entry.objects.count()
    with pytest.raises(error, match=message):
        attempt()
    assert Entry.objects.count() == entries
    assert set(tender.evaluation_committee.values_list("member", flat=True)) == \
        {e.user.pk for e in world["evaluators"]}


def test_a_non_member_evaluator_neither_decides_nor_scores(world, tender):
    tender = opened(world, tender)
    outsider = factories.agent(administration=world["mf"], roles=[Role.EVALUATOR]).user
    row = BidLot.objects.filter(bid__tender=tender).first()
    entries = Entry.objects.count()
    with pytest.raises(PermissionDenied, match="evaluation committee"):
        services.decide_eligibility(actor=outsider, bid_lot=row, eligible=True)
    Tender.objects.filter(pk=tender.pk).update(award_criteria="weighted", price_weight=60)
    with pytest.raises(PermissionDenied, match="evaluation committee"):
        services.score_quality(actor=outsider, bid_lot=row, score=90)
    row.refresh_from_db()
    assert row.eligible is None and not row.quality_scores.exists()
    assert Entry.objects.count() == entries


def test_the_award_waits_for_the_quorum_to_approve_this_very_report(world, tender):
    tender = opened(world, tender, [{"1": "100000"}, {"1": "105000"}])
    ev1, ev2 = (e.user for e in world["evaluators"])
    officer = world["officer"].user
    eligible(world, tender)
    report = tender.evaluation_reports.get()
    assert report.status == "proposed"
    services.approve_evaluation(actor=ev1, tender=tender, sha256=report.sha256)
    entries = Entry.objects.count()
    with pytest.raises(Conflict, match="not adopted"):  # one approval of a quorum of two
        services.award_tender(actor=officer, tender=tender)
    with pytest.raises(Conflict, match="already"):  # nobody approves twice
        services.approve_evaluation(actor=ev1, tender=tender, sha256=report.sha256)
    services.declare_conflict_of_interest(actor=ev2, tender=tender, no_conflict=True)
    entries = Entry.objects.count()
    with pytest.raises(Conflict, match="changed"):  # an approval names the report it read
        services.approve_evaluation(actor=ev2, tender=tender, sha256="0" * 64)
    with pytest.raises(InvalidInput, match="reasons"):  # a dissent says why
        services.approve_evaluation(actor=ev2, tender=tender, sha256=report.sha256,
                                    approved=False)
    assert Entry.objects.count() == entries and not Award.objects.exists()
    # a change to the evaluation supersedes the report: approvals of the old one lapse
    row = BidLot.objects.filter(bid__tender=tender).first()
    services.decide_eligibility(actor=ev1, bid_lot=row, eligible=True)
    report.refresh_from_db()
    assert report.status == "superseded"
    with pytest.raises(Conflict, match="No evaluation report waits"):
        services.approve_evaluation(actor=ev2, tender=tender, sha256=report.sha256)
    again = services.complete_evaluation(actor=officer, tender=tender)
    assert again["number"] == 2 and again["sha256"] != report.sha256
    services.approve_evaluation(actor=ev1, tender=tender, sha256=again["sha256"])
    adopted = services.approve_evaluation(actor=ev2, tender=tender, sha256=again["sha256"])
    assert adopted.status == "adopted"
    assert entry("evaluation.adopted") == {
        "report": 2, "sha256": again["sha256"], "quorum": 2,
        "approvals": [actor_id(ev1), actor_id(ev2)]}
    assert services.award_tender(actor=officer, tender=tender)


def test_a_dissent_is_recorded_with_its_reasons_and_does_not_adopt(world, tender):
    tender = opened(world, tender, [{"1": "100000"}, {"1": "105000"}])
    ev1, ev2 = (e.user for e in world["evaluators"])
    report = eligible(world, tender)
    factories.adopt_evaluation(tender, members=[ev1])
    services.declare_conflict_of_interest(actor=ev2, tender=tender, no_conflict=True)
    services.approve_evaluation(actor=ev2, tender=tender, sha256=report["sha256"],
                                approved=False, reason="Le lot 1 mérite une vérification.")
    assert entry("evaluation.dissented") == {
        "member": actor_id(ev2), "report": 1, "sha256": report["sha256"],
        "reason": "Le lot 1 mérite une vérification."}
    assert EvaluationReport.objects.get(tender=tender).status == "proposed"
    with pytest.raises(Conflict, match="not adopted"):
        services.award_tender(actor=world["officer"].user, tender=tender)


def test_a_conflict_leaves_the_quorum_unreachable_until_the_committee_is_named_again(
        world, tender):
    tender = opened(world, tender, [{"1": "100000"}, {"1": "105000"}])
    ev1, ev2 = (e.user for e in world["evaluators"])
    officer = world["officer"].user
    services.declare_conflict_of_interest(actor=ev2, tender=tender, no_conflict=False,
                                          statement="Mon frère dirige Carthage.")
    assert entry("evaluation.declaration")["quorum_reachable"] is False
    services.declare_conflict_of_interest(actor=ev1, tender=tender, no_conflict=True)
    for row in BidLot.objects.filter(bid__tender=tender):
        services.decide_eligibility(actor=ev1, bid_lot=row, eligible=True)
    with pytest.raises(Conflict, match="quorum"):
        services.complete_evaluation(actor=officer, tender=tender)
    # the member with a conflict is out: they cannot evaluate, nor be named again to
    # make up the quorum
    with pytest.raises(PermissionDenied, match="no conflict"):
        services.decide_eligibility(actor=ev2, bid_lot=row, eligible=False, reason="x")
    with pytest.raises(InvalidInput, match="too few"):
        services.name_evaluation_committee(actor=officer, tender=tender, members=[ev1, ev2],
                                           chair=ev1, quorum=2)
    ev3 = factories.agent(administration=world["mf"], roles=[Role.EVALUATOR]).user
    services.name_evaluation_committee(actor=officer, tender=tender, members=[ev1, ev3],
                                       chair=ev1, quorum=2)
    report = services.complete_evaluation(actor=officer, tender=tender)
    factories.adopt_evaluation(tender)
    assert EvaluationReport.objects.get(sha256=report["sha256"]).status == "adopted"


def test_an_abnormally_low_price_is_explained_by_its_bidder_and_mailed(world, tender,
                                                                      commits):
    tender = opened(world, tender)
    eligible(world, tender)
    factories.adopt_evaluation(tender)
    low = low_row(world, tender)
    assert low.abnormally_low and low.rank == 1
    officer, chair = world["officer"].user, world["evaluators"][0].user
    # an adopted report does not suffice, nor does the buyer's own justification
    with pytest.raises(InvalidInput, match="abnormally low"):
        services.award_tender(actor=officer, tender=tender, justification="Prix vérifié.")
    medina = company(world, 2)
    asked = commits(services.request_explanation, actor=chair, bid_lot=low,
                    question="Détaillez la composition de votre prix.")
    assert asked.due_at - asked.requested_at == dt.timedelta(days=5)
    assert entry("explanation.requested")["question"] == \
        "Détaillez la composition de votre prix."
    [subject] = notices.subjects_to(medina)
    assert tender.reference in subject and "explain your price for lot 1" in subject
    assert notices.subjects_to(company(world, 0)) == []  # no other bidder is told
    # and the request waits on the account page of the company's users, until answered
    assert [w.label.split(" by ")[0] for w in waiting.for_user(medina)] == \
        [f"Explain your price for lot 1 of {tender.reference}"]
    assert waiting.for_user(company(world, 0)) == []
    with pytest.raises(Conflict, match="asked already"):
        services.request_explanation(actor=chair, bid_lot=low, question="Encore ?")
    with pytest.raises(Conflict, match="nothing to accept"):
        services.decide_explanation(actor=chair, explanation=asked, accepted=True,
                                    reason="Vu.")
    services.answer_explanation(actor=medina, explanation=asked,
                                answer="Stock existant acquis en 2025, factures jointes.")
    assert waiting.for_user(medina) == []
    assert entry("explanation.answered")["sha256"] == services._sha(
        "Stock existant acquis en 2025, factures jointes.")  # the ledger keeps the hash
    services.decide_explanation(actor=chair, explanation=asked, accepted=True,
                                reason="Les factures attestent le stock.")
    assert entry("explanation.decided")["accepted"] is True
    # the committee adopts the evaluation again, with the accepted explanation in it
    with pytest.raises(Conflict, match="not adopted"):
        services.award_tender(actor=officer, tender=tender)
    report = services.complete_evaluation(actor=officer, tender=tender)
    assert report["lots"][0]["ranking"][0]["explanation"] == "accepted"
    factories.adopt_evaluation(tender)
    [award] = services.award_tender(actor=officer, tender=tender)
    assert award.supplier == world["companies"][2][0]


def _explanation_refusals(world, asked):
    medina = company(world, 2)
    deadline = asked.due_at
    return {
        "answer by another company": (lambda: services.answer_explanation(
            actor=company(world, 0), explanation=asked, answer="Nous expliquons."),
            PermissionDenied, "company asked"),
        "answer by an agent": (lambda: services.answer_explanation(
            actor=world["officer"].user, explanation=asked, answer="Vu."),
            PermissionDenied, "registered company"),
        "answer after the deadline": (lambda: services.answer_explanation(
            actor=medina, explanation=asked, answer="Trop tard.", now=deadline + SECOND),
            Conflict, "time to explain ended"),
        "rejection before the deadline without an answer": (
            lambda: services.decide_explanation(
                actor=world["evaluators"][0].user, explanation=asked, accepted=False,
                reason="Pas de réponse.", now=deadline - SECOND),
            Conflict, "may explain its price until"),
        "request by a member who is not the chair": (lambda: services.request_explanation(
            actor=world["evaluators"][1].user, bid_lot=asked.bid_lot, question="?"),
            PermissionDenied, "chair"),
        "decision by a company": (lambda: services.decide_explanation(
            actor=medina, explanation=asked, accepted=True, reason="Oui."),
            PermissionDenied, "chair"),
    }


@pytest.mark.parametrize("case", ["answer by another company", "answer by an agent",
                                  "answer after the deadline",
                                  "rejection before the deadline without an answer",
                                  "request by a member who is not the chair",
                                  "decision by a company"])
def test_explanation_refusals_change_nothing(world, tender, case):
    tender = opened(world, tender)
    eligible(world, tender)
    factories.adopt_evaluation(tender)
    asked = services.request_explanation(actor=world["evaluators"][0].user,
                                         bid_lot=low_row(world, tender),
                                         question="Justifiez votre prix.")
    attempt, error, message = _explanation_refusals(world, asked)[case]
    entries = Entry.objects.count()
    with pytest.raises(error, match=message):
        attempt()
    assert Entry.objects.count() == entries
    asked.refresh_from_db()
    assert asked.status == "requested" and asked.answer == ""


def test_an_unanswered_request_lets_the_committee_reject_and_the_lot_is_ranked_again(
        world, tender):
    tender = opened(world, tender)
    eligible(world, tender)
    low = low_row(world, tender)
    chair, officer = world["evaluators"][0].user, world["officer"].user
    asked = services.request_explanation(actor=chair, bid_lot=low, question="Justifiez.")
    services.decide_explanation(actor=chair, explanation=asked, accepted=False,
                                reason="Aucune réponse dans le délai.",
                                now=asked.due_at + SECOND)
    assert entry("explanation.decided") | {"explanation": 0} == {
        "explanation": 0, "bid": low.bid.commitment, "lot": 1, "accepted": False,
        "answered": False, "reason": "Aucune réponse dans le délai."}
    low.refresh_from_db()
    assert low.eligible is False and low.rank is None
    assert "Aucune réponse" in low.eligibility_reason
    ranks = dict(BidLot.objects.filter(bid__tender=tender, rank__isnull=False)
                 .values_list("bid__company__name", "rank"))
    assert sorted(ranks.values()) == [1, 2] and "Medina" not in ranks
    with pytest.raises(Conflict, match="decided already"):
        services.decide_explanation(actor=chair, explanation=asked, accepted=True,
                                    reason="Finalement oui.")
    with pytest.raises(Conflict, match="decided already"):  # too late to answer now
        services.answer_explanation(actor=company(world, 2), explanation=asked,
                                    answer="Voici.", now=asked.due_at + 2 * SECOND)
    services.complete_evaluation(actor=officer, tender=tender)
    factories.adopt_evaluation(tender)
    [award] = services.award_tender(actor=officer, tender=tender)
    assert award.supplier.name in ("Atlas", "Carthage")
    assert Explanation.objects.get().status == "rejected"


def test_no_single_account_takes_a_tender_from_opening_to_award_alone(world, tender):
    """One agent holding every role of the buyer tries to evaluate and award alone."""
    omni = factories.agent(administration=world["mf"],
                           roles=[Role.PROCUREMENT_OFFICER, Role.EVALUATOR,
                                  Role.FINANCE]).user
    ev1 = world["evaluators"][0].user
    tender = opened(world, tender, [{"1": "100000"}, {"1": "105000"}])
    entries = Entry.objects.count()
    for members, quorum in (([omni], 1), ([omni, omni], 2), ([omni, ev1], 1)):
        with pytest.raises(InvalidInput):
            services.name_evaluation_committee(actor=omni, tender=tender, members=members,
                                               chair=omni, quorum=quorum)
    assert Entry.objects.count() == entries
    # the only committee it may name needs another member's approval
    services.name_evaluation_committee(actor=omni, tender=tender, members=[omni, ev1],
                                       chair=omni, quorum=2)
    services.declare_conflict_of_interest(actor=omni, tender=tender, no_conflict=True)
    for row in BidLot.objects.filter(bid__tender=tender):
        services.decide_eligibility(actor=omni, bid_lot=row, eligible=True)
    services.complete_evaluation(actor=omni, tender=tender)
    report = tender.evaluation_reports.get()
    assert services.approve_evaluation(actor=omni, tender=tender,
                                       sha256=report.sha256).status == "proposed"
    with pytest.raises(Conflict, match="already"):
        services.approve_evaluation(actor=omni, tender=tender, sha256=report.sha256)
    with pytest.raises(Conflict, match="not adopted"):
        services.award_tender(actor=omni, tender=tender)
    # nor can the platform itself (the demo loader, the CLI) stand in for a member
    with pytest.raises(PermissionDenied):
        services.approve_evaluation(actor=SYSTEM, tender=tender, sha256=report.sha256)
    assert not Award.objects.exists() and Tender.objects.get(pk=tender.pk).state == \
        "evaluation"
    # a second member's approval is what was missing
    factories.adopt_evaluation(tender, members=[ev1])
    assert services.award_tender(actor=omni, tender=tender)


def test_the_explanation_days_setting_is_at_least_one(tmp_path):
    """0 days would let the committee reject a bid before its bidder could answer: a
    platform refuses to start with it (tests change the setting itself)."""
    import os
    import subprocess
    import sys

    env = os.environ | {"SAHAB_HOME": str(tmp_path), "SAHAB_PROCUREMENT_EXPLANATION_DAYS": "0"}
    run = subprocess.run([sys.executable, "-c", "import sahab.settings"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "EXPLANATION_DAYS is at least 1" in run.stderr
    env["SAHAB_PROCUREMENT_EXPLANATION_DAYS"] = "1"
    assert subprocess.run([sys.executable, "-c", "import sahab.settings"], env=env,
                          capture_output=True, timeout=120).returncode == 0


def test_the_committee_and_the_explanation_through_the_web_page(world, tender):
    from django.test import Client

    def signed_in(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    tender = opened(world, tender)
    ref = tender.reference
    ev1, ev2 = (e.user for e in world["evaluators"])
    officer = signed_in(world["officer"].user)
    page = officer.get(f"/tenders/{ref}/").content.decode()
    assert 'name="evaluation_members"' in page
    # the officer names the committee again, ev2 chairing
    officer.post(f"/tenders/{ref}/evaluation_committee/",
                 {"evaluation_members": f"{ev1.username}, {ev2.username}",
                  "chair": ev2.username, "quorum": "2"})
    assert tender.evaluation_committee.get(chair=True).member == ev2
    # a committee of one is refused with the reason, and the committee stays
    refused = officer.post(f"/tenders/{ref}/evaluation_committee/",
                           {"evaluation_members": ev1.username, "chair": ev1.username,
                            "quorum": "2"}, follow=True)
    assert "2 to 15 members" in refused.content.decode()
    assert tender.evaluation_committee.count() == 2
    member, chair = signed_in(ev1), signed_in(ev2)
    for client in (member, chair):
        client.post(f"/tenders/{ref}/declare/", {"no_conflict": "yes"})
    for row in BidLot.objects.filter(bid__tender=tender):
        member.post(f"/tenders/{ref}/eligibility/",
                    {"bid_lot": str(row.pk), "check": ["0", "1", "2"]})
    officer.post(f"/tenders/{ref}/evaluate/")
    low = low_row(world, tender)
    page = chair.get(f"/tenders/{ref}/").content.decode()
    assert 'name="question"' in page and 'name="sha256"' in page
    chair.post(f"/tenders/{ref}/explain_request/",
               {"bid_lot": str(low.pk), "question": "Détaillez votre prix."})
    asked = Explanation.objects.get()
    medina = signed_in(company(world, 2))
    page = medina.get(f"/tenders/{ref}/").content.decode()
    assert "Détaillez votre prix." in page and 'name="answer"' in page
    # another company sees no request, and cannot answer it
    atlas = signed_in(company(world, 0))
    assert "Détaillez votre prix." not in atlas.get(f"/tenders/{ref}/").content.decode()
    atlas.post(f"/tenders/{ref}/explain_answer/",
               {"explanation": str(asked.pk), "answer": "Nous répondons."})
    asked.refresh_from_db()
    assert asked.status == "requested"
    medina.post(f"/tenders/{ref}/explain_answer/",
                {"explanation": str(asked.pk), "answer": "Stock existant."})
    chair.post(f"/tenders/{ref}/explain_decide/",
               {"explanation": str(asked.pk), "accepted": "yes", "reason": "Stock attesté."})
    asked.refresh_from_db()
    assert asked.status == "accepted"
    officer.post(f"/tenders/{ref}/evaluate/")
    report = tender.evaluation_reports.order_by("-number").first()
    chair.post(f"/tenders/{ref}/approve/", {"sha256": report.sha256, "approved": "yes"})
    member.post(f"/tenders/{ref}/approve/", {"sha256": report.sha256, "approved": "no",
                                             "reason": ""})  # a dissent needs reasons
    report.refresh_from_db()
    assert report.status == "proposed" and report.approvals.count() == 1
    member.post(f"/tenders/{ref}/approve/", {"sha256": report.sha256, "approved": "yes"})
    report.refresh_from_db()
    assert report.status == "adopted"
    officer.post(f"/tenders/{ref}/award/", {"justification": ""})
    tender.refresh_from_db()
    assert tender.state == "standstill"
    public = Client().get(f"/tenders/{ref}/").content.decode()
    assert "Evaluation committee" in public and report.sha256 in public
    assert "Stock attesté." in public and "Stock existant." not in public


def test_the_committee_and_the_explanation_through_the_api(world, tender):
    tender = opened(world, tender)
    ref = tender.reference
    officer, (ev1, ev2) = world["officer"], world["evaluators"]
    named = officer.call("post", f"/tenders/{ref}/evaluation/committee",
                         {"members": [ev1.user.username, ev2.user.username],
                          "chair": ev1.user.username, "quorum": 2})
    assert named.status_code == 200, named.content
    assert named.json()["quorum"] == 2
    assert officer.call("post", f"/tenders/{ref}/evaluation/committee",
                        {"members": [ev1.user.username, ev2.user.username],
                         "chair": ev1.user.username, "quorum": 1}).status_code == 422
    assert ev1.call("post", f"/tenders/{ref}/evaluation/committee",
                    {"members": [ev1.user.username, ev2.user.username],
                     "chair": ev1.user.username, "quorum": 2}).status_code == 403
    eligible(world, tender)
    low = low_row(world, tender)
    asked = ev1.call("post", f"/tenders/{ref}/explanations",
                     {"bid": low.bid_id, "lot": 1, "question": "Justifiez votre prix."})
    assert asked.status_code == 201, asked.content
    eid = asked.json()["id"]
    atlas, medina = world["companies"][0][1], world["companies"][2][1]
    assert atlas.call("post", f"/explanations/{eid}/answer",
                      {"answer": "Nous."}).status_code == 403
    answered = medina.call("post", f"/explanations/{eid}/answer", {"answer": "Stock."})
    assert answered.json()["status"] == "answered"
    assert ev2.call("post", f"/explanations/{eid}/decision",
                    {"accepted": True, "reason": "Oui."}).status_code == 403  # not the chair
    decided = ev1.call("post", f"/explanations/{eid}/decision",
                       {"accepted": False, "reason": "Stock non attesté."})
    assert decided.json()["status"] == "rejected"
    report = officer.call("post", f"/tenders/{ref}/evaluation").json()
    for ev in (ev1, ev2):
        if ev is ev2:
            ev.call("post", f"/tenders/{ref}/declarations", {"no_conflict": True})
        ev.call("post", f"/tenders/{ref}/evaluation/approvals", {"sha256": report["sha256"]})
    public = officer.client.get(f"/api/procurement/tenders/{ref}/evaluation").json()
    assert public["reports"][-1]["status"] == "adopted"
    assert [e["status"] for e in public["explanations"]] == ["rejected"]
    assert all(m["member"].startswith("user:") for m in public["members"])
    detail = officer.call("get", f"/tenders/{ref}").json()
    assert detail["evaluation"] == public
    awarded = officer.call("post", f"/tenders/{ref}/award", {})
    assert awarded.status_code == 200, awarded.content
    assert [a["supplier"] for a in awarded.json()["awards"]] == ["Atlas"]
