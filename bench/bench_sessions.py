"""Queries that read session fields, timed through the API on demo events (what a session costs).

    .venv/bin/python bench/bench_sessions.py                      # a fresh SQLite file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bench_sessions.py
    .venv/bin/python bench/bench_sessions.py --team 5             # an already seeded team, kept

Seeds a team with events/demo_data.py (visitors browse in UUIDv7 sessions over --days days), then
times POST /api/projects/:id/query/ (refresh=force_blocking) for each question below, over the
last day and over the whole period: session fields are computed from all events of the sessions
the query reads, so their cost should follow the query's range, not the team's history.
Prints the median of --repeat runs per question and range.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _common  # noqa: E402  (bench/ is the script directory)

LONG = {"type": "session", "key": "$session_duration", "operator": "gt", "value": 60}


def questions(date_from: str) -> dict:
    range_ = {"dateRange": {"date_from": date_from}}
    pageviews = [{"kind": "EventsNode", "event": "$pageview"}]
    return {
        "trends avg $session_duration": {"kind": "TrendsQuery", "series": [
            {"kind": "EventsNode", "event": "$pageview", "math": "avg", "math_property": "$session_duration"}], **range_},
        "trends by $entry_pathname": {"kind": "TrendsQuery", "series": pageviews, **range_,
                                      "breakdownFilter": {"breakdown_type": "session", "breakdown": "$entry_pathname"}},
        "lifecycle, session filter": {"kind": "LifecycleQuery", "series": pageviews, "properties": [LONG], **range_},
        "retention, session filter": {"kind": "RetentionQuery", "properties": [LONG], **range_,
                                      "retentionFilter": {"period": "Day", "totalIntervals": 2}},
        "events list, session filter": {"kind": "EventsQuery", "select": ["count()"], "after": date_from, "properties": [LONG]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--team", type=int, help="an already seeded team (kept afterwards)")
    args = parser.parse_args()

    database = _common.setup_django(os.environ.get("DATABASE_URL"), "sessions")
    from django.db import connection
    from rest_framework.test import APIClient

    from events.demo_data import generate_demo_data

    team, user, key = _common.bench_team("Bench sessions", args.team)
    print(f"database: {connection.vendor} ({database.split('@')[-1]}), team {team.id}")
    try:
        if not args.team:
            started = time.perf_counter()
            summary = generate_demo_data(team, events=args.events, days=args.days, seed=args.seed)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            print(f"seeded {summary.events:,} events in {time.perf_counter() - started:.1f}s")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        print(f"{'question':32} {'last day':>10} {f'{args.days} days':>10}")
        for name in questions("-1d"):
            cells = []
            for date_from in ("-1d", f"-{args.days}d"):
                query = questions(date_from)[name]
                times = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    response = client.post(f"/api/projects/{team.id}/query/", {"query": query, "refresh": "force_blocking"}, format="json")
                    times.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.content[:500]
                cells.append(f"{statistics.median(times) * 1000:8.0f}ms")
            print(f"{name:32} {cells[0]:>10} {cells[1]:>10}")
    finally:
        if args.team:
            user.delete()
        else:
            _common.remove_team(team, user)


if __name__ == "__main__":
    main()
