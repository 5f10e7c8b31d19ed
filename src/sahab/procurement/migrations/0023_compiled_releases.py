"""Each contracting process's compiled release, kept from now on in the transaction of each
new release (ocds.publish_step), filled here for the releases published so far: one
merge per process, minutes per million processes."""

from django.db import migrations, models


def compile_published(apps, schema_editor):
    from sahab.procurement import ocds

    ocds.compile_all(apps.get_model("procurement", "Release"),
                     apps.get_model("procurement", "CompiledRelease"))


class Migration(migrations.Migration):

    dependencies = [
        ("procurement", "0022_ocds_bulk_files"),
    ]

    operations = [
        migrations.CreateModel(
            name="CompiledRelease",
            fields=[
                ("ocid", models.CharField(max_length=100, primary_key=True, serialize=False)),
                ("up_to", models.BigIntegerField()),
                ("data", models.JSONField()),
            ],
        ),
        migrations.RunPython(compile_published, migrations.RunPython.noop),
    ]
