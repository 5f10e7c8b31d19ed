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


def _plant_index(pending: int, key: int) -> None:
    """What a database writer did (no trigger lifted): insert a node whose hash is an
    honest pending row's leaf at a key the tree never reads, then give the row that key
    as its index, which the guard took for the entry's own."""
    from sahab.ledger.models import Node

    row = PendingEntry.objects.get(pk=pending)
    Node.objects.create(key=key, hash=bytes(row.leaf_hash))
    PendingEntry.objects.filter(pk=pending).update(index=key)


def test_a_rivals_pending_bid_given_a_planted_index_is_still_logged_and_opened(world):
    """A review found that a database writer could drop any pending entry unseen: a node
    planted at key -1 with a rival's leaf hash, the rival's pending row given index -1;
    the sequencer passed it over, the bid's row took -1 too, the status stayed ok and the
    opening rejected the bid as tampered. Now the database gives a pending row an index
    only within the log, and the planted node is reported."""
    from django.db import IntegrityError, transaction

    tender = published_through_api(world)
    (_, atlas), (_, carthage), _ = world["companies"]
    assert atlas.bid(tender.reference, {"1": "250000"}).status_code == 201
    assert carthage.bid(tender.reference, {"1": "240000"}).status_code == 201
    rival = Bid.objects.get(tender=tender, company__name__icontains="carthage")
    assert rival.ledger_index is None  # still pending
    with pytest.raises(IntegrityError), transaction.atomic():
        _plant_index(rival.ledger_pending, -1)
    with pytest.raises(IntegrityError), transaction.atomic():
        _plant_index(rival.ledger_pending, ledger.tree_size() + 1000)  # beyond the log
    from sahab.ledger.models import Node

    Node.objects.create(key=-1, hash=b"\0" * 32)  # the plant alone: reported
    assert ledger.status()["nodes_beyond_the_tree"] == 1 and not ledger.status()["ok"]
    sequence_bids()
    rival.refresh_from_db()
    assert rival.ledger_index is not None and rival.ledger_index >= 0
    tender = Tender.objects.get(pk=tender.pk)
    with time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1)):
        services.advance_tenders()
    rival.refresh_from_db()
    assert rival.status == Bid.Status.OPENED, rival.problem


def test_a_withdrawal_given_a_planted_index_still_counts(rivals):
    """The same plant on a withdrawal (which no row holds) had the bid its company
    withdrew opened, and nothing was reported."""
    from django.db import IntegrityError, transaction

    from tests.procurement.bidding import withdraw_bid

    tender, carthage, rival = rivals
    withdraw_bid(carthage.user, rival)
    withdrawal = PendingEntry.objects.get(index__isnull=True, refused="",
                                          type="procurement.bid.withdrawn")
    with pytest.raises(IntegrityError), transaction.atomic():
        _plant_index(withdrawal.pk, -7)
    sequence_bids()
    with time_machine.travel(tender.submission_deadline + dt.timedelta(seconds=1)):
        services.advance_tenders()
    rival.refresh_from_db()
    assert rival.status == Bid.Status.WITHDRAWN


def test_an_honest_bid_marked_refused_by_a_writer_is_reported_as_such(world, rivals):
    """A writer set the platform's own wording of a refusal on a rival's honest pending
    row (the guard lets a refusal be set once): the bid was left out as tampered and the
    status read as if a forgery had been blocked. Every refusal of the sequencer is now
    an entry of the log, so the status names a refused row without one as refused
    outside the sequencer, and is not ok."""
    tender, _, _ = rivals
    _, _, (_, medina) = world["companies"]
    assert medina.bid(tender.reference, {"1": "230000"}).status_code == 201
    honest = Bid.objects.get(tender=tender, company__name__icontains="medina")
    assert honest.ledger_index is None  # still pending
    PendingEntry.objects.filter(pk=honest.ledger_pending).update(
        refused="it does not carry the platform's MAC: the platform did not write it")
    forged = _forged_pending("procurement.bid.withdrawn", f"sealed-bids:{tender.bid_tag}",
                             {"commitment": honest.commitment})
    sequence_bids()  # refuses the forged row itself, and logs that refusal
    status = ledger.status()
    assert status["pending"]["refused_outside_the_sequencer"] == [honest.ledger_pending]
    assert forged.pk not in status["pending"]["refused_outside_the_sequencer"]
    assert not status["ok"]
