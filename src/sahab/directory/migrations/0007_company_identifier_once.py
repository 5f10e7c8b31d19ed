"""One company per identifiant unique: the first eight characters of the matricule fiscal
(the registre national's id, and the company's OCDS party id) are held by one company.

A platform where two companies already share an identifier (registered before the
service refused it) stops here and names them: decide which one is the real company,
give the other its right matricule or deactivate and rename it in the admin, then
migrate again."""

from django.db import migrations, models
from django.db.models import Count
from django.db.models.functions import Substr


def refuse_shared_identifiers(apps, schema_editor) -> None:
    Company = apps.get_model("directory", "Company")
    shared = (Company.objects.annotate(identifier=Substr("matricule_fiscal", 1, 8))
              .values("identifier").annotate(n=Count("id")).filter(n__gt=1)
              .values_list("identifier", flat=True))
    if shared:
        holders = Company.objects.annotate(identifier=Substr("matricule_fiscal", 1, 8)).filter(
            identifier__in=list(shared)).order_by("matricule_fiscal")
        names = [f"{c.matricule_fiscal} ({c.name})" for c in holders]
        raise RuntimeError("Companies share an identifiant unique (the matricule's first "
                           "eight characters); keep one company per identifier, then "
                           "migrate again: " + "; ".join(names))


class Migration(migrations.Migration):

    dependencies = [
        ("directory", "0006_model_names"),
    ]

    operations = [
        migrations.RunPython(refuse_shared_identifiers, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="company",
            constraint=models.UniqueConstraint(
                Substr("matricule_fiscal", 1, 8), name="directory_company_identifier_once",
                violation_error_message="A company with this matricule fiscal is registered."),
        ),
    ]
