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
