"""The tender search's party names on the tender's row (procurement.search), filled from
the bids opened and the awards so far, and indexed with pg_trgm on PostgreSQL as the
tender's own texts are (0016). On a country's data the fill is one UPDATE of every
tender: about a minute per million tenders."""

import importlib

from django.db import migrations, models

INDEX = "procurement_tender_party_names_trgm"


def fill_and_index(apps, schema_editor):
    from sahab.procurement import search

    search.refresh_party_names(using=schema_editor.connection.alias)
    if schema_editor.connection.vendor != "postgresql":
        return
    national = importlib.import_module("sahab.procurement.migrations.0016_national_size")
    with schema_editor.connection.cursor() as cursor:
        if national._has_trigrams(cursor):
            cursor.execute(f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "procurement_tender" '
                           'USING gin ((UPPER("party_names"::text)) gin_trgm_ops)')


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f'DROP INDEX IF EXISTS "{INDEX}"')


class Migration(migrations.Migration):

    dependencies = [
        ('procurement', '0020_dashboard_tables'),
    ]

    operations = [
        migrations.AddField(
            model_name='tender',
            name='party_names',
            field=models.TextField(blank=True, default='', editable=False),
        ),
        migrations.RunPython(fill_and_index, drop_index, elidable=True),
    ]
