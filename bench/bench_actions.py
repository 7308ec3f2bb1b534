"""A trend of an action with three steps, alone and with a cohort filter, vs hand-written SQL on the
same 1,000,000 events, in the same run.

    .venv/bin/python bench/bench_actions.py                      # a fresh SQLite file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bench_actions.py

Seeds events as bench_trends.py does (pageviews on /, /pricing, /docs, /blog, plus other events),
creates an action of three steps (pageviews whose URL contains `/pricing`, pageviews whose URL
matches the regex `docs$`, and `signed_up` events) and a dynamic cohort (persons whose `plan` is
`pro`, calculated before timing), then, for the action alone and for the action with the cohort
filter `{"type": "cohort", "value": <id>}`, times:
  (a) POST /api/projects/:id/query/ with refresh=force_blocking: a daily total trend of the action
      over `-30d` (the full API path, in process), and
  (b) one hand-written SQL query computing the same numbers on the same database (the cohort as
      `person_id IN (SELECT person_id FROM the cohort's current members)`),
checks that both give the same numbers, and prints the median times and their ratio (target <= 1.5).
"""
import argparse
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _common  # noqa: E402  (bench/ is the script directory)
import bench_trends  # noqa: E402

STEPS = [
    {"event": "$pageview", "url": "/pricing", "url_matching": "contains"},
    {"event": "$pageview", "url": "docs$", "url_matching": "regex"},
    {"event": "signed_up"},
]


def hand_written(team, date_from: datetime, date_to: datetime, cohort=None) -> tuple[str, list]:
    """The action's daily counts in one statement; with `cohort`, only events of its current members."""
    from django.db import connection

    members = ""
    if cohort is not None:
        from cohorts.models import CohortPeople

        members = f"AND person_id IN (SELECT person_id FROM {CohortPeople._meta.db_table} WHERE cohort_id = %s AND version = %s)"
    if connection.vendor == "sqlite":
        # The engine's REGEXP (RE2) is registered on the connection by the API call that runs first.
        sql = f"""
            SELECT date(timestamp) AS day, COUNT(*)
            FROM events_event
            WHERE team_id = %s AND timestamp >= %s AND timestamp < %s
              AND ((event = '$pageview' AND json_extract(properties, '$."$current_url"') GLOB '*/pricing*')
                OR (event = '$pageview' AND json_extract(properties, '$."$current_url"') REGEXP 'docs$')
                OR event = 'signed_up')
              {members}
            GROUP BY day"""
        bounds = [date_from.replace(tzinfo=None).isoformat(" "), date_to.replace(tzinfo=None).isoformat(" ")]
    else:
        sql = f"""
            SELECT (timestamp AT TIME ZONE 'UTC')::date AS day, COUNT(*)
            FROM events_event
            WHERE team_id = %s AND timestamp >= %s AND timestamp < %s
              AND ((event = '$pageview' AND properties ->> '$current_url' LIKE '%%/pricing%%')
                OR (event = '$pageview' AND properties ->> '$current_url' ~ 'docs$')
                OR event = 'signed_up')
              {members}
            GROUP BY 1"""
        bounds = [date_from, date_to]
    return sql, [team.id, *bounds, *([cohort.id, cohort.version] if cohort is not None else [])]


def run_hand_written(sql: str, params: list) -> dict:
    return {str(day)[:10]: count for day, count in _common.fetch_rows(sql, params)}


def create_cohort(team):
    """A dynamic cohort of the persons on the `pro` plan (about half), calculated now."""
    from cohorts.calculation import calculate_cohort
    from cohorts.models import Cohort

    cohort = Cohort.objects.create(team=team, name="Pro plan", filters={"properties": {"type": "AND", "values": [
        {"type": "person", "key": "plan", "operator": "exact", "value": "pro"}]}})
    started = time.perf_counter()
    cohort = calculate_cohort(cohort.id)
    assert cohort.version is not None and not cohort.last_error, cohort.last_error
    print(f"cohort calculated: {cohort.count:,} members in {time.perf_counter() - started:.1f}s")
    return cohort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--persons", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    database = _common.setup_django(os.environ.get("DATABASE_URL"), "actions")
    from django.db import connection

    from actions.models import Action

    team, user, key = _common.bench_team("Bench")
    action = Action.objects.create(team=team, name="Pricing, docs or signup", steps_json=STEPS)

    print(f"database: {connection.vendor} ({database.split('@')[-1]}), team {team.id}")
    try:
        started = time.perf_counter()
        bench_trends.seed(team, args.events, args.persons, args.days, args.seed)
        print(f"seeded {args.events:,} events / {args.persons:,} persons in {time.perf_counter() - started:.1f}s")
        cohort = create_cohort(team)
        print("\n-- action alone")
        measure(team, key, action, args)
        print("\n-- action with a cohort filter")
        measure(team, key, action, args, cohort)
    finally:
        _common.remove_team(team, user)


def measure(team, key: str, action, args, cohort=None) -> None:

    query = {
        "kind": "TrendsQuery",
        "series": [{"kind": "ActionsNode", "id": action.id}],
        "interval": "day",
        "dateRange": {"date_from": f"-{args.days}d"},
    }
    if cohort is not None:
        query["properties"] = [{"type": "cohort", "key": "id", "value": cohort.id, "operator": "in"}]
    api_call = _common.query_call(team, key, query)
    result = api_call()  # warm-up (and connection, caches, SQLite functions)
    resolved = result["resolved_date_range"]
    date_from = datetime.fromisoformat(resolved["date_from"].replace("Z", "+00:00"))
    date_to = datetime.fromisoformat(resolved["date_to"].replace("Z", "+00:00")) + timedelta(microseconds=1)
    sql, params = hand_written(team, date_from, date_to, cohort)
    expected = run_hand_written(sql, params)
    [series] = result["results"]
    ours = {day: value for day, value in zip(series["days"], series["data"]) if value}
    if ours != expected:
        sys.exit(f"MISMATCH between the API and the hand-written SQL: {sorted(ours.items())[:3]} vs {sorted(expected.items())[:3]}")
    print(f"results agree: {len(ours)} days, {sum(ours.values()):,} matching events")

    _common.compare_timings(api_call, lambda: run_hand_written(sql, params), args.repeat)


if __name__ == "__main__":
    main()
