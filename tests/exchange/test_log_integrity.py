"""Only the gateway writes the message log: a database writer who inserts a fake
exchange, copies or edits a record, or marks one as logged without it being on the
ledger is refused or reported, never logged as the platform's word."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import IntegrityError, connection, transaction

from sahab.exchange import messagelog
from sahab.exchange.models import Message
from sahab.ledger import services as ledger


def _exchange_entries() -> list[dict]:
    return [json.loads(bytes(e.body))["data"]
            for e in ledger.logged_entries().filter(type="exchange.message")]


def _insert_copy(message: Message, **changes) -> None:
    """What a database writer does: an INSERT with the columns of a real record."""
    row = {c: getattr(message, c) for c in messagelog.COLUMNS if hasattr(message, c)}
    row.update(changes)
    row["started_at"] = connection.ops.adapt_datetimefield_value(row["started_at"])
    names = list(row)
    table = connection.ops.quote_name(Message._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({', '.join(names)}) "  # noqa: S608
                       f"VALUES ({', '.join(['%s'] * len(names))})", [row[n] for n in names])


def test_a_fake_exchange_inserted_in_the_database_never_reaches_the_ledger(intranet):
    """Finding: an INSERT into exchange_message naming the cabinet of the prime minister
    as the caller of the civil registry was appended to the public ledger by the worker
    as an exchange like any other, actor "system"."""
    assert intranet.call("persons/1").status_code == 200
    genuine = Message.objects.get()
    _insert_copy(genuine, client="TN/GOV/PM/CABINET", x_road_id="forged-1",
                 request_id="00000000-0000-4000-8000-000000000001", mac="0" * 64)
    messagelog.flush_to_ledger()
    assert [d["client"] for d in _exchange_entries()] == [intranet.client.identifier]
    forged = Message.objects.get(x_road_id="forged-1")
    assert forged.ledger_index is None and forged.ledger_failed_at is not None
    assert "MAC" in forged.ledger_error
    status = messagelog.status()
    assert status["alert"] and "refused" in status["alert_reasons"]


def test_a_pending_record_edited_in_the_database_is_refused(intranet):
    """Finding: a refused call (403) turned into an answered one (200) in the database
    before the worker's next second went to the ledger as answered."""
    intranet.call("persons/1", client=intranet.other.identifier, token=intranet.other_token)
    Message.objects.update(status=200, error="")
    messagelog.flush_to_ledger()
    assert _exchange_entries() == []
    assert Message.objects.get().ledger_failed_at is not None


def test_a_copy_of_a_genuine_record_is_refused_by_the_database(intranet):
    """Finding: a second copy of a real record went to the ledger as a second exchange."""
    assert intranet.call("persons/1").status_code == 200
    with pytest.raises(IntegrityError):
        _insert_copy(Message.objects.get())
    messagelog.flush_to_ledger()
    assert len(_exchange_entries()) == 1


def test_a_record_marked_as_logged_that_the_ledger_does_not_hold_is_reported(intranet):
    """Finding: setting ledger_index on a fresh record (to the index of any other entry)
    kept it off the ledger for good, and neither the status nor anything else noticed."""
    ledger.integrate_pending()
    assert intranet.call("persons/1").status_code == 200
    Message.objects.update(ledger_index=0)  # the registry's first entry
    assert messagelog.flush_to_ledger() == 0
    status = messagelog.status()
    assert status["alert"] and "disagrees" in status["alert_reasons"]
    assert status["disagreeing"] == 1


def test_a_record_edited_after_it_reached_the_ledger_is_reported(intranet):
    """Finding: a record changed after it was logged (status 200 → 500) disagreed with
    its ledger entry, and the statistics and receipts said what the database said."""
    assert intranet.call("persons/1").status_code == 200
    assert messagelog.flush_to_ledger() == 1
    assert messagelog.status()["alert"] is False
    Message.objects.update(status=500)
    status = messagelog.status()
    assert status["alert"] and status["disagreeing"] == 1
    found = messagelog.disagreements()
    assert len(found) == 1 and "MAC" in found[0][1]


def test_the_verify_command_names_the_records_that_disagree(intranet, settings):
    assert intranet.call("persons/1").status_code == 200
    assert messagelog.flush_to_ledger() == 1
    from sahab.directory.selectors import SYSTEM  # noqa: F401 (the platform's own actor)
    from sahab.exchange import cli

    assert cli.cmd_verify_log(None) == 0
    Message.objects.update(status=500)
    assert cli.cmd_verify_log(None) == 1



def _three_exchanges_numbered(intranet) -> str:
    """Three calls through the gateway, numbered 1, 2, 3 by its process: its run id."""
    for _ in range(3):
        assert intranet.call("persons/1").status_code == 200
    records = list(Message.objects.order_by("seq"))
    assert [m.seq for m in records] == [1, 2, 3] and len({m.run for m in records}) == 1
    return records[0].run


def _as_the_gateway(template: Message, run: str, numbers) -> None:
    """Records written as the gateway writes them (its MAC), with these numbers."""
    import uuid

    batch = []
    for seq in numbers:
        row = messagelog.capture(**{c: getattr(template, c) for c in messagelog.COLUMNS
                                    if hasattr(template, c)})
        row.update(x_road_id=str(uuid.uuid4()), request_id=str(uuid.uuid4()), run=run,
                   seq=seq)
        batch.append(row)
    messagelog.write(batch)


def _missing_entries() -> list[dict]:
    return [json.loads(bytes(e.body))["data"]
            for e in ledger.logged_entries().filter(type="exchange.message.missing")]


def _settled(settings) -> None:
    """As if the records were older than a record on its way could be."""
    settings.EXCHANGE_LOG_ALERT_SECONDS = 0


def test_a_record_deleted_before_it_reached_the_ledger_is_reported_on_the_ledger(
        intranet, capsys, settings):
    """Finding: a database writer deleted a record of the message log in the second before
    the worker logged it: the ledger never saw the exchange, and nothing told. The
    gateway's process now numbers its records under its MAC and in the public entry; the
    worker, logging the record above the hole, appends a public entry naming the missing
    numbers (no later deletion takes it back), the status alerts, and the verify command
    finds the hole in the ledger's entries: deleting the later records from the table as
    well hides nothing."""
    from sahab.exchange import cli

    run = _three_exchanges_numbered(intranet)
    Message.objects.filter(seq=2).delete()
    # younger than a record still on its way could be: record 3 waits
    assert messagelog.flush_to_ledger() == 1
    assert _missing_entries() == []
    _settled(settings)
    assert messagelog.flush_to_ledger() == 1
    assert [(d["run"], d["seq"]) for d in _exchange_entries()] == [(run, 1), (run, 3)]
    assert _missing_entries() == [{"run": run, "first": 2, "last": 2}]
    status = messagelog.status()
    assert status["missing"] == 1 and "missing" in status["alert_reasons"]
    Message.objects.filter(seq=3).delete()  # the later record, gone from the table too
    assert messagelog.gaps() == ([(run, 2, 2)], [])
    assert messagelog.status()["missing"] == 1
    assert cli.cmd_verify_log(None) == 1
    assert f"gateway process {run}: records 2 to 2 are missing" in capsys.readouterr().err


def test_no_record_takes_the_number_of_a_deleted_one(intranet, settings):
    """The number is under the gateway's MAC: the writer who deleted record 2 cannot give
    record 3 its number (nor strip record 1 of its number) to close the hole."""
    _three_exchanges_numbered(intranet)
    Message.objects.filter(seq=2).delete()
    Message.objects.filter(seq=3).update(seq=2)
    Message.objects.filter(seq=1).update(seq=None, run=None)
    _settled(settings)
    assert messagelog.flush_to_ledger() == 0
    assert Message.objects.filter(ledger_failed_at__isnull=False).count() == 2
    assert "refused" in messagelog.status()["alert_reasons"]


def test_a_row_inserted_under_a_deleted_records_number_does_not_hide_the_hole(
        intranet, settings):
    """Review: the writer deletes record 2 and inserts a row of its own with its process
    and number; set aside (no MAC), it accounted for the number and the hole was never
    reported. Only a record of the gateway's accounts for a number."""
    run = _three_exchanges_numbered(intranet)
    genuine = Message.objects.get(seq=2)
    genuine.delete()
    _insert_copy(genuine, x_road_id="junk", request_id="00000000-0000-4000-8000-0000000000aa",
                 mac="0" * 64)
    _settled(settings)
    messagelog.flush_to_ledger()
    assert _missing_entries() == [{"run": run, "first": 2, "last": 2}]
    assert messagelog.gaps() == ([(run, 2, 2)], [])


def test_a_hole_is_reported_however_many_exchanges_follow_it(intranet, settings):
    """Review: the status looked at the latest 1000 exchanges only, so that on a busy
    gateway the hole left the window before it was old enough to count. The alarm is now
    the worker's ledger entry, made when the record above the hole is logged."""
    import uuid

    template, run = Message.objects.get(pk=_one_logged(intranet)), uuid.uuid4().hex
    _as_the_gateway(template, run, range(1, 1203))
    Message.objects.filter(run=run, seq=2).delete()
    _settled(settings)
    while messagelog.flush_to_ledger(budget_seconds=30):
        pass
    assert _missing_entries() == [{"run": run, "first": 2, "last": 2}]
    assert messagelog.status()["missing"] == 1


def test_a_wide_hole_is_one_range_not_a_crash(intranet, settings):
    """Review: 300,000 numbers deleted made the check list them all in one SQL IN, over
    SQLite's limit of variables: the status and the command failed instead of alerting."""
    import uuid

    template, run = Message.objects.get(pk=_one_logged(intranet)), uuid.uuid4().hex
    _as_the_gateway(template, run, [1, 300_000])
    _settled(settings)
    messagelog.flush_to_ledger()
    assert _missing_entries() == [{"run": run, "first": 2, "last": 299_999}]
    assert messagelog.status()["missing"] == 299_998
    assert messagelog.gaps() == ([(run, 2, 299_999)], [])


def test_a_logged_record_inserted_again_is_reported_as_logged_twice(intranet, settings):
    """Review: a logged record deleted and inserted again unchanged (its MAC no longer
    collides) was logged a second time, and nothing said so. Its number, on the ledger
    twice, shows it."""
    run = _three_exchanges_numbered(intranet)
    messagelog.flush_to_ledger()
    genuine = Message.objects.get(seq=2)
    genuine.delete()
    _insert_copy(genuine, ledger_index=None)
    messagelog.flush_to_ledger()
    assert messagelog.gaps() == ([], [(run, 2)])


def test_a_record_set_aside_is_reported_missing_until_it_reaches_the_ledger(
        intranet, settings):
    """A writer could mark record 2 as set aside (its MAC intact), let record 3 go to the
    ledger above it, then delete it: the set-aside count showed it only meanwhile. A
    record set aside is not on the ledger, so it is a hole like a deleted one; put back
    and logged (``retry-refused``), it no longer counts."""
    from sahab.directory.selectors import SYSTEM

    run = _three_exchanges_numbered(intranet)
    Message.objects.filter(seq=2).update(ledger_failed_at=dt.datetime.now(dt.UTC),
                                         ledger_error="refused by the ledger")
    _settled(settings)
    assert messagelog.flush_to_ledger() == 2
    assert _missing_entries() == [{"run": run, "first": 2, "last": 2}]
    assert messagelog.gaps() == ([(run, 2, 2)], [])
    status = messagelog.status()
    assert status["missing"] == 1 and status["refused"] == 1
    assert messagelog.retry_refused(actor=SYSTEM) == 1
    assert messagelog.flush_to_ledger() == 1
    assert messagelog.gaps() == ([], []) and messagelog.status()["missing"] == 0


def test_a_hole_deleted_in_two_steps_is_reported_by_the_worker(intranet, settings):
    """Review: the writer deleted record 1 (record 2, above it, was held back while a
    record on its way could still come) and record 3 went to the ledger at once, since
    its predecessor was in the batch; then the writer deleted record 2: no record above
    the hole was ever logged again, and no alarm came. A process's records now go in the
    order of their numbers: record 3 waits behind record 2."""
    run = _three_exchanges_numbered(intranet)
    Message.objects.filter(seq=1).delete()
    assert messagelog.flush_to_ledger() == 0  # 2 waits for 1, 3 waits for 2
    Message.objects.filter(seq=2).delete()
    _settled(settings)
    assert messagelog.flush_to_ledger() == 1
    assert _missing_entries() == [{"run": run, "first": 1, "last": 2}]
    assert messagelog.gaps() == ([(run, 1, 2)], [])
    assert messagelog.status()["missing"] == 2


def test_a_predecessor_marked_as_logged_is_no_record_on_the_ledger(intranet, settings):
    """Review: record 2, marked as logged at an old index instead of deleted, accounted
    for its number, and the status's comparison of the latest 1000 logged records missed
    it on a busy gateway. A record below counts only if the ledger holds it."""
    ledger.integrate()
    run = _three_exchanges_numbered(intranet)
    Message.objects.filter(seq=2).update(ledger_index=0)
    _settled(settings)
    assert messagelog.flush_to_ledger() == 2
    assert _missing_entries() == [{"run": run, "first": 2, "last": 2}]
    assert messagelog.gaps() == ([(run, 2, 2)], [])
    assert "missing" in messagelog.status()["alert_reasons"]


def test_a_long_call_committed_before_its_predecessor_raises_no_false_alarm(intranet):
    """Review: a call of 100 s (started 100 s ago, numbered when it ended) committed
    before the record below it was judged old enough by its start, and a false, lasting
    alarm went to the ledger. A record's age is now taken from its end."""
    import uuid

    from django.utils import timezone

    template, run, now = Message.objects.get(pk=_one_logged(intranet)), uuid.uuid4().hex, \
        timezone.now()
    _as_the_gateway(template, run, [1, 3])
    long_call = Message.objects.get(run=run, seq=3)
    long_call.started_at, long_call.duration_ms = now - dt.timedelta(seconds=100), 100_000.0
    long_call.mac = messagelog.seal(long_call)  # as the gateway sealed it
    long_call.save()
    assert messagelog.flush_to_ledger() == 1  # record 3 waits
    _as_the_gateway(template, run, [2])
    assert messagelog.flush_to_ledger() == 2
    assert _missing_entries() == [] and messagelog.gaps() == ([], [])


def test_a_record_reported_missing_that_arrives_after_all_no_longer_counts(
        intranet, settings):
    """After a database outage longer than the alert delay, strict mode's retries commit
    in any order, and a record may be reported missing a moment before it arrives: it is
    logged all the same, the report stays on the ledger with it, and the status no longer
    counts it."""
    run = _three_exchanges_numbered(intranet)
    late = Message.objects.get(seq=2)
    late.delete()
    _settled(settings)
    assert messagelog.flush_to_ledger() == 2
    assert messagelog.status()["missing"] == 1
    late.pk = None
    late.save()
    assert messagelog.flush_to_ledger() == 1
    assert _missing_entries() == [{"run": run, "first": 2, "last": 2}]
    assert messagelog.gaps() == ([], [])
    status = messagelog.status()
    assert status["missing"] == 0 and "missing" not in status["alert_reasons"]


def test_a_record_set_aside_in_the_database_then_deleted_is_reported(intranet, settings):
    """Review: the writer deleted record 1 and marked record 2 as set aside (its MAC
    intact, the column is not under it); record 3 went to the ledger at once, and once
    record 2 was deleted too, nothing but the verify command said so. A record set aside
    accounts for no number."""
    run = _three_exchanges_numbered(intranet)
    Message.objects.filter(seq=1).delete()
    Message.objects.filter(seq=2).update(ledger_failed_at=dt.datetime.now(dt.UTC),
                                         ledger_error="refused by the ledger")
    _settled(settings)
    messagelog.flush_to_ledger()
    Message.objects.filter(seq=2).delete()
    messagelog.flush_to_ledger()
    assert [d["seq"] for d in _exchange_entries()] == [3]
    assert _missing_entries() == [{"run": run, "first": 1, "last": 2}]
    assert messagelog.gaps() == ([(run, 1, 2)], [])
    assert "missing" in messagelog.status()["alert_reasons"]


def test_long_calls_at_the_head_of_the_backlog_do_not_stall_the_log(intranet):
    """Review: the backlog is read by start time and records are numbered at their end:
    2000 slow calls that started first filled the batch, all waiting for a short call
    numbered below them outside it, and nothing reached the ledger any more, other
    gateway processes' records included. The records they wait for are brought in."""
    import uuid

    from django.utils import timezone

    template, run, now = Message.objects.get(pk=_one_logged(intranet)), uuid.uuid4().hex, \
        timezone.now()

    def calls(run: str, numbered) -> None:
        _as_the_gateway(template, run, [seq for seq, _, _ in numbered])
        for seq, started, duration in numbered:  # as the gateway sealed them
            record = Message.objects.get(run=run, seq=seq)
            record.started_at, record.duration_ms = started, duration
            record.mac = messagelog.seal(record)
            record.save()

    slow = [(seq, now - dt.timedelta(seconds=40), 30_000.0) for seq in range(2, 2002)]
    calls(run, [(1, now - dt.timedelta(seconds=20), 5.0), *slow])
    other = uuid.uuid4().hex  # another gateway process, a later call
    calls(other, [(1, now - dt.timedelta(seconds=1), 5.0)])
    for _ in range(3):  # three ticks of the worker
        messagelog.flush_to_ledger()
    assert Message.objects.filter(ledger_index__isnull=True).count() == 0
    assert _missing_entries() == [] and messagelog.gaps() == ([], [])


def _one_logged(intranet) -> int:
    assert intranet.call("persons/1").status_code == 200
    messagelog.flush_to_ledger()
    return Message.objects.get().pk
