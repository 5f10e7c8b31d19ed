"""Bidders confirm or replace their bid after an amendment (docs/procurement.md,
"Amendments").

An amendment that changes what a bid answers (the documents or the compliance criteria)
puts every sealed bid made before it to confirm, as a change of the tender's conditions
does in ProZorro: the company confirms it (``procurement.bid.confirmed``, naming the
amendment), replaces it or withdraws it before the deadline; a bid still to confirm at the
opening stays sealed and is named in the opening report, and ``verify-opening`` checks
both ways from the public ledger alone."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test import Client
from django.utils import translation

from sahab.core import waiting
from sahab.core.errors import Conflict, NotFound, PermissionDenied
from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from sahab.procurement import official, sealing, services
from sahab.procurement.models import Bid, Notice, Step, Tender
from sahab.procurement.verify import OpeningFailure, verify_opening
from tests import notices
from tests.procurement.bidding import opening_report, run_timers_at, submit_bid, withdraw_bid
from tests.procurement.conftest import PDF

DAY = dt.timedelta(days=1)
SECOND = dt.timedelta(seconds=1)
SPECS = "cahier-des-charges.pdf"


def officer(world):
    return world["officer"].user


def company(world, i: int):
    return world["companies"][i][1].user


def amend_documents(world, tender: Tender, at: dt.datetime, **kwargs):
    return services.amend_tender(actor=officer(world), tender=tender,
                                 rationale="Quantités du lot 1 revues.",
                                 documents=[(SPECS, PDF)], now=at, **kwargs)


def bid_entries(tender: Tender, type_: str) -> list[dict]:
    return [json.loads(bytes(e.body))["data"] for e in Entry.objects.filter(
        type=f"procurement.{type_}", subject=f"sealed-bids:{tender.bid_tag}").order_by("index")]


def open_at(tender: Tender) -> Tender:
    """Run the worker past the tender's (current) deadline and checkpoint the log."""
    tender.refresh_from_db()
    run_timers_at(tender.submission_deadline + SECOND)
    ledger.checkpoint_if_grown()
    tender.refresh_from_db()
    return tender


def status(bid: Bid) -> str:
    return Bid.objects.get(pk=bid.pk).status


# --- the amendment asks, the company is told ----------------------------------------------

def test_an_amendment_of_the_documents_puts_earlier_bids_to_confirm_and_tells_them(
        world, published_tender, commits):
    tender = published_tender
    deadline = tender.submission_deadline
    atlas, carthage, medina = (company(world, i) for i in range(3))
    a = submit_bid(atlas, tender, {"1": "100000"}, now=deadline - 14 * DAY)
    c = submit_bid(carthage, tender, {"1": "105000"}, now=deadline - 14 * DAY)
    withdraw_bid(carthage, c, now=deadline - 13 * DAY)
    amendment = commits(amend_documents, world, tender, deadline - 12 * DAY,
                        submission_deadline=deadline + 3 * DAY)
    m = submit_bid(medina, tender, {"1": "99000"}, now=deadline - 11 * DAY)
    assert Bid.objects.get(pk=a.pk).confirm_amendment == amendment.number == 1
    assert Bid.objects.get(pk=c.pk).confirm_amendment is None  # withdrawn before it
    assert Bid.objects.get(pk=m.pk).confirm_amendment is None  # sealed after it
    due = f"{deadline + 3 * DAY:%Y-%m-%d %H:%M} UTC"
    [notice] = Notice.objects.filter(company=world["companies"][0][0], tender=tender)
    assert f"You must confirm or replace your sealed bid by {due}" in notice.text
    assert "amendment no. 1 is not opened" in notice.text
    [(_, message)] = [(t, m) for t, m in notices.sent() if t == atlas.email]
    assert f"you must confirm or replace your sealed bid by {due}" in message.get_content()
    # the company finds it on its account page until it answers
    [item] = waiting.for_user(atlas)
    assert item.label == (f"Confirm or replace your bid on {tender.reference} after "
                          f"amendment no. 1, by {due}")
    assert item.url == f"/tenders/{tender.reference}/"
    assert waiting.for_user(carthage) == [] and waiting.for_user(medina) == []


def test_a_change_of_the_compliance_criteria_also_asks_for_confirmation(world,
                                                                       published_tender):
    tender = published_tender
    deadline = tender.submission_deadline
    a = submit_bid(company(world, 0), tender, {"1": "100000"}, now=deadline - 14 * DAY)
    services.amend_tender(actor=officer(world), tender=tender, rationale="ISO exigée.",
                          compliance_criteria=[*tender.compliance_criteria, "ISO 27001"],
                          now=deadline - 12 * DAY)
    assert Bid.objects.get(pk=a.pk).confirm_amendment == 1


def test_a_deadline_only_amendment_asks_nothing_and_the_bid_is_opened(world,
                                                                     published_tender,
                                                                     commits):
    tender = published_tender
    deadline = tender.submission_deadline
    atlas = company(world, 0)
    a = submit_bid(atlas, tender, {"1": "100000"}, now=deadline - 14 * DAY)
    commits(services.amend_tender, actor=officer(world), tender=tender,
            rationale="Report.", submission_deadline=deadline + 5 * DAY,
            now=deadline - 12 * DAY)
    assert Bid.objects.get(pk=a.pk).confirm_amendment is None
    [notice] = Notice.objects.filter(company=world["companies"][0][0], tender=tender)
    assert "stays valid" in notice.text and "confirm" not in notice.text
    assert waiting.for_user(atlas) == []
    with pytest.raises(Conflict, match="asks to confirm"):
        services.confirm_bid(actor=atlas, bid=a, now=deadline - 11 * DAY)
    tender = open_at(tender)
    assert status(a) == Bid.Status.OPENED and opening_report(tender)["unconfirmed"] == []


# --- confirm, replace, or be left unopened ------------------------------------------------

def test_confirming_is_one_ledger_entry_hidden_until_the_opening_and_the_bid_opens(
        world, published_tender):
    tender = published_tender
    deadline = tender.submission_deadline
    atlas = company(world, 0)
    a = submit_bid(atlas, tender, {"1": "100000"}, now=deadline - 14 * DAY)
    amend_documents(world, tender, deadline - 12 * DAY)
    before = Entry.objects.count()
    confirmed = services.confirm_bid(actor=atlas, bid=a, now=deadline - 11 * DAY)
    assert confirmed.confirm_amendment is None and confirmed.status == Bid.Status.SUBMITTED
    assert Entry.objects.count() == before + 1
    assert bid_entries(tender, "bid.confirmed") == [{"commitment": a.commitment,
                                                     "amendment": 1}]
    entry = Entry.objects.get(type="procurement.bid.confirmed")
    assert entry.actor == "system"  # who confirmed is as secret as who bid
    # the bid stays sealed and the step is not public before the opening
    assert not Step.objects.filter(tender=tender, type="bid.confirmed").exists()
    assert "bid.confirmed" not in Client().get("/api/procurement/changes").content.decode()
    assert waiting.for_user(atlas) == []
    with pytest.raises(Conflict, match="asks to confirm"):  # once is enough
        services.confirm_bid(actor=atlas, bid=a, now=deadline - 10 * DAY)
    tender = open_at(tender)
    assert status(a) == Bid.Status.OPENED
    assert Step.objects.get(tender=tender, type="bid.confirmed").ledger_index == entry.index
    report = opening_report(tender)
    assert [b["commitment"] for b in report["bids"]] == [a.commitment]
    assert report["unconfirmed"] == []


def test_replacing_the_bid_answers_the_amendment(world, published_tender):
    tender = published_tender
    deadline = tender.submission_deadline
    atlas = company(world, 0)
    a = submit_bid(atlas, tender, {"1": "100000"}, now=deadline - 14 * DAY)
    amend_documents(world, tender, deadline - 12 * DAY)
    new = submit_bid(atlas, tender, {"1": "97000"}, now=deadline - 11 * DAY)
    assert status(a) == Bid.Status.REPLACED and new.confirm_amendment is None
    assert waiting.for_user(atlas) == []
    tender = open_at(tender)
    assert status(new) == Bid.Status.OPENED
    assert tender.bids.get(status=Bid.Status.OPENED).lot_prices.get().price == 97000


def test_an_unconfirmed_bid_is_not_opened_and_is_named_in_the_opening_report(
        world, published_tender):
    """Atlas confirmed the first amendment but not the second; Carthage confirmed the
    second; Medina withdrew. Only Carthage's bid is opened."""
    tender = published_tender
    deadline = tender.submission_deadline
    atlas, carthage, medina = (company(world, i) for i in range(3))
    a = submit_bid(atlas, tender, {"1": "100000"}, now=deadline - 15 * DAY)
    c = submit_bid(carthage, tender, {"1": "101000"}, now=deadline - 15 * DAY)
    m = submit_bid(medina, tender, {"1": "102000"}, now=deadline - 15 * DAY)
    amend_documents(world, tender, deadline - 14 * DAY)
    services.confirm_bid(actor=atlas, bid=a, now=deadline - 13 * DAY)
    services.amend_tender(actor=officer(world), tender=tender, rationale="Critère ajouté.",
                          compliance_criteria=[*tender.compliance_criteria, "ISO 9001"],
                          now=deadline - 12 * DAY)
    assert Bid.objects.get(pk=a.pk).confirm_amendment == 2
    services.confirm_bid(actor=carthage, bid=c, now=deadline - 11 * DAY)
    withdraw_bid(medina, m, now=deadline - 11 * DAY)
    tender = open_at(tender)
    assert tender.state == "evaluation"
    assert (status(a), status(c), status(m)) == (Bid.Status.UNCONFIRMED, Bid.Status.OPENED,
                                                 Bid.Status.WITHDRAWN)
    assert Bid.objects.get(pk=a.pk).problem == "not confirmed after amendment no. 2"
    assert not Bid.objects.get(pk=a.pk).lot_prices.exists()  # it stays sealed
    report = opening_report(tender)
    assert report["unconfirmed"] == [{
        "commitment": a.commitment, "ledger_index": Bid.objects.get(pk=a.pk).ledger_index,
        "amendment": 2,
        "company": "Atlas", "company_id": world["companies"][0][0].pk,
        "problem": "not confirmed after amendment no. 2"}]
    assert [b["company"] for b in report["bids"]] == ["Carthage"]
    assert report["missing"] == [] and report["rejected"] == []
    opened = json.loads(bytes(Entry.objects.get(type="procurement.tender.opened").body))
    assert opened["data"]["counts"] == {"commitments": 2, "opened": 1, "rejected": 0,
                                        "missing": 0, "unconfirmed": 1}
    # the signed opening record (procès-verbal) names it with its reason
    step = Step.objects.get(tender=tender, type="tender.opened")
    with translation.override("fr"):
        record = render_to_string("procurement/official/opening_report.html", {
            "tender": tender, "step": step,
            **official.BUILDERS[official.Kind.OPENING_REPORT](tender, step, opened)})
    assert "Offres non confirmées après un rectificatif" in record
    assert "<td>Atlas</td><td>Non confirmée après le rectificatif n° 2 : non ouverte." in record


def test_a_tender_whose_only_bid_is_unconfirmed_is_unsuccessful(world, published_tender):
    tender = published_tender
    deadline = tender.submission_deadline
    a = submit_bid(company(world, 0), tender, {"1": "100000"}, now=deadline - 14 * DAY)
    amend_documents(world, tender, deadline - 12 * DAY)
    tender = open_at(tender)
    assert tender.state == "unsuccessful" and status(a) == Bid.Status.UNCONFIRMED


# --- rights --------------------------------------------------------------------------------

def test_only_the_bidding_company_confirms_a_bid_to_confirm_before_the_deadline(
        world, published_tender):
    tender = published_tender
    deadline = tender.submission_deadline
    atlas, carthage = company(world, 0), company(world, 1)
    a = submit_bid(atlas, tender, {"1": "100000"}, now=deadline - 14 * DAY)
    c = submit_bid(carthage, tender, {"1": "101000"}, now=deadline - 14 * DAY)
    amend_documents(world, tender, deadline - 12 * DAY)
    withdraw_bid(carthage, c, now=deadline - 11 * DAY)
    before = Entry.objects.count()
    at = deadline - 10 * DAY
    with pytest.raises(NotFound):  # another company does not even learn it exists
        services.confirm_bid(actor=carthage, bid=a, now=at)
    for agent in (officer(world), world["evaluators"][0].user, world["auditor"].user):
        with pytest.raises(PermissionDenied):
            services.confirm_bid(actor=agent, bid=a, now=at)
    with pytest.raises(Conflict, match="asks to confirm"):  # a withdrawn bid
        services.confirm_bid(actor=carthage, bid=c, now=at)
    with pytest.raises(Conflict, match="too late to confirm"):
        services.confirm_bid(actor=atlas, bid=a, now=deadline)
    assert Entry.objects.count() == before
    assert Bid.objects.get(pk=a.pk).confirm_amendment == 1
    # once the deadline passed, the account page stops asking
    tender = open_at(tender)
    assert waiting.for_user(atlas) == []
    with pytest.raises(Conflict, match="too late to confirm"):
        services.confirm_bid(actor=atlas, bid=a)


# --- the public check of the opening -----------------------------------------------------

@pytest.fixture
def amended_bids(world, published_tender):
    """Atlas's bid is never confirmed after the amendment; Carthage's is."""
    tender = published_tender
    deadline = tender.submission_deadline
    a = submit_bid(company(world, 0), tender, {"1": "100000"}, now=deadline - 14 * DAY)
    c = submit_bid(company(world, 1), tender, {"1": "101000"}, now=deadline - 14 * DAY)
    amend_documents(world, tender, deadline - 12 * DAY)
    services.confirm_bid(actor=company(world, 1), bid=c, now=deadline - 11 * DAY)
    return tender, a, c


def verify(tender: Tender, client):
    return verify_opening("http://testserver", tender.reference, ledger.verifier_key(),
                          client=client)


def test_verify_opening_accounts_for_an_unconfirmed_bid_whatever_the_database_says(
        world, amended_bids, wsgi_http):
    tender, a, c = amended_bids
    # a database writer marks Atlas's bid as confirmed and gives it to Medina: the opening
    # follows the ledger and the envelope
    Bid.objects.filter(pk=a.pk).update(confirm_amendment=None,
                                       company=world["companies"][2][0])
    tender = open_at(tender)
    assert (status(a), status(c)) == (Bid.Status.UNCONFIRMED, Bid.Status.OPENED)
    [line] = opening_report(tender)["unconfirmed"]
    assert (line["company"], line["amendment"]) == ("Atlas", 1)
    result = verify(tender, wsgi_http)
    assert result.opened == [c.commitment] and result.unconfirmed == [a.commitment]
    assert not result.rejected and not result.missing


def test_verify_opening_reports_an_unconfirmed_bid_that_was_opened(amended_bids, wsgi_http,
                                                                   monkeypatch):
    tender, a, c = amended_bids
    # an operator runs an altered opening that ignores the confirmations
    with monkeypatch.context() as altered:
        altered.setattr(sealing, "unconfirmed_commitments", lambda *args, **kwargs: {})
        tender = open_at(tender)
    assert status(a) == Bid.Status.OPENED
    with pytest.raises(OpeningFailure, match="opened although not confirmed") as failure:
        verify(tender, wsgi_http)
    assert a.commitment in str(failure.value) and c.commitment not in str(failure.value)


def test_verify_opening_reports_a_confirmed_bid_left_out(amended_bids, wsgi_http,
                                                         monkeypatch):
    tender, a, c = amended_bids
    # an altered opening that leaves out every bid, the confirmed one included
    with monkeypatch.context() as altered:
        altered.setattr(sealing, "unconfirmed_commitments",
                        lambda live, *args, **kwargs: dict.fromkeys(live, 1))
        tender = open_at(tender)
    assert status(c) == Bid.Status.UNCONFIRMED
    with pytest.raises(OpeningFailure, match="ledger shows confirmed") as failure:
        verify(tender, wsgi_http)
    assert c.commitment in str(failure.value) and a.commitment not in str(failure.value)


# --- through the API and the web page ----------------------------------------------------

def test_confirming_through_the_api(world, published_tender):
    tender = published_tender
    atlas, carthage = world["companies"][0][1], world["companies"][1][1]
    a = submit_bid(atlas.user, tender, {"1": "100000"})
    amend_documents(world, tender, None)
    [mine] = atlas.call("get", "/bids").json()
    assert (mine["bid"], mine["confirm_amendment"]) == (a.pk, 1)
    assert carthage.call("post", f"/bids/{a.pk}/confirmation").status_code == 404
    assert world["officer"].call("post", f"/bids/{a.pk}/confirmation").status_code == 404
    done = atlas.call("post", f"/bids/{a.pk}/confirmation")
    assert done.status_code == 200, done.content
    assert (done.json()["status"], done.json()["confirm_amendment"]) == ("submitted", None)
    again = atlas.call("post", f"/bids/{a.pk}/confirmation")
    assert again.status_code == 409 and "asks to confirm" in again.json()["detail"]
    assert len(bid_entries(tender, "bid.confirmed")) == 1


def test_confirming_through_the_web_page(world, published_tender):
    tender = published_tender
    ref = tender.reference
    atlas, carthage = company(world, 0), company(world, 1)
    a = submit_bid(atlas, tender, {"1": "100000"})
    submit_bid(carthage, tender, {"1": "101000"})
    amend_documents(world, tender, None)
    browser = Client()
    browser.force_login(atlas)
    page = browser.get(f"/tenders/{ref}/").content.decode()
    assert f'action="/tenders/{ref}/confirm_bid/"' in page and "Confirm my bid" in page
    # another company posting Atlas's bid changes nothing
    other = Client()
    other.force_login(carthage)
    refused = other.post(f"/tenders/{ref}/confirm_bid/", {"bid": a.pk}, follow=True)
    assert [str(m) for m in refused.context["messages"]] == ["No such bid."]
    assert Bid.objects.get(pk=a.pk).confirm_amendment == 1
    answer = browser.post(f"/tenders/{ref}/confirm_bid/", {"bid": a.pk}, follow=True)
    assert [str(m) for m in answer.context["messages"]] == [
        "Done: the step is recorded in the public ledger."]
    assert Bid.objects.get(pk=a.pk).confirm_amendment is None
    assert bid_entries(tender, "bid.confirmed") == [{"commitment": a.commitment,
                                                     "amendment": 1}]
    assert "confirm_bid" not in browser.get(f"/tenders/{ref}/").content.decode()


# --- raced against the opening ------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_confirmation_in_flight_at_the_deadline_is_refused_or_the_bid_is_opened(
        world, published_tender):
    """The confirmation stops inside its transaction while the worker closes and opens:
    either it is refused and the bid stays unopened, or it counts and the bid opens —
    never confirmed on the ledger and left out."""
    from tests.procurement.test_races import race_the_opening

    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time: nothing to race")
    tender = published_tender
    deadline = tender.submission_deadline
    atlas = company(world, 0)
    a = submit_bid(atlas, tender, {"1": "100000"}, now=deadline - 14 * DAY)
    amend_documents(world, tender, deadline - 12 * DAY)
    outcome = race_the_opening(
        tender, lambda: services.confirm_bid(actor=atlas, bid=a, now=deadline - SECOND),
        "bid.confirmed")
    report = opening_report(Tender.objects.get(pk=tender.pk))
    if "refused" in outcome:
        assert status(a) == Bid.Status.UNCONFIRMED and not bid_entries(tender, "bid.confirmed")
        assert [u["commitment"] for u in report["unconfirmed"]] == [a.commitment]
    else:
        assert status(a) == Bid.Status.OPENED, "a confirmed bid was left out"
        assert [b["commitment"] for b in report["bids"]] == [a.commitment]


# --- what an insider could do with the rows (review findings) -------------------------------

def test_an_amendment_recorded_before_confirmations_existed_asks_nothing_after_the_fact(
        world, published_tender, wsgi_http):
    """Replays the finding: amendments of documents recorded before bids were confirmed
    told bidders their bid stayed valid. Read with today's rule, the opening left those
    bids sealed and verify-opening failed every such past opening. An amendment entry
    asks for confirmation only when it says so."""
    tender = published_tender
    deadline = tender.submission_deadline
    bid = submit_bid(company(world, 0), tender, {"1": "100000"}, now=deadline - 14 * DAY)
    # the entry as amendments were recorded until then: documents, no bids_to_confirm
    ledger.append(type="procurement.tender.amended", subject=f"tender:{tender.reference}",
                  actor="user:1", data={"amendment": 1, "rationale": "Précision.",
                                        "documents": [{"name": SPECS, "version": 2,
                                                       "sha256": "0" * 64, "size": 1}]})
    with pytest.raises(Conflict):  # nothing to confirm
        services.confirm_bid(actor=company(world, 0), bid=bid, now=deadline - 13 * DAY)
    open_at(tender)
    assert status(bid) == Bid.Status.OPENED
    verify(tender, wsgi_http)  # the public check passes: nothing was left out


def test_a_confirmation_names_the_amendment_on_the_ledger_whatever_the_bids_row_says(
        world, published_tender):
    """Replays the finding: a database writer set the bid's row to an older amendment;
    the company confirmed, the confirmation named that stale number, and the bid was left
    out at the opening although its company had confirmed. The number now comes from the
    proven ledger; a row cleared by hand does not stop the company confirming either."""
    tender = published_tender
    deadline = tender.submission_deadline
    bid = submit_bid(company(world, 0), tender, {"1": "100000"}, now=deadline - 14 * DAY)
    amend_documents(world, tender, deadline - 13 * DAY)
    amend_documents(world, tender, deadline - 12 * DAY)
    Bid.objects.filter(pk=bid.pk).update(confirm_amendment=1)  # the writer's change
    services.confirm_bid(actor=company(world, 0), bid=bid, now=deadline - 11 * DAY)
    assert bid_entries(tender, "bid.confirmed")[-1]["amendment"] == 2
    other = submit_bid(company(world, 1), tender, {"1": "90000"}, now=deadline - 11 * DAY)
    amend_documents(world, tender, deadline - 10 * DAY)
    Bid.objects.filter(pk=other.pk).update(confirm_amendment=None)  # hidden by the writer
    services.confirm_bid(actor=company(world, 1), bid=other, now=deadline - 9 * DAY)
    assert bid_entries(tender, "bid.confirmed")[-1]["amendment"] == 3
    with pytest.raises(Conflict):  # confirmed already: nothing left to confirm
        services.confirm_bid(actor=company(world, 1), bid=other, now=deadline - 8 * DAY)
