"""The tender's secret bid tag is committed on the ledger at its publication.

A tender's sealed bids are the ledger's entries under ``sealed-bids:<tag>``, and the tag
lives in the tender's row until the opening report reveals it. A database owner who
gave the tender another tag (a fresh one, or none) before the opening made the opening
read no bid at all: the tender ended "unsuccessful", its report and ledger entry agreed
with each other, and `verify-opening` passed. The publication entry now commits to the
tag (SHA-256 with a secret salt, revealed with the tag at the opening): the opening
refuses another tag, and anyone's verification fails on a report made under one.
"""

import datetime as dt
import json
import logging
import secrets

import pytest
import time_machine

from sahab.core.errors import Conflict
from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from sahab.procurement import sealing, services
from sahab.procurement.events import ProcurementEvent
from sahab.procurement.models import Bid, State, Tender
from sahab.procurement.verify import OpeningFailure, verify_opening
from tests.procurement.bidding import opening_report, sequence_bids
from tests.procurement.conftest import publish, tender_payload


def _published_with_bids(world) -> Tender:
    ref = world["officer"].call("post", "/tenders", tender_payload()).json()["reference"]
    assert publish(world["officer"], ref).status_code == 200
    (_, a), (_, c), _ = world["companies"]
    assert a.bid(ref, {"1": "250000", "2": "110000"}).status_code == 201
    assert c.bid(ref, {"1": "240000"}).status_code == 201
    sequence_bids()
    return Tender.objects.get(reference=ref)


@pytest.fixture
def tender(world) -> Tender:
    return _published_with_bids(world)


def _after_deadline(tender: Tender):
    return time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1))


def _published_entry(tender: Tender) -> dict:
    step = tender.steps.get(type="tender.published")
    return json.loads(bytes(Entry.objects.get(index=step.ledger_index).body))["data"]


def test_the_publication_commits_to_the_tag_without_revealing_it(tender):
    data = _published_entry(tender)
    assert data["bid_tag_commitment"] == sealing.tag_commitment(tender.bid_tag,
                                                                tender.bid_tag_salt)
    # nobody links a bid entry's subject to the tender from the public entry alone
    assert tender.bid_tag not in str(data) and tender.bid_tag_salt not in str(data)
    assert len(tender.bid_tag_salt) == 32


@pytest.mark.parametrize("new_tag", [secrets.token_hex(16), ""], ids=["fresh tag", "no tag"])
def test_a_tag_changed_in_the_database_before_the_opening_is_refused(tender, new_tag, caplog):
    """The review's replay: the owner gives the tender another tag after its bids came
    in; the opening found none of them and declared the tender unsuccessful."""
    Tender.objects.filter(pk=tender.pk).update(bid_tag=new_tag)
    with _after_deadline(tender), caplog.at_level(logging.ERROR):
        done = services.advance_tenders()
    tender.refresh_from_db()
    assert f"{tender.reference}: opened" not in done
    assert tender.state == State.OPENING and tender.opened_at is None
    assert "not the one its publication committed to" in caplog.text
    assert set(tender.bids.values_list("status", flat=True)) == {Bid.Status.SUBMITTED}
    assert not tender.steps.filter(type__in=["tender.opened", "tender.unsuccessful"]).exists()
    with _after_deadline(tender), pytest.raises(Conflict, match="committed to"):
        services.open_tender(tender=tender)


def test_a_salt_changed_with_the_tag_is_refused_too(world, tender):
    """Changing the salt as well does not help: the owner would need a salt whose
    commitment with the new tag is the published one."""
    Tender.objects.filter(pk=tender.pk).update(bid_tag=secrets.token_hex(16),
                                               bid_tag_salt=secrets.token_hex(16))
    with _after_deadline(tender), pytest.raises(Conflict, match="committed to"):
        services.advance_tenders()  # closes tendering first
        services.open_tender(tender=tender)


def test_the_tag_restored_opens_the_bids(tender):
    honest = tender.bid_tag
    Tender.objects.filter(pk=tender.pk).update(bid_tag=secrets.token_hex(16))
    with _after_deadline(tender):
        services.advance_tenders()
    Tender.objects.filter(pk=tender.pk).update(bid_tag=honest)
    with _after_deadline(tender):
        assert f"{tender.reference}: opened" in services.advance_tenders()
    report = opening_report(tender)
    assert len(report["bids"]) == 2
    assert report["bid_tag"] == honest and report["bid_tag_salt"] == tender.bid_tag_salt


def test_verify_opening_checks_the_tag_against_the_publication(tender, wsgi_http):
    with _after_deadline(tender):
        services.advance_tenders()
    ledger.checkpoint_if_grown()
    result = verify_opening("http://testserver", tender.reference, ledger.verifier_key(),
                            client=wsgi_http)
    assert len(result.opened) == 2


def test_verify_opening_fails_on_an_opening_under_another_tag(tender, wsgi_http, monkeypatch):
    """An operator who runs code without the opening's check (root on the servers) and
    gave the tender a fresh tag gets a self-consistent report with no bid: anyone's
    verification now fails on it, from public data."""
    Tender.objects.filter(pk=tender.pk).update(bid_tag=secrets.token_hex(16))
    monkeypatch.setattr(services, "_check_bid_tag", lambda tender, signed: None,
                        raising=False)  # the code before had no check to skip
    with _after_deadline(tender):
        assert f"{tender.reference}: opened" in services.advance_tenders()
    assert opening_report(tender)["bids"] == []
    ledger.checkpoint_if_grown()
    with pytest.raises(OpeningFailure, match="bid tag is not the one"):
        verify_opening("http://testserver", tender.reference, ledger.verifier_key(),
                       client=wsgi_http)


def test_tenders_published_before_the_commitment_still_open_and_verify(world, wsgi_http,
                                                                       monkeypatch):
    """A publication entry written before tags were committed has no commitment: its
    tender opens and verifies as before (the tag must still not be empty)."""
    step = services._step

    def publication_of_before(tender, event, actor, data, **kwargs):
        if event == ProcurementEvent.TENDER_PUBLISHED:
            data.pop("bid_tag_commitment")
        return step(tender, event, actor, data, **kwargs)

    monkeypatch.setattr(services, "_step", publication_of_before)
    tender = _published_with_bids(world)
    monkeypatch.undo()
    Tender.objects.filter(pk=tender.pk).update(bid_tag_salt="")
    assert "bid_tag_commitment" not in _published_entry(tender)
    with _after_deadline(tender):
        assert f"{tender.reference}: opened" in services.advance_tenders()
    report = opening_report(tender)
    assert len(report["bids"]) == 2 and "bid_tag_salt" not in report
    ledger.checkpoint_if_grown()
    assert len(verify_opening("http://testserver", tender.reference, ledger.verifier_key(),
                              client=wsgi_http).opened) == 2
