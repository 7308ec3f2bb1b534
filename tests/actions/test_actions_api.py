"""/api/projects/:id/actions/ (and /api/environments/...): the wire of PostHog's actions API
(spec/vocabulary.md §1.3): fields, normalised steps, name uniqueness, soft delete, 405 on DELETE,
pinning, scopes, activity log, and a list whose query count does not grow with its length."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions.models import Action
from activity.models import ActivityLog
from tests.conftest import error
from tests.factories import ActionFactory, make_member, make_team
from tests.scopes import Action as ScopeAction
from tests.scopes import ScopeTestCases

pytestmark = pytest.mark.django_db

KEYS = ["id", "name", "description", "tags", "post_to_slack", "slack_message_format", "steps", "created_at", "created_by",
        "deleted", "is_calculating", "last_calculated_at", "team_id", "is_action", "bytecode_error", "pinned_at",
        "creation_context", "user_access_level"]
STEP_KEYS = ["event", "properties", "selector", "selector_regex", "tag_name", "text", "text_matching", "href", "href_matching",
             "url", "url_matching"]


@pytest.fixture
def url(team):
    return f"/api/projects/{team.id}/actions/"


def create(client, url, **body):
    response = client.post(url, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_answers_posthogs_fields_with_normalised_steps(client, url, user, team):
    body = create(client, url, name="Signed up", steps=[{"event": "$pageview", "url": "/signup"}])
    assert list(body) == KEYS
    assert body["steps"] == [{"event": "$pageview", "properties": None, "selector": None, "selector_regex": None, "tag_name": None,
                              "text": None, "text_matching": None, "href": None, "href_matching": None, "url": "/signup",
                              "url_matching": "contains"}]
    assert list(body["steps"][0]) == STEP_KEYS
    assert body["created_by"]["id"] == user.id and body["team_id"] == team.id
    assert (body["is_calculating"], body["is_action"], body["deleted"], body["creation_context"]) == (False, True, False, None)
    assert body["bytecode_error"] is None and body["pinned_at"] is None and body["tags"] == []


def test_selector_regex_is_derived_and_read_only(client, url):
    body = create(client, url, name="Clicked buy", steps=[{"event": "$autocapture", "selector": "div > a.buy", "selector_regex": "x"}])
    assert body["steps"][0]["selector_regex"].startswith("(?:^|;)a")


def test_blank_name_is_400(client, url):
    response = client.post(url, {"name": "  "}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "blank", "This field may not be blank.", "name")


def test_name_unique_among_live_actions(client, url, team):
    first = create(client, url, name="Dup")
    response = client.post(url, {"name": "Dup"}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "unique", f"This project already has an action with this name, ID {first['id']}", "name")
    client.patch(f"{url}{first['id']}/", {"deleted": True}, format="json")
    assert create(client, url, name="Dup")["name"] == "Dup"
    # Restoring the first would make two live actions of one name.
    response = client.patch(f"{url}{first['id']}/", {"deleted": False}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "unique"


def test_invalid_matching_is_400(client, url):
    response = client.post(url, {"name": "x", "steps": [{"url": "/a", "url_matching": "fuzzy"}]}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_choice", '"fuzzy" is not a valid choice.', "steps__0__url_matching")


def test_a_regex_our_engines_cannot_run_is_reported_in_bytecode_error(client, url):
    body = create(client, url, name="r", steps=[{"event": "$pageview", "url": "(?=x)", "url_matching": "regex"}])
    assert body["bytecode_error"].startswith("Invalid regular expression in url")


def test_list_is_unpaginated_newest_first_without_deleted(client, url, team):
    a = create(client, url, name="b first")
    b = create(client, url, name="a second")
    client.patch(f"{url}{a['id']}/", {"deleted": True}, format="json")
    ActionFactory(team=make_team(team.organization, name="other"))  # another environment's action
    response = client.get(url)
    assert response.status_code == 200
    assert list(response.json()) == ["results"]
    assert [item["id"] for item in response.json()["results"]] == [b["id"]]


def test_list_query_count_does_not_grow(client, url, team, user):
    ActionFactory.create_batch(2, team=team, created_by=user)
    client.get(url)  # the key's first use is recorded once
    with CaptureQueriesContext(connection) as few:
        assert len(client.get(url).json()["results"]) == 2
    ActionFactory.create_batch(20, team=team, created_by=make_member(team))
    with CaptureQueriesContext(connection) as many:
        assert len(client.get(url).json()["results"]) == 22
    assert len(many.captured_queries) == len(few.captured_queries) <= 4


def test_retrieve_finds_deleted_actions_and_delete_is_405(client, url, team):
    action = ActionFactory(team=team, deleted=True)
    assert client.get(f"{url}{action.id}/").json()["deleted"] is True
    assert client.delete(f"{url}{action.id}/").status_code == 405
    assert Action.objects.filter(id=action.id).exists()


def test_patch_replaces_steps_and_logs_activity(client, url, team):
    body = create(client, url, name="Steps", steps=[{"event": "a"}, {"event": "b"}])
    response = client.patch(f"{url}{body['id']}/", {"steps": [{"event": "c"}]}, format="json")
    assert response.status_code == 200
    assert [step["event"] for step in response.json()["steps"]] == ["c"]
    client.patch(f"{url}{body['id']}/", {"deleted": True}, format="json")
    entries = list(ActivityLog.objects.filter(scope="Action", item_id=str(body["id"])).order_by("created_at").values_list("activity", flat=True))
    assert entries == ["created", "updated", "deleted"]
    assert client.get(f"/api/projects/{team.id}/activity_log/").status_code in (200, 404)


def test_pinning_uses_the_server_time_and_unpins_with_null_or_blank(client, url):
    body = create(client, url, name="Pin")
    item = f"{url}{body['id']}/"
    pinned = client.patch(item, {"pinned_at": "2000-01-01T00:00:00Z"}, format="json").json()["pinned_at"]
    assert pinned is not None and not pinned.startswith("2000")
    assert client.patch(item, {"pinned_at": "2001-01-01T00:00:00Z"}, format="json").json()["pinned_at"] == pinned
    assert client.patch(item, {"pinned_at": ""}, format="json").json()["pinned_at"] is None
    client.patch(item, {"pinned_at": True}, format="json")
    assert client.patch(item, {"pinned_at": None}, format="json").json()["pinned_at"] is None


def test_environment_routes_and_other_teams(client, team, api_client):
    action = ActionFactory(team=team)
    assert client.get(f"/api/environments/{team.id}/actions/{action.id}/").status_code == 200
    other = ActionFactory(team=make_team(name="not mine"))
    assert client.get(f"/api/projects/{team.id}/actions/{other.id}/").status_code == 404
    assert client.get(f"/api/projects/{team.id}/actions/abc/").status_code == 404


def test_tags_are_normalised(client, url):
    assert create(client, url, name="T", tags=["B", " a ", "b"])["tags"] == ["a", "b"]


class TestActionScopes(ScopeTestCases.ReadActions, ScopeTestCases.WriteActions):
    url = "/api/projects/{team.id}/actions/"
    unrelated_scope = "insight:read"
    actions = {
        "list": ScopeAction("get", "", "action:read"),
        "retrieve": ScopeAction("get", "{obj.id}/", "action:read"),
        "create": ScopeAction("post", "", "action:write", status=201, body={"name": "new one"}),
        "partial_update": ScopeAction("patch", "{obj.id}/", "action:write", body={"description": "d"}),
    }

    def make_object(self, team, user):
        return ActionFactory(team=team, created_by=user)


def test_openapi_documents_the_unpaginated_list_and_every_route(client):
    schema = client.get("/api/schema/?format=json").json()
    for prefix, op in (("/api/projects/{project_id}/actions/", "actions"), ("/api/environments/{project_id}/actions/", "environments_actions")):
        listed = schema["paths"][prefix]["get"]
        assert listed["operationId"] == f"{op}_list"
        assert listed["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ActionListResponse"}
        assert set(schema["paths"][prefix + "{id}/"]) >= {"get", "put", "patch", "delete"}
    assert schema["components"]["schemas"]["ActionListResponse"]["properties"]["results"]["items"] == {"$ref": "#/components/schemas/Action"}
