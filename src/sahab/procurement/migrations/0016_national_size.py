"""The portal at national size: the worker's stored red flags, the public list's order
as an index, and on PostgreSQL trigram indexes for the tender search's words."""

from django.db import migrations, models

# The search compares UPPER(column::text) LIKE '%WORD%' (Django's icontains on
# PostgreSQL): these expressions, indexed with pg_trgm, serve it. SQLite has no such
# index and scans, which is fine at its sizes.
TRIGRAM = [
    ("procurement_tender_title_trgm", "procurement_tender", "title"),
    ("procurement_tender_reference_trgm", "procurement_tender", "reference"),
    ("procurement_tender_description_trgm", "procurement_tender", "description"),
    ("procurement_company_name_trgm", "directory_company", "name"),
    ("procurement_company_mf_trgm", "directory_company", "matricule_fiscal"),
]


def _has_trigrams(cursor) -> bool:
    """pg_trgm, created if need be (a trusted extension: the database's owner may)."""
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
    if cursor.fetchone():
        return True
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    if not cursor.fetchone():
        return False
    cursor.execute("SAVEPOINT sahab_trgm")
    try:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception:  # no right to create it: the search works, unindexed
        cursor.execute("ROLLBACK TO SAVEPOINT sahab_trgm")
        return False
    cursor.execute("RELEASE SAVEPOINT sahab_trgm")
    return True


def create_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        if not _has_trigrams(cursor):
            return
        for name, table, column in TRIGRAM:
            cursor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" '
                           f'USING gin ((UPPER("{column}"::text)) gin_trgm_ops)')


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name, _table, _column in TRIGRAM:
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):

    dependencies = [
        ('directory', '0005_sign_ins'),
        ('procurement', '0015_amendment_criteria'),
    ]

    operations = [
        migrations.CreateModel(
            name='RedFlagRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('computed_at', models.DateTimeField(db_index=True)),
                ('seconds', models.FloatField()),
                ('releases_upto', models.BigIntegerField(null=True)),
                ('config_sha256', models.CharField(max_length=64)),
                ('count', models.PositiveIntegerField()),
                ('flags', models.JSONField()),
            ],
            options={
                'ordering': ['-computed_at'],
            },
        ),
        migrations.AddIndex(
            model_name='tender',
            index=models.Index(fields=['-published_at', '-id'], name='procurement_tender_pub_id'),
        ),
        migrations.AddIndex(
            model_name='bid',
            index=models.Index(fields=['company', 'tender', 'status'], name='procurement_bid_comp_tender'),
        ),
        migrations.AddIndex(
            model_name='award',
            index=models.Index(fields=['supplier', 'tender'], name='procurement_award_supp_tender'),
        ),
        migrations.RunPython(create_trigram_indexes, drop_trigram_indexes, elidable=True),
    ]
