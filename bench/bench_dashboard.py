"""A dashboard of 20 insights refreshed at once vs the same 20 insights refreshed one by one.

    .venv/bin/python bench/bench_dashboard.py                   # a fresh SQLite file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bench_dashboard.py
    # --events N --days N --repeat N --seed N

Seeds demo events (`events/demo_data.py`) and a dashboard of 20 insights of every kind (trends,
trends with breakdowns, funnels, retention, lifecycle, stickiness, SQL), then, in the same run,
alternates (a) `GET /api/projects/:id/dashboards/:id/?refresh=force_blocking` (every tile
computed) and (b) the 20 insights retrieved one by one with
`GET /api/projects/:id/insights/:id/?refresh=force_blocking`, all in process through the full
Django stack. It checks that both give the same results per insight before timing, prints the
medians and the ratio (a) / (b) (target <= 1.2), and the database queries of (a) with 5 tiles and
with 20 tiles, computations (statements reading the events tables) apart.
"""
import argparse
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import _common  # noqa: E402  (bench/ is the script directory)


def _viz(source: dict) -> dict:
    return {"kind": "InsightVizNode", "source": source}


def _trend(math: str = "total", event: str = "$pageview", **extra) -> dict:
    return _viz({"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": event, "math": math}], "interval": "day",
                 "dateRange": {"date_from": "-30d"}, **extra})


def _breakdown(prop: str) -> dict:
    return {"breakdownFilter": {"breakdown": prop, "breakdown_type": "event"}}


FUNNEL_STEPS = [{"kind": "EventsNode", "event": "$pageview"}, {"kind": "EventsNode", "event": "signed up"}, {"kind": "EventsNode", "event": "purchase"}]
WINDOW = {"funnelWindowInterval": 14, "funnelWindowIntervalUnit": "day"}


def _retention(period: str, intervals: int) -> dict:
    entity = {"id": "$pageview", "type": "events"}
    return _viz({"kind": "RetentionQuery", "retentionFilter": {"period": period, "totalIntervals": intervals, "targetEntity": entity, "returningEntity": entity}})


def _sql(query: str) -> dict:
    return {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query": query}}


# 20 insights; the first 5 (one of each family) also make the 5-tile dashboard.
INSIGHTS = [
    ("Daily pageviews", _trend()),
    ("Pageviews by browser", _trend(**_breakdown("$browser"))),
    ("Sign-up funnel", _viz({"kind": "FunnelsQuery", "series": FUNNEL_STEPS, "dateRange": {"date_from": "-30d"}, "funnelsFilter": WINDOW})),
    ("Weekly retention", _retention("Week", 8)),
    ("Top pages (SQL)", _sql("SELECT properties.$pathname AS page, count() AS views FROM events WHERE event = '$pageview' GROUP BY page ORDER BY views DESC LIMIT 10")),
    ("Daily active users", _trend("dau")),
    ("Weekly active users", _viz({"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}], "interval": "week", "dateRange": {"date_from": "-90d"}})),
    ("Revenue", _viz({"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "revenue"}],
                      "dateRange": {"date_from": "-30d"}, "trendsFilter": {"display": "BoldNumber"}})),
    ("Users by OS", _trend("dau", **_breakdown("$os"))),
    ("Sign-ups by country", _trend("total", "signed up", **_breakdown("$geoip_country_code"))),
    ("Pageviews and sign-ups", _viz({"kind": "TrendsQuery", "interval": "day", "dateRange": {"date_from": "-30d"},
                                     "series": [{"kind": "EventsNode", "event": "$pageview", "math": "total"}, {"kind": "EventsNode", "event": "signed up", "math": "total"}]})),
    ("Chrome pageviews", _trend(properties=[{"key": "$browser", "value": ["Chrome"], "operator": "exact", "type": "event"}])),
    ("Funnel by browser", _viz({"kind": "FunnelsQuery", "series": FUNNEL_STEPS[:2], "dateRange": {"date_from": "-30d"}, "funnelsFilter": WINDOW,
                                "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"}})),
    ("Sign-up funnel trends", _viz({"kind": "FunnelsQuery", "series": FUNNEL_STEPS[:2], "dateRange": {"date_from": "-30d"}, "interval": "day",
                                    "funnelsFilter": {**WINDOW, "funnelVizType": "trends"}})),
    ("Daily retention", _retention("Day", 14)),
    ("Weekly lifecycle", _viz({"kind": "LifecycleQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], "interval": "week", "dateRange": {"date_from": "-8w"}})),
    ("Daily lifecycle", _viz({"kind": "LifecycleQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], "interval": "day", "dateRange": {"date_from": "-30d"}})),
    ("Stickiness", _viz({"kind": "StickinessQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], "interval": "day", "dateRange": {"date_from": "-30d"}})),
    ("Weekly stickiness", _viz({"kind": "StickinessQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], "interval": "week", "dateRange": {"date_from": "-8w"}})),
    ("Events per day (SQL)", _sql("SELECT toDate(timestamp) AS day, event, count() AS n FROM events GROUP BY day, event ORDER BY day, event")),
]


def seed(team, user, events: int, days: int, seed_value: int):
    """Demo events, the 20 insights, a dashboard of all 20 and one of the first 5."""
    from django.db import connection

    from events.demo_data import generate_demo_data
    from insights.models import Dashboard
    from insights.services import create_insight

    generate_demo_data(team, events=events, days=days, seed=seed_value)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh planner statistics, as autovacuum would provide
    full = Dashboard.objects.create(team=team, name="Bench: 20 tiles", created_by=user)
    small = Dashboard.objects.create(team=team, name="Bench: 5 tiles", created_by=user)
    insights = [
        create_insight(team=team, user=user, data={"name": name, "query": query}, dashboards=[full, small] if n < 5 else [full], tags=None)
        for n, (name, query) in enumerate(INSIGHTS)
    ]
    return full, small, insights


def computing(sql: str) -> bool:
    """A statement of a computation: it reads the events or persons tables."""
    return bool(re.search(r"\bevents_(event|person)", sql))


def framing(sql: str) -> bool:
    """A statement around a computation: its transaction and session settings."""
    return bool(re.match(r"\s*(BEGIN|COMMIT|ROLLBACK|SET|SAVEPOINT|RELEASE)\b", sql, re.IGNORECASE))


def count_queries(call) -> tuple[int, int, int, Counter]:
    """(queries, computations, their framing, the other statements by their first words)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        call()
    statements = [query["sql"] for query in captured.captured_queries]
    others = Counter(" ".join(sql.split())[:70] for sql in statements if not computing(sql) and not framing(sql))
    return len(statements), sum(map(computing, statements)), sum(map(framing, statements)), others


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    os.environ["DEBUG"] = "0"  # no per-query bookkeeping outside the counted requests
    os.environ.setdefault("SECRET_KEY", "bench")
    os.environ["RATE_LIMIT_ENABLED"] = "0"  # 21 requests per round
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    database = _common.setup_django(os.environ.get("DATABASE_URL"), "dashboard")
    from django.db import connection

    team, user, key = _common.bench_team("Bench")
    print(f"database: {connection.vendor} ({database.split('@')[-1]}), team {team.id}")
    try:
        started = time.perf_counter()
        full, small, insights = seed(team, user, args.events, args.days, args.seed)
        print(f"seeded {args.events:,} events over {args.days} days and {len(insights)} insights in {time.perf_counter() - started:.1f}s")
        measure(team, key, full, small, insights, args.repeat)
    finally:
        _common.remove_team(team, user)


def measure(team, key: str, full, small, insights, repeat: int) -> None:
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    def get(url: str, refresh: str = "force_blocking") -> dict:
        response = client.get(url, {"refresh": refresh})
        assert response.status_code == 200, response.content[:500]
        return response.json()

    def dashboard(board=full, refresh: str = "force_blocking") -> dict:
        return get(f"/api/projects/{team.id}/dashboards/{board.id}/", refresh)

    def one_by_one() -> dict:
        return {insight.id: get(f"/api/projects/{team.id}/insights/{insight.id}/") for insight in insights}

    tiles = {tile["insight"]["id"]: tile["insight"] for tile in dashboard()["tiles"]}  # warm-up, and the results to compare
    singles = one_by_one()
    assert set(tiles) == set(singles), "the dashboard must show the 20 insights"
    for insight in insights:
        ours, theirs = tiles[insight.id], singles[insight.id]
        if ours["query_status"] or theirs["query_status"]:
            sys.exit(f"{insight.name}: computing failed: {ours['query_status'] or theirs['query_status']}")
        if ours["result"] != theirs["result"] or ours["is_cached"] or theirs["is_cached"]:
            sys.exit(f"MISMATCH for {insight.name!r}: the dashboard tile and the insight differ")
        if not ours["result"]:
            sys.exit(f"{insight.name}: empty result (the seeded data should fill every insight)")
    print(f"results agree for all {len(insights)} insights, every one computed (is_cached false on both sides)")

    _common.compare_timings(dashboard, one_by_one, repeat, target=1.2,
                            labels=("(a) dashboard, 20 tiles", "(b) 20 insights one by one"))

    print("database queries of GET dashboard (computing: statements reading the events/persons tables):")
    counts = {}
    for board, size in ((small, 5), (full, 20)):
        dashboard(board, "force_blocking")  # warm the board's own cache entries
        total, computations, frames, others = count_queries(lambda: dashboard(board, "force_blocking"))
        cached, *_ = count_queries(lambda: dashboard(board, "force_cache"))
        counts[size] = others
        print(f"  {size:2d} tiles: force_blocking {total} queries = {computations} computing + {frames} transaction/session statements"
              f" around them + {sum(others.values())} other; force_cache (every tile cached) {cached} queries")
    grown = {sql: (counts[5][sql], counts[20][sql]) for sql in counts[20] | counts[5] if counts[5][sql] != counts[20][sql]}
    for sql, (five, twenty) in sorted(grown.items(), key=lambda item: -item[1][1]):
        print(f"    grows {five} -> {twenty}: {sql}")
    if not grown:
        print("    the other queries do not grow with the number of tiles")


if __name__ == "__main__":
    main()
