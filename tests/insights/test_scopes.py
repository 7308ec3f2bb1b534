"""Personal API key scopes of every insights route (spec §10.3)."""
import pytest

from tests.conftest import error
from tests.factories import InsightFactory
from tests.scopes import Action, ScopeTestCases

from .conftest import TRENDS_QUERY

pytestmark = pytest.mark.django_db


class TestInsightScopes(ScopeTestCases.ReadActions, ScopeTestCases.WriteActions, ScopeTestCases.UnscopedActions):
    url = "/api/projects/{team.id}/insights/"
    unrelated_scope = "dashboard:write"
    actions = {
        "list": Action("get", "", "insight:read"),
        "retrieve": Action("get", "{obj.id}/", "insight:read"),
        "create": Action("post", "", "insight:write", status=201, body={"name": "x", "query": TRENDS_QUERY}),
        "partial_update": Action("patch", "{obj.id}/", "insight:write", body={"name": "y"}),
        "update": Action("put", "{obj.id}/", "insight:write", body={"name": "z"}),
        "destroy": Action("delete", "{obj.id}/", "insight:write", status=405),
        "activity": Action("get", "{obj.id}/activity/", "activity_log:read"),
        "all_activity": Action("get", "activity/", "activity_log:read"),
        "viewed": Action("post", "viewed/", "insight:read", status=201, body=lambda obj, user: {"insight_ids": [obj.id]}),
        "trending": Action("get", "trending/", "insight:read"),
        "my_last_viewed": Action("get", "my_last_viewed/", None),
    }

    def make_object(self, team, user):
        return InsightFactory(team=team)


def test_unknown_project_is_404(client):
    response = client.get("/api/projects/987654/insights/")
    assert response.status_code == 404
    assert response.json() == error("invalid_request", "not_found", "Project not found.")
