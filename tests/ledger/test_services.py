import base64
import json
import threading

import pytest
from django.db import connection, transaction

from sahab.core.errors import InvalidInput, NotFound
from sahab.ledger import merkle, note, services, views
from sahab.ledger.auditor import AuditFailure, tile_path, verify_proof_file
from sahab.ledger.models import Checkpoint, Entry, LogState
from sahab.ledger.services import Record

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keys(sahab_home):
    from sahab.core import keys

    keys.ensure_ledger_key()
    keys.ensure_witness_key()
    services._signer.cache_clear()


def fill(n: int, prefix: str = "test") -> list[services.Appended]:
    return services.append_many([Record(f"{prefix}.event", f"thing:{i}", {"i": i}, "system")
                                 for i in range(n)])


def leaves() -> list[bytes]:
    return [merkle.leaf_hash(bytes(b)) for b in Entry.objects.order_by("index")
            .values_list("body", flat=True)]


def test_entries_are_canonical_json_with_a_dense_index():
    first = services.append(type="test.created", subject="thing:1",
                            data={"b": 2, "a": "é"}, actor="user:7")
    second = services.append(type="test.changed", subject="thing:1", data={}, actor="system")
    assert (first.index, second.index) == (0, 1)
    body = bytes(services.get_entry(0).body)
    assert body.startswith(b'{"actor":"user:7","at":"')
    assert b'"data":{"a":"\xc3\xa9","b":2},"subject":"thing:1","type":"test.created"}' in body
    assert first.leaf_hash == merkle.leaf_hash(body)


def test_an_entry_is_committed_if_and_only_if_the_change_is():
    fill(3)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.append(type="test.event", subject="x", data={}, actor="system")
        raise RuntimeError("the change failed")
    assert services.tree_size() == 3 and Entry.objects.count() == 3
    assert fill(1)[0].index == 3



def test_entries_carrying_the_bulk_loaders_separators_read_back_byte_for_byte():
    # PostgreSQL stores a batch by COPY, whose text format gives a meaning to tabs,
    # newlines, backslashes and "\N" (NULL): none may change what was appended
    awkward = ["\\N", "a\tb", "line\nbreak\r", "back\\slash", "\\.", "مرحبا é 漢"]
    appended = services.append_many([Record("test.event", text, {"text": text, "i": i}, text)
                                      for i, text in enumerate(awkward * 50)])
    stored = Entry.objects.order_by("index")
    assert [(e.subject, e.actor) for e in stored] == [(t, t) for t in awkward * 50]
    assert [merkle.leaf_hash(bytes(e.body)) for e in stored] == [a.leaf_hash for a in appended]
    assert [json.loads(bytes(e.body))["data"]["text"] for e in stored] == awkward * 50
    # the nodes (hashes holding every byte value) give back the root of the leaves
    assert services.root_at(300) == merkle.root_of([a.leaf_hash for a in appended])

@pytest.mark.parametrize("record", [
    Record("", "s", {}, "a"), Record("t", "s", [], "a"), Record("t", "s", {"x": object()}, "a"),
    Record("t", "s", {"big": 2**80}, "a"), Record("t", "s", {"doc": "x" * 70000}, "a"),
])
def test_bad_entries_are_refused_and_change_nothing(record):
    with pytest.raises(InvalidInput):
        services.append_many([record])
    assert services.tree_size() == 0


def test_roots_and_proofs_come_from_stored_nodes():
    fill(300)
    hashes = leaves()
    for size in (1, 2, 3, 7, 8, 9, 255, 256, 257, 300):
        assert services.root_at(size) == merkle.root_of(hashes[:size])
    for index, size in ((0, 1), (5, 9), (255, 300), (299, 300)):
        merkle.verify_inclusion(index, size, hashes[index],
                                services.inclusion_proof(index, size), services.root_at(size))
    for old, new in ((1, 300), (7, 8), (256, 300), (300, 300)):
        merkle.verify_consistency(old, new, services.consistency_proof(old, new),
                                  services.root_at(old), services.root_at(new))


def test_proof_requests_beyond_the_log_are_refused():
    fill(5)
    with pytest.raises(NotFound):
        services.inclusion_proof(0, 6)
    with pytest.raises(InvalidInput):
        services.inclusion_proof(5, 5)
    with pytest.raises(InvalidInput):
        services.consistency_proof(4, 3)
    with pytest.raises(NotFound):
        services.leaf_hash_of(2**56)  # must not alias a node of another level


def test_checkpoints_are_signed_c2sp_notes_and_made_once_per_size(settings):
    fill(10)
    checkpoint = services.checkpoint_if_grown()
    assert services.checkpoint_if_grown() is None
    signed = services.signed_checkpoint(checkpoint).encode()
    opened, _ = note.open_checkpoint(signed, note.parse_vkey(services.verifier_key()))
    assert opened.origin == settings.LEDGER_ORIGIN and opened.size == 10
    assert opened.root == merkle.root_of(leaves())
    fill(1)
    assert services.checkpoint_if_grown().size == 11
    assert list(Checkpoint.objects.values_list("size", flat=True)) == [11, 10]


def test_tiles_of_the_worked_example_of_the_specification():
    tiles = services.tiles_for_size(70_000)
    level0 = [t for t in tiles if t[0] == 0]
    assert len([t for t in level0 if t[2] == 256]) == 273 and (0, 273, 112) in level0
    assert [t for t in tiles if t[0] == 1] == [(1, 0, 256), (1, 1, 17)]
    assert [t for t in tiles if t[0] == 2] == [(2, 0, 1)]
    assert services.tiles_for_size(256) == [(0, 0, 256), (1, 0, 1)]
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path("entries", 5, 17) == "tile/entries/005.p/17"
    assert views.parse_tile_index("x001/x234/067.p/112") == (1234067, 112)
    for bad in ("1234067", "x1/234", "067.p/0", "067.p/256", "067.p/012", "x001/067/x234"):
        with pytest.raises(ValueError):
            views.parse_tile_index(bad)


def test_tiles_and_bundles_hold_the_tree():
    fill(600)
    hashes = leaves()
    assert services.tile(0, 0, 256) == b"".join(hashes[:256])
    assert services.tile(0, 2, 88) == b"".join(hashes[512:600])
    assert services.tile(1, 0, 2) == merkle.root_of(hashes[:256]) + merkle.root_of(hashes[256:512])
    with pytest.raises(NotFound):
        services.tile(0, 2, 89)
    bundle = services.entry_bundle(2, 88)
    first = bytes(services.get_entry(512).body)
    assert bundle[:2] == len(first).to_bytes(2, "big") and bundle[2:2 + len(first)] == first


def test_a_receipt_verifies_offline_and_fails_on_any_changed_byte():
    fill(20)
    proof = services.receipt(13).encode()
    entry = bytes(services.get_entry(13).body)
    assert proof.startswith(b"c2sp.org/tlog-proof@v1\nindex 13\n")
    index, checkpoint = verify_proof_file(proof, entry, services.verifier_key())
    assert index == 13 and checkpoint.size == 20
    with pytest.raises(AuditFailure):
        verify_proof_file(proof, bytes(services.get_entry(12).body), services.verifier_key())
    for i in range(0, len(proof), 5):
        tampered = bytearray(proof)
        tampered[i] ^= 0x04
        try:
            verify_proof_file(bytes(tampered), entry, services.verifier_key())
        except AuditFailure:
            continue
        # a flipped bit may only survive where base64 ignores it (padding bits)
        assert base64.b64decode(bytes(tampered).split(b"\n")[2]) == \
            base64.b64decode(proof.split(b"\n")[2])


def test_directory_changes_are_recorded_without_personal_data():
    from tests import factories

    agent = factories.agent()
    services.integrate_pending()  # the worker's tick: the entries were written pending
    types = list(Entry.objects.values_list("type", flat=True))
    assert types == ["directory.administration.created", "directory.agent.created"]
    body = bytes(Entry.objects.get(type="directory.agent.created").body)
    assert agent.user.username.encode() not in body and agent.user.email.encode() not in body
    assert json.loads(body)["subject"] == f"user:{agent.user.pk}"


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_get_dense_indexes_in_commit_order():
    errors = []

    def writer(n):
        try:
            for i in range(25):
                with transaction.atomic():
                    services.append(type="test.concurrent", subject=f"w{n}", data={"i": i},
                                    actor="system")
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    indexes = list(Entry.objects.values_list("index", flat=True))
    assert indexes == list(range(100))
    assert LogState.objects.get().size == 100
    assert services.root_at(100) == merkle.root_of(leaves())
    for n in range(4):  # each writer's own entries keep their order
        mine = [json.loads(bytes(b))["data"]["i"] for b in
                Entry.objects.filter(subject=f"w{n}").values_list("body", flat=True)]
        assert mine == list(range(25))


def test_a_session_without_standard_strings_still_stores_the_exact_bytes():
    # a role may set standard_conforming_strings off; COPY's bytea text would then be
    # stored as the hex digits themselves, under the append-only triggers for good
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL setting")
    with connection.cursor() as cursor:
        cursor.execute("SET standard_conforming_strings = off")
    try:
        appended = services.append_many([Record("t.e", "a\\b", {"k": "v\\w"}, "x")])
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET standard_conforming_strings = on")
    body = bytes(Entry.objects.get(index=appended[0].index).body)
    assert merkle.leaf_hash(body) == appended[0].leaf_hash
    assert services.root_at(1) == appended[0].leaf_hash


def test_a_refused_row_is_a_database_error_django_knows():
    from django.db import IntegrityError

    fill(1)
    entry = Entry.objects.get(index=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        services.store_rows([(0, bytes(entry.body), entry.type, entry.subject, entry.actor,
                              entry.at, bytes(entry.mac))], [])
