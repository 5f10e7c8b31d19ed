"""A whole open tender through the JSON API, from draft to payment, on the ledger."""

import base64
import datetime as dt

import time_machine
from django.utils import timezone

from sahab.ledger import merkle
from sahab.ledger import services as ledger
from sahab.ledger.auditor import Auditor, verify_proof_file
from sahab.procurement import services
from sahab.procurement.models import Bid, Step
from tests.procurement.conftest import PDF, publish, tender_payload


def test_an_open_tender_from_draft_to_payment(world, wsgi_http, tmp_path):
    officer, (ev1, ev2) = world["officer"], world["evaluators"]
    (atlas, a), (carthage, c), (medina, m) = world["companies"]
    start = timezone.now()

    with time_machine.travel(start, tick=True) as clock:
        created = officer.call("post", "/tenders", tender_payload())
        assert created.status_code == 201, created.content
        ref = created.json()["reference"]
        assert created.json()["state"] == "draft"
        doc = officer.call("post", f"/tenders/{ref}/documents",
                           {"name": "cahier-des-charges.pdf",
                            "content_base64": base64.b64encode(PDF).decode()})
        assert doc.status_code == 201 and doc.json()["version"] == 1
        assert publish(officer, ref).json()["state"] == "enquiries"

        q = a.call("post", f"/tenders/{ref}/questions", {"text": "Garantie de 3 ans ?"})
        assert q.status_code == 201
        assert officer.call("post", f"/questions/{q.json()['id']}/answer",
                            {"answer": "Oui, trois ans sur site."}).status_code == 200

        receipts = {}
        for company, actor, prices in ((atlas, a, {"1": "250000", "2": "110000"}),
                                       (carthage, c, {"1": "240000.250"}),
                                       (medina, m, {"1": "310000", "2": "99000"})):
            r = actor.bid(ref, prices, technical_offer=f"Offre {company.name}")
            assert r.status_code == 201, r.content
            receipts[company.name] = r.json()
        # Atlas withdraws, then bids again lower
        assert a.call("delete", f"/bids/{receipts['Atlas']['bid']}").json()["status"] == \
            "withdrawn"
        r = a.bid(ref, {"1": "238000", "2": "105000"})
        receipts["Atlas"] = r.json()

        # the company holds the log's promise at once; the worker's sequencer gives the
        # entry its index, which the promise's address then tells, with the receipt's
        assert receipts["Atlas"]["ledger_index"] is None
        ledger.integrate_pending()  # the worker's timer
        promised = officer.client.get(receipts["Atlas"]["promise_url"]).json()
        entry = bytes(ledger.get_entry(promised["index"]).body)
        assert promised["receipt_url"].endswith(f"/ledger/entries/{promised['index']}/receipt")
        # the receipt proves the submission offline (fetched once a checkpoint covers it)
        receipt = officer.client.get(promised["receipt_url"]).content
        verify_proof_file(receipt, entry, ledger.verifier_key())
        assert receipts["Atlas"]["commitment"].encode() in entry
        assert b"Atlas" not in entry  # the ledger does not say who bid before the opening

        # nothing about the bids is visible before the deadline
        detail = officer.call("get", f"/tenders/{ref}").json()
        assert detail["bids"] == [] and detail["state"] in ("enquiries", "tendering")

        clock.move_to(start + dt.timedelta(days=25, seconds=5))
        late = m.bid(ref, {"1": "1000"})
        assert late.status_code == 409 and "late" in late.json()["detail"]
        # the worker's timer closes at the deadline; two of the three committee members
        # release their keys (here the demo's way), and the bids open
        services.advance_tenders()

        detail = officer.call("get", f"/tenders/{ref}").json()
        assert detail["state"] == "evaluation"
        opened = {b["company"]: b["prices"] for b in detail["bids"]}
        assert opened == {"Atlas": {"1": "238000.000", "2": "105000.000"},
                          "Carthage": {"1": "240000.250"},
                          "Medina": {"1": "310000.000", "2": "99000.000"}}

        for ev in (ev1, ev2):
            assert ev.call("post", f"/tenders/{ref}/declarations",
                           {"no_conflict": True}).status_code == 201
        for bid in detail["bids"]:
            for lot in bid["prices"]:
                r = ev1.call("post", f"/tenders/{ref}/eligibility",
                             {"bid": bid["bid"], "lot": int(lot), "eligible": True})
                assert r.status_code == 200, r.content
        report = officer.call("post", f"/tenders/{ref}/evaluation").json()
        ranking = {lot["lot"]: [r["company"] for r in lot["ranking"]] for lot in report["lots"]}
        assert ranking == {1: ["Atlas", "Carthage", "Medina"], 2: ["Medina", "Atlas"]}
        # the report is the committee's proposal: the award waits for its quorum (2 of 2)
        approve = {"sha256": report["sha256"]}
        assert ev1.call("post", f"/tenders/{ref}/evaluation/approvals",
                        approve).json()["status"] == "proposed"
        assert officer.call("post", f"/tenders/{ref}/award", {}).status_code == 409
        assert ev2.call("post", f"/tenders/{ref}/evaluation/approvals",
                        approve).json()["status"] == "adopted"

        awarded = officer.call("post", f"/tenders/{ref}/award", {})
        assert awarded.status_code == 200, awarded.content
        assert awarded.json()["state"] == "standstill"
        assert {a_["lot"]: a_["supplier"] for a_ in awarded.json()["awards"]} == \
            {1: "Atlas", 2: "Medina"}

        complaint = c.call("post", f"/tenders/{ref}/complaints",
                           {"text": "Le prix d'Atlas est anormalement bas.", "lots": [1]})
        assert complaint.status_code == 201, complaint.content
        assert officer.call("get", f"/tenders/{ref}").json()["suspended"] is False
        cid = complaint.json()["id"]
        admitted = world["auditor"].call("post", f"/complaints/{cid}/admissibility",
                                         {"admissible": True, "reason": "Recours motivé."})
        assert admitted.status_code == 200 and admitted.json()["status"] == "admitted"
        assert officer.call("get", f"/tenders/{ref}").json()["suspended"] is True
        decided = world["auditor"].call("post", f"/complaints/{cid}/decision",
                                        {"upheld": False, "decision": "Prix justifié."})
        assert decided.status_code == 200 and decided.json()["status"] == "rejected"

        clock.move_to(start + dt.timedelta(days=40))
        services.advance_tenders()
        detail = officer.call("get", f"/tenders/{ref}").json()
        assert detail["state"] == "complete"

        award_id = next(a_["id"] for a_ in detail["awards"] if a_["lot"] == 1)
        contract = officer.call("post", f"/awards/{award_id}/contract",
                                {"start_date": "2027-01-01", "end_date": "2027-12-31"})
        assert contract.status_code == 201, contract.content
        cid = contract.json()["id"]
        assert contract.json()["status"] == "pending"  # until the supplier countersigns
        assert world["finance"].call("post", f"/contracts/{cid}/payments",
                                     {"milestone": "Avance", "amount": "1"}).status_code == 409
        signed = a.call("post", f"/contracts/{cid}/countersign",
                        {"terms_sha256": contract.json()["terms_sha256"]})
        assert signed.status_code == 200 and signed.json()["status"] == "active", signed.content
        amended = officer.call("post", f"/contracts/{cid}/amendments",
                               {"justification": "Extension à deux sites",
                                "new_value": "260000", "new_end_date": "2028-03-31"})
        assert amended.status_code == 201 and amended.json()["value"] == "260000.000"
        paid = world["finance"].call("post", f"/contracts/{cid}/payments",
                                     {"milestone": "Livraison", "amount": "130000"})
        assert paid.status_code == 201
        too_much = world["finance"].call("post", f"/contracts/{cid}/payments",
                                         {"milestone": "Solde", "amount": "130000.001"})
        assert too_much.status_code == 422

    steps = list(Step.objects.filter(tender__reference=ref).values_list("type", flat=True))
    for expected in ("tender.drafted", "document.added", "tender.published", "question.asked",
                     "question.answered", "bid.submitted", "bid.withdrawn",
                     "tender.tendering_closed", "tender.opened", "evaluation.declaration",
                     "evaluation.committee_named", "evaluation.eligibility", "tender.evaluated",
                     "evaluation.approved", "evaluation.adopted", "tender.awarded",
                     "tender.standstill_started", "complaint.filed", "complaint.admitted",
                     "complaint.decided",
                     "tender.standstill_ended", "contract.signed", "contract.countersigned",
                     "contract.amended",
                     "contract.payment"):
        assert expected in steps, expected
    # every step is in the ledger, and the whole ledger verifies
    ledger.checkpoint_if_grown()
    size = ledger.latest_checkpoint().size
    for index in Step.objects.filter(tender__reference=ref).values_list("ledger_index",
                                                                       flat=True):
        merkle.verify_inclusion(index, size, ledger.leaf_hash_of(index),
                                ledger.inclusion_proof(index, size), ledger.root_at(size))
    Auditor("http://testserver/ledger", ledger.verifier_key(), client=wsgi_http,
            state_path=tmp_path / "audit.json").run()
    changes = officer.client.get("/api/procurement/changes", {"limit": 1000}).json()
    listed = [i["ledger_index"] for i in changes["items"]]
    assert sorted(listed) == sorted(Step.objects.values_list("ledger_index", flat=True))
    # bid steps come with the opening that made them public, just before it
    types = [i["type"] for i in changes["items"]]
    opened = types.index("tender.opened")
    n = Step.objects.filter(type__startswith="bid.").count()
    assert n == 5 and types[opened - n:opened] == ["bid.submitted"] * 3 + [
        "bid.withdrawn", "bid.submitted"]
    assert Bid.objects.filter(status="opened").count() == 3
