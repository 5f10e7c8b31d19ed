"""The ledger's part of the demo: sign a checkpoint over the demo data, publish the key."""

from django.conf import settings

from sahab.ledger import services


def load(previous: dict, data: dict) -> None:
    services.checkpoint_if_grown()
    base = settings.PUBLIC_URL.rstrip("/")
    data["ledger"] = {
        "origin": settings.LEDGER_ORIGIN,
        "key": services.verifier_key(),
        "url": f"{base}/ledger",
        "verify": f"sahab ledger verify {base}/ledger --key '{services.verifier_key()}'",
    }
