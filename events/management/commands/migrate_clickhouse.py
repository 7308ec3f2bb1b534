from django.core.management.base import BaseCommand, CommandError

from events.clickhouse import get_client, is_enabled
from events.clickhouse.schema import configured_cluster, migrate


class Command(BaseCommand):
    help = ("Create or update the ClickHouse tables (when EVENTS_ENGINE is chdb or clickhouse); "
            "ON CLUSTER CLICKHOUSE_CLUSTER when that is set.")

    def add_arguments(self, parser):
        parser.add_argument("--if-configured", action="store_true",
                            help="do nothing (instead of failing) when ClickHouse is not configured: for start-up scripts")

    def handle(self, *args, **options):
        if not is_enabled():
            if options["if_configured"]:
                return
            raise CommandError("ClickHouse is not configured: set EVENTS_ENGINE=chdb or CLICKHOUSE_URL.")
        ran = migrate(get_client())
        where = f" on cluster {configured_cluster()}" if configured_cluster() else ""
        self.stdout.write(f"Applied{where}: {', '.join(ran)}" if ran else "No ClickHouse migrations to apply.")
