"""Pending entries: written in the change's transaction, given their index by the
sequencer. The database lets a pending row be inserted without an index, and then either
its index or the sequencer's refusal set once; it refuses any other INSERT or UPDATE,
every DELETE and TRUNCATE (see sahab/ledger/guard.py), so that the register of promises
handed out cannot be rewritten from the application's connection either. The statements are written out here, not imported, so that this
migration keeps doing what it did when it was applied."""

from django.db import migrations, models

SQLITE = [
    """CREATE TRIGGER "ledger_pendingentry_index_once" BEFORE UPDATE ON "ledger_pendingentry"
       WHEN OLD."index" IS NOT NULL OR OLD.refused <> ''
         OR (NEW."index" IS NULL) = (NEW.refused = '') OR NEW.id <> OLD.id
         OR NEW.body <> OLD.body OR NEW.leaf_hash <> OLD.leaf_hash OR NEW.type <> OLD.type
         OR NEW.subject <> OLD.subject OR NEW.actor <> OLD.actor OR NEW.at <> OLD.at
       BEGIN SELECT RAISE(ABORT, 'ledger_pendingentry: only the index or the refusal is set, once'); END""",
    """CREATE TRIGGER "ledger_pendingentry_no_delete" BEFORE DELETE ON "ledger_pendingentry"
       BEGIN SELECT RAISE(ABORT, 'ledger_pendingentry: its rows are never deleted'); END""",
    """CREATE TRIGGER "ledger_pendingentry_inserted_pending" BEFORE INSERT ON "ledger_pendingentry"
       WHEN NEW."index" IS NOT NULL OR NEW.refused <> ''
       BEGIN SELECT RAISE(ABORT, 'ledger_pendingentry: a row is inserted pending'); END""",
]
SQLITE_REVERSE = [
    'DROP TRIGGER IF EXISTS "ledger_pendingentry_index_once"',
    'DROP TRIGGER IF EXISTS "ledger_pendingentry_no_delete"',
    'DROP TRIGGER IF EXISTS "ledger_pendingentry_inserted_pending"',
]
POSTGRES = [
    """CREATE FUNCTION ledger_pending_index_once() RETURNS trigger LANGUAGE plpgsql AS $$
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
            OR (NEW.id, NEW.body, NEW.leaf_hash, NEW.type, NEW.subject, NEW.actor, NEW.at)
               IS DISTINCT FROM
               (OLD.id, OLD.body, OLD.leaf_hash, OLD.type, OLD.subject, OLD.actor, OLD.at)
         THEN
           RAISE EXCEPTION 'ledger_pendingentry: only the index or the refusal is set, once (% refused)', TG_OP
             USING ERRCODE = 'integrity_constraint_violation';
         END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER "ledger_pendingentry_index_once" BEFORE INSERT OR UPDATE OR DELETE
       ON "ledger_pendingentry" FOR EACH ROW EXECUTE FUNCTION ledger_pending_index_once()""",
    """CREATE TRIGGER "ledger_pendingentry_no_truncate" BEFORE TRUNCATE ON "ledger_pendingentry"
       FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only()""",
]
POSTGRES_REVERSE = [
    'DROP TRIGGER IF EXISTS "ledger_pendingentry_index_once" ON "ledger_pendingentry"',
    'DROP TRIGGER IF EXISTS "ledger_pendingentry_no_truncate" ON "ledger_pendingentry"',
    "DROP FUNCTION IF EXISTS ledger_pending_index_once()",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, params=None)
    return run


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0004_model_names'),
    ]

    operations = [
        migrations.CreateModel(
            name='PendingEntry',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('body', models.BinaryField()),
                ('leaf_hash', models.BinaryField(max_length=32)),
                ('type', models.CharField(max_length=100)),
                ('subject', models.CharField(max_length=300)),
                ('actor', models.CharField(max_length=200)),
                ('at', models.DateTimeField()),
                ('index', models.BigIntegerField(blank=True, null=True, unique=True)),
                ('refused', models.CharField(blank=True, default='', max_length=300)),
            ],
            options={
                'verbose_name': 'pending ledger entry',
                'verbose_name_plural': 'pending ledger entries',
                'ordering': ['id'],
                'indexes': [models.Index(condition=models.Q(('index__isnull', True), ('refused', '')), fields=['id'], name='ledger_pending_waiting')],
            },
        ),
        migrations.RunPython(_run({"sqlite": SQLITE, "postgresql": POSTGRES}),
                             _run({"sqlite": SQLITE_REVERSE, "postgresql": POSTGRES_REVERSE})),
    ]
