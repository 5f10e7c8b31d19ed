"""RFC 9162 Merkle tree hashes, proofs and their verification.

Pure functions, no database: the ledger, the auditor's verifier and the receipt
checker all use them. Hashes are 32-byte SHA-256 digests (``hashlib``).

Proof *generation* is expressed as the list of tree ranges whose hashes form the
proof; the caller resolves each range to stored hashes of perfect subtrees (see
``perfect_subtrees``), so that a proof needs O(log n) stored hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof, size or index that does not verify."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over the given leaf hashes (iterative, O(n))."""
    if not leaf_hashes:
        return EMPTY_ROOT
    frontier = CompactRange()
    for h in leaf_hashes:
        frontier.append(h)
    return frontier.root()


# --- the right edge of a growing tree ---------------------------------------------------

class CompactRange:
    """The perfect subtrees covering ``[0, size)``: the whole state needed to append.

    ``append`` returns the new perfect-subtree nodes ``(level, index, hash)`` that the
    leaf completes, so that the caller stores every node once, never recomputing.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()):
        if len(hashes) != bin(size).count("1"):
            raise ValueError("a compact range holds one hash per set bit of its size")
        self.size = size
        self.hashes = list(hashes)  # left to right: biggest subtree first

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        created = [(0, self.size, leaf)]
        h, index, level = leaf, self.size, 0
        while index & 1:  # the new node completes a left sibling's pair
            h = node_hash(self.hashes.pop(), h)
            index >>= 1
            level += 1
            created.append((level, index, h))
        self.hashes.append(h)
        self.size += 1
        return created

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        h = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            h = node_hash(left, h)
        return h

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> CompactRange:
        return cls(size, [blob[i:i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)])


# --- which hashes a proof is made of ------------------------------------------------------

def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Ranges [a, b) whose MTH form PATH(index, D[0:size]), leaf to root (RFC 9162 2.1.3.1)."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi, m = 0, size, index
    while hi - lo > 1:
        k = _split(hi - lo)
        if m - lo < k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    return ranges[::-1]


def consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """Ranges whose MTH form PROOF(old, D[0:new]) (RFC 9162 2.1.4.1)."""
    if not 0 <= old <= new:
        raise ProofError(f"no consistency proof from size {old} to size {new}")
    if old == 0 or old == new:
        return []
    ranges: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, new, old, True
    while True:
        if m == hi - lo:
            if not complete:
                ranges.append((lo, hi))
            break
        k = _split(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            m -= k
            lo = lo + k
            complete = False
    return ranges[::-1]


def perfect_subtrees(lo: int, hi: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` that MTH(D[lo:hi]) is built from, left to right.

    ``[lo, hi)`` must be a node of some tree (as every proof range is).
    """
    nodes: list[tuple[int, int]] = []
    while hi > lo:
        size = hi - lo
        if size & (size - 1) == 0:
            level = size.bit_length() - 1
            nodes.append((level, lo >> level))
            break
        k = _split(size)
        level = k.bit_length() - 1
        nodes.append((level, lo >> level))
        lo += k
    return nodes


def hash_from_subtrees(hashes: Sequence[bytes]) -> bytes:
    """Combine the hashes of ``perfect_subtrees`` (left to right) into the range's MTH."""
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


def resolve(ranges: Iterable[tuple[int, int]],
            fetch: Callable[[list[tuple[int, int]]], dict[tuple[int, int], bytes]]
            ) -> list[bytes]:
    """Turn proof ranges into hashes with one call to ``fetch`` for all stored nodes."""
    plan = [(r, perfect_subtrees(*r)) for r in ranges]
    stored = fetch(sorted({n for _, nodes in plan for n in nodes}))
    try:
        return [hash_from_subtrees([stored[n] for n in nodes]) for _, nodes in plan]
    except KeyError as exc:
        raise ProofError(f"the tree has no stored node {exc.args[0]}") from None


# --- verification (RFC 9162 2.1.3.2 and 2.1.4.2) ---------------------------------------

def _check_hash(h: bytes, what: str) -> None:
    if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
        raise ProofError(f"{what} is not a 32-byte hash")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes,
                              proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` leads to from ``leaf`` at ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    _check_hash(leaf, "the leaf hash")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is too short")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Raise ``ProofError`` unless ``proof`` shows ``leaf`` at ``index`` under ``root``."""
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError("the inclusion proof does not lead to the root")


def verify_consistency(old: int, new: int, proof: Sequence[bytes], old_root: bytes,
                       new_root: bytes) -> None:
    """Raise ``ProofError`` unless ``proof`` shows tree ``old`` is a prefix of tree ``new``.

    As the reference implementation does, a proof from the empty tree is refused:
    every tree extends it, so such a "proof" proves nothing.
    """
    if not 0 <= old <= new:
        raise ProofError(f"size {old} cannot be older than size {new}")
    if old == new:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root or (old == 0 and old_root != EMPTY_ROOT):
            raise ProofError("two different roots for the same size")
        return
    if old == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if not proof:
        raise ProofError("the proof is empty")
    path = list(proof)
    if old & (old - 1) == 0:  # old is a power of two: its root is the first node
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is too short")
    if fr != old_root:
        raise ProofError("the proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("the proof does not lead to the new root")


# --- subtrees (draft-ietf-plants-merkle-tree-certs, section 4) ---------------------------

def is_valid_subtree(start: int, end: int) -> bool:
    """``[start, end)`` is a subtree: start <= end and start is a multiple of BIT_CEIL(size)."""
    if start < 0 or start > end:
        return False
    size = end - start
    ceil = 1 if size <= 1 else 1 << (size - 1).bit_length()
    return start % ceil == 0


def subtree_root_from_inclusion_proof(index: int, start: int, end: int, leaf: bytes,
                                      proof: Sequence[bytes]) -> bytes:
    """Evaluate a subtree inclusion proof: the expected hash of subtree ``[start, end)``."""
    if not is_valid_subtree(start, end) or not start <= index < end:
        raise ProofError(f"[{start}, {end}) is not a subtree containing {index}")
    return root_from_inclusion_proof(index - start, end - start, leaf, proof)


def verify_subtree_consistency(start: int, end: int, size: int, proof: Sequence[bytes],
                               subtree_hash: bytes, root: bytes) -> None:
    """Raise ``ProofError`` unless subtree ``[start, end)`` is consistent with tree ``size``."""
    if not is_valid_subtree(start, end) or end > size:
        raise ProofError(f"[{start}, {end}) is not a subtree of a tree of size {size}")
    if start == end:
        if proof or subtree_hash != EMPTY_ROOT:
            raise ProofError("an empty subtree has an empty proof and the empty hash")
        return
    fn, sn, tn = start, end - 1, size - 1
    if sn == tn:
        while fn != sn:
            fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    else:
        while fn != sn and sn & 1:
            fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    path = list(proof)
    if fn == sn:
        fr = sr = subtree_hash
    else:
        if not path:
            raise ProofError("the proof is empty")
        fr = sr = path.pop(0)
    for c in path:
        if tn == 0:
            raise ProofError("the proof is too long")
        if sn & 1 or sn == tn:
            if fn < sn:
                fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not sn & 1:
                fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn, tn = fn >> 1, sn >> 1, tn >> 1
    if tn != 0 or fr != subtree_hash or sr != root:
        raise ProofError("the subtree consistency proof does not verify")
