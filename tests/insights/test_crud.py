"""Create, retrieve, update, soft delete and restore insights (spec §1, §3)."""
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from insights.models import DashboardTile, Insight, InsightViewed
from tests.conftest import error
from tests.factories import make_member, make_team

from .conftest import (
    BASIC_KEYS,
    FULL_KEYS,
    SQL_QUERY,
    TRENDS_QUERY,
    USER_BASIC_KEYS,
    make_dashboard,
    make_insight,
    put_on,
)

pytestmark = pytest.mark.django_db


# -- create ------------------------------------------------------------------------------------


def test_create_returns_the_full_insight(client, team, user, base):
    response = client.post(base, {"name": "Weekly pageviews", "query": TRENDS_QUERY, "description": "d"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert list(body) == FULL_KEYS
    assert re.fullmatch(r"[A-Za-z0-9]{8}", body["short_id"])
    assert body["name"] == "Weekly pageviews"
    assert body["derived_name"] is None
    assert body["description"] == "d"
    assert body["filters"] == {}
    assert body["query"] == TRENDS_QUERY
    assert body["order"] is None
    assert body["deleted"] is False
    assert body["dashboards"] == [] and body["dashboard_tiles"] == [] and body["tags"] == []
    assert body["favorited"] is False and body["saved"] is True and body["is_sample"] is False
    assert list(body["created_by"]) == USER_BASIC_KEYS
    assert body["created_by"]["id"] == user.id and body["created_by"]["email"] == user.email
    assert body["last_modified_by"]["id"] == user.id
    assert body["effective_restriction_level"] == 21
    assert body["effective_privilege_level"] == 37
    assert body["user_access_level"] == "editor"
    assert body["alerts"] == []
    # Results are not computed on create (default refresh is force_cache): a cache miss.
    for key in ("result", "hasMore", "columns", "last_refresh", "cache_target_age", "next_allowed_client_refresh",
                "query_status", "hogql", "types", "resolved_date_range", "timezone"):
        assert body[key] is None, key
    assert body["filters_hash"].startswith("cache_")  # the key the result will be cached under
    assert body["is_cached"] is False
    assert "Location" not in response


def test_creator_gets_a_view_record(client, team, user, base):
    body = client.post(base, {"name": "x", "query": TRENDS_QUERY}, format="json").json()
    view = InsightViewed.objects.get(insight_id=body["id"])
    assert (view.team_id, view.user_id) == (team.id, user.id)
    assert body["last_viewed_at"] is not None


def test_create_applies_dashboards_and_normalised_tags(client, team, base):
    first, second = make_dashboard(team), make_dashboard(team)
    response = client.post(
        base,
        {"name": "x", "query": TRENDS_QUERY, "dashboards": [first.id, second.id], "tags": ["Growth", " growth ", "KPI"]},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert sorted(body["dashboards"]) == [first.id, second.id]
    assert sorted(tile["dashboard_id"] for tile in body["dashboard_tiles"]) == [first.id, second.id]
    assert all(list(tile) == ["id", "dashboard_id", "deleted"] and tile["deleted"] is False for tile in body["dashboard_tiles"])
    assert body["tags"] == ["growth", "kpi"]


def test_create_with_legacy_filters(client, base):
    # Filters that convert show the converted query instead, as PostHog (they stay stored as sent).
    funnel = client.post(base, {"name": "legacy", "filters": {"insight": "FUNNELS", "events": []}}, format="json").json()
    assert funnel["filters"] == {}
    assert (funnel["query"]["kind"], funnel["query"]["source"]["kind"], funnel["query"]["full"]) == ("InsightVizNode", "FunnelsQuery", True)
    assert Insight.objects.get(id=funnel["id"]).filters == {"insight": "FUNNELS", "events": []}
    # A legacy insight without a type is a trends insight.
    untyped = client.post(base, {"name": "legacy", "filters": {"events": []}}, format="json").json()
    assert (untyped["filters"], untyped["query"]["source"]["kind"]) == ({}, "TrendsQuery")
    # Filters that do not convert are shown as stored, without a query.
    broken = client.post(base, {"name": "legacy", "filters": {"events": "{not json"}}, format="json").json()
    assert (broken["filters"], broken["query"]) == ({"events": "{not json", "insight": "TRENDS"}, None)


@pytest.mark.parametrize(
    "query",
    [
        TRENDS_QUERY,
        SQL_QUERY,
        {"kind": "InsightVizNode", "source": {"kind": "FunnelsQuery", "series": []}},
        {"kind": "InsightVizNode", "source": {"kind": "RetentionQuery", "retentionFilter": {}}},
        {"kind": "InsightVizNode", "source": {"kind": "PathsQuery", "pathsFilter": {}}},
        {"kind": "InsightVizNode", "source": {"kind": "StickinessQuery", "series": []}},
        {"kind": "InsightVizNode", "source": {"kind": "LifecycleQuery", "series": [{"kind": "ActionsNode", "id": 1}]}},
        {"kind": "DataTableNode", "source": {"kind": "EventsQuery", "select": ["*", "event"]}},
        {"kind": "DataTableNode", "source": {"kind": "HogQLQuery", "query": "select 1"}},
        {"kind": "HogQLQuery", "query": "select 1"},
        {"kind": "TrendsQuery", "series": [], "dateRange": {"date_from": "-7d"}},
        {},
        None,
    ],
)
def test_create_accepts_known_query_nodes(client, base, query):
    response = client.post(base, {"name": "x", "query": query}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["query"] == query


@pytest.mark.parametrize(
    "payload, expected",
    [
        ({"query": "abc"}, error("validation_error", "invalid_input", "Query must be a valid JSON object", "query")),
        ({"query": [1]}, error("validation_error", "invalid_input", "Query must be a valid JSON object", "query")),
        ({"query": {"kind": "Nope"}}, error("invalid_request", "parse_error", "kind: unsupported query kind 'Nope'")),
        ({"query": {"source": {}}}, error("invalid_request", "parse_error", "query.kind: field required")),
        ({"query": {"kind": "InsightVizNode"}}, error("invalid_request", "parse_error", "source: field required")),
        (
            {"query": {"kind": "InsightVizNode", "source": {"kind": "HogQLQuery", "query": "select 1"}}},
            error("invalid_request", "parse_error", "source: InsightVizNode cannot wrap a HogQLQuery"),
        ),
        (
            {"query": {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery"}}},
            error("invalid_request", "parse_error", "source.series: must be a list"),
        ),
        (
            {"query": {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [{"kind": "Foo"}]}}},
            error("invalid_request", "parse_error", "source.series.0.kind: unsupported series kind 'Foo'"),
        ),
        (
            {"query": {"kind": "InsightVizNode", "source": {"kind": "RetentionQuery"}}},
            error("invalid_request", "parse_error", "source.retentionFilter: must be an object"),
        ),
        (
            {"query": {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery"}}},
            error("invalid_request", "parse_error", "source.query: must be a string"),
        ),
        (
            {"query": {"kind": "TrendsQuery", "series": [], "dateRange": "last week"}},
            error("invalid_request", "parse_error", "query.dateRange: must be an object"),
        ),
        (
            {"name": "x" * 401},
            error("validation_error", "max_length", "Ensure this field has no more than 400 characters.", "name"),
        ),
        (
            {"description": "x" * 401},
            error("validation_error", "max_length", "Ensure this field has no more than 400 characters.", "description"),
        ),
        ({"tags": "growth"}, error("validation_error", "not_a_list", 'Expected a list of items but got type "str".', "tags")),
        ({"tags": [["a"]]}, error("validation_error", "invalid_input", "Not a valid string.", "tags__0")),
        ({"dashboards": 5}, error("validation_error", "not_a_list", 'Expected a list of items but got type "int".', "dashboards")),
        (
            {"dashboards": [999999]},
            error("validation_error", "does_not_exist", 'Invalid pk "999999" - object does not exist.', "dashboards"),
        ),
        ({"order": "first"}, error("validation_error", "invalid_input", "A valid integer is required.", "order")),
        (
            {"order": 2**31},
            error("validation_error", "max_value", "Ensure this value is less than or equal to 2147483647.", "order"),
        ),
        ({"filters": [1]}, error("validation_error", "invalid_input", "Filters must be a valid JSON object", "filters")),
        ({"favorited": "maybe"}, error("validation_error", "invalid_input", "Must be a valid boolean.", "favorited")),
    ],
)
def test_create_rejects_bad_input(client, base, payload, expected):
    response = client.post(base, {"name": "x", "query": TRENDS_QUERY, **payload}, format="json")
    assert response.status_code == 400
    assert response.json() == expected
    assert not Insight.objects_including_soft_deleted.exists()


def test_create_rejects_non_object_and_non_json_bodies(client, base):
    response = client.post(base, [1, 2], format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", "Invalid data. Expected a dictionary, but got list.")
    malformed = client.generic("POST", base, "{not json", content_type="application/json")
    assert malformed.status_code == 400
    assert malformed.json()["type"] == "invalid_request" and malformed.json()["code"] == "parse_error"
    form = client.post(base, {"name": "x"})  # multipart
    assert form.status_code == 415
    assert form.json()["code"] == "unsupported_media_type"


def test_dashboards_must_belong_to_the_environment(client, team, base):
    other_project = make_dashboard(make_team())
    response = client.post(base, {"name": "x", "dashboards": [other_project.id]}, format="json")
    assert response.json() == error(
        "validation_error", "does_not_exist", f'Invalid pk "{other_project.id}" - object does not exist.', "dashboards"
    )
    # Another environment of the same project: visible, but tiles stay within one environment.
    sibling = make_team(team.organization)
    sibling.project = team.project
    sibling.save()
    response = client.post(base, {"name": "x", "dashboards": [make_dashboard(sibling).id]}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", "Dashboard not found")
    assert not Insight.objects_including_soft_deleted.exists()


# -- retrieve ----------------------------------------------------------------------------------


def test_retrieve_by_id_and_by_short_id(client, base, team):
    insight = make_insight(team, name="Signups")
    by_id = client.get(f"{base}{insight.id}/")
    by_short_id = client.get(f"{base}{insight.short_id}")  # optional trailing slash
    assert by_id.status_code == by_short_id.status_code == 200
    assert list(by_id.json()) == FULL_KEYS
    assert by_id.json()["id"] == by_short_id.json()["id"] == insight.id
    assert by_id.json()["short_id"] == insight.short_id


def test_numeric_lookup_falls_back_to_short_id(client, base, team):
    insight = make_insight(team, short_id="12345678")
    assert client.get(f"{base}12345678/").json()["id"] == insight.id
    assert client.get(f"{base}{'9' * 30}/").status_code == 404


@pytest.mark.parametrize("lookup", ["999999", "nOtThErE", "0"])
def test_unknown_insight_is_404(client, base, lookup):
    response = client.get(f"{base}{lookup}/")
    assert response.status_code == 404
    assert response.json() == error("invalid_request", "not_found", "Not found.")


def test_other_tenants_insights_are_invisible(client, base, team, user):
    foreign = make_insight(make_team(), name="secret")
    for lookup in (foreign.id, foreign.short_id):
        assert client.get(f"{base}{lookup}/").status_code == 404
        assert client.patch(f"{base}{lookup}/", {"name": "pwned"}, format="json").status_code == 404
    foreign.refresh_from_db()
    assert foreign.name == "secret"
    # And the other team's URL is refused outright.
    response = client.get(f"/api/projects/{foreign.team_id}/insights/{foreign.id}/")
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", "You don't have access to the project.")


def test_insights_are_project_wide_across_environments(client, team):
    sibling = make_team(team.organization)
    sibling.project = team.project
    sibling.save()
    insight = make_insight(sibling)
    for family in ("projects", "environments"):
        for team_id in (team.id, sibling.id):
            response = client.get(f"/api/{family}/{team_id}/insights/{insight.short_id}/")
            assert response.status_code == 200, (family, team_id)


def test_basic_retrieve(client, base, team):
    insight = make_insight(team)
    body = client.get(f"{base}{insight.id}/?basic=true").json()
    assert list(body) == BASIC_KEYS


def test_from_dashboard_adds_tile_color_and_layouts(client, base, team):
    insight, dashboard = make_insight(team), make_dashboard(team)
    put_on(insight, dashboard, color="blue", layouts={"sm": {"x": 0, "y": 0, "w": 6, "h": 5}})
    body = client.get(f"{base}{insight.id}/?from_dashboard={dashboard.id}").json()
    assert list(body) == [*FULL_KEYS, "color", "layouts"]
    assert body["color"] == "blue"
    assert body["layouts"] == {"sm": {"x": 0, "y": 0, "w": 6, "h": 5}}
    # Layouts stored as a JSON string by older versions are parsed.
    DashboardTile.objects.filter(insight=insight).update(layouts='{"lg": {"w": 12}}')
    assert client.get(f"{base}{insight.id}/?from_dashboard={dashboard.id}").json()["layouts"] == {"lg": {"w": 12}}
    # Not on that dashboard: the plain insight.
    other = make_dashboard(team)
    assert list(client.get(f"{base}{insight.id}/?from_dashboard={other.id}").json()) == FULL_KEYS


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "9" * 30])
def test_from_dashboard_must_be_an_id(client, base, team, value):
    insight = make_insight(team)
    response = client.get(f"{base}{insight.id}/", {"from_dashboard": value})
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", "A valid integer is required.", "from_dashboard")


@pytest.mark.parametrize("param", ["filters_override", "variables_override"])
@pytest.mark.parametrize("value", ["{not json", "[1, 2]", '"text"', "null"])
def test_overrides_must_be_json_objects(client, base, team, param, value):
    insight = make_insight(team)
    response = client.get(f"{base}{insight.id}/", {param: value})
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", f"Invalid JSON passed in {param} parameter", param)


def test_valid_overrides_are_accepted(client, base, team):
    insight = make_insight(team)
    response = client.get(f"{base}{insight.id}/", {"filters_override": '{"date_from": "-30d"}', "variables_override": "{}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "value",
    ["true", "TRUE", "1", "yes", "", "false", "0", "no", "force_cache", "blocking", "force_blocking", "async",
     "force_async", "lazy_async", "async_except_on_cache_miss"],
)
def test_refresh_values_are_accepted(client, base, team, value):
    insight = make_insight(team)
    assert client.get(base, {"refresh": value}).status_code == 200
    assert client.get(f"{base}{insight.id}/", {"refresh": value}).status_code == 200


@pytest.mark.parametrize("value", ["bogus", "Force_Cache", "FORCE_BLOCKING", "2", "async\x00"])
def test_unknown_refresh_means_the_default(client, base, team, value):
    """As PostHog reads `refresh`: a value that names no mode is the default, force_cache (never computes)."""
    insight = make_insight(team, query=SQL_QUERY)
    for url in (base, f"{base}{insight.id}/"):
        response = client.get(url, {"refresh": value})
        assert response.status_code == 200
        body = response.json()
        body = body["results"][0] if "results" in body else body
        assert (body["result"], body["is_cached"], body["last_refresh"]) == (None, False, None)
    computed = client.get(f"{base}{insight.id}/", {"refresh": "force_blocking"}).json()
    assert computed["result"] == [[0]]
    cached = client.get(f"{base}{insight.id}/", {"refresh": value}).json()
    assert (cached["result"], cached["is_cached"], cached["last_refresh"]) == ([[0]], True, computed["last_refresh"])


# -- update ------------------------------------------------------------------------------------


def test_material_fields_bump_last_modified(client, base, team, user):
    other = make_member(team)
    earlier = timezone.now() - timedelta(days=3)
    insight = make_insight(team, last_modified_at=earlier, last_modified_by=other)
    for payload in ({"favorited": True}, {"query": SQL_QUERY}, {"derived_name": "Derived"}, {"tags": ["a"]}):
        body = client.patch(f"{base}{insight.id}/", payload, format="json").json()
        assert body["last_modified_by"]["id"] == other.id, payload
        assert body["last_modified_at"] == earlier.isoformat().replace("+00:00", "Z"), payload
    for payload in ({"name": "Renamed"}, {"description": "same"}, {"filters": {}}):
        Insight.objects.filter(pk=insight.pk).update(last_modified_at=earlier, last_modified_by=other)
        body = client.patch(f"{base}{insight.id}/", payload, format="json").json()
        assert body["last_modified_by"]["id"] == user.id, payload
        assert body["last_modified_at"] > earlier.isoformat(), payload


def test_any_update_resets_is_sample_and_saves(client, base, team):
    insight = make_insight(team, is_sample=True, saved=False)
    body = client.patch(f"{base}{insight.id}/", {"favorited": True}, format="json").json()
    assert body["is_sample"] is False and body["saved"] is True and body["favorited"] is True
    unsaved = client.patch(f"{base}{insight.id}/", {"saved": False}, format="json").json()
    assert unsaved["saved"] is False


def test_read_only_fields_are_ignored(client, base, team, user):
    insight = make_insight(team)
    payload = {"short_id": "hijacked", "created_by": 999, "is_sample": True, "id": 12345, "result": [1]}
    body = client.patch(f"{base}{insight.id}/", payload, format="json").json()
    assert body["short_id"] == insight.short_id and body["id"] == insight.id and body["is_sample"] is False


def test_put_updates_like_patch(client, base, team):
    insight = make_insight(team, name="old")
    response = client.put(f"{base}{insight.short_id}/", {"name": "new", "query": SQL_QUERY}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "new" and response.json()["query"] == SQL_QUERY
    assert client.get(f"{base}{insight.id}/").json()["description"] is None


def test_update_validates_like_create(client, base, team):
    insight = make_insight(team)
    response = client.patch(f"{base}{insight.id}/", {"query": "abc"}, format="json")
    assert response.json() == error("validation_error", "invalid_input", "Query must be a valid JSON object", "query")
    response = client.patch(f"{base}{insight.id}/", {"query": {"kind": "Nope"}}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "parse_error"


def test_update_dashboards_adds_and_soft_deletes_tiles(client, base, team):
    insight = make_insight(team)
    first, second, third = make_dashboard(team), make_dashboard(team), make_dashboard(team)
    url = f"{base}{insight.id}/"
    body = client.patch(url, {"dashboards": [first.id, second.id]}, format="json").json()
    assert sorted(body["dashboards"]) == [first.id, second.id]
    original_tile = DashboardTile.objects.get(insight=insight, dashboard=first)

    body = client.patch(url, {"dashboards": [second.id, third.id]}, format="json").json()
    assert sorted(body["dashboards"]) == [second.id, third.id]
    assert DashboardTile.objects_including_soft_deleted.get(pk=original_tile.pk).deleted is True

    # Re-adding re-uses the old tile.
    body = client.patch(url, {"dashboards": [first.id]}, format="json").json()
    assert body["dashboards"] == [first.id]
    assert body["dashboard_tiles"] == [{"id": original_tile.id, "dashboard_id": first.id, "deleted": False}]

    # Deleted dashboards in the list are ignored; an empty list removes every tile.
    third.deleted = True
    third.save()
    assert client.patch(url, {"dashboards": [first.id, third.id]}, format="json").json()["dashboards"] == [first.id]
    assert client.patch(url, {"dashboards": []}, format="json").json()["dashboards"] == []


def test_tiles_on_deleted_dashboards_are_hidden(client, base, team):
    insight, dashboard = make_insight(team), make_dashboard(team)
    put_on(insight, dashboard)
    dashboard.deleted = True
    dashboard.save()
    body = client.get(f"{base}{insight.id}/").json()
    assert body["dashboards"] == [] and body["dashboard_tiles"] == []


def test_update_tags_replaces_them(client, base, team):
    insight = make_insight(team, tags=["a", "b"])
    url = f"{base}{insight.id}/"
    assert client.patch(url, {"tags": ["B", "c"]}, format="json").json()["tags"] == ["b", "c"]
    assert client.patch(url, {"name": "no tags key"}, format="json").json()["tags"] == ["b", "c"]
    assert client.patch(url, {"tags": []}, format="json").json()["tags"] == []


# -- soft delete and restore -------------------------------------------------------------------


def test_soft_delete_hides_the_insight_and_its_tiles(client, base, team):
    insight, dashboard = make_insight(team), make_dashboard(team)
    put_on(insight, dashboard)
    response = client.patch(f"{base}{insight.id}/", {"deleted": True, "dashboards": [dashboard.id]}, format="json")
    assert response.status_code == 200
    assert response.json()["deleted"] is True
    assert client.get(f"{base}{insight.id}/").status_code == 404
    assert client.get(f"{base}{insight.short_id}/").status_code == 404
    assert client.get(base).json()["count"] == 0
    assert client.patch(f"{base}{insight.id}/", {"name": "edit"}, format="json").status_code == 404
    assert DashboardTile.objects_including_soft_deleted.get(insight=insight).deleted is True
    assert Insight.objects_including_soft_deleted.filter(pk=insight.pk).exists()


def test_restore_with_deleted_false(client, base, team):
    insight, dashboard = make_insight(team, deleted=True), make_dashboard(team)
    put_on(insight, dashboard, deleted=True)
    # Only the boolean false reaches a deleted insight.
    assert client.patch(f"{base}{insight.id}/", {"deleted": "false"}, format="json").status_code == 404
    response = client.patch(f"{base}{insight.short_id}/", {"deleted": False}, format="json")
    assert response.status_code == 200
    assert response.json()["deleted"] is False
    assert response.json()["dashboards"] == []  # restoring does not bring tiles back
    assert client.get(f"{base}{insight.id}/").status_code == 200
    # PUT cannot restore.
    Insight.objects_including_soft_deleted.filter(pk=insight.pk).update(deleted=True)
    assert client.put(f"{base}{insight.id}/", {"deleted": False}, format="json").status_code == 404


def test_delete_is_405_with_empty_body(client, base, team):
    insight = make_insight(team)
    for lookup in (insight.id, 999999, "whatever"):
        response = client.delete(f"{base}{lookup}/")
        assert response.status_code == 405
        assert response.content == b""
    assert Insight.objects.filter(pk=insight.pk).exists()


def test_delete_checks_credentials_first(anon_client, team, user, base, api_client):
    assert anon_client.delete(f"{base}1/").status_code == 401
    read_only = api_client(["insight:read"]).delete(f"{base}1/")
    assert read_only.status_code == 403
    assert read_only.json() == error("authentication_error", "permission_denied", "API key missing required scope 'insight:write'")


# -- CSV ---------------------------------------------------------------------------------------


def test_list_as_csv(client, base, team):
    make_insight(team, name="first", tags=["b", "a"])
    make_insight(team, name="second")
    for response in (client.get(base, {"format": "csv"}), client.get(base, HTTP_ACCEPT="text/csv")):
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        header, row, *rest = response.content.decode().splitlines()
        columns = header.split(",")
        assert rest == []  # the whole page is one flattened row
        assert columns == sorted(columns)
        assert {"count", "next", "previous", "results.0.name", "results.1.name", "results.0.tags.0", "results.0.created_at"} <= set(columns)
        values = dict(zip(columns, row.split(",")))
        assert values["count"] == "2"
        assert values["results.0.name"] == "first" and values["results.1.name"] == "second"
        assert (values["results.0.tags.0"], values["results.0.tags.1"]) == ("a", "b")


def test_retrieve_as_csv(client, base, team):
    insight = make_insight(team, name="single")
    response = client.get(f"{base}{insight.id}/?format=csv")
    assert response.status_code == 200
    header, row = response.content.decode().splitlines()
    values = dict(zip(header.split(","), row.split(",")))
    assert values["name"] == "single" and values["id"] == str(insight.id)
    assert "query.source.series.0.event" in values


# -- PostHog's MCP tools -----------------------------------------------------------------------


def test_mcp_clients_must_send_a_query_and_get_bare_queries_wrapped(client, base, team):
    mcp = {"HTTP_X_POSTHOG_CLIENT": "mcp"}
    missing = client.post(base, {"name": "x"}, format="json", **mcp)
    assert missing.status_code == 400
    assert missing.json() == error("validation_error", "required", "This field is required.", "query")
    hogql = {"kind": "HogQLQuery", "query": "select 1"}
    body = client.post(base, {"name": "x", "query": hogql}, format="json", **mcp).json()
    assert body["query"] == {"kind": "DataVisualizationNode", "source": hogql}
    trends = TRENDS_QUERY["source"]
    patched = client.patch(f"{base}{body['id']}/", {"query": trends}, format="json", **mcp).json()
    assert patched["query"] == {"kind": "InsightVizNode", "source": trends}
    assert client.patch(f"{base}{body['id']}/", {"name": "renamed"}, format="json", **mcp).status_code == 200
    # Other clients store what they send.
    assert client.post(base, {"name": "x", "query": hogql}, format="json").json()["query"] == hogql


@pytest.mark.parametrize(
    "query, detail",
    [
        ({"kind": "DataTableNode", "source": {"kind": "EventsQuery", "select": [1]}}, "source.select.0: must be a string"),
        ({"kind": "DataTableNode", "source": {"kind": "EventsQuery"}}, "source.select: must be a list"),
        ({"kind": "DataTableNode", "source": {"kind": "Foo"}}, "source: DataTableNode cannot wrap a Foo"),
        ({"kind": "InsightVizNode", "source": {}}, "source.kind: field required"),
        ({"kind": "InsightVizNode", "source": {"kind": "PathsQuery"}}, "source.pathsFilter: must be an object"),
        ({"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query": "x", "filters": []}}, "source.filters: must be an object"),
        ({"kind": "SavedInsightNode", "shortId": "abc"}, "kind: unsupported query kind 'SavedInsightNode'"),
        ({"kind": "TrendsQuery", "series": "x"}, "query.series: must be a list"),
    ],
)
def test_query_schema_errors_name_the_path(client, base, query, detail):
    response = client.post(base, {"name": "x", "query": query}, format="json")
    assert response.status_code == 400
    assert response.json() == error("invalid_request", "parse_error", detail)
    assert not Insight.objects_including_soft_deleted.exists()


def test_query_schema_errors_without_a_short_form_keep_the_schema_report(client, base):
    query = {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [], "interval": "year"}}
    response = client.post(base, {"name": "x", "query": query}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert (body["type"], body["code"], body["attr"]) == ("invalid_request", "parse_error", None)
    assert body["detail"].startswith("1 validation error for QuerySchemaRoot\nInsightVizNode.source.TrendsQuery.interval\n")
