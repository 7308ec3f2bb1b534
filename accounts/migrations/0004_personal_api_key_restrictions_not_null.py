from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_personal_api_key_restrictions_nulls_to_arrays")]

    operations = [
        migrations.AlterField("personalapikey", "scoped_teams", models.JSONField(blank=True, default=list)),
        migrations.AlterField("personalapikey", "scoped_organizations", models.JSONField(blank=True, default=list)),
    ]
