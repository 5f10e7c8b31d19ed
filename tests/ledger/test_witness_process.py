"""``sahab witness``: an independent witness in its own process, with its own key and
folder, that the platform submits its checkpoints to (C2SP tlog-witness)."""

import json
import os
import socket
import stat
import subprocess
import sys
import time

import httpx
import pytest

from sahab.ledger import demo, note, services, witnessing
from sahab.ledger.models import Cosignature, Witness
from sahab.ledger.services import Record
from sahab.ledger.witness import WitnessHome
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keys(sahab_home):
    from sahab.core import keys

    keys.ensure_ledger_key()
    services._signer.cache_clear()


def fill(n: int) -> None:
    services.append_many([Record("test.event", f"s:{i}", {"i": i}, "system") for i in range(n)])


def test_the_witness_answers_as_the_protocol_says_and_keeps_evidence(tmp_path):
    home = WitnessHome(tmp_path / "w")
    home.init("witness.example")
    client = httpx.Client(transport=httpx.WSGITransport(app=home.wsgi), base_url="http://w")
    fill(8)
    first = services.signed_checkpoint(services.checkpoint_if_grown())
    body = witnessing.request_body(0, [], first)
    assert client.post("/add-checkpoint", content=body).status_code == 404  # unknown log
    home.add_log(services.verifier_key())
    assert client.post("/add-checkpoint", content=b"garbage").status_code == 400
    forged = first.replace("\n8\n", "\n9\n")
    assert client.post("/add-checkpoint",
                       content=witnessing.request_body(0, [], forged)).status_code == 403
    ok = client.post("/add-checkpoint", content=body)
    assert ok.status_code == 200
    origin = services.signer().name
    _, cosigs = note.open_checkpoint((first + ok.text).encode(),
                                     note.parse_vkey(services.verifier_key()),
                                     [note.parse_vkey(home.vkey())])
    assert [c.name for c in cosigs] == ["witness.example"]
    stale = client.post("/add-checkpoint", content=body)
    assert stale.status_code == 409 and stale.text == "8\n"
    assert stale.headers["content-type"] == "text/x.tlog.size"
    fill(4)
    newer = services.signed_checkpoint(services.checkpoint_if_grown())
    bad = client.post("/add-checkpoint", content=witnessing.request_body(
        8, [b"\x00" * 32] * len(services.consistency_proof(8, 12)), newer))
    assert bad.status_code == 422
    assert len(list((home.path / "refused").iterdir())) == 1  # kept as evidence
    good = client.post("/add-checkpoint", content=witnessing.request_body(
        8, services.consistency_proof(8, 12), newer))
    assert good.status_code == 200 and home.state(origin)["size"] == 12
    assert client.get("/").json()["logs"] == [{"origin": origin, "size": 12}]
    assert stat.S_IMODE(home.key_path.stat().st_mode) == 0o600


def test_the_demo_sets_up_a_witness_beside_the_platform_and_registers_it(settings):
    data = {}
    demo.load({}, data)
    home = demo.witness_home()
    assert home.exists() and home.logs() == {services.signer().name: services.verifier_key()}
    witness = Witness.objects.get()
    assert witness.vkey == home.vkey() and witness.url == demo.witness_url()
    assert data["ledger"]["witness"]["key"] == home.vkey()
    assert "--witness-key" in data["ledger"]["verify"]
    command = demo.witness_command()
    assert command[-3:] == ["serve", "--port", str(settings.WITNESS_PORT)]
    demo.load({}, {})  # a second run changes nothing
    assert Witness.objects.count() == 1


def _wait_for(port: int, proc) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the witness did not start")


@pytest.mark.slow
def test_sahab_witness_runs_apart_and_cosigns_the_platforms_checkpoints(tmp_path):
    port = free_port()
    home = tmp_path / "witness-of-the-court-of-audit"
    env = {**os.environ, "SAHAB_HOME": str(tmp_path / "elsewhere")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sahab.cli", "witness", "--home", str(home), "serve",
         "--port", str(port), "--name", "witness.courdescomptes.example",
         "--log", services.verifier_key()], env=env, stderr=subprocess.PIPE)
    try:
        _wait_for(port, proc)
        witness_key = httpx.get(f"http://127.0.0.1:{port}/").json()["vkey"]
        witness = services.register_witness(
            name="witness.courdescomptes.example", vkey=witness_key,
            url=f"http://127.0.0.1:{port}/add-checkpoint")
        fill(5)
        services.checkpoint_if_grown()
        assert witnessing.submit(witness)
        fill(3)
        services.checkpoint_if_grown()
        assert witnessing.submit(witness)  # with a consistency proof from 6
        assert Cosignature.objects.count() == 2
        state = json.loads(next((home / "logs").iterdir()).read_text())
        assert state["size"] == 9
        assert not (tmp_path / "elsewhere").exists(), "nothing of the platform's is used"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
