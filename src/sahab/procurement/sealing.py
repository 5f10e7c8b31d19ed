"""Sealed bids, format ``sahab-bid/2``: sealed and signed on the bidder's machine, opened
only by t of the n members of a tender's opening committee.

* Each committee member generates a one-time X25519 key pair for the tender on their own
  machine (``sahab committee keygen``) and registers the public half before publication.
* The bidder draws a random AES-256-GCM *bid key* and encrypts the bid (prices per lot,
  technical offer, documents or their hashes) under it. With a fresh ephemeral X25519
  key it computes one shared secret per member; for every set of t members the bid key
  is wrapped (AES-256-GCM) under HKDF-SHA256 of the concatenation of those members'
  secrets. t released member keys open one wrap; t-1 open none.
* The company signs (Ed25519) every line of the envelope but the signature: tender,
  company id, signing key fingerprint, ephemeral key, nonce, ciphertext and wraps.
* The envelope is a short text (one ``name value`` line each, base64 values), so that
  browsers and scripts build the very same bytes; its SHA-256 is the commitment recorded
  on the ledger. The same construction runs in ``static/procurement/seal.js``.

docs/procurement.md gives the threat model.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import math
import os
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMAT = "sahab-bid/2"
MAX_MEMBERS = 9
MAX_ENVELOPE_BYTES = 40 * 1024 * 1024
# the most wraps a committee needs: one per set of t members, at most C(9, 4) = 126
MAX_WRAPS = max(math.comb(MAX_MEMBERS, t) for t in range(1, MAX_MEMBERS + 1))
# a key's name: the SHA-256 of its raw public key, in lower-case hexadecimal
FINGERPRINT = re.compile(r"[0-9a-f]{64}")


class SealError(Exception):
    """An envelope is malformed, altered, wrongly signed, or cannot be opened yet."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str, what: str = "a value", size: int | None = None) -> bytes:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SealError(f"{what} is not base64") from None
    if size is not None and len(data) != size:
        raise SealError(f"{what} is not {size} bytes long")
    return data


def raw_public(key: X25519PrivateKey | Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def raw_private(key: X25519PrivateKey | Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def fingerprint(public_key: bytes) -> str:
    """The SHA-256 (hex) of a raw public key: how envelopes and the ledger name it."""
    return hashlib.sha256(public_key).hexdigest()


def commitment(envelope: bytes) -> str:
    return hashlib.sha256(envelope).hexdigest()


def tag_commitment(tag: str, salt: str) -> str:
    """What a tender's publication entry commits to about its secret bid tag: SHA-256
    (hex) of the tag with a secret salt, so that nobody links the bid entries' subjects
    to the tender before the opening, and nobody gives the tender another tag after it."""
    return hashlib.sha256(f"sahab-bid-tag/1\n{salt}\n{tag}\n".encode()).hexdigest()


def registration_message(company_id: int, public_key: bytes) -> bytes:
    """What a company signs with a new key to prove that it holds it."""
    return f"sahab-signing-key/1\ncompany {company_id}\nkey {b64(public_key)}\n".encode()


def member_public_key(private_key: bytes) -> bytes:
    """The X25519 public key of a (released) member private key."""
    try:
        return raw_public(X25519PrivateKey.from_private_bytes(private_key))
    except ValueError:
        raise SealError("an opening key is 32 bytes") from None


def subsets(n: int, t: int) -> list[tuple[int, ...]]:
    """Every set of t member positions (1-based), in a fixed order."""
    return list(itertools.combinations(range(1, n + 1), t))


@dataclass
class Envelope:
    tender: str
    company: int
    key: str  # fingerprint of the company's Ed25519 signing key
    ephemeral: bytes
    nonce: bytes
    ciphertext: bytes
    wraps: list[tuple[tuple[int, ...], bytes, bytes]] = field(default_factory=list)
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        lines = [FORMAT, f"tender {self.tender}", f"company {self.company}", f"key {self.key}",
                 f"ephemeral {b64(self.ephemeral)}", f"nonce {b64(self.nonce)}",
                 f"ciphertext {b64(self.ciphertext)}"]
        lines += [f"wrap {','.join(map(str, members))} {b64(nonce)} {b64(wrapped)}"
                  for members, nonce, wrapped in self.wraps]
        return ("\n".join(lines) + "\n").encode()

    def to_bytes(self) -> bytes:
        return self.signed_bytes() + f"signature {b64(self.signature)}\n".encode()

    def verify(self, public_key: bytes) -> None:
        """Raise unless the company key ``public_key`` signed this envelope."""
        if fingerprint(public_key) != self.key:
            raise SealError("the envelope names another signing key")
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(self.signature,
                                                                  self.signed_bytes())
        except (InvalidSignature, ValueError):
            raise SealError("the company's signature does not verify") from None


def named_key(data: bytes) -> str | None:
    """The fingerprint on an envelope's key line, read from its first lines alone, so
    that a submission reads the key with the tender and parses the whole envelope only
    after the checks that cost nothing (its deadline, who sends it). None when the
    fourth line is no key line; ``parse`` decides whether the envelope is one."""
    lines = data[:512].split(b"\n", 4)
    if len(lines) < 5 or lines[0] != FORMAT.encode() or not lines[3].startswith(b"key "):
        return None
    name = lines[3][4:].decode("ascii", "replace")
    return name if FINGERPRINT.fullmatch(name) else None


def parse(data: bytes) -> Envelope:
    """An envelope from its bytes; only the one canonical encoding is accepted."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise SealError("the envelope is larger than 40 MB")
    try:
        lines = data.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise SealError("an envelope is ASCII text") from None
    if len(lines) < 10 or lines[0] != FORMAT or lines[-1] != "":
        raise SealError(f"not a {FORMAT} envelope")
    fields: dict[str, str] = {}
    wraps = []
    for line in lines[1:-1]:
        name, _, value = line.partition(" ")
        if name == "wrap":
            members, nonce, wrapped = [*value.split(" "), "", ""][:3]
            try:
                positions = tuple(int(p) for p in members.split(","))
            except ValueError:
                raise SealError("a wrap names its members by number") from None
            wraps.append((positions, unb64(nonce, "a wrap nonce", 12),
                          unb64(wrapped, "a wrapped key", 48)))
            if len(wraps) > MAX_WRAPS:
                raise SealError(f"an envelope has at most {MAX_WRAPS} wraps")
        elif name in fields or not value:
            raise SealError(f"the line '{name}' is repeated or empty")
        else:
            fields[name] = value
    if set(fields) != {"tender", "company", "key", "ephemeral", "nonce", "ciphertext",
                       "signature"}:
        raise SealError("the envelope lacks a line or has an unknown one")
    if not fields["company"].isdigit() or len(fields["company"]) > 18:
        raise SealError("the company is named by its number")
    if not FINGERPRINT.fullmatch(fields["key"]):
        raise SealError("the key is named by its fingerprint (64 hexadecimal digits)")
    envelope = Envelope(
        tender=fields["tender"], company=int(fields["company"]), key=fields["key"],
        ephemeral=unb64(fields["ephemeral"], "the ephemeral key", 32),
        nonce=unb64(fields["nonce"], "the nonce", 12),
        ciphertext=unb64(fields["ciphertext"], "the ciphertext"),
        wraps=wraps, signature=unb64(fields["signature"], "the signature", 64))
    if envelope.to_bytes() != data:
        raise SealError("the envelope is not in its canonical form")
    return envelope


def _content_aad(tender: str, company: int) -> bytes:
    return f"{FORMAT}\n{tender}\n{company}".encode()


def _wrap_key(secrets: list[bytes], ephemeral: bytes, tender: str,
              members: tuple[int, ...]) -> bytes:
    info = f"{FORMAT} wrap\n{tender}\n{','.join(map(str, members))}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral,
                info=info).derive(b"".join(secrets))


def seal(*, tender: str, company: int, committee: list[bytes], threshold: int,
         content: dict, signing_key: Ed25519PrivateKey) -> bytes:
    """Seal and sign a bid on the bidder's side: ``committee`` is the members' public
    keys in position order; ``content`` is the bid (JSON-serialisable)."""
    if not 1 <= threshold <= len(committee) <= MAX_MEMBERS:
        raise SealError("a committee has 1 to 9 members and a threshold within it")
    bid_key = AESGCM.generate_key(256)
    nonce = os.urandom(12)
    ciphertext = AESGCM(bid_key).encrypt(
        nonce, json.dumps(content, sort_keys=True).encode(), _content_aad(tender, company))
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = raw_public(ephemeral)
    secrets = [ephemeral.exchange(X25519PublicKey.from_public_bytes(k)) for k in committee]
    wraps = []
    for members in subsets(len(committee), threshold):
        key = _wrap_key([secrets[p - 1] for p in members], ephemeral_public, tender, members)
        wrap_nonce = os.urandom(12)
        wraps.append((members, wrap_nonce,
                       AESGCM(key).encrypt(wrap_nonce, bid_key, tender.encode())))
    envelope = Envelope(tender=tender, company=company,
                        key=fingerprint(raw_public(signing_key)), ephemeral=ephemeral_public,
                        nonce=nonce, ciphertext=ciphertext, wraps=wraps)
    envelope.signature = signing_key.sign(envelope.signed_bytes())
    return envelope.to_bytes()


def open_envelope(envelope: Envelope, released: dict[int, bytes]) -> dict:
    """Decrypt with the released member private keys (position → raw key)."""
    for members, nonce, wrapped in envelope.wraps:
        if not set(members) <= set(released):
            continue
        try:
            secrets = [X25519PrivateKey.from_private_bytes(released[p]).exchange(
                X25519PublicKey.from_public_bytes(envelope.ephemeral)) for p in members]
            key = _wrap_key(secrets, envelope.ephemeral, envelope.tender, members)
            bid_key = AESGCM(key).decrypt(nonce, wrapped, envelope.tender.encode())
            plaintext = AESGCM(bid_key).decrypt(envelope.nonce, envelope.ciphertext,
                                                _content_aad(envelope.tender, envelope.company))
        except (InvalidTag, ValueError):
            raise SealError("the envelope does not open with the committee's keys") from None
        try:
            content = json.loads(plaintext)
        except ValueError:
            raise SealError("the sealed bid is not JSON") from None
        if not isinstance(content, dict):
            raise SealError("the sealed bid is not a JSON object")
        return content
    raise SealError("fewer opening keys are released than the committee's threshold")


def live_commitments(entries) -> dict[str, int]:
    """Replay a tender's bid entries, ``(index, entry)`` in ledger order: the commitments
    still live at the end (submitted, neither replaced nor withdrawn), each with the index
    of its entry. The opening and ``verify-opening`` count bids by this one rule.

    The platform takes a commitment once (``ENVELOPE_SUBMITTED_ALREADY``): a second
    submission of one is a copy of its entry that the platform did not make (a pending
    row inserted again in the database, with its MAC), and would bring a withdrawn or
    replaced bid back; it counts for nothing."""
    live: dict[str, int] = {}
    submitted: set[str] = set()
    for index, entry in entries:
        data = entry["data"]
        if entry["type"] == "procurement.bid.submitted":
            if data["commitment"] in submitted:
                continue
            submitted.add(data["commitment"])
            for old in data.get("replaces", []):
                live.pop(old, None)
            live[data["commitment"]] = index
        elif entry["type"] == "procurement.bid.withdrawn":
            live.pop(data["commitment"], None)
    return live


def changes_conditions(amendment: dict) -> bool:
    """Whether an amendment changes what a bid answers (new document versions, compliance
    criteria, or lots changed or added), so that bids sealed before it must be confirmed;
    later deadlines alone ask nothing of the bidders. Decided when the amendment is made
    and written into its entry (``asks_confirmation``)."""
    return bool(amendment.get("documents")) or "compliance_criteria" in amendment or \
        bool(amendment.get("lots"))


def asks_confirmation(amendment: dict) -> bool:
    """Whether an amendment's ledger entry puts the bids sealed before it to confirm: only
    an entry that says so. Amendments recorded before bids were confirmed told bidders
    their bid stayed valid, and they are read as they were made."""
    return amendment.get("bids_to_confirm") is True


def unconfirmed_commitments(live: dict[str, int], entries, *, tender_subject: str,
                            bid_subject: str) -> dict[str, int]:
    """The live commitments (``live_commitments``) that an amendment put to confirm and
    that were not confirmed after it: commitment → the number of the last amendment that
    changed the conditions after the bid's entry. ``entries`` are ``(index, entry)`` of the
    tender's amendments and bid entries up to the close of tendering, in ledger order.

    A confirmation counts only after the last such amendment and naming it: a bidder
    accepts the conditions as they stand, not an earlier version of them. The opening and
    ``verify-opening`` exclude bids by this one rule."""
    amendments: list[tuple[int, int]] = []  # (index, number), in ledger order
    confirmed: dict[str, list[tuple[int, int]]] = {}
    for index, entry in entries:
        if entry["subject"] == tender_subject and \
                entry["type"] == "procurement.tender.amended" and \
                asks_confirmation(entry["data"]):
            amendments.append((index, entry["data"]["amendment"]))
        elif entry["subject"] == bid_subject and entry["type"] == "procurement.bid.confirmed":
            confirmed.setdefault(entry["data"]["commitment"], []).append(
                (index, entry["data"].get("amendment")))
    due: dict[str, int] = {}
    for commitment, submitted in live.items():
        after = [(index, number) for index, number in amendments if index > submitted]
        if not after:
            continue
        last_index, last_number = after[-1]
        if not any(index > last_index and number == last_number
                   for index, number in confirmed.get(commitment, [])):
            due[commitment] = last_number
    return due
