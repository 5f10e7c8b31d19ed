"""The worker logs each gateway process's records in the order of their numbers: what it
takes in to do so stays bounded and never deadlocks a second worker, and the gateway
keeps every record it numbered, even when it stops during a failing write."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import OperationalError, connection, connections
from django.utils import timezone

from sahab.exchange import messagelog
from sahab.exchange.models import Message
from tests.exchange.test_log_integrity import (
    _as_the_gateway,
    _insert_copy,
    _missing_entries,
    _one_logged,
)


def _calls(template: Message, run: str, numbered) -> None:
    """Records of process ``run`` as the gateway sealed them: (seq, started, ms) each."""
    _as_the_gateway(template, run, [seq for seq, _, _ in numbered])
    for seq, started, duration in numbered:
        record = Message.objects.get(run=run, seq=seq)
        record.started_at, record.duration_ms = started, duration
        record.mac = messagelog.seal(record)
        record.save()


def test_the_batch_takes_in_only_the_records_it_waits_for(intranet):
    """Review: each process with records waiting took in up to a whole batch of its own
    lowest records, needed or not (2000 times the processes, in one transaction)."""
    template, now = Message.objects.get(pk=_one_logged(intranet)), timezone.now()
    for _ in range(3):  # three gateway processes after an outage
        _calls(template, uuid.uuid4().hex,
               [(2, now - dt.timedelta(seconds=50), 40_000.0)]
               + [(seq, now - dt.timedelta(seconds=5), 5.0) for seq in (1, *range(3, 30))])
    appended, _ = messagelog._flush_batch(3)  # the batch: the three slow calls
    assert appended == 6  # and the record 1 each of them waits for


def test_rows_without_a_number_or_numbered_0_are_set_aside_before_they_are_taken_in(
        intranet):
    template, now = Message.objects.get(pk=_one_logged(intranet)), timezone.now()
    run = uuid.uuid4().hex
    _calls(template, run, [(2, now - dt.timedelta(seconds=50), 40_000.0),
                           (1, now - dt.timedelta(seconds=5), 5.0)])
    for n, seq in enumerate((None, 0)):
        _insert_copy(template, run=run, seq=seq, x_road_id=f"w{n}", mac=f"{n}" * 64,
                     ledger_index=None, started_at=now - dt.timedelta(seconds=1))
    for _ in range(3):
        messagelog.flush_to_ledger(limit=1)
    assert Message.objects.filter(run=run, ledger_index__isnull=False).count() == 2
    assert Message.objects.filter(run=run, ledger_failed_at__isnull=False).count() == 2
    assert _missing_entries() == []


def test_two_workers_do_not_deadlock_over_a_record_taken_in(intranet, monkeypatch):
    """Review: worker A held record 2 and went to take in record 1, which committed late;
    worker B, reading the backlog by start time, held record 1 and waited for record 2:
    PostgreSQL aborted one of them. A record another worker holds is left to it."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite runs one writer at a time)")
    template, now = Message.objects.get(pk=_one_logged(intranet)), timezone.now()
    run = uuid.uuid4().hex
    _calls(template, run, [(2, now - dt.timedelta(seconds=30), 100.0)])
    locked, go = threading.Event(), threading.Event()
    in_order = messagelog._in_order

    def paused(batch, now):
        if threading.current_thread().name == "A" and not go.is_set():
            locked.set()
            go.wait(10)
        return in_order(batch, now)

    monkeypatch.setattr(messagelog, "_in_order", paused)
    errors = []

    def worker():
        try:
            messagelog._flush_batch(2000)
        except Exception as exc:  # the test reports any
            errors.append(exc)
        finally:
            connections.close_all()

    a = threading.Thread(target=worker, name="A")
    a.start()
    assert locked.wait(10)
    _calls(template, run, [(1, now - dt.timedelta(seconds=40), 100.0)])  # commits late
    b = threading.Thread(target=worker, name="B")
    b.start()
    time.sleep(0.5)  # B holds record 1 and waits for record 2
    go.set()
    a.join(30)
    b.join(30)
    assert errors == []
    assert Message.objects.filter(run=run, ledger_index__isnull=True).count() <= 1
    messagelog.flush_to_ledger()
    assert Message.objects.filter(run=run, ledger_index__isnull=True).count() == 0


def test_stopping_during_a_failing_write_keeps_its_records(settings, monkeypatch):
    """Review: stopping the gateway cancelled its timer while a batch was being written;
    the write failed (the database failing over), the batch was already out of the
    buffer, and its records were lost (a hole before the next ones). The write in flight
    is awaited, and a failed one kept for the writes at shutdown."""
    settings.EXCHANGE_LOG_STRICT, settings.EXCHANGE_LOG_BATCH_SECONDS = False, 0.01
    written, calls = [], []
    in_flight, release = threading.Event(), threading.Event()

    def write(batch):
        calls.append(len(batch))
        if len(calls) == 1:  # the database fails over just as the gateway stops
            in_flight.set()
            release.wait(5)
            raise OperationalError("server closed the connection unexpectedly")
        written.extend(m["seq"] for m in batch)

    monkeypatch.setattr(messagelog, "_write_and_close", write)
    executor = ThreadPoolExecutor(2)

    async def main():
        log = messagelog.MessageLog(executor)
        for _ in range(3):
            await log.record(messagelog.capture(client="c"))
        await asyncio.get_running_loop().run_in_executor(None, in_flight.wait, 5)
        await log.record(messagelog.capture(client="c"))
        closing = asyncio.create_task(log.close())
        await asyncio.sleep(0.05)
        release.set()
        await closing

    # on a thread of its own: a test before may have left an event loop running here
    with ThreadPoolExecutor(1) as runner:
        runner.submit(asyncio.run, main()).result(timeout=30)
    executor.shutdown(wait=True)
    assert sorted(written) == [1, 2, 3, 4]
