"""A pending row takes an index only within the log: from 0 to below its size.

The guard of 0006 checked that a node with the row's leaf hash stood at the index. The
nodes' table takes INSERTs (appends write it), so a database writer planted a node at
key -1 with an honest row's leaf hash and gave the row index -1: the sequencer passed it
over, the entry was never logged and the status stayed ok. The log's own nodes below its
size cannot be planted (the key is taken) nor changed (the append-only guard), so an
index below the size whose node is the row's leaf is the entry's own. The sequencer now
writes the log's size before the pending rows' indexes. A partial index keeps the few
refused rows, which the status lists and counts against the log's refusals. The statements are written out
here, not imported, so that this migration keeps doing what it did when it was
applied."""

from django.db import migrations, models

_SQLITE_INDEX_ONCE = """CREATE TRIGGER "ledger_pendingentry_index_once" BEFORE UPDATE ON "ledger_pendingentry"
       WHEN OLD."index" IS NOT NULL OR OLD.refused <> ''
         OR (NEW."index" IS NULL) = (NEW.refused = '') OR NEW.id <> OLD.id
         OR NEW.body <> OLD.body OR NEW.leaf_hash <> OLD.leaf_hash OR NEW.type <> OLD.type
         OR NEW.subject <> OLD.subject OR NEW.actor <> OLD.actor OR NEW.at <> OLD.at
         OR NEW.mac IS NOT OLD.mac OR NEW.nonce IS NOT OLD.nonce
         OR (NEW."index" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "ledger_node"
             WHERE "key" = NEW."index" AND hash = NEW.leaf_hash)){within}
       BEGIN SELECT RAISE(ABORT, 'ledger_pendingentry: only the index or the refusal is set, once'); END"""
_SQLITE_WITHIN = """
         OR (NEW."index" IS NOT NULL AND (NEW."index" < 0 OR NEW."index" >=
             (SELECT "size" FROM "ledger_logstate" WHERE "id" = 1)))"""
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
                NEW.mac, NEW.nonce)
               IS DISTINCT FROM
               (OLD.id, OLD.body, OLD.leaf_hash, OLD.type, OLD.subject, OLD.actor, OLD.at,
                OLD.mac, OLD.nonce)
            OR (NEW.index IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ledger_node
                WHERE key = NEW.index AND hash = NEW.leaf_hash)){within}
         THEN
           RAISE EXCEPTION 'ledger_pendingentry: only the index or the refusal is set, once (% refused)', TG_OP
             USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         RETURN NEW;
       END $$"""
_POSTGRES_WITHIN = """
            OR (NEW.index IS NOT NULL AND (NEW.index < 0 OR NEW.index >=
                (SELECT size FROM ledger_logstate WHERE id = 1)))"""
FORWARD = {
    "sqlite": ['DROP TRIGGER IF EXISTS "ledger_pendingentry_index_once"',
               _SQLITE_INDEX_ONCE.format(within=_SQLITE_WITHIN)],
    "postgresql": [_POSTGRES_INDEX_ONCE.format(within=_POSTGRES_WITHIN)],
}
BACKWARD = {
    "sqlite": ['DROP TRIGGER IF EXISTS "ledger_pendingentry_index_once"',
               _SQLITE_INDEX_ONCE.format(within="")],
    "postgresql": [_POSTGRES_INDEX_ONCE.format(within="")],
}


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)
    return run


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0007_pending_nonces'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='pendingentry',
            index=models.Index(condition=models.Q(('refused', ''), _negated=True),
                               fields=['id'], name='ledger_pending_refused'),
        ),
        migrations.RunPython(_run(FORWARD), _run(BACKWARD)),
    ]
