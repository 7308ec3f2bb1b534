"""Funnels engine vs hand-written SQL on the same 1,000,000 demo events, in the same run.

    .venv/bin/python bench/bench_funnels.py                      # a fresh SQLite file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bench_funnels.py

Seeds a team with events/demo_data.py (visitors browse in sessions, some sign up, some buy; a
visitor's anonymous and user ids are one person), then times:
  (a) POST /api/projects/:id/query/ with refresh=force_blocking: a 3-step ordered funnel
      `$pageview` -> `signed up` -> `purchase` with a 14-day conversion window over `-30d`
      (the full API path, in process), and
  (b) one hand-written SQL statement computing the same step counts and conversion times
      (average and median) on the same database, with the same semantics as PostHog's funnel UDF
      (each step extends the latest attempt that reached the previous one),
checks that both give the same numbers, and prints the median times and their ratio.
"""
import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _common  # noqa: E402  (bench/ is the script directory)

STEPS = ["$pageview", "signed up", "purchase"]
WINDOW_DAYS = 14


def setup_django(database_url: str | None) -> str:
    return _common.setup_django(database_url, "funnels")


def hand_written(team_id: int, date_from: datetime, date_to: datetime) -> tuple[str, list]:
    """Counts, conversion time sums/counts and medians per step, in one statement."""
    from django.db import connection

    if connection.vendor == "sqlite":
        import sqlite3

        seconds = "unixepoch(timestamp)" if sqlite3.sqlite_version_info >= (3, 38) else "CAST(strftime('%%s', timestamp) AS INTEGER)"
        epoch = f"{seconds} * 1000000 + CAST(substr(timestamp, 21, 6) AS INTEGER)"
        bounds = [date_from.replace(tzinfo=None).isoformat(" "), date_to.replace(tzinfo=None).isoformat(" ")]
    else:
        epoch = "CAST(EXTRACT(EPOCH FROM timestamp) * 1000000 AS BIGINT)"
        bounds = [date_from, date_to]
    window = WINDOW_DAYS * 86_400_000_000
    frame = "PARTITION BY pid ORDER BY pos RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    sql = f"""
    WITH ev AS (
        SELECT person_id AS pid, {epoch} AS t,
               CASE WHEN event = %s THEN 1 ELSE 0 END AS pv,
               CASE WHEN event = %s THEN 1 ELSE 0 END AS su
        FROM events_event
        WHERE team_id = %s AND timestamp >= %s AND timestamp <= %s AND event IN (%s, %s, %s)
    ), ordered AS (
        SELECT *, t * 4 + CASE WHEN pv = 1 THEN 1 WHEN su = 1 THEN 2 ELSE 3 END AS pos FROM ev
    ), signups AS (
        -- A sign-up extends the attempt of the latest pageview before it unless a sign-up came
        -- since: one running MAX tells both (odd: a pageview was last, at pos = code / 2).
        SELECT pid, t, pos, pv, su,
               MAX(CASE WHEN pv = 1 THEN 2 * pos + 1 WHEN su = 1 THEN 2 * pos END) OVER ({frame}) AS code
        FROM ordered
    ), step1 AS (
        SELECT pid, t, pos, pv, su, code / 8 AS start_t,
               CASE WHEN su = 1 AND code %% 2 = 1 AND t - code / 8 <= {window} THEN 1 ELSE 0 END AS ok
        FROM signups
    ), purchases AS (
        -- a purchase extends the attempt of the latest counted sign-up before it, the same way
        SELECT pid, t, pv, su,
               MAX(CASE WHEN ok = 1 THEN 2 * pos + 1 WHEN pv = 0 AND su = 0 THEN 2 * pos END) OVER ({frame}) AS code2,
               MAX(CASE WHEN ok = 1 THEN start_t END) OVER ({frame}) AS start2
        FROM (SELECT * FROM step1 WHERE ok = 1 OR (pv = 0 AND su = 0)) AS reduced
    ), step2 AS (
        SELECT pid, start2, code2 / 8 AS su1_t, t
        FROM purchases
        WHERE pv = 0 AND su = 0 AND code2 %% 2 = 1 AND t - start2 <= {window}
    ), people AS (
        -- One row per person: attempt times only grow along a person's events, so the first
        -- attempt that reached a step holds the smallest of each of its times.
        SELECT pid, MAX(r) AS r, MIN(a0) AS a0, MIN(a1) AS a1, MIN(b0) AS b0, MIN(b1) AS b1, MIN(b2) AS b2
        FROM (SELECT pid, CASE WHEN ok = 1 THEN 1 WHEN pv = 1 THEN 0 ELSE -1 END AS r,
                     CASE WHEN ok = 1 THEN start_t END AS a0, CASE WHEN ok = 1 THEN t END AS a1,
                     CAST(NULL AS BIGINT) AS b0, CAST(NULL AS BIGINT) AS b1, CAST(NULL AS BIGINT) AS b2
              FROM step1
              UNION ALL
              SELECT pid, 2, NULL, NULL, start2, su1_t, t FROM step2) AS x
        GROUP BY pid
    ), funnel AS (
        SELECT r, CASE WHEN r = 2 THEN b1 - b0 ELSE a1 - a0 END AS d1, b2 - b1 AS d2 FROM people WHERE r >= 0
    ), times AS (
        SELECT 1 AS k, d1 AS d FROM funnel WHERE r >= 1 AND d1 > 0
        UNION ALL SELECT 2, d2 FROM funnel WHERE r >= 2 AND d2 > 0
    ), ranked AS (
        SELECT k, d, ROW_NUMBER() OVER (PARTITION BY k ORDER BY d) - 1 AS rn, COUNT(*) OVER (PARTITION BY k) AS c FROM times
    )
    SELECT 0 AS k, COUNT(*) AS actors, CAST(NULL AS BIGINT) AS dsum, CAST(NULL AS BIGINT) AS dcount,
           CAST(NULL AS BIGINT) AS msum, CAST(NULL AS BIGINT) AS mcount FROM funnel
    UNION ALL SELECT 1, SUM(CASE WHEN r >= 1 THEN 1 ELSE 0 END), NULL, NULL, NULL, NULL FROM funnel
    UNION ALL SELECT 2, SUM(CASE WHEN r >= 2 THEN 1 ELSE 0 END), NULL, NULL, NULL, NULL FROM funnel
    UNION ALL SELECT k + 10, NULL, SUM(d), COUNT(*), NULL, NULL FROM times GROUP BY k
    UNION ALL SELECT k + 20, NULL, NULL, NULL, SUM(d), COUNT(*) FROM ranked WHERE rn = (c - 1) / 2 OR rn = c / 2 GROUP BY k
    """
    return sql, [STEPS[0], STEPS[1], team_id, *bounds, *STEPS]


def run_hand_written(sql: str, params: list) -> list[dict]:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET jit = off")  # as the engine does for its statements
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    counts = {k: int(n or 0) for k, n, *_ in rows if k < 10}
    sums = {k - 10: (s, c) for k, _, s, c, _, _ in rows if 10 <= k < 20}
    medians = {k - 20: (s, c) for k, _, _, _, s, c in rows if k >= 20}

    def seconds(pair):
        return float(pair[0]) / pair[1] / 1_000_000 if pair and pair[1] else None

    return [{"count": counts[k], "average_conversion_time": None if k == 0 else seconds(sums.get(k)),
             "median_conversion_time": None if k == 0 else seconds(medians.get(k))} for k in range(3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--team", type=int, help="reuse the events of an existing team instead of seeding a new one")
    parser.add_argument("--keep", action="store_true", help="keep the seeded events (reuse them with --team)")
    args = parser.parse_args()

    database = setup_django(os.environ.get("DATABASE_URL"))
    from django.db import connection

    from events.demo_data import generate_demo_data

    print(f"database: {connection.vendor} ({database.split('@')[-1]})")
    team, user, key = _common.bench_team("Bench funnels", args.team)

    if not args.team:
        started = time.perf_counter()
        summary = generate_demo_data(team, events=args.events, days=args.days, seed=args.seed)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        counts = ", ".join(f"{name}: {count:,}" for name, count in sorted(summary.event_counts.items()))
        print(f"seeded team {team.id}: {summary.events:,} events ({counts}), {summary.persons:,} persons "
              f"in {time.perf_counter() - started:.1f}s")

    query = {
        "kind": "FunnelsQuery",
        "series": [{"kind": "EventsNode", "event": name} for name in STEPS],
        "dateRange": {"date_from": f"-{args.days}d"},
        "funnelsFilter": {"funnelWindowInterval": WINDOW_DAYS, "funnelWindowIntervalUnit": "day", "funnelOrderType": "ordered"},
    }
    api_call = _common.query_call(team, key, query)
    result = api_call()  # warm-up (and connection, caches)
    resolved = result["resolved_date_range"]
    date_from = datetime.fromisoformat(resolved["date_from"].replace("Z", "+00:00"))
    date_to = datetime.fromisoformat(resolved["date_to"].replace("Z", "+00:00"))
    sql, params = hand_written(team.id, date_from, date_to)
    expected = run_hand_written(sql, params)

    ours = [{key: step[key] for key in ("count", "average_conversion_time", "median_conversion_time")} for step in result["results"]]
    if ours != expected:
        sys.exit(f"MISMATCH between the API and the hand-written SQL:\n  api:  {ours}\n  hand: {expected}")
    print("results agree: " + " -> ".join(f"{step['count']:,}" for step in ours)
          + f" (conversion {ours[1]['average_conversion_time']:.0f}s, {ours[2]['average_conversion_time']:.0f}s on average)")

    _common.compare_timings(api_call, lambda: run_hand_written(sql, params), args.repeat)

    # Other shapes of the same funnel, API only (no baseline): one timed run each after a warm-up.
    variants = {
        "breakdown by $browser": {"breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"}},
        "strict order": {"funnelsFilter": {**query["funnelsFilter"], "funnelOrderType": "strict"}},
        "unordered": {"funnelsFilter": {**query["funnelsFilter"], "funnelOrderType": "unordered"}},
        "time to convert": {"funnelsFilter": {**query["funnelsFilter"], "funnelVizType": "time_to_convert"}},
        "trends (daily)": {"funnelsFilter": {**query["funnelsFilter"], "funnelVizType": "trends"}},
    }
    base = dict(query)
    for label, fields in variants.items():
        query = {**base, **fields}
        api_call()
        t = time.perf_counter()
        api_call()
        print(f"    {label:<24} {(time.perf_counter() - t) * 1000:8.1f} ms")

    if not args.team and not args.keep:
        from events.models import Event, Person, PersonDistinctId

        for model in (Event, PersonDistinctId, Person):
            model.objects.filter(team=team).delete()
    elif not args.team:
        print(f"kept the events: --team {team.id}")


if __name__ == "__main__":
    main()
