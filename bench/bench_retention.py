"""Retention engine vs hand-written SQL on the same 1,000,000 demo events, in the same run.

    .venv/bin/python bench/bench_retention.py                      # a fresh SQLite file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> .venv/bin/python bench/bench_retention.py

Seeds a team with the demo-data generator (events/demo_data.py: visitors browsing in sessions,
signing up, purchasing) over the last 8 weeks, then times:
  (a) POST /api/projects/:id/query/ with refresh=force_blocking: a weekly recurring retention of
      `$pageview` over 8 weeks (the full API path, in process), and
  (b) one hand-written SQL query computing the same matrix on the same database,
checks that both give the same numbers, and prints the median times and their ratio.
The bench team's rows are deleted at the end unless --keep is given; a kept team (same seed and
size) is reused by the next run on the same database (`--db-file` keeps a SQLite file).
"""
import argparse
import os
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _common  # noqa: E402  (bench/ is the script directory)

WEEKS = 8


def setup_django(database_url: str | None, db_file: str | None) -> str:
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        path = Path(db_file) if db_file else Path(tempfile.mkdtemp(prefix="bench-retention-")) / "bench.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{path.resolve()}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "insights_api.settings")
    os.environ.setdefault("DEBUG", "true")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return os.environ["DATABASE_URL"]


def hand_written(team, date_from: datetime, date_to: datetime) -> tuple[str, list]:
    """Weekly (Sunday-based, UTC) retention of $pageview: each person's active weeks, joined to themselves."""
    from django.db import connection

    if connection.vendor == "sqlite":
        sql = f"""
            WITH weeks AS (
                SELECT person_id, date(timestamp, '-6 days', 'weekday 0') AS week
                FROM events_event
                WHERE team_id = %s AND event = '$pageview' AND timestamp >= %s AND timestamp < %s
                GROUP BY 1, 2
            )
            SELECT s.week, CAST((julianday(r.week) - julianday(s.week)) / 7 AS INTEGER), COUNT(*)
            FROM weeks s JOIN weeks r ON r.person_id = s.person_id AND r.week >= s.week
                 AND r.week < date(s.week, '+{7 * WEEKS} days')
            GROUP BY 1, 2"""
        bounds = [date_from.replace(tzinfo=None).isoformat(" "), date_to.replace(tzinfo=None).isoformat(" ")]
    else:
        sql = f"""
            WITH weeks AS (
                SELECT person_id,
                       (date_trunc('week', (timestamp AT TIME ZONE 'UTC') + interval '1 day') - interval '1 day')::date AS week
                FROM events_event
                WHERE team_id = %s AND event = '$pageview' AND timestamp >= %s AND timestamp < %s
                GROUP BY 1, 2
            )
            SELECT s.week, (r.week - s.week) / 7, COUNT(*)
            FROM weeks s JOIN weeks r ON r.person_id = s.person_id AND r.week >= s.week AND r.week < s.week + {7 * WEEKS}
            GROUP BY 1, 2"""
        bounds = [date_from, date_to]
    return sql, [team.id, *bounds]


def run_hand_written(sql: str, params: list) -> dict:
    from django.db import connection, transaction

    from queries.sql.engine import get_engine

    # Same session settings as the engine's queries (PostgreSQL: JIT off), so the SQL is compared.
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in getattr(get_engine(), "SESSION_SETTINGS", ()):
            cursor.execute(setting)
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {(str(week)[:10], int(offset)): count for week, offset, count in rows}


def cells(result: dict) -> dict:
    ours = {}
    for row in result["results"]:
        for offset, value in enumerate(row["values"]):
            if value["count"]:
                ours[(row["date"][:10], offset)] = value["count"]
    return ours


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def cleanup(team) -> None:
    from events.models import Event, Person, PersonDistinctId

    Event.objects.filter(team=team).delete()
    PersonDistinctId.objects.filter(team=team).delete()
    Person.objects.filter(team=team).delete()
    team.organization.delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db-file", help="SQLite file to use (and reuse with --keep) instead of a fresh temporary one")
    parser.add_argument("--keep", action="store_true", help="keep the seeded team for the next run")
    args = parser.parse_args()

    database = setup_django(os.environ.get("DATABASE_URL"), args.db_file)
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Team
    from events.demo_data import generate_demo_data

    name = f"Bench retention seed={args.seed} events={args.events}"
    team = Team.objects.filter(name=name).order_by("-id").first()
    reused = team is not None
    team, user, key = _common.bench_team(name, team.id if team else None)

    print(f"database: {connection.vendor} ({database.split('@')[-1]})")
    try:
        if reused:
            print(f"reusing the {name!r} team seeded by an earlier run")
        else:
            started = time.perf_counter()
            # Data ends now, so the default range (the 8 weeks ending this week) covers it.
            summary = generate_demo_data(team, events=args.events, days=7 * WEEKS, seed=args.seed, end=timezone.now())
            analyze()
            print(f"seeded {summary.events:,} events / {summary.persons:,} persons in {time.perf_counter() - started:.1f}s "
                  f"({summary.event_counts.get('$pageview', 0):,} pageviews)")

        query = {"kind": "RetentionQuery", "retentionFilter": {"period": "Week", "totalIntervals": WEEKS}}
        api_call = _common.query_call(team, key, query)
        result = api_call()  # warm-up (and connection, caches)
        resolved = result["resolved_date_range"]
        date_from = datetime.fromisoformat(resolved["date_from"].replace("Z", "+00:00"))
        date_to = datetime.fromisoformat(resolved["date_to"].replace("Z", "+00:00"))
        sql, params = hand_written(team, date_from, date_to)
        expected = run_hand_written(sql, params)
        ours = cells(result)
        if ours != expected:
            sys.exit(f"MISMATCH between the API and the hand-written SQL: {len(ours)} vs {len(expected)} cells")
        first_week = date.fromisoformat(result["results"][0]["date"][:10])
        print(f"results agree: {len(result['results'])} weekly cohorts from {first_week}, "
              f"{sum(row['values'][0]['count'] for row in result['results']):,} cohort members")

        _common.compare_timings(api_call, lambda: run_hand_written(sql, params), args.repeat)
    finally:
        user.delete()
        if not args.keep:
            cleanup(team)


if __name__ == "__main__":
    main()
