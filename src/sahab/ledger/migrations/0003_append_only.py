"""The database refuses UPDATE and DELETE on the ledger's tables (see sahab/ledger/guard.py).

The statements are written out here, not imported, so that this migration keeps doing
what it did when it was applied whatever the code becomes.
"""

from django.db import migrations

APPEND_ONLY = ("ledger_entry", "ledger_node", "ledger_checkpoint", "ledger_cosignature")

SQLITE = [
    *(f"""CREATE TRIGGER "{t}_no_update" BEFORE UPDATE ON "{t}"
          BEGIN SELECT RAISE(ABORT, '{t} is append-only: its rows are never updated'); END"""
      for t in APPEND_ONLY),
    *(f"""CREATE TRIGGER "{t}_no_delete" BEFORE DELETE ON "{t}"
          BEGIN SELECT RAISE(ABORT, '{t} is append-only: its rows are never deleted'); END"""
      for t in APPEND_ONLY),
    """CREATE TRIGGER "ledger_logstate_no_shrink" BEFORE UPDATE ON "ledger_logstate"
       WHEN NEW.size < OLD.size OR NEW.id <> OLD.id
       BEGIN SELECT RAISE(ABORT, 'ledger_logstate: the log never shrinks'); END""",
    """CREATE TRIGGER "ledger_logstate_no_delete" BEFORE DELETE ON "ledger_logstate"
       BEGIN SELECT RAISE(ABORT, 'ledger_logstate: the log never shrinks'); END""",
]
SQLITE_REVERSE = [
    *(f'DROP TRIGGER IF EXISTS "{t}_no_update"' for t in APPEND_ONLY),
    *(f'DROP TRIGGER IF EXISTS "{t}_no_delete"' for t in APPEND_ONLY),
    'DROP TRIGGER IF EXISTS "ledger_logstate_no_shrink"',
    'DROP TRIGGER IF EXISTS "ledger_logstate_no_delete"',
]

POSTGRES = [
    """CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
           USING ERRCODE = 'integrity_constraint_violation';
       END $$""",
    """CREATE FUNCTION ledger_log_grows_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'DELETE' OR NEW.size < OLD.size OR NEW.id <> OLD.id THEN
           RAISE EXCEPTION 'ledger_logstate: the log never shrinks (% refused)', TG_OP
             USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         RETURN NEW;
       END $$""",
    *(f"""CREATE TRIGGER "{t}_append_only" BEFORE UPDATE OR DELETE ON "{t}"
          FOR EACH ROW EXECUTE FUNCTION ledger_append_only()""" for t in APPEND_ONLY),
    *(f"""CREATE TRIGGER "{t}_no_truncate" BEFORE TRUNCATE ON "{t}"
          FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()"""
      for t in (*APPEND_ONLY, "ledger_logstate")),
    """CREATE TRIGGER "ledger_logstate_grows_only" BEFORE UPDATE OR DELETE ON "ledger_logstate"
       FOR EACH ROW EXECUTE FUNCTION ledger_log_grows_only()""",
]
POSTGRES_REVERSE = [
    *(f'DROP TRIGGER IF EXISTS "{t}_append_only" ON "{t}"' for t in APPEND_ONLY),
    *(f'DROP TRIGGER IF EXISTS "{t}_no_truncate" ON "{t}"'
      for t in (*APPEND_ONLY, "ledger_logstate")),
    'DROP TRIGGER IF EXISTS "ledger_logstate_grows_only" ON "ledger_logstate"',
    "DROP FUNCTION IF EXISTS ledger_append_only()",
    "DROP FUNCTION IF EXISTS ledger_log_grows_only()",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)
    return run


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_log_state_row")]
    operations = [
        migrations.RunPython(_run({"sqlite": SQLITE, "postgresql": POSTGRES}),
                             _run({"sqlite": SQLITE_REVERSE, "postgresql": POSTGRES_REVERSE})),
    ]
