"""``sahab upgrade``: pre-flight checks, then migrations, static files and keys.

The pre-flight refuses when:

* a key the platform needs is missing or unreadable, or the ledger key is not the one
  that signed the log's latest checkpoint (an upgrade must never re-key the log);
* a pending migration would hold a long lock on a big table: on PostgreSQL an index
  built without CONCURRENTLY, a column type change or a new constraint blocks writes for
  as long as the table takes to scan or rewrite; on SQLite most changes rebuild the table.
  ``--allow-long-locks`` accepts it for a planned maintenance window.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.migrations import operations as ops
from django.db.migrations.executor import MigrationExecutor

# Operations that scan or rewrite the whole table under a lock that blocks writes.
LOCKING = (ops.AlterField, ops.AddIndex, ops.AddConstraint, ops.AlterUniqueTogether,
           ops.AlterIndexTogether, ops.RenameIndex)
SQLITE_REBUILDS = (ops.AddField, ops.RemoveField, ops.RenameField)


@dataclass(frozen=True)
class Finding:
    migration: str
    operation: str
    table: str
    rows: int

    def __str__(self) -> str:
        return (f"{self.migration}: {self.operation} locks {self.table} "
                f"({self.rows} rows) for as long as it takes")


def pending_plan() -> list[tuple]:
    executor = MigrationExecutor(connection)
    targets = executor.loader.graph.leaf_nodes()
    return [(migration, backwards) for migration, backwards in executor.migration_plan(targets)
            if not backwards]


def rows_of(table: str) -> int:
    """A table's row count (PostgreSQL's estimate, cheap on any size), 0 if absent."""
    if table not in connection.introspection.table_names():
        return 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT GREATEST(reltuples, 0)::bigint FROM pg_class "
                           "WHERE oid = to_regclass(%s)", [table])
            estimate = cursor.fetchone()
            if estimate and estimate[0]:
                return int(estimate[0])
        cursor.execute(f'SELECT COUNT(*) FROM "{table}"')  # noqa: S608 (a table name we read)
        return int(cursor.fetchone()[0])


def long_locks(plan: list[tuple], big_table_rows: int) -> list[Finding]:
    """Pending operations that would lock a table of more than ``big_table_rows`` rows."""
    from django.apps import apps as current_apps

    findings = []
    locking = LOCKING + (SQLITE_REBUILDS if connection.vendor == "sqlite" else ())
    for migration, _ in plan:
        for operation in migration.operations:
            if not isinstance(operation, locking):
                continue
            if isinstance(operation, ops.AddField) and connection.vendor != "sqlite":
                continue
            model_name = getattr(operation, "model_name", None) or getattr(operation, "name", "")
            try:
                model = current_apps.get_model(migration.app_label, model_name)
            except LookupError:
                continue
            table = model._meta.db_table
            rows = rows_of(table)
            if rows > big_table_rows:
                findings.append(Finding(f"{migration.app_label}.{migration.name}",
                                        operation.describe(), table, rows))
    return findings


def key_problems() -> list[str]:
    from sahab.core import keys

    problems = []
    needed = {"ledger signing key": keys.ledger_key_path(),
              "bid-opening key": keys.opening_key_path(),
              "credentials-sealing key": keys.secrets_key_path()}
    for what, path in needed.items():
        if not path.exists():
            problems.append(f"the {what} {path} is missing (restore it from the backup)")
    if problems:
        return problems
    try:
        keys.load_ledger_key()
        keys.load_opening_key()
        keys.load_secrets_key()
    except (ValueError, OSError, AssertionError) as exc:
        return [f"a key cannot be read: {exc}"]
    if "ledger_checkpoint" in connection.introspection.table_names():
        problems += _ledger_key_signed_the_log()
    return problems


def _ledger_key_signed_the_log() -> list[str]:
    from sahab.ledger import note, services
    from sahab.ledger.models import Checkpoint

    latest = Checkpoint.objects.order_by("-size").first()
    if latest is None:
        return []
    signed = f"{latest.text}\n{latest.signature}"
    try:
        note.open_checkpoint(signed.encode(), note.parse_vkey(services.verifier_key()))
    except note.NoteError:
        return ["the ledger key in SAHAB_HOME/keys did not sign the log's latest checkpoint: "
                "this is not this platform's key"]
    return []


def preflight(*, big_table_rows: int, allow_long_locks: bool) -> tuple[list[str], list[str]]:
    """(refusals, notes) before anything changes."""
    refusals = key_problems()
    plan = pending_plan()
    notes = [f"{len(plan)} migration(s) to apply"
             + (": " + ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan) if plan else "")]
    findings = long_locks(plan, big_table_rows)
    if findings and not allow_long_locks:
        refusals += [str(f) for f in findings]
        refusals.append(f"tables over {big_table_rows} rows would be locked: run it in a "
                        "maintenance window with --allow-long-locks")
    else:
        notes += [f"accepted: {f}" for f in findings]
    return refusals, notes


def run() -> list[str]:
    from sahab.core.setup import initialise

    lines = list(initialise(verbose=True))
    return [*lines, f"sahab is upgraded in {settings.SAHAB_HOME}"]
