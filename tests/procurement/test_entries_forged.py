"""A bid withdrawn by a database writer, replayed exactly.

The writer read a tender's secret bid tag and a rival's commitment (both in the
database) and inserted one pending row, ``procurement.bid.withdrawn`` of the rival's
bid, in the canonical form ``enqueue`` writes (the format is public). The sequencer
integrated it as any well-formed entry and the opening left the rival's bid unopened, as
withdrawn by the ledger. Now the row lacks the platform's MAC: the sequencer refuses it
and the rival's bid is opened (tests/ledger/test_entry_macs.py has the ledger's side)."""

import datetime as dt
import json

import pytest
import time_machine

from sahab.ledger import merkle
from sahab.ledger import services as ledger
from sahab.ledger.models import PendingEntry
from sahab.procurement import services
from sahab.procurement.models import OPENING_REPORT, Bid, Tender
from tests.procurement.bidding import sequence_bids
from tests.procurement.conftest import published_through_api


def _forged_pending(type_: str, subject: str, data: dict) -> PendingEntry:
    """What the writer inserts: the entry's canonical bytes, as ``enqueue`` writes them."""
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    body = ledger.encode_entry(ledger.Record(type_, subject, data, "system"), at)
    return PendingEntry.objects.create(body=body, leaf_hash=merkle.leaf_hash(body),
                                       type=type_, subject=subject, actor="system", at=at)


@pytest.fixture
def rivals(world):
    """A tender with Atlas's and Carthage's bids on the ledger, and Carthage's bid: the
    rival an insider would push out."""
    tender = published_through_api(world)
    (_, atlas), (_, carthage), _ = world["companies"]
    assert atlas.bid(tender.reference, {"1": "250000"}).status_code == 201
    assert carthage.bid(tender.reference, {"1": "240000"}).status_code == 201
    sequence_bids()
    rival = Bid.objects.get(tender=tender, company__name__icontains="carthage")
    return Tender.objects.get(pk=tender.pk), carthage, rival


def test_a_withdrawal_forged_in_the_database_does_not_unseat_a_rivals_bid(rivals):
    tender, _, rival = rivals
    forged = _forged_pending("procurement.bid.withdrawn", f"sealed-bids:{tender.bid_tag}",
                             {"commitment": rival.commitment})
    ledger.integrate_pending()
    forged.refresh_from_db()
    assert forged.index is None and "MAC" in forged.refused
    with time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1)):
        services.advance_tenders()
    report = json.loads(bytes(tender.documents.get(name=OPENING_REPORT).content))
    assert rival.commitment in {b["commitment"] for b in report["bids"]}
    rival.refresh_from_db()
    assert rival.status == Bid.Status.OPENED


def test_an_amendment_planted_beyond_the_log_does_not_misdirect_a_confirmation(
        world, published_tender):
    """A review of the MACs found services acting on rows the log never held: a plain
    INSERT in the entries' table at an index beyond the log's size (10**12), where the
    signer never reads, of ``procurement.tender.amended`` no. 2 asking to confirm. The
    company confirmed after the real amendment no. 1; its confirmation named no. 2, so at
    the opening (which reads proven entries only) no. 1 was unconfirmed and the bid was
    left sealed. Now services read entries below the log's size only, and the status
    reports the planted row."""
    from sahab.ledger.models import Entry
    from tests.procurement.bidding import submit_bid
    from tests.procurement.test_bid_confirmation import DAY, amend_documents, open_at

    tender = published_tender
    deadline = tender.submission_deadline
    atlas = world["companies"][0][1].user
    bid = submit_bid(atlas, tender, {"1": "100000"}, now=deadline - 14 * DAY)
    amend_documents(world, tender, deadline - 12 * DAY)
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    record = ledger.Record("procurement.tender.amended", f"tender:{tender.reference}",
                           {"amendment": 2, "bids_to_confirm": True}, "user:1")
    Entry.objects.create(index=10**12, body=ledger.encode_entry(record, at),
                         type=record.type, subject=record.subject, actor="user:1", at=at)
    confirmed = services.confirm_bid(actor=atlas, bid=bid, now=deadline - 11 * DAY)
    assert confirmed.confirm_amendment is None
    status = ledger.status()
    assert status["rows_beyond_the_log"] == 1 and not status["ok"]
    open_at(tender)
    bid.refresh_from_db()
    assert bid.status == Bid.Status.OPENED


def test_a_copy_of_a_withdrawn_bids_pending_row_does_not_bring_it_back(rivals):
    """A database writer copied a real pending row (same bytes, same MAC): a bid's
    ``bid.submitted``, inserted after the bid's withdrawal. The sequencer logged it
    again and, before the rule below, the opening opened a bid its company had
    withdrawn. Now a pending row's MAC covers its nonce, unique in the table: the exact
    copy is refused by the database, and one with another nonce (or none) by the
    sequencer. An owner who lifts the guard and hands the real row back to the
    sequencer still gets it logged again; the platform takes a commitment once, so that
    second submission counts for nothing, at the opening as in ``verify-opening``."""
    import secrets

    from django.db import IntegrityError, transaction

    from tests.ledger.insider import as_database_owner
    from tests.procurement.bidding import withdraw_bid

    tender, carthage, rival = rivals
    withdraw_bid(carthage.user, rival)
    ledger.integrate_pending()
    real = PendingEntry.objects.get(pk=rival.ledger_pending)
    copy = {"body": real.body, "leaf_hash": real.leaf_hash, "type": real.type,
            "subject": real.subject, "actor": real.actor, "at": real.at, "mac": real.mac}
    with pytest.raises(IntegrityError), transaction.atomic():
        PendingEntry.objects.create(**copy, nonce=real.nonce)
    others = [PendingEntry.objects.create(**copy, nonce=nonce)
              for nonce in (secrets.token_bytes(16), None)]
    ledger.integrate_pending()
    for other in others:
        other.refresh_from_db()
        assert other.index is None and "MAC" in other.refused
    assert PendingEntry.objects.filter(leaf_hash=real.leaf_hash, index__isnull=False) \
        .count() == 1
    with as_database_owner():  # the owner's replay: the real row, pending again
        PendingEntry.objects.filter(pk=real.pk).update(index=None)
    ledger.integrate_pending()
    assert ledger.logged_entries().filter(subject=real.subject, type=real.type,
                                          body=real.body).count() == 2
    with time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1)):
        services.advance_tenders()
    report = json.loads(bytes(tender.documents.get(name=OPENING_REPORT).content))
    assert rival.commitment not in {b["commitment"] for b in report["bids"]}
    assert rival.commitment not in {c["commitment"] for c in report["commitments"]}
    rival.refresh_from_db()
    assert rival.status == Bid.Status.WITHDRAWN


def test_a_signed_bid_entry_whose_subject_column_was_edited_still_counts(rivals):
    """The review's third finding (older than the MACs): the opening chose a tender's bid
    entries by the ``subject`` column, and the signer checks bodies, not columns. A
    database owner who set the column of a rival's signed ``bid.submitted`` to another
    subject hid it: the opening left the rival's bid out as tampered (``verify-opening``
    caught it afterwards). Now the bid rows' own indexes are read too, and the proven
    body decides."""
    from sahab.ledger.models import Entry
    from tests.ledger.insider import as_database_owner

    tender, _, rival = rivals
    with as_database_owner():
        Entry.objects.filter(index=rival.ledger_index).update(subject="sealed-bids:elsewhere")
    with time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1)):
        services.advance_tenders()
    rival.refresh_from_db()
    assert rival.status == Bid.Status.OPENED, rival.problem
