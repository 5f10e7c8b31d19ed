"""A checkpoint with witness cosignature lines still verifies with the reference signed-note
implementation, Go's golang.org/x/mod/sumdb/note (from Debian's golang-golang-x-mod-dev,
built in GOPATH mode: no module download): the extra signatures are kept as unverified."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sahab.ledger import note, services
from sahab.ledger.services import Record
from tests.conftest import missing

GOPATH = Path("/usr/share/gocode")
pytestmark = [pytest.mark.slow, pytest.mark.django_db]


@pytest.fixture(scope="module")
def go_verifier(tmp_path_factory):
    if shutil.which("go") is None or not (GOPATH / "src/golang.org/x/mod/sumdb/note").exists():
        missing("Go or golang.org/x/mod", "golang-go and golang-golang-x-mod-dev")
    out = tmp_path_factory.mktemp("gonote") / "verify-note"
    env = {**os.environ, "GOPATH": str(GOPATH), "GO111MODULE": "off", "GOFLAGS": "",
           "GOCACHE": str(out.parent / "cache")}
    subprocess.run(["go", "build", "-o", str(out), "."], cwd=Path(__file__).parent / "gonote",
                   env=env, check=True, capture_output=True, timeout=300)
    return out


def test_a_cosigned_checkpoint_verifies_with_the_reference_implementation(go_verifier,
                                                                          sahab_home):
    from sahab.core import keys

    keys.ensure_ledger_key()
    services._signer.cache_clear()
    key = Ed25519PrivateKey.generate()
    vkey = note.Verifier("witness.cdc.example", note.SIG_COSIGNATURE_V1,
                         note.Signer("w", key).verifier.public_key).vkey()
    witness = services.register_witness(name="witness.cdc.example", vkey=vkey)
    services.append_many([Record("test.event", f"s:{i}", {"i": i}, "system") for i in range(9)])
    checkpoint = services.checkpoint_if_grown()
    line = note.cosign("witness.cdc.example", key, checkpoint.text.encode(), 1_800_000_000)
    assert services.add_cosignature(checkpoint, witness, line)
    served = services.signed_checkpoint(checkpoint)
    assert served.count("\n— ") == 2

    result = subprocess.run([str(go_verifier), services.verifier_key()], input=served.encode(),
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split("\n")[:2] == [
        f"verified {services.signer().name}", "unverified witness.cdc.example"]

    forged = served.replace(f"\n{checkpoint.size}\n", f"\n{checkpoint.size + 1}\n")
    result = subprocess.run([str(go_verifier), services.verifier_key()], input=forged.encode(),
                            capture_output=True, timeout=60)
    assert result.returncode == 1 and b"REJECTED" in result.stderr
