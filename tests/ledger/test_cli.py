import json

import pytest

from sahab import cli
from sahab.ledger import merkle, note, services
from sahab.ledger.services import Record

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _log(sahab_home):
    from sahab.core import keys

    keys.ensure_ledger_key()
    services._signer.cache_clear()
    services.append_many([Record("test.event", f"s:{i}", {"i": i}, "system") for i in range(21)])
    services.checkpoint_if_grown()


def run(capsysbinary, *argv) -> tuple[int, bytes, bytes]:
    code = cli.main(list(argv))
    out = capsysbinary.readouterr()
    return code, out.out, out.err


def test_key_and_checkpoint(capsysbinary):
    code, key, _ = run(capsysbinary, "ledger", "key")
    assert code == 0
    verifier = note.parse_vkey(key.decode())
    code, checkpoint, _ = run(capsysbinary, "ledger", "checkpoint")
    assert note.open_checkpoint(checkpoint, verifier)[0].size == 21


def test_entry_prints_the_exact_bytes(capsysbinary):
    code, body, _ = run(capsysbinary, "ledger", "entry", "5")
    assert code == 0 and body == bytes(services.get_entry(5).body)
    code, _, err = run(capsysbinary, "ledger", "entry", "99")
    assert code == 2 and b"no entry 99" in err


def test_prove_and_consistency_print_verifiable_json(capsysbinary):
    import base64

    code, out, _ = run(capsysbinary, "ledger", "prove", "3", "--size", "10")
    proof = json.loads(out)
    merkle.verify_inclusion(3, 10, base64.b64decode(proof["leaf_hash"]),
                            [base64.b64decode(p) for p in proof["proof"]],
                            base64.b64decode(proof["root"]))
    code, out, _ = run(capsysbinary, "ledger", "consistency", "4", "21")
    proof = json.loads(out)
    merkle.verify_consistency(4, 21, [base64.b64decode(p) for p in proof["proof"]],
                              base64.b64decode(proof["old_root"]),
                              base64.b64decode(proof["new_root"]))
    code, _, err = run(capsysbinary, "ledger", "consistency", "9", "4")
    assert code == 2 and b"Traceback" not in err


def test_verify_proof_accepts_a_receipt_and_rejects_a_changed_byte(capsysbinary, tmp_path):
    receipt = tmp_path / "r.tlog-proof"
    receipt.write_text(services.receipt(7))
    entry = tmp_path / "e.json"
    entry.write_bytes(bytes(services.get_entry(7).body))
    code, out, _ = run(capsysbinary, "ledger", "verify-proof", str(receipt), str(entry),
                       "--key", services.verifier_key())
    assert code == 0 and b"number 7" in out
    code, out, _ = run(capsysbinary, "ledger", "verify-proof", str(receipt), str(entry))
    assert code == 0  # the local installation's key by default
    entry.write_bytes(entry.read_bytes().replace(b'"i":7', b'"i":8'))
    code, _, err = run(capsysbinary, "ledger", "verify-proof", str(receipt), str(entry),
                       "--key", services.verifier_key())
    assert code == 1 and b"RECEIPT INVALID" in err
    code, _, err = run(capsysbinary, "ledger", "verify-proof", str(tmp_path / "none"),
                       str(entry))
    assert code == 2


def test_witness_commands(capsysbinary):
    from sahab.core import keys
    from sahab.ledger import witnessing

    keys.ensure_witness_key()
    witnessing._witness_key.cache_clear()
    code, vkey, _ = run(capsysbinary, "ledger", "witness", "key")
    vkey = vkey.decode().strip()
    name = vkey.split("+")[0]
    assert run(capsysbinary, "ledger", "witness", "add", name, vkey)[0] == 0
    code, out, _ = run(capsysbinary, "ledger", "witness", "list")
    assert name.encode() in out
    code, _, err = run(capsysbinary, "ledger", "witness", "add", name, "not-a-key")
    assert code == 2 and b"Bad verifier key" in err


def test_witness_set_points_a_witness_elsewhere_with_a_ledger_entry(capsysbinary):
    from sahab.core import keys
    from sahab.ledger import witnessing
    from sahab.ledger.models import Entry

    keys.ensure_witness_key()
    witnessing._witness_key.cache_clear()
    vkey = witnessing.witness_vkey()
    name = vkey.split("+")[0]
    assert run(capsysbinary, "ledger", "witness", "add", name, vkey,
               "--url", "http://127.0.0.1:8081/add-checkpoint")[0] == 0
    code, out, _ = run(capsysbinary, "ledger", "witness", "set", name,
                       "--url", "http://127.0.0.1:9081/add-checkpoint", "--no-active")
    assert code == 0 and b"inactive\thttp://127.0.0.1:9081/add-checkpoint" in out
    changed = Entry.objects.filter(type="ledger.witness.changed").latest("index")
    assert changed.subject == f"witness:{name}"
    code, _, err = run(capsysbinary, "ledger", "witness", "set", "nobody", "--url",
                       "http://127.0.0.1:1/add-checkpoint")
    assert code != 0 and b"No witness named nobody" in err
