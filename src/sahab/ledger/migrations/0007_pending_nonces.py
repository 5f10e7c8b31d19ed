"""Pending rows carry a nonce, unique in the table, under their MAC.

A database writer copied a real pending row (same bytes, same MAC) and the sequencer
logged the entry a second time. Now the MAC covers the row's nonce: a copy with the
same nonce is refused by the unique index, one with another nonce does not carry the
MAC. The index is partial (rows of an earlier release have none), so that neither
engine rewrites the table (SQLite would drop the guard's triggers with it). The guard
now counts the nonce among what is set once, at the insert. The statements are written
out here, not imported, so that this migration keeps doing what it did when it was
applied."""

from django.db import migrations, models

_SQLITE_INDEX_ONCE = """CREATE TRIGGER "ledger_pendingentry_index_once" BEFORE UPDATE ON "ledger_pendingentry"
       WHEN OLD."index" IS NOT NULL OR OLD.refused <> ''
         OR (NEW."index" IS NULL) = (NEW.refused = '') OR NEW.id <> OLD.id
         OR NEW.body <> OLD.body OR NEW.leaf_hash <> OLD.leaf_hash OR NEW.type <> OLD.type
         OR NEW.subject <> OLD.subject OR NEW.actor <> OLD.actor OR NEW.at <> OLD.at
         OR NEW.mac IS NOT OLD.mac{nonce}
         OR (NEW."index" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "ledger_node"
             WHERE "key" = NEW."index" AND hash = NEW.leaf_hash))
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
            OR (NEW.id, NEW.body, NEW.leaf_hash, NEW.type, NEW.subject, NEW.actor, NEW.at,
                NEW.mac{new_nonce})
               IS DISTINCT FROM
               (OLD.id, OLD.body, OLD.leaf_hash, OLD.type, OLD.subject, OLD.actor, OLD.at,
                OLD.mac{old_nonce})
            OR (NEW.index IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ledger_node
                WHERE key = NEW.index AND hash = NEW.leaf_hash))
         THEN
           RAISE EXCEPTION 'ledger_pendingentry: only the index or the refusal is set, once (% refused)', TG_OP
             USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         RETURN NEW;
       END $$"""
FORWARD = {
    "sqlite": ['DROP TRIGGER IF EXISTS "ledger_pendingentry_index_once"',
               _SQLITE_INDEX_ONCE.format(nonce=" OR NEW.nonce IS NOT OLD.nonce")],
    "postgresql": [_POSTGRES_INDEX_ONCE.format(new_nonce=", NEW.nonce",
                                               old_nonce=", OLD.nonce")],
}
BACKWARD = {
    "sqlite": ['DROP TRIGGER IF EXISTS "ledger_pendingentry_index_once"',
               _SQLITE_INDEX_ONCE.format(nonce="")],
    "postgresql": [_POSTGRES_INDEX_ONCE.format(new_nonce="", old_nonce="")],
}


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)
    return run


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0006_entry_macs'),
    ]

    operations = [
        migrations.AddField(
            model_name='pendingentry',
            name='nonce',
            field=models.BinaryField(max_length=16, null=True),
        ),
        migrations.AddConstraint(
            model_name='pendingentry',
            constraint=models.UniqueConstraint(condition=models.Q(('nonce__isnull', False)),
                                               fields=('nonce',),
                                               name='ledger_pending_nonce_once'),
        ),
        migrations.RunPython(_run(FORWARD), _run(BACKWARD)),
    ]
