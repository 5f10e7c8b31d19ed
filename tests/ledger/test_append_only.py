"""The database refuses to rewrite the ledger: UPDATE and DELETE fail from the
application's own connection, on SQLite and PostgreSQL alike (the suite runs on both)."""

import pytest
from django.core.management import call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from sahab.ledger import guard, services
from sahab.ledger.models import Checkpoint, Cosignature, Entry, LogState, Node, Witness
from sahab.ledger.services import Record
from tests.ledger.insider import as_database_owner

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _log(sahab_home):
    from sahab.core import keys

    keys.ensure_ledger_key()
    services._signer.cache_clear()
    services.append_many([Record("test.event", f"s:{i}", {"i": i}, "system") for i in range(5)])
    services.checkpoint_if_grown()


def _refused(statement) -> None:
    with pytest.raises(IntegrityError, match=r"append-only|never shrinks"), transaction.atomic():
        statement()


def test_the_guard_is_in_place_after_the_migrations():
    assert guard.missing(connection) == []


@pytest.mark.parametrize("model", [Entry, Node, Checkpoint])
def test_rows_of_the_ledger_cannot_be_updated_or_deleted(model):
    before = list(model.objects.order_by("pk").values())
    first = model.objects.order_by("pk").first()
    field = {"Entry": ("body", b"{}"), "Node": ("hash", b"\x00" * 32),
             "Checkpoint": ("signature", "forged")}[model.__name__]
    _refused(lambda: model.objects.filter(pk=first.pk).update(**{field[0]: field[1]}))
    _refused(lambda: model.objects.filter(pk=first.pk).delete())
    _refused(lambda: model.objects.all().delete())
    assert list(model.objects.order_by("pk").values()) == before


def test_raw_sql_is_refused_too():
    for sql in ("UPDATE ledger_entry SET body = body WHERE \"index\" = 1",
                "DELETE FROM ledger_node",
                "DELETE FROM ledger_checkpoint"):
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql)
    assert Entry.objects.count() == 5 and Checkpoint.objects.count() == 1


def test_cosignatures_cannot_be_removed():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sahab.ledger import note

    key = Ed25519PrivateKey.generate()
    vkey = note.Verifier("w.example/w", note.SIG_COSIGNATURE_V1,
                         note.Signer("w", key).verifier.public_key).vkey()
    witness = services.register_witness(name="w.example/w", vkey=vkey)
    checkpoint = Checkpoint.objects.get()
    line = note.cosign("w.example/w", key, checkpoint.text.encode(), 1_800_000_000)
    assert services.add_cosignature(checkpoint, witness, line)
    _refused(lambda: Cosignature.objects.all().delete())
    _refused(lambda: Cosignature.objects.update(line="forged"))
    assert Cosignature.objects.get().line == line
    assert Witness.objects.filter(pk=witness.pk).exists()


def test_the_log_state_only_grows():
    state = LogState.objects.get()
    _refused(lambda: LogState.objects.update(size=2))
    _refused(lambda: LogState.objects.all().delete())
    assert LogState.objects.get().size == state.size == 5
    services.append(type="test.event", subject="s:5", data={}, actor="system")
    assert LogState.objects.get().size == 6


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_truncate_is_refused_on_postgresql():
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute("TRUNCATE ledger_entry, ledger_node, ledger_checkpoint, "
                       "ledger_cosignature, ledger_logstate")
    assert Entry.objects.count() == 5


def test_only_the_database_owner_lifts_the_guard_and_it_comes_back():
    with as_database_owner():
        assert guard.missing(connection) != []
        Entry.objects.filter(index=0).update(body=b'{"forged":true}')
    assert guard.missing(connection) == []
    assert bytes(Entry.objects.get(index=0).body) == b'{"forged":true}'
    _refused(lambda: Entry.objects.filter(index=0).update(body=b"{}"))


def test_a_failed_owner_operation_leaves_the_guard_in_place():
    with pytest.raises(RuntimeError), as_database_owner():
        Entry.objects.filter(index=1).delete()
        raise RuntimeError("interrupted")
    assert guard.missing(connection) == [] and Entry.objects.filter(index=1).exists()


@pytest.mark.django_db(transaction=True)
def test_flush_empties_the_database_and_the_guard_survives_it():
    call_command("flush", interactive=False, verbosity=0)
    assert Entry.objects.count() == 0 and Checkpoint.objects.count() == 0
    assert guard.missing(connection) == []
    services.append(type="test.event", subject="after", data={}, actor="system")
    _refused(lambda: Entry.objects.all().delete())
