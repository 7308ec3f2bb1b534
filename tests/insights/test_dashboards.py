"""The plain dashboards API that insights are linked to."""
import pytest

from tests.conftest import error
from tests.factories import DashboardFactory, make_team
from tests.scopes import Action, ScopeTestCases

from .conftest import make_dashboard, make_insight, put_on

pytestmark = pytest.mark.django_db

BASIC_KEYS = ["id", "name", "description", "pinned", "created_at", "created_by", "deleted", "creation_mode", "filters", "variables", "tags",
              "restriction_level", "effective_restriction_level", "effective_privilege_level", "user_access_level", "team_id"]
DASHBOARD_KEYS = [*BASIC_KEYS, "tiles"]


@pytest.fixture
def dashboards(team):
    return f"/api/projects/{team.id}/dashboards/"


def test_create_list_retrieve(client, dashboards, team, user):
    response = client.post(dashboards, {"name": "KPIs", "description": "Top line", "tags": ["Exec", "exec"], "filters": {"date_from": "-30d"}}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert list(body) == DASHBOARD_KEYS
    assert (body["name"], body["description"], body["tags"], body["filters"]) == ("KPIs", "Top line", ["exec"], {"date_from": "-30d"})
    assert (body["deleted"], body["pinned"], body["creation_mode"], body["team_id"]) == (False, False, "default", team.id)
    assert body["created_by"]["id"] == user.id
    assert body["tiles"] == []
    listed = client.get(dashboards).json()
    assert listed["count"] == 1 and listed["results"][0] == {key: body[key] for key in BASIC_KEYS}
    assert client.get(f"{dashboards}{body['id']}/").json() == body
    assert client.get(f"/api/environments/{team.id}/dashboards/{body['id']}").status_code == 200


def test_validation(client, dashboards):
    response = client.post(dashboards, {"name": "x", "creation_mode": "bogus"}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_choice", '"bogus" is not a valid choice.', "creation_mode")
    response = client.post(dashboards, {"filters": "x"}, format="json")
    assert response.json() == error("validation_error", "invalid_input", "Filters must be a valid JSON object", "filters")


def test_patch_and_soft_delete(client, dashboards, team):
    dashboard = make_dashboard(team, name="old")
    url = f"{dashboards}{dashboard.id}/"
    assert client.patch(url, {"name": "new", "tags": ["a"]}, format="json").json()["name"] == "new"
    assert client.patch(url, {"deleted": True}, format="json").json()["deleted"] is True
    assert client.get(url).status_code == 404
    assert client.get(dashboards).json()["count"] == 0
    assert client.patch(url, {"name": "x"}, format="json").status_code == 404
    restored = client.patch(url, {"deleted": False}, format="json")
    assert restored.status_code == 200 and restored.json()["deleted"] is False
    assert client.delete(url).status_code == 405


def test_deleting_a_dashboard_hides_its_tiles(client, dashboards, team):
    dashboard, insight = make_dashboard(team), make_insight(team)
    put_on(insight, dashboard)
    client.patch(f"{dashboards}{dashboard.id}/", {"deleted": True}, format="json")
    assert client.get(f"/api/projects/{team.id}/insights/{insight.id}/").json()["dashboards"] == []


def test_other_tenants_dashboards_are_invisible(client, dashboards):
    foreign = make_dashboard(make_team())
    assert client.get(f"{dashboards}{foreign.id}/").status_code == 404
    assert client.patch(f"{dashboards}{foreign.id}/", {"name": "x"}, format="json").status_code == 404
    assert client.get(dashboards).json()["count"] == 0


class TestDashboardScopes(ScopeTestCases.ReadActions, ScopeTestCases.WriteActions):
    url = "/api/projects/{team.id}/dashboards/"
    unrelated_scope = "insight:read"
    actions = {
        "list": Action("get", "", "dashboard:read"),
        "retrieve": Action("get", "{obj.id}/", "dashboard:read"),
        "create": Action("post", "", "dashboard:write", status=201, body={"name": "x"}),
        "partial_update": Action("patch", "{obj.id}/", "dashboard:write", body={"name": "y"}),
        "update": Action("put", "{obj.id}/", "dashboard:write", body={"name": "z"}),
        "destroy": Action("delete", "{obj.id}/", "dashboard:write", status=405),
    }

    def make_object(self, team, user):
        return DashboardFactory(team=team)


def test_filters_and_variables_are_validated(client, dashboards):
    response = client.post(dashboards, {"filters": {"date_from": 7}}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", "Invalid dashboard filters: date_from: Input should be a valid string", "filters")
    response = client.post(dashboards, {"filters": {"properties": [{"value": "x"}]}}, format="json")
    assert response.json() == error("validation_error", "invalid_input", "Invalid dashboard filters: properties.0.key: Field required", "filters")
    response = client.post(dashboards, {"filters": {"properties": {"type": "OR", "values": []}}}, format="json")
    assert response.json() == error(
        "validation_error", "invalid_input", "Dashboard filters cannot use OR property groups; use a flat list of properties.", "filters"
    )
    response = client.post(dashboards, {"variables": {"abc": {"value": 1}}}, format="json")
    assert response.json() == error("validation_error", "invalid_input", "Invalid dashboard variables: abc.variableId: Field required", "variables")
    response = client.post(dashboards, {"variables": []}, format="json")
    assert response.json() == error("validation_error", "invalid_input", "Filters must be a valid JSON object", "variables")
    assert client.get(dashboards).json()["count"] == 0


def test_filters_and_variables_are_stored(client, dashboards):
    prop = {"key": "$browser", "value": "Chrome", "operator": "exact", "type": "event"}
    filters = {"date_from": "-7d", "date_to": None, "properties": {"type": "AND", "values": [{"type": "AND", "values": [prop]}]},
               "breakdown_filter": {"breakdown": "$os", "breakdown_type": "event"}}
    variables = {"v1": {"variableId": "v1", "code_name": "limit", "value": 3}}
    body = client.post(dashboards, {"filters": filters, "variables": variables}, format="json").json()
    assert body["filters"] == {**filters, "properties": [prop]}
    assert body["variables"] == variables
    patched = client.patch(f"{dashboards}{body['id']}/", {"filters": {"date_from": "-30d"}}, format="json").json()
    assert (patched["filters"], patched["variables"]) == ({"date_from": "-30d"}, variables)


def test_malformed_property_groups_are_refused(client, dashboards):
    nested = {"type": "AND", "values": []}
    for _ in range(400):
        nested = {"type": "AND", "values": [nested]}
    response = client.post(dashboards, {"filters": {"properties": nested}}, format="json")
    assert response.status_code == 201 and response.json()["filters"]["properties"] == []
    response = client.post(dashboards, {"filters": {"properties": {"type": "AND", "values": [{"values": 5}]}}}, format="json")
    assert response.json() == error(
        "validation_error", "invalid_input", "Invalid dashboard filters: properties: a property group's values must be a list.", "filters"
    )
    deep_or = {"type": "AND", "values": [{"type": "AND", "values": [{"type": "OR", "values": []}]}]}
    response = client.post(dashboards, {"filters": {"properties": deep_or}}, format="json")
    assert response.status_code == 400 and response.json()["attr"] == "filters"
