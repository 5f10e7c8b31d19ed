"""Pending entries and the sequencer: a hot write (a sealed bid) records its entry without
the ledger's lock, gets the log's signed promise at once, and its index right after its
commit; every guarantee of the log stays (committed iff the change is, dense indexes in
commit order, proofs, the database guard, a writer that dies after its commit)."""

import base64
import datetime as dt
import threading

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from sahab.core.errors import InvalidInput
from sahab.ledger import merkle, note, services
from sahab.ledger.models import Entry, LogState, PendingEntry
from sahab.ledger.services import Record
from sahab.procurement.events import ProcurementEvent
from tests.ledger.insider import as_database_owner

pytestmark = pytest.mark.django_db

EVENT = ProcurementEvent.BID_SUBMITTED


@pytest.fixture(autouse=True)
def _keys(sahab_home):
    from sahab.core import keys

    keys.ensure_ledger_key()
    services._signer.cache_clear()


def _enqueue(i: int) -> services.Promise:
    return services.enqueue(EVENT, "sealed-bids:t", "system", {"commitment": f"{i:064x}"})


def _leaves() -> list[bytes]:
    return [merkle.leaf_hash(bytes(b))
            for b in Entry.objects.order_by("index").values_list("body", flat=True)]


def test_a_pending_entry_is_committed_if_and_only_if_its_change_is():
    with pytest.raises(RuntimeError), transaction.atomic():
        _enqueue(1)
        raise RuntimeError("the change fails after its entry was written")
    assert not PendingEntry.objects.exists()
    assert services.integrate() == {}
    assert services.tree_size() == 0


def test_the_sequencer_gives_dense_indexes_and_the_promised_leaves():
    promises = [_enqueue(i) for i in range(5)]
    assert services.tree_size() == 0  # nothing in the tree before the sequencer
    given = services.integrate()
    assert sorted(given.values()) == list(range(5))
    for promise in promises:
        index = services.promised_index(promise)
        assert services.leaf_hash_of(index) == promise.leaf_hash
    assert services.root_at(5) == merkle.root_of(_leaves())
    assert services.integrate() == {}  # each entry once


def test_an_append_puts_the_entries_committed_before_it_first():
    """A change that waited for a pending bid's commit (the tender's lock) must come after
    it in the log, as when bids appended under the ledger's lock."""
    promise = _enqueue(1)
    after = services.append(type="test.after", subject="s", data={}, actor="system")
    assert services.promised_index(promise) == 0 and after.index == 1
    assert LogState.objects.get().size == 2
    assert services.root_at(2) == merkle.root_of(_leaves())


def test_a_promise_is_a_signed_note_that_verifies_and_cannot_pass_for_a_checkpoint():
    promise = _enqueue(1)
    signed = promise.signed()
    assert services.open_promise(signed) == promise
    forged = signed.replace(base64.b64encode(promise.leaf_hash).decode(),
                            base64.b64encode(b"\x00" * 32).decode())
    with pytest.raises(InvalidInput):
        services.open_promise(forged)
    with pytest.raises(note.NoteError):  # same key, but never a checkpoint
        note.open_checkpoint(signed.encode(), services.signer().verifier)


def test_what_became_of_a_promise_is_public(client):
    promise = _enqueue(1)
    waiting = client.get(f"/ledger/promises/{promise.pending}").json()
    assert waiting["index"] is None
    assert waiting["leaf_hash"] == base64.b64encode(promise.leaf_hash).decode()
    services.integrate()
    done = client.get(f"/ledger/promises/{promise.pending}").json()
    assert done["index"] == 0 and done["receipt_url"].endswith("/ledger/entries/0/receipt")
    missing = client.get("/ledger/promises/999")
    assert missing.status_code == 404
    assert missing["Content-Type"].startswith("application/problem+json")


def test_the_database_refuses_to_rewrite_or_drop_a_pending_entry():
    promise = _enqueue(1)
    rows = PendingEntry.objects.filter(pk=promise.pending)
    for change in (lambda: rows.update(body=b"{}"), lambda: rows.delete(),
                   lambda: rows.update(leaf_hash=b"\x00" * 32)):
        with pytest.raises(IntegrityError), transaction.atomic():
            change()
    services.integrate()
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.update(index=7)  # the index is given once
    assert services.promised_index(promise) == 0


def test_a_pending_entry_edited_by_the_database_owner_is_left_out_and_reported():
    """An insider rewrites a pending bid entry: the sequencer refuses a body that no
    longer hashes to the promised leaf, the status reports it, and the holder's promise
    shows the log broke it."""
    promise = _enqueue(1)
    with as_database_owner():
        PendingEntry.objects.filter(pk=promise.pending).update(
            body=b'{"forged":true}', at=timezone.now() - dt.timedelta(minutes=5))
    other = _enqueue(2)
    services.integrate()
    assert services.promised_index(promise) is None
    assert services.promised_index(other) == 1  # after the refusal's own entry, 0
    assert services.get_entry(0).subject == services.refusal_subject(promise.pending)
    status = services.status()
    assert [r["id"] for r in status["pending"]["refused"]] == [promise.pending]
    assert status["pending"]["refused_outside_the_sequencer"] == []
    assert not status["ok"]
    assert "hash" in services.promise_state(promise.pending)["refused"]


def test_the_workers_timer_integrates_what_a_writer_left_pending():
    """The writer committed its bid and died before integrating: the worker's timer
    integrates it within a second."""
    promise = _enqueue(1)
    services.integrate_pending()
    assert services.promised_index(promise) == 0
    assert services.status()["pending"]["count"] == 0


@pytest.mark.django_db(transaction=True)
def test_an_open_pending_write_does_not_hold_back_other_writes(sahab_home):
    """Before: a bid appended under the ledger's lock held it until its commit, and every
    write of the platform queued behind it. Now a bid's transaction, open with its entry
    written, lets another change append and commit meanwhile."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time whatever the ledger does")
    written, release, other_done = threading.Event(), threading.Event(), threading.Event()
    errors = []

    def bid():
        try:
            with transaction.atomic():
                _enqueue(1)
                written.set()
                release.wait(10)
            services.integrate()
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    def other_change():
        try:
            with transaction.atomic():
                services.append_many([Record("test.other", "s", {}, "system")])
            other_done.set()
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    bidder = threading.Thread(target=bid)
    bidder.start()
    assert written.wait(10)
    other = threading.Thread(target=other_change)
    other.start()
    assert other_done.wait(5), "the other write waited for the open bid's transaction"
    release.set()
    bidder.join(10)
    other.join(10)
    assert not errors
    assert list(Entry.objects.values_list("type", flat=True)) == [
        "test.other", EVENT.value]  # in commit order, dense
    assert services.root_at(2) == merkle.root_of(_leaves())


@pytest.mark.django_db(transaction=True)
def test_concurrent_bidders_and_appenders_keep_the_log_dense(sahab_home):
    errors = []

    def writer(n):
        try:
            for i in range(15):
                if n % 2:
                    with transaction.atomic():
                        _enqueue(n * 100 + i)
                    services.integrate()
                else:
                    with transaction.atomic():
                        services.append(type="test.sync", subject=f"w{n}", data={"i": i},
                                        actor="system")
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert list(Entry.objects.values_list("index", flat=True)) == list(range(60))
    assert not PendingEntry.objects.filter(index__isnull=True).exists()
    assert services.root_at(60) == merkle.root_of(_leaves())


def _row(body: bytes, **columns) -> PendingEntry:
    """A pending row as an insider with the application's database rights inserts it."""
    fields = {"body": body, "leaf_hash": merkle.leaf_hash(body), "type": EVENT.value,
              "subject": "sealed-bids:t", "actor": "system", "at": timezone.now()}
    return PendingEntry.objects.create(**{**fields, **columns})


def test_a_row_can_only_be_inserted_pending():
    """A row inserted with an index would jam every later append on the unique index."""
    for preset in ({"index": 0}, {"refused": "no"}):
        with pytest.raises(IntegrityError), transaction.atomic():
            _row(b"{}", **preset)
    services.append(type="test.after", subject="s", data={}, actor="system")


def test_rows_the_platform_did_not_write_are_refused_for_good_and_never_block_the_queue():
    """Rows inserted or edited in the database are refused once, set aside, and the
    entries behind them are integrated; none of them reaches the tree."""
    real = _enqueue(1)
    at = timezone.now().replace(microsecond=0)
    entry = services.encode_entry(Record(EVENT.value, "sealed-bids:t", {}, "system"), at)
    forged = [
        _row(b"x" * (services.MAX_ENTRY_BYTES + 1)),  # would break the entry bundles
        _row(b'{"not": "an entry"}'),
        _row(entry.replace(b",", b", ", 1), at=at),  # not the canonical bytes
        _row(entry, at=at, subject="sealed-bids:other"),  # columns that lie about the body
    ]
    last = _enqueue(2)
    given = services.integrate(batch=2)  # batches full of refused rows move on
    assert sorted(given) == [real.pending, last.pending]
    # each refusal is an entry of the log, between them
    assert sorted(given.values()) == [0, 5] and services.tree_size() == 6
    assert [services.get_entry(i).subject for i in range(1, 5)] == \
        [services.refusal_subject(row.pk) for row in forged]
    refused = {row.pk: row.refused for row in PendingEntry.objects.exclude(refused="")}
    assert set(refused) == {row.pk for row in forged}
    assert "larger" in refused[forged[0].pk] and "columns" in refused[forged[3].pk]
    status = services.status()
    assert len(status["pending"]["refused"]) == 4 and not status["ok"]
    assert services.integrate() == {}  # refused once, never looked at again
    with pytest.raises(IntegrityError), transaction.atomic():
        PendingEntry.objects.filter(pk=forged[0].pk).update(refused="", index=9)


def test_each_row_of_a_batch_with_gaps_keeps_the_index_of_its_own_leaf():
    """The sequencer writes the indexes of a batch by runs of rows whose ids follow one
    another; a rolled-back row and a refused one, between real ones, start new runs."""
    promises = [_enqueue(1), _enqueue(2)]
    with pytest.raises(RuntimeError), transaction.atomic():
        _enqueue(3)
        raise RuntimeError("a bid refused after its entry was written: a gap in the ids")
    promises.append(_enqueue(4))
    _row(b'{"not": "an entry"}')  # refused: takes no index
    promises += [_enqueue(i) for i in range(5, 9)]
    given = services.integrate()
    assert sorted(given.values()) == [i for i in range(len(promises) + 1) if i != 3]
    rows = PendingEntry.objects.filter(index__isnull=False)
    assert {row.pk: row.index for row in rows} == given
    for promise in promises:
        assert services.leaf_hash_of(services.promised_index(promise)) == promise.leaf_hash


def test_a_promise_older_than_the_merge_delay_makes_the_status_fail():
    """The worker stopped: an entry waits beyond the delay the promise commits to."""
    at = (timezone.now() - dt.timedelta(seconds=services.MAX_MERGE_DELAY_SECONDS + 5)) \
        .replace(microsecond=0)
    _row(services.encode_entry(Record(EVENT.value, "sealed-bids:t", {}, "system"), at), at=at)
    status = services.status()
    assert status["pending"]["count"] == 1 and status["pending"]["late"] and not status["ok"]
    services.integrate_pending()
    assert services.status()["pending"]["late"] is False
