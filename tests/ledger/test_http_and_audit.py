"""The ledger over HTTP, the auditor's verifier against it, tampering, and witnessing."""

import pytest

from sahab.ledger import merkle, note, services, witnessing
from sahab.ledger.auditor import AuditFailure, Auditor
from sahab.ledger.models import Checkpoint, Cosignature, Entry, Node, Witness
from sahab.ledger.services import Record
from tests.ledger.insider import as_database_owner, forget_signer_record, recompute_tree

pytestmark = pytest.mark.django_db
BASE = "http://testserver/ledger"


@pytest.fixture(autouse=True)
def _keys(sahab_home):
    from sahab.core import keys

    keys.ensure_ledger_key()
    keys.ensure_witness_key()
    services._signer.cache_clear()
    witnessing._witness_key.cache_clear()


def fill(n: int) -> None:
    services.append_many([Record("test.event", f"thing:{i % 7}", {"i": i}, "system")
                          for i in range(n)])
    services.checkpoint_if_grown()


def auditor(wsgi_http, tmp_path, **kwargs) -> Auditor:
    return Auditor(BASE, services.verifier_key(), client=wsgi_http,
                   state_path=tmp_path / "audit" / "state.json", **kwargs)


def test_checkpoint_and_tiles_are_served_at_the_c2sp_paths(wsgi_http):
    fill(300)
    response = wsgi_http.get("/ledger/checkpoint")
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    checkpoint, _ = note.open_checkpoint(response.content,
                                         note.parse_vkey(services.verifier_key()))
    assert checkpoint.size == 300
    full = wsgi_http.get("/ledger/tile/0/000")
    assert len(full.content) == 8192 and "immutable" in full.headers["cache-control"]
    assert len(wsgi_http.get("/ledger/tile/0/001.p/44").content) == 44 * 32
    assert wsgi_http.get("/ledger/tile/1/000.p/1").content == services.root_at(256)
    assert wsgi_http.get("/ledger/tile/entries/001.p/44").status_code == 200
    for missing in ("/ledger/tile/0/001", "/ledger/tile/0/001.p/45", "/ledger/tile/64/000",
                    "/ledger/tile/0/1", "/ledger/tile/00/000", "/ledger/tile/entries/002"):
        response = wsgi_http.get(missing)
        assert response.status_code == 404, missing
        assert response.headers["content-type"] == "application/problem+json"


def test_proofs_and_entries_as_json(wsgi_http):
    fill(50)
    body = wsgi_http.get("/ledger/proof/inclusion", params={"index": 7, "size": 40}).json()
    import base64
    merkle.verify_inclusion(7, 40, base64.b64decode(body["leaf_hash"]),
                            [base64.b64decode(p) for p in body["proof"]],
                            base64.b64decode(body["root"]))
    body = wsgi_http.get("/ledger/proof/consistency", params={"old": 13, "new": 50}).json()
    merkle.verify_consistency(13, 50, [base64.b64decode(p) for p in body["proof"]],
                              base64.b64decode(body["old_root"]),
                              base64.b64decode(body["new_root"]))
    entry = wsgi_http.get("/ledger/entries/7").json()
    assert entry["entry"]["data"] == {"i": 7} and entry["size"] == 50
    found = wsgi_http.get("/ledger/entries", params={"subject": "thing:3"}).json()
    assert found["count"] == 7 and all(e["subject"] == "thing:3" for e in found["items"])
    for bad in ({"index": "x"}, {"index": 60}, {"index": -1}, {}, {"index": 1, "size": 99}):
        response = wsgi_http.get("/ledger/proof/inclusion", params=bad)
        assert response.status_code in (404, 422), bad
        assert response.headers["content-type"] == "application/problem+json"
    assert wsgi_http.get("/ledger/entries/999").status_code == 404


def test_portal_pages(client):
    fill(3)
    page = client.get("/ledger/")
    assert page.status_code == 200 and b"Verify it yourself" in page.content
    assert client.get("/ledger/view/1/").status_code == 200
    assert client.get("/ledger/view/99/").status_code == 404


def test_the_ledger_pages_name_each_entry_by_its_title_and_keep_its_type(client):
    from sahab.ledger.events import LedgerOwnEvent

    index = services.record(LedgerOwnEvent.WITNESS_REGISTERED, "witness:w1", "system",
                            name="w1", url="https://w1.example.tn/", vkey="w1+00+AA").index
    fill(2)  # and entries of a type no vocabulary knows, shown as they are
    entry = client.get(f"/ledger/view/{index}/", HTTP_ACCEPT_LANGUAGE="ar").content.decode()
    assert 'تسجيل شاهد <small><code dir="ltr">ledger.witness.registered</code></small>' in entry
    home = client.get("/ledger/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Témoin enregistré<br><small><code" in home
    assert 'test.event<br><small><code dir="ltr">test.event</code>' in home


def test_the_auditor_accepts_an_honest_log_and_follows_it_as_it_grows(wsgi_http, tmp_path):
    fill(600)
    result = auditor(wsgi_http, tmp_path).run()
    assert (result.size, result.previous_size) == (600, 0)
    fill(70)
    result = auditor(wsgi_http, tmp_path).run()
    assert (result.size, result.previous_size) == (670, 600)


def test_the_auditor_refuses_a_checkpoint_signed_by_another_key(wsgi_http, tmp_path):
    fill(5)
    other = note.Signer(services.signer().name, __import__(
        "cryptography.hazmat.primitives.asymmetric.ed25519", fromlist=["x"]
    ).Ed25519PrivateKey.generate())
    with pytest.raises(AuditFailure, match="does not verify"):
        Auditor(BASE, other.verifier.vkey(), client=wsgi_http,
                state_path=tmp_path / "s.json").run()


def test_an_edited_entry_is_named(wsgi_http, tmp_path):
    fill(300)
    auditor(wsgi_http, tmp_path).run()
    with as_database_owner():
        Entry.objects.filter(index=123).update(body=b'{"forged":true}')
    with pytest.raises(AuditFailure, match="entry 123 "):
        auditor(wsgi_http, tmp_path).run()


def test_an_edited_entry_and_leaf_are_named_by_the_tree_above(wsgi_http, tmp_path):
    fill(300)
    forged = b'{"forged":true}'
    with as_database_owner():
        Entry.objects.filter(index=42).update(body=forged)
        Node.objects.filter(key=42).update(hash=merkle.leaf_hash(forged))
    with pytest.raises(AuditFailure, match="entries 0 to 255"):
        auditor(wsgi_http, tmp_path).run()


def test_a_deleted_entry_is_named(wsgi_http, tmp_path):
    fill(40)
    with as_database_owner():
        Entry.objects.filter(index=17).delete()
    with pytest.raises(AuditFailure, match="entry 17 "):
        auditor(wsgi_http, tmp_path).run()


def test_reordered_entries_are_named(wsgi_http, tmp_path):
    fill(40)
    a, b = Entry.objects.get(index=9), Entry.objects.get(index=10)
    with as_database_owner():
        Entry.objects.filter(index=9).update(body=bytes(b.body))
        Entry.objects.filter(index=10).update(body=bytes(a.body))
    with pytest.raises(AuditFailure, match="entry 9 "):
        auditor(wsgi_http, tmp_path).run()


def truncate_log(size: int) -> None:
    """Cut the log back to ``size`` entries in the database, tree included."""
    with as_database_owner():
        Entry.objects.filter(index__gte=size).delete()
    recompute_tree()


def test_a_rollback_is_detected_against_what_the_auditor_saw(wsgi_http, tmp_path):
    fill(30)
    auditor(wsgi_http, tmp_path).run()
    fill(20)
    auditor(wsgi_http, tmp_path).run()
    # roll the database back to 30 entries, as a restored old backup would, with root on
    # the signer's machine too (else the signer refuses the roll-back: test_signer.py)
    forget_signer_record()
    with as_database_owner():
        Cosignature.objects.all().delete()
        Checkpoint.objects.filter(size__gt=30).delete()
    truncate_log(30)
    with pytest.raises(AuditFailure, match=r"rolled back.*from 30 on"):
        auditor(wsgi_http, tmp_path).run()


def test_a_fork_signed_with_the_real_key_is_detected(wsgi_http, tmp_path):
    fill(10)
    auditor(wsgi_http, tmp_path).run()
    # an insider with the key rewrites history from entry 4 on and re-signs a larger tree
    forget_signer_record()
    with as_database_owner():
        Checkpoint.objects.all().delete()
    truncate_log(4)
    fill(8)
    with pytest.raises(AuditFailure, match="entry 4 was rewritten"):
        auditor(wsgi_http, tmp_path).run()


def test_this_log_gets_cosigned_by_a_witness_over_the_witness_protocol(wsgi_http, settings):
    fill(5)
    # this installation witnesses its own log: both ends of tlog-witness in one test
    witnessing.register_witnessed_log(vkey=services.verifier_key())
    witness = services.register_witness(name=settings.LEDGER_WITNESS_NAME,
                                        vkey=witnessing.witness_vkey(),
                                        url="https://testserver/ledger/witness/add-checkpoint")
    services.checkpoint_if_grown()
    assert witnessing.submit(witness, client=wsgi_http)
    fill(7)
    assert witnessing.submit(witness, client=wsgi_http)  # with a consistency proof from 6
    assert Cosignature.objects.count() == 2
    served = wsgi_http.get("/ledger/checkpoint").content
    _, cosigs = note.open_checkpoint(served, note.parse_vkey(services.verifier_key()),
                                     [note.parse_vkey(witness.vkey)])
    assert [c.name for c in cosigs] == [settings.LEDGER_WITNESS_NAME]


def test_the_witness_endpoint_answers_as_the_protocol_says(wsgi_http):
    fill(8)
    url = "/ledger/witness/add-checkpoint"
    signed = services.signed_checkpoint(services.latest_checkpoint())
    body = witnessing.request_body(0, [], signed)
    assert wsgi_http.post(url, content=body).status_code == 404  # unknown origin
    witnessing.register_witnessed_log(vkey=services.verifier_key())
    signed = services.signed_checkpoint(services.checkpoint_if_grown() or
                                        services.latest_checkpoint())
    assert wsgi_http.post(url, content=b"garbage").status_code == 400
    forged = signed.replace("\n9\n", "\n10\n")
    assert wsgi_http.post(url, content=witnessing.request_body(0, [], forged)).status_code == 403
    assert wsgi_http.post(url, content=witnessing.request_body(0, [b"x" * 32], signed)
                          ).status_code in (400, 422)
    ok = wsgi_http.post(url, content=witnessing.request_body(0, [], signed))
    assert ok.status_code == 200 and ok.text.startswith("— ")
    stale = wsgi_http.post(url, content=witnessing.request_body(0, [], signed))
    assert stale.status_code == 409 and stale.text == "9\n"
    assert stale.headers["content-type"] == "text/x.tlog.size"
    fill(3)
    newer = services.signed_checkpoint(services.latest_checkpoint())
    bad_proof = [b"\x00" * 32] * len(services.consistency_proof(9, 12))
    assert wsgi_http.post(url, content=witnessing.request_body(9, bad_proof, newer)
                          ).status_code == 422
    good = wsgi_http.post(url, content=witnessing.request_body(
        9, services.consistency_proof(9, 12), newer))
    assert good.status_code == 200
    assert Witness.objects.count() == 0  # witnessing others registers no witness of ours


def test_a_witness_can_post_its_cosignature_itself(wsgi_http):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    fill(4)
    key = Ed25519PrivateKey.generate()
    public = note.Signer("x", key).verifier.public_key
    vkey = note.Verifier("cdc.example/witness", note.SIG_COSIGNATURE_V1, public).vkey()
    services.register_witness(name="cdc.example/witness", vkey=vkey)
    checkpoint = services.latest_checkpoint()
    line = note.cosign("cdc.example/witness", key, checkpoint.text.encode(), 1_800_000_000)
    url = f"/ledger/checkpoint/{checkpoint.size}/cosignatures"
    forged = note.cosign("cdc.example/witness", Ed25519PrivateKey.generate(),
                         checkpoint.text.encode(), 1_800_000_000)
    assert wsgi_http.post(url, content=forged).status_code == 422
    assert wsgi_http.post(url, content="garbage").status_code == 422
    assert wsgi_http.post("/ledger/checkpoint/999/cosignatures", content=line).status_code == 404
    response = wsgi_http.post(url, content=line)
    assert response.status_code == 200 and response.json()["stored"] == ["cdc.example/witness"]
    served = wsgi_http.get("/ledger/checkpoint").content
    _, cosigs = note.open_checkpoint(served, note.parse_vkey(services.verifier_key()),
                                     [note.parse_vkey(vkey)])
    assert [c.name for c in cosigs] == ["cdc.example/witness"]


def _cosigning_witness(name: str):
    """A witness of ours, registered, with its private key and verifier key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    public = note.Signer("x", key).verifier.public_key
    vkey = note.Verifier(name, note.SIG_COSIGNATURE_V1, public).vkey()
    services.register_witness(name=name, vkey=vkey)
    return key, vkey


def test_the_auditor_fails_when_a_required_witness_did_not_cosign_or_disagrees(
        wsgi_http, tmp_path):
    """``ledger verify --witness-key``: a checkpoint no required witness vouches for is
    refused on first contact, and so is one whose cosignature does not verify."""
    fill(4)
    key, vkey = _cosigning_witness("cdc.example/witness")
    with pytest.raises(AuditFailure, match=r"not cosigned by cdc\.example/witness"):
        auditor(wsgi_http, tmp_path, witness_keys=[vkey]).run()

    checkpoint = services.latest_checkpoint()
    path = f"/ledger/checkpoint/{checkpoint.size}/cosignatures"
    line = note.cosign("cdc.example/witness", key, checkpoint.text.encode(), 1_800_000_000)
    assert wsgi_http.post(path, content=line).status_code in (200, 201)
    result = auditor(wsgi_http, tmp_path, witness_keys=[vkey]).run()
    assert result.cosigned_by == ["cdc.example/witness"]

    # a database writer swaps the stored cosignature for the witness's signature of
    # another tree: the line names the right key but disagrees with this checkpoint
    other_tree = checkpoint.text.replace(f"\n{checkpoint.size}\n", "\n99\n").encode()
    with as_database_owner():
        Cosignature.objects.update(line=note.cosign("cdc.example/witness", key, other_tree,
                                                    1_800_000_000))
    with pytest.raises(AuditFailure, match="does not verify"):
        auditor(wsgi_http, tmp_path, witness_keys=[vkey]).run()


def test_the_monitor_stops_at_its_time_and_reports_each_new_size(wsgi_http, tmp_path):
    """``ledger monitor --until``: bounded by the clock, it reports each size it verified."""
    import time

    from sahab.ledger.auditor import Monitor

    fill(3)
    lines: list[str] = []
    rounds = Monitor(auditor(wsgi_http, tmp_path), interval=0.05, report=lines.append
                     ).run(until=time.time() + 0.3)
    assert rounds >= 2
    assert len(lines) == 1 and "size 3 " in lines[0] and "verified" in lines[0]
