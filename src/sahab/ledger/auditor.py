"""``sahab ledger verify``: an independent auditor's check of a sahab ledger.

It needs nothing from the log but its public URL and public key: it downloads the
signed checkpoint, every entry bundle and every tile, recomputes the whole tree,
and compares it with what it saw last time (kept in a local state file), so that a
rewrite, a deletion, a reordering, a fork or a roll-back is reported with the first
bad index. No Django, no database: it runs anywhere.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from sahab.ledger import merkle, note

TILE = 256


class AuditFailure(Exception):
    """The log is not what it claims to be: the message says what and where."""


@dataclass
class AuditResult:
    size: int
    root: bytes
    previous_size: int
    cosigned_by: list[str]


def tile_path(level: int | str, index: int, width: int = TILE) -> str:
    digits = f"{index:03d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i:i + 3] for i in range(0, len(digits), 3)]
    encoded = "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])
    return f"tile/{level}/{encoded}" + (f".p/{width}" if width < TILE else "")


def split_bundle(data: bytes) -> list[bytes]:
    entries, i = [], 0
    while i < len(data):
        if i + 2 > len(data):
            raise AuditFailure("an entry bundle is truncated")
        n = int.from_bytes(data[i:i + 2], "big")
        if i + 2 + n > len(data):
            raise AuditFailure("an entry bundle is truncated")
        entries.append(data[i + 2:i + 2 + n])
        i += 2 + n
    return entries


class StateFile:
    """What the auditor saw last time: size, root, checkpoint and every leaf hash."""

    def __init__(self, path: Path):
        self.path = path
        self.leaves_path = path.with_suffix(path.suffix + ".leaves")

    def load(self) -> tuple[dict, bytes]:
        if not self.path.exists():
            return {"size": 0}, b""
        state = json.loads(self.path.read_text())
        leaves = self.leaves_path.read_bytes() if self.leaves_path.exists() else b""
        if len(leaves) != 32 * state["size"]:
            raise AuditFailure(f"the state file {self.leaves_path} is damaged; remove both "
                               "state files to start again from scratch")
        return state, leaves

    def save(self, state: dict, leaves: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for target, data in ((self.leaves_path, leaves),
                             (self.path, json.dumps(state, indent=2).encode())):
            tmp = target.with_suffix(target.suffix + ".tmp")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)


def default_state_path(origin: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in origin)
    home = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state"))
    return home / "sahab-ledger" / f"{safe}.json"


class Auditor:
    """Checks a log from its URL and key; every given witness must have cosigned the
    checkpoint (``min_witnesses`` of them, when fewer are required)."""

    def __init__(self, url: str, log_key: str, *, witness_keys: list[str] = (),
                 min_witnesses: int | None = None,
                 state_path: Path | None = None, client: httpx.Client | None = None,
                 progress: Callable[[int], object] | None = None):
        self.base = url.rstrip("/")
        try:
            self.log = note.parse_vkey(log_key)
            self.witnesses = [note.parse_vkey(k) for k in witness_keys]
        except note.NoteError as exc:
            raise AuditFailure(f"bad key: {exc}") from None
        if any(w.sig_type != note.SIG_COSIGNATURE_V1 for w in self.witnesses):
            raise AuditFailure("bad key: a witness key is a cosignature/v1 (type 0x04) key")
        self.min_witnesses = len(self.witnesses) if min_witnesses is None else min_witnesses
        self.state = StateFile(state_path or default_state_path(self.log.name))
        self.client = client or httpx.Client(timeout=30)
        self.progress = progress

    def _get(self, path: str) -> bytes:
        response = self.client.get(f"{self.base}/{path}")
        if response.status_code == 404:
            raise FileNotFoundError(path)
        if response.status_code != 200:
            raise AuditFailure(f"{self.base}/{path} answered HTTP {response.status_code}")
        return response.content

    def fetch_checkpoint(self) -> tuple[note.Checkpoint, list[str]]:
        try:
            data = self._get("checkpoint")
        except FileNotFoundError:
            raise AuditFailure("the log serves no checkpoint") from None
        try:
            checkpoint, cosigs = note.open_checkpoint(data, self.log, self.witnesses)
        except note.NoteError as exc:
            raise AuditFailure(f"the checkpoint does not verify with the given keys: {exc}") \
                from None
        names = [c.name for c in cosigs]
        if len(set(names)) < self.min_witnesses:
            missing = [w.name for w in self.witnesses if w.name not in names]
            raise AuditFailure(
                f"the checkpoint of size {checkpoint.size} is not cosigned by "
                f"{', '.join(missing)} ({len(set(names))} of the {self.min_witnesses} witness "
                "cosignatures required): no independent witness vouches for this tree")
        return checkpoint, names

    def _leaf_hashes(self, size: int) -> list[bytes]:
        """Hash every entry, checking each bundle against the level-0 tile."""
        leaves: list[bytes] = []
        for n in range((size + TILE - 1) // TILE):
            width = min(TILE, size - n * TILE)
            first = n * TILE
            try:
                bundle = split_bundle(self._get(tile_path("entries", n, width)))
            except FileNotFoundError:
                raise AuditFailure(f"entries {first} to {first + width - 1} are missing "
                                   f"(entry bundle {n} is not served)") from None
            try:
                tile = self._get(tile_path(0, n, width))
            except FileNotFoundError:
                raise AuditFailure(f"the tree's leaf hashes for entries {first} to "
                                   f"{first + width - 1} are missing") from None
            hashes = [merkle.leaf_hash(e) for e in bundle]
            for i in range(width):
                served = tile[32 * i:32 * i + 32]
                mine = hashes[i] if i < len(hashes) else None
                if mine != served:
                    what = ("is missing" if mine is None else
                            "does not match the leaf hash in the tree: it was altered, "
                            "deleted or moved")
                    raise AuditFailure(f"entry {first + i} {what}")
            if len(hashes) != width or len(tile) != 32 * width:
                raise AuditFailure(f"entry bundle {n} holds {len(hashes)} entries instead of "
                                   f"{width}: entry {first + min(len(hashes), width)} was "
                                   "added or removed")
            leaves.extend(hashes)
            if self.progress:
                self.progress(width)
        return leaves

    def _check_upper_tiles(self, leaves: list[bytes], size: int) -> None:
        """Every served tile above level 0 must hold the hashes recomputed from the leaves."""
        level_hashes = leaves
        level = 0
        while len(level_hashes) >= TILE:
            full = len(level_hashes) // TILE
            next_hashes = [merkle.root_of(level_hashes[i * TILE:(i + 1) * TILE])
                           for i in range(full)]
            level += 1
            for n in range((len(next_hashes) + TILE - 1) // TILE):
                width = min(TILE, len(next_hashes) - n * TILE)
                try:
                    served = self._get(tile_path(level, n, width))
                except FileNotFoundError:
                    raise AuditFailure(f"tile {level}/{n} is missing") from None
                mine = b"".join(next_hashes[n * TILE:n * TILE + width])
                if served != mine:
                    bad = next(i for i in range(width)
                               if served[32 * i:32 * i + 32] != mine[32 * i:32 * i + 32])
                    first = (n * TILE + bad) * TILE ** level
                    raise AuditFailure(f"tile {level}/{n} does not match the entries "
                                       f"{first} to {first + TILE ** level - 1}")
            level_hashes = next_hashes

    def _locate_divergence(self, checkpoint: note.Checkpoint,
                           leaves: list[bytes]) -> int | None:
        """Name the first altered entry on first contact, from the proof the log's signer
        publishes when it refuses a rewritten database (nothing is taken on trust)."""
        try:
            status = json.loads(self._get("status"))
        except (FileNotFoundError, AuditFailure, ValueError, httpx.HTTPError):
            return None
        divergence = _divergence_of(status) if isinstance(status, dict) else None
        return _check_divergence(divergence, checkpoint, leaves) if divergence else None

    def run(self) -> AuditResult:
        checkpoint, cosigned_by = self.fetch_checkpoint()
        previous, old_leaves = self.state.load()
        old_size = previous["size"]
        if checkpoint.size < old_size:
            raise AuditFailure(
                f"the log was rolled back: its checkpoint now has {checkpoint.size} entries, "
                f"it had {old_size} when last verified; entries from {checkpoint.size} on "
                "were removed")
        leaves = self._leaf_hashes(checkpoint.size)
        for i in range(old_size):
            if leaves[i] != old_leaves[32 * i:32 * i + 32]:
                raise AuditFailure(f"entry {i} was rewritten since it was last verified: "
                                   "the log forked from what this auditor saw")
        self._check_upper_tiles(leaves, checkpoint.size)
        root = merkle.root_of(leaves)
        if root != checkpoint.root:
            located = self._locate_divergence(checkpoint, leaves)
            if located is not None:
                raise AuditFailure(
                    f"entry {located} is not the entry the log signed: the signed checkpoint "
                    f"of size {checkpoint.size} commits to another leaf hash at {located} "
                    f"(shown by the signer's proof, checked against that checkpoint; entries "
                    f"0 to {located - 1} match it). The database was rewritten.")
            raise AuditFailure("the signed checkpoint's root does not match the entries and "
                               "tiles served: the tree was rewritten")
        self.state.save({"origin": self.log.name, "size": checkpoint.size,
                         "root": base64.b64encode(root).decode(),
                         "checkpoint": checkpoint.text().decode()}, b"".join(leaves))
        return AuditResult(checkpoint.size, root, old_size, cosigned_by)


def _divergence_of(status: dict) -> dict | None:
    alarm = (status.get("signer") or {}).get("alarm") or {}
    return alarm.get("divergence") if alarm.get("active") else None


def _check_divergence(d: dict, checkpoint: note.Checkpoint, leaves: list[bytes]) -> int | None:
    """The index a signer's divergence proof shows altered, if the proof holds.

    It holds when the signed leaf hash at ``index`` is included under the checkpoint's
    root, every hash on its left is recomputed from the entries served before ``index``,
    and the entry served at ``index`` hashes to something else.
    """
    try:
        index, size = int(d["index"]), int(d["size"])
        leaf = base64.b64decode(d["leaf_hash"], validate=True)
        proof = [base64.b64decode(p, validate=True) for p in d["proof"]]
    except (KeyError, TypeError, ValueError):
        return None
    if size != checkpoint.size or not 0 <= index < min(size, len(leaves)):
        return None
    try:
        merkle.verify_inclusion(index, size, leaf, proof, checkpoint.root)
    except merkle.ProofError:
        return None
    for (lo, hi), h in zip(merkle.inclusion_ranges(index, size), proof, strict=True):
        if hi <= index and merkle.root_of(leaves[lo:hi]) != h:
            return None
    return index if leaves[index] != leaf else None


def verify_proof_file(proof_file: bytes, entry: bytes, log_key: str,
                      witness_keys: list[str] = ()) -> tuple[int, note.Checkpoint]:
    """Check a c2sp.org/tlog-proof@v1 receipt for ``entry`` offline; returns (index, checkpoint)."""
    try:
        text = proof_file.decode("utf-8")
        head, sep, signed = text.partition("\n\n")
        lines = head.split("\n")
        if not sep or lines[0] != "c2sp.org/tlog-proof@v1":
            raise AuditFailure("not a c2sp.org/tlog-proof@v1 file")
        i = 1
        if lines[i].startswith("extra "):
            i += 1
        if not lines[i].startswith("index ") or not lines[i][6:].isdigit():
            raise AuditFailure("the proof has no index line")
        index = int(lines[i][6:])
        proof = [base64.b64decode(line, validate=True) for line in lines[i + 1:]]
        checkpoint, _ = note.open_checkpoint(
            signed.encode(), note.parse_vkey(log_key), [note.parse_vkey(k) for k in witness_keys])
        merkle.verify_inclusion(index, checkpoint.size, merkle.leaf_hash(entry), proof,
                                checkpoint.root)
    except (UnicodeDecodeError, ValueError, IndexError) as exc:  # NoteError, ProofError too
        raise AuditFailure(f"the receipt does not verify: {exc}") from None
    return index, checkpoint


class Monitor:
    """Follow a log: audit it again every ``interval`` seconds, keeping state, and stop at
    the first fork, rewrite or roll-back (``AuditFailure`` names the first bad index)."""

    def __init__(self, auditor: Auditor, *, interval: float = 60.0,
                 report: Callable[[str], object] = print):
        self.auditor = auditor
        self.interval = interval
        self.report = report

    def run(self, *, count: int | None = None, until: float | None = None) -> int:
        """Rounds done; returns when ``count`` rounds are done or the clock passes ``until``
        (a ``time.time()`` value). Raises ``AuditFailure`` on the first bad checkpoint."""
        import time

        rounds, seen = 0, None
        while True:
            try:
                result = self.auditor.run()
                if result.size != seen:
                    witnesses = (f", cosigned by {', '.join(result.cosigned_by)}"
                                 if result.cosigned_by else "")
                    self.report(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} "
                                f"size {result.size} root "
                                f"{base64.b64encode(result.root).decode()}{witnesses}: "
                                f"verified, consistent with {result.previous_size} seen before")
                    seen = result.size
            except (OSError, httpx.HTTPError) as exc:
                self.report(f"cannot reach the log, retrying: {exc}")
            rounds += 1
            if (count is not None and rounds >= count) or \
                    (until is not None and time.time() >= until):
                return rounds
            time.sleep(self.interval)
