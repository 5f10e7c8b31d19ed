"""C2SP signed notes, checkpoints and cosignatures (signed-note, tlog-checkpoint,
tlog-cosignature v1), with Ed25519 from ``cryptography``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIG_ED25519 = 0x01
SIG_COSIGNATURE_V1 = 0x04
MAX_SIGNATURES = 64
_NAME = re.compile(r"^[^\s+]+$")


class NoteError(ValueError):
    """A note, key or checkpoint that is malformed or does not verify."""


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || type || key)[:4], as signed-note recommends."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def _raw(public_key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class Verifier:
    """A named public key that checks one kind of note signature."""

    name: str
    sig_type: int
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.sig_type, self.public_key)

    def vkey(self) -> str:
        """The verifier key string ``name+hex(keyid)+base64(type || key)``."""
        return (f"{self.name}+{self.key_id.hex()}+"
                f"{base64.b64encode(bytes([self.sig_type]) + self.public_key).decode()}")

    def verify(self, message: bytes, signature: bytes) -> None:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            raise NoteError(f"bad signature from {self.name}") from None


def parse_vkey(vkey: str) -> Verifier:
    """Parse ``name+keyid+base64(type||key)``; only Ed25519 (0x01) and cosignature/v1 (0x04)."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3 or not _NAME.match(parts[0]):
        raise NoteError("a verifier key reads name+keyid+base64key")
    name, hex_id, b64 = parts
    try:
        raw = base64.b64decode(b64, validate=True)
        wanted_id = bytes.fromhex(hex_id)
    except (binascii.Error, ValueError):
        raise NoteError("the verifier key is not valid base64/hex") from None
    if len(hex_id) != 8 or len(raw) != 33 or raw[0] not in (SIG_ED25519, SIG_COSIGNATURE_V1):
        raise NoteError("only Ed25519 verifier keys (type 0x01 or 0x04) are supported")
    verifier = Verifier(name, raw[0], raw[1:])
    if verifier.key_id != wanted_id:
        raise NoteError("the key ID does not match the key")
    return verifier


@dataclass(frozen=True)
class Signer:
    name: str
    private_key: Ed25519PrivateKey
    sig_type: int = SIG_ED25519

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.sig_type, _raw(self.private_key.public_key()))

    def signature_line(self, text: bytes) -> str:
        sig = self.private_key.sign(text)
        blob = self.verifier.key_id + sig
        return f"— {self.name} {base64.b64encode(blob).decode()}\n"


def parse_signer_key(skey: str) -> Signer:
    """Parse ``PRIVATE+KEY+name+keyid+base64(type||seed)`` (the Go note package's format)."""
    parts = skey.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise NoteError("a signer key reads PRIVATE+KEY+name+keyid+base64key")
    raw = base64.b64decode(parts[4])
    if len(raw) != 33 or raw[0] != SIG_ED25519:
        raise NoteError("only Ed25519 signer keys are supported")
    signer = Signer(parts[2], Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if signer.verifier.key_id.hex() != parts[3]:
        raise NoteError("the key ID does not match the key")
    return signer


@dataclass
class Signature:
    name: str
    key_id: bytes
    blob: bytes  # the signature without its key ID
    line: str


@dataclass
class Note:
    text: bytes
    signatures: list[Signature] = field(default_factory=list)


def _check_text(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("a note is UTF-8") from None
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note has no control characters but newlines")
    return text


def parse_note(data: bytes) -> Note:
    """Split a signed note into its text and signature lines (nothing verified yet)."""
    text = _check_text(data)
    if not text.endswith("\n"):
        raise NoteError("a note ends with a newline")
    cut = text.rfind("\n\n")
    if cut < 0:
        raise NoteError("a note has a blank line before its signatures")
    body, sig_block = text[:cut + 1], text[cut + 2:]
    signatures = []
    for line in sig_block.splitlines():
        if not line.startswith("— "):
            raise NoteError("a signature line starts with an em dash and a space")
        try:
            name, b64 = line[2:].split(" ")
            blob = base64.b64decode(b64, validate=True)
        except (ValueError, binascii.Error):
            raise NoteError("a signature line is '— name base64'") from None
        if not _NAME.match(name) or len(blob) < 5:
            raise NoteError("a signature line has a bad name or signature")
        signatures.append(Signature(name, blob[:4], blob[4:], line + "\n"))
    if not signatures:
        raise NoteError("a note has at least one signature")
    if len(signatures) > MAX_SIGNATURES:
        raise NoteError("too many signatures")
    return Note(body.encode(), signatures)


def open_note(data: bytes, verifiers: list[Verifier]) -> tuple[Note, list[Signature]]:
    """Verify a note: every signature by a known key must verify, and at least one must.

    Cosignature/v1 verifiers check their timestamped signature over the cosigned message.
    Returns the note and the verified signatures.
    """
    note = parse_note(data)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified = []
    for sig in note.signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if verifier.sig_type == SIG_COSIGNATURE_V1:
            verify_cosignature(verifier, note.text, sig.blob)
        else:
            verifier.verify(note.text, sig.blob)
        verified.append(sig)
    if not verified:
        raise NoteError("no signature by a known key")
    return note, verified


# --- cosignatures (tlog-cosignature, Ed25519 v1) -----------------------------------------

def cosigned_message(checkpoint_text: bytes, timestamp: int) -> bytes:
    return b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + checkpoint_text


def cosign(name: str, key: Ed25519PrivateKey, checkpoint_text: bytes, timestamp: int) -> str:
    """A witness's cosignature line on ``checkpoint_text``."""
    public = _raw(key.public_key())
    sig = key.sign(cosigned_message(checkpoint_text, timestamp))
    blob = key_id(name, SIG_COSIGNATURE_V1, public) + struct.pack(">Q", timestamp) + sig
    return f"— {name} {base64.b64encode(blob).decode()}\n"


def verify_cosignature(verifier: Verifier, checkpoint_text: bytes, blob: bytes) -> int:
    """Check a cosignature (without its key ID); returns its timestamp."""
    if len(blob) != 8 + 64:
        raise NoteError(f"bad cosignature length from {verifier.name}")
    (timestamp,) = struct.unpack(">Q", blob[:8])
    if timestamp >= 2**63:
        raise NoteError("cosignature timestamp out of range")
    verifier.verify(cosigned_message(checkpoint_text, timestamp), blob[8:])
    return timestamp


# --- checkpoints (tlog-checkpoint) ------------------------------------------------------

@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> bytes:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(),
                 *self.extensions]
        return ("\n".join(lines) + "\n").encode()


def parse_checkpoint(text: bytes) -> Checkpoint:
    lines = _check_text(text).split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("a checkpoint has an origin, a size and a root hash line")
    origin, size, root = lines[0], lines[1], lines[2]
    if not origin or not re.fullmatch(r"0|[1-9][0-9]{0,19}", size):
        raise NoteError("bad checkpoint origin or size")
    try:
        root_bytes = base64.b64decode(root, validate=True)
    except binascii.Error:
        raise NoteError("the checkpoint root is not base64") from None
    if len(root_bytes) != 32:
        raise NoteError("the checkpoint root is not a 32-byte hash")
    extensions = tuple(lines[3:-1])
    if any(not e for e in extensions):
        raise NoteError("a checkpoint has no empty lines")
    return Checkpoint(origin, int(size), root_bytes, extensions)


def open_checkpoint(data: bytes, log: Verifier,
                    witnesses: list[Verifier] = ()) -> tuple[Checkpoint, list[Signature]]:
    """Verify a signed checkpoint: the log's signature is required; returns the verified
    witness cosignatures too."""
    note, verified = open_note(data, [log, *witnesses])
    if not any(s.name == log.name and s.key_id == log.key_id for s in verified):
        raise NoteError(f"the checkpoint is not signed by {log.name}")
    checkpoint = parse_checkpoint(note.text)
    if checkpoint.origin != log.name:
        raise NoteError(f"the checkpoint's origin {checkpoint.origin!r} is not {log.name!r}")
    return checkpoint, [s for s in verified if s.name != log.name]
