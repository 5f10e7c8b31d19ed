"""The checkpoint signer, which never signs a fork.

The signer keeps its own record outside the database, in ``SAHAB_HOME/ledger/`` (or
``SAHAB_LEDGER_SIGNER_DIR``), readable by sahab's account only:

* ``checkpoint.json``: the last checkpoint it signed (the signed note, the cosignature
  lines gathered for it, and the tree's right edge at that size), replaced atomically;
* ``leaves``: the leaf hash of every entry it ever signed, 32 bytes each, append-only.

It signs a new tree only when the database's tree is consistent with that record: a
consistency proof from the database's nodes verifies from the signed root to the new
root, and every new entry hashes to its stored leaf. Otherwise it refuses, keeps serving
the last good checkpoint, logs the refusal, and raises an alarm (``alarm.json``, the
admin's ledger status page, ``/ledger/status``) naming the first entry that no longer
matches what it signed, with a proof anyone can check against the cosigned checkpoint.

Restoring a database backup that lacks signed entries is therefore refused until an
operator accepts it knowingly with ``accept_restore`` (``sahab ledger accept-restore``),
which records the event in the log itself.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sahab.core.errors import Conflict, DomainError
from sahab.core.localfiles import exclusive_lock
from sahab.ledger import merkle, note
from sahab.ledger.errors import LedgerError
from sahab.ledger.events import LedgerOwnEvent

log = logging.getLogger("sahab.ledger.signer")

RECORD = "checkpoint.json"
LEAVES = "leaves"
ALARM = "alarm.json"
CHUNK = 4096


def signer_dir() -> Path:
    configured = getattr(settings, "LEDGER_SIGNER_DIR", "")
    return Path(configured) if configured else settings.SAHAB_HOME / "ledger"


def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


# --- the record ----------------------------------------------------------------------

@dataclass
class SignedRecord:
    """The last checkpoint this signer signed, as kept outside the database."""

    size: int
    root: bytes
    text: str  # the checkpoint body
    signature: str  # the log's signature line
    cosignatures: str  # cosignature lines gathered since
    frontier: bytes  # the tree's right edge at ``size``
    signed_at: str

    def served(self) -> str:
        return f"{self.text}\n{self.signature}{self.cosignatures}"

    def cosignature_count(self) -> int:
        return len([line for line in self.cosignatures.splitlines() if line])


class RecordDamaged(Exception):
    """The signer's record does not verify: nothing is signed until an operator looks."""


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ensure_dir() -> Path:
    path = signer_dir()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


class LockOrderError(RuntimeError):
    """The signer's lock was asked for inside a database transaction."""


_held = threading.local()


@contextlib.contextmanager
def _locked() -> Iterator[Path]:
    """One signer at a time on this machine (workers, web requests signing on demand).

    The lock order is the signer's file lock first, then the database. Signing opens
    write transactions while it holds the file lock, so a caller whose transaction
    already holds the database's write lock (SQLite's, or rows on PostgreSQL) must not
    wait for the file lock: each side would wait for the other until SQLite's busy
    timeout, and for ever on PostgreSQL, which cannot see a file lock in a deadlock.
    Such a caller is refused here, and the code that keeps state beside the record does
    it after its commit (``keep_cosignature``). Re-entrant within a thread.
    """
    if getattr(_held, "depth", 0):
        _held.depth += 1
        try:
            yield signer_dir()
        finally:
            _held.depth -= 1
        return
    from sahab.ledger import services

    if services._in_callers_transaction():
        raise LockOrderError("the signer's lock is taken before any database transaction, "
                             "never inside one")
    path = _ensure_dir()
    with exclusive_lock(path / "signer.lock"):
        _held.depth = 1
        try:
            yield path
        finally:
            _held.depth = 0


_cache: dict[tuple, SignedRecord] = {}


def load_record() -> SignedRecord | None:
    """The last checkpoint signed here, checked with the log's key; None before the first.

    Served on every checkpoint request: a record already checked is not checked again
    while its file is unchanged.
    """
    path = signer_dir() / RECORD
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    from sahab.ledger import services

    key = (str(path), info.st_ino, info.st_mtime_ns, info.st_size, services.verifier_key())
    if key not in _cache:
        record = _read_record(path)
        _cache.clear()
        _cache[key] = record
    cached = _cache[key]
    return SignedRecord(**{f: getattr(cached, f) for f in cached.__dataclass_fields__})


def _read_record(path: Path) -> SignedRecord:
    from sahab.ledger import services

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RecordDamaged(f"{path} cannot be read: {exc}") from None
    try:
        signed = (data["text"] + "\n" + data["signature"]).encode()
        checkpoint, _ = note.open_checkpoint(signed, services.signer().verifier)
        frontier = base64.b64decode(data["frontier"])
        merkle_range = merkle.CompactRange.from_bytes(checkpoint.size, frontier)
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordDamaged(f"{path} does not verify with the log's key: {exc}") from None
    if merkle_range.root() != checkpoint.root:
        raise RecordDamaged(f"{path}: the recorded right edge does not lead to the signed root")
    return SignedRecord(checkpoint.size, checkpoint.root, data["text"], data["signature"],
                        data.get("cosignatures", ""), frontier, data.get("signed_at", ""))


def _save_record(record: SignedRecord) -> None:
    _write_atomically(_ensure_dir() / RECORD, json.dumps({
        "size": record.size, "root": _b64(record.root), "text": record.text,
        "signature": record.signature, "cosignatures": record.cosignatures,
        "frontier": _b64(record.frontier), "signed_at": record.signed_at,
    }, indent=2).encode())


def _read_leaves(first: int, last: int) -> list[bytes]:
    """Signed leaf hashes ``[first, last)`` from the record."""
    with open(signer_dir() / LEAVES, "rb") as f:
        f.seek(32 * first)
        data = f.read(32 * (last - first))
    if len(data) != 32 * (last - first):
        raise RecordDamaged(f"{signer_dir() / LEAVES} holds fewer leaves than were signed")
    return [data[i:i + 32] for i in range(0, len(data), 32)]


def _append_leaves(size: int, leaves: list[bytes]) -> None:
    """Append after the first ``size`` leaves (dropping what a crash left beyond them)."""
    fd = os.open(_ensure_dir() / LEAVES, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size < 32 * size:
            raise RecordDamaged("the signer's leaves file is shorter than its record")
        os.ftruncate(fd, 32 * size)
        os.lseek(fd, 32 * size, os.SEEK_SET)
        os.write(fd, b"".join(leaves))
        os.fsync(fd)
    finally:
        os.close(fd)


# --- alarms --------------------------------------------------------------------------

class SigningRefused(Exception):
    """The database's tree is not a continuation of what this signer signed."""

    def __init__(self, reason: str, *, first_bad_index: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.first_bad_index = first_bad_index


def alarm() -> dict | None:
    """The signer's current or last alarm (``active`` says whether it still refuses)."""
    try:
        return json.loads((signer_dir() / ALARM).read_text())
    except (OSError, ValueError):
        return None


def _raise_alarm(refusal: SigningRefused, key: str, record: SignedRecord | None,
                 tree_size: int) -> None:
    current = alarm()
    if current and current.get("active") and current.get("key") == key:
        return  # already raised for this very state; the scan below is not repeated
    divergence = None
    if record is not None and refusal.first_bad_index is not None \
            and refusal.first_bad_index < record.size:
        divergence = divergence_proof(record, refusal.first_bad_index)
    data = {"active": True, "key": key, "since": timezone.now().isoformat(),
            "reason": refusal.reason, "first_bad_index": refusal.first_bad_index,
            "signed_size": record.size if record else None,
            "signed_root": _b64(record.root) if record else None,
            "tree_size": tree_size, "divergence": divergence}
    _write_atomically(_ensure_dir() / ALARM, json.dumps(data, indent=2).encode())
    log.critical("LEDGER SIGNER REFUSES TO SIGN: %s (first bad index: %s); it keeps serving "
                 "the checkpoint of size %s", refusal.reason, refusal.first_bad_index,
                 record.size if record else "-")


def _clear_alarm() -> None:
    current = alarm()
    if current and current.get("active"):
        current["active"] = False
        current["resolved_at"] = timezone.now().isoformat()
        _write_atomically(_ensure_dir() / ALARM, json.dumps(current, indent=2).encode())
        log.warning("ledger signer: the tree is consistent again; signing resumes")


def divergence_proof(record: SignedRecord, index: int) -> dict:
    """What the signer signed at ``index``: its leaf hash and inclusion proof in the
    recorded tree. Its left-hand hashes are built from entries ``[0, index)`` only, so an
    auditor who recomputes them from the entries served proves both that those entries
    are intact and that entry ``index`` is not what was signed."""
    leaves = _read_leaves(0, record.size)
    proof = [merkle.root_of(leaves[a:b]) for a, b in merkle.inclusion_ranges(index,
                                                                             record.size)]
    return {"index": index, "size": record.size, "leaf_hash": _b64(leaves[index]),
            "proof": [_b64(h) for h in proof]}


# --- signing ---------------------------------------------------------------------------

def _tree_leaves(first: int, last: int, *, macs_from: int | None = None
                 ) -> tuple[list[bytes], list[bytes], int | None]:
    """The database's leaf hashes ``[first, last)``: from the entries' bytes, and stored;
    with ``macs_from``, also the first index from there whose entry lacks the platform's
    MAC (``services.not_the_platforms``), checked on the very rows hashed: a row swapped
    between two reads would otherwise be hashed in one form and checked in another."""
    from sahab.ledger import services
    from sahab.ledger.models import Entry, Node, node_key

    hashed, stored, unwritten = [], [], None
    for lo in range(first, last, CHUNK):
        hi = min(last, lo + CHUNK)
        rows = {index: (bytes(body), mac) for index, body, mac in
                Entry.objects.filter(index__gte=lo, index__lt=hi)
                .values_list("index", "body", "mac")}
        nodes = dict(Node.objects.filter(key__gte=node_key(0, lo), key__lt=node_key(0, hi))
                     .values_list("key", "hash"))
        for i in range(lo, hi):
            body, mac = rows.get(i, (None, None))
            hashed.append(merkle.leaf_hash(body) if body is not None else b"")
            node = nodes.get(node_key(0, i))
            stored.append(bytes(node) if node is not None else b"")
            if unwritten is None and macs_from is not None and i >= macs_from and \
                    body is not None and \
                    services.not_the_platforms(body, mac, index=i, pending=False):
                unwritten = i
    return hashed, stored, unwritten


def _first_difference(record: SignedRecord, tree_size: int) -> int | None:
    """The first index where the database no longer holds what was signed."""
    for lo in range(0, record.size, CHUNK):
        hi = min(record.size, lo + CHUNK)
        signed = _read_leaves(lo, hi)
        hashed, stored, _ = _tree_leaves(lo, min(hi, tree_size)) if lo < tree_size \
            else ([], [], None)
        for i, leaf in enumerate(signed):
            if i >= len(hashed) or leaf != hashed[i] or leaf != stored[i]:
                return lo + i
    return None


def _check_consistent(old_size: int, old_root: bytes, size: int, root: bytes,
                      what: str) -> None:
    from sahab.ledger import services

    if size < old_size:
        raise SigningRefused(
            f"the database's log has {size} entries but {what} has {old_size}: entries "
            f"from {size} on were removed (a roll-back or an old backup)")
    if old_size == 0:
        return
    try:
        proof = [] if old_size == size else services.consistency_proof(old_size, size)
        merkle.verify_consistency(old_size, size, proof, old_root, root)
    except (merkle.ProofError, DomainError) as exc:  # a missing node is a broken tree too
        raise SigningRefused(
            f"the database's tree of size {size} is not consistent with {what} "
            f"(size {old_size}): {exc}") from None


def sign_latest():
    """Sign the committed tree if it grew and continues the record; the new Checkpoint.

    Returns None when there is nothing new. Raises ``SigningRefused`` (after raising
    the alarm) when the tree does not continue what was signed.
    """
    from sahab.ledger import services
    from sahab.ledger.models import Checkpoint

    with _locked():
        state = services._state()
        size = state.size
        frontier = merkle.CompactRange.from_bytes(size, bytes(state.frontier))
        root = frontier.root()
        record = None
        try:
            record = load_record()
            signed = _verify_tree(record, size, root)
        except RecordDamaged as exc:
            refusal = SigningRefused(f"the signer's own record is damaged: {exc}")
            _raise_alarm(refusal, f"damaged:{exc}", None, size)
            raise refusal from None
        except SigningRefused as refusal:
            key = f"{record.size if record else 0}:{size}:{_b64(root)}"
            current = alarm()
            if current and current.get("active") and current.get("key") == key:
                refusal.first_bad_index = current.get("first_bad_index")
                raise  # raised already for this very state: no second scan
            if record is not None and refusal.first_bad_index is None:
                refusal.first_bad_index = _first_difference(record, size)
            _raise_alarm(refusal, key, record, size)
            raise
        _clear_alarm()
        latest = Checkpoint.objects.order_by("-size").first()
        if record is not None and record.size == size:
            if latest is None or latest.size < size:
                _restore_database_copy(record)
            return None
        if latest is not None and latest.size >= size:
            return None
        start = record.size if record else 0
        # what the key signed already was checked then (or predates MACs)
        hashed, stored, unwritten = _tree_leaves(
            start, size, macs_from=max(signed, settings.LEDGER_MACS_FROM))
        for i, (h, n) in enumerate(zip(hashed, stored, strict=True)):
            if not h or h != n:
                refusal = SigningRefused(
                    f"entry {start + i} does not hash to its stored leaf",
                    first_bad_index=start + i)
                _raise_alarm(refusal, f"leaf:{start + i}:{_b64(root)}", record, size)
                raise refusal
        if unwritten is not None:
            refusal = SigningRefused(
                f"entry {unwritten} does not carry the platform's MAC: the platform did "
                "not write it (a row inserted in the database)", first_bad_index=unwritten)
            _raise_alarm(refusal, f"mac:{unwritten}:{_b64(root)}", record, size)
            raise refusal
        mine = merkle.CompactRange.from_bytes(start, record.frontier) if record \
            else merkle.CompactRange()
        for leaf in hashed:
            mine.append(leaf)
        if mine.root() != root:
            refusal = SigningRefused("the database's right edge does not lead to the root "
                                     "of its entries")
            _raise_alarm(refusal, f"edge:{_b64(root)}", record, size)
            raise refusal
        text = note.Checkpoint(settings.LEDGER_ORIGIN, size, root).text()
        signature = services.signer().signature_line(text)
        _append_leaves(start, hashed)
        _save_record(SignedRecord(size, root, text.decode(), signature, "",
                                  mine.to_bytes(), timezone.now().isoformat()))
        return _database_copy(size, root, text.decode(), signature)


def _verify_tree(record: SignedRecord | None, size: int, root: bytes) -> int:
    """Refuse unless the tree continues the record and the database's last checkpoint;
    returns the size the log's key is known to have signed (by either)."""
    from sahab.ledger import services
    from sahab.ledger.models import Checkpoint

    signed = 0
    if record is not None:
        _check_consistent(record.size, record.root, size, root,
                          "the last checkpoint this signer signed")
        signed = record.size
    latest = Checkpoint.objects.order_by("-size").first()
    if latest is not None and latest.size > signed:
        # signed by this key elsewhere (another server) or before the record existed
        try:
            opened, _ = note.open_checkpoint(
                services.signed_checkpoint(latest).encode(), services.signer().verifier)
        except note.NoteError:
            return signed  # not ours: a row that proves nothing is no anchor
        _check_consistent(opened.size, opened.root, size, root,
                          "the latest checkpoint in the database")
        signed = opened.size
    return signed


def _database_copy(size: int, root: bytes, text: str, signature: str):
    from django.db import IntegrityError

    from sahab.ledger.models import Checkpoint

    try:
        with transaction.atomic():
            return Checkpoint.objects.create(size=size, root=root, text=text,
                                             signature=signature)
    except IntegrityError:
        return None  # another server signed the same size, over the same committed tree


def _restore_database_copy(record: SignedRecord) -> None:
    """The database lost the checkpoint the record holds (deleted rows): put it back."""
    from sahab.ledger import services

    checkpoint = _database_copy(record.size, record.root, record.text, record.signature)
    if checkpoint is not None and record.cosignatures:
        services.accept_cosignatures(checkpoint, record.cosignatures)
        log.warning("ledger signer: the checkpoint of size %s was missing from the database; "
                    "restored from the signer's record", record.size)


def keep_cosignature(size: int, root: bytes, line: str) -> None:
    """Keep a verified cosignature with the record once the caller's transaction
    committed (at once outside one): the file lock is never waited for while the
    database's write lock is held (see ``_locked``)."""
    from sahab.ledger import services

    if services._in_callers_transaction():
        # robust: a record that cannot be written now is caught up by ``copy_cosignatures``
        transaction.on_commit(lambda: add_cosignature_line(size, root, line), robust=True)
    else:
        add_cosignature_line(size, root, line)


def copy_cosignatures() -> None:
    """Copy to the record the cosignatures the database holds for the checkpoint it
    signed last but the record lacks: those of a process that stopped between a
    cosignature's commit and its copy (the worker's tick)."""
    from sahab.ledger import services
    from sahab.ledger.models import Cosignature

    if services._in_callers_transaction():
        return  # the lock order: never the signer's lock inside a transaction
    try:
        record = load_record()
    except RecordDamaged:
        return
    if record is None:
        return
    for line, root in Cosignature.objects.filter(checkpoint__size=record.size).values_list(
            "line", "checkpoint__root"):
        if line not in record.cosignatures:
            add_cosignature_line(record.size, bytes(root), line)


def add_cosignature_line(size: int, root: bytes, line: str) -> None:
    """Keep a verified cosignature with the record, so the last good checkpoint is served
    with it even if the database loses it."""
    with _locked():
        try:
            record = load_record()
        except RecordDamaged:
            return
        if record is None or record.size != size or record.root != root \
                or line in record.cosignatures:
            return
        record.cosignatures += line if line.endswith("\n") else line + "\n"
        _save_record(record)


# --- the explicit operations -----------------------------------------------------------

def status() -> dict:
    """What the signer holds and whether it refuses: for the status API and admin page."""
    try:
        record = load_record()
        damaged = None
    except RecordDamaged as exc:
        record, damaged = None, str(exc)
    return {
        "record": str(signer_dir()),
        "signed_size": record.size if record else None,
        "signed_root": _b64(record.root) if record else None,
        "signed_at": record.signed_at if record else None,
        "damaged": damaged,
        "alarm": alarm(),
    }


@dataclass(frozen=True)
class RestoreReport:
    previous_size: int
    previous_root: str
    restored_size: int
    restored_root: str
    forked: bool
    entry_index: int | None


def accept_restore(*, reason: str) -> RestoreReport:
    """Accept the database as it is now after restoring a backup: the explicit operation.

    If the restored tree continues what was signed (a point-in-time recovery to the
    latest transaction), nothing changes. Otherwise the signer's record is set aside
    (kept as ``checkpoint.json.replaced-<time>``, with its leaves), signing restarts
    from the restored tree, and a ``ledger.signer.restored`` entry records the sizes and
    roots of both trees and the reason: every witness and auditor that saw the old tree
    will still report the fork, as they must.
    """
    from sahab.ledger import services

    reason = (reason or "").strip()
    if not reason or len(reason) > 1000:
        raise Conflict(LedgerError.RESTORE_REASON_REQUIRED)
    with _locked() as path:
        state = services._state()
        root = merkle.CompactRange.from_bytes(state.size, bytes(state.frontier)).root()
        try:
            record = load_record()
        except RecordDamaged:
            record = None
        previous = (record.size, _b64(record.root)) if record else (0, _b64(merkle.EMPTY_ROOT))
        try:
            if record is not None:
                _check_consistent(record.size, record.root, state.size, root, "the record")
            forked = False
        except SigningRefused:
            forked = True
        entry = None
        if forked:
            stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
            for name in (RECORD, LEAVES):
                if (path / name).exists():
                    os.replace(path / name, path / f"{name}.replaced-{stamp}")
            _fsync_dir(path)
            with transaction.atomic():
                entry = services.record(
                    LedgerOwnEvent.SIGNER_RESTORED,
                    f"log:{settings.LEDGER_ORIGIN}",
                    "system",
                    {
                        "reason": reason,
                        "previous_size": previous[0],
                        "previous_root": previous[1],
                        "restored_size": state.size,
                        "restored_root": _b64(root),
                    },
                ).index
            _clear_alarm()
            log.warning("ledger signer: restored database accepted (%s); the log forks from "
                        "the signed size %s at size %s", reason, previous[0], state.size)
    return RestoreReport(previous[0], previous[1], state.size, _b64(root), forked, entry)

