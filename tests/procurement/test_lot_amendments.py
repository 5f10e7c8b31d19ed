"""Amendments of a published tender's lots (docs/procurement.md, "Amendments"): a lot's
title, CPV code or estimated value is changed, or a lot is added, by an amendment with
its rationale — on the ledger before and after, in the API and in OCDS, bidders told.
A lot is never withdrawn by being left out of an amendment: only by its cancellation,
with its reasons. Before, lots could not be amended at all: the tender had to be
cancelled and published again."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.test import Client

from sahab.core.errors import InvalidInput
from sahab.ledger import services as ledger
from sahab.procurement import ocds, services
from sahab.procurement.models import Lot, Release, TenderAmendment
from tests.procurement.bidding import run_timers_at, submit_bid

DAY = dt.timedelta(days=1)


def _lots(tender) -> list[dict]:
    return [{"number": lot.number, "title": lot.title, "cpv": lot.cpv,
             "estimated_value": str(lot.estimated_value)} for lot in tender.lots.all()]


def test_a_lot_is_changed_and_another_added_on_the_ledger_and_in_ocds(world,
                                                                     published_tender):
    tender = published_tender
    lots = _lots(tender)
    lots[1] |= {"title": "Stockage objet", "estimated_value": "150000"}
    lots.append({"title": "Sauvegarde", "cpv": "48710000-8", "estimated_value": "40000",
                 "items": [{"description": "Licence", "quantity": "10", "unit": "unité"}]})
    amendment = services.amend_tender(actor=world["officer"].user, tender=tender,
                                      rationale="Lot 2 revu, sauvegarde ajoutée.", lots=lots)
    assert list(tender.lots.values_list("number", "title", "estimated_value")) == [
        (1, "Serveurs", Decimal("300000")), (2, "Stockage objet", Decimal("150000")),
        (3, "Sauvegarde", Decimal("40000"))]
    [item] = Lot.objects.get(tender=tender, number=3).items.all()
    assert item.cpv == "48710000-8" and item.quantity == 10
    assert [(c["number"], c["old"] and c["old"]["title"], c["new"]["title"])
            for c in amendment.lots] == [(2, "Stockage", "Stockage objet"),
                                         (3, None, "Sauvegarde")]
    data = json.loads(bytes(ledger.get_entry(amendment.ledger_index).body))["data"]
    assert data["lots"][0]["old"]["estimated_value"] == "120000.500"
    assert data["lots"][0]["new"]["estimated_value"] == "150000.000"
    release = Release.objects.get(ledger_index=amendment.ledger_index)
    assert [lot["title"] for lot in release.data["tender"]["lots"]] == [
        "Serveurs", "Stockage objet", "Sauvegarde"]
    [shown] = release.data["tender"]["amendments"]
    assert "lot 2 modifié : Stockage" in shown["description"]
    assert "lot 3 ajouté : Sauvegarde" in shown["description"]
    assert ocds.compile_record(ocds.releases_of(ocds.ocid(tender)))["compiledRelease"][
        "tender"]["lots"][2]["title"] == "Sauvegarde"


def test_a_new_lot_takes_bids_and_opens_with_the_others(world, published_tender):
    tender = published_tender
    deadline = tender.submission_deadline
    amended_at = deadline - 15 * DAY
    deadline = amended_at + 21 * DAY  # a lot added gets the whole period of an open tender
    services.amend_tender(actor=world["officer"].user, tender=tender, rationale="Lot 3.",
                          lots=[*_lots(tender), {"title": "Sauvegarde", "cpv": "48710000-8",
                                                 "estimated_value": "40000"}],
                          submission_deadline=deadline, now=amended_at)
    submit_bid(world["companies"][0][1].user, tender, {"1": "100000", "3": "35000"},
               now=deadline - 2 * DAY)
    run_timers_at(deadline + dt.timedelta(seconds=1))
    tender.refresh_from_db()
    assert tender.state == "evaluation"
    assert sorted(tender.bids.get().lot_prices.values_list("lot__number", flat=True)) == [1, 3]


def test_a_lot_left_out_of_an_amendment_is_refused_and_nothing_is_written(world,
                                                                         published_tender):
    """Replays the gap: without a rule, leaving a lot out would withdraw it silently, with
    no reasons and no cancellation step."""
    tender = published_tender
    before = (TenderAmendment.objects.count(), list(tender.lots.values_list("title")))
    for lots, words in (
            (_lots(tender)[:1], "lot 2 left out"),
            ([*_lots(tender), {"number": 9, "title": "X", "cpv": "48820000-2",
                               "estimated_value": "1"}], "no lot numbered 9"),
            ([_lots(tender)[0], _lots(tender)[0], _lots(tender)[1]], "given twice")):
        with pytest.raises(InvalidInput) as refused:
            services.amend_tender(actor=world["officer"].user, tender=tender,
                                  rationale="Retrait.", lots=lots)
        assert words in str(refused.value.detail)
    assert (TenderAmendment.objects.count(), list(tender.lots.values_list("title"))) == before


def test_the_same_lots_again_amend_nothing(world, published_tender):
    with pytest.raises(InvalidInput):
        services.amend_tender(actor=world["officer"].user, tender=published_tender,
                              rationale="Rien.", lots=_lots(published_tender))


def test_lots_are_amended_through_the_api(world, published_tender):
    ref = published_tender.reference
    lots = _lots(published_tender)
    lots[0]["estimated_value"] = "280000"
    made = world["officer"].call("post", f"/tenders/{ref}/amendments",
                                 {"rationale": "Lot 1 réestimé.", "lots": lots})
    assert made.status_code == 201, made.content
    [change] = made.json()["lots"]
    assert change["number"] == 1 and change["new"]["estimated_value"] == "280000.000"
    dropped = world["officer"].call("post", f"/tenders/{ref}/amendments",
                                    {"rationale": "Retrait.", "lots": lots[:1]})
    assert dropped.status_code == 422
    assert dropped["Content-Type"] == "application/problem+json"
    public = Client().get(f"/api/procurement/tenders/{ref}/amendments").json()
    assert public[0]["lots"][0]["old"]["estimated_value"] == "300000.000"


def test_lots_are_amended_on_the_tender_page(world, published_tender):
    ref = published_tender.reference
    browser = Client()
    browser.force_login(world["officer"].user)
    page = browser.get(f"/tenders/{ref}/").content.decode()
    assert 'name="amendment-lot2_value"' in page and 'value="120000.500"' in page
    answer = browser.post(f"/tenders/{ref}/amend_tender/", {
        "amendment-rationale": "Lot 2 réestimé, lot 3 ajouté.",
        "amendment-lot2_value": "125000", "amendment-new_lot_title": "Sauvegarde",
        "amendment-new_lot_cpv": "48710000-8", "amendment-new_lot_value": "40000"},
        follow=True)
    assert [str(m) for m in answer.context["messages"]] == [
        "Done: the step is recorded in the public ledger."]
    amendment = TenderAmendment.objects.get(tender=published_tender)
    assert [(c["number"], c["new"]["estimated_value"]) for c in amendment.lots] == [
        (2, "125000.000"), (3, "40000.000")]
    # the lots' fields sent as shown (nothing changed) amend nothing
    unchanged = browser.post(f"/tenders/{ref}/amend_tender/", {
        "amendment-rationale": "Rien.", "amendment-lot1_title": "Serveurs"}, follow=True)
    assert TenderAmendment.objects.count() == 1
    assert "Done" not in str(next(iter(unchanged.context["messages"])))


def test_a_bid_sealed_before_its_lots_changed_must_be_confirmed(world, published_tender):
    """Lots changed are a change of the conditions: a bid sealed before answers other
    terms, and is opened only once its company confirms it."""
    from sahab.procurement.models import Bid

    tender = published_tender
    deadline = tender.submission_deadline
    bid = submit_bid(world["companies"][0][1].user, tender, {"1": "100000"},
                     now=deadline - 15 * DAY)
    lots = _lots(tender)
    lots[0]["estimated_value"] = "250000"
    services.amend_tender(actor=world["officer"].user, tender=tender, rationale="Lot 1.",
                          lots=lots, now=deadline - 14 * DAY)
    bid.refresh_from_db()
    assert bid.confirm_amendment == 1
    run_timers_at(deadline + dt.timedelta(seconds=1))
    bid.refresh_from_db()
    assert bid.status == Bid.Status.UNCONFIRMED


# --- what a buyer could do with lots (review findings) ---------------------------------------

def test_amended_lots_keep_the_tenders_value_and_a_simplified_procedure_under_its_threshold(
        world):
    """Replays the finding: a simplified procedure of 150,000 TND amended to lots of
    18 million escaped the threshold that creating it enforces, and the tender's value (in
    the portal's figures, its search and OCDS) stayed 150,000."""
    from sahab.procurement.models import Tender
    from tests.procurement.conftest import publish, tender_payload

    officer = world["officer"]
    ref = officer.call("post", "/tenders", tender_payload(procedure="simplified", lots=[
        {"title": "Serveurs", "cpv": "48820000-2", "estimated_value": "150000"}])).json()[
        "reference"]
    publish(officer, ref)
    tender = Tender.objects.get(reference=ref)
    lots = _lots(tender)
    lots[0]["estimated_value"] = "9000000"
    with pytest.raises(InvalidInput) as refused:
        services.amend_tender(actor=officer.user, tender=tender, rationale="Plus.",
                              lots=[*lots, {"title": "Stockage", "cpv": "30233000-1",
                                            "estimated_value": "9000000"}])
    assert refused.value.code == "simplified_over_threshold"
    tender.refresh_from_db()
    assert tender.estimated_value == Decimal("150000")
    lots[0]["estimated_value"] = "180000"
    services.amend_tender(actor=officer.user, tender=tender, rationale="Réestimé.",
                          lots=lots)
    tender.refresh_from_db()
    assert tender.estimated_value == Decimal("180000")


def test_a_lot_added_gets_the_procedures_whole_tendering_period(world, published_tender):
    """Replays the finding: a lot added ten days before the deadline (the minimum after an
    amendment) gave a favoured supplier, told in advance, a lot that others had ten days
    to price instead of the open procedure's twenty-one."""
    tender = published_tender
    deadline = tender.submission_deadline
    new_lot = {"title": "Sauvegarde", "cpv": "48710000-8", "estimated_value": "900000"}
    with pytest.raises(InvalidInput) as refused:
        services.amend_tender(actor=world["officer"].user, tender=tender,
                              rationale="Lot ajouté.", lots=[*_lots(tender), new_lot],
                              now=deadline - 10 * DAY)
    assert "21 days" in str(refused.value.detail)
    assert tender.lots.count() == 2
    services.amend_tender(actor=world["officer"].user, tender=tender, rationale="Lot ajouté.",
                          lots=[*_lots(tender), new_lot], now=deadline - 10 * DAY,
                          submission_deadline=deadline + 11 * DAY)
    assert tender.lots.count() == 3


def test_no_lot_is_added_to_a_restricted_procedure_once_applications_have_closed(world):
    from sahab.core.errors import Conflict
    from sahab.procurement.models import Tender
    from tests.procurement.conftest import publish, tender_payload

    officer = world["officer"]
    ref = officer.call("post", "/tenders", tender_payload(procedure="restricted")).json()[
        "reference"]
    publish(officer, ref)
    tender = Tender.objects.get(reference=ref)
    after_enquiries = tender.enquiry_deadline + DAY
    run_timers_at(after_enquiries)
    tender.refresh_from_db()
    assert tender.state == "tendering"
    with pytest.raises(Conflict):
        services.amend_tender(actor=officer.user, tender=tender, rationale="Lot ajouté.",
                              lots=[*_lots(tender), {"title": "Sauvegarde",
                                                     "cpv": "48710000-8",
                                                     "estimated_value": "40000"}],
                              submission_deadline=after_enquiries + 22 * DAY,
                              now=after_enquiries)
