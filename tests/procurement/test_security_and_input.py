"""Sealed bids stay sealed, rights hold, and bad input changes nothing."""

import base64
import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from sahab.core.errors import Conflict
from sahab.ledger.models import Entry
from sahab.procurement import client as bidder
from sahab.procurement import sealing, services
from sahab.procurement.models import Bid, BidLot, Tender
from tests import factories
from tests.procurement.bidding import opening_report
from tests.procurement.conftest import PDF, publish, tender_payload


@pytest.fixture
def published(world):
    ref = world["officer"].call("post", "/tenders", tender_payload()).json()["reference"]
    assert publish(world["officer"], ref).status_code == 200
    return Tender.objects.get(reference=ref)


def bid(world, i, tender, prices):
    return world["companies"][i][1].bid(tender.reference, prices,
                                        technical_offer="secret plan")


def test_before_the_deadline_nothing_reveals_a_bid(world, published, client, admin_client):
    assert bid(world, 0, published, {"1": "123456.789"}).status_code == 201
    stored = Bid.objects.get()
    assert b"123456.789" not in bytes(stored.envelope) and b"secret" not in bytes(stored.envelope)
    assert not BidLot.objects.exists()  # prices exist only after the opening
    everything = b"".join(bytes(e.body) for e in Entry.objects.all())
    assert b"123456" not in everything and b"secret" not in everything
    for actor in (world["officer"], world["evaluators"][0], world["auditor"],
                  world["companies"][1][1]):
        detail = actor.call("get", f"/tenders/{published.reference}").json()
        assert detail["bids"] == []
    own = world["companies"][0][1].call("get", "/bids").json()
    assert set(own[0]) == {"bid", "tender", "status", "commitment", "ledger_index",
                           "submitted_at", "confirm_amendment"}
    page = client.get(f"/tenders/{published.reference}/")
    assert b"123456" not in page.content
    assert admin_client.get("/admin/procurement/bid/").status_code == 404  # not in the admin
    # neither the public steps nor the tender's ledger entries count the bids
    steps = [s["type"] for s in client.get(f"/api/procurement/tenders/"
                                           f"{published.reference}").json()["steps"]]
    assert not [t for t in steps if t.startswith("bid.")]
    assert not Entry.objects.filter(subject=f"tender:{published.reference}",
                                    type__startswith="procurement.bid").exists()
    with pytest.raises(Conflict, match=r"whose submission deadline passed"):
        services.open_tender(tender=published)
    # a committee member cannot release their key before the deadline
    member = published.committee.first().member
    r = world["officer"].client.post(
        f"/api/procurement/tenders/{published.reference}/committee/release",
        {"private_key": base64.b64encode(b"k" * 32).decode()}, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {factories_token(member)}")
    assert r.status_code == 409 and "after the submission deadline" in r.json()["detail"]


def factories_token(user) -> str:
    from sahab.directory import services as directory
    from sahab.directory.selectors import SYSTEM

    return directory.issue_api_token(actor=SYSTEM, user=user, name="t")[1]


def test_an_altered_envelope_is_detected_at_opening(world, published):
    bid(world, 0, published, {"1": "100000"})
    bid(world, 1, published, {"1": "110000"})
    victim = Bid.objects.get(company=world["companies"][0][0])
    envelope = bytearray(bytes(victim.envelope))
    envelope[-20] ^= 0xFF
    Bid.objects.filter(pk=victim.pk).update(envelope=bytes(envelope))
    with time_machine.travel(published.submission_deadline + dt.timedelta(seconds=1)):
        services.advance_tenders()
    victim.refresh_from_db()
    assert victim.status == "tampered"
    report = opening_report(published)
    assert [r["bid"] for r in report["rejected"]] == [victim.pk]
    assert [m["commitment"] for m in report["missing"]] == [victim.commitment]
    assert Tender.objects.get(pk=published.pk).state == "evaluation"


def test_an_officer_of_another_administration_cannot_act(world, published):
    other = world["other_officer"]
    ref = published.reference
    assert other.call("post", f"/tenders/{ref}/cancel", {"reason": "x"}).status_code == 403
    assert other.call("post", f"/tenders/{ref}/documents", {
        "name": "x.pdf", "content_base64": base64.b64encode(PDF).decode()}).status_code == 403
    assert other.call("post", "/tenders", tender_payload()).status_code == 403
    assert world["companies"][0][1].call("post", "/tenders", tender_payload()).status_code == 403
    assert Tender.objects.count() == 1


def test_late_bids_are_refused_with_a_clear_error(world, published):
    with time_machine.travel(published.submission_deadline + dt.timedelta(seconds=1)):
        r = bid(world, 0, published, {"1": "100"})
    assert r.status_code == 409 and "late" in r.json()["detail"]
    assert not Bid.objects.exists()


@pytest.mark.parametrize(("prices", "why"), [
    ({"1": "-5"}, "more than 0"), ({"1": "0"}, "more than 0"),
    ({"1": "1e15"}, "less than"), ({"1": "10.0001"}, "three decimals"),
])
def test_bad_prices_are_rejected_and_named_at_the_opening(world, published, prices, why):
    """The platform cannot read prices before the opening: a sealed bad price is
    rejected there, with the reason, and the other bids open."""
    assert bid(world, 0, published, prices).status_code == 201
    assert bid(world, 1, published, {"1": "1000"}).status_code == 201
    with time_machine.travel(published.submission_deadline + dt.timedelta(seconds=1)):
        services.advance_tenders()
    bad = Bid.objects.get(company=world["companies"][0][0])
    assert bad.status == "tampered" and why in bad.problem
    report = opening_report(published)
    assert why in report["rejected"][0]["problem"]


def test_bad_envelopes_are_refused_and_change_nothing(world, published):
    (atlas, a), (carthage, _), _ = world["companies"]
    good = factories.sealed(published, a.user, {"1": "100"})
    cases = [
        (b"not an envelope", "malformed"),
        (good.replace(b"tender " + published.reference.encode(), b"tender MF-1999-0001"),
         "sealed for MF-1999-0001"),
        (good.replace(f"company {atlas.pk}\n".encode(), f"company {carthage.pk}\n".encode()),
         "names another company"),
        (good.replace(b"nonce ", b"nonce A", 1), "malformed"),
    ]
    envelope = sealing.parse(good)
    envelope.signature = bytes(64)
    cases.append((envelope.to_bytes(), "signature is refused"))
    stranger = bidder.new_signing_key()  # a key the company never registered
    cases.append((bidder.seal_bid(factories.tender_detail(published), company_id=atlas.pk,
                                  key=stranger, prices={"1": "1"}).encode(), "not registered"))
    for data, why in cases:
        r = a.call("post", f"/tenders/{published.reference}/bids",
                   {"envelope": data.decode("ascii", "replace")})
        assert r.status_code == 422 and why in r.json()["detail"], (why, r.content)
    assert not Bid.objects.exists()


def test_a_bid_reaches_only_a_tender_its_sender_may_see_and_bid_on(world, published):
    """The service reads the tender once, under its lock, and decides there: a draft is
    not found for a company, as a reference that does not exist; an agent (even the
    buyer's) is no bidder; a late bid is refused as late whatever its envelope holds."""
    (atlas, a), (carthage, c), _ = world["companies"]
    draft = world["officer"].call("post", "/tenders", tender_payload()).json()["reference"]
    envelope = factories.sealed(published, a.user, {"1": "100"}).decode()

    for reference in (draft, "MF-1999-0404"):
        r = a.call("post", f"/tenders/{reference}/bids", {"envelope": envelope})
        assert r.status_code == 404 and reference in r.json()["detail"], r.content
    r = world["officer"].call("post", f"/tenders/{published.reference}/bids",
                              {"envelope": envelope})
    assert r.status_code == 403, r.content
    # Carthage's registered key, named in an envelope of Atlas: not Atlas's key
    factories.signing_key(c.user)
    theirs = bidder.seal_bid(factories.tender_detail(published), company_id=atlas.pk,
                             key=factories._signing_keys[carthage.pk], prices={"1": "1"})
    r = a.call("post", f"/tenders/{published.reference}/bids", {"envelope": theirs})
    assert r.status_code == 422 and "not registered" in r.json()["detail"], r.content
    with time_machine.travel(published.submission_deadline + dt.timedelta(seconds=1)):
        r = a.call("post", f"/tenders/{published.reference}/bids",
                   {"envelope": "not an envelope"})
    assert r.status_code == 409 and "late" in r.json()["detail"], r.content
    assert not Bid.objects.exists()


@pytest.mark.parametrize("name", ["\x00" * 64, "Z" * 64, "ab" * 5000, "a" * 63, "A" * 64])
def test_an_envelope_naming_its_key_by_anything_but_a_fingerprint_is_refused(
        world, published, name):
    """From the review: the key line's text went, as the key's name, into the SQL of the
    tender's read, whatever it held (NUL characters, which PostgreSQL refuses in text, are
    refused earlier by the API's input check: 400). The key line must be a fingerprint,
    or nothing is read by it and the envelope is refused as malformed; a draft still
    answers 404 and a late tender 409."""
    (_atlas, a), _, _ = world["companies"]
    good = factories.sealed(published, a.user, {"1": "100"}).decode()
    fingerprint = good.split("\n")[3].removeprefix("key ")
    crafted = good.replace(f"key {fingerprint}\n", f"key {name}\n")
    draft = world["officer"].call("post", "/tenders", tender_payload()).json()["reference"]

    r = a.call("post", f"/tenders/{published.reference}/bids", {"envelope": crafted})
    assert r.status_code in (400, 422), r.content
    if "\x00" not in name:
        assert r.status_code == 422 and "fingerprint" in r.json()["detail"], r.content
    assert a.call("post", f"/tenders/{draft}/bids", {"envelope": crafted}).status_code in (
        400, 404)
    with time_machine.travel(published.submission_deadline + dt.timedelta(seconds=1)):
        r = a.call("post", f"/tenders/{published.reference}/bids", {"envelope": crafted})
    assert r.status_code in (400, 409), r.content
    assert not Bid.objects.exists()
    assert sealing.named_key(crafted.encode("utf-8")) is None


def test_an_envelope_is_parsed_only_after_the_checks_that_cost_nothing(
        world, published, monkeypatch):
    """Replayed from the review: a 37 MB envelope of 440,000 wraps cost 2.6 s of parsing
    before the answer "no such tender" (and before "too late", "not a company"). Now a
    refusal that needs no envelope parses none, and an envelope has at most 126 wraps."""
    (_atlas, a), _, _ = world["companies"]
    good = factories.sealed(published, a.user, {"1": "100"})
    parsed = []
    real_parse = sealing.parse
    monkeypatch.setattr(sealing, "parse", lambda data: parsed.append(len(data)) or
                        real_parse(data))
    body = {"envelope": good.decode()}
    assert a.call("post", "/tenders/MF-1999-0404/bids", body).status_code == 404
    assert world["officer"].call("post", f"/tenders/{published.reference}/bids",
                                 body).status_code == 403
    with time_machine.travel(published.submission_deadline + dt.timedelta(seconds=1)):
        assert a.call("post", f"/tenders/{published.reference}/bids", body).status_code == 409
    assert parsed == []

    lines = good.decode().split("\n")
    wrap = next(line for line in lines if line.startswith("wrap "))
    at = lines.index(wrap)
    many = "\n".join(lines[:at] + [wrap] * (sealing.MAX_WRAPS + 1) + lines[at + 1:])
    r = a.call("post", f"/tenders/{published.reference}/bids", {"envelope": many})
    assert r.status_code == 422 and "at most 126 wraps" in r.json()["detail"], r.content
    assert not Bid.objects.exists()


def test_a_draft_answers_a_company_as_a_missing_reference_does(world, published):
    """Replayed from the review: for a company, a draft's reference cost one query more
    than a missing one (the check of who may see the draft), and on PostgreSQL the draft
    was share-locked before that check. A draft is now left out by the read itself."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    (_atlas, a), _, _ = world["companies"]
    draft = world["officer"].call("post", "/tenders", tender_payload()).json()["reference"]
    envelope = factories.sealed(published, a.user, {"1": "100"}).decode()
    answers = {}
    for reference in (draft, "MF-1999-0404"):
        a.call("post", f"/tenders/{reference}/bids", {"envelope": envelope})  # warm
        with CaptureQueriesContext(connection) as queries:
            r = a.call("post", f"/tenders/{reference}/bids", {"envelope": envelope})
        detail = r.json()["detail"].replace(reference, "<reference>")
        answers[reference] = (r.status_code, detail, len(queries.captured_queries))
    assert answers[draft] == answers["MF-1999-0404"], answers
    assert answers[draft][0] == 404


@pytest.mark.parametrize(("name", "content", "why"), [
    ("virus.pdf", b"MZ\x90\x00" + b"\x00" * 100, "not a real .pdf"),
    ("notes.exe", PDF, "only"), ("../../etc/passwd.pdf", PDF, "plain file name"),
    ("empty.pdf", b"", "empty"), ("big.pdf", PDF + b"\x00" * (11 * 1024 * 1024), "larger"),
])
def test_bad_documents_are_refused(world, published, name, content, why):
    r = world["officer"].call("post", f"/tenders/{published.reference}/documents",
                              {"name": name, "content_base64": base64.b64encode(content).decode()})
    assert r.status_code == 422 and why in r.json()["detail"], r.content
    assert not published.documents.exists()


@pytest.mark.parametrize(("overrides", "why"), [
    ({"enquiry_deadline": "2020-01-01T00:00:00+00:00"}, "past"),
    ({"submission_deadline": (timezone.now() + dt.timedelta(days=5)).isoformat()}, "after"),
    ({"lots": []}, ""), ({"procedure": "auction"}, ""),
    ({"lots": [{"title": "x", "cpv": "123", "estimated_value": "10"}]}, ""),
    ({"lots": [{"title": "x", "cpv": "48820000-2", "estimated_value": "-10"}]}, ""),
    ({"procedure": "simplified",
      "lots": [{"title": "x", "cpv": "48820000-2", "estimated_value": "900000"}]}, "simplified"),
    ({"buyer": "NOPE"}, ""),
])
def test_bad_tenders_are_refused(world, overrides, why):
    r = world["officer"].call("post", "/tenders", tender_payload(**overrides))
    assert r.status_code in (404, 422), r.content
    assert why in r.json().get("detail", "")
    assert not Tender.objects.exists()


def test_wrong_state_moves_are_refused(world, published):
    officer = world["officer"]
    ref = published.reference
    assert officer.call("post", f"/tenders/{ref}/publish").status_code == 409
    assert officer.call("post", f"/tenders/{ref}/evaluation").status_code == 409
    assert officer.call("post", f"/tenders/{ref}/award", {}).status_code == 409
    r = officer.call("post", f"/tenders/{ref}/unsuccessful", {"reason": "x"})
    assert r.status_code == 409 and "Cannot fail" in r.json()["detail"]


def test_short_tendering_periods_are_refused_at_publication(world):
    payload = tender_payload(
        enquiry_deadline=(timezone.now() + dt.timedelta(days=2)).isoformat(),
        submission_deadline=(timezone.now() + dt.timedelta(days=5)).isoformat())
    ref = world["officer"].call("post", "/tenders", payload).json()["reference"]
    r = world["officer"].call("post", f"/tenders/{ref}/publish")
    assert r.status_code == 422 and "21 days" in r.json()["detail"]
    assert Tender.objects.get(reference=ref).state == "draft"


def test_restricted_and_negotiated_procedures_admit_only_their_companies(world):
    officer = world["officer"]
    (atlas, a), (_, c), _ = world["companies"]
    ref = officer.call("post", "/tenders", tender_payload(
        procedure="negotiated", invited=[atlas.pk])).json()["reference"]
    publish(officer, ref)
    assert a.bid(ref, {"1": "10"}).status_code == 201
    assert c.bid(ref, {"1": "10"}).status_code == 403


def test_the_changes_feed_pages_without_losing_or_repeating(world, published, client):
    for i in range(3):
        bid(world, i, published, {"1": str(1000 + i)})
    seen, cursor = [], ""
    while True:
        page = client.get("/api/procurement/changes", {"cursor": cursor, "limit": 2}).json()
        if not page["items"]:
            break
        seen += [i["ledger_index"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert seen == sorted(set(seen)) and len(seen) == published.steps.count()
    assert client.get("/api/procurement/changes", {"cursor": "garbage!"}).status_code == 422


def test_eligibility_is_decided_criterion_by_criterion(world, published):
    bid(world, 0, published, {"1": "100000"})
    with time_machine.travel(published.submission_deadline + dt.timedelta(seconds=1)):
        services.advance_tenders()
    ev = world["evaluators"][0]
    ref = published.reference
    ev.call("post", f"/tenders/{ref}/declarations", {"no_conflict": True})
    row = BidLot.objects.get()
    criteria = Tender.objects.get(pk=published.pk).compliance_criteria
    assert len(criteria) == 3
    base = {"bid": row.bid_id, "lot": 1}
    partial = {criteria[0]: True}
    r = ev.call("post", f"/tenders/{ref}/eligibility", base | {"eligible": True,
                                                              "checks": partial})
    assert r.status_code == 422 and "every compliance criterion" in r.json()["detail"]
    failed = dict.fromkeys(criteria, True) | {criteria[1]: False}
    r = ev.call("post", f"/tenders/{ref}/eligibility", base | {"eligible": True,
                                                              "checks": failed})
    assert r.status_code == 422
    r = ev.call("post", f"/tenders/{ref}/eligibility", base | {
        "eligible": False, "checks": failed, "reason": "Pas de caution"})
    assert r.status_code == 200 and r.json()["compliance"][criteria[1]] is False


def test_admin_screens_show_tenders_but_never_bids_or_keys(world, published, admin_client):
    bid(world, 0, published, {"1": "123456.789"})
    assert admin_client.get("/admin/procurement/tender/").status_code == 200
    page = admin_client.get(f"/admin/procurement/tender/{published.pk}/change/")
    assert page.status_code == 200
    assert b"sealed_private_key" not in page.content and b"123456" not in page.content
    assert admin_client.get("/admin/procurement/bid/").status_code == 404
    assert admin_client.get("/admin/procurement/bidlot/").status_code == 404


def test_a_draft_is_in_the_public_log_only_as_a_hash(world):
    import hashlib
    import json

    ref = world["officer"].call("post", "/tenders", tender_payload()).json()["reference"]
    drafted = Entry.objects.get(type="procurement.tender.drafted", subject=f"tender:{ref}")
    assert b"Serveurs et stockage" not in bytes(drafted.body)
    publish(world["officer"], ref)
    published = json.loads(bytes(Entry.objects.get(type="procurement.tender.published",
                                                   subject=f"tender:{ref}").body))["data"]
    assert published["title"] == "Serveurs et stockage"
    details = {k: published[k] for k in ("reference", "buyer", "title", "procedure",
                                         "estimated_value", "framework", "ocid")}
    digest = hashlib.sha256(json.dumps(details, sort_keys=True).encode()).hexdigest()
    assert json.loads(bytes(drafted.body))["data"]["sha256"] == digest
