from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    """Trigram search (`?search=`) uses pg_trgm on PostgreSQL; on other databases this is a no-op
    and the same functions are registered per connection (insights.trigram)."""

    dependencies = [("insights", "0001_initial")]

    operations = [TrigramExtension()]
