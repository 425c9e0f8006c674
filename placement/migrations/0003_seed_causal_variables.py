"""Create a CausalVariable row for every variable the placement model knows (all enabled)."""

from django.db import migrations


def seed(apps, schema_editor):
    from placement.features import FEATURE_CATALOGUE

    CausalVariable = apps.get_model("placement", "CausalVariable")
    for position, spec in enumerate(FEATURE_CATALOGUE, start=1):
        CausalVariable.objects.get_or_create(
            key=spec.key,
            defaults={
                "label": spec.label,
                "group": spec.group,
                "description": spec.description,
                "paragraph_62": spec.paragraph_62,
                "order": position * 10,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("placement", "0002_placement_loop")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
