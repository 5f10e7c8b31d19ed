from django.db import migrations


def create_state(apps, schema_editor):
    """The single append-lock row must exist before the first append."""
    apps.get_model("ledger", "LogState").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]
    operations = [migrations.RunPython(create_state, migrations.RunPython.noop)]
