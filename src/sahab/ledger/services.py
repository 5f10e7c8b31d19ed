"""Every write to the ledger, and the proofs it serves.

Entries reach the log in one of two ways, both committed if and only if the change
they record is:

* ``record``/``append`` inside the change's transaction, as its last step: the append
  lock (the ``LogState`` row) is held until the change's commit and the entry has its
  index at once. Simple, but every such write on the platform waits for the previous
  one's commit.
* ``enqueue`` (the hot paths: sealed bids): the entry is written to the pending table in
  the change's transaction, which takes no global lock, and the caller gets a signed
  promise at once (``Promise``: the leaf hash and time, signed by the log's key). The
  sequencer (``integrate``) then gives the committed pending entries their indexes in
  batches, in a short transaction of its own: the caller runs it right after its
  commit, and the worker every second for entries whose writer died in between.

Indexes stay dense and follow commit order where it matters: every append first
integrates the pending entries already committed, so an entry written after a change
that committed earlier (because it waited for that change's row lock) always comes
after it in the log.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import itertools
import json
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import rfc8785
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import IntegrityError, connection, connections, router, transaction
from django.db.models import Count, Exists, F, Model, OuterRef, Q, Subquery
from django.utils import timezone

from sahab.core import dbrouting
from sahab.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sahab.core.prebuilt import Insert
from sahab.ledger import merkle, note
from sahab.ledger.errors import LedgerError
from sahab.ledger.events import LedgerOwnEvent
from sahab.ledger.models import (
    Checkpoint,
    Cosignature,
    Entry,
    LogState,
    Node,
    PendingEntry,
    Witness,
    node_key,
)
from sahab.ledger.vocabulary import LedgerEvent

log = logging.getLogger(__name__)

MAX_ENTRY_BYTES = 65535  # entry bundles prefix each entry with a uint16 length
TILE_WIDTH = 256
TILE_HEIGHT = 8


@dataclass(frozen=True)
class Record:
    """What a service asks the ledger to record."""

    type: str
    subject: str
    data: dict[str, Any]
    actor: str


@dataclass(frozen=True)
class Appended:
    index: int
    leaf_hash: bytes


# --- appending -------------------------------------------------------------------------

def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def encode_entry(record: Record, at: dt.datetime) -> bytes:
    """The entry's canonical bytes (RFC 8785 JSON), checked for type and size."""
    for name in ("type", "subject", "actor"):
        value = getattr(record, name)
        if not isinstance(value, str) or not value or len(value) > 300:
            raise InvalidInput(LedgerError.ENTRY_FIELD_INVALID, name=name)
    if not isinstance(record.data, dict):
        raise InvalidInput(LedgerError.ENTRY_DATA_NOT_OBJECT)
    try:
        body = rfc8785.dumps({"type": record.type, "at": _rfc3339(at), "actor": record.actor,
                              "subject": record.subject, "data": record.data})
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidInput(LedgerError.ENTRY_DATA_NOT_JSON, error=str(exc)) from None
    if len(body) > MAX_ENTRY_BYTES:
        raise InvalidInput(LedgerError.ENTRY_TOO_LARGE)
    return body


def append(*, type: str, subject: str, data: dict[str, Any], actor: str) -> Appended:
    """Append one entry; call it last in the transaction of the change it records.

    Pillars call :func:`record` with an event of their vocabulary instead."""
    return append_many([Record(type, subject, data, actor)])[0]


def record(event: LedgerEvent, subject: str, actor, data: dict[str, Any] | None = None,
           **fields: Any) -> Appended:
    """Record one event of a pillar's vocabulary (``<pillar>/events.py``) about
    ``subject``, by ``actor`` (a user, ``None``/the system actor, or an id string); call
    it last in the transaction of the change it records.

    An event outside the vocabularies, or a data field its member does not declare, is a
    programming error, refused before anything is written."""
    return append_many([_event_record(event, subject, actor, data, fields)])[0]


def _event_record(event: LedgerEvent, subject: str, actor, data: dict[str, Any] | None,
                  fields: dict[str, Any]) -> Record:
    """The record of one event, checked against its pillar's vocabulary."""
    if not isinstance(event, LedgerEvent):
        raise TypeError(f"{event!r} is not an event of a pillar's ledger vocabulary")
    data = {**(data or {}), **fields}
    undeclared = sorted(name for name in data if not event.allows(name))
    if undeclared:
        raise TypeError(f"{event.value} declares no field {', '.join(undeclared)} "
                        f"(add it to {type(event).__module__})")
    if not isinstance(actor, str):
        from sahab.directory.selectors import actor_id

        actor = actor_id(actor)
    return Record(event.value, subject, data, actor)


def append_many(records: Sequence[Record]) -> list[Appended]:
    """Append several entries under one lock (the fast path for batches), after the
    pending entries already committed."""
    if not records:
        return []
    with transaction.atomic():
        growth = _Growth(_locked_state())
        growth.integrate_pending()
        at = timezone.now()
        appended = [growth.add(encode_entry(record, at), record.type, record.subject,
                               record.actor, at) for record in records]
        growth.write()
    _log_appended(appended)
    return appended


class _Growth:
    """The entries and nodes one locked transaction adds to the tree."""

    def __init__(self, state: LogState):
        self.frontier = merkle.CompactRange.from_bytes(state.size, bytes(state.frontier))
        # rows as ``store_rows`` takes them: (index, body, type, subject, actor, at, mac)
        # and (key, hash)
        self.entries: list[tuple] = []
        self.nodes: list[tuple[int, bytes]] = []
        self.integrated: list[PendingEntry] = []
        self.refused: list[PendingEntry] = []

    def add(self, body: bytes, type: str, subject: str, actor: str,
            at: dt.datetime) -> Appended:
        index, leaf = self.frontier.size, merkle.leaf_hash(body)
        self.nodes.extend((node_key(level, i), h)
                          for level, i, h in self.frontier.append(leaf))
        self.entries.append((index, body, type, subject, actor, at, entry_mac(body, index)))
        return Appended(index, leaf)

    def integrate_pending(self, limit: int | None = None) -> None:
        """Give the committed pending entries, oldest first, the next indexes. A row that
        is not an entry the platform wrote (edited or inserted in the database) is
        refused for good instead: never integrated, reported by the status, and the
        holder of its promise can show that the log broke it."""
        waiting = PendingEntry.objects.filter(index__isnull=True, refused="").order_by("id")
        for row in waiting[:limit] if limit else waiting:
            body = bytes(row.body)
            problem = _not_an_entry(row, body) or not_the_platforms(
                body, row.mac, index=self.frontier.size, pending=True, nonce=row.nonce)
            if problem:
                log.error("pending ledger entry %d refused: %s", row.pk, problem)
                row.refused = problem
                self.refused.append(row)
                self._log_refusal(row)
                continue
            row.index = self.add(body, row.type, row.subject, row.actor, row.at).index
            self.integrated.append(row)

    def _log_refusal(self, row: PendingEntry) -> None:
        """Every refusal is an entry of the log, so that a row refused by anyone else (a
        database writer setting ``refused`` on an honest row) is one without its entry,
        which the status reports."""
        record = _event_record(LedgerOwnEvent.PENDING_REFUSED, refusal_subject(row.pk),
                               "system", {"pending": row.pk,
                                          "leaf_hash": _b64(bytes(row.leaf_hash)),
                                          "reason": row.refused}, {})
        at = timezone.now()
        self.add(encode_entry(record, at), record.type, record.subject, record.actor, at)

    def write(self) -> None:
        if self.refused:
            PendingEntry.objects.bulk_update(self.refused, ["refused"])
        if not self.entries:
            return
        store_rows(self.entries, self.nodes)
        # the size first: the database gives a pending row only an index below it
        LogState.objects.filter(pk=1).update(size=self.frontier.size,
                                             frontier=self.frontier.to_bytes())
        _mark_integrated(self.integrated)
        if self.integrated:
            integrated = [row.pk for row in self.integrated]
            for holder in _holders.values():
                if holder.read_in_index_order:
                    fill_indexes(holder.model, entries=integrated)


def refusal_subject(pending: int) -> str:
    """The subject of the sequencer's entry refusing pending row ``pending``."""
    return f"ledger-pending:{pending}"


def store_rows(entries: Sequence[tuple], nodes: Sequence[tuple[int, bytes]]) -> None:
    """Insert ledger rows in the current transaction: ``entries`` as (index, body, type,
    subject, actor, at, mac), ``nodes`` as (key, hash). PostgreSQL takes them by COPY: a
    multi-row INSERT of a batch of 1,000 entries spent two thirds of ``append_many`` in
    building and parsing its 30,000 parameters. The triggers of migration
    ``0003_append_only`` see a COPY as they see an INSERT."""
    if connection.vendor != "postgresql":
        Entry.objects.bulk_create(
            Entry(index=index, body=body, type=type, subject=subject, actor=actor, at=at,
                  mac=mac)
            for index, body, type, subject, actor, at, mac in entries)
        Node.objects.bulk_create(Node(key=key, hash=h) for key, h in nodes)
        return
    # Django does not wrap a COPY's errors (a lost primary must still read as one); and
    # COPY's text format writes bytea as hex behind an escaped backslash, which a session
    # with standard_conforming_strings off (a role's setting) would store as text
    with connection.wrap_database_errors, connection.cursor() as cursor:
        cursor.execute("SET LOCAL standard_conforming_strings = on")
        with cursor.copy(f'COPY "{Entry._meta.db_table}" '
                         "(index, body, type, subject, actor, at, mac) FROM STDIN") as copy:
            for row in entries:
                copy.write_row(row)
        with cursor.copy(f'COPY "{Node._meta.db_table}" (key, hash) FROM STDIN') as copy:
            for row in nodes:
                copy.write_row(row)


def _mark_integrated(rows: list[PendingEntry]) -> None:
    """Write on each integrated pending row the index it was given: one UPDATE per run of
    rows whose index and id differ by the same number, usually one for a whole batch
    (the rows' ids follow one another as their indexes do; a gap is a rolled-back or a
    refused row). Django's ``bulk_update``, one CASE branch per row, took half of the
    sequencer's time for a batch of 5,000. The ids are named, never a range: a row
    committed since the batch was read has no index yet."""
    for delta, run in itertools.groupby(rows, key=lambda row: row.index - row.pk):
        PendingEntry.objects.filter(pk__in=[row.pk for row in run]) \
            .update(index=F("id") + delta)


def _not_an_entry(row: PendingEntry, body: bytes) -> str:
    """Why a pending row is not an entry ``enqueue`` wrote ("" when it is one): the
    bytes ``encode_entry`` makes, hashing to the promised leaf, with the same columns."""
    if len(body) > MAX_ENTRY_BYTES:
        return "its body is larger than an entry may be"
    if merkle.leaf_hash(body) != bytes(row.leaf_hash):
        return "its body does not hash to its promised leaf"
    try:
        entry = json.loads(body)
        canonical = rfc8785.dumps(entry)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError):
        # RecursionError: a body nested deeper than the parser goes, which would
        # otherwise stop every append (each integrates the pending rows first)
        return "its body is not JSON"
    if canonical != body or not isinstance(entry, dict) or \
            set(entry) != {"type", "at", "actor", "subject", "data"}:
        return "its body is not an entry's canonical form"
    if [entry["type"], entry["subject"], entry["actor"], entry["at"]] != \
            [row.type, row.subject, row.actor, _rfc3339(row.at)]:
        return "its columns do not say what its body says"
    return ""


ENTRY_MAC_INFO = b"sahab-ledger-entry-mac/1"


@functools.lru_cache(maxsize=4)
def _mac_key(signer: note.Signer) -> bytes:
    seed = signer.private_key.private_bytes(serialization.Encoding.Raw,
                                            serialization.PrivateFormat.Raw,
                                            serialization.NoEncryption())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=ENTRY_MAC_INFO).derive(seed)


PENDING_NONCE_BYTES = 16


def entry_mac(body: bytes, index: int | None = None, *, nonce: bytes | None = None) -> bytes:
    """The platform's MAC of an entry: HMAC-SHA256 under a key derived (HKDF) from the
    log's signing key, which the application servers and the signer hold and the
    database does not. A logged entry's MAC covers its index and its bytes, so that a
    copy of an entry at another index is refused as well. A pending row's (``nonce``
    given, ``index`` not) covers the row's nonce and its bytes: the nonce is unique in
    the table, so a second copy of a real row is no row of the platform's either.

    The sequencer integrates no pending row and the signer signs no entry without it: a
    database writer who inserts a well-formed entry (a bid's withdrawal its company
    never asked for) or a copy of a real one is refused and reported, not logged."""
    if index is not None:
        message = b"entry\0" + index.to_bytes(8, "big") + body
    elif nonce is not None and len(nonce) == PENDING_NONCE_BYTES:
        message = b"pending/2\0" + nonce + body
    else:
        raise ValueError("a pending entry's MAC needs its nonce")
    return hmac.new(_mac_key(signer()), message, hashlib.sha256).digest()


def not_the_platforms(body: bytes, mac, *, index: int, pending: bool = False,
                      nonce=None) -> str:
    """Why the entry at ``index`` (the pending row with ``nonce`` that would take it,
    with ``pending``) was not written by the platform: "" when its MAC is the
    platform's, or when the log's entries carry one only from a later index
    (``settings.LEDGER_MACS_FROM``, set on a platform upgraded with entries logged before
    MACs)."""
    if index < settings.LEDGER_MACS_FROM:
        return ""
    if pending and (nonce is None or len(nonce) != PENDING_NONCE_BYTES):
        return "it does not carry the platform's MAC: it has no nonce of the platform's"
    expected = entry_mac(body, nonce=bytes(nonce)) if pending else entry_mac(body, index)
    if mac is None or not hmac.compare_digest(bytes(mac), expected):
        return "it does not carry the platform's MAC: the platform did not write it"
    return ""


def _log_appended(appended: Sequence[Appended]) -> None:
    if not appended:
        return
    # logged once committed; the line's request id ties the entries to what caused them
    first, last = appended[0].index, appended[-1].index
    transaction.on_commit(lambda: log.info("ledger entries %d-%d appended", first, last, extra={
        "ledger_first": first, "ledger_last": last}))


# --- pending entries and the sequencer -------------------------------------------------

PROMISE_FORMAT = "sahab-ledger-promise/v1"
# What a promise commits the log to: its entry integrated within this delay. The writer
# integrates right after its commit and the worker every second; an entry older than
# this is a broken promise, which the status reports.
MAX_MERGE_DELAY_SECONDS = 60


@dataclass(frozen=True)
class Promise:
    """The log's signed promise for a pending entry (what Certificate Transparency calls
    a signed certificate timestamp): the entry with this leaf hash, written at ``at``,
    will be in the log within the sequencer's delay."""

    pending: int
    leaf_hash: bytes
    at: dt.datetime

    def text(self) -> str:
        return (f"{PROMISE_FORMAT}\n{settings.LEDGER_ORIGIN}\n{self.pending}\n"
                f"{_b64(self.leaf_hash)}\n{_rfc3339(self.at)}\n")

    def signed(self) -> str:
        """The promise as a signed note (c2sp.org/signed-note) by the log's key; its
        first line keeps it from ever being read as a checkpoint."""
        text = self.text()
        return f"{text}\n{signer().signature_line(text.encode())}"


# every pillar's writes go through it: built once, not compiled on each
_PENDING_INSERT = Insert("ledger.PendingEntry")


def enqueue(event: LedgerEvent, subject: str, actor, data: dict[str, Any] | None = None,
            **fields: Any) -> Promise:
    """Record one event as ``record`` does, but as a pending entry: written in the
    caller's transaction without the append lock, integrated by ``integrate`` once the
    transaction committed: the worker's sequencer does within a second, and so does the
    next append (which integrates every committed pending entry before its own)."""
    entry = _event_record(event, subject, actor, data, fields)
    now = timezone.now()
    at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as the entry says it
    body = encode_entry(entry, at)
    leaf = merkle.leaf_hash(body)
    nonce = secrets.token_bytes(PENDING_NONCE_BYTES)
    row = _PENDING_INSERT.create(body=body, leaf_hash=leaf, type=entry.type,
                                 subject=entry.subject, actor=entry.actor, at=at,
                                 nonce=nonce, mac=entry_mac(body, nonce=nonce))
    return Promise(row.pk, leaf, at)


def integrate(batch: int = 5000) -> dict[int, int]:
    """The sequencer: give every committed pending entry its index, in batches of
    ``batch``, each in a short transaction under the append lock. Returns the indexes it
    gave (pending number -> index; empty when another process took them first). Inside a
    caller's transaction it integrates there, like an append."""
    given: dict[int, int] = {}
    while True:
        with transaction.atomic():
            growth = _Growth(_locked_state())
            growth.integrate_pending(batch)
            growth.write()
        _log_appended([Appended(e[0], b"") for e in growth.entries])
        given.update((row.pk, row.index) for row in growth.integrated)
        if len(growth.integrated) + len(growth.refused) < batch:
            return given


# the models whose rows keep their entry's promise number (``ledger_pending``) and, once
# the sequencer integrated it, its index (``ledger_index``): bids, orders, steps
class HeldEntry(NamedTuple):
    """The only entry a row may hold: its type, subject and, where the row keeps what the
    entry's data says (a bid's commitment, a receipt's hash), those data fields."""

    type: str
    subject: str
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Holder:
    model: type[Model]
    # the row's columns (Django lookups, joins allowed) that say which entry it promised
    fields: tuple[str, ...]
    # those columns -> the only entry the row may hold; None when a row like it is never
    # written with a pending entry
    entry: Callable[[dict], HeldEntry | None]
    # its index is copied in the transaction that integrates the entry (see below)
    read_in_index_order: bool


_holders: dict[type[Model], _Holder] = {}


def keeps_pending_entries(model: type[Model], *, fields: Sequence[str],
                          entry: Callable[[dict], HeldEntry | None],
                          read_in_index_order: bool = False) -> type[Model]:
    """Register a model whose rows are written with a pending entry (``enqueue``): the
    sequencer's timer copies the index it gave each entry to the row that promised it.

    ``fields`` and ``entry`` say which entry a row may hold: ``entry`` gets the row's
    ``fields`` as a dict and returns the entry (``HeldEntry``), or None for a row that
    never waits for an entry. A row that names another entry (one planted or edited in
    the database to borrow a real entry's index) never gets an index, and the status
    reports it.

    ``read_in_index_order``: readers page through the rows by index (the changes feed of
    tender steps), so a row must never get its index after a row with a later one is
    visible: the index is then copied in the transaction that integrates the entry,
    under the append lock. Only for rows that no transaction locks once committed (the
    copy would wait for them while holding the lock)."""
    _holders[model] = _Holder(model, tuple(fields), entry, read_in_index_order)
    return model


# rows a fill reads at once, the newest promises first
FILL_BATCH = 5000


def fill_indexes(model: type[Model], rows: Sequence[int] | None = None, *,
                 entries: Sequence[int] | None = None) -> int:
    """Copy to each row of ``model`` still without an index (of ``rows``, primary keys,
    or of the rows that promised ``entries``, pending numbers, if given) the index the
    sequencer gave its pending entry; returns how many rows were filled. Reads the few
    waiting rows by their partial index, however many rows the table has.

    The rows are ordinary tables, so nothing in them is trusted. A row is filled only if
    its entry is the one it may hold (``keeps_pending_entries``) and, where indexes are
    unique (steps), no other row has that index already: a row planted with the index
    the sequencer is about to give must not make every integration, hence every append,
    fail on the unique constraint. The rows are read locked, so that what is checked is
    what is written, and a row that another transaction holds (someone editing it, an
    amendment holding a bid) is skipped, never waited for. Rows refused stay without an
    index and ``pending_state`` reports them."""
    holder = _holders[model]
    chunks = [None] if entries is None else \
        [entries[i:i + FILL_BATCH] for i in range(0, len(entries), FILL_BATCH)]
    filled = 0
    for chunk in chunks:
        below = None  # pages by promise number: refused rows never hide those behind
        while True:
            try:
                # a savepoint (a transaction outside one) for the read and the write: a
                # row planted with one of these indexes since the read fails this, not
                # the caller's transaction (an append, a bid's confirmation)
                with transaction.atomic():
                    read, done, below = _fill_checked(holder, rows, chunk, below)
            except IntegrityError:
                log.error("%s: an index to copy was taken meanwhile; the next fill "
                          "retries", model._meta.label)
                return filled
            filled += done
            if read < FILL_BATCH:
                break
    return filled


def _fill_checked(holder: _Holder, rows: Sequence[int] | None,
                  entries: Sequence[int] | None, below: int | None
                  ) -> tuple[int, int, int | None]:
    """One batch of ``fill_indexes``, of the rows whose promise number is ``below``
    (when given): how many rows it read and filled, and the lowest number read."""
    model = holder.model
    integrated = PendingEntry.objects.filter(pk=OuterRef("ledger_pending"),
                                             index__isnull=False)
    waiting = model.objects.filter(ledger_index__isnull=True, ledger_pending__isnull=False) \
        .filter(Exists(integrated))
    if rows is not None:
        waiting = waiting.filter(pk__in=rows)
    if entries is not None:
        waiting = waiting.filter(ledger_pending__in=entries)
    if below is not None:
        waiting = waiting.filter(ledger_pending__lt=below)
    waiting = list(waiting.select_for_update(skip_locked=True, of=("self",))
                   .order_by("-ledger_pending")
                   .values("pk", "ledger_pending", *holder.fields)[:FILL_BATCH])
    if not waiting:
        return 0, 0, below
    given = {row["pk"]: row for row in PendingEntry.objects.filter(
        pk__in=[row["ledger_pending"] for row in waiting]).values("pk", "index", "type",
                                                                 "subject", "body")}
    matching = {}
    for row in waiting:
        pending = given[row["ledger_pending"]]
        if not _holds(holder.entry(row), pending):
            _refused(model, row["pk"], "names pending entry %d, which is not its own",
                     pending["pk"])
            continue
        matching[pending["index"]] = row["pk"]
    if model._meta.get_field("ledger_index").unique:
        for index in model.objects.filter(ledger_index__in=list(matching)) \
                .values_list("ledger_index", flat=True):
            _refused(model, matching.pop(index), "cannot take index %d, which another "
                     "row holds", index)
    lowest = waiting[-1]["ledger_pending"]
    if not matching:
        return len(waiting), 0, lowest
    # the rows are locked: their promise is the one checked
    index_given = PendingEntry.objects.filter(pk=OuterRef("ledger_pending")).values("index")
    return len(waiting), model.objects.filter(pk__in=list(matching.values()),
                                              ledger_index__isnull=True) \
        .update(ledger_index=Subquery(index_given[:1])), lowest


def _holds(expected: HeldEntry | None, pending: dict) -> bool:
    """Whether the integrated ``pending`` entry is the one a row may hold."""
    if expected is None or (expected.type, expected.subject) != (pending["type"],
                                                                 pending["subject"]):
        return False
    if not expected.data:
        return True
    data = json.loads(bytes(pending["body"]))["data"]  # canonical: the sequencer checked
    return all(data.get(key) == value for key, value in expected.data.items())


# (model, row, detail) already logged by this process: a planted row is met on every
# fill, and logged once
_logged_refusals: set[tuple[str, int, str]] = set()


def _refused(model: type[Model], pk: int, why: str, *args) -> None:
    """Log, once per process, why a row is left without an index."""
    key = (model._meta.label, pk, why % args)
    if key in _logged_refusals:
        return
    if len(_logged_refusals) > 10_000:
        _logged_refusals.clear()
    _logged_refusals.add(key)
    log.error("%s %s %s: left without an index", *key)


def fill_left_rows() -> dict[str, int]:
    """The operator's late copy (``sahab ledger fill-rows``), once what kept rows from
    their index is removed: every registered model, those read in index order too (the
    worker never copies their index late: a mirror whose cursor passed it would miss the
    row; it must read the feed again from before the index). Under the append lock, so
    that no integration runs meanwhile. Returns the rows filled per model."""
    with transaction.atomic():
        _locked_state()
        return {model._meta.label_lower: fill_indexes(model) for model in _holders}


def stranded_rows(older_than: dt.timedelta) -> dict[str, int]:
    """Per registered model, the rows without an index that will not get one by
    themselves: their entry was integrated more than ``older_than`` ago (the fill refused
    them, see ``fill_indexes``), refused by the sequencer, or is not there (a promise
    number, or its absence, written outside the platform)."""
    stranded = {}
    on_its_way = PendingEntry.objects.filter(pk=OuterRef("ledger_pending")).filter(
        Q(index__isnull=True, refused="") | Q(at__gte=timezone.now() - older_than))
    for model in _holders:
        count = model.objects.filter(ledger_index__isnull=True) \
            .exclude(Exists(on_its_way)).count()
        if count:
            stranded[model._meta.label_lower] = count
    return stranded


def integrate_pending() -> None:
    """Timer: integrate what writers left pending, then give the rows that promised those
    entries their indexes."""
    if PendingEntry.objects.filter(index__isnull=True, refused="").exists():
        integrate()
    for holder in _holders.values():
        # rows read in index order get theirs only where their entry is integrated, never
        # later: a late index would fall behind the cursor of a mirror that went past it
        if not holder.read_in_index_order:
            fill_indexes(holder.model)


def open_promise(signed: str | bytes) -> Promise:
    """Check a signed promise against the log's key; returns what it promises."""
    data = signed.encode() if isinstance(signed, str) else signed
    try:
        opened, _ = note.open_note(data, [signer().verifier])
        lines = opened.text.decode().split("\n")
        if len(lines) != 6 or lines[0] != PROMISE_FORMAT or lines[5] != "":
            raise note.NoteError("not a promise note")
        if lines[1] != settings.LEDGER_ORIGIN:
            raise note.NoteError(f"made by {lines[1]!r}, not {settings.LEDGER_ORIGIN!r}")
        at = dt.datetime.fromisoformat(lines[4].replace("Z", "+00:00"))
        return Promise(int(lines[2]), base64.b64decode(lines[3], validate=True), at)
    except (note.NoteError, ValueError) as exc:
        raise InvalidInput(LedgerError.PROMISE_DOES_NOT_VERIFY, error=str(exc)) from None


def promise_of(pending: int) -> Promise | None:
    """The promise the log made for a pending entry (to hand it again)."""
    row = PendingEntry.objects.filter(pk=pending).values("leaf_hash", "at").first()
    return Promise(pending, bytes(row["leaf_hash"]), row["at"]) if row else None


def promise_state(pending: int) -> dict:
    """What became of a promise: its leaf hash and time, and its index once integrated
    (the entry at that index has the promised leaf hash: its receipt proves it)."""
    row = PendingEntry.objects.filter(pk=pending).values("leaf_hash", "at", "index",
                                                         "refused").first()
    if row is None:
        raise NotFound(LedgerError.NO_PROMISE, pending=pending)
    return {"pending": pending, "leaf_hash": _b64(bytes(row["leaf_hash"])),
            "at": _rfc3339(row["at"]), "index": row["index"],
            "refused": row["refused"] or None}


def promised_index(promise: Promise | int) -> int | None:
    """The index the sequencer gave a promised entry; None while it is pending."""
    pending = promise.pending if isinstance(promise, Promise) else promise
    return PendingEntry.objects.filter(pk=pending).values_list("index", flat=True).first()


def pending_state() -> dict:
    """How many entries wait for the sequencer, and since when, how many rows it
    refused as not written by the platform, and the rows left without the index of an
    entry integrated long ago (for the status)."""
    waiting = PendingEntry.objects.filter(index__isnull=True, refused="")
    oldest = waiting.order_by("id").values_list("at", flat=True).first()
    return {"count": waiting.count(),
            "oldest_seconds": round((timezone.now() - oldest).total_seconds(), 3)
            if oldest else None,
            "refused": list(PendingEntry.objects.exclude(refused="").order_by("id")
                            .values("id", "refused")[:20]),
            "refused_outside_the_sequencer": refused_outside_the_sequencer(),
            "indexes_outside_the_log": PendingEntry.objects.filter(
                Q(index__lt=0) | Q(index__gte=_log_size())).count(),
            "rows_without_index": stranded_rows(
                dt.timedelta(seconds=MAX_MERGE_DELAY_SECONDS))}


def refused_outside_the_sequencer() -> list[int]:
    """The pending rows refused without the sequencer's entry saying so: someone with
    the database's rights set ``refused`` on them, perhaps on an honest entry (a rival's
    bid) to keep it out of the log. At most 20, oldest first."""
    logged = logged_entries().filter(type=LedgerOwnEvent.PENDING_REFUSED.value)
    refused = PendingEntry.objects.exclude(refused="")
    if refused.count() <= logged.count():
        return []  # the usual case, in two counts; else find which, a chunk at a time
    found: list[int] = []
    for chunk in _chunks(list(refused.order_by("id").values_list("id", flat=True)), 1000):
        subjects = set(logged.filter(subject__in=[refusal_subject(pk) for pk in chunk])
                       .values_list("subject", flat=True))
        found += [pk for pk in chunk if refusal_subject(pk) not in subjects]
        if len(found) >= 20:
            break
    return found[:20]


def _locked_state() -> LogState:
    """The append lock. Its row comes with the migrations; it is re-created if a database
    was emptied by hand (a flushed database is an empty log)."""
    try:
        return LogState.objects.select_for_update().get(pk=1)
    except LogState.DoesNotExist:
        LogState.objects.get_or_create(pk=1)
        return LogState.objects.select_for_update().get(pk=1)


# --- reading the tree ------------------------------------------------------------------

def _state() -> LogState:
    return LogState.objects.filter(pk=1).first() or LogState(size=0, frontier=b"")


def tree_size() -> int:
    """The size of the committed log (which may be ahead of the latest checkpoint)."""
    return _size_and_nodes([])[0]


def _read_connection():
    """The connection the router reads the ledger from (the replica for a public read
    that may use it), as the ORM's own reads of these tables would."""
    return connections[router.db_for_read(Node)]


def _size_and_nodes(keys: list[tuple[int, int]]
                    ) -> tuple[int, dict[tuple[int, int], bytes]]:
    """The committed size and the stored nodes ``(level, index)`` among ``keys``, in one
    statement: the size and the nodes come from the same snapshot, and a proof costs one
    round trip. Raw SQL: the ORM's per-row model machinery was most of a proof's time."""
    wanted = {node_key(level, index): (level, index) for level, index in keys}
    state, node = LogState._meta.db_table, Node._meta.db_table
    conn = _read_connection()
    size, found = 0, {}
    with conn.cursor() as cursor:
        if not wanted:  # the size alone (a join on nothing would scan the nodes on SQLite)
            cursor.execute(f'SELECT "size" FROM "{state}" WHERE "id" = 1')  # noqa: S608
            row = cursor.fetchone()
            return (row[0] if row else 0), found
        for n, chunk in enumerate(_chunks(list(wanted), 500)):
            if conn.vendor == "postgresql":
                match, chunk = 'n."key" = ANY(%s::bigint[])', [chunk]
            else:
                match = f'n."key" IN ({", ".join(["%s"] * len(chunk))})'
            if n == 0:
                # LEFT JOIN: the state's row comes back even when no node matches (a size
                # of 0 when a database emptied by hand lost the row, as ``_state`` says)
                sql = (f'SELECT s."size", n."key", n."hash" FROM "{state}" s '  # noqa: S608 (model names)
                       f'LEFT JOIN "{node}" n ON {match} WHERE s."id" = 1')
            else:
                sql = f'SELECT NULL, n."key", n."hash" FROM "{node}" n WHERE {match}'  # noqa: S608
            cursor.execute(sql, chunk)
            for row_size, key, h in cursor.fetchall():
                if row_size is not None:
                    size = row_size
                if key is not None:
                    found[wanted[key]] = bytes(h)
    return size, found


def _fetch_nodes(keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    return _size_and_nodes(keys)[1]


def _chunks(items: list, n: int) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _require_size(size: int, committed: int | None = None) -> None:
    """NotFound unless a tree of ``size`` entries is committed (``committed``: the size
    already read in the same query as the nodes; None reads it)."""
    if size < 0 or size > (tree_size() if committed is None else committed):
        raise NotFound(LedgerError.NO_TREE_OF_SIZE, size=size)


def _subtrees(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    return [node for r in ranges for node in merkle.perfect_subtrees(*r)]


def _given(stored: dict[tuple[int, int], bytes]
           ) -> Callable[[list[tuple[int, int]]], dict[tuple[int, int], bytes]]:
    """A ``merkle.resolve`` fetch that answers from nodes read already (a missing node
    still fails as a missing node does)."""
    return lambda keys: stored


def root_at(size: int) -> bytes:
    """The root hash of the first ``size`` entries, from O(log n) stored nodes."""
    if size <= 0:
        _require_size(size, 0)
        return merkle.EMPTY_ROOT
    committed, stored = _size_and_nodes(_subtrees([(0, size)]))
    _require_size(size, committed)
    return merkle.resolve([(0, size)], _given(stored))[0]


def _inclusion(index: int, size: int, *, extra: Sequence[tuple[int, int]] = ()
               ) -> tuple[list[bytes], dict[tuple[int, int], bytes]]:
    """The inclusion proof and the stored nodes read with it (``extra`` nodes too)."""
    if size < 0:
        _require_size(size, 0)
    if not 0 <= index < size:
        _require_size(size)  # a size beyond the log is told first
        raise InvalidInput(LedgerError.ENTRY_NOT_IN_TREE, index=index, size=size)
    ranges = merkle.inclusion_ranges(index, size)
    committed, stored = _size_and_nodes(_subtrees(ranges) + list(extra))
    _require_size(size, committed)
    return merkle.resolve(ranges, _given(stored)), stored


def inclusion_proof(index: int, size: int) -> list[bytes]:
    return _inclusion(index, size)[0]


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def inclusion_proof_json(index: int, size: int) -> dict:
    """An inclusion proof as served and printed: base64 leaf hash, root and path."""
    # one query for the path, the leaf and the root (the size is checked, the index is in it)
    proof, stored = _inclusion(index, size, extra=[(0, index), *_subtrees([(0, size)])])
    leaf = stored.get((0, index))
    if leaf is None:
        raise NotFound(LedgerError.NO_ENTRY, index=index)
    root = merkle.resolve([(0, size)], _given(stored))[0]
    return {"index": index, "size": size, "leaf_hash": _b64(leaf),
            "root": _b64(root), "proof": [_b64(h) for h in proof]}


def _consistency(old: int, new: int, *, roots: bool = False
                 ) -> tuple[list[bytes], list[bytes]]:
    """The consistency proof, and with ``roots`` both roots, from one query."""
    if new < 0:
        _require_size(new, 0)
    if not 0 <= old <= new:
        _require_size(new)  # a size beyond the log is told first
        raise InvalidInput(LedgerError.NO_CONSISTENCY_PROOF, old=old, new=new)
    ranges = merkle.consistency_ranges(old, new)
    tops = [(0, size) for size in (old, new) if size] if roots else []
    committed, stored = _size_and_nodes(_subtrees(ranges + tops))
    _require_size(new, committed)
    proof = merkle.resolve(ranges, _given(stored))
    if not roots:
        return proof, []
    resolved = iter(merkle.resolve(tops, _given(stored)))
    return proof, [next(resolved) if size else merkle.EMPTY_ROOT for size in (old, new)]


def consistency_proof_json(old: int, new: int) -> dict:
    """A consistency proof as served and printed: both roots and the path, in base64."""
    proof, (old_root, new_root) = _consistency(old, new, roots=True)
    return {"old": old, "new": new, "old_root": _b64(old_root),
            "new_root": _b64(new_root), "proof": [_b64(h) for h in proof]}


def consistency_proof(old: int, new: int) -> list[bytes]:
    return _consistency(old, new)[0]


def leaf_hash_of(index: int) -> bytes:
    if index < 0:
        raise NotFound(LedgerError.NO_ENTRY, index=index)
    committed, stored = _size_and_nodes([(0, index)])
    if index >= committed or (0, index) not in stored:
        raise NotFound(LedgerError.NO_ENTRY, index=index)
    return stored[(0, index)]


def _log_size() -> Subquery:
    """The log's size, as a subquery, so that one query compares rows with it."""
    return Subquery(LogState.objects.filter(pk=1).values("size")[:1])


def logged_entries():
    """The log's entries: the rows from index 0 to below its size. A row elsewhere (at or
    beyond the size, or below 0) is no entry: no append made it (an INSERT in the
    database, which the status reports), and the signer, which reads the tree from 0 up
    to its size, would never see it; services must not act on it."""
    return Entry.objects.filter(index__gte=0, index__lt=_log_size())


def rows_beyond_the_log() -> int:
    """How many rows of the entries' table lie outside the log: below index 0 or at or
    beyond its size."""
    return Entry.objects.filter(Q(index__lt=0) | Q(index__gte=_log_size())).count()


def nodes_beyond_the_tree() -> int:
    """How many rows of the nodes' table name a node the tree does not have yet (or never
    will: a negative key). Such a row, planted at a key the next append takes, makes
    every append fail on the table's primary key; the status names it."""
    size = tree_size()
    beyond = Q(key__lt=0)
    for level in range(size.bit_length() + 1):
        # the nodes of ``level`` the tree has are those of index < size >> level
        beyond |= Q(key__gte=node_key(level, size >> level), key__lt=node_key(level + 1, 0))
    beyond |= Q(key__gte=node_key(size.bit_length() + 1, 0))
    return Node.objects.filter(beyond).count()


def get_entry(index: int) -> Entry:
    entry = logged_entries().filter(index=index).first()
    if entry is None:
        raise NotFound(LedgerError.NO_ENTRY, index=index)
    return entry


def entries_about(subject: str):
    """Entries recorded about one subject, oldest first."""
    return logged_entries().filter(subject=subject).order_by("index")


def proven_entries(indexes: Iterable[int], *, signed: bool = True) -> dict[int, dict]:
    """The entries at ``indexes``, each proven by an inclusion proof to the latest
    published checkpoint, whose signature is checked: what another app trusts where the
    database alone could have been edited. Raises ``Conflict`` when an entry does not
    prove (or no checkpoint covers it yet).

    ``signed=False`` proves them against the current tree instead (for a writer whose own
    transaction holds entries that no checkpoint may cover yet, such as the demo loader).
    """
    indexes = sorted(set(indexes))
    if not indexes:
        return {}
    if signed:
        checkpoint = latest_checkpoint()
        if checkpoint.size <= indexes[-1]:
            raise Conflict(LedgerError.ENTRY_NOT_PUBLISHED, index=indexes[-1])
        try:
            tree, _ = note.open_checkpoint(signed_checkpoint(checkpoint).encode(),
                                           signer().verifier)
        except note.NoteError as exc:
            raise Conflict(LedgerError.CHECKPOINT_DOES_NOT_VERIFY, error=str(exc)) from None
    else:
        size = tree_size()
        tree = note.Checkpoint("", size, root_at(size))
    bodies = dict(Entry.objects.filter(index__in=indexes).values_list("index", "body"))
    proven = {}
    for index in indexes:
        body = bytes(bodies.get(index) or b"")
        try:
            merkle.verify_inclusion(index, tree.size, merkle.leaf_hash(body),
                                    inclusion_proof(index, tree.size), tree.root)
        except merkle.ProofError:
            raise Conflict(LedgerError.ENTRY_NOT_COVERED, index=index) \
                from None
        proven[index] = json.loads(body)
    return proven


# --- tiles (c2sp.org/tlog-tiles) ---------------------------------------------------------

def tiles_for_size(size: int) -> list[tuple[int, int, int]]:
    """Every tile ``(level, index, width)`` that represents a tree of ``size`` entries."""
    tiles = []
    level = 0
    while size >> (TILE_HEIGHT * level) >= 1:
        hashes = size >> (TILE_HEIGHT * level)  # complete nodes at tree level 8*level
        if level > 0 and hashes == 0:
            break
        full, partial = divmod(hashes, TILE_WIDTH)
        tiles.extend((level, n, TILE_WIDTH) for n in range(full))
        if partial:
            tiles.append((level, full, partial))
        level += 1
    return tiles


def tile(level: int, index: int, width: int) -> bytes:
    """The hashes of tile ``level``/``index``: nodes at tree level 8*level."""
    if not 0 <= level <= 63 or index < 0 or not 1 <= width <= TILE_WIDTH:
        raise NotFound(LedgerError.NO_SUCH_TILE)
    tree_level = TILE_HEIGHT * level
    first = index * TILE_WIDTH
    if tree_level > 63 or (first + width) << tree_level > tree_size():
        raise NotFound(LedgerError.TILE_NOT_YET)
    hashes = Node.objects.filter(
        key__gte=node_key(tree_level, first), key__lt=node_key(tree_level, first + width)
    ).order_by("key").values_list("hash", flat=True)
    return b"".join(bytes(h) for h in hashes)


def entry_bundle(index: int, width: int) -> bytes:
    """Entries ``[index*256, index*256 + width)``, each prefixed with its uint16 length."""
    if index < 0 or not 1 <= width <= TILE_WIDTH:
        raise NotFound(LedgerError.NO_SUCH_ENTRY_BUNDLE)
    first = index * TILE_WIDTH
    if first + width > tree_size():
        raise NotFound(LedgerError.ENTRY_BUNDLE_NOT_YET)
    bodies = Entry.objects.filter(index__gte=first, index__lt=first + width).order_by(
        "index").values_list("body", flat=True)
    return b"".join(len(b).to_bytes(2, "big") + bytes(b) for b in bodies)


# --- checkpoints ----------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _signer(origin: str, key_path: str) -> note.Signer:
    from sahab.core import keys

    return note.Signer(origin, keys.load_ledger_key())


def signer() -> note.Signer:
    from sahab.core import keys

    return _signer(settings.LEDGER_ORIGIN, str(keys.ledger_key_path()))


def verifier_key() -> str:
    """The log's public key as a C2SP verifier key string."""
    return signer().verifier.vkey()


def _in_callers_transaction() -> bool:
    """True inside a transaction opened by the caller (not the test harness's wrapper):
    its appends are not committed yet, and a checkpoint must never cover them."""
    return any(not getattr(block, "_from_testcase", False)
               for block in connection.atomic_blocks)


def checkpoint_if_grown() -> Checkpoint | None:
    """Sign a checkpoint for the committed tree if the log grew since the last one.

    The signer signs only a tree consistent with the last one it signed (see
    ``signing``); when it refuses, this returns None and the alarm is raised. Inside a
    caller's transaction the signing waits for its commit. Safe to run in many workers
    at once: a size is signed once.
    """
    from sahab.ledger import signing

    if _in_callers_transaction():
        transaction.on_commit(checkpoint_if_grown)
        return None
    dbrouting.stick_to_primary()  # sign what the primary holds, not a replica's past
    try:
        checkpoint = signing.sign_latest()
    except signing.SigningRefused:
        return None
    if checkpoint is not None and \
            Witness.objects.filter(active=True).exclude(url="").exists():
        from sahab.ledger.tasks import submit_to_witnesses

        transaction.on_commit(submit_to_witnesses.enqueue)
    return checkpoint


def cosignatures_required() -> int:
    return max(0, int(getattr(settings, "LEDGER_COSIGNATURES_REQUIRED", 0)))


def _published_in_database(required: int) -> Checkpoint | None:
    """The largest checkpoint with ``required`` cosignatures of active witnesses."""
    if required == 0:
        return Checkpoint.objects.order_by("-size").first()
    recent = list(Checkpoint.objects.order_by("-size")[:64])
    counts = dict(Cosignature.objects.filter(checkpoint__in=recent, witness__active=True)
                  .values("checkpoint").annotate(n=Count("id")).values_list("checkpoint", "n"))
    for checkpoint in recent:
        if counts.get(checkpoint.pk, 0) >= required or checkpoint.size == 0:
            return checkpoint
    counted = Count("cosignatures", filter=Q(cosignatures__witness__active=True))
    return (Checkpoint.objects.annotate(n=counted).filter(Q(n__gte=required) | Q(size=0))
            .order_by("-size").first())


def _from_record(record) -> Checkpoint:
    """The signer's record as an (unsaved) checkpoint, to serve when the database lost it."""
    checkpoint = Checkpoint(size=record.size, root=record.root, text=record.text,
                            signature=record.signature,
                            created_at=dt.datetime.fromisoformat(record.signed_at)
                            if record.signed_at else timezone.now())
    checkpoint.recorded_cosignatures = record.cosignatures
    return checkpoint


def _signer_record():
    from sahab.ledger import signing

    try:
        return signing.load_record()
    except signing.RecordDamaged:
        return None


def latest_checkpoint() -> Checkpoint:
    """The latest published checkpoint: signed, and cosigned by as many witnesses as
    ``SAHAB_LEDGER_COSIGNATURES_REQUIRED`` asks.

    When the database lost checkpoints (or holds a rewritten tree the signer refuses),
    the last good one is served from the signer's own record.
    """
    required = cosignatures_required()
    record = _signer_record()
    if record is not None and record.size > tree_size():
        dbrouting.stick_to_primary()  # a replica behind what was signed: read the primary
    published = _published_in_database(required)
    if record is not None and (record.cosignature_count() >= required or record.size == 0) \
            and (published is None or record.size > published.size):
        return _from_record(record)
    if published is None:
        # Before any checkpoint, sign the current tree (an empty log gets one of size 0);
        # if another worker signed it first, read theirs.
        checkpoint_if_grown()
        published = _published_in_database(required)
    if published is None:
        raise NotFound(LedgerError.NO_COSIGNED_CHECKPOINT, required=required)
    return published


def latest_signed_checkpoint() -> Checkpoint | None:
    """The latest checkpoint the log signed, cosigned or not (what witnesses are sent)."""
    checkpoint = Checkpoint.objects.order_by("-size").first()
    record = _signer_record()
    if record is not None and (checkpoint is None or record.size > checkpoint.size):
        return _from_record(record)
    return checkpoint


def signed_checkpoint(checkpoint: Checkpoint) -> str:
    """The checkpoint as served: body, blank line, the log's signature, cosignatures."""
    if checkpoint.pk is None:
        cosignatures = getattr(checkpoint, "recorded_cosignatures", "")
    else:
        cosignatures = "".join(checkpoint.cosignatures.order_by("witness__name")
                               .values_list("line", flat=True))
    return f"{checkpoint.text}\n{checkpoint.signature}{cosignatures}"


def checkpoint_covering(index: int) -> Checkpoint:
    """The latest published checkpoint, signing (and having it cosigned) first if it does
    not cover ``index`` yet."""
    try:
        checkpoint = latest_checkpoint()
    except NotFound:
        checkpoint = None
    if checkpoint is None or checkpoint.size <= index:
        checkpoint_if_grown()  # reads from the primary from here on
        if cosignatures_required():
            from sahab.ledger import witnessing

            witnessing.submit_to_all()
        checkpoint = latest_checkpoint()
    if checkpoint.size <= index:
        raise NotFound(LedgerError.ENTRY_NOT_UNDER_CHECKPOINT, index=index)
    return checkpoint


# --- receipts (c2sp.org/tlog-proof) ----------------------------------------------------

def receipt(index: int, *, wait: bool = True) -> str | None:
    """A self-contained, offline-verifiable proof that entry ``index`` is in the log.

    With ``wait=False`` it is None until a checkpoint covers the entry (within about a
    second), instead of signing one now: busy writers should not sign a checkpoint each.
    """
    if not wait:
        try:
            latest = latest_checkpoint()
        except NotFound:
            return None
        if latest.size <= index:
            return None
    checkpoint = checkpoint_covering(index)
    proof = inclusion_proof(index, checkpoint.size)
    lines = ["c2sp.org/tlog-proof@v1", f"index {index}", *(_b64(h) for h in proof)]
    return "\n".join(lines) + "\n\n" + signed_checkpoint(checkpoint)


# --- witnesses of this log ----------------------------------------------------------

def _is_platform_admin(actor) -> bool:
    """Platform administrators (superusers) and the operator's console ("system")."""
    return actor == "system" or bool(getattr(actor, "is_superuser", False)
                                      and getattr(actor, "is_active", False))


def _actor_id(actor) -> str:
    return actor if isinstance(actor, str) else f"user:{actor.pk}"


def check_witness_url(url: str) -> str:
    """An add-checkpoint URL the platform will post to, under the platform's outbound-URL
    policy (sahab.core.outbound): https (plain http on the loopback only, for a witness
    beside the platform), no credentials, no fragment. Witnesses are registered by
    platform administrators only, which is what lets them sit on an internal address.
    """
    from urllib.parse import urlsplit

    from sahab.core import outbound

    url = (url or "").strip()
    if not url:
        return ""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    try:
        outbound.check_url(url, allow_http=loopback or None, resolve=False)
    except outbound.OutboundRefused:
        raise InvalidInput(LedgerError.WITNESS_URL_INVALID) from None
    return url


@transaction.atomic
def register_witness(*, name: str, vkey: str, url: str = "", actor="system") -> Witness:
    """Register an independent witness whose cosignatures the log stores and serves.

    Only platform administrators register witnesses: the URL is one the platform posts to.
    """
    if not _is_platform_admin(actor):
        raise PermissionDenied(LedgerError.WITNESS_REGISTRATION_FORBIDDEN)
    try:
        verifier = note.parse_vkey(vkey)
    except note.NoteError as exc:
        raise InvalidInput(LedgerError.BAD_VERIFIER_KEY, error=str(exc)) from None
    if verifier.sig_type != note.SIG_COSIGNATURE_V1 or verifier.name != name:
        raise InvalidInput(LedgerError.WITNESS_KEY_INVALID)
    url = check_witness_url(url)
    if Witness.objects.filter(name=name).exists():
        raise Conflict(LedgerError.WITNESS_EXISTS, name=name)
    witness = Witness.objects.create(name=name, vkey=vkey.strip(), url=url)
    append(
        type=LedgerOwnEvent.WITNESS_REGISTERED,
        subject=f"witness:{name}",
        data={"name": name, "vkey": vkey.strip(), "url": url},
        actor=_actor_id(actor),
    )
    return witness


@transaction.atomic
def set_witness(*, witness: Witness, actor, active: bool | None = None,
                url: str | None = None) -> Witness:
    """Turn a witness on or off, or change where checkpoints are submitted to it."""
    if not _is_platform_admin(actor):
        raise PermissionDenied(LedgerError.WITNESS_CHANGE_FORBIDDEN)
    witness = Witness.objects.select_for_update().get(pk=witness.pk)
    changes = {}
    if active is not None and active != witness.active:
        changes["active"] = witness.active = bool(active)
    if url is not None and check_witness_url(url) != witness.url:
        changes["url"] = witness.url = check_witness_url(url)
    if changes:
        witness.save(update_fields=list(changes))
        append(
            type=LedgerOwnEvent.WITNESS_CHANGED,
            subject=f"witness:{witness.name}",
            data=changes,
            actor=_actor_id(actor),
        )
    return witness


def checkpoint_of_size(size: int) -> Checkpoint:
    checkpoint = Checkpoint.objects.filter(size=size).first()
    if checkpoint is None:
        raise NotFound(LedgerError.NO_CHECKPOINT_OF_SIZE, size=size)
    return checkpoint


def accept_cosignatures(checkpoint: Checkpoint, lines: str) -> list[str]:
    """Store the valid cosignatures among ``lines`` from registered witnesses; their names."""
    stored = []
    for witness in Witness.objects.filter(active=True):
        with transaction.atomic():
            if add_cosignature(checkpoint, witness, lines):
                stored.append(witness.name)
    return stored


def add_cosignature(checkpoint: Checkpoint, witness: Witness, lines: str) -> bool:
    """Verify a witness's cosignature line(s) on ``checkpoint`` and keep the valid one
    (in the database and with the signer's record of that checkpoint)."""
    from sahab.ledger import signing

    verifier = note.parse_vkey(witness.vkey)
    body = checkpoint.text.encode()
    for line in lines.splitlines():
        try:
            parsed = note.parse_note(body + b"\n" + line.encode() + b"\n").signatures[0]
        except note.NoteError:
            continue
        if (parsed.name, parsed.key_id) != (verifier.name, verifier.key_id):
            continue
        try:
            timestamp = note.verify_cosignature(verifier, body, parsed.blob)
        except note.NoteError:
            continue
        Cosignature.objects.get_or_create(
            checkpoint=checkpoint, witness=witness,
            defaults={"line": parsed.line, "timestamp": timestamp})
        Witness.objects.filter(pk=witness.pk, last_size__lt=checkpoint.size).update(
            last_size=checkpoint.size)
        signing.keep_cosignature(checkpoint.size, bytes(checkpoint.root), parsed.line)
        return True
    return False


def witness_states() -> list[dict]:
    """Each witness of this log and the largest checkpoint it cosigned (for the portal)."""
    states = []
    for witness in Witness.objects.order_by("name"):
        last = (witness.cosignatures.select_related("checkpoint")
                .order_by("-checkpoint__size").first())
        states.append({
            "name": witness.name, "vkey": witness.vkey, "active": witness.active,
            "url": witness.url, "cosigned_size": last.checkpoint.size if last else None,
            "cosigned_at": dt.datetime.fromtimestamp(last.timestamp, dt.UTC)
            if last else None,
        })
    return states


def status() -> dict:
    """The log's health for the status API and the admin page: the signer's record and
    alarm, the database guard, the published checkpoint and each witness."""
    from django.db import connection as db

    from sahab.ledger import guard, signing

    try:
        published = latest_checkpoint()
        published_json = {"size": published.size, "root": _b64(bytes(published.root)),
                          "cosignatures": signed_checkpoint(published).count("\n— ") - 1}
    except NotFound:
        published_json = None
    witnesses = [{**w, "cosigned_at": w["cosigned_at"].isoformat() if w["cosigned_at"]
                  else None} for w in witness_states()]
    missing = guard.missing(db)
    signer = signing.status()
    alarm = signer.get("alarm") or {}
    pending = pending_state()
    late = (pending["oldest_seconds"] or 0) > MAX_MERGE_DELAY_SECONDS
    beyond = rows_beyond_the_log()
    planted_nodes = nodes_beyond_the_tree()
    return {
        "origin": settings.LEDGER_ORIGIN, "tree_size": tree_size(),
        "published": published_json, "cosignatures_required": cosignatures_required(),
        "signer": signer, "database_guard": {"whole": not missing, "missing": missing},
        "witnesses": witnesses,
        "pending": {**pending, "max_merge_delay_seconds": MAX_MERGE_DELAY_SECONDS,
                    "late": late},
        "rows_beyond_the_log": beyond,
        "nodes_beyond_the_tree": planted_nodes,
        "ok": not missing and not alarm.get("active") and not signer.get("damaged")
        and not late and not pending["refused"] and not pending["rows_without_index"]
        and not pending["indexes_outside_the_log"] and not beyond and not planted_nodes,
    }
