"""The notices of procurement reach their people where they read mail: the complaints
body's and the buyer's agents in their own mailbox on sahab (delivered into its Maildir
by sahab's own mail system), companies at their own address through the smart host."""

import datetime as dt

from sahab.procurement import services
from tests import notices
from tests.procurement.bidding import submit_bid
from tests.procurement.conftest import PDF


def _subjects(user) -> list[str]:
    return [str(m["Subject"]) for m in notices.inbox(user)]


def test_a_complaint_and_its_rulings_reach_each_party(world, published_tender, commits,
                                                       settings):
    body, buyer = world["auditor"].user, world["officer"].user
    company = world["companies"][0][1].user
    notices.give_mailboxes(body, buyer)
    reference = published_tender.reference
    with notices.SmartHost(settings) as smart_host:
        complaint = commits(services.file_complaint, actor=company, tender=published_tender,
                            text="Le cahier des charges favorise une marque.")
        [waiting] = notices.inbox(body)
        assert "waits for your ruling" in waiting["Subject"] and reference in waiting["Subject"]
        assert f"/tenders/{reference}/" in waiting.get_content()
        assert _subjects(buyer) == [f"Complaint filed against {reference}"]
        commits(services.rule_admissibility, actor=body, complaint=complaint, admissible=True,
                reason="Recours motivé, déposé dans le délai.")
        commits(services.decide_complaint, actor=body, complaint=complaint, upheld=False,
                decision="Les spécifications sont justifiées par le besoin.")
        smart_host.relay()
    number = f"Complaint no. {complaint.pk} on {reference}"
    assert sorted(smart_host.subjects_to(company)) == [f"{number}: admitted",
                                                      f"{number}: rejected"]
    assert sorted(_subjects(buyer)[1:]) == [f"{number}: admitted", f"{number}: rejected"]
    assert len(notices.inbox(body)) == 1  # the body is not told its own rulings


def test_an_amendment_reaches_the_companies_that_bid(world, published_tender, commits,
                                                     settings):
    tender = published_tender
    deadline = tender.submission_deadline
    bidder, other = (world["companies"][i][1].user for i in (0, 1))
    submit_bid(bidder, tender, {"1": "100000"}, now=deadline - dt.timedelta(days=12))
    with notices.SmartHost(settings) as smart_host:
        amendment = commits(services.amend_tender, actor=world["officer"].user, tender=tender,
                            rationale="Quantités du lot 1 revues.",
                            documents=[("cahier-des-charges.pdf", PDF)],
                            submission_deadline=deadline + dt.timedelta(days=5),
                            now=deadline - dt.timedelta(days=10))
        [(to, message)] = smart_host.relay()
    assert to == [bidder.email] and other.email not in to
    assert message["Subject"] == f"{tender.reference} is amended (amendment no. " \
        f"{amendment.number})"
    assert "Quantités du lot 1 revues." in message.get_content()
