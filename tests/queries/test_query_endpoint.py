"""/api/projects/:id/query/ (and /api/environments/...): auth, scopes, validation, status and cancel."""
import pytest

from queries import execute_query
from tests.conftest import error
from tests.factories import make_team
from tests.queries.events import events

pytestmark = pytest.mark.django_db

QUERY = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "dateRange": {"date_from": "2020-01-01", "date_to": "2020-01-02"},
}


@pytest.mark.parametrize("family", ["projects", "environments"])
def test_both_url_families_and_optional_slash(client, team, family):
    events(team, ("$pageview", "a", "2020-01-01 10:00"))
    for path in (f"/api/{family}/{team.id}/query/", f"/api/{family}/{team.id}/query"):
        response = client.post(path, {"query": QUERY}, format="json")
        assert response.status_code == 200
        assert response.json()["results"][0]["data"] == [1, 0]


def test_current_team_alias(client, team):
    assert client.post("/api/projects/@current/query/", {"query": QUERY}, format="json").status_code == 200


def test_wrapped_insight_query(client, team):
    events(team, ("$pageview", "a", "2020-01-02 10:00"))
    response = client.post(f"/api/projects/{team.id}/query/", {"query": {"kind": "InsightVizNode", "source": QUERY}}, format="json")
    assert response.json()["results"][0]["data"] == [0, 1]


def test_anonymous_is_401(anon_client, team):
    response = anon_client.post(f"/api/projects/{team.id}/query/", {"query": QUERY}, format="json")
    assert response.status_code == 401
    assert response.json() == error("authentication_error", "not_authenticated", "Authentication credentials were not provided.")


@pytest.mark.parametrize("scopes, allowed", [(["query:read"], True), (["query:write"], True), (["insight:read"], False)])
def test_query_read_scope_covers_every_action(team, user, scopes, allowed, api_client):
    api = api_client(scopes)
    responses = [
        api.post(f"/api/projects/{team.id}/query/", {"query": QUERY}, format="json"),
        api.get(f"/api/projects/{team.id}/query/some-id/"),
        api.delete(f"/api/projects/{team.id}/query/some-id/"),
    ]
    if allowed:
        assert [r.status_code for r in responses] == [200, 404, 200]
    else:
        assert {r.status_code for r in responses} == {403}
        assert responses[0].json() == error("authentication_error", "permission_denied", "API key missing required scope 'query:read'")


def test_other_organizations_team_is_403_and_unknown_team_404(client, team):
    other = make_team()
    response = client.post(f"/api/projects/{other.id}/query/", {"query": QUERY}, format="json")
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", "You don't have access to the project.")
    response = client.post("/api/projects/999999/query/", {"query": QUERY}, format="json")
    assert response.status_code == 404
    assert response.json() == error("invalid_request", "not_found", "Project not found.")


def test_results_are_per_team(team, user, api_client):
    other = make_team(team.organization, name="Other env")
    events(team, ("$pageview", "a", "2020-01-01 10:00"))
    events(other, *[("$pageview", "b", "2020-01-01 10:00")] * 3)
    api = api_client()
    assert api.post(f"/api/projects/{team.id}/query/", {"query": QUERY}, format="json").json()["results"][0]["data"] == [1, 0]
    assert api.post(f"/api/projects/{other.id}/query/", {"query": QUERY}, format="json").json()["results"][0]["data"] == [3, 0]


def test_async_status_of_another_team_is_404(team, user, api_client):
    other = make_team(team.organization, name="Other env")
    status = execute_query(team, QUERY, refresh="force_async", client_query_id="mine")["query_status"]
    api = api_client()
    assert api.get(f"/api/projects/{team.id}/query/mine/").status_code == 202
    response = api.get(f"/api/projects/{other.id}/query/mine/")
    assert response.status_code == 404
    assert response.json() == error("invalid_request", "not_found", f"Query mine not found for team {other.id}")
    assert status["team_id"] == team.id


@pytest.mark.parametrize(
    "body, detail_start",
    [
        ({}, "JSON parse error - 1 validation error for QueryRequest\nquery\n  Field required"),
        ({"query": {"kind": "TrendsQuery"}}, "JSON parse error - 1 validation error for QueryRequest\nquery.TrendsQuery.series\n  Field required"),
        ({"query": {"kind": "Nope"}}, "JSON parse error - 1 validation error for QueryRequest\nquery\n  Input tag 'Nope' found using 'kind'"),
        ({"query": "SELECT 1"}, "JSON parse error - 1 validation error for QueryRequest\nquery\n  Input should be a valid dictionary"),
        ({"query": QUERY, "refresh": "sometimes"}, "JSON parse error - refresh must be a boolean or one of: force_cache, blocking"),
    ],
)
def test_invalid_requests_are_parse_errors(client, team, body, detail_start):
    response = client.post(f"/api/projects/{team.id}/query/", body, format="json")
    assert response.status_code == 400
    assert response.json()["type"] == "invalid_request" and response.json()["code"] == "parse_error"
    assert response.json()["detail"].startswith(detail_start)


def test_non_json_body(client, team):
    response = client.post(f"/api/projects/{team.id}/query/", "not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


@pytest.mark.parametrize(
    "query, detail",
    [
        ({"kind": "ActorsQuery"}, "Queries of kind ActorsQuery are not supported yet."),
        ({"kind": "InsightVizNode", "source": {"kind": "PathsQuery", "pathsFilter": {}}, "showHeader": True}, None),
        ({"kind": "TrendsQuery", "series": []}, "A TrendsQuery needs at least one series."),
        ({"kind": "TrendsQuery", "series": [{"kind": "DataWarehouseNode", "id": "t", "table_name": "t", "timestamp_field": "ts", "id_field": "id", "distinct_id_field": "d"}]},
         "DataWarehouseNode series are not supported; use EventsNode or ActionsNode."),
        ({**QUERY, "trendsFilter": {"display": "CalendarHeatmap"}}, "The CalendarHeatmap display is not supported."),
        ({**QUERY, "properties": [{"type": "feature", "key": "beta", "value": True, "operator": "exact"}]},
         "Property filters of type 'feature' are not supported."),
        ({**QUERY, "properties": [{"type": "data_warehouse", "key": "x", "value": 1, "operator": "exact"}]},
         "Property filters of type 'data_warehouse' are not supported."),
        ({**QUERY, "properties": [{"type": "recording", "key": "duration", "value": 1, "operator": "gt"}]},
         "Property filters of type 'recording' are not supported."),
        ({**QUERY, "properties": [{"type": "event", "key": "flag", "value": True, "operator": "flag_evaluates_to"}]},
         "The flag_evaluates_to operator is not supported."),
        ({**QUERY, "series": [{"kind": "EventsNode", "math": "sum"}]}, "Math 'sum' needs a math_property."),
        ({**QUERY, "kind": "FunnelsQuery", "aggregation_group_type_index": 9}, "Invalid group type index: 9 (0 to 4)."),
        ({**QUERY, "series": [{"kind": "EventsNode", "math": "hogql", "math_hogql": "properties.x"}]},
         "math_hogql must be an aggregation, such as count() or sum(toFloat(properties.price))."),
    ],
)
def test_unsupported_queries_are_400(client, team, query, detail):
    response = client.post(f"/api/projects/{team.id}/query/", {"query": query}, format="json")
    if detail is None:  # a wrapper around a supported kind runs its source
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", detail)


def test_unknown_keys_are_accepted(client, team):
    query = {**QUERY, "someNewField": {"x": 1}, "series": [{"kind": "EventsNode", "event": "$pageview", "newSeriesKey": True}]}
    response = client.post(f"/api/projects/{team.id}/query/", {"query": query, "extra": 1}, format="json")
    assert response.status_code == 200


def test_query_status_and_cancel(client, team):
    # In a test transaction the job is never dispatched, so it stays queued until cancelled.
    started = client.post(f"/api/projects/{team.id}/query/", {"query": QUERY, "refresh": "force_async", "client_query_id": "q1"}, format="json")
    assert started.status_code == 202
    status = started.json()["query_status"]
    assert set(status) == {
        "id", "query_async", "team_id", "insight_id", "dashboard_id", "error", "complete", "error_message", "results",
        "pickup_time", "start_time", "end_time", "expiration_time", "task_id", "query_progress", "labels",
    }
    polled = client.get(f"/api/projects/{team.id}/query/q1/")
    assert polled.status_code == 202
    assert polled.json() == {"query_status": status}
    cancelled = client.delete(f"/api/projects/{team.id}/query/q1/")
    assert cancelled.status_code == 200 and cancelled.json() == {"message": "Query cancelled"}
    gone = client.get(f"/api/projects/{team.id}/query/q1/")
    assert gone.status_code == 404
    assert gone.json() == error("invalid_request", "not_found", f"Query q1 not found for team {team.id}")


def test_a_job_silent_for_too_long_is_reported_failed(client, team, clock):
    clock("2020-01-10 12:00:00")
    client.post(f"/api/projects/{team.id}/query/", {"query": QUERY, "refresh": "force_async", "client_query_id": "stuck"}, format="json")
    clock("2020-01-10 12:09:59")
    assert client.get(f"/api/projects/{team.id}/query/stuck/").status_code == 202
    clock("2020-01-10 12:10:01")
    response = client.get(f"/api/projects/{team.id}/query/stuck/")
    assert response.status_code == 400
    status = response.json()["query_status"]
    assert status["complete"] is True and status["error"] is True
    assert status["error_message"] == "The query did not finish within 600 seconds; its worker may have stopped. Please retry."
    # cancelling a finished job changes nothing
    assert client.delete(f"/api/projects/{team.id}/query/stuck/").json() == {"message": "Query already complete"}


def test_openapi_operations(client):
    schema = client.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    assert paths["/api/projects/{project_id}/query/"]["post"]["operationId"] == "query_create"
    assert paths["/api/projects/{project_id}/query/{query_id}/"]["get"]["operationId"] == "query_retrieve"
    assert paths["/api/projects/{project_id}/query/{query_id}/"]["delete"]["operationId"] == "query_destroy"
    assert paths["/api/environments/{project_id}/query/"]["post"]["operationId"] == "environments_query_create"
    assert paths["/api/projects/{project_id}/query/"]["post"]["security"][0] == {"PersonalAPIKeyAuth": ["query:read"]}


def test_filters_override_applies_dashboard_filters(client, team):
    events(
        team,
        ("$pageview", "a", "2020-01-01 10:00", {"$browser": "Chrome"}),
        ("$pageview", "a", "2020-01-03 10:00", {"$browser": "Chrome"}),
        ("$pageview", "a", "2020-01-03 11:00", {"$browser": "Safari"}),
    )
    query = {**QUERY, "properties": [{"key": "$browser", "operator": "is_set", "type": "event"}]}
    override = {"date_from": "2020-01-02", "date_to": "2020-01-03", "properties": [{"key": "$browser", "value": "Chrome", "type": "event"}]}
    body = client.post(f"/api/projects/{team.id}/query/", {"query": query, "filters_override": override}, format="json").json()
    assert body["results"][0]["days"] == ["2020-01-02", "2020-01-03"]
    assert body["results"][0]["data"] == [0, 1]


def test_variables_override_sets_the_variables_the_sql_declares(client, team):
    query = {"kind": "HogQLQuery", "query": "select {variables.n} + 1",
             "variables": {"v1": {"variableId": "v1", "code_name": "n", "value": 1}}}
    url = f"/api/projects/{team.id}/query/"
    assert client.post(url, {"query": query}, format="json").json()["results"] == [[2]]
    body = client.post(url, {"query": query, "variables_override": {"v1": {"value": 41}, "other": {"value": 0}}}, format="json").json()
    assert body["results"] == [[42]]
    assert client.post(url, {"query": query, "variables_override": {"v1": {"isNull": True}}}, format="json").json()["results"] == [[None]]


def test_a_malformed_filters_override_is_400(client, team):
    response = client.post(f"/api/projects/{team.id}/query/", {"query": QUERY, "filters_override": {"properties": "x"}}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Invalid dashboard filters: properties")
