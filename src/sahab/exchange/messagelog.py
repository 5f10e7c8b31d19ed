"""The message log: one record for every exchange, from the gateway to the ledger.

Three guarantees, each in one place here:

1. **Every record is valid at capture** (``capture``): whatever a request looked like,
   its record has a known client, a bounded method, status, sizes and hashes, so the
   ledger can always take it. Requests refused before the client was authenticated
   (malformed, anonymous, false credentials) exchanged nothing and name nobody: they are
   not recorded (the gateway's access log counts them), so that strangers can neither
   write into the public ledger nor fill the log.
2. **No record is lost** (``MessageLog``): in the default batch mode the gateway keeps
   records in memory for at most ``EXCHANGE_LOG_BATCH_SECONDS`` and writes them in one
   transaction (a crash loses at most that); in strict mode each record is committed
   before the client receives the last byte of its answer. A write that fails is kept and
   retried; a full buffer refuses new calls rather than drop records.
3. **One bad record never blocks the others** (``flush_to_ledger``): records reach the
   ledger in batches; if a batch fails, each record is tried alone and the ones the
   ledger refuses are set aside (``ledger_failed_at``) for inspection.
4. **Only the gateway writes records** (``seal``): each record carries the gateway's MAC
   (HMAC-SHA256 under ``SAHAB_HOME/keys/exchange-log.key``, which the database does not
   hold) over its fields and its random request id; the MAC column is unique. The
   worker sends no record to the ledger without it (a fake, copied or edited record is
   set aside and raises the alert), and ``disagreements`` compares logged records with
   their ledger entries (the status checks the latest, ``sahab exchange verify-log``
   all of them).
5. **No record disappears unseen** (``MessageLog.record``, ``_in_order``, ``gaps``):
   each gateway process numbers its records from 1 under a random id of its own, both
   under the MAC and in the ledger entry. The worker logs a process's records in the
   order of their numbers; a record deleted in the database before it reached the ledger
   leaves a hole, which the worker reports by a public ``exchange.message.missing``
   entry when it logs the record above it, and ``verify-log`` finds every hole (and
   every number logged twice) in the ledger's entries. What stays out of reach: the
   last records of a process that stops before writing another, and a process all of
   whose records are deleted.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import itertools
import json
import logging
import math
import operator
import time
import uuid
from concurrent.futures import Executor

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from sahab.core.errors import DomainError
from sahab.exchange import protocol
from sahab.exchange.errors import ExchangeError
from sahab.exchange.events import ExchangeEvent
from sahab.exchange.models import Message
from sahab.ledger import services as ledger

log = logging.getLogger(__name__)
_HEX64 = set("0123456789abcdef")
_B64 = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _text(value, limit: int) -> str:
    """Printable text, control characters dropped, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    if text.isprintable():
        return text[:limit]
    return "".join(c for c in text if c.isprintable())[:limit]


def _hex64(value) -> str:
    return value if isinstance(value, str) and len(value) == 64 and set(value) <= _HEX64 else ""


# The largest integers the ledger's canonical JSON (RFC 8785) can carry exactly.
_JSON_SAFE = 2**53


def _count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) \
        and 0 <= value < _JSON_SAFE else 0


def capture(**fields) -> dict:
    """The columns of a message-log record, valid whatever the fields were."""
    x_road_id = fields.get("x_road_id")
    if not isinstance(x_road_id, str) or not protocol.valid_x_road_id(x_road_id):
        x_road_id = str(uuid.uuid4())
    method = fields.get("method")
    method = method if isinstance(method, str) and method in protocol.METHODS else "OTHER"
    status = fields.get("status")
    status = status if isinstance(status, int) and 100 <= status <= 599 else 500
    duration = fields.get("duration_ms")
    duration = float(duration) if isinstance(duration, int | float) and \
        math.isfinite(duration) and duration >= 0 else 0.0
    started = fields.get("started_at")
    started = started if isinstance(started, dt.datetime) and started.tzinfo else timezone.now()
    request_hash = fields.get("request_hash")
    request_hash = request_hash if isinstance(request_hash, str) and len(request_hash) <= 100 \
        and set(request_hash) <= _B64 else ""
    grant_id = fields.get("grant_id")
    return {
        "x_road_id": x_road_id, "client": _text(fields.get("client"), 300) or "-",
        "service": _text(fields.get("service"), 300),
        "grant_id": grant_id if isinstance(grant_id, int) and not isinstance(grant_id, bool)
        and 0 < grant_id < _JSON_SAFE else None,
        "method": method, "path_sha256": _hex64(fields.get("path_sha256")),
        "request_id": _text(fields.get("request_id"), 40), "request_hash": request_hash,
        "user_id": _text(fields.get("user_id"), 200), "issue": _text(fields.get("issue"), 200),
        "request_sha256": _hex64(fields.get("request_sha256")),
        "request_bytes": _count(fields.get("request_bytes")),
        "response_sha256": _hex64(fields.get("response_sha256")),
        "response_bytes": _count(fields.get("response_bytes")), "status": status,
        "error": _text(fields.get("error"), 100), "started_at": started,
        "duration_ms": duration, "ledger_error": "", "run": None, "seq": None}


# --- writing records ----------------------------------------------------------------------

COLUMNS = ("x_road_id", "client", "service", "grant_id", "method", "path_sha256",
           "request_id", "request_hash", "user_id", "issue", "request_sha256",
           "request_bytes", "response_sha256", "response_bytes", "status", "error",
           "started_at", "duration_ms", "ledger_error", "run", "seq", "mac")

# What the gateway's MAC covers: every field of the record but the grant (a grant
# deleted meanwhile leaves its records) and the ledger's bookkeeping. The request id is
# the gateway's random UUID: no two records have the same MAC.
SEALED = ("x_road_id", "request_id", "client", "service", "method", "path_sha256",
          "request_hash", "user_id", "issue", "request_sha256", "request_bytes",
          "response_sha256", "response_bytes", "status", "error", "started_at",
          "duration_ms")
MAC_CONTEXT = b"sahab-exchange-message/1\0"
# A numbered record (``MessageLog.record``): its process and number are sealed as well, so
# that no record can take the number of one that was deleted.
NUMBERED = (*SEALED, "run", "seq")
NUMBERED_CONTEXT = b"sahab-exchange-message/2\0"


def key_path():
    from sahab.core import keys

    return keys.keys_dir() / "exchange-log.key"


def ensure_key() -> bool:
    """The gateway's key for the message log's MACs (made once, before the gateway's
    processes start; the worker, which checks them, reads the same file)."""
    import os

    from sahab.core import keys

    path = key_path()
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    keys.write_private_once(path, os.urandom(32))
    return True


@functools.lru_cache(maxsize=4)
def _key(path: str) -> bytes:
    ensure_key()
    key = open(path, "rb").read()  # noqa: SIM115 (read whole, closed by the GC)
    if len(key) != 32:
        raise ValueError(f"{path} is not a 32-byte key")
    return key


def seal(record) -> str:
    """The gateway's MAC of a record (a captured dict or a ``Message``), in hexadecimal."""
    get = record.get if isinstance(record, dict) else functools.partial(getattr, record)
    numbered = get("seq") is not None
    values = []
    for name in NUMBERED if numbered else SEALED:
        value = get(name)
        if name == "started_at":
            value = value.astimezone(dt.UTC).isoformat()
        elif name == "duration_ms":
            value = float(value)
        values.append(value)
    context = NUMBERED_CONTEXT if numbered else MAC_CONTEXT
    message = context + json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()
    return hmac.new(_key(str(key_path())), message, hashlib.sha256).hexdigest()


def not_the_gateways(message: Message) -> str:
    """Why a stored record is not one the gateway wrote ("" when its MAC is right)."""
    try:
        expected = seal(message)
    except (TypeError, ValueError, AttributeError, OverflowError):
        return "it is not a record of the gateway's: its fields do not read as one"
    if not message.mac or not hmac.compare_digest(str(message.mac), expected):
        return "it does not carry the gateway's MAC: the gateway did not write it so"
    return ""


def write(batch: list[dict]) -> None:
    """Store records in one transaction (one prepared INSERT for all). A deleted grant or
    a row the database refuses does not cost the others: they are written one by one and
    a refused one is kept in a file for inspection. Raises only when the database itself
    is unavailable (the caller keeps the records and retries)."""
    from django.db import connection

    if not batch:
        return
    table = connection.ops.quote_name(Message._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in COLUMNS)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"  # noqa: S608
    adapt = connection.ops.adapt_datetimefield_value

    for row in batch:
        row["mac"] = seal(row)

    def values(row: dict) -> list:
        return [adapt(row[c]) if c == "started_at" else row[c] for c in COLUMNS]

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, [values(row) for row in batch])
        return
    except IntegrityError:
        pass
    for row in batch:
        for attempt in (row, {**row, "grant_id": None}):  # the grant was deleted meanwhile
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(sql, values(attempt))
                break
            except IntegrityError as exc:
                refused = exc
        else:
            _set_aside(row, refused)


def _set_aside(row: dict, exc: Exception) -> None:
    folder = settings.SAHAB_HOME / "exchange"
    folder.mkdir(parents=True, exist_ok=True)
    record = dict(row)
    record["refused"] = f"{type(exc).__name__}: {exc}"[:500]
    with open(folder / "message-log-refused.jsonl", "a", encoding="utf-8") as out:
        out.write(json.dumps(record, default=str) + "\n")
    log.error("a message-log record was refused by the database and set aside: %s", exc)


class MessageLog:
    """The gateway's side of the log (one per process, on its event loop). It numbers
    the records it keeps, from 1, under a random id of its own (``run``): the worker
    logs each process's records in number order and reports a number that no record
    fills (``_in_order``); ``gaps`` finds every such hole on the ledger."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.run = uuid.uuid4().hex
        self.numbers = itertools.count(1)
        self.pending: list[dict] = []
        self.oldest: float | None = None  # monotonic time of the oldest pending record
        self.failures = 0
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.flushing = False  # a write is in flight: stopping must wait for it
        self.stopping = False

    @property
    def strict(self) -> bool:
        return settings.EXCHANGE_LOG_STRICT or settings.EXCHANGE_LOG_BATCH_SECONDS <= 0

    def full(self) -> bool:
        return len(self.pending) >= settings.EXCHANGE_LOG_MAX_BUFFER

    def age(self) -> float:
        return time.monotonic() - self.oldest if self.oldest is not None else 0.0

    async def record(self, message: dict) -> None:
        """Keep a record; in strict mode, return once it is committed."""
        message["run"], message["seq"] = self.run, next(self.numbers)
        if self.strict:
            while True:
                try:
                    await asyncio.get_running_loop().run_in_executor(
                        self.executor, _write_and_close, [message])
                    return
                except DatabaseError:
                    log.exception("the message log could not be written; retrying")
                    await asyncio.sleep(0.2)
        if not self.pending:
            self.oldest = time.monotonic()
        self.pending.append(message)
        if self.task is None:
            self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self.stopping:
            await asyncio.sleep(settings.EXCHANGE_LOG_BATCH_SECONDS)
            self.flushing = True
            try:
                await self.flush()
            finally:
                self.flushing = False

    async def flush(self) -> None:
        if not self.pending:
            return
        batch, oldest = self.pending, self.oldest
        self.pending, self.oldest = [], None
        try:
            await asyncio.get_running_loop().run_in_executor(self.executor, _write_and_close,
                                                             batch)
            self.failures = 0
        except Exception:  # the database is away: keep the records, oldest first
            self.failures += 1
            log.exception("writing %d message-log records failed; kept for retry", len(batch))
            self.pending, self.oldest = batch + self.pending, oldest
            await asyncio.sleep(min(5.0, 0.2 * self.failures))

    async def close(self) -> None:
        if self.task is not None:
            # a write in flight is awaited, never cancelled: cancelled, its records would
            # be lost if it failed (and the next ones would leave a hole in the numbers)
            self.stopping = True
            if not self.flushing:
                self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        for _ in range(50):
            if not self.pending:
                return
            await self.flush()
        log.error("%d message-log records could not be written at shutdown", len(self.pending))


def _write_and_close(batch: list[dict]) -> None:
    from django.db import connection

    try:
        write(batch)
    except DatabaseError:
        connection.close_if_unusable_or_obsolete()
        raise


# --- to the ledger -------------------------------------------------------------------------

def ledger_record(message: Message) -> ledger.Record:
    numbers = {"run": message.run, "seq": message.seq} if message.seq is not None else {}
    return ledger.Record(
        type=ExchangeEvent.MESSAGE,
        subject=message.service or message.client,
        actor="system",
        data={
            "x_road_id": message.x_road_id,
            "request_id": message.request_id,
            "client": message.client,
            "service": message.service,
            "method": message.method,
            "path_sha256": message.path_sha256,
            "request_hash": message.request_hash,
            "request_sha256": message.request_sha256,
            "request_bytes": message.request_bytes,
            "response_sha256": message.response_sha256,
            "response_bytes": message.response_bytes,
            "status": message.status,
            "error": message.error,
            "started_at": message.started_at.isoformat(),
            "duration_ms": round(message.duration_ms, 3),
            **numbers,
        },
    )


_REFUSED = (DomainError, ValueError, TypeError, OverflowError)


def flush_to_ledger(limit: int = 2000, budget_seconds: float = 0.8) -> int:
    """Timer: append the records not yet in the ledger, one entry each, in batches, until
    the backlog is empty or the time budget is spent. Returns how many were appended."""
    done, deadline = 0, time.monotonic() + budget_seconds
    while True:
        appended, complete = _flush_batch(limit)
        done += appended
        if not complete or time.monotonic() > deadline:
            return done


def _backlog():
    return Message.objects.select_for_update().filter(ledger_index__isnull=True,
                                                      ledger_failed_at__isnull=True)


def _below_the_batch(batch: list[Message], runs: set[str], limit: int) -> list[Message]:
    """The waiting records of ``runs`` numbered below their highest in ``batch``, lowest
    first, at most ``limit``: those the batch's records wait for. Rows another worker
    holds are skipped (its batch logs them; taking them in order would deadlock)."""
    highest: dict[str, int] = {}
    for message in batch:
        if message.run in runs:
            highest[message.run] = max(highest.get(message.run, 0), message.seq)
    below = functools.reduce(operator.or_, (Q(run=run, seq__lt=seq)
                                            for run, seq in highest.items()))
    return list(Message.objects.select_for_update(skip_locked=True)
                .filter(below, ledger_index__isnull=True, ledger_failed_at__isnull=True)
                .exclude(pk__in=[m.pk for m in batch]).order_by("run", "seq")[:limit])


def _flush_batch(limit: int) -> tuple[int, bool]:
    with transaction.atomic():
        batch = list(_backlog().order_by("started_at", "pk")[:limit])
        if not batch:
            return 0, False
        full = len(batch) == limit
        batch = [m for m in batch if not _forged(m)]
        now = timezone.now()
        ready, missing, behind = _in_order(batch, now)
        if behind:  # records wait for lower numbers outside the batch: bring those in
            batch += [m for m in _below_the_batch(batch, behind, limit) if not _forged(m)]
            ready, missing, _ = _in_order(batch, now)
        batch = ready
        if not batch:  # every record waits for a hole to settle: no use reading them again
            return 0, False
        ledger.append_many(missing)  # the alarm is public whatever becomes of the batch
        try:
            with transaction.atomic():
                appended = ledger.append_many([ledger_record(m) for m in batch])
            for message, entry in zip(batch, appended, strict=True):
                message.ledger_index = entry.index
            Message.objects.bulk_update(batch, ["ledger_index"])
            return len(batch), full
        except _REFUSED:
            pass  # some record is refused: isolate it below
        count = 0
        for message in batch:
            try:
                with transaction.atomic():
                    message.ledger_index = ledger.append_many([ledger_record(message)])[0].index
                    message.save(update_fields=["ledger_index"])
                count += 1
            except _REFUSED as exc:
                message.ledger_index = None
                message.ledger_failed_at = timezone.now()
                message.ledger_error = f"{type(exc).__name__}: {exc}"[:1000]
                message.save(update_fields=["ledger_failed_at", "ledger_error"])
                log.error("message %s was refused by the ledger and set aside: %s",
                          message.pk, exc)
        return count, full


def _forged(message: Message) -> bool:
    """A record the gateway did not write (inserted, copied or edited in the database) is
    set aside, never logged: the alert names it for an operator."""
    why = not_the_gateways(message)
    if not why:
        return False
    message.ledger_failed_at = timezone.now()
    message.ledger_error = f"Refused: {why}."
    message.save(update_fields=["ledger_failed_at", "ledger_error"])
    log.error("message-log record %s was not written by the gateway and was set aside: %s",
              message.pk, why)
    return True


@transaction.atomic
def retry_refused(*, actor) -> int:
    """Put the records the ledger refused back in the backlog (after a fix)."""
    from sahab.core.errors import PermissionDenied
    from sahab.directory import selectors as directory

    if not directory.is_platform_admin(actor):
        raise PermissionDenied(ExchangeError.LOG_RETRY_FORBIDDEN)
    return Message.objects.filter(ledger_failed_at__isnull=False).update(
        ledger_failed_at=None, ledger_error="")


def disagreements(latest: int | None = None, chunk: int = 2000) -> list[tuple[int, str]]:
    """The records said to be on the ledger (``ledger_index``) that are not what the
    ledger holds: edited after they were logged, or marked as logged to keep them off
    it. (record id, why) for each; ``latest``: only the latest records logged."""
    logged = Message.objects.filter(ledger_index__isnull=False).order_by("-ledger_index")
    if latest is not None:
        logged = logged[:latest]
    found: list[tuple[int, str]] = []
    seen: dict[int, int] = {}
    rows = logged.iterator(chunk_size=chunk)  # the whole log need not fit in memory
    while part := list(itertools.islice(rows, chunk)):
        entries = {e.index: bytes(e.body) for e in ledger.logged_entries().filter(
            index__in=[m.ledger_index for m in part])}
        for message in part:
            why = not_the_gateways(message)
            body = entries.get(message.ledger_index)
            if not why and message.ledger_index in seen:
                why = f"record {seen[message.ledger_index]} has the same ledger index"
            if not why:
                why = _differs_from(message, body)
            seen.setdefault(message.ledger_index, message.pk)
            if why:
                found.append((message.pk, why))
    return sorted(found)


def _differs_from(message: Message, body: bytes | None) -> str:
    if body is None:
        return f"the ledger has no entry {message.ledger_index}"
    try:
        entry = json.loads(body)
    except ValueError:
        return f"ledger entry {message.ledger_index} is not JSON"
    expected = ledger_record(message)
    if entry.get("type") != expected.type or entry.get("subject") != expected.subject:
        return f"ledger entry {message.ledger_index} is not this exchange"
    if entry.get("data") != json.loads(json.dumps(expected.data)):
        return f"the record differs from ledger entry {message.ledger_index}"
    return ""


def _in_order(batch: list[Message], now: dt.datetime
              ) -> tuple[list[Message], list[ledger.Record], set[str]]:
    """The records of ``batch`` that may go to the ledger now, and an entry for each hole
    found below them. Each gateway process's records are logged in the order of their
    numbers: a record goes once every number below it is accounted for (on the ledger,
    verified against its entry, or going in this batch). A record waiting for the ledger
    below it holds it back, with the rest of its process; a number with no record of the
    gateway's on its way (deleted; replaced by a row the gateway did not write; marked as
    logged but not what the ledger holds; set aside, which a writer can mark a record as
    and delete it once the record above is logged) is a hole: once the record above it ended
    more than ``EXCHANGE_LOG_ALERT_SECONDS`` ago (in strict mode records are committed in
    parallel), it is logged with a public ``exchange.message.missing`` entry that no
    later deletion takes back. Everything below a process's highest logged number is thus
    on the ledger or reported missing.

    Also returns the processes whose records wait for a lower number waiting outside the
    batch (the backlog is read by start time, records are numbered at their end)."""
    settled = now - dt.timedelta(seconds=settings.EXCHANGE_LOG_ALERT_SECONDS)
    ready = [m for m in batch if m.seq is None]
    runs: dict[str, list[Message]] = {}
    for message in batch:
        if message.seq is not None:
            runs.setdefault(message.run, []).append(message)
    missing: list[ledger.Record] = []
    behind: set[str] = set()
    for run, messages in runs.items():
        going: set[int] = set()
        for message in sorted(messages, key=lambda m: m.seq):
            if message.seq - 1 not in going:
                below, waiting = _accounted_below(run, message.seq, going)
                if waiting and below == message.seq - 1:
                    behind.add(run)
                    break  # it goes after the record below it
                if below < message.seq - 1:
                    if _ended(message) > settled:
                        break  # the records below may still be on their way
                    missing.append(_missing(run, below + 1, message.seq - 1))
            ready.append(message)
            going.add(message.seq)
    return ready, missing, behind


def _ended(message: Message) -> dt.datetime:
    return message.started_at + dt.timedelta(milliseconds=message.duration_ms)


def _missing(run: str, first: int, last: int) -> ledger.Record:
    log.error("message-log records %d to %d of gateway process %s are not in the log: "
              "deleted in the database before they reached the ledger, or never written "
              "there (a row the database refused)", first, last, run)
    return ledger.Record(type=ExchangeEvent.MESSAGES_MISSING, subject=f"exchange:gateway:{run}",
                         actor="system", data={"run": run, "first": first, "last": last})


def _accounted_below(run: str, seq: int, going: set[int]) -> tuple[int, bool]:
    """The highest number below ``seq`` of process ``run`` that is accounted for (0 if
    none), and whether its record is still waiting for the ledger. A row the gateway did
    not write, marked as logged but not what the ledger holds, or set aside, accounts for
    nothing."""
    for message in Message.objects.filter(run=run, seq__lt=seq).order_by("-seq") \
            .iterator(chunk_size=100):
        if message.seq in going:
            return message.seq, False
        if not_the_gateways(message):
            continue
        if message.ledger_index is not None:
            if _on_the_ledger(message):
                return message.seq, False
        elif message.ledger_failed_at is None:
            return message.seq, True
    return 0, False


def _on_the_ledger(message: Message) -> bool:
    """Whether the ledger holds this record at its ``ledger_index``."""
    body = ledger.logged_entries().filter(index=message.ledger_index) \
        .values_list("body", flat=True).first()
    return not _differs_from(message, None if body is None else bytes(body))


def gaps(chunk: int = 2000) -> tuple[list[tuple[str, int, int]], list[tuple[str, int]]]:
    """Every hole in the numbering of the ledger's exchange entries, and every number
    logged twice: (process, first, last) of each run of numbers that no entry holds below
    a number that one does, and that no record of the gateway's waiting for the ledger
    accounts for (one set aside does not: it is not on the ledger); (process, number) of
    each number on the ledger twice (a logged record deleted and inserted again). Read
    from the ledger's entries, which no database writer can edit unseen, never from the
    table: what ``verify-log`` reports. Memory: 8 bytes a numbered exchange."""
    logged: dict[str, array.array] = {}
    entries = ledger.logged_entries().filter(type=ExchangeEvent.MESSAGE.value) \
        .values_list("body", flat=True)
    for body in entries.iterator(chunk_size=chunk):
        data = json.loads(bytes(body)).get("data", {})
        run, seq = data.get("run"), data.get("seq")
        if isinstance(run, str) and isinstance(seq, int) and not isinstance(seq, bool):
            logged.setdefault(run, array.array("q")).append(seq)
    holes: list[tuple[str, int, int]] = []
    twice: list[tuple[str, int]] = []
    for run, numbers in logged.items():
        before = 0
        for seq in sorted(numbers):
            if seq == before:
                twice.append((run, seq))
            elif seq > before + 1:
                holes += _unaccounted(run, before + 1, seq - 1)
            before = seq
    return sorted(holes), sorted(twice)


def _unaccounted(run: str, first: int, last: int) -> list[tuple[str, int, int]]:
    """The parts of ``first``..``last`` of process ``run`` that no record of the
    gateway's waiting for the ledger accounts for."""
    waiting = sorted(m.seq for m in Message.objects.filter(
        run=run, seq__gte=first, seq__lte=last, ledger_index__isnull=True,
        ledger_failed_at__isnull=True).iterator() if not not_the_gateways(m))
    parts, low = [], first
    for seq in waiting:
        if seq > low:
            parts.append((run, low, seq - 1))
        low = max(low, seq + 1)
    if low <= last:
        parts.append((run, low, last))
    return parts


def missing_reported(since: dt.datetime) -> int:
    """How many records the worker reported missing (``exchange.message.missing``) since
    ``since`` and are still not on the ledger: each number counted once, and a record
    that arrived after all (strict mode's records after a long database outage may) no
    longer counts."""
    ranges: dict[str, set[tuple[int, int]]] = {}
    for body in ledger.logged_entries().filter(type=ExchangeEvent.MESSAGES_MISSING.value,
                                               at__gte=since).values_list("body", flat=True):
        data = json.loads(bytes(body))["data"]
        ranges.setdefault(data["run"], set()).add((data["first"], data["last"]))
    total = 0
    for run, parts in ranges.items():
        merged: list[list[int]] = []
        for first, last in sorted(parts):
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        for first, last in merged:
            total += last - first + 1 - _arrived(run, first, last)
    return total


def _arrived(run: str, first: int, last: int) -> int:
    """How many numbers of ``first``..``last`` reached the ledger after all. Reads at
    most a thousand rows more than the range holds numbers: rows a writer inserted there
    cannot make the status slow; unread, they count as still missing."""
    rows = Message.objects.filter(run=run, seq__gte=first, seq__lte=last,
                                  ledger_index__isnull=False).order_by("seq")
    found: set[int] = set()
    for message in rows[:last - first + 1 + 1000].iterator():
        if message.seq not in found and not not_the_gateways(message) \
                and _on_the_ledger(message):
            found.add(message.seq)
    return len(found)


# How long the status keeps alerting on records reported missing (their ledger entries
# stay for ever).
MISSING_ALERT_DAYS = 7
# The records the status compares with the ledger each time (the latest logged);
# ``sahab exchange verify-log`` compares them all.
STATUS_VERIFIES = 1000


def status(now: dt.datetime | None = None) -> dict:
    """The log's health: records waiting for the ledger, the age of the oldest, records
    set aside, the latest logged records that disagree with the ledger, and whether an
    operator should act."""
    now = now or timezone.now()
    backlog = Message.objects.filter(ledger_index__isnull=True, ledger_failed_at__isnull=True)
    oldest = backlog.order_by("started_at").values_list("started_at", flat=True).first()
    age = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    refused = Message.objects.filter(ledger_failed_at__isnull=False).count()
    reasons = []
    if age > settings.EXCHANGE_LOG_ALERT_SECONDS:
        reasons.append("backlog")
    if refused:
        reasons.append("refused")
    disagreeing = len(disagreements(latest=STATUS_VERIFIES))
    if disagreeing:
        reasons.append("disagrees")
    missing = missing_reported(now - dt.timedelta(days=MISSING_ALERT_DAYS))
    if missing:
        reasons.append("missing")
    return {"backlog": backlog.count(), "oldest_pending_at": oldest,
            "backlog_age_seconds": round(age, 3), "refused": refused,
            "disagreeing": disagreeing, "missing": missing,
            "alert": bool(reasons), "alert_reasons": reasons,
            "alert_after_seconds": settings.EXCHANGE_LOG_ALERT_SECONDS}
