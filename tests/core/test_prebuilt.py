"""A ``JoinedRead`` gives what the ORM gives for the same rows: the same instances, the
fields through their own converters, None where a left join found nothing."""

import pytest
from django.db import connection
from django.db.models import signals

from sahab.core import prebuilt
from sahab.core.prebuilt import Insert, Join, JoinedRead
from sahab.directory.models import CompanyMember
from sahab.procurement.models import SigningKey
from tests import factories

KEY_WITH_COMPANY = JoinedRead(
    [Join("k", "procurement.SigningKey"),
     Join("c", "directory.Company", "{c.pk} = {k.company}", inner=True),
     Join("m", "directory.CompanyMember", "{m.company} = {c.pk} AND {m.user} = %s")],
    where="{k.fingerprint} = %s",
    extra={"members": "(SELECT COUNT(*) FROM {cm} WHERE {cm.company} = {c.pk})"},
    refer={"cm": "directory.CompanyMember"},
    lock={"postgresql": "FOR SHARE OF k"},
)


@pytest.fixture
def key(db, sahab_home):
    from sahab.core import keys

    keys.ensure_ledger_key()
    company, member = factories.company(name="Atlas")
    factories.signing_key(member.user)
    return SigningKey.objects.get(company=company), member


def _fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_the_instances_are_those_the_orm_reads(key):
    signing_key, member = key
    (read_key, company, membership), extra = KEY_WITH_COMPANY.fetch(
        [member.user.pk, signing_key.fingerprint])

    assert _fields(read_key) == _fields(SigningKey.objects.get(pk=signing_key.pk))
    assert isinstance(read_key.public_key, bytes | memoryview)  # the binary converter ran
    assert read_key.registered_at.tzinfo is not None  # so did the datetime's
    assert _fields(company) == _fields(signing_key.company)
    assert _fields(membership) == _fields(CompanyMember.objects.get(pk=member.pk))
    assert extra == {"members": 1} and read_key.members == 1
    assert not read_key._state.adding and read_key._state.db == "default"


def test_a_left_join_that_finds_nothing_gives_none_and_no_row_gives_nothing(key):
    signing_key, _member = key
    (read_key, company, membership), _ = KEY_WITH_COMPANY.fetch([-1, signing_key.fingerprint])
    assert read_key.pk == signing_key.pk and company is not None and membership is None

    assert KEY_WITH_COMPANY.fetch([-1, "no such key"]) == ([None, None, None], {})
    assert KEY_WITH_COMPANY.fetch_all([-1, "no such key"]) == []


def test_only_the_fields_asked_for_are_read_the_others_are_deferred(key):
    signing_key, _member = key
    read = JoinedRead([Join("k", "procurement.SigningKey", fields=("fingerprint",))],
                      where="{k.company} = %s")
    [((only,), _)] = read.fetch_all([signing_key.company_id])
    assert only.pk == signing_key.pk and only.fingerprint == signing_key.fingerprint
    assert only.get_deferred_fields() == {f.attname for f in SigningKey._meta.concrete_fields
                                          if f.name not in ("id", "fingerprint")}


def test_the_lock_clause_is_written_on_its_database_only(key):
    signing_key, member = key
    KEY_WITH_COMPANY.fetch([member.user.pk, signing_key.fingerprint])
    built = KEY_WITH_COMPANY._built["default", connection.vendor]
    assert built.sql.endswith("FOR SHARE OF k") == (connection.vendor == "postgresql")



def test_an_insert_writes_what_the_orm_writes(db):
    """The same row as ``objects.create``: each field's default and conversion (binary,
    a timezone-aware time), the new key returned."""
    import datetime as dt

    from sahab.ledger.models import PendingEntry

    assert prebuilt._plain(PendingEntry)  # written by the prebuilt statement, not the ORM
    at = dt.datetime(2026, 12, 6, 10, 30, 15, 123000, tzinfo=dt.UTC)
    values = dict(body=b"\x00{}\xff", leaf_hash=b"h" * 32, type="t", subject="s", actor="a",
                  at=at, mac=b"m" * 32)
    by_insert = Insert("ledger.PendingEntry").create(**values, nonce=b"1" * 16)
    by_orm = PendingEntry.objects.create(**values, nonce=b"2" * 16)

    assert by_insert.pk and not by_insert._state.adding and by_insert._state.db == "default"
    fresh, orm = PendingEntry.objects.get(pk=by_insert.pk), PendingEntry.objects.get(pk=by_orm.pk)
    assert {k for k, v in _fields(fresh).items() if v != _fields(orm)[k]} == {"id", "nonce"}
    assert bytes(fresh.body) == b"\x00{}\xff" and fresh.at == at and fresh.refused == ""


def test_a_model_with_a_save_of_its_own_or_signal_receivers_goes_through_the_orm(db):
    """Company has receivers of its ``post_save``: they run, as after ``objects.create``."""
    from sahab.directory.models import Company

    saved = []

    def receiver(sender, instance, created, **kwargs):
        saved.append((instance.name, created))

    signals.post_save.connect(receiver, sender=Company)
    try:
        company = Insert("directory.Company").create(name="Atlas",
                                                     matricule_fiscal="1234567A/A/M/000")
    finally:
        signals.post_save.disconnect(receiver, sender=Company)
    assert saved == [("Atlas", True)] and Company.objects.get(pk=company.pk).name == "Atlas"
