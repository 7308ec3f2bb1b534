"""python manage.py materialize_property KEY [KEY ...]"""
from django.core.management.base import BaseCommand, CommandError

from events.clickhouse import ClickHouseError, get_client, is_enabled
from events.clickhouse.materialized import materialize, materialized_columns


class Command(BaseCommand):
    help = ("Store event properties as their own ClickHouse columns (computed at insert, filled for stored "
            "events now), as PostHog's materialized columns: queries filtering or breaking down by them "
            "read the column instead of parsing every event's properties. Results do not change.")

    def add_arguments(self, parser):
        parser.add_argument("keys", nargs="+", metavar="KEY", help="event property key, e.g. plan or $browser")

    def handle(self, *args, **options):
        if not is_enabled():
            raise CommandError("ClickHouse is not configured: set EVENTS_ENGINE=chdb or CLICKHOUSE_URL.")
        client = get_client()
        for key in options["keys"]:
            if not key or len(key) > 400:
                raise CommandError(f"Invalid property key {key!r}.")
            existing = materialized_columns(client).get(key)
            try:
                column = materialize(client, key)
            except ClickHouseError as error:
                raise CommandError(f"ClickHouse refused to materialize {key!r}: {error}") from None
            state = "already materialized as" if existing else "materialized as"
            self.stdout.write(f"{key}: {state} column `{column}`")
