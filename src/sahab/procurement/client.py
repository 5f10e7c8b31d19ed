"""The bidder's and the committee member's side, for API clients and ``sahab bid`` /
``sahab committee``: everything here runs on their own machine with ``cryptography`` and
the tender's public data, never with the platform's help.

A few lines of Python are enough to bid (docs/procurement.md)::

    from sahab.procurement import client
    key = client.load_key("company-signing.key")
    detail = httpx.get(f"{api}/procurement/tenders/{ref}").json()
    envelope = client.seal_bid(detail, company_id=42, key=key, prices={"1": "1000.000"})
    httpx.post(f"{api}/procurement/tenders/{ref}/bids", json={"envelope": envelope},
               headers={"Authorization": f"Bearer {token}"})
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from sahab.procurement import sealing


def new_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def save_key(key: Ed25519PrivateKey, path: Path) -> None:
    """Write a private key (PKCS#8 PEM, readable by its owner only)."""
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def load_key(path: Path | str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def registration(company_id: int, key: Ed25519PrivateKey) -> dict:
    """The body of ``POST /api/procurement/signing-keys``: public key and proof."""
    public = sealing.raw_public(key)
    return {"public_key": sealing.b64(public),
            "proof": sealing.b64(key.sign(sealing.registration_message(company_id, public)))}


def committee_keygen() -> tuple[str, str]:
    """A member's one-time opening key pair for one tender: (private, public), base64."""
    private = X25519PrivateKey.generate()
    return sealing.b64(sealing.raw_private(private)), sealing.b64(sealing.raw_public(private))


def seal_bid(detail: dict, *, company_id: int, key: Ed25519PrivateKey, prices: dict,
             technical_offer: str = "", documents: list[tuple[str, bytes]] = ()) -> str:
    """A signed ``sahab-bid/2`` envelope for the tender ``detail`` (as the API gives it).
    Documents are sealed whole, with their SHA-256."""
    lots = {str(lot["number"]) for lot in detail["lots"]}
    unknown = [n for n in prices if str(n) not in lots]
    if unknown or not prices:
        raise ValueError(f"price lots among {sorted(lots)}; not {unknown}")
    committee = detail["committee"]
    content = {"tender": detail["reference"], "company": company_id,
               "prices": {str(k): str(v) for k, v in prices.items()},
               "technical_offer": technical_offer,
               "documents": [{"name": name, "sha256": hashlib.sha256(data).hexdigest(),
                              "content": base64.b64encode(data).decode()}
                             for name, data in documents]}
    return sealing.seal(
        tender=detail["reference"], company=company_id,
        committee=[base64.b64decode(m["public_key"]) for m in committee["members"]],
        threshold=committee["threshold"], content=content, signing_key=key).decode("ascii")
