"""The attack of the issue, replayed exactly: an insider with the database's owner rights
edits entry 99 (an award of 398,500 becomes 198,500), recomputes the stored nodes and the
right edge so that the tree is consistent with the forgery, and deletes the checkpoints.

Before, the server signed the forged tree and a fresh auditor said OK. Now the signer
refuses and keeps serving the last good checkpoint, the independent witness refuses the
forged tree even when the insider signs it with the log's key, and both a fresh
``sahab ledger verify --witness-key`` and a running ``sahab ledger monitor`` fail naming
entry 99. On SQLite and PostgreSQL (the suite runs on both)."""

import json
import threading

import pytest

from sahab import cli
from sahab.ledger import merkle, note, services, signing, witnessing
from sahab.ledger.models import Checkpoint, Cosignature, Entry
from sahab.ledger.services import Record
from sahab.ledger.witness import WitnessHome, make_witness_server
from tests.e2e.conftest import free_port
from tests.ledger.insider import as_database_owner, recompute_tree

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def award(i: int, amount: int) -> Record:
    return Record("procurement.award.made", f"award:{i}", {"value": amount,
                                                            "currency": "TND"}, "user:3")


@pytest.fixture
def witness(tmp_path):
    """An independent witness: its own folder and key, its own HTTP server."""
    home = WitnessHome(tmp_path / "witness")
    home.init("witness.cdc.example")
    port = free_port()
    server = make_witness_server(home, "127.0.0.1", port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield home, f"http://127.0.0.1:{port}/add-checkpoint"
    server.shutdown()
    server.server_close()


@pytest.fixture
def log(sahab_home, settings, witness):
    from sahab.core import keys

    keys.ensure_ledger_key()
    services._signer.cache_clear()
    settings.LEDGER_COSIGNATURES_REQUIRED = 1
    home, url = witness
    home.add_log(services.verifier_key())
    services.register_witness(name=home.name, vkey=home.vkey(), url=url)
    services.append_many([award(i, 1000 + i) for i in range(1, 99)])  # 0: the witness
    assert services.append(**award(99, 398_500).__dict__).index == 99
    assert services.checkpoint_if_grown().size == 100  # cosigned on commit
    services.append_many([award(i, 1000 + i) for i in range(100, 150)])
    assert services.checkpoint_if_grown().size == 150
    assert home.state(settings.LEDGER_ORIGIN)["size"] == 150
    return home


def run(capsys, *argv, stdout_only=False) -> tuple[int, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out if stdout_only else captured.out + captured.err


def the_attack() -> None:
    with as_database_owner():
        entry = Entry.objects.get(index=99)
        body = bytes(entry.body).replace(b'"value":398500', b'"value":198500')
        assert body != bytes(entry.body)
        Entry.objects.filter(index=99).update(body=body)
        Cosignature.objects.all().delete()
        Checkpoint.objects.all().delete()
    recompute_tree()


def test_a_rewritten_history_is_refused_by_signer_and_witness_and_reported_by_auditors(
        log, live_server, capsys, tmp_path, settings):
    url = f"{live_server.url}/ledger"
    key, witness_key = services.verifier_key(), log.vkey()
    monitor_state = tmp_path / "monitor.json"
    code, out = run(capsys, "ledger", "monitor", url, "--key", key, "--witness-key",
                    witness_key, "--state", str(monitor_state), "--count", "1",
                    "--interval", "0")
    assert code == 0 and "size 150" in out and "witness.cdc.example" in out

    the_attack()
    services.append_many([award(i, 7) for i in range(150, 155)])  # the platform goes on

    # the signer refuses the forged tree, names entry 99, and keeps serving the good one
    assert services.checkpoint_if_grown() is None
    alarm = signing.alarm()
    assert alarm["active"] and alarm["first_bad_index"] == 99 and alarm["signed_size"] == 150
    served = services.signed_checkpoint(services.latest_checkpoint())
    good, cosigs = note.open_checkpoint(served.encode(), note.parse_vkey(key),
                                        [note.parse_vkey(witness_key)])
    assert good.size == 150 and [c.name for c in cosigs] == ["witness.cdc.example"]
    status = json.loads(run(capsys, "ledger", "status", stdout_only=True)[1])
    assert status["ok"] is False and status["signer"]["alarm"]["first_bad_index"] == 99

    # an insider who also holds the key signs the forged tree: the witness refuses it
    forged_root = services.root_at(155)
    text = note.Checkpoint(settings.LEDGER_ORIGIN, 155, forged_root).text()
    forged = text.decode() + "\n" + services.signer().signature_line(text)
    import httpx
    for old, proof in ((150, services.consistency_proof(150, 155)), (0, [])):
        answer = httpx.post(witnessing.Witness.objects.get().url,
                            content=witnessing.request_body(old, proof, forged))
        assert answer.status_code == (422 if old else 409), answer.text
    assert log.state(settings.LEDGER_ORIGIN)["size"] == 150
    assert list((log.path / "refused").iterdir()), "the witness keeps the forged checkpoint"
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(150, 155, services.consistency_proof(150, 155),
                                  good.root, forged_root)

    # a fresh auditor, with the witness's key, names entry 99 on first contact
    code, out = run(capsys, "ledger", "verify", url, "--key", key, "--witness-key",
                    witness_key, "--state", str(tmp_path / "fresh.json"), "--quiet")
    assert code == 1 and "entry 99 " in out, out
    # the monitor that followed the log names it too
    code, out = run(capsys, "ledger", "monitor", url, "--key", key, "--witness-key",
                    witness_key, "--state", str(monitor_state), "--count", "1")
    assert code == 1 and "entry 99 " in out, out
