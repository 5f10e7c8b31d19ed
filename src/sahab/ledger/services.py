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
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from sahab.core import dbrouting
from sahab.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sahab.ledger import merkle, note
from sahab.ledger.errors import LedgerError
from sahab.ledger.events import LedgerOwnEvent
from sahab.ledger.models import (
    Checkpoint,
    Cosignature,
    Entry,
    LogState,
    Node,
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
    return append(type=event.value, subject=subject, data=data, actor=actor)


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
        raise NotFound(LedgerError.NO_TREE_OF_SIZE, size=size)


def root_at(size: int) -> bytes:
    """The root hash of the first ``size`` entries, from O(log n) stored nodes."""
    _require_size(size)
    if size == 0:
        return merkle.EMPTY_ROOT
    return merkle.resolve([(0, size)], _fetch_nodes)[0]


def inclusion_proof(index: int, size: int) -> list[bytes]:
    _require_size(size)
    if not 0 <= index < size:
        raise InvalidInput(LedgerError.ENTRY_NOT_IN_TREE, index=index, size=size)
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
        raise InvalidInput(LedgerError.NO_CONSISTENCY_PROOF, old=old, new=new)
    return merkle.resolve(merkle.consistency_ranges(old, new), _fetch_nodes)


def leaf_hash_of(index: int) -> bytes:
    if not 0 <= index < tree_size():
        raise NotFound(LedgerError.NO_ENTRY, index=index)
    node = Node.objects.filter(key=node_key(0, index)).values_list("hash", flat=True).first()
    if node is None:
        raise NotFound(LedgerError.NO_ENTRY, index=index)
    return bytes(node)


def get_entry(index: int) -> Entry:
    entry = Entry.objects.filter(index=index).first()
    if entry is None:
        raise NotFound(LedgerError.NO_ENTRY, index=index)
    return entry


def entries_about(subject: str):
    """Entries recorded about one subject, oldest first."""
    return Entry.objects.filter(subject=subject).order_by("index")


def proven_entries(indexes: Iterable[int], *, signed: bool = True) -> dict[int, dict]:
    """The entries at ``indexes``, each proven by an inclusion proof to the latest
    published checkpoint, whose signature is checked: what another app trusts where the
    database alone could have been edited. Raises ``Conflict`` when an entry does not
    prove (or no checkpoint covers it yet).

    ``signed=False`` proves them against the current tree instead (for a writer whose own
    transaction holds entries that no checkpoint may cover yet, such as the demo loader).
    """
    import json

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
        signing.add_cosignature_line(checkpoint.size, bytes(checkpoint.root), parsed.line)
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
    return {
        "origin": settings.LEDGER_ORIGIN, "tree_size": tree_size(),
        "published": published_json, "cosignatures_required": cosignatures_required(),
        "signer": signer, "database_guard": {"whole": not missing, "missing": missing},
        "witnesses": witnesses,
        "ok": not missing and not alarm.get("active") and not signer.get("damaged"),
    }
