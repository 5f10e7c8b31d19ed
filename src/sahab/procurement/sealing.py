"""Sealed bids: encryption to a per-tender key that nobody can use before the deadline.

* At publication a tender gets an X25519 key pair. The public key is published (and its
  fingerprint recorded in the ledger); the private key is encrypted with AES-256-GCM
  under the platform's opening key (``SAHAB_HOME/keys/bid-opening.key``, outside the
  database), with the tender's reference and deadline as associated data.
* A bid is encrypted to the tender's public key (X25519 + HKDF-SHA256 + AES-256-GCM,
  an ECIES construction from standard primitives), bound to the tender and the company.
  The ledger receives only the SHA-256 of the envelope.
* The opening job unseals the private key only once the deadline has passed, checks each
  envelope against its ledger commitment, and decrypts. An altered envelope fails both.

docs/procurement.md gives the threat model and its limits.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ENVELOPE_VERSION = b"sahab-bid-v1"


class SealError(Exception):
    """A sealed value cannot be opened: too early, wrong key, or altered."""


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def new_tender_keys(opening_key: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """A fresh key pair: (public key, private key sealed under the opening key)."""
    private = X25519PrivateKey.generate()
    raw = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    nonce = os.urandom(12)
    return _raw_public(private.public_key()), nonce + AESGCM(opening_key).encrypt(nonce, raw, aad)


def unseal_tender_key(opening_key: bytes, sealed: bytes, aad: bytes) -> X25519PrivateKey:
    try:
        raw = AESGCM(opening_key).decrypt(sealed[:12], sealed[12:], aad)
    except (InvalidTag, ValueError):
        raise SealError("the tender's opening key cannot be unsealed") from None
    return X25519PrivateKey.from_private_bytes(raw)


def fingerprint(public_key: bytes) -> str:
    return hashlib.sha256(public_key).hexdigest()


def _content_key(shared: bytes, ephemeral: bytes, recipient: bytes, aad: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient,
                info=ENVELOPE_VERSION + b"\n" + aad).derive(shared)


def seal(public_key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt ``plaintext`` so that only the tender's private key opens it."""
    recipient = X25519PublicKey.from_public_bytes(public_key)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = _raw_public(ephemeral.public_key())
    key = _content_key(ephemeral.exchange(recipient), ephemeral_public, public_key, aad)
    nonce = os.urandom(12)
    return ephemeral_public + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_envelope(private_key: X25519PrivateKey, envelope: bytes, aad: bytes) -> bytes:
    if len(envelope) < 32 + 12 + 16:
        raise SealError("the envelope is truncated")
    ephemeral_public, nonce, ciphertext = envelope[:32], envelope[32:44], envelope[44:]
    recipient = _raw_public(private_key.public_key())
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
        key = _content_key(shared, ephemeral_public, recipient, aad)
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError):
        raise SealError("the envelope was altered or is not for this tender") from None


def commitment(envelope: bytes) -> str:
    return hashlib.sha256(envelope).hexdigest()
