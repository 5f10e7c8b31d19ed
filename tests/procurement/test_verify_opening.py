"""Anyone checks an opening from public data; the company's and the committee's tools
work offline."""

import datetime as dt
import json

import pytest
import time_machine

from sahab.cli import main
from sahab.ledger import services as ledger
from sahab.procurement import services
from sahab.procurement.models import Bid, Tender
from sahab.procurement.verify import OpeningFailure, verify_opening
from tests.procurement.conftest import publish, tender_payload


@pytest.fixture
def opened(world):
    ref = world["officer"].call("post", "/tenders", tender_payload()).json()["reference"]
    publish(world["officer"], ref)
    (_, a), (_, c), (medina, _) = world["companies"]
    assert a.bid(ref, {"1": "250000", "2": "110000"}).status_code == 201
    assert c.bid(ref, {"1": "240000"}).status_code == 201
    tender = Tender.objects.get(reference=ref)
    # an insider's extra row: rejected and named, which the verifier accepts as such
    real = Bid.objects.filter(tender=tender).first()
    Bid.objects.create(tender=tender, company=medina, status="submitted",
                       envelope=bytes(real.envelope) + b"x", commitment="f" * 64,
                       ledger_index=real.ledger_index)
    with time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1)):
        services.advance_tenders()
    ledger.checkpoint_if_grown()
    return tender


def test_verify_opening_confirms_from_public_data(opened, wsgi_http):
    result = verify_opening("http://testserver", opened.reference, ledger.verifier_key(),
                            client=wsgi_http)
    assert len(result.opened) == 2 and len(result.rejected) == 1 and not result.missing
    assert len(result.released) == 2


def test_verify_opening_refuses_a_report_that_differs_from_the_envelopes(opened, wsgi_http):
    # the database's copy of an opened envelope is swapped after the opening
    bids = list(Bid.objects.filter(tender=opened, status="opened"))
    Bid.objects.filter(pk=bids[0].pk).update(envelope=bytes(bids[1].envelope))
    with pytest.raises(OpeningFailure, match="not published"):
        verify_opening("http://testserver", opened.reference, ledger.verifier_key(),
                       client=wsgi_http)


def test_verify_opening_needs_an_opened_tender(world, wsgi_http):
    ref = world["officer"].call("post", "/tenders", tender_payload()).json()["reference"]
    publish(world["officer"], ref)
    with pytest.raises(OpeningFailure, match="not opened"):
        verify_opening("http://testserver", ref, ledger.verifier_key(), client=wsgi_http)


def test_bid_and_committee_tools_work_offline(world, tmp_path, capsys):
    (atlas, a), _, _ = world["companies"]
    key = tmp_path / "company.pem"
    assert main(["bid", "keygen", "--company", str(atlas.pk), "--out", str(key)]) == 0
    registration = json.loads(capsys.readouterr().out)
    assert a.call("post", "/signing-keys", registration).status_code == 201
    assert main(["committee", "keygen", "--out", str(tmp_path / "member.key")]) == 0
    assert len(json.loads(capsys.readouterr().out)["public_key"]) == 44
    ref = world["officer"].call("post", "/tenders", tender_payload()).json()["reference"]
    publish(world["officer"], ref)
    detail = tmp_path / "tender.json"
    detail.write_text(a.call("get", f"/tenders/{ref}").content.decode())
    body = tmp_path / "bid.json"
    assert main(["bid", "seal", "--tender", str(detail), "--company", str(atlas.pk),
                 "--key", str(key), "--price", "1=1000", "--out", str(body)]) == 0
    envelope = json.loads(body.read_text())
    assert b"1000" not in envelope["envelope"].encode()
    r = a.call("post", f"/tenders/{ref}/bids", envelope)
    assert r.status_code == 201, r.content


def test_releases_before_the_worker_closes_tendering_verify(world, wsgi_http):
    """Members may release as soon as the deadline passes, before the worker's close."""
    from tests import factories

    ref = world["officer"].call("post", "/tenders", tender_payload()).json()["reference"]
    tender = Tender.objects.get(reference=ref)
    members = factories.committee(tender, demo_keys=False)
    world["officer"].call("post", f"/tenders/{ref}/publish")
    assert world["companies"][0][1].bid(ref, {"1": "1000"}).status_code == 201
    with time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1)):
        for user, key in members[1:]:
            services.release_committee_key(actor=user, tender=tender, private_key=key)
        services.advance_tenders()
    ledger.checkpoint_if_grown()
    result = verify_opening("http://testserver", ref, ledger.verifier_key(), client=wsgi_http)
    assert len(result.opened) == 1 and result.released == [2, 3]


def test_verify_opening_fails_on_a_bid_entry_integrated_after_the_close(opened, wsgi_http):
    """A sequencer that held a bid's pending entry back until after the close of
    tendering (its promise dated before the deadline) is caught from public data: honest
    code never puts a bid entry after its tender's close."""
    from sahab.procurement.events import ProcurementEvent

    ledger.enqueue(ProcurementEvent.BID_SUBMITTED, f"sealed-bids:{opened.bid_tag}", "system",
                   {"commitment": "a" * 64, "replaces": []})
    ledger.integrate()
    ledger.checkpoint_if_grown()
    with pytest.raises(OpeningFailure, match="after the close"):
        verify_opening("http://testserver", opened.reference, ledger.verifier_key(),
                       client=wsgi_http)
