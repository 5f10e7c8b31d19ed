"""Entries and pending entries carry the platform's MAC (``services.entry_mac``).

The columns are nullable, so that both engines add them without rewriting the tables
(entries logged before this migration have none; ``settings.LEDGER_MACS_FROM``). The
pending rows' guard now counts the MAC among what is set once, at the insert, and takes
an index only where the tree's leaf at that index is the row's leaf hash: the
application's connection could set any index on a bid's pending row (-1) before the
sequencer came, which then passed it over, and the bid was never logged. The
statements are written out here, not imported, so that this migration keeps doing what
it did when it was applied."""

from django.db import migrations, models

_SQLITE_INDEX_ONCE = """CREATE TRIGGER "ledger_pendingentry_index_once" BEFORE UPDATE ON "ledger_pendingentry"
       WHEN OLD."index" IS NOT NULL OR OLD.refused <> ''
         OR (NEW."index" IS NULL) = (NEW.refused = '') OR NEW.id <> OLD.id
         OR NEW.body <> OLD.body OR NEW.leaf_hash <> OLD.leaf_hash OR NEW.type <> OLD.type
         OR NEW.subject <> OLD.subject OR NEW.actor <> OLD.actor OR NEW.at <> OLD.at{mac}{leaf}
       BEGIN SELECT RAISE(ABORT, 'ledger_pendingentry: only the index or the refusal is set, once'); END"""
_POSTGRES_INDEX_ONCE = """CREATE OR REPLACE FUNCTION ledger_pending_index_once() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'INSERT' THEN
           IF NEW.index IS NOT NULL OR NEW.refused <> '' THEN
             RAISE EXCEPTION 'ledger_pendingentry: a row is inserted pending'
               USING ERRCODE = 'integrity_constraint_violation';
           END IF;
           RETURN NEW;
         END IF;
         IF TG_OP = 'DELETE' OR OLD.index IS NOT NULL OR OLD.refused <> ''
            OR (NEW.index IS NULL) = (NEW.refused = '')
            OR (NEW.id, NEW.body, NEW.leaf_hash, NEW.type, NEW.subject, NEW.actor, NEW.at{new_mac})
               IS DISTINCT FROM
               (OLD.id, OLD.body, OLD.leaf_hash, OLD.type, OLD.subject, OLD.actor, OLD.at{old_mac}){leaf}
         THEN
           RAISE EXCEPTION 'ledger_pendingentry: only the index or the refusal is set, once (% refused)', TG_OP
             USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         RETURN NEW;
       END $$"""
# the leaf of index i is the node of key i (level 0)
_SQLITE_LEAF = """
         OR (NEW."index" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "ledger_node"
             WHERE "key" = NEW."index" AND hash = NEW.leaf_hash))"""
_POSTGRES_LEAF = """
            OR (NEW.index IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ledger_node
                WHERE key = NEW.index AND hash = NEW.leaf_hash))"""
FORWARD = {
    "sqlite": ['DROP TRIGGER IF EXISTS "ledger_pendingentry_index_once"',
               _SQLITE_INDEX_ONCE.format(mac=" OR NEW.mac IS NOT OLD.mac", leaf=_SQLITE_LEAF)],
    "postgresql": [_POSTGRES_INDEX_ONCE.format(new_mac=", NEW.mac", old_mac=", OLD.mac",
                                               leaf=_POSTGRES_LEAF)],
}
BACKWARD = {
    "sqlite": ['DROP TRIGGER IF EXISTS "ledger_pendingentry_index_once"',
               _SQLITE_INDEX_ONCE.format(mac="", leaf="")],
    "postgresql": [_POSTGRES_INDEX_ONCE.format(new_mac="", old_mac="", leaf="")],
}


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)
    return run


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0005_pending_entries'),
    ]

    operations = [
        migrations.AddField(
            model_name='entry',
            name='mac',
            field=models.BinaryField(max_length=32, null=True),
        ),
        migrations.AddField(
            model_name='pendingentry',
            name='mac',
            field=models.BinaryField(max_length=32, null=True),
        ),
        migrations.RunPython(_run(FORWARD), _run(BACKWARD)),
    ]
