import pytest

from insights.models import Dashboard, DashboardTile, Insight, InsightViewed
from tests.factories import TRENDS_QUERY  # noqa: F401  (re-exported to the insights tests)
from tests.factories import DashboardFactory, DashboardTileFactory, InsightFactory

SQL_QUERY = {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query": "select count() from events"}}

FULL_KEYS = [
    "id", "short_id", "name", "derived_name", "filters", "query", "order", "deleted", "dashboards", "dashboard_tiles",
    "last_refresh", "cache_target_age", "next_allowed_client_refresh", "result", "hasMore", "columns", "created_at",
    "created_by", "description", "updated_at", "tags", "favorited", "saved", "last_modified_at", "last_modified_by",
    "is_sample", "effective_restriction_level", "effective_privilege_level", "user_access_level", "timezone",
    "is_cached", "query_status", "hogql", "types", "resolved_date_range", "alerts", "last_viewed_at", "filters_hash",
]
BASIC_KEYS = [
    "id", "short_id", "name", "derived_name", "filters", "query", "dashboards", "dashboard_tiles", "description",
    "last_refresh", "refreshing", "saved", "tags", "updated_at", "created_by", "created_at", "last_modified_at",
    "favorited", "user_access_level", "last_viewed_at",
]
USER_BASIC_KEYS = [
    "id", "uuid", "distinct_id", "first_name", "last_name", "email", "is_email_verified", "hedgehog_config", "role_at_organization",
]


def make_insight(team, **fields) -> Insight:
    return InsightFactory(team=team, **fields)


def make_dashboard(team, **fields) -> Dashboard:
    return DashboardFactory(team=team, **fields)


def put_on(insight, dashboard, **fields) -> DashboardTile:
    return DashboardTileFactory(insight=insight, dashboard=dashboard, **fields)


def view(insight, user, at, team=None) -> InsightViewed:
    return InsightViewed.objects.create(team=team or insight.team, user=user, insight=insight, last_viewed_at=at)


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Test users get a password; the production hasher's iterations would dominate the run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def base(team):
    return f"/api/projects/{team.id}/insights/"


@pytest.fixture
def unscoped_client(api_client):
    """A legacy personal API key without scopes: allowed everywhere, like a session."""
    return api_client(None)
