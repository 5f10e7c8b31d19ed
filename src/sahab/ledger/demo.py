"""The ledger's part of the demo: an independent witness beside the platform (its own
key and folder, started by ``sahab serve``), registered so that every checkpoint gets
its cosignature; a checkpoint over the demo data; the keys to verify it all."""

import sys

from django.conf import settings

from sahab.ledger import services
from sahab.ledger.models import Witness
from sahab.ledger.witness import WitnessHome

DEMO_WITNESS_NAME = "witness.demo.sahab.tn"


def witness_home() -> WitnessHome:
    return WitnessHome(settings.SAHAB_HOME / "witness")


def witness_url() -> str:
    return f"http://127.0.0.1:{settings.WITNESS_PORT}/add-checkpoint"


def witness_command() -> list[str] | None:
    """The local witness process for ``sahab serve``, once the demo (or ``sahab witness
    init``) set it up."""
    home = witness_home()
    if not home.exists():
        return None
    return [sys.executable, "-m", "sahab.cli", "witness", "--home", str(home.path), "serve",
            "--port", str(settings.WITNESS_PORT)]


def load(previous: dict, data: dict) -> None:
    home = witness_home()
    home.init(DEMO_WITNESS_NAME)
    home.add_log(services.verifier_key())
    witness = Witness.objects.filter(name=home.name).first()
    if witness is None:
        services.register_witness(name=home.name, vkey=home.vkey(), url=witness_url())
    elif witness.url != witness_url() or not witness.active:
        services.set_witness(witness=witness, actor="system", active=True, url=witness_url())
    services.checkpoint_if_grown()  # once the demo's transaction commits
    base = settings.PUBLIC_URL.rstrip("/")
    key, witness_key = services.verifier_key(), home.vkey()
    data["ledger"] = {
        "origin": settings.LEDGER_ORIGIN,
        "key": key,
        "url": f"{base}/ledger",
        "witness": {"name": home.name, "key": witness_key, "url": witness_url()},
        "verify": f"sahab ledger verify {base}/ledger --key '{key}' "
                  f"--witness-key '{witness_key}'",
    }
