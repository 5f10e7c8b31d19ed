"""Insiders with the database (and every file of the platform) against sealed bids.

Each test replays what an insider with SQL alone did to the bids of a tender (issue 13):
the opening must reject the bad bid and name it in its report, which is a ledger entry,
or the attack must be impossible.
"""

import base64
import datetime as dt
import io
import json
import re

import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from django.core.management import call_command

from sahab.core.errors import Conflict
from sahab.directory import services as directory
from sahab.directory.selectors import SYSTEM
from sahab.ledger.models import Entry
from sahab.procurement import client as bidder
from sahab.procurement import sealing, services
from sahab.procurement.models import Bid, SigningKey, Tender
from tests import factories
from tests.procurement.bidding import opening_report, sequence_bids
from tests.procurement.conftest import published_through_api


@pytest.fixture
def tender(world):
    """Atlas and Carthage bid; Medina does not."""
    tender = published_through_api(world)
    (_, a), (_, c), _ = world["companies"]
    assert a.bid(tender.reference, {"1": "250000", "2": "110000"}).status_code == 201
    assert c.bid(tender.reference, {"1": "240000"}).status_code == 201
    sequence_bids()
    return tender


def _open(tender: Tender) -> dict:
    with time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1)):
        services.advance_tenders()
    return opening_report(tender)


def _opened(report: dict) -> dict:
    return {b["company"]: b["prices"] for b in report["bids"]}


def _rejected(report: dict) -> dict:
    return {r["company"]: r["problem"] for r in report["rejected"]}


def _insider_envelope(tender: Tender, company_id: int, prices: dict) -> bytes:
    """What an insider can make: a well-formed envelope to the committee's public keys,
    signed with a key of their own (they hold no company's private key)."""
    return bidder.seal_bid(factories.tender_detail(tender), company_id=company_id,
                           key=bidder.new_signing_key(), prices=prices).encode()


def test_1_an_envelope_changed_in_the_database_is_rejected_and_named(world, tender):
    atlas = world["companies"][0][0]
    victim = Bid.objects.get(tender=tender, company=atlas)
    forged = _insider_envelope(tender, atlas.pk, {"1": "1.000"})
    Bid.objects.filter(pk=victim.pk).update(envelope=forged,
                                            commitment=sealing.commitment(forged))
    report = _open(tender)
    assert "Atlas" not in _opened(report) and "Carthage" in _opened(report)
    assert "no live ledger entry" in _rejected(report)["Atlas"]
    # and the commitment the ledger holds for Atlas is named as missing its envelope
    assert [m["commitment"] for m in report["missing"]] == [victim.commitment]
    assert Bid.objects.get(pk=victim.pk).status == "tampered"


def test_2_a_bid_inserted_for_a_company_that_never_bid_is_rejected_and_named(world, tender):
    medina = world["companies"][2][0]
    forged = _insider_envelope(tender, medina.pk, {"1": "100000"})
    # the insider even registers "Medina's" key in the database, without the ledger
    key = sealing.parse(forged).key
    SigningKey.objects.create(company=medina, public_key=b"\0" * 32, fingerprint=key,
                              ledger_index=Bid.objects.first().ledger_index)
    real = Bid.objects.filter(tender=tender).first()
    Bid.objects.create(tender=tender, company=medina, status="submitted", envelope=forged,
                       commitment=sealing.commitment(forged), ledger_index=real.ledger_index)
    report = _open(tender)
    assert set(_opened(report)) == {"Atlas", "Carthage"}
    assert "no live ledger entry" in _rejected(report)["Medina"]
    assert report["missing"] == []


def test_3_a_bid_whose_company_was_changed_is_rejected_and_named(world, tender):
    carthage, medina = world["companies"][1][0], world["companies"][2][0]
    Bid.objects.filter(tender=tender, company=carthage).update(company=medina)
    report = _open(tender)
    assert set(_opened(report)) == {"Atlas"}
    assert "company was changed" in _rejected(report)["Medina"]


def test_4_a_valid_envelope_copied_from_another_tender_is_rejected_and_named(world, tender):
    other = published_through_api(world)
    medina_actor = world["companies"][2][1]
    assert medina_actor.bid(other.reference, {"1": "90000"}).status_code == 201
    copied = Bid.objects.get(tender=other)
    Bid.objects.create(tender=tender, company=copied.company, status="submitted",
                       envelope=bytes(copied.envelope), commitment=copied.commitment,
                       ledger_index=copied.ledger_index)
    # a copy is refused at once if submitted through the service
    with pytest.raises(Exception, match="sealed for"):
        services.submit_bid(actor=medina_actor.user, tender=other,
                            envelope=bytes(factories.sealed(tender, medina_actor.user,
                                                            {"1": "1"})))
    report = _open(tender)
    assert set(_opened(report)) == {"Atlas", "Carthage"}
    assert "no live ledger entry" in _rejected(report)["Medina"]


def _x25519_candidates(data: bytes):
    """Every way a private key could sit in ``data``: PEM, base64 tokens, raw bytes."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
        if isinstance(key, X25519PrivateKey):
            yield sealing.raw_private(key)
    except (ValueError, TypeError):
        pass
    for token in re.findall(rb"[A-Za-z0-9+/]{42,44}=?", data):
        try:
            raw = base64.b64decode(token + b"=" * (-len(token) % 4))
        except ValueError:
            continue
        if len(raw) == 32:
            yield raw
    if len(data) <= 16384:
        for i in range(max(0, len(data) - 31)):
            yield data[i:i + 32]


def test_5_the_platform_alone_cannot_open_a_bid_before_t_releases(world, sahab_home):
    # members keep their keys, as in production
    tender = published_through_api(world, demo_keys=False)
    (_, a), _, _ = world["companies"]
    assert a.bid(tender.reference, {"1": "123456.789"}).status_code == 201
    publics = {bytes(m.public_key) for m in tender.committee.all()}
    # everything the platform holds: every table, every file under SAHAB_HOME
    dump = io.StringIO()
    call_command("dumpdata", stdout=dump)
    blobs = [dump.getvalue().encode()]
    blobs += [p.read_bytes() for p in sahab_home.rglob("*") if p.is_file()]
    for blob in blobs:
        assert b"123456.789" not in blob
        for raw in _x25519_candidates(blob):
            assert sealing.member_public_key(raw) not in publics
    envelope = sealing.parse(bytes(Bid.objects.get().envelope))
    with pytest.raises(sealing.SealError):
        sealing.open_envelope(envelope, {})
    # after the deadline one member (t - 1) releases: still nothing opens
    keys = _member_keys(tender)
    first = tender.committee.get(position=1)
    with time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1)):
        services.advance_tenders()
        services.release_committee_key(actor=first.member, tender=tender, private_key=keys[1])
        services.advance_tenders()
        tender.refresh_from_db()
        assert tender.state == "opening"
        with pytest.raises(Conflict, match="must release"):
            services.open_tender(tender=tender)
    with pytest.raises(sealing.SealError):
        sealing.open_envelope(envelope, {1: keys[1]})
    # the two keys of any pair of members open it
    assert sealing.open_envelope(envelope, {1: keys[1], 3: keys[3]})["prices"] == \
        {"1": "123456.789"}


_KEYS: dict[str, dict[int, bytes]] = {}


def _member_keys(tender: Tender) -> dict[int, bytes]:
    return _KEYS[tender.reference]


@pytest.fixture(autouse=True)
def _remember_member_keys(monkeypatch):
    """Keep the members' private keys where the test (not the platform) can use them."""
    real = factories.committee

    def committee(tender, **kwargs):
        members = real(tender, **kwargs)
        _KEYS[tender.reference] = {n: key for n, (_, key) in enumerate(members, start=1)}
        return members

    monkeypatch.setattr(factories, "committee", committee)


def test_releases_are_checked_public_and_open_the_bids(world):
    tender = published_through_api(world, demo_keys=False)
    (_, a), _, _ = world["companies"]
    assert a.bid(tender.reference, {"1": "250000"}).status_code == 201
    keys = _member_keys(tender)
    members = list(tender.committee.select_related("member"))
    with time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1)):
        services.advance_tenders()
        with pytest.raises(Exception, match="not the one you registered"):
            services.release_committee_key(actor=members[0].member, tender=tender,
                                           private_key=keys[2])
        for m in (members[0], members[2]):
            services.release_committee_key(actor=m.member, tender=tender,
                                           private_key=keys[m.position])
        services.advance_tenders()
    tender.refresh_from_db()
    assert tender.state == "evaluation"
    released = [json.loads(bytes(e.body))["data"] for e in
                Entry.objects.filter(type="procurement.committee.key_released")]
    assert {r["position"] for r in released} == {1, 3}


def test_a_company_whose_details_are_edited_keeps_valid_bids(world, tender):
    atlas = world["companies"][0][0]
    directory_edit = {"name": "Atlas Systèmes", "matricule_fiscal": "7654321B/A/M/000"}
    type(atlas).objects.filter(pk=atlas.pk).update(**directory_edit)
    report = _open(tender)
    assert _opened(report)["Atlas Systèmes"] == {"1": "250000.000", "2": "110000.000"}
    assert report["rejected"] == [] and report["missing"] == []


def test_a_bid_signed_by_a_revoked_key_is_refused(world):
    tender = published_through_api(world)
    (_, a), _, _ = world["companies"]
    key = factories.signing_key(a.user)
    envelope = factories.sealed(tender, a.user, {"1": "100"})
    registered = SigningKey.objects.get(fingerprint=sealing.fingerprint(sealing.raw_public(key)))
    r = a.call("delete", f"/signing-keys/{registered.pk}")
    assert r.status_code == 200 and r.json()["revoked_at"]
    r = a.call("post", f"/tenders/{tender.reference}/bids", {"envelope": envelope.decode()})
    assert r.status_code == 422 and "revoked" in r.json()["detail"]
    assert not Bid.objects.exists()
    assert Entry.objects.filter(type="procurement.signing_key.revoked").count() == 1


def test_a_key_registers_only_with_a_proof_of_possession(world):
    (atlas, a), _, _ = world["companies"]
    key, other = bidder.new_signing_key(), bidder.new_signing_key()
    body = bidder.registration(atlas.pk, key)
    body["proof"] = bidder.registration(atlas.pk, other)["proof"]
    r = a.call("post", "/signing-keys", body)
    assert r.status_code == 422 and "proof of possession" in r.json()["detail"]
    r = a.call("post", "/signing-keys", bidder.registration(atlas.pk, key))
    assert r.status_code == 201 and "BEGIN CERTIFICATE" in r.json()["certificate"]
    token = directory.issue_api_token(actor=SYSTEM, user=world["officer"].user, name="x")
    assert token  # an agent is no company: it registers no bid key
    assert world["officer"].call("post", "/signing-keys",
                                 bidder.registration(atlas.pk, other)).status_code == 403
