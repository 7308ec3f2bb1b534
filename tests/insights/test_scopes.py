"""Personal API key scopes of every insights route (spec §10.3)."""
import pytest
from rest_framework.test import APIClient

from tests.conftest import error
from tests.factories import make_key

from .conftest import TRENDS_QUERY, bearer, make_insight

pytestmark = pytest.mark.django_db


def routes(base, insight):
    detail = f"{base}{insight.id}/"
    return {
        "list": ("get", base, None, "insight:read"),
        "retrieve": ("get", detail, None, "insight:read"),
        "create": ("post", base, {"name": "x", "query": TRENDS_QUERY}, "insight:write"),
        "partial_update": ("patch", detail, {"name": "y"}, "insight:write"),
        "update": ("put", detail, {"name": "z"}, "insight:write"),
        "destroy": ("delete", detail, None, "insight:write"),
        "activity": ("get", f"{detail}activity/", None, "activity_log:read"),
        "all_activity": ("get", f"{base}activity/", None, "activity_log:read"),
        "viewed": ("post", f"{base}viewed/", {"insight_ids": [insight.id]}, "insight:read"),
        "trending": ("get", f"{base}trending/", None, "insight:read"),
    }


def call(api, method, url, body):
    return getattr(api, method)(url, body, format="json") if body is not None else getattr(api, method)(url)


@pytest.mark.parametrize("name", ["list", "retrieve", "create", "partial_update", "update", "destroy", "activity", "all_activity", "viewed", "trending"])
def test_each_route_needs_its_scope(base, team, user, name):
    insight = make_insight(team)
    method, url, body, scope = routes(base, insight)[name]
    success = 405 if name == "destroy" else (201 if method == "post" else 200)

    assert call(bearer(make_key(user, scopes=[scope])), method, url, body).status_code == success
    obj = scope.split(":")[0]
    if scope.endswith(":read"):  # write implies read
        assert call(bearer(make_key(user, scopes=[f"{obj}:write"])), method, url, body).status_code == success
    unrelated = "dashboard:write" if obj != "dashboard" else "insight:write"
    response = call(bearer(make_key(user, scopes=[unrelated])), method, url, body)
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", f"API key missing required scope '{scope}'")
    if scope.endswith(":write"):
        response = call(bearer(make_key(user, scopes=[f"{obj}:read"])), method, url, body)
        assert response.status_code == 403


def test_unauthenticated_requests_are_refused(base, team):
    anonymous = APIClient()
    for path in ("", "1/", "trending/", "activity/", "my_last_viewed/"):
        response = anonymous.get(f"{base}{path}")
        assert response.status_code == 401, path
        assert response.json() == error("authentication_error", "not_authenticated", "Authentication credentials were not provided.")


def test_unknown_project_is_404(client):
    response = client.get("/api/projects/987654/insights/")
    assert response.status_code == 404
    assert response.json() == error("invalid_request", "not_found", "Project not found.")
