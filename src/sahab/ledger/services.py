"""Every write to the ledger, and the proofs it serves.

Other apps call ``append`` inside their own transaction, as the last step of it: the
entry is committed if and only if their change is, and the append lock (the
``LogState`` row) is held until their commit, so indexes are dense and follow commit
order on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import rfc8785
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from sahab.core.errors import Conflict, InvalidInput, NotFound
from sahab.ledger import merkle, note
from sahab.ledger.models import (
    Checkpoint,
    Cosignature,
    Entry,
    LogState,
    Node,
    Witness,
    node_key,
)

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
            raise InvalidInput(f"A ledger entry needs a {name} of 1 to 300 characters.")
    if not isinstance(record.data, dict):
        raise InvalidInput("A ledger entry's data is a JSON object.")
    try:
        body = rfc8785.dumps({"type": record.type, "at": _rfc3339(at), "actor": record.actor,
                              "subject": record.subject, "data": record.data})
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidInput(f"A ledger entry's data cannot be written as JSON: {exc}") from None
    if len(body) > MAX_ENTRY_BYTES:
        raise InvalidInput("A ledger entry is 64 KiB at most: record hashes, not documents.")
    return body


def append(*, type: str, subject: str, data: dict[str, Any], actor: str) -> Appended:
    """Append one entry; call it last in the transaction of the change it records."""
    return append_many([Record(type, subject, data, actor)])[0]


def append_many(records: Sequence[Record]) -> list[Appended]:
    """Append several entries under one lock (the fast path for batches)."""
    if not records:
        return []
    with transaction.atomic():
        state = _locked_state()
        frontier = merkle.CompactRange.from_bytes(state.size, bytes(state.frontier))
        at = timezone.now()
        entries, nodes, appended = [], [], []
        for record in records:
            body = encode_entry(record, at)
            index = frontier.size
            leaf = merkle.leaf_hash(body)
            nodes.extend(Node(key=node_key(level, i), hash=h)
                         for level, i, h in frontier.append(leaf))
            entries.append(Entry(index=index, body=body, type=record.type,
                                 subject=record.subject, actor=record.actor, at=at))
            appended.append(Appended(index, leaf))
        Entry.objects.bulk_create(entries)
        Node.objects.bulk_create(nodes)
        LogState.objects.filter(pk=1).update(size=frontier.size, frontier=frontier.to_bytes())
    # logged once committed; the line's request id ties the entries to what caused them
    first, last = appended[0].index, appended[-1].index
    transaction.on_commit(lambda: log.info("ledger entries %d-%d appended", first, last, extra={
        "ledger_first": first, "ledger_last": last}))
    return appended


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
    return _state().size


def _fetch_nodes(keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    wanted = {node_key(level, index): (level, index) for level, index in keys}
    found = {}
    for chunk in _chunks(list(wanted), 500):
        for key, h in Node.objects.filter(key__in=chunk).values_list("key", "hash"):
            found[wanted[key]] = bytes(h)
    return found


def _chunks(items: list, n: int) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _require_size(size: int) -> None:
    if size < 0 or size > tree_size():
        raise NotFound(f"The log has no tree of size {size}.")


def root_at(size: int) -> bytes:
    """The root hash of the first ``size`` entries, from O(log n) stored nodes."""
    _require_size(size)
    if size == 0:
        return merkle.EMPTY_ROOT
    return merkle.resolve([(0, size)], _fetch_nodes)[0]


def inclusion_proof(index: int, size: int) -> list[bytes]:
    _require_size(size)
    if not 0 <= index < size:
        raise InvalidInput(f"Entry {index} is not in a tree of size {size}.")
    return merkle.resolve(merkle.inclusion_ranges(index, size), _fetch_nodes)


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def inclusion_proof_json(index: int, size: int) -> dict:
    """An inclusion proof as served and printed: base64 leaf hash, root and path."""
    proof = inclusion_proof(index, size)
    return {"index": index, "size": size, "leaf_hash": _b64(leaf_hash_of(index)),
            "root": _b64(root_at(size)), "proof": [_b64(h) for h in proof]}


def consistency_proof_json(old: int, new: int) -> dict:
    """A consistency proof as served and printed: both roots and the path, in base64."""
    proof = consistency_proof(old, new)
    return {"old": old, "new": new, "old_root": _b64(root_at(old)),
            "new_root": _b64(root_at(new)), "proof": [_b64(h) for h in proof]}


def consistency_proof(old: int, new: int) -> list[bytes]:
    _require_size(new)
    if not 0 <= old <= new:
        raise InvalidInput(f"No consistency proof from size {old} to size {new}.")
    return merkle.resolve(merkle.consistency_ranges(old, new), _fetch_nodes)


def leaf_hash_of(index: int) -> bytes:
    if not 0 <= index < tree_size():
        raise NotFound(f"The log has no entry {index}.")
    node = Node.objects.filter(key=node_key(0, index)).values_list("hash", flat=True).first()
    if node is None:
        raise NotFound(f"The log has no entry {index}.")
    return bytes(node)


def get_entry(index: int) -> Entry:
    entry = Entry.objects.filter(index=index).first()
    if entry is None:
        raise NotFound(f"The log has no entry {index}.")
    return entry


def entries_about(subject: str):
    """Entries recorded about one subject, oldest first."""
    return Entry.objects.filter(subject=subject).order_by("index")


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
        raise NotFound("No such tile.")
    tree_level = TILE_HEIGHT * level
    first = index * TILE_WIDTH
    if tree_level > 63 or (first + width) << tree_level > tree_size():
        raise NotFound("The log has no such tile yet.")
    hashes = Node.objects.filter(
        key__gte=node_key(tree_level, first), key__lt=node_key(tree_level, first + width)
    ).order_by("key").values_list("hash", flat=True)
    return b"".join(bytes(h) for h in hashes)


def entry_bundle(index: int, width: int) -> bytes:
    """Entries ``[index*256, index*256 + width)``, each prefixed with its uint16 length."""
    if index < 0 or not 1 <= width <= TILE_WIDTH:
        raise NotFound("No such entry bundle.")
    first = index * TILE_WIDTH
    if first + width > tree_size():
        raise NotFound("The log has no such entry bundle yet.")
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


def checkpoint_if_grown() -> Checkpoint | None:
    """Sign a checkpoint for the current size if the log grew since the last one.

    Safe to run in many workers at once: a size is signed once (unique constraint).
    """
    state = _state()
    latest = Checkpoint.objects.order_by("-size").values_list("size", flat=True).first()
    if latest is not None and latest >= state.size:
        return None
    root = merkle.CompactRange.from_bytes(state.size, bytes(state.frontier)).root()
    text = note.Checkpoint(settings.LEDGER_ORIGIN, state.size, root).text()
    try:
        with transaction.atomic():
            checkpoint = Checkpoint.objects.create(
                size=state.size, root=root, text=text.decode(),
                signature=signer().signature_line(text))
    except IntegrityError:
        return None
    if Witness.objects.filter(active=True).exclude(url="").exists():
        from sahab.ledger.tasks import submit_to_witnesses

        transaction.on_commit(submit_to_witnesses.enqueue)
    return checkpoint


def latest_checkpoint() -> Checkpoint:
    checkpoint = Checkpoint.objects.order_by("-size").first()
    if checkpoint is None:
        # Before any checkpoint, sign the current tree (an empty log gets one of size 0);
        # if another worker signed it first, read theirs.
        checkpoint = checkpoint_if_grown() or Checkpoint.objects.order_by("-size").first()
    return checkpoint


def signed_checkpoint(checkpoint: Checkpoint) -> str:
    """The checkpoint as served: body, blank line, the log's signature, cosignatures."""
    cosignatures = "".join(checkpoint.cosignatures.order_by("witness__name")
                           .values_list("line", flat=True))
    return f"{checkpoint.text}\n{checkpoint.signature}{cosignatures}"


def checkpoint_covering(index: int) -> Checkpoint:
    """The latest checkpoint, signing a new one first if it does not cover ``index`` yet."""
    checkpoint = latest_checkpoint()
    if checkpoint.size <= index:
        checkpoint_if_grown()
        checkpoint = latest_checkpoint()
    if checkpoint.size <= index:
        raise NotFound(f"The log has no entry {index}.")
    return checkpoint


# --- receipts (c2sp.org/tlog-proof) ----------------------------------------------------

def receipt(index: int, *, wait: bool = True) -> str | None:
    """A self-contained, offline-verifiable proof that entry ``index`` is in the log.

    With ``wait=False`` it is None until a checkpoint covers the entry (within about a
    second), instead of signing one now: busy writers should not sign a checkpoint each.
    """
    if not wait:
        latest = latest_checkpoint()
        if latest.size <= index:
            return None
    checkpoint = checkpoint_covering(index)
    proof = inclusion_proof(index, checkpoint.size)
    lines = ["c2sp.org/tlog-proof@v1", f"index {index}", *(_b64(h) for h in proof)]
    return "\n".join(lines) + "\n\n" + signed_checkpoint(checkpoint)


# --- witnesses of this log ----------------------------------------------------------

@transaction.atomic
def register_witness(*, name: str, vkey: str, url: str = "") -> Witness:
    """Register an independent witness whose cosignatures the log stores and serves."""
    try:
        verifier = note.parse_vkey(vkey)
    except note.NoteError as exc:
        raise InvalidInput(f"Bad verifier key: {exc}") from None
    if verifier.sig_type != note.SIG_COSIGNATURE_V1 or verifier.name != name:
        raise InvalidInput("A witness key is a cosignature/v1 (type 0x04) key named "
                           "like the witness.")
    if Witness.objects.filter(name=name).exists():
        raise Conflict(f"A witness named {name} is registered.")
    witness = Witness.objects.create(name=name, vkey=vkey.strip(), url=url)
    append(type="ledger.witness.registered", subject=f"witness:{name}",
           data={"name": name, "vkey": vkey.strip(), "url": url}, actor="system")
    return witness


def checkpoint_of_size(size: int) -> Checkpoint:
    checkpoint = Checkpoint.objects.filter(size=size).first()
    if checkpoint is None:
        raise NotFound(f"No checkpoint of size {size}.")
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
    """Verify a witness's cosignature line(s) on ``checkpoint`` and keep the valid one."""
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
        return True
    return False
