from django.db import migrations


def nulls_to_empty_arrays(apps, schema_editor):
    PersonalAPIKey = apps.get_model("accounts", "PersonalAPIKey")
    PersonalAPIKey.objects.filter(scoped_teams__isnull=True).update(scoped_teams=[])
    PersonalAPIKey.objects.filter(scoped_organizations__isnull=True).update(scoped_organizations=[])


class Migration(migrations.Migration):
    """Keys made without restrictions store [] (as PostHog's UI sends), not null. The columns
    become non-null in the next migration: PostgreSQL cannot alter a table in the transaction
    that updated its rows."""

    dependencies = [("accounts", "0002_organization_is_ai_data_processing_approved")]

    operations = [migrations.RunPython(nulls_to_empty_arrays, migrations.RunPython.noop)]
