"""The signer keeps its own record outside the database and signs only trees that
continue it; restoring an old backup is accepted only knowingly."""

import fcntl
import json
import os
import stat
import threading
import time

import pytest
from django.db import connection, transaction

from sahab.core.errors import Conflict
from sahab.ledger import merkle, note, services, signing
from sahab.ledger.auditor import _check_divergence
from sahab.ledger.models import Checkpoint, Cosignature, Entry
from sahab.ledger.services import Record
from tests.ledger.insider import as_database_owner, recompute_tree

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keys(sahab_home):
    from sahab.core import keys

    keys.ensure_ledger_key()
    services._signer.cache_clear()


def fill(n: int, start: int = 0) -> None:
    services.append_many([Record("test.event", f"s:{i}", {"i": i}, "system")
                          for i in range(start, start + n)])


def test_the_record_is_kept_outside_the_database_readable_by_sahab_only():
    fill(10)
    services.checkpoint_if_grown()
    folder = signing.signer_dir()
    record = folder / "checkpoint.json"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "leaves").stat().st_mode) == 0o600
    data = json.loads(record.read_text())
    opened, _ = note.open_checkpoint((data["text"] + "\n" + data["signature"]).encode(),
                                     note.parse_vkey(services.verifier_key()))
    assert opened.size == 10 and (folder / "leaves").stat().st_size == 320
    assert not list(folder.glob("*.tmp"))


def test_an_honest_log_is_signed_as_it_grows():
    fill(3)
    assert services.checkpoint_if_grown().size == 3
    fill(5, 3)
    assert services.checkpoint_if_grown().size == 8
    assert signing.load_record().size == 8 and signing.alarm() is None


def test_a_rolled_back_database_is_refused_and_the_last_good_checkpoint_still_served():
    fill(20)
    services.checkpoint_if_grown()
    with as_database_owner():
        Entry.objects.filter(index__gte=12).delete()
        Checkpoint.objects.all().delete()
    recompute_tree()
    fill(3, 100)
    assert services.checkpoint_if_grown() is None
    alarm = signing.alarm()
    assert alarm["active"] and "removed" in alarm["reason"] and alarm["first_bad_index"] == 12
    assert services.latest_checkpoint().size == 20
    assert services.status()["ok"] is False


def test_an_edited_entry_with_a_recomputed_tree_is_named_with_a_checkable_proof():
    fill(40)
    services.checkpoint_if_grown()
    with as_database_owner():
        Entry.objects.filter(index=17).update(body=b'{"forged":true}')
    recompute_tree()
    fill(2, 40)
    assert services.checkpoint_if_grown() is None
    alarm = signing.alarm()
    assert alarm["first_bad_index"] == 17
    # anyone can check the proof against the signed checkpoint and the entries served
    checkpoint = note.parse_checkpoint(signing.load_record().text.encode())
    served = [merkle.leaf_hash(bytes(b)) for b in
              Entry.objects.order_by("index").values_list("body", flat=True)]
    assert _check_divergence(alarm["divergence"], checkpoint, served[:40]) == 17
    # the proof proves nothing about entries other than those it was made for
    import base64
    signed_leaf = base64.b64decode(alarm["divergence"]["leaf_hash"])
    unaltered = [*served[:17], signed_leaf, *served[18:40]]
    assert _check_divergence(alarm["divergence"], checkpoint, unaltered) is None
    other_prefix = [merkle.leaf_hash(b"x"), *served[1:40]]
    assert _check_divergence(alarm["divergence"], checkpoint, other_prefix) is None


def test_an_entry_edited_before_it_is_signed_is_refused():
    fill(5)
    services.checkpoint_if_grown()
    fill(5, 5)
    with as_database_owner():
        Entry.objects.filter(index=7).update(body=b'{"late":true}')
    assert services.checkpoint_if_grown() is None
    assert signing.alarm()["first_bad_index"] == 7
    assert services.latest_checkpoint().size == 5


def test_deleted_checkpoints_come_back_from_the_record_when_the_tree_is_intact():
    fill(6)
    services.checkpoint_if_grown()
    with as_database_owner():
        Checkpoint.objects.all().delete()
    assert services.latest_checkpoint().size == 6  # served from the record meanwhile
    assert services.checkpoint_if_grown() is None
    assert list(Checkpoint.objects.values_list("size", flat=True)) == [6]


def test_the_alarm_clears_once_the_tree_is_consistent_again():
    fill(8)
    services.checkpoint_if_grown()
    original = bytes(Entry.objects.get(index=3).body)
    with as_database_owner():
        Entry.objects.filter(index=3).update(body=b"{}")
    recompute_tree()
    assert services.checkpoint_if_grown() is None and signing.alarm()["active"]
    with as_database_owner():
        Entry.objects.filter(index=3).update(body=original)
    recompute_tree()
    fill(1, 8)
    assert services.checkpoint_if_grown().size == 9
    assert signing.alarm()["active"] is False and signing.alarm()["resolved_at"]


def test_a_damaged_record_stops_signing():
    fill(4)
    services.checkpoint_if_grown()
    path = signing.signer_dir() / "checkpoint.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "text": data["text"].replace("\n4\n", "\n5\n")}))
    fill(1, 4)
    assert services.checkpoint_if_grown() is None
    assert "damaged" in signing.alarm()["reason"]


def test_restoring_an_old_backup_is_accepted_only_knowingly_and_is_recorded():
    fill(30)
    services.checkpoint_if_grown()
    with as_database_owner():  # the restored backup had 25 entries
        Entry.objects.filter(index__gte=25).delete()
        Checkpoint.objects.all().delete()
    recompute_tree()
    assert services.checkpoint_if_grown() is None
    with pytest.raises(Conflict):
        signing.accept_restore(reason="")
    report = signing.accept_restore(reason="disk failure; backup of 03:00 restored")
    assert report.forked and (report.previous_size, report.restored_size) == (30, 25)
    entry = json.loads(bytes(services.get_entry(report.entry_index).body))
    assert entry["type"] == "ledger.signer.restored"
    assert entry["data"]["previous_size"] == 30 and entry["data"]["restored_size"] == 25
    assert services.checkpoint_if_grown().size == 26
    assert signing.alarm()["active"] is False
    assert list(signing.signer_dir().glob("checkpoint.json.replaced-*"))


def test_a_point_in_time_recovery_needs_nothing_accepted():
    fill(10)
    services.checkpoint_if_grown()
    report = signing.accept_restore(reason="recovered to the last transaction")
    assert not report.forked and report.entry_index is None


def test_a_checkpoint_is_published_once_enough_witnesses_cosigned_it(settings):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    fill(3)
    services.checkpoint_if_grown()
    key = Ed25519PrivateKey.generate()
    vkey = note.Verifier("w.example", note.SIG_COSIGNATURE_V1,
                         note.Signer("w", key).verifier.public_key).vkey()
    witness = services.register_witness(name="w.example", vkey=vkey)
    services.checkpoint_if_grown()  # size 4, with the registration
    settings.LEDGER_COSIGNATURES_REQUIRED = 1
    with pytest.raises(services.NotFound):
        services.latest_checkpoint()
    assert services.receipt(1, wait=False) is None
    checkpoint = Checkpoint.objects.get(size=4)
    services.add_cosignature(checkpoint, witness,
                             note.cosign("w.example", key, checkpoint.text.encode(), 1))
    assert services.latest_checkpoint().size == 4
    assert "— w.example " in services.receipt(1)
    assert "— w.example " in signing.load_record().cosignatures
    assert Cosignature.objects.count() == 1


def test_the_portal_shows_each_witness_and_the_alarm(client):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    vkey = note.Verifier("witness.inai.example", note.SIG_COSIGNATURE_V1,
                         note.Signer("w", key).verifier.public_key).vkey()
    witness = services.register_witness(name="witness.inai.example", vkey=vkey)
    fill(11)
    checkpoint = services.checkpoint_if_grown()
    services.add_cosignature(checkpoint, witness,
                             note.cosign(witness.name, key, checkpoint.text.encode(), 1))
    page = client.get("/ledger/").content.decode()
    assert "witness.inai.example" in page and ">12<" in page
    assert "refuses to sign" not in page
    with as_database_owner():
        Entry.objects.filter(index=4).update(body=b"{}")
    recompute_tree()
    services.checkpoint_if_grown()
    page = client.get("/ledger/").content.decode()
    assert "refuses to sign" in page and "number 4" in page
    assert client.get("/ledger/status").json()["signer"]["alarm"]["first_bad_index"] == 4


def _witness(name: str = "w.example"):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    vkey = note.Verifier(name, note.SIG_COSIGNATURE_V1,
                         note.Signer("w", key).verifier.public_key).vkey()
    return services.register_witness(name=name, vkey=vkey), key


@pytest.mark.django_db(transaction=True)
def test_deleted_checkpoints_come_back_with_their_cosignatures():
    """Before: putting back a lost checkpoint re-stored its cosignatures while the signer
    held its lock, and keeping each one with the record asked for that lock again from
    the same process: the signer waited for itself for ever."""
    witness, key = _witness()
    fill(5)
    checkpoint = services.checkpoint_if_grown()
    services.add_cosignature(checkpoint, witness,
                             note.cosign(witness.name, key, checkpoint.text.encode(), 1))
    with as_database_owner():
        Cosignature.objects.all().delete()
        Checkpoint.objects.all().delete()
    done = {}

    def sign():
        try:
            done["result"] = services.checkpoint_if_grown()
        finally:
            connection.close()

    thread = threading.Thread(target=sign, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "the signer waited for its own lock"
    assert done["result"] is None
    restored = Checkpoint.objects.get(size=checkpoint.size)
    assert list(restored.cosignatures.values_list("witness__name", flat=True)) == [witness.name]


def test_the_signers_lock_is_never_taken_inside_a_transaction():
    fill(2)
    with transaction.atomic(), pytest.raises(signing.LockOrderError):
        signing.sign_latest()
    assert services.checkpoint_if_grown().size == 2  # outside one, it signs


@pytest.mark.django_db(transaction=True)
def test_a_cosignature_stored_while_a_signer_holds_its_lock_does_not_lock_the_database():
    """Replays the lock inversion seen on the served platform: a witness's cosignature
    was stored in a transaction (holding SQLite's write lock) that then waited for the
    signer's file lock, while the signer, holding that lock, waited for the database to
    write its checkpoint. Both waited until the busy timeout, and every request behind
    them. Now the cosignature commits without the file lock and joins the record after."""
    witness, key = _witness()
    fill(3)
    checkpoint = services.checkpoint_if_grown()
    line = note.cosign(witness.name, key, checkpoint.text.encode(), 1)
    outcome: dict = {}

    def store_as_the_witness_submission_does():
        try:
            with transaction.atomic():
                outcome["stored"] = services.add_cosignature(checkpoint, witness, line)
        except Exception as exc:  # surfaced below
            outcome["error"] = exc
        finally:
            connection.close()

    fd = os.open(signing.signer_dir() / "signer.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a signer in the middle of signing
    try:
        thread = threading.Thread(target=store_as_the_witness_submission_does, daemon=True)
        thread.start()
        deadline = time.monotonic() + 5
        while not Cosignature.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Cosignature.objects.exists(), \
            "the cosignature's transaction waited for the signer's lock"
        with transaction.atomic():  # what the signer writes next: the database is free
            fill(1, 3)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    thread.join(10)
    assert not thread.is_alive() and "error" not in outcome and outcome["stored"]
    assert "— w.example " in signing.load_record().cosignatures


def test_a_cosignature_the_record_missed_is_copied_at_the_next_tick():
    """The process stopped between the cosignature's commit and its copy to the record:
    the worker's witness tick copies what the database holds."""
    from sahab.ledger import witnessing

    witness, key = _witness()
    fill(2)
    checkpoint = services.checkpoint_if_grown()
    services.add_cosignature(checkpoint, witness,
                             note.cosign(witness.name, key, checkpoint.text.encode(), 1))
    record = signing.load_record()
    record.cosignatures = ""  # what the record holds when the copy never ran
    signing._save_record(record)
    witnessing.submit_to_all()
    assert "— w.example " in signing.load_record().cosignatures
