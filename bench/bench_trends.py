"""Trends engine vs hand-written SQL on the same 1,000,000 events, in the same run.

    .venv/bin/python bench/bench_trends.py                      # a fresh SQLite file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bench_trends.py

Seeds a team with persons and events spread over the last 30 days (pageviews with a `$browser`
property, plus other events), then times:
  (a) POST /api/projects/:id/query/ with refresh=force_blocking: a daily `dau` trend of
      `$pageview` over `-30d` broken down by `$browser` (the full API path, in process), and
  (b) one hand-written SQL query computing the same numbers on the same database,
checks that both give the same numbers, and prints the median times and their ratio.
"""
import argparse
import json
import os
import random
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _common  # noqa: E402  (bench/ is the script directory)

BROWSERS = ["Chrome", "Safari", "Firefox", "Microsoft Edge", "Opera", "Samsung Internet", "Brave", "Vivaldi"]
OTHER_EVENTS = ["signed_up", "purchase", "$autocapture", "$pageleave"]
NULL = "$$_posthog_breakdown_null_$$"


def setup_django(database_url: str | None) -> str:
    return _common.setup_django(database_url, "trends")


def seed(team, events: int, persons: int, days: int, seed_value: int) -> None:
    from django.db import connection, transaction

    from events.models import Event, Person

    rng = random.Random(seed_value)
    now = datetime.now(timezone.utc)
    start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    span = (now - start).total_seconds()
    sqlite = connection.vendor == "sqlite"

    def when(value: datetime):
        return value.replace(tzinfo=None).isoformat(" ") if sqlite else value

    def uid() -> str:
        value = uuid.UUID(int=rng.getrandbits(128), version=4)
        return value.hex if sqlite else str(value)

    person_rows = [(uid(), team.id, when(start), json.dumps({"email": f"user{n}@example.com", "plan": rng.choice(["free", "pro"])}), False, 0)
                   for n in range(persons)]
    person_table = Person._meta.db_table
    event_table = Event._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {person_table} (uuid, team_id, created_at, properties, is_identified, version) VALUES (%s, %s, %s, %s, %s, %s)",
            person_rows,
        )
        cursor.execute(f"SELECT id FROM {person_table} WHERE team_id = %s ORDER BY id", [team.id])
        person_ids = [row[0] for row in cursor.fetchall()]
        weights = [rng.paretovariate(1.2) for _ in person_ids]
        chosen = rng.choices(range(len(person_ids)), weights=weights, k=events)
        # Events arrive roughly in time order, so they are stored in time order.
        moments = sorted(start + timedelta(seconds=rng.random() * span) for _ in range(events))
        columns = "(uuid, team_id, event, distinct_id, properties, timestamp, person_id, session_id, created_at)"
        batch: list = []
        for n, (index, moment) in enumerate(zip(chosen, moments)):
            properties = {"$current_url": f"https://example.com/{rng.choice(['', 'pricing', 'docs', 'blog'])}", "$os": rng.choice(["Mac OS X", "Windows", "iOS"])}
            if rng.random() < 0.8:
                name = "$pageview"
                if rng.random() > 0.03:
                    properties["$browser"] = BROWSERS[min(int(rng.expovariate(0.6)), len(BROWSERS) - 1)]
            else:
                name = rng.choice(OTHER_EVENTS)
                properties["$browser"] = rng.choice(BROWSERS)
            session = f"s-{index}-{moment.date()}"
            batch.append((uid(), team.id, name, f"user-{index}", json.dumps(properties), when(moment), person_ids[index], session, when(now)))
            if len(batch) == 50_000 or n == events - 1:
                if sqlite:
                    cursor.executemany(f"INSERT INTO {event_table} {columns} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", batch)
                else:
                    with cursor.cursor.copy(f"COPY {event_table} {columns} FROM STDIN") as copy:
                        for row in batch:
                            copy.write_row(row)
                batch = []
        if not sqlite:
            cursor.execute(f"ANALYZE {event_table}")
            cursor.execute(f"ANALYZE {person_table}")
        else:
            cursor.execute("ANALYZE")


def hand_written(team, date_from: datetime, date_to: datetime) -> tuple[str, list]:
    from django.db import connection

    if connection.vendor == "sqlite":
        sql = """
            SELECT date(timestamp) AS day,
                   COALESCE(NULLIF(json_extract(properties, '$."$browser"'), ''), %s) AS browser,
                   COUNT(DISTINCT person_id)
            FROM events_event
            WHERE team_id = %s AND event = '$pageview' AND timestamp >= %s AND timestamp < %s
            GROUP BY day, browser"""
        bounds = [date_from.replace(tzinfo=None).isoformat(" "), date_to.replace(tzinfo=None).isoformat(" ")]
    else:
        sql = """
            SELECT (timestamp AT TIME ZONE 'UTC')::date AS day,
                   COALESCE(NULLIF(properties ->> '$browser', ''), %s) AS browser,
                   COUNT(DISTINCT person_id)
            FROM events_event
            WHERE team_id = %s AND event = '$pageview' AND timestamp >= %s AND timestamp < %s
            GROUP BY 1, 2"""
        bounds = [date_from, date_to]
    return sql, [NULL, team.id, *bounds]


def run_hand_written(sql: str, params: list) -> dict:
    return {(str(day)[:10], browser): count for day, browser, count in _common.fetch_rows(sql, params)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the seeded team (to inspect plans or re-measure)")
    parser.add_argument("--reuse-team", type=int, help="measure on a team kept by an earlier --keep run (no seeding)")
    args = parser.parse_args()

    database = setup_django(os.environ.get("DATABASE_URL"))
    from django.db import connection

    team, user, key = _common.bench_team("Bench", args.reuse_team)

    print(f"database: {connection.vendor} ({database.split('@')[-1]}), team {team.id}")
    try:
        if not args.reuse_team:
            started = time.perf_counter()
            seed(team, args.events, args.persons, args.days, args.seed)
            print(f"seeded {args.events:,} events / {args.persons:,} persons in {time.perf_counter() - started:.1f}s")
        measure(team, key, args)
    finally:
        if args.keep or args.reuse_team:
            user.delete()
        else:
            _common.remove_team(team, user)


def measure(team, key: str, args) -> None:

    query = {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
        "interval": "day",
        "dateRange": {"date_from": f"-{args.days}d"},
        "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"},
    }
    api_call = _common.query_call(team, key, query)
    result = api_call()  # warm-up (and connection, caches)
    resolved = result["resolved_date_range"]
    date_from = datetime.fromisoformat(resolved["date_from"].replace("Z", "+00:00"))
    date_to = datetime.fromisoformat(resolved["date_to"].replace("Z", "+00:00")) + timedelta(microseconds=1)
    sql, params = hand_written(team, date_from, date_to)
    expected = run_hand_written(sql, params)

    ours = {}
    for series in result["results"]:
        for day, value in zip(series["days"], series["data"]):
            if value:
                ours[(day, series["breakdown_value"])] = value
    if ours != expected:
        sys.exit(f"MISMATCH between the API and the hand-written SQL: {len(ours)} vs {len(expected)} cells")
    print(f"results agree: {len(result['results'])} series, {sum(ours.values()):,} person-days")

    _common.compare_timings(api_call, lambda: run_hand_written(sql, params), args.repeat)


if __name__ == "__main__":
    main()
