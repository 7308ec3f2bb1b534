"""Ingestion's uuid dedupe lookup as the day's events grow: within the retry window vs the whole days.

    .venv/bin/python bench/bench_uuid_lookup.py         # --stored 250000,1000000,4000000 --group 6000 --repeat 5

For each size, seeds that many `$pageview`s of one team into chDB (a new data directory), today,
written (`created_at`) 2 to 20 hours ago and merged as old parts are; then looks up groups of new
uuids as ingestion does before each insert (`writer._stored_uuids`): (a) reading only what was
written within `writer.RETRY_WINDOW` of the group (the `created_at` index), and (b) reading every
event of the group's names on its days, as before. Prints the CPU per lookup (this process, chDB's
threads included), median of `--repeat`, and (b)/(a).
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(directory: str):
    os.environ.update(DJANGO_SETTINGS_MODULE="insights_api.settings", DATABASE_URL=f"sqlite:///{directory}/bench.sqlite3",
                      EVENTS_ENGINE="chdb", CLICKHOUSE_DATA_DIR=f"{directory}/clickhouse", CLICKHOUSE_SPOOL="0")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_clickhouse", verbosity=0)
    from events.clickhouse import get_client

    return get_client()


def seed(client, count: int) -> None:
    client.command("TRUNCATE TABLE events")
    client.command(
        "INSERT INTO events (uuid, team_id, event, distinct_id, properties, timestamp, person_id, session_id, created_at) "
        "SELECT generateUUIDv4(number), 1, '$pageview', concat('user-', toString(number % 50000)), '{}', "
        "now64(6, 'UTC') - toIntervalSecond(number % 3600), NULL, '', now64(6, 'UTC') - toIntervalSecond(7200 + number % 64800) "
        f"FROM numbers({int(count)})"
    )
    client.command("OPTIMIZE TABLE events FINAL")


def cpu_per_lookup(client, lookups, repeat: int) -> float:
    from events.clickhouse.writer import _stored_uuids

    samples = []
    for _ in range(repeat):
        started = time.process_time()
        for lookup in lookups:
            if _stored_uuids(client, lookup):
                sys.exit("a new uuid was found stored")
        samples.append((time.process_time() - started) / len(lookups))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stored", default="250000,1000000,4000000", help="events already stored, comma-separated sizes")
    parser.add_argument("--group", type=int, default=6000, help="events in one spool group (0.5 s at 12,000 events/s)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        client = setup(directory)
        from events.clickhouse.writer import Lookup, _lookup_days

        now = datetime.now(timezone.utc)
        lookups = [
            Lookup([(1, str(uuid.uuid4())) for _ in range(args.group)], {"$pageview"}, _lookup_days([now]), now)
            for _ in range(3)
        ]
        print(f"uuid lookup of a {args.group:,}-event group, CPU per lookup (median of {args.repeat} x {len(lookups)})")
        for count in (int(size) for size in args.stored.split(",")):
            seed(client, count)
            windowed = cpu_per_lookup(client, lookups, args.repeat)
            whole_days = cpu_per_lookup(client, [lookup._replace(earliest=None) for lookup in lookups], args.repeat)
            print(f"  {count:>10,} events stored today: (a) within the retry window {windowed * 1000:7.1f} ms, "
                  f"(b) the whole days {whole_days * 1000:7.1f} ms, (b)/(a) {whole_days / windowed:.1f}x", flush=True)


if __name__ == "__main__":
    main()
