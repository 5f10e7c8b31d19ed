"""Signed notes, checkpoints and cosignatures against the published examples."""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sahab.ledger import note
from sahab.ledger.note import NoteError

# The example key and note of the reference implementation (golang.org/x/mod/sumdb/note).
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
TEXT = (b"If you think cryptography is the answer to your problem,\n"
        b"then you don't know what your problem is.\n")
SIGNED = TEXT + ("\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2p"
                 "ZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").encode()


def test_the_example_key_signs_the_example_note_byte_for_byte():
    signer = note.parse_signer_key(SKEY)
    assert signer.verifier.vkey() == VKEY
    assert TEXT + b"\n" + signer.signature_line(TEXT).encode() == SIGNED


def test_the_example_note_verifies_and_any_change_fails():
    verifier = note.parse_vkey(VKEY)
    parsed, verified = note.open_note(SIGNED, [verifier])
    assert parsed.text == TEXT and verified[0].name == "PeterNeumann"
    for i in range(0, len(TEXT), 7):
        tampered = bytearray(SIGNED)
        tampered[i] ^= 0x01
        with pytest.raises(NoteError):
            note.open_note(bytes(tampered), [verifier])


@pytest.mark.parametrize("vkey", [
    VKEY.replace("c74f20a3", "c74f20a4"), VKEY + "x", "PeterNeumann+c74f20a3",
    "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    VKEY.replace("+ARp", "+AXp"),
])
def test_mangled_verifier_keys_are_refused(vkey):
    with pytest.raises(NoteError):
        note.parse_vkey(vkey)


def test_signatures_from_unknown_keys_are_ignored_but_one_known_is_needed():
    other = note.Signer("other.example/log", Ed25519PrivateKey.generate())
    with pytest.raises(NoteError):
        note.open_note(SIGNED, [other.verifier])
    both = SIGNED + other.signature_line(TEXT).encode()
    _, verified = note.open_note(both, [note.parse_vkey(VKEY)])
    assert [s.name for s in verified] == ["PeterNeumann"]


@pytest.mark.parametrize("bad", [
    b"", b"no newline", b"text\n\n", b"text\n\nnot a signature\n",
    b"text\x01\n\n" + SIGNED.split(b"\n\n")[1], b"\xff\n\n" + SIGNED.split(b"\n\n")[1],
])
def test_malformed_notes_are_refused(bad):
    with pytest.raises(NoteError):
        note.open_note(bad, [note.parse_vkey(VKEY)])


def test_checkpoint_round_trip_and_cosignature():
    log = note.Signer("sahab.example/ledger", Ed25519PrivateKey.generate())
    checkpoint = note.Checkpoint("sahab.example/ledger", 20852163,
                                 base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="))
    text = checkpoint.text()
    assert text == (b"sahab.example/ledger\n20852163\n"
                    b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")
    witness_key = Ed25519PrivateKey.generate()
    witness = note.Verifier("witness.example/w1", note.SIG_COSIGNATURE_V1,
                            note.Signer("w", witness_key).verifier.public_key)
    signed = (text + b"\n" + log.signature_line(text).encode() +
              note.cosign("witness.example/w1", witness_key, text, 1679315147).encode())
    opened, cosigs = note.open_checkpoint(signed, log.verifier, [witness])
    assert opened == checkpoint and [c.name for c in cosigs] == ["witness.example/w1"]
    assert note.parse_vkey(witness.vkey()) == witness
    forged = signed.replace(b"20852163", b"20852164")
    with pytest.raises(NoteError):
        note.open_checkpoint(forged, log.verifier, [witness])
