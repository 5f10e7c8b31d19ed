"""Credentials at rest: AES-256-GCM under the installation's secrets key.

Broker passwords and binding credentials are stored sealed; the key lives in
``SAHAB_HOME/keys/secrets.key``, outside the database, so a database dump alone does not
reveal them. Each value is bound to its purpose (associated data) so that one sealed
value cannot be swapped for another.
"""

from __future__ import annotations

import json
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sahab.core import keys

_NONCE = 12


def seal(value: bytes, purpose: str) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(keys.load_secrets_key()).encrypt(nonce, value, purpose.encode())


def unseal(sealed: bytes, purpose: str) -> bytes:
    sealed = bytes(sealed)
    return AESGCM(keys.load_secrets_key()).decrypt(sealed[:_NONCE], sealed[_NONCE:],
                                                   purpose.encode())


def seal_json(value: dict, purpose: str) -> bytes:
    return seal(json.dumps(value, sort_keys=True).encode(), purpose)


def unseal_json(sealed: bytes, purpose: str) -> dict:
    return json.loads(unseal(sealed, purpose))
