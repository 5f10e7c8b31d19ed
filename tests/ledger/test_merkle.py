"""The Merkle tree against the published RFC 6962/9162 test vectors and properties."""

import base64
import hashlib
import json
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
