from django.core.management.base import BaseCommand, CommandError

from events.clickhouse import get_client, is_enabled
from events.clickhouse.schema import migrate


class Command(BaseCommand):
    help = "Create or update the ClickHouse tables (when EVENTS_ENGINE is chdb or clickhouse)."

    def handle(self, *args, **options):
        if not is_enabled():
            raise CommandError("ClickHouse is not configured: set EVENTS_ENGINE=chdb or CLICKHOUSE_URL.")
        ran = migrate(get_client())
        self.stdout.write(f"Applied: {', '.join(ran)}" if ran else "No ClickHouse migrations to apply.")
