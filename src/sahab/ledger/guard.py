"""The database itself refuses to rewrite the ledger.

Migration ``0003_append_only`` puts triggers on the ledger's tables, on SQLite and
PostgreSQL alike, so that an UPDATE or DELETE from the application's connection fails
whatever code sends it (a bug, an injected query, a hurried operator in ``dbshell``):

* entries, nodes, checkpoints and cosignatures: no UPDATE, no DELETE (nor TRUNCATE on
  PostgreSQL);
* the log state row: its size never decreases and the row is never deleted;
* pending entries: inserted without an index, then given their index or the
  sequencer's refusal once; never otherwise updated nor deleted (migration
  ``0005_pending_entries``).

Only the database's owner can lift them (drop the SQLite triggers, ``ALTER TABLE …
DISABLE TRIGGER`` on PostgreSQL, or revoke the application role's privileges in
production, see docs/ledger.md). ``suspended`` is that owner's act, used by exactly one
command: ``flush``, which empties the whole database (the test framework's reset between
transactional tests). The signer, the witnesses and the auditors catch whatever an owner
does meanwhile; the guard only makes sure the application never does it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.db import transaction

# table -> its guard triggers, as the migration names them
APPEND_ONLY = ("ledger_entry", "ledger_node", "ledger_checkpoint", "ledger_cosignature")
GROWS_ONLY = ("ledger_logstate",)

SQLITE_TRIGGERS = {
    **{f"{t}_no_update": t for t in APPEND_ONLY},
    **{f"{t}_no_delete": t for t in APPEND_ONLY},
    "ledger_logstate_no_shrink": "ledger_logstate",
    "ledger_logstate_no_delete": "ledger_logstate",
    "ledger_pendingentry_index_once": "ledger_pendingentry",
    "ledger_pendingentry_no_delete": "ledger_pendingentry",
    "ledger_pendingentry_inserted_pending": "ledger_pendingentry",
}
POSTGRES_TRIGGERS = {
    **{f"{t}_append_only": t for t in APPEND_ONLY},
    **{f"{t}_no_truncate": t for t in (*APPEND_ONLY, *GROWS_ONLY)},
    "ledger_logstate_grows_only": "ledger_logstate",
    "ledger_pendingentry_index_once": "ledger_pendingentry",
    "ledger_pendingentry_no_truncate": "ledger_pendingentry",
}


def triggers(connection) -> dict[str, str]:
    """The guard's triggers on this database engine: name -> table."""
    if connection.vendor == "postgresql":
        return POSTGRES_TRIGGERS
    if connection.vendor == "sqlite":
        return SQLITE_TRIGGERS
    return {}


def missing(connection) -> list[str]:
    """The guard triggers that are absent or disabled (empty when the guard is whole)."""
    wanted = triggers(connection)
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            present = {row[0] for row in cursor.fetchall()}
        elif connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
                           "AND tgenabled <> 'D'")
            present = {row[0] for row in cursor.fetchall()}
        else:
            return []
    return sorted(set(wanted) - present)


@contextlib.contextmanager
def suspended(connection) -> Iterator[None]:
    """Lift the guard for the duration of one transaction, as the database owner would.

    The triggers come back when the block ends, whether it succeeds or fails: on both
    engines the change is part of the transaction.
    """
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            names = list(SQLITE_TRIGGERS)
            marks = ", ".join("%s" for _ in names)
            cursor.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "  # noqa: S608
                           f"AND name IN ({marks})", names)
            saved = cursor.fetchall()
            for name, _ in saved:
                cursor.execute(f'DROP TRIGGER "{name}"')
            yield
            for _, sql in saved:
                cursor.execute(sql)
        elif connection.vendor == "postgresql":
            # ALTER TABLE waits for no deferred foreign-key check: run the pending ones now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for name, table in POSTGRES_TRIGGERS.items():
                cursor.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER "{name}"')
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
            yield
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for name, table in POSTGRES_TRIGGERS.items():
                cursor.execute(f'ALTER TABLE "{table}" ENABLE TRIGGER "{name}"')
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        else:
            yield
