"""Insights on ClickHouse (chDB) vs hand-written ClickHouse SQL vs PostgreSQL, on the same 10M events.

    .venv/bin/python bench/bench_clickhouse.py                       # Django metadata on SQLite: (a), (b)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bench_clickhouse.py --postgres
    # --events N --persons N --days N --repeat N --postgres-repeat N --only trends,funnels,...
    # --data-dir DIR --keep: keep the chDB data (and the team) to re-measure with --team ID --data-dir DIR

Seeds events straight into ClickHouse with one `INSERT ... SELECT` from `numbers()` per million
(sessions of consecutive events of one person: pageviews over six pages with `$browser`, `$os`,
URL and session id; sign-ups, purchases and other events), the persons in the Django database
and their mirror in ClickHouse; with `--postgres` copies the same events into PostgreSQL with
COPY. Then, for the trends, funnel, retention and paths questions of the other engine benches,
alternates
  (a) POST /api/projects/:id/query/ with refresh=force_blocking on the ClickHouse engine
      (EVENTS_ENGINE=chdb, in process: auth, validation, SQL generation, execution, shaping),
  (b) one hand-written ClickHouse statement computing the same numbers on the same data, and
  (c) with --postgres: the same API call with the events on PostgreSQL,
checks that all give the same numbers, and prints medians and the ratios (a)/(b) (target
<= 1.3) and (c)/(a) (target >= 10). (a) needs the ClickHouse query engine; without it only
(b) (and (c)) run.
"""
import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _common  # noqa: E402  (bench/ is the script directory)

BROWSERS = ["Chrome", "Safari", "Firefox", "Microsoft Edge", "Opera", "Samsung Internet", "Brave", "Vivaldi"]
PAGES = ["/", "/pricing", "/features", "/docs", "/blog/launch-week", "/signup"]
NULL = "$$_posthog_breakdown_null_$$"
FUNNEL_STEPS = ["$pageview", "signed up", "purchase"]
FUNNEL_WINDOW_DAYS = 14
RETENTION_WEEKS = 8
PATHS_DAYS = 7
SESSION_EVENTS = 8  # consecutive events of one person form a session
CHUNK = 1_000_000


# --- Seeding ------------------------------------------------------------------------------------

def seed_persons(team, persons: int, start: datetime) -> int:
    """Persons user-0..user-(persons-1) in the Django database; returns the first id (ids are consecutive)."""
    from django.db import connection, transaction

    from events.models import Person, PersonDistinctId

    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {Person._meta.db_table} (uuid, team_id, created_at, properties, is_identified, version) "
                "SELECT gen_random_uuid(), %s, %s, '{}'::jsonb, false, 0 FROM generate_series(1, %s)",
                [team.id, start, persons])
        else:
            Person.objects.bulk_create((Person(team_id=team.id, created_at=start) for _ in range(persons)), batch_size=5000)
        cursor.execute(f"SELECT min(id), max(id), count(*) FROM {Person._meta.db_table} WHERE team_id = %s", [team.id])
        first, last, count = cursor.fetchone()
        if last - first + 1 != count:
            sys.exit("person ids are not consecutive; use a database of its own")
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {PersonDistinctId._meta.db_table} (team_id, person_id, distinct_id, version) "
                "SELECT %s, %s + n, 'user-' || n, 0 FROM generate_series(0, %s - 1) AS n",
                [team.id, first, persons])
        else:
            PersonDistinctId.objects.bulk_create(
                (PersonDistinctId(team_id=team.id, person_id=first + n, distinct_id=f"user-{n}") for n in range(persons)),
                batch_size=5000)
    return first


def seed_clickhouse(client, team, events: int, persons: int, first_person: int, start: datetime, end: datetime) -> None:
    """Persons mirrored and `events` events generated inside ClickHouse, in time order."""
    team_id = int(team.id)
    client.command(
        f"INSERT INTO persons (id, uuid, team_id, created_at, properties, is_identified, version, is_deleted) "
        f"SELECT {first_person} + number, generateUUIDv4(number), {team_id}, toDateTime64({start.timestamp()}, 6, 'UTC'), "
        f"'{{}}', false, 0, 0 FROM numbers({persons})")
    client.command(
        f"INSERT INTO person_distinct_ids (team_id, distinct_id, person_id, version, is_deleted) "
        f"SELECT {team_id}, concat('user-', toString(number)), {first_person} + number, 0, 0 FROM numbers({persons})")
    step = (end - start).total_seconds() / events
    browsers = "[" + ", ".join(f"'{b}'" for b in BROWSERS) + "]"
    pages = "[" + ", ".join(f"'{p}'" for p in PAGES) + "]"
    for offset in range(0, events, CHUNK):
        size = min(CHUNK, events - offset)
        client.command(f"""
        INSERT INTO events (uuid, team_id, event, distinct_id, properties, timestamp, person_id, session_id, created_at)
        SELECT generateUUIDv4(number), {team_id}, name, concat('user-', toString(k)),
               concat('{{', if(cityHash64(k, 5) % 100 < 3, '', concat('"$browser": "', {browsers}[1 + k % 8], '", ')),
                      '"$os": "', ['Mac OS X', 'Windows', 'iOS'][1 + k % 3], '", ',
                      '"$current_url": "https://example.com', page, '", "$pathname": "', page, '", ',
                      '"$session_id": "', session, '"}}'),
               ts, {first_person} + k, session, now64(6)
        FROM (
            SELECT number,
                   cityHash64(intDiv(number, {SESSION_EVENTS})) % {persons} AS k,
                   cityHash64(number, 2) % 1000 AS r,
                   multiIf(r < 820, '$pageview', r < 850, 'signed up', r < 862, 'purchase', r < 930, '$autocapture', '$pageleave') AS name,
                   {pages}[1 + cityHash64(number, 3) % {len(PAGES)}] AS page,
                   concat('s-', toString(intDiv(number, {SESSION_EVENTS}))) AS session,
                   toDateTime64({start.timestamp()} + number * {step}, 6, 'UTC') AS ts
            FROM numbers({offset}, {size})
        )""")


def copy_to_postgres(client, team, days: int) -> None:
    """The team's ClickHouse events into events_event with COPY, a day at a time (ClickHouse's TSV is
    PostgreSQL's COPY text format)."""
    from django.db import connection

    from events.models import Event

    columns = "uuid, team_id, event, distinct_id, properties, timestamp, person_id, session_id, created_at"
    bounds = client.query(f"SELECT toDate(min(timestamp)), toDate(max(timestamp)) FROM events WHERE team_id = {int(team.id)}").rows[0]
    day = bounds[0]
    with connection.cursor() as cursor:
        while day <= bounds[1]:
            result = client._run(
                f"SELECT {columns} FROM events WHERE team_id = {int(team.id)} AND toDate(timestamp) = '{day}' "
                "ORDER BY timestamp", "TSV", None)
            data = result.bytes() if hasattr(result, "bytes") else bytes(result)
            with cursor.cursor.copy(f"COPY {Event._meta.db_table} ({columns}) FROM STDIN") as copy:
                copy.write(data)
            day += timedelta(days=1)
        cursor.execute(f"ANALYZE {Event._meta.db_table}")


# --- Hand-written ClickHouse SQL ---------------------------------------------------------------

# Events with their person at query time (the newest override of the distinct id, else the one
# written at ingestion), as any correct query over persons-on-events must read them.
EVENTS_WITH_PERSONS = """
    SELECT e.*, {extra}if(o.distinct_id = '', e.person_id, o.person_id) AS pid
    FROM events AS e
    LEFT JOIN (SELECT distinct_id, argMax(person_id, version) AS person_id
               FROM person_distinct_id_overrides WHERE team_id = {team} GROUP BY distinct_id) AS o
    ON o.distinct_id = e.distinct_id
    WHERE e.team_id = {team} AND {where}
"""


def ts(value: datetime) -> str:
    return f"toDateTime64('{value.astimezone(timezone.utc).strftime('%Y-%m-%d %H:%M:%S.%f')}', 6, 'UTC')"


def with_persons(team_id: int, where: str, extra: str = "") -> str:
    """`extra`: materialized columns to read too (`e.*` leaves them out)."""
    return EVENTS_WITH_PERSONS.format(team=int(team_id), where=where, extra=extra)


def trends_sql(team_id: int, date_from: datetime, date_to: datetime) -> str:
    events = with_persons(team_id, f"e.event = '$pageview' AND e.timestamp >= {ts(date_from)} AND e.timestamp < {ts(date_to)}",
                          "e.`mat_$browser` AS browser_text, ")
    return f"""
        SELECT toString(toDate(timestamp)) AS day, ifNull(nullIf(browser_text, ''), '{NULL}') AS browser, count(DISTINCT pid)
        FROM ({events}) GROUP BY day, browser"""


def trends_cells(rows) -> dict:
    return {(day, browser): count for day, browser, count in rows}


def funnel_sql(team_id: int, date_from: datetime, date_to: datetime) -> str:
    """The PostgreSQL bench's funnel (bench_funnels.py) in ClickHouse: each person's events as one
    sorted array of `pos` = t * 4 + step slot (no event is in two steps, so events at the same pos
    are the same step and never matter to each other), the running "last pageview / last sign-up
    that extended an attempt" carried along it with arrayFill (odd code: a fresh attempt)."""
    window = FUNNEL_WINDOW_DAYS * 86_400_000_000
    events = with_persons(team_id, f"e.timestamp >= {ts(date_from)} AND e.timestamp <= {ts(date_to)} "
                                   f"AND e.event IN ('$pageview', 'signed up', 'purchase')")

    def before(values: str) -> str:
        """The last value >= 0 at an earlier element, else -1."""
        return f"arrayPushFront(arrayPopBack(arrayFill(v -> v >= 0, {values})), -1)"

    return f"""
    WITH people AS (
        SELECT pid, arraySort(groupArray(toUnixTimestamp64Micro(timestamp) * 4 + multiIf(event = '$pageview', 1, event = 'signed up', 2, 3))) AS ps
        FROM ({events}) GROUP BY pid
    ), slots AS (
        SELECT pid, ps, arrayMap(p -> intDiv(p, 4), ps) AS ts, arrayMap(p -> p % 4, ps) AS sl FROM people
    ), step1 AS (
        SELECT *, {before("arrayMap((p, l) -> multiIf(l = 1, 2 * p + 1, l = 2, 2 * p, -1), ps, sl)")} AS c1,
               arrayMap((t, l, c) -> l = 2 AND c % 2 = 1 AND t - intDiv(c, 8) <= {window}, ts, sl, c1) AS e1
        FROM slots
    ), step2 AS (
        SELECT *, {before("arrayMap((p, l, e) -> multiIf(e, 2 * p + 1, l = 3, 2 * p, -1), ps, sl, e1)")} AS c2,
               {before("arrayMap((c, e) -> if(e, intDiv(c, 8), -1), c1, e1)")} AS st2,
               arrayMap((t, l, c, s) -> l = 3 AND c % 2 = 1 AND t - s <= {window}, ts, sl, c2, st2) AS e2
        FROM step1
    ), people_steps AS (
        SELECT multiIf(has(e2, 1), 2, has(e1, 1), 1, has(sl, 1), 0, -1) AS r,
               arrayMin(arrayFilter((c, e) -> e, arrayMap(c -> intDiv(c, 8), c1), e1)) AS a0, arrayMin(arrayFilter((t, e) -> e, ts, e1)) AS a1,
               arrayMin(arrayFilter((s, e) -> e, st2, e2)) AS b0, arrayMin(arrayFilter((c, e) -> e, arrayMap(c -> intDiv(c, 8), c2), e2)) AS b1,
               arrayMin(arrayFilter((t, e) -> e, ts, e2)) AS b2
        FROM step2
    ), funnel AS (
        SELECT r, if(r = 2, b1 - b0, a1 - a0) AS d1, b2 - b1 AS d2 FROM people_steps WHERE r >= 0
    )
    SELECT countIf(r >= 0), countIf(r >= 1), countIf(r >= 2),
           sumIf(d1, r >= 1 AND d1 > 0), countIf(r >= 1 AND d1 > 0), sumIf(d2, r >= 2 AND d2 > 0), countIf(r >= 2 AND d2 > 0),
           arraySort(groupArrayIf(d1, r >= 1 AND d1 > 0)), arraySort(groupArrayIf(d2, r >= 2 AND d2 > 0))
    FROM funnel
    """


def funnel_steps(rows) -> list[dict]:
    c0, c1, c2, s1, n1, s2, n2, times1, times2 = rows[0]

    def median(values):
        if not values:
            return None
        middle = len(values) // 2
        low, high = values[(len(values) - 1) // 2], values[middle]
        return (low + high) / 2 / 1_000_000

    return [
        {"count": c0, "average_conversion_time": None, "median_conversion_time": None},
        {"count": c1, "average_conversion_time": s1 / n1 / 1_000_000 if n1 else None, "median_conversion_time": median(times1)},
        {"count": c2, "average_conversion_time": s2 / n2 / 1_000_000 if n2 else None, "median_conversion_time": median(times2)},
    ]


def retention_sql(team_id: int, date_from: datetime, date_to: datetime) -> str:
    """Weekly (Sunday-based, UTC) recurring retention of $pageview: each person's active weeks,
    paired with the later ones (two ARRAY JOINs: ClickHouse's self-join without a join)."""
    events = with_persons(team_id, f"e.event = '$pageview' AND e.timestamp >= {ts(date_from)} AND e.timestamp < {ts(date_to)}")
    return f"""
        SELECT toString(start) AS week, intDiv(dateDiff('day', start, back), 7) AS k, count()
        FROM (SELECT pid, groupUniqArray(toStartOfWeek(timestamp, 0)) AS weeks FROM ({events}) GROUP BY pid)
        ARRAY JOIN weeks AS start
        ARRAY JOIN weeks AS back
        WHERE back >= start AND back < start + {7 * RETENTION_WEEKS}
        GROUP BY week, k"""


def retention_cells(rows) -> dict:
    return {(week, int(k)): count for week, k, count in rows}


def paths_sql(team_id: int, date_from: datetime, date_to: datetime, steps: int = 5, edges: int = 50) -> str:
    """$pageview paths: per person, events split into sessions at 30-minute gaps, repeated pages
    collapsed (the last stays), the first `steps` pages of each session; edges between
    consecutive steps with their summed time, the `edges` most common."""
    url = "ifNull(JSONExtractString(properties, '$current_url'), '')"
    events = with_persons(team_id, f"e.event = '$pageview' AND e.timestamp >= {ts(date_from)} AND e.timestamp <= {ts(date_to)}")
    return f"""
        WITH items AS (
            SELECT pid, toUnixTimestamp64Micro(timestamp) AS t, uuid,
                   if(length({url}) > 1 AND endsWith({url}, '/'), substring({url}, 1, length({url}) - 1), {url}) AS item
            FROM ({events})
        ), paths AS (
            -- each person's pages in time order, split where 30 minutes passed without one
            SELECT arraySplit((x, i) -> i > 1 AND x.1 - evs[i - 1].1 >= 1800000000, evs, arrayEnumerate(evs)) AS sessions
            FROM (SELECT pid, arraySort(x -> (x.1, x.3), groupArray((t, item, uuid))) AS evs FROM items GROUP BY pid)
        ), sessions AS (
            SELECT steps FROM paths ARRAY JOIN sessions AS steps
        ), compact AS (
            -- of repeated consecutive pages the last stays
            SELECT arrayFilter((s, i) -> i = length(steps) OR steps[i + 1].2 != s.2, steps, arrayEnumerate(steps)) AS kept
            FROM sessions
        )
        SELECT concat(toString(i - 1), '_', kept[i - 1].2) AS source, concat(toString(i), '_', kept[i].2) AS target,
               count() AS edge_value, sum(kept[i].1 - kept[i - 1].1) AS elapsed
        FROM compact ARRAY JOIN arrayEnumerate(kept) AS i
        WHERE i > 1 AND i <= {steps}
        GROUP BY source, target
        ORDER BY edge_value DESC, source, target
        LIMIT {edges}"""


def paths_edges(rows) -> list[tuple]:
    from queries.runners.paths import _reachable

    return [(source, target, int(value), float(total) / int(value) / 1000.0) for source, target, value, total in _reachable(rows)]


# --- Questions ------------------------------------------------------------------------------------

def questions(days: int) -> dict:
    return {
        "trends": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
                   "interval": "day", "dateRange": {"date_from": f"-{days}d"},
                   "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"}},
        "funnels": {"kind": "FunnelsQuery", "series": [{"kind": "EventsNode", "event": name} for name in FUNNEL_STEPS],
                    "dateRange": {"date_from": f"-{days}d"},
                    "funnelsFilter": {"funnelWindowInterval": FUNNEL_WINDOW_DAYS, "funnelWindowIntervalUnit": "day",
                                      "funnelOrderType": "ordered"}},
        "retention": {"kind": "RetentionQuery", "retentionFilter": {"period": "Week", "totalIntervals": RETENTION_WEEKS}},
        "paths": {"kind": "PathsQuery", "dateRange": {"date_from": f"-{PATHS_DAYS}d"},
                  "pathsFilter": {"includeEventTypes": ["$pageview"]}},
    }


def api_result(kind: str, body: dict):
    """The API response in the shape the hand-written result has."""
    if kind == "trends":
        cells = {}
        for series in body["results"]:
            for day, value in zip(series["days"], series["data"]):
                if value:
                    cells[(day, series["breakdown_value"])] = value
        return cells
    if kind == "funnels":
        return [{key: step[key] for key in ("count", "average_conversion_time", "median_conversion_time")} for step in body["results"]]
    if kind == "retention":
        cells = {}
        for row in body["results"]:
            for offset, value in enumerate(row["values"]):
                if value["count"]:
                    cells[(row["date"][:10], offset)] = value["count"]
        return cells
    return [(e["source"], e["target"], e["value"], e["average_conversion_time"]) for e in body["results"]]


def hand_written(kind: str, team_id: int, resolved: dict | None, now: datetime) -> tuple[str, callable]:
    """(statement, shaper) for `kind`, over the API's resolved range when known."""
    def bound(key: str, default: datetime) -> datetime:
        if resolved and resolved.get(key):
            return datetime.fromisoformat(resolved[key].replace("Z", "+00:00"))
        return default

    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind == "trends":
        start = bound("date_from", today - timedelta(days=30))
        return trends_sql(team_id, start, bound("date_to", now) + timedelta(microseconds=1)), trends_cells
    if kind == "funnels":
        return funnel_sql(team_id, bound("date_from", today - timedelta(days=30)), bound("date_to", now)), funnel_steps
    if kind == "retention":
        sunday = today - timedelta(days=(today.weekday() + 1) % 7)
        start = bound("date_from", sunday - timedelta(weeks=RETENTION_WEEKS - 1))
        return retention_sql(team_id, start, bound("date_to", now) + timedelta(microseconds=1)), retention_cells
    start = bound("date_from", today - timedelta(days=PATHS_DAYS)).replace(hour=0, minute=0, second=0, microsecond=0)
    return paths_sql(team_id, start, bound("date_to", now)), paths_edges


def close(a, b) -> bool:
    """Equal, with conversion times compared to the microsecond (float rounding differs per engine)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(a - b) <= 1e-6 * max(1.0, abs(a))
    return a == b


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--persons", type=int, default=500_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", action="store_true", help="(c): copy the events into PostgreSQL (DATABASE_URL) and time the API there")
    parser.add_argument("--postgres-repeat", type=int, default=3)
    parser.add_argument("--only", default="trends,funnels,retention,paths")
    parser.add_argument("--data-dir", help="chDB data directory (default: a fresh temporary one)")
    parser.add_argument("--team", type=int, help="measure a team seeded by an earlier --keep run (same --data-dir and database)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    os.environ["EVENTS_ENGINE"] = "chdb"
    os.environ["CLICKHOUSE_DATA_DIR"] = args.data_dir or tempfile.mkdtemp(prefix="bench-chdb-")
    database = _common.setup_django(os.environ.get("DATABASE_URL"), "clickhouse")
    from django.conf import settings
    from django.db import connection

    from accounts.models import Organization, OrganizationMembership, Team, User
    from accounts.services import create_personal_api_key, create_project_with_team
    from events.clickhouse import get_client
    from events.clickhouse.schema import migrate

    if args.postgres and connection.vendor != "postgresql":
        sys.exit("--postgres needs DATABASE_URL=postgres://...")
    client = get_client()
    migrate(client)
    engine_ready = importlib.util.find_spec("queries.sql.engine.clickhouse") is not None

    if args.team:
        team = Team.objects.get(pk=args.team)
        organization = team.organization
    else:
        organization = Organization.objects.create(name=f"Bench {uuid.uuid4().hex[:6]}")
        team = create_project_with_team(organization, name="Bench")
    user = User.objects.create_user(email=f"bench-{uuid.uuid4().hex[:8]}@example.com", password="x")
    OrganizationMembership.objects.create(organization=organization, user=user)
    _, key = create_personal_api_key(user, label="bench", scopes=["*"])
    print(f"Django database: {connection.vendor} ({database.split('@')[-1]}); chDB data: {settings.CLICKHOUSE_DATA_DIR}; team {team.id}")

    now = datetime.now(timezone.utc)
    try:
        if not args.team:
            start = (now - timedelta(days=args.days)).replace(hour=0, minute=0, second=0, microsecond=0)
            started = time.perf_counter()
            first_person = seed_persons(team, args.persons, start)
            seeded_persons = time.perf_counter() - started
            started = time.perf_counter()
            seed_clickhouse(client, team, args.events, args.persons, first_person, start, now - timedelta(minutes=1))
            print(f"seeded {args.persons:,} persons (Django database) in {seeded_persons:.1f}s, "
                  f"{args.events:,} events (ClickHouse INSERT ... SELECT) in {time.perf_counter() - started:.1f}s")
            if args.postgres:
                started = time.perf_counter()
                copy_to_postgres(client, team, args.days)
                print(f"copied the events into PostgreSQL (COPY) in {time.perf_counter() - started:.1f}s")
        counts = client.query(f"SELECT event, count() FROM events WHERE team_id = {team.id} GROUP BY event ORDER BY event").rows
        print("events: " + ", ".join(f"{name}: {count:,}" for name, count in counts))
        measure(args, team, key, client, engine_ready, now)
    finally:
        if args.keep or args.team:
            user.delete()
        else:
            client.command(f"ALTER TABLE events DELETE WHERE team_id = {team.id}")
            _common.remove_team(team, user)


def measure(args, team, key, client, engine_ready: bool, now: datetime) -> None:
    from django.conf import settings
    from rest_framework.test import APIClient

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    def api_call(query: dict, engine: str):
        settings.EVENTS_ENGINE = engine
        started = time.perf_counter()
        response = api.post(f"/api/projects/{team.id}/query/", {"query": query, "refresh": "force_blocking"}, format="json")
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.content[:500]
        return response.json(), elapsed

    def sql_call(statement: str):
        started = time.perf_counter()
        rows = client.query(statement).rows
        return rows, time.perf_counter() - started

    if not engine_ready:
        print("(a) skipped: the ClickHouse query engine (queries/sql/engine/clickhouse.py) is not on this branch")
    table = []
    for kind, query in questions(args.days).items():
        if kind not in args.only.split(","):
            continue
        timings = defaultdict(list)
        resolved, reference = None, None
        if engine_ready:
            body, _ = api_call(query, "chdb")  # warm-up
            resolved = body.get("resolved_date_range")
            reference = api_result(kind, body)
        elif args.postgres:
            body, _ = api_call(query, "")
            resolved = body.get("resolved_date_range")
        statement, shape = hand_written(kind, team.id, resolved, now)
        rows, _ = sql_call(statement)  # warm-up
        expected = shape(rows)
        if reference is not None and not close(reference, expected):
            sys.exit(f"{kind}: MISMATCH between (a) the API on ClickHouse and (b) the hand-written SQL:\n"
                     f"  api:  {str(reference)[:1500]}\n  hand: {str(expected)[:1500]}")
        for _ in range(args.repeat):
            if engine_ready:
                timings["a"].append(api_call(query, "chdb")[1])
            timings["b"].append(sql_call(statement)[1])
        if args.postgres:
            for n in range(args.postgres_repeat):
                body, elapsed = api_call(query, "")
                if n == 0 and not close(api_result(kind, body), expected):
                    sys.exit(f"{kind}: MISMATCH between (c) the API on PostgreSQL and (b) the hand-written SQL:\n"
                             f"  api:  {str(api_result(kind, body))[:1500]}\n  hand: {str(expected)[:1500]}")
                timings["c"].append(elapsed)
        settings.EVENTS_ENGINE = "chdb"
        medians = {name: median_ms(values) for name, values in timings.items()}
        line = f"{kind:10} " + "  ".join(f"({name}) {medians[name]:9.1f} ms" for name in "abc" if name in medians)
        if "a" in medians:
            line += f"  (a)/(b) {medians['a'] / medians['b']:.2f}"
        if "a" in medians and "c" in medians:
            line += f"  (c)/(a) {medians['c'] / medians['a']:.1f}"
        elif "c" in medians:
            line += f"  (c)/(b) {medians['c'] / medians['b']:.1f}"
        print(line + "  [agree]" if reference is not None or "c" in medians else line, flush=True)
        table.append((kind, medians))
    print("targets: (a)/(b) <= 1.3, (c)/(a) >= 10")


if __name__ == "__main__":
    main()
