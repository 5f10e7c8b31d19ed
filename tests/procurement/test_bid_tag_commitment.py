"""The tender's secret bid tag is committed on the ledger at its publication.

A tender's sealed bids are the ledger's entries under ``sealed-bids:<tag>``, and the tag
lives in the tender's row until the opening report reveals it. A database owner who
gave the tender another tag (a fresh one, or none) before the opening made the opening
read no bid at all: the tender ended "unsuccessful", its report and ledger entry agreed
with each other, and `verify-opening` passed. The publication entry now commits to the
tag (SHA-256 with a secret salt, revealed with the tag at the opening): bid writes and
the opening refuse another tag, and anyone's verification fails on a report made under
one. The second half replays what a review of that change found still possible.
"""

import datetime as dt
import json
import logging
import secrets

import pytest
import time_machine
from django.contrib.auth import get_user_model

from sahab.core.errors import Conflict
from sahab.ledger import services as ledger
from sahab.ledger.models import Entry
from sahab.procurement import sealing, services
from sahab.procurement.events import ProcurementEvent
from sahab.procurement.models import (
    OPENING_REPORT,
    Bid,
    CommitteeMember,
    State,
    Step,
    Tender,
)
from sahab.procurement.verify import OpeningFailure, verify_opening
from tests.ledger.insider import as_database_owner
from tests.procurement.bidding import opening_report, sequence_bids, withdraw_bid
from tests.procurement.conftest import published_through_api


def _with_bids(world, tender: Tender) -> Tender:
    (_, a), (_, c), _ = world["companies"]
    assert a.bid(tender.reference, {"1": "250000", "2": "110000"}).status_code == 201
    assert c.bid(tender.reference, {"1": "240000"}).status_code == 201
    sequence_bids()
    return tender


@pytest.fixture
def tender(world) -> Tender:
    return _with_bids(world, published_through_api(world))


@pytest.fixture
def published_without_commitment(monkeypatch):
    """Publish as the code before the commitment did (or code modified by root does):
    the publication entry carries no ``bid_tag_commitment`` and the row no salt."""
    def publish_uncommitted(world) -> Tender:
        step = services._step

        def publication_of_before(tender, event, actor, data, **kwargs):
            if event == ProcurementEvent.TENDER_PUBLISHED:
                data.pop("bid_tag_commitment")
            return step(tender, event, actor, data, **kwargs)

        with monkeypatch.context() as patch:
            patch.setattr(services, "_step", publication_of_before)
            tender = published_through_api(world)
        Tender.objects.filter(pk=tender.pk).update(bid_tag_salt="")
        tender.refresh_from_db()
        return tender
    return publish_uncommitted


def _after_deadline(tender: Tender):
    return time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1))


def _published_entry(tender: Tender) -> dict:
    step = tender.steps.get(type="tender.published")
    return json.loads(bytes(Entry.objects.get(index=step.ledger_index).body))["data"]


def _verify(tender: Tender, wsgi_http, **options):
    ledger.checkpoint_if_grown()
    return verify_opening("http://testserver", tender.reference, ledger.verifier_key(),
                          client=wsgi_http, **options)


def _open_without_the_check(tender: Tender, monkeypatch) -> dict:
    """Root runs the opening with code that skips the tag's check; the report stored."""
    with monkeypatch.context() as patch:
        patch.setattr(services, "_check_bid_tag", lambda tender, signed=None: None)
        with _after_deadline(tender):
            assert f"{tender.reference}: opened" in services.advance_tenders()
    return json.loads(bytes(tender.documents.get(name=OPENING_REPORT).content))


def _refused_opening(tender: Tender) -> None:
    with _after_deadline(tender):
        assert f"{tender.reference}: opened" not in services.advance_tenders()
        with pytest.raises(Conflict, match="committed to"):
            services.open_tender(tender=tender)
    tender.refresh_from_db()
    assert tender.state == State.OPENING and tender.opened_at is None


def test_the_publication_commits_to_the_tag_without_revealing_it(tender):
    data = _published_entry(tender)
    assert data["bid_tag_commitment"] == sealing.tag_commitment(tender.bid_tag,
                                                                tender.bid_tag_salt)
    # nobody links a bid entry's subject to the tender from the public entry alone
    assert tender.bid_tag not in str(data) and tender.bid_tag_salt not in str(data)
    assert len(tender.bid_tag_salt) == 32


@pytest.mark.parametrize("new_tag", [secrets.token_hex(16), ""], ids=["fresh tag", "no tag"])
def test_a_tag_changed_in_the_database_before_the_opening_is_refused(tender, new_tag, caplog):
    """The first replay: the owner gives the tender another tag after its bids came in;
    the opening found none of them and declared the tender unsuccessful."""
    Tender.objects.filter(pk=tender.pk).update(bid_tag=new_tag)
    with caplog.at_level(logging.ERROR):
        _refused_opening(tender)
    assert "not the one its publication committed to" in caplog.text
    assert set(tender.bids.values_list("status", flat=True)) == {Bid.Status.SUBMITTED}
    assert not tender.steps.filter(type__in=["tender.opened", "tender.unsuccessful"]).exists()


def test_a_salt_changed_with_the_tag_is_refused_too(tender):
    """Changing the salt as well does not help: the owner would need a salt whose
    commitment with the new tag is the published one."""
    Tender.objects.filter(pk=tender.pk).update(bid_tag=secrets.token_hex(16),
                                               bid_tag_salt=secrets.token_hex(16))
    _refused_opening(tender)


def test_the_tag_restored_opens_the_bids(tender):
    honest = tender.bid_tag
    Tender.objects.filter(pk=tender.pk).update(bid_tag=secrets.token_hex(16))
    _refused_opening(tender)
    Tender.objects.filter(pk=tender.pk).update(bid_tag=honest)
    with _after_deadline(tender):
        assert f"{tender.reference}: opened" in services.advance_tenders()
    report = opening_report(tender)
    assert len(report["bids"]) == 2
    assert report["bid_tag"] == honest and report["bid_tag_salt"] == tender.bid_tag_salt


def test_verify_opening_checks_the_tag_against_the_publication(tender, wsgi_http):
    with _after_deadline(tender):
        services.advance_tenders()
    result = _verify(tender, wsgi_http, my_bids=list(
        tender.bids.values_list("ledger_index", flat=True)))
    assert len(result.opened) == 2 and result.tag_committed


def test_verify_opening_fails_on_an_opening_under_another_tag(tender, wsgi_http, monkeypatch):
    """Root gives the tender a fresh tag, marks its bid rows withdrawn and opens with
    code that skips the check: a self-consistent report with no bid, nothing rejected
    nor missing. Anyone's verification fails on it, from public data."""
    Tender.objects.filter(pk=tender.pk).update(bid_tag=secrets.token_hex(16))
    tender.bids.update(status=Bid.Status.WITHDRAWN)
    report = _open_without_the_check(tender, monkeypatch)
    assert report["bids"] == report["rejected"] == report["missing"] == []
    with pytest.raises(OpeningFailure, match="bid tag is not the one"):
        _verify(tender, wsgi_http)


def test_tenders_published_before_the_commitment_open_and_verify_below_the_cut_over(
        world, wsgi_http, settings, published_without_commitment):
    """A platform upgraded with tenders already published names the log's size at the
    upgrade: publications below it, which commit to nothing, still open and verify (the
    verifier says so); the tag must still not be empty."""
    tender = published_without_commitment(world)
    published = tender.steps.get(type="tender.published").ledger_index
    settings.PROCUREMENT_BID_TAGS_COMMITTED_FROM = published + 1
    _with_bids(world, tender)
    assert "bid_tag_commitment" not in _published_entry(tender)
    with _after_deadline(tender):
        assert f"{tender.reference}: opened" in services.advance_tenders()
    report = opening_report(tender)
    assert len(report["bids"]) == 2 and "bid_tag_salt" not in report
    result = _verify(tender, wsgi_http, tags_committed_from=published + 1)
    assert len(result.opened) == 2 and not result.tag_committed


# --- what the review of the change found -------------------------------------------------

def test_review_1_a_tag_switched_while_one_company_bids_refuses_that_bid(world):
    """A writer gave the tender another tag only while the cheapest company submitted,
    then restored it and marked the bid withdrawn: the bid's entry lay under the other
    tag, the opening never read it, and every check passed. A bid is now filed only under
    the committed tag."""
    tender = published_through_api(world)
    (_, a), (carthage, c), _ = world["companies"]
    assert a.bid(tender.reference, {"1": "250000", "2": "110000"}).status_code == 201
    Tender.objects.filter(pk=tender.pk).update(bid_tag=secrets.token_hex(16))
    r = c.bid(tender.reference, {"1": "200000"})
    assert r.status_code == 409 and "committed to" in r.json()["detail"]
    assert not tender.bids.filter(company=carthage).exists()


def test_review_1_a_withdrawal_or_confirmation_under_a_switched_tag_is_refused(world, tender):
    bid = tender.bids.get(company=world["companies"][0][0])
    Tender.objects.filter(pk=tender.pk).update(bid_tag=secrets.token_hex(16))
    with pytest.raises(Conflict, match="committed to"):
        withdraw_bid(world["companies"][0][1].user, bid)
    bid.refresh_from_db()
    assert bid.status == Bid.Status.SUBMITTED


def test_review_1_a_company_checks_that_the_opening_read_its_bid(world, wsgi_http,
                                                                monkeypatch):
    """Root's code files the victim's bid under another tag: the company, with the index
    its promise gave, finds out from public data."""
    tender = published_through_api(world)
    honest = tender.bid_tag
    (_, a), (carthage, c), _ = world["companies"]
    assert a.bid(tender.reference, {"1": "250000", "2": "110000"}).status_code == 201
    Tender.objects.filter(pk=tender.pk).update(bid_tag=secrets.token_hex(16))
    with monkeypatch.context() as patch:
        patch.setattr(services, "_check_bid_tag", lambda tender, signed=None: None)
        assert c.bid(tender.reference, {"1": "200000"}).status_code == 201
    sequence_bids()
    Tender.objects.filter(pk=tender.pk).update(bid_tag=honest)
    victim = tender.bids.get(company=carthage)
    Bid.objects.filter(pk=victim.pk).update(status=Bid.Status.WITHDRAWN)
    with _after_deadline(tender):
        assert f"{tender.reference}: opened" in services.advance_tenders()
    assert len(_verify(tender, wsgi_http).opened) == 1  # nobody else can tell
    with pytest.raises(OpeningFailure, match=f"your bid entry {victim.ledger_index}"):
        _verify(tender, wsgi_http, my_bids=[victim.ledger_index])


def test_review_2_a_reused_reference_fails_the_opening_and_the_verification(
        world, wsgi_http, settings, monkeypatch, published_without_commitment):
    """The owner renames an opened tender published before the commitment, so that the
    next tender takes its reference; after that tender's bids, a fresh tag, the new
    publication's type column retyped, and the publication step and the releases
    pointed at the old tender's entries. The opening and the verifier both read the old
    publication, which commits to nothing."""
    old = published_without_commitment(world)
    old_publication = old.steps.get(type="tender.published").ledger_index
    settings.PROCUREMENT_BID_TAGS_COMMITTED_FROM = old_publication + 1
    _with_bids(world, old)
    with _after_deadline(old):
        assert f"{old.reference}: opened" in services.advance_tenders()
    releases = dict(old.committee.values_list("position", "release_ledger_index"))
    reference = old.reference
    Tender.objects.filter(pk=old.pk).update(reference="ZZ-1999-0001")
    new = _with_bids(world, published_through_api(world))
    assert new.reference == reference
    publication = new.steps.get(type="tender.published").ledger_index
    with as_database_owner():
        Entry.objects.filter(index=publication).update(type="procurement.tender.drafted")
    Tender.objects.filter(pk=new.pk).update(bid_tag=secrets.token_hex(16))
    new.bids.update(status=Bid.Status.WITHDRAWN)
    Step.objects.filter(tender=old, type="tender.published").delete()
    Step.objects.filter(tender=new, type="tender.published").update(ledger_index=old_publication)
    _refused_opening(new)
    assert _open_without_the_check(new, monkeypatch)["bids"] == []
    for position, index in releases.items():
        CommitteeMember.objects.filter(tender=new, position=position).update(
            release_ledger_index=index)
    with pytest.raises(OpeningFailure, match="published again"):
        _verify(new, wsgi_http, tags_committed_from=old_publication + 1)


def test_review_3_an_entry_retyped_as_the_publication_is_not_read_as_it(tender):
    """The owner retypes the index column of a later entry of the tender (a release, its
    body untouched) as a publication: the opening took the newest entry of that type,
    found no commitment in its body and opened under a fresh tag."""
    Tender.objects.filter(pk=tender.pk).update(bid_tag=secrets.token_hex(16))
    tender.bids.update(status=Bid.Status.WITHDRAWN)
    with _after_deadline(tender):
        services.advance_tenders()  # closes tendering, the worker releases the keys
    later = Entry.objects.filter(subject=f"tender:{tender.reference}").order_by("-index")[0]
    assert later.type != ProcurementEvent.TENDER_PUBLISHED.value
    with as_database_owner():
        Entry.objects.filter(index=later.index).update(
            type=ProcurementEvent.TENDER_PUBLISHED.value)
    _refused_opening(tender)


def test_review_4_a_publication_without_commitment_after_the_cut_over(
        world, wsgi_http, monkeypatch, published_without_commitment):
    """Root's code leaves the commitment out of a new publication, to swap the tag later:
    on a platform whose cut-over is below it (0 for a new one) no bid is filed, the
    opening refuses, and the verifier fails an opening made anyway."""
    tender = published_without_commitment(world)
    (_, a), _, _ = world["companies"]
    r = a.bid(tender.reference, {"1": "250000"})
    assert r.status_code == 409 and "committed to" in r.json()["detail"]
    Tender.objects.filter(pk=tender.pk).update(bid_tag=secrets.token_hex(16))
    _refused_opening(tender)
    assert _open_without_the_check(tender, monkeypatch)["bids"] == []
    with pytest.raises(OpeningFailure, match="commits to no bid tag"):
        _verify(tender, wsgi_http)


@pytest.mark.parametrize("field", ["bid_tag", "bid_tag_salt"])
def test_review_5_the_admin_list_filters_on_neither_the_tag_nor_its_salt(tender, client,
                                                                       field):
    """``?bid_tag__startswith=`` on the admin's tender list read the tag out a character
    at a time (Django allows any lookup on a model's own fields)."""
    admin = get_user_model().objects.create_superuser("root-admin", "a@example.org", "x")
    client.force_login(admin)
    secret = getattr(tender, field)
    r = client.get("/admin/procurement/tender/", {f"{field}__startswith": secret[:1],
                                                   "id": tender.pk})
    assert r.status_code == 400
    assert secret not in r.content.decode()
