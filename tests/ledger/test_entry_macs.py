"""Only the platform writes the log: every entry carries its MAC.

A database writer read the bid tag and a rival's commitment in the database and
inserted one well-formed pending row, ``procurement.bid.withdrawn`` of the rival's bid;
the sequencer integrated it like any entry the platform wrote (its checks were on the
row's form, which the writer can reproduce: the entry format is public). The same writer
could append an entry straight to the log's table, recompute the tree and the right
edge, and the signer signed it. Now entries carry an HMAC under a key derived from the
log's signing key, which the database does not hold: the sequencer refuses a row without
it, and the signer signs no entry without it (bound to the entry's index: a copy of a
real entry elsewhere is refused too), and raises the alarm naming the entry."""

import datetime as dt
import json
import secrets

import pytest

from sahab.ledger import merkle, services, signing
from sahab.ledger.models import Entry, LogState, Node, PendingEntry, node_key
from sahab.ledger.services import Record
from tests.ledger.insider import as_database_owner


@pytest.fixture
def log(sahab_home):
    from sahab.core import keys

    keys.ensure_ledger_key()
    services._signer.cache_clear()
    services.append_many([Record("test.award", f"award:{i}", {"value": i}, "user:3")
                          for i in range(5)])
    assert signing.sign_latest().size == 5


def _insert_pending(body: bytes, mac: bytes | None = None,
                    nonce: bytes | None = None) -> PendingEntry:
    """What the writer inserts: the entry's canonical bytes, as ``enqueue`` writes them."""
    import json

    entry = json.loads(body)
    at = dt.datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
    return PendingEntry.objects.create(body=body, leaf_hash=merkle.leaf_hash(body),
                                       type=entry["type"], subject=entry["subject"],
                                       actor=entry["actor"], at=at, mac=mac, nonce=nonce)


def _forged_body(subject: str = "sealed-bids:0f1e", data: dict | None = None) -> bytes:
    at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return services.encode_entry(Record("procurement.bid.withdrawn", subject,
                                        data or {"commitment": "ab" * 32}, "system"), at)


def _append_in_the_table(body: bytes, mac: bytes | None) -> int:
    """The writer appends straight to the log's table, with the node and the right edge
    that make the tree consistent with it (what a careful forger does)."""
    state = LogState.objects.get()
    tree = merkle.CompactRange.from_bytes(state.size, bytes(state.frontier))
    index = tree.size
    with as_database_owner():
        Entry.objects.create(index=index, body=body, type="procurement.bid.withdrawn",
                             subject="sealed-bids:0f1e", actor="system",
                             at=dt.datetime.now(dt.UTC), mac=mac)
        Node.objects.bulk_create(Node(key=node_key(level, i), hash=h)
                                 for level, i, h in tree.append(merkle.leaf_hash(body)))
        LogState.objects.update(size=tree.size, frontier=tree.to_bytes())
    return index


def _signing_refused_at(index: int) -> None:
    with pytest.raises(signing.SigningRefused, match="MAC") as refused:
        signing.sign_latest()
    assert refused.value.first_bad_index == index
    assert signing.alarm()["active"]
    assert services.checkpoint_if_grown() is None  # and keeps serving the last good one


@pytest.mark.django_db
def test_a_pending_row_inserted_in_the_database_is_refused_not_logged(log):
    row = _insert_pending(_forged_body())
    services.integrate_pending()
    row.refresh_from_db()
    assert row.index is None and "MAC" in row.refused
    refusal = services.get_entry(5)  # the log says it refused it, and why
    assert services.tree_size() == 6 and refusal.type == "ledger.pending.refused"
    assert json.loads(bytes(refusal.body))["data"]["pending"] == row.pk
    state = services.pending_state()
    assert {"id": row.pk, "refused": row.refused} in state["refused"]
    assert state["refused_outside_the_sequencer"] == []


@pytest.mark.django_db
def test_a_real_rows_mac_on_another_body_is_refused(log):
    from sahab.procurement.events import ProcurementEvent

    promise = services.enqueue(ProcurementEvent.BID_WITHDRAWN, "sealed-bids:0f1e", "system",
                               {"commitment": "cd" * 32})
    real = PendingEntry.objects.get(pk=promise.pending)
    row = _insert_pending(_forged_body(), bytes(real.mac), secrets.token_bytes(16))
    services.integrate_pending()
    row.refresh_from_db()
    assert row.index is None and "MAC" in row.refused
    assert services.promised_index(promise.pending) is not None  # the real one is logged


@pytest.mark.django_db
def test_a_copy_of_a_real_pending_row_is_refused_whatever_its_nonce(log):
    """A replay, as a review made it: the same bytes and MAC as a real pending row,
    inserted again; the sequencer logged the entry a second time. The MAC now covers
    the row's nonce, which the table holds once: the exact copy is refused by the
    database, a copy under another nonce or none by the sequencer, before and after the
    real row is integrated."""
    from django.db import IntegrityError, transaction

    from sahab.procurement.events import ProcurementEvent

    promise = services.enqueue(ProcurementEvent.BID_SUBMITTED, "sealed-bids:0f1e", "system",
                               {"commitment": "cd" * 32, "replaces": []})
    real = PendingEntry.objects.get(pk=promise.pending)
    copies = []
    for when in (b"before", b"after"):
        with pytest.raises(IntegrityError), transaction.atomic():
            _insert_pending(bytes(real.body), bytes(real.mac), bytes(real.nonce))
        copies += [_insert_pending(bytes(real.body), bytes(real.mac), nonce)
                   for nonce in (secrets.token_bytes(16), None, when)]
        services.integrate_pending()
    for copy in copies:
        copy.refresh_from_db()
        assert copy.index is None and "MAC" in copy.refused
    assert services.promised_index(promise.pending) == 5
    assert services.tree_size() == 6 + len(copies)  # each refusal is an entry


@pytest.mark.django_db
def test_a_pending_rows_nonce_is_set_once_with_the_row(log):
    """Else the application's connection could swap a waiting row's nonce (which would
    have it refused: a bid lost) or free a nonce for a copy."""
    from django.db import IntegrityError, transaction

    from sahab.procurement.events import ProcurementEvent

    promise = services.enqueue(ProcurementEvent.BID_WITHDRAWN, "sealed-bids:0f1e", "system",
                               {"commitment": "cd" * 32})
    for nonce in (secrets.token_bytes(16), None):
        with pytest.raises(IntegrityError), transaction.atomic():
            PendingEntry.objects.filter(pk=promise.pending).update(nonce=nonce)
    services.integrate_pending()
    assert services.promised_index(promise.pending) == 5


@pytest.mark.django_db
def test_the_platforms_own_entries_carry_a_mac_bound_to_their_index(log):
    from sahab.procurement.events import ProcurementEvent

    services.enqueue(ProcurementEvent.BID_WITHDRAWN, "sealed-bids:0f1e", "system",
                     {"commitment": "cd" * 32})
    services.integrate_pending()
    for entry in Entry.objects.all():
        assert bytes(entry.mac) == services.entry_mac(bytes(entry.body), entry.index)
    assert signing.sign_latest().size == 6


@pytest.mark.django_db
def test_an_entry_appended_in_the_table_is_not_signed(log):
    index = _append_in_the_table(_forged_body(), None)
    _signing_refused_at(index)


@pytest.mark.django_db
def test_a_mac_made_up_by_the_writer_is_not_signed(log):
    body = _forged_body()
    index = _append_in_the_table(body, b"\0" * 32)
    _signing_refused_at(index)


@pytest.mark.django_db
def test_a_real_entry_copied_at_another_index_is_not_signed(log):
    """A replay: the same bytes and MAC as entry 3, appended again as entry 5."""
    real = Entry.objects.get(index=3)
    index = _append_in_the_table(bytes(real.body), bytes(real.mac))
    _signing_refused_at(index)


@pytest.mark.django_db
def test_entries_logged_before_macs_are_signed_below_the_upgrades_index(log, settings):
    """An upgraded platform's entries from before the upgrade carry no MAC: below
    ``LEDGER_MACS_FROM`` (the log's size at the upgrade) they are signed as before."""
    index = _append_in_the_table(_forged_body(), None)
    settings.LEDGER_MACS_FROM = index + 1
    assert signing.sign_latest().size == index + 1
    settings.LEDGER_MACS_FROM = index
    _append_in_the_table(_forged_body(), None)
    with pytest.raises(signing.SigningRefused, match="MAC"):
        signing.sign_latest()


@pytest.mark.django_db
def test_a_pending_rows_mac_is_set_once_with_the_row(log):
    """The application's connection cannot swap a row's MAC when it sets its index (the
    guard of migration 0006; the database owner can, and the sequencer then refuses)."""
    from django.db import IntegrityError, transaction

    row = _insert_pending(_forged_body())
    with pytest.raises(IntegrityError), transaction.atomic():
        PendingEntry.objects.filter(pk=row.pk).update(mac=b"\1" * 32, index=99)


@pytest.mark.django_db
def test_a_row_beyond_the_logs_size_is_no_entry_and_the_status_says_so(log):
    """A plain INSERT at an index the log has not reached: the signer, which reads the
    tree up to its size, never sees it; services and pages must not either."""
    body = _forged_body()
    Entry.objects.create(index=10**12, body=body, type="procurement.bid.withdrawn",
                         subject="sealed-bids:0f1e", actor="system",
                         at=dt.datetime.now(dt.UTC))
    assert not services.entries_about("sealed-bids:0f1e").exists()
    with pytest.raises(services.NotFound):
        services.get_entry(10**12)
    status = services.status()
    assert status["rows_beyond_the_log"] == 1 and not status["ok"]


@pytest.mark.django_db
def test_a_pending_row_takes_no_index_but_its_own_leafs(log):
    """A review found that the application's connection could set ``index = -1`` on a
    bid's pending row before the sequencer came: the guard let an index be set once,
    any index; the sequencer passed the row over, the bid was never logged, and the
    status stayed ok. Now the database takes an index only where the tree's leaf is the
    row's own."""
    from django.db import IntegrityError, transaction

    from sahab.procurement.events import ProcurementEvent

    promise = services.enqueue(ProcurementEvent.BID_SUBMITTED, "sealed-bids:0f1e", "system",
                               {"commitment": "cd" * 32, "replaces": []})
    for index in (-1, 3, 10**12):  # nowhere, another entry's leaf, beyond the log
        with pytest.raises(IntegrityError), transaction.atomic():
            PendingEntry.objects.filter(pk=promise.pending).update(index=index)
    services.integrate_pending()
    assert services.promised_index(promise.pending) == 5


@pytest.mark.django_db
def test_an_entry_planted_below_index_zero_is_no_entry(log):
    """A review found a plain INSERT at index -1 (no MAC, no node) served as an entry of
    the log: neither below-the-size reads nor the rows-beyond count looked below 0, and
    an opening that proved it failed for good. Now it is no entry, and reported."""
    body = _forged_body()
    Entry.objects.create(index=-1, body=body, type="procurement.bid.withdrawn",
                         subject="sealed-bids:0f1e", actor="system",
                         at=dt.datetime.now(dt.UTC))
    assert not services.entries_about("sealed-bids:0f1e").exists()
    with pytest.raises(services.NotFound):
        services.get_entry(-1)
    status = services.status()
    assert status["rows_beyond_the_log"] == 1 and not status["ok"]


@pytest.mark.django_db
def test_a_pending_row_nested_past_the_parser_is_refused_and_appends_go_on(log):
    """One pending row whose body nests deeper than the JSON parser goes raised
    ``RecursionError`` in the sequencer, and every append (each integrates the pending
    rows first) failed, for good. Now the row is refused like any body that is no JSON."""
    row = _insert_pending_raw(b"[" * 30000 + b"]" * 30000)
    services.append(type="test.after", subject="s", data={}, actor="system")
    row.refresh_from_db()
    assert "not JSON" in row.refused
    assert services.tree_size() == 7  # the refusal's entry, then the append


@pytest.mark.django_db
def test_a_node_planted_at_the_next_key_is_reported(log):
    """A node inserted where the next append writes makes every append fail on the
    nodes' primary key; the status now names such rows."""
    from django.db import IntegrityError, transaction

    Node.objects.create(key=services.tree_size(), hash=b"\0" * 32)
    with pytest.raises(IntegrityError), transaction.atomic():
        services.append(type="test.after", subject="s", data={}, actor="system")
    status = services.status()
    assert status["nodes_beyond_the_tree"] == 1 and not status["ok"]


def _insert_pending_raw(body: bytes) -> PendingEntry:
    return PendingEntry.objects.create(body=body, leaf_hash=merkle.leaf_hash(body), type="x",
                                       subject="x", actor="x", at=dt.datetime.now(dt.UTC))
