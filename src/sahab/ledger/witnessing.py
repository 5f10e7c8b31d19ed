"""The C2SP tlog-witness protocol, both ways.

* As a log: ``submit`` sends this log's latest checkpoint to a registered witness with
  a consistency proof from the size that witness last cosigned, and stores the
  cosignature it returns.
* As a witness: ``add_checkpoint`` answers another log's ``add-checkpoint`` request,
  so that one sahab installation can witness another's ledger.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import time
from dataclasses import dataclass

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sahab.core.errors import Conflict, InvalidInput
from sahab.ledger import note, services
from sahab.ledger.errors import LedgerError
from sahab.ledger.events import LedgerOwnEvent
from sahab.ledger.models import Witness, WitnessedLog
from sahab.ledger.witness import SIZE_CONTENT_TYPE, decide, parse_request

log = logging.getLogger(__name__)


# --- this log, submitting to witnesses ---------------------------------------------------

def request_body(old: int, proof: list[bytes], signed_checkpoint: str) -> bytes:
    lines = [f"old {old}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(lines) + "\n\n" + signed_checkpoint).encode()


def submit(witness: Witness, *, client: httpx.Client | None = None) -> bool:
    """Obtain ``witness``'s cosignature on the latest signed checkpoint; True when stored."""
    checkpoint = services.latest_signed_checkpoint()
    if checkpoint is None or checkpoint.pk is None or checkpoint.size == 0 or \
            checkpoint.cosignatures.filter(witness=witness).exists():
        return False
    # Short timeouts and no redirects: the URL was set by a platform administrator, and
    # a witness that answers elsewhere than where it was registered is not followed.
    client = client or httpx.Client(timeout=5, follow_redirects=False)
    old = witness.last_size
    for _ in range(2):  # a 409 tells the size the witness has: retry once from there
        if old > checkpoint.size:
            raise Conflict(LedgerError.WITNESS_SAW_FORK, witness=witness.name, old=old,
                           size=checkpoint.size)
        proof = services.consistency_proof(old, checkpoint.size) if old else []
        response = client.post(witness.url, content=request_body(
            old, proof, services.signed_checkpoint(checkpoint)))
        if response.status_code == 409 and \
                response.headers.get("content-type", "").startswith(SIZE_CONTENT_TYPE):
            old = int(response.text.strip())
            Witness.objects.filter(pk=witness.pk).update(last_size=old)
            continue
        response.raise_for_status()
        with transaction.atomic():
            stored = services.add_cosignature(checkpoint, witness, response.text)
            if stored:
                Witness.objects.filter(pk=witness.pk).update(last_size=checkpoint.size)
                witness.last_size = checkpoint.size
        return stored
    return False


def submit_to_all() -> list[str]:
    """Submit the latest signed checkpoint to every active witness with a URL; the names
    of those that cosigned. An unreachable witness is logged, never fatal."""
    from sahab.ledger import signing

    signing.copy_cosignatures()
    cosigned = []
    for witness in Witness.objects.filter(active=True).exclude(url=""):
        try:
            if submit(witness):
                cosigned.append(witness.name)
        except (httpx.HTTPError, Conflict, OSError) as exc:
            log.warning("witness %s did not cosign: %s", witness.name, exc)
    return cosigned


# --- this installation as a witness ------------------------------------------------------

@dataclass(frozen=True)
class WitnessReply:
    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


@functools.lru_cache(maxsize=2)
def _witness_key(path: str) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(open(path, "rb").read(), password=None)  # noqa: SIM115
    assert isinstance(key, Ed25519PrivateKey)
    return key


def witness_key() -> Ed25519PrivateKey:
    from sahab.core import keys

    return _witness_key(str(keys.witness_key_path()))


def witness_vkey() -> str:
    """This installation's witness key, for the logs that want its cosignatures."""
    public = note.Signer("w", witness_key()).verifier.public_key
    return note.Verifier(settings.LEDGER_WITNESS_NAME, note.SIG_COSIGNATURE_V1, public).vkey()


@transaction.atomic
def register_witnessed_log(*, vkey: str) -> WitnessedLog:
    """Start witnessing another log, identified by its verifier key (its name is its origin)."""
    try:
        verifier = note.parse_vkey(vkey)
    except note.NoteError as exc:
        raise InvalidInput(LedgerError.BAD_VERIFIER_KEY, error=str(exc)) from None
    if verifier.sig_type != note.SIG_ED25519:
        raise InvalidInput(LedgerError.LOG_KEY_INVALID)
    witnessed, created = WitnessedLog.objects.get_or_create(
        origin=verifier.name, defaults={"vkey": vkey.strip()})
    if not created:
        raise Conflict(LedgerError.LOG_ALREADY_WITNESSED, name=verifier.name)
    services.record(
        LedgerOwnEvent.WITNESSED_LOG_REGISTERED,
        f"log:{verifier.name}",
        "system",
        {"origin": verifier.name, "vkey": vkey.strip()},
    )
    return witnessed


def add_checkpoint(body: bytes) -> WitnessReply:
    """Answer a tlog-witness ``add-checkpoint`` request (status codes as the spec sets)."""
    try:
        old, proof, signed = parse_request(body)
        origin = signed.split(b"\n", 1)[0].decode()
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        return WitnessReply(400, f"malformed request: {exc}\n")
    witnessed = WitnessedLog.objects.filter(origin=origin).first()
    if witnessed is None:
        return WitnessReply(404, f"unknown log {origin}\n")
    try:
        checkpoint, _ = note.open_checkpoint(signed, note.parse_vkey(witnessed.vkey))
    except note.NoteError as exc:
        return WitnessReply(403, f"the checkpoint does not verify: {exc}\n")
    with transaction.atomic():
        witnessed = WitnessedLog.objects.select_for_update().get(pk=witnessed.pk)
        refusal = decide(old, proof, checkpoint, witnessed.size, bytes(witnessed.root))
        if refusal is not None:
            return WitnessReply(refusal.status, refusal.body, refusal.content_type)
        witnessed.size, witnessed.root = checkpoint.size, checkpoint.root
        witnessed.checkpoint = signed.decode()
        witnessed.updated_at = timezone.now()
        witnessed.save()
    line = note.cosign(settings.LEDGER_WITNESS_NAME, witness_key(), checkpoint.text(),
                       int(time.time()))
    return WitnessReply(200, line)
