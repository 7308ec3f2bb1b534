from django.db import migrations, models


def nulls_to_empty_arrays(apps, schema_editor):
    PersonalAPIKey = apps.get_model("accounts", "PersonalAPIKey")
    PersonalAPIKey.objects.filter(scoped_teams__isnull=True).update(scoped_teams=[])
    PersonalAPIKey.objects.filter(scoped_organizations__isnull=True).update(scoped_organizations=[])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_organization_is_ai_data_processing_approved")]

    operations = [
        migrations.RunPython(nulls_to_empty_arrays, migrations.RunPython.noop),
        migrations.AlterField("personalapikey", "scoped_teams", models.JSONField(blank=True, default=list)),
        migrations.AlterField("personalapikey", "scoped_organizations", models.JSONField(blank=True, default=list)),
    ]
