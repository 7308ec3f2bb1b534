"""`/api/projects/:id/groups_types/` and `/api/projects/:id/groups/`: wire format, paging, search, scopes."""
from datetime import datetime, timedelta, timezone

import pytest

from events.models import Event
from groups.models import Group, GroupTypeMapping
from tests.conftest import error
from tests.factories import make_environment

pytestmark = pytest.mark.django_db
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def company(team):
    return GroupTypeMapping.objects.create(team=team, project_id=team.project_id, group_type="company", group_type_index=0, created_at=T0)


def make_groups(team, count, index=0, **fields):
    return Group.objects.bulk_create([Group(team=team, group_type_index=index, group_key=f"key-{i:03d}", created_at=T0 + timedelta(minutes=i),
                                            group_properties={"name": f"Company {i}", **fields}) for i in range(count)])


def test_group_types_list_is_unpaginated_and_ordered(client, team, company):
    GroupTypeMapping.objects.create(team=team, project_id=team.project_id, group_type="org", group_type_index=1, created_at=T0)
    for family in ("projects", "environments"):
        response = client.get(f"/api/{family}/{team.id}/groups_types/")
        assert response.status_code == 200
        assert response.json() == [
            {"group_type": "company", "group_type_index": 0, "name_singular": None, "name_plural": None, "detail_dashboard": None,
             "default_columns": None, "created_at": "2024-01-01T00:00:00Z"},
            {"group_type": "org", "group_type_index": 1, "name_singular": None, "name_plural": None, "detail_dashboard": None,
             "default_columns": None, "created_at": "2024-01-01T00:00:00Z"},
        ]


def test_group_types_are_shared_by_the_environments_of_a_project(client, team, company):
    staging = make_environment(team)
    assert [t["group_type"] for t in client.get(f"/api/environments/{staging.id}/groups_types/").json()] == ["company"]


def test_update_metadata(client, team, company):
    response = client.patch(f"/api/projects/{team.id}/groups_types/update_metadata/",
                            [{"group_type_index": 0, "name_singular": "Company", "name_plural": "Companies"}], format="json")
    assert response.status_code == 200
    assert response.json()[0]["name_plural"] == "Companies"
    bad = client.patch(f"/api/projects/{team.id}/groups_types/update_metadata/", [{"group_type_index": 9}], format="json")
    assert bad.status_code == 400


def test_delete_group_type(client, team, company):
    make_groups(team, 2)
    assert client.delete(f"/api/projects/{team.id}/groups_types/0/").status_code == 204
    assert not GroupTypeMapping.objects.exists() and not Group.objects.exists()
    assert client.delete(f"/api/projects/{team.id}/groups_types/0/").status_code == 404


def test_groups_list_needs_the_type(client, team):
    response = client.get(f"/api/projects/{team.id}/groups/")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input",
                                    "You must pass ?group_type_index= in this URL. To get a list of valid group types, "
                                    "call /api/:project_id/groups_types/.", "group_type_index")
    assert client.get(f"/api/projects/{team.id}/groups/?group_type_index=x").json()["detail"] == "A valid integer is required."


def test_groups_list_pages_newest_first(client, team, company, django_assert_max_num_queries):
    make_groups(team, 150)
    with django_assert_max_num_queries(12):
        first = client.get(f"/api/projects/{team.id}/groups/?group_type_index=0")
    body = first.json()
    assert set(body) == {"next", "previous", "results"}
    assert len(body["results"]) == 100
    assert body["results"][0] == {"group_type_index": 0, "group_key": "key-149", "group_properties": {"name": "Company 149"},
                                  "created_at": "2024-01-01T02:29:00Z"}
    second = client.get(body["next"]).json()
    assert [g["group_key"] for g in second["results"]] == [f"key-{i:03d}" for i in range(49, -1, -1)]
    assert second["next"] is None


def test_groups_search_and_key_filter(client, team, company):
    make_groups(team, 12)
    url = f"/api/projects/{team.id}/groups/?group_type_index=0"
    assert [g["group_key"] for g in client.get(url + "&search=company 11").json()["results"]] == ["key-011"]
    assert [g["group_key"] for g in client.get(url + "&search=KEY-003").json()["results"]] == ["key-003"]
    assert [g["group_key"] for g in client.get(url + "&group_key=-01").json()["results"]] == ["key-011", "key-010"]
    assert client.get(f"/api/projects/{team.id}/groups/?group_type_index=1").json()["results"] == []


def test_find(client, team, company):
    make_groups(team, 2)
    response = client.get(f"/api/projects/{team.id}/groups/find/?group_type_index=0&group_key=key-001")
    assert response.status_code == 200
    assert response.json() == {"group_type_index": 0, "group_key": "key-001", "group_properties": {"name": "Company 1"},
                               "created_at": "2024-01-01T00:01:00Z", "notebook": None}
    missing = client.get(f"/api/projects/{team.id}/groups/find/?group_type_index=0&group_key=nope")
    assert missing.status_code == 404
    assert missing.json()["type"] == "invalid_request"


def test_create_group_records_groupidentify(client, team, company):
    body = {"group_type_index": 0, "group_key": "acme", "group_properties": {"name": "Acme"}}
    response = client.post(f"/api/projects/{team.id}/groups/", body, format="json")
    assert response.status_code == 201
    assert response.json()["group_key"] == "acme"
    event = Event.objects.get(team=team, event="$groupidentify")
    assert event.properties["$group_set"] == {"name": "Acme"} and event.distinct_id == str(team.uuid)
    duplicate = client.post(f"/api/projects/{team.id}/groups/", body, format="json")
    assert duplicate.status_code == 400
    assert duplicate.json()["detail"] == "A group with this key already exists"
    unknown = client.post(f"/api/projects/{team.id}/groups/", {**body, "group_type_index": 3}, format="json")
    assert unknown.status_code == 400


@pytest.mark.parametrize("scopes, method, status", [
    (["group:read"], "get", 200), (["insight:read"], "get", 403), (["group:read"], "post", 403), (["group:write"], "post", 201),
])
def test_scopes(api_client, team, company, scopes, method, status):
    api = api_client(scopes)
    if method == "get":
        response = api.get(f"/api/projects/{team.id}/groups/?group_type_index=0")
        assert api.get(f"/api/projects/{team.id}/groups_types/").status_code == status
    else:
        response = api.post(f"/api/projects/{team.id}/groups/", {"group_type_index": 0, "group_key": "k"}, format="json")
    assert response.status_code == status


def test_other_teams_groups_are_not_listed(client, team, company):
    from tests.factories import make_team
    other = make_team(team.organization, name="other")
    Group.objects.create(team=other, group_type_index=0, group_key="theirs")
    assert client.get(f"/api/projects/{team.id}/groups/?group_type_index=0").json()["results"] == []


def test_openapi_documents_the_routes(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    assert "/api/projects/{project_id}/groups/" in paths and "/api/projects/{project_id}/groups/find/" in paths
    assert "/api/environments/{project_id}/groups_types/" in paths
    assert "/api/projects/{project_id}/groups_types/update_metadata/" in paths
    for route in ("property_definitions", "property_values", "related"):
        assert f"/api/projects/{{project_id}}/groups/{route}/" in paths


@pytest.fixture
def described_groups(team, company):
    GroupTypeMapping.objects.create(team=team, project_id=team.project_id, group_type="org", group_type_index=1, created_at=T0)
    for index, key, properties in [
        (0, "a", {"industry": "tech", "seats": 10, "public": True}),
        (0, "b", {"industry": "tech", "seats": 10}),
        (0, "c", {"industry": "Finance", "plan": {"tier": 2}, "note": None}),
        (0, "d", {"industry": "fintech"}),
        (1, "o", {"region": "eu"}),
    ]:
        Group.objects.create(team=team, group_type_index=index, group_key=key, group_properties=properties)


def test_property_definitions(client, team, described_groups):
    from tests.factories import make_team
    Group.objects.create(team=make_team(team.organization, name="other"), group_type_index=0, group_key="x", group_properties={"secret": 1})
    response = client.get(f"/api/projects/{team.id}/groups/property_definitions/")
    assert response.status_code == 200
    # Keys per type index, most used first, then by name.
    assert response.json() == {
        "0": [{"name": "industry", "count": 4}, {"name": "seats", "count": 2}, {"name": "note", "count": 1}, {"name": "plan", "count": 1},
              {"name": "public", "count": 1}],
        "1": [{"name": "region", "count": 1}],
    }


def test_property_values(client, team, described_groups):
    url = f"/api/projects/{team.id}/groups/property_values/"
    response = client.get(url, {"group_type_index": 0, "key": "industry"})
    assert response.status_code == 200
    assert response.json() == {"results": [{"name": "tech", "count": 2}, {"name": "Finance", "count": 1}, {"name": "fintech", "count": 1}],
                               "refreshing": False}
    # Values containing the text, ignoring case; other JSON values as JSON text.
    assert client.get(url, {"group_type_index": 0, "key": "industry", "value": "FIN"}).json()["results"] == [
        {"name": "Finance", "count": 1}, {"name": "fintech", "count": 1}]
    assert client.get(url, {"group_type_index": 0, "key": "seats"}).json()["results"] == [{"name": "10", "count": 2}]
    assert client.get(url, {"group_type_index": 0, "key": "public"}).json()["results"] == [{"name": "true", "count": 1}]
    assert client.get(url, {"group_type_index": 0, "key": "note"}).json()["results"] == [{"name": "null", "count": 1}]
    assert client.get(url, {"group_type_index": 1, "key": "industry"}).json()["results"] == []


def test_property_values_needs_type_and_key(client, team):
    url = f"/api/projects/{team.id}/groups/property_values/"
    assert client.get(url, {"key": "industry"}).json() == error("validation_error", "invalid_input", "This query parameter is required.",
                                                                "group_type_index")
    assert client.get(url, {"group_type_index": 0}).json() == error("validation_error", "invalid_input", "This query parameter is required.",
                                                                    "key")


@pytest.mark.parametrize("path", ["property_definitions/", "property_values/?group_type_index=0&key=k", "related/?id=k"])
def test_read_endpoints_need_group_read(api_client, team, path):
    assert api_client(["group:read"]).get(f"/api/projects/{team.id}/groups/{path}").status_code == 200
    assert api_client(["insight:read"]).get(f"/api/projects/{team.id}/groups/{path}").status_code == 403
