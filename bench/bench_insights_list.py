"""GET /insights/?limit=100 against a minimal hand-written Django view returning the same rows.

    .venv/bin/python bench/bench_insights_list.py                     # a fresh SQLite file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bench_insights_list.py

Seeds 10,000 insights (two tags each, on one or two of 50 dashboards, 100,000 view rows from
25 users), then times both endpoints in the same process through the full Django stack
(middleware, URL routing) and prints the medians and their ratio (target <= 2.0). It also
times `trending` and a 2,500-id `viewed`. The API request authenticates with a personal API
key; the baseline view does no authentication at all.
"""
import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import types
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def configure(database_url: str | None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "insights_api.settings")
    os.environ["DEBUG"] = "0"  # no per-query bookkeeping
    os.environ.setdefault("SECRET_KEY", "bench")
    os.environ["RATE_LIMIT_ENABLED"] = "0"
    os.environ["LOG_LEVEL"] = "WARNING"
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='bench-insights-')}/db.sqlite3"
    import django

    django.setup()


def minimal_view(request, team_id):
    """What a hand-written endpoint would do: one ORM query plus prefetches, dicts, JsonResponse."""
    from django.db.models import OuterRef, Prefetch, Subquery
    from django.http import JsonResponse

    from accounts.models import Team
    from insights.models import DashboardTile, Insight, InsightViewed, TaggedItem

    # The same data access as the API (see insights.selectors), so the ratio measures the rest.

    def user(u):
        if u is None:
            return None
        return {
            "id": u.id, "uuid": str(u.uuid), "distinct_id": u.distinct_id, "first_name": u.first_name, "last_name": u.last_name,
            "email": u.email, "is_email_verified": u.is_email_verified, "hedgehog_config": None, "role_at_organization": None,
        }

    team = Team.objects.get(id=team_id)
    latest = InsightViewed.objects.filter(insight=OuterRef("pk")).order_by("-last_viewed_at").values("last_viewed_at")[:1]
    queryset = (
        Insight.objects.filter(team__project_id=team.project_id)
        .select_related("created_by", "last_modified_by")
        .prefetch_related(
            Prefetch("dashboard_tiles", queryset=DashboardTile.objects.only("id", "dashboard_id", "insight_id", "deleted"), to_attr="tiles"),
            Prefetch("tagged_items", queryset=TaggedItem.objects.select_related("tag"), to_attr="tag_items"),
        )
        .annotate(last_viewed_at=Subquery(latest))
        .order_by("order", "id")
    )
    count = queryset.count()
    rows = []
    for i in queryset[:100]:
        tiles = i.tiles
        rows.append(
            {
                "id": i.id, "short_id": i.short_id, "name": i.name, "derived_name": i.derived_name,
                "filters": {} if i.query is not None else i.filters, "query": i.query, "order": i.order, "deleted": i.deleted,
                "dashboards": [t.dashboard_id for t in tiles],
                "dashboard_tiles": [{"id": t.id, "dashboard_id": t.dashboard_id, "deleted": t.deleted} for t in tiles],
                "last_refresh": None, "cache_target_age": None, "next_allowed_client_refresh": None, "result": None,
                "hasMore": None, "columns": None, "created_at": i.created_at, "created_by": user(i.created_by),
                "description": i.description, "updated_at": i.updated_at,
                "tags": sorted(t.tag.name for t in i.tag_items), "favorited": i.favorited, "saved": i.saved,
                "last_modified_at": i.last_modified_at, "last_modified_by": user(i.last_modified_by), "is_sample": i.is_sample,
                "effective_restriction_level": 21, "effective_privilege_level": 37, "user_access_level": "editor",
                "timezone": None, "is_cached": False, "query_status": None, "hogql": None, "types": None,
                "resolved_date_range": None, "alerts": [], "last_viewed_at": i.last_viewed_at, "filters_hash": None,
            }
        )
    return JsonResponse({"count": count, "next": None, "previous": None, "results": rows})


def seed(insights: int, views: int, seed_value: int):
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts.models import OrganizationMembership, User
    from accounts.services import create_organization, create_personal_api_key
    from insights.models import Dashboard, DashboardTile, Insight, InsightViewed, Tag, TaggedItem

    rng = random.Random(seed_value)
    call_command("migrate", verbosity=0)
    owner = User.objects.create_user("bench@example.com", "bench-password", first_name="Bench")
    organization, team = create_organization("Bench", owner)
    _, key = create_personal_api_key(owner, "bench", scopes=["*"])
    users = [owner]
    for n in range(24):
        member = User.objects.create_user(f"viewer{n}@example.com", None, first_name=f"Viewer{n}")
        OrganizationMembership.objects.create(organization=organization, user=member)
        users.append(member)

    now = timezone.now()
    query = {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview", "math": "total"}], "interval": "day", "dateRange": {"date_from": "-30d"}, "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"}, "trendsFilter": {"display": "ActionsLineGraph"}}}
    Insight.objects.bulk_create(
        [
            Insight(
                team=team, name=f"Insight {n} {rng.choice(['pageviews', 'signups', 'revenue', 'retention'])}",
                description="Benchmark insight" if n % 3 else None, query=query, short_id=f"b{n:07d}",
                created_by=rng.choice(users), last_modified_by=rng.choice(users),
                created_at=now - timedelta(days=rng.randrange(365)), last_modified_at=now - timedelta(days=rng.randrange(90)),
                favorited=n % 10 == 0,
            )
            for n in range(insights)
        ],
        batch_size=2000,
    )
    insight_ids = list(Insight.objects.filter(team=team).values_list("id", flat=True))
    dashboards = Dashboard.objects.bulk_create([Dashboard(team=team, name=f"Dashboard {n}") for n in range(50)])
    tiles = []
    for insight_id in insight_ids:
        for dashboard in rng.sample(dashboards, rng.choice([1, 2])):
            tiles.append(DashboardTile(insight_id=insight_id, dashboard=dashboard, layouts={"sm": {"w": 6, "h": 5}}))
    DashboardTile.objects.bulk_create(tiles, batch_size=2000)
    tags = Tag.objects.bulk_create([Tag(team=team, name=f"tag-{n}") for n in range(30)])
    TaggedItem.objects.bulk_create(
        [TaggedItem(insight_id=insight_id, tag=tag) for insight_id in insight_ids for tag in rng.sample(tags, 2)], batch_size=2000
    )
    per_user = views // len(users)
    InsightViewed.objects.bulk_create(
        [
            InsightViewed(team=team, user=user, insight_id=insight_id, last_viewed_at=now - timedelta(minutes=rng.randrange(60 * 24 * 30)))
            for user in users
            for insight_id in rng.sample(insight_ids, per_user)
        ],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh planner statistics, as autovacuum would provide
    return team, key, insight_ids


def median_ms(call, runs: int) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--insights", type=int, default=10_000)
    parser.add_argument("--views", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    configure(os.environ.get("DATABASE_URL"))

    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.urls import clear_url_caches, include, path

    started = time.perf_counter()
    team, key, insight_ids = seed(args.insights, args.views, args.seed)
    print(f"database: {connection.vendor}; seeded {args.insights} insights, {args.views} views in {time.perf_counter() - started:.1f}s")

    urls = types.ModuleType("bench_urls")
    urls.urlpatterns = [path("bench/insights/<int:team_id>/", minimal_view), path("", include("insights_api.urls"))]
    sys.modules["bench_urls"] = urls
    settings.ROOT_URLCONF = "bench_urls"
    clear_url_caches()

    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    api_url, minimal_url = f"/api/projects/{team.id}/insights/", f"/bench/insights/{team.id}/"

    def api():
        response = client.get(api_url, {"limit": 100})
        assert response.status_code == 200, response.content[:500]
        return response

    def minimal():
        response = client.get(minimal_url)
        assert response.status_code == 200
        return response

    api_rows, minimal_rows = api().json()["results"], minimal().json()["results"]
    assert [r["id"] for r in api_rows] == [r["id"] for r in minimal_rows], "the two endpoints must return the same rows"
    assert set(api_rows[0]) == set(minimal_rows[0])

    for _ in range(5):  # warm up both
        api()
        minimal()
    api_ms, minimal_ms = median_ms(api, args.runs), median_ms(minimal, args.runs)
    print(f"GET /insights/?limit=100  median {api_ms:7.1f} ms")
    print(f"minimal Django view       median {minimal_ms:7.1f} ms")
    print(f"ratio                     {api_ms / minimal_ms:7.2f}  (target <= 2.0)")

    basic_ms = median_ms(lambda: client.get(api_url, {"limit": 100, "basic": "true"}), args.runs)
    search_ms = median_ms(lambda: client.get(api_url, {"limit": 100, "search": "signups"}), max(5, args.runs // 3))
    trending_ms = median_ms(lambda: client.get(f"{api_url}trending/", {"limit": 10}), args.runs)
    ids = insight_ids[:2500]
    viewed_ms = median_ms(lambda: client.post(f"{api_url}viewed/", {"insight_ids": ids}, content_type="application/json"), args.runs)
    print(f"GET /insights/?limit=100&basic=true   median {basic_ms:7.1f} ms")
    print(f"GET /insights/?search=signups         median {search_ms:7.1f} ms")
    print(f"GET /insights/trending/?limit=10      median {trending_ms:7.1f} ms")
    print(f"POST /insights/viewed/ (2,500 ids)    median {viewed_ms:7.1f} ms")


if __name__ == "__main__":
    main()
