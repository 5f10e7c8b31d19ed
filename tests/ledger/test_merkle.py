"""The Merkle tree against the published RFC 6962/9162 test vectors and properties."""

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sahab.ledger import merkle
from sahab.ledger.merkle import ProofError

VECTORS = Path(__file__).parent / "merkle-testdata"


def _vectors(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def _b64(value):
    return base64.b64decode(value) if value is not None else None


def _proof(data) -> list[bytes]:
    return [_b64(p) for p in data.get("proof") or []]


def _case_id(path: Path) -> str:
    return str(path.relative_to(VECTORS))


def _check(want_err: bool, verify) -> None:
    if want_err:
        with pytest.raises(ProofError):
            verify()
    else:
        verify()


@pytest.mark.parametrize("path", _vectors("inclusion"), ids=_case_id)
def test_inclusion_vectors(path):
    v = json.loads(path.read_text())
    _check(v["wantErr"], lambda: merkle.verify_inclusion(
        v["leafIdx"], v["treeSize"], _b64(v["leafHash"]), _proof(v), _b64(v["root"])))


@pytest.mark.parametrize("path", _vectors("consistency"), ids=_case_id)
def test_consistency_vectors(path):
    v = json.loads(path.read_text())
    _check(v["wantErr"], lambda: merkle.verify_consistency(
        v["size1"], v["size2"], _proof(v), _b64(v["root1"]), _b64(v["root2"])))


@pytest.mark.parametrize("path", _vectors("subtreeinclusion"), ids=_case_id)
def test_subtree_inclusion_vectors(path):
    v = json.loads(path.read_text())

    def verify():
        got = merkle.subtree_root_from_inclusion_proof(
            v["leafIdx"], v["start"], v["end"], _b64(v["leafHash"]), _proof(v))
        if got != _b64(v["root"]):
            raise ProofError("subtree hash mismatch")

    _check(v["wantErr"], verify)


@pytest.mark.parametrize("path", _vectors("subtreeconsistency"), ids=_case_id)
def test_subtree_consistency_vectors(path):
    v = json.loads(path.read_text())
    _check(v["wantErr"], lambda: merkle.verify_subtree_consistency(
        v["start"], v["end"], v["size"], _proof(v), _b64(v["root1"]), _b64(v["root2"])))


# The reference leaves of RFC 6962 / the transparency-dev test suite and their roots.
LEAVES = [bytes.fromhex(h) for h in
          ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
           "606162636465666768696a6b6c6d6e6f"]]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


@pytest.mark.parametrize("size", range(9))
def test_roots_of_the_reference_leaves(size):
    hashes = [merkle.leaf_hash(leaf) for leaf in LEAVES[:size]]
    assert merkle.root_of(hashes).hex() == ROOTS[size]


def _tree(n: int):
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    nodes: dict[tuple[int, int], bytes] = {}
    cr = merkle.CompactRange()
    roots = [merkle.EMPTY_ROOT]
    for leaf in leaves:
        for level, index, h in cr.append(leaf):
            nodes[(level, index)] = h
        roots.append(cr.root())
    return leaves, nodes, roots


def _fetch(nodes):
    return lambda keys: {k: nodes[k] for k in keys}


def test_compact_range_matches_the_recursive_definition():
    leaves, _, roots = _tree(70)
    for n in range(71):
        assert roots[n] == merkle.root_of(leaves[:n])


@settings(max_examples=150, deadline=None)
@given(data=st.data(), size=st.integers(min_value=1, max_value=300))
def test_every_inclusion_proof_verifies_and_any_change_fails(data, size):
    leaves, nodes, roots = _tree(size)
    index = data.draw(st.integers(0, size - 1))
    proof = merkle.resolve(merkle.inclusion_ranges(index, size), _fetch(nodes))
    merkle.verify_inclusion(index, size, leaves[index], proof, roots[size])
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        flipped = list(proof)
        flipped[i] = (int.from_bytes(flipped[i], "big") ^ (1 << bit)).to_bytes(32, "big")
        with pytest.raises(ProofError):
            merkle.verify_inclusion(index, size, leaves[index], flipped, roots[size])
        with pytest.raises(ProofError):
            merkle.verify_inclusion(index, size, leaves[index], proof[:-1], roots[size])
    with pytest.raises(ProofError):
        merkle.verify_inclusion(index, size, leaves[index], [*proof, proof[0] if proof
                                                             else leaves[0]], roots[size])
    wrong = data.draw(st.integers(0, size - 1))
    if leaves[wrong] != leaves[index]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(wrong, size, leaves[wrong], proof, roots[size])
    # A proof binds the size only through its shape (the checkpoint binds the rest):
    # claiming a size whose path has another length must fail.
    other = data.draw(st.integers(index + 1, 2 * size + 1))
    if len(merkle.inclusion_ranges(index, other)) != len(proof):
        with pytest.raises(ProofError):
            merkle.verify_inclusion(index, other, leaves[index], proof, roots[size])


@settings(max_examples=150, deadline=None)
@given(data=st.data(), new=st.integers(min_value=1, max_value=300))
def test_every_consistency_proof_verifies_and_any_change_fails(data, new):
    _, nodes, roots = _tree(new)
    old = data.draw(st.integers(1, new))
    proof = merkle.resolve(merkle.consistency_ranges(old, new), _fetch(nodes))
    merkle.verify_consistency(old, new, proof, roots[old], roots[new])
    if old < new:
        i = data.draw(st.integers(0, len(proof) - 1))
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 1]) + flipped[i][1:]
        with pytest.raises(ProofError):
            merkle.verify_consistency(old, new, flipped, roots[old], roots[new])
        with pytest.raises(ProofError):
            merkle.verify_consistency(old, new, proof[:-1], roots[old], roots[new])
        with pytest.raises(ProofError):
            merkle.verify_consistency(old, new, [*proof, proof[0]], roots[old], roots[new])
        with pytest.raises(ProofError):
            merkle.verify_consistency(old, new, proof, roots[old], roots[new - 1])
        if old > 1:
            with pytest.raises(ProofError):
                merkle.verify_consistency(old, new, proof, roots[old - 1], roots[new])


def test_empty_tree_root_is_the_hash_of_nothing():
    assert hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT
    assert merkle.root_of([]) == merkle.EMPTY_ROOT


def _refused(message: str, verify, *args) -> None:
    """``verify(*args)`` raises ProofError saying exactly ``message`` (a reader or an
    auditor's log sees the sentence, not only that something failed)."""
    with pytest.raises(ProofError, match=f"^{re.escape(message)}$"):
        verify(*args)


def test_each_refused_inclusion_proof_says_why():
    leaves, nodes, roots = _tree(5)
    proof = merkle.resolve(merkle.inclusion_ranges(2, 5), _fetch(nodes))
    verify = merkle.verify_inclusion
    _refused("index 5 is not in a tree of size 5", verify, 5, 5, leaves[2], proof, roots[5])
    _refused("index -1 is not in a tree of size 5", verify, -1, 5, leaves[2], proof, roots[5])
    _refused("index 0 is not in a tree of size 0", verify, 0, 0, leaves[0], [], roots[0])
    _refused("the leaf hash is not a 32-byte hash", verify, 2, 5, leaves[2][:31], proof,
             roots[5])
    _refused("the leaf hash is not a 32-byte hash", verify, 2, 5, leaves[2].hex(), proof,
             roots[5])
    _refused("the proof is too long", verify, 2, 5, leaves[2], [*proof, proof[0]], roots[5])
    _refused("the proof is too short", verify, 2, 5, leaves[2], proof[:-1], roots[5])
    _refused("the inclusion proof does not lead to the root", verify, 2, 5, leaves[2], proof,
             roots[4])
    _refused("the inclusion proof does not lead to the root", verify, 2, 5, leaves[3], proof,
             roots[5])
    # the same refusals straight from the root computation
    _refused("index 3 is not in a tree of size 2", merkle.root_from_inclusion_proof,
             3, 2, leaves[0], [])
    _refused("the leaf hash is not a 32-byte hash", merkle.root_from_inclusion_proof,
             0, 1, b"", [])
    _refused("the proof is too long", merkle.root_from_inclusion_proof,
             0, 1, leaves[0], [leaves[1]])
    _refused("the proof is too short", merkle.root_from_inclusion_proof,
             0, 2, leaves[0], [])


def test_each_refused_consistency_proof_says_why():
    _, nodes, roots = _tree(7)
    proof = merkle.resolve(merkle.consistency_ranges(3, 7), _fetch(nodes))
    verify = merkle.verify_consistency
    _refused("size 5 cannot be older than size 3", verify, 5, 3, [], roots[5], roots[3])
    _refused("size -1 cannot be older than size 3", verify, -1, 3, proof, roots[0], roots[3])
    _refused("a proof between equal sizes must be empty", verify, 3, 3, [roots[3]],
             roots[3], roots[3])
    _refused("two different roots for the same size", verify, 3, 3, [], roots[3], roots[2])
    _refused("two different roots for the same size", verify, 0, 0, [], roots[1], roots[1])
    _refused("a consistency proof from the empty tree proves nothing", verify, 0, 7, [],
             roots[0], roots[7])
    _refused("the proof is empty", verify, 3, 7, [], roots[3], roots[7])
    _refused("the proof is too long", verify, 3, 7, [*proof, proof[0]], roots[3], roots[7])
    _refused("the proof is too short", verify, 3, 7, proof[:-1], roots[3], roots[7])
    _refused("the proof does not lead to the old root", verify, 3, 7, proof, roots[2],
             roots[7])
    _refused("the proof does not lead to the new root", verify, 3, 7, proof, roots[3],
             roots[6])
    # equal sizes with the same root, and the empty tree against itself, verify
    verify(3, 3, [], roots[3], roots[3])
    verify(0, 0, [], merkle.EMPTY_ROOT, merkle.EMPTY_ROOT)


def test_a_compact_range_is_stored_and_restored_as_its_hashes():
    leaves, _, roots = _tree(12)
    cr = merkle.CompactRange()
    assert cr.root() == merkle.EMPTY_ROOT
    assert cr.to_bytes() == b""
    for leaf in leaves[:7]:
        cr.append(leaf)
    blob = cr.to_bytes()
    assert len(blob) == 3 * merkle.HASH_SIZE  # 7 = 4 + 2 + 1: one hash per subtree
    assert blob == b"".join(cr.hashes)
    restored = merkle.CompactRange.from_bytes(7, blob)
    assert (restored.size, restored.hashes, restored.root()) == (7, cr.hashes, roots[7])
    # the restored range goes on growing as the original would have
    for n, leaf in enumerate(leaves[7:], start=8):
        restored.append(leaf)
        assert restored.root() == roots[n]
    empty = merkle.CompactRange.from_bytes(0, b"")
    assert (empty.size, empty.hashes, empty.root()) == (0, [], merkle.EMPTY_ROOT)
    with pytest.raises(ValueError, match="^" + re.escape(
            "a compact range holds one hash per set bit of its size") + "$"):
        merkle.CompactRange.from_bytes(8, blob)


def test_appending_returns_the_nodes_the_leaf_completes():
    leaves, _, _ = _tree(4)
    cr = merkle.CompactRange()
    assert cr.append(leaves[0]) == [(0, 0, leaves[0])]
    n01 = merkle.node_hash(leaves[0], leaves[1])
    assert cr.append(leaves[1]) == [(0, 1, leaves[1]), (1, 0, n01)]
    assert cr.append(leaves[2]) == [(0, 2, leaves[2])]
    n23 = merkle.node_hash(leaves[2], leaves[3])
    assert cr.append(leaves[3]) == [(0, 3, leaves[3]), (1, 1, n23),
                                    (2, 0, merkle.node_hash(n01, n23))]
    assert (cr.size, cr.hashes) == (4, [merkle.node_hash(n01, n23)])
