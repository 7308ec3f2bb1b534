"""A dashboard's retrieve shows its tiles with results computed under the dashboard's filters and
variables and each tile's `filters_overrides` (spec/vocabulary.md §5), all tiles in one call."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core import coalescing
from insight_variables.models import InsightVariable
from tests.conftest import error
from tests.factories import make_team

from .conftest import FULL_KEYS, make_dashboard, make_insight, put_on
from .test_dashboard_context import CHROME, FEBRUARY, TRENDS, pageviews, totals  # noqa: F401  (pageviews: fixture)

pytestmark = pytest.mark.django_db

TILE_KEYS = ["id", "insight", "text", "layouts", "color", "deleted", "filters_overrides", "last_refresh", "is_cached"]
SAFARI = [{"key": "$browser", "value": "Safari", "operator": "exact", "type": "event"}]


@pytest.fixture
def dashboards(team):
    return f"/api/projects/{team.id}/dashboards/"


def retrieve(client, dashboards, dashboard, **params):
    response = client.get(f"{dashboards}{dashboard.id}/", params)
    assert response.status_code == 200, response.content
    return response.json()


def tile_totals(body) -> list[dict]:
    return [totals(tile["insight"]) for tile in body["tiles"]]


def test_tiles_shape(client, dashboards, team):
    dashboard, insight = make_dashboard(team), make_insight(team, query=TRENDS)
    tile = put_on(insight, dashboard, layouts={"sm": {"x": 0, "y": 0, "w": 6, "h": 5}}, color="blue")
    body = retrieve(client, dashboards, dashboard)
    assert len(body["tiles"]) == 1
    shown = body["tiles"][0]
    assert list(shown) == TILE_KEYS
    assert {key: shown[key] for key in TILE_KEYS if key != "insight"} == {
        "id": tile.id, "text": None, "layouts": {"sm": {"x": 0, "y": 0, "w": 6, "h": 5}}, "color": "blue", "deleted": False,
        "filters_overrides": {}, "last_refresh": None, "is_cached": False,
    }
    assert list(shown["insight"]) == FULL_KEYS
    assert shown["insight"]["id"] == insight.id and shown["insight"]["dashboards"] == [dashboard.id]
    # force_cache (the default) never computes
    assert (shown["insight"]["result"], shown["insight"]["query_status"]) == (None, None)


def test_deleted_tiles_and_insights_are_not_shown(client, dashboards, team):
    dashboard = make_dashboard(team)
    kept = put_on(make_insight(team), dashboard)
    put_on(make_insight(team), dashboard, deleted=True)
    put_on(make_insight(team, deleted=True), dashboard)
    assert [tile["id"] for tile in retrieve(client, dashboards, dashboard)["tiles"]] == [kept.id]


def test_dashboard_filters_change_every_tiles_numbers(client, dashboards, team, pageviews):
    dashboard = make_dashboard(team)
    put_on(make_insight(team, query=TRENDS), dashboard)
    put_on(make_insight(team, query=TRENDS), dashboard)
    assert tile_totals(retrieve(client, dashboards, dashboard, refresh="blocking")) == [{"$pageview": 3}, {"$pageview": 3}]
    client.patch(f"{dashboards}{dashboard.id}/", {"filters": {**FEBRUARY, "properties": CHROME}}, format="json")
    body = retrieve(client, dashboards, dashboard, refresh="blocking")
    assert tile_totals(body) == [{"$pageview": 1}, {"$pageview": 1}]  # February, Chrome only
    source = body["tiles"][0]["insight"]["query"]["source"]
    assert (source["dateRange"]["date_from"], source["properties"]) == ("2024-02-01", CHROME)
    assert body["tiles"][0]["is_cached"] is False and body["tiles"][0]["last_refresh"] is not None


def test_tile_filters_overrides_layer_over_the_dashboards(client, dashboards, team, pageviews):
    dashboard = make_dashboard(team, filters={**FEBRUARY, "properties": CHROME})
    put_on(make_insight(team, query=TRENDS), dashboard)
    # The tile's date range replaces the dashboard's; its properties stack on the dashboard's.
    put_on(make_insight(team, query=TRENDS), dashboard, filters_overrides={"date_from": "2024-01-01", "date_to": "2024-02-29"})
    put_on(make_insight(team, query=TRENDS), dashboard, filters_overrides={"properties": SAFARI})
    breakdown = {"breakdown_filter": {"breakdown": "$browser", "breakdown_type": "event"}}
    put_on(make_insight(team, query=TRENDS), dashboard, filters_overrides=breakdown)
    body = retrieve(client, dashboards, dashboard, refresh="blocking")
    assert tile_totals(body) == [{"$pageview": 1}, {"$pageview": 3}, {"$pageview": 0}, {"Chrome": 1}]  # Chrome AND Safari: none
    assert body["tiles"][3]["filters_overrides"] == breakdown


def test_insight_retrieve_from_a_dashboard_applies_its_tile_overrides(client, dashboards, team, pageviews):
    dashboard = make_dashboard(team, filters={**FEBRUARY, "properties": CHROME})
    insight = make_insight(team, query=TRENDS)
    put_on(insight, dashboard, filters_overrides={"date_from": "2024-01-01", "date_to": "2024-02-29"})
    response = client.get(f"/api/projects/{team.id}/insights/{insight.id}/", {"from_dashboard": dashboard.id, "refresh": "blocking"})
    assert response.status_code == 200
    # The tile's date range replaces the dashboard's February; the dashboard's Chrome filter stays.
    assert totals(response.json()) == {"$pageview": 3}
    assert response.json()["query"]["source"]["dateRange"]["date_from"] == "2024-01-01"
    # The same retrieve of the tile on the dashboard shows the same number.
    assert tile_totals(retrieve(client, dashboards, dashboard, refresh="blocking")) == [{"$pageview": 3}]


def test_dashboard_variables_apply_to_sql_tiles(client, dashboards, team):
    variable = InsightVariable.objects.create(team=team, name="Limit", code_name="limit", type="Number", default_value=1)
    vid = str(variable.id)
    query = {"kind": "DataVisualizationNode", "source": {
        "kind": "HogQLQuery", "query": "select {variables.limit} + 1",
        "variables": {vid: {"variableId": vid, "code_name": "limit"}},
    }}
    dashboard = make_dashboard(team)
    put_on(make_insight(team, query=query), dashboard)
    assert retrieve(client, dashboards, dashboard, refresh="blocking")["tiles"][0]["insight"]["result"] == [[2]]
    dashboard.variables = {vid: {"variableId": vid, "code_name": "limit", "value": 41}}
    dashboard.save()
    assert retrieve(client, dashboards, dashboard, refresh="blocking")["tiles"][0]["insight"]["result"] == [[42]]


def test_async_refresh_reports_a_query_status(client, dashboards, team, pageviews):
    dashboard = make_dashboard(team)
    put_on(make_insight(team, query=TRENDS), dashboard)
    insight = retrieve(client, dashboards, dashboard, refresh="force_async")["tiles"][0]["insight"]
    status = insight["query_status"]
    assert insight["result"] is None
    assert (status["complete"], status["error"], status["team_id"], status["query_async"]) == (False, False, team.id, True)


def test_a_tile_that_cannot_compute_does_not_fail_the_dashboard(client, dashboards, team, pageviews):
    dashboard = make_dashboard(team)
    put_on(make_insight(team, query={"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query": "select nope from nowhere"}}), dashboard)
    put_on(make_insight(team, query=TRENDS), dashboard)
    body = retrieve(client, dashboards, dashboard, refresh="blocking")
    assert body["tiles"][0]["insight"]["query_status"]["error"] is True
    assert tile_totals({"tiles": body["tiles"][1:]}) == [{"$pageview": 3}]


def test_query_count_is_constant_in_the_number_of_tiles(client, dashboards, team, pageviews):
    def count(tiles: int) -> int:
        dashboard = make_dashboard(team, filters={"properties": CHROME})
        for index in range(tiles):
            put_on(make_insight(team, query=TRENDS, tags=[f"t{index}"]), dashboard, filters_overrides={"date_from": "2024-01-01"})
        retrieve(client, dashboards, dashboard, refresh="blocking")  # computed (and cached) outside the count
        with CaptureQueriesContext(connection) as queries:
            body = retrieve(client, dashboards, dashboard)
        assert all(tile["is_cached"] for tile in body["tiles"]) and len(body["tiles"]) == tiles
        return len(queries)

    assert count(1) == count(5)


def test_other_tenants_dashboards_and_tiles_stay_hidden(client, dashboards, team):
    other = make_team()
    foreign = make_dashboard(other)
    put_on(make_insight(other), foreign)
    assert client.get(f"{dashboards}{foreign.id}/").status_code == 404


def test_patch_tiles_layouts_color_and_deleted(client, dashboards, team):
    dashboard = make_dashboard(team)
    first, second = put_on(make_insight(team), dashboard), put_on(make_insight(team), dashboard, color="red")
    layouts = {"sm": {"i": str(first.id), "x": 0, "y": 0, "w": 6, "h": 5}}
    response = client.patch(f"{dashboards}{dashboard.id}/", {"tiles": [
        {"id": first.id, "layouts": layouts, "color": "blue", "filters_overrides": {"date_from": "-7d"}},
        {"id": second.id, "deleted": True},
    ]}, format="json")
    assert response.status_code == 200
    tiles = response.json()["tiles"]
    assert [(tile["id"], tile["layouts"], tile["color"], tile["filters_overrides"]) for tile in tiles] == [
        (first.id, layouts, "blue", {"date_from": "-7d"}),
    ]
    second.refresh_from_db()
    assert (second.deleted, second.color) == (True, "red")
    restored = client.patch(f"{dashboards}{dashboard.id}/", {"tiles": [{"id": second.id, "deleted": False}]}, format="json")
    assert [tile["id"] for tile in restored.json()["tiles"]] == [first.id, second.id]


def test_patch_refuses_other_dashboards_tiles_and_bad_input(client, dashboards, team):
    dashboard, elsewhere = make_dashboard(team), make_dashboard(team)
    own = put_on(make_insight(team), dashboard, color="red")
    other_team = make_team()
    foreign = put_on(make_insight(other_team), make_dashboard(other_team))
    neighbour = put_on(make_insight(team), elsewhere)
    url = f"{dashboards}{dashboard.id}/"
    for tile in (neighbour, foreign):
        response = client.patch(url, {"name": "renamed", "tiles": [{"id": own.id, "color": "blue"}, {"id": tile.id, "color": "blue"}]}, format="json")
        assert response.status_code == 400
        assert response.json() == error("validation_error", "invalid_input", f"Tile {tile.id} is not on this dashboard.", "tiles")
    for body, code, detail, attr in [
        ({"tiles": [{"color": "x"}]}, "required", "This field is required.", "tiles__0__id"),
        ({"tiles": [{"id": own.id, "layouts": "x"}]}, "not_a_dict", 'Expected a dictionary of items but got type "str".', "tiles__0__layouts"),
        ({"tiles": [{"id": own.id, "filters_overrides": {"date_from": 1}}]}, "invalid_input",
         "Invalid dashboard filters: date_from: Input should be a valid string", "tiles__0__filters_overrides"),
        ({"tiles": {"id": own.id}}, "not_a_list", 'Expected a list of items but got type "dict".', "tiles"),
    ]:
        response = client.patch(url, body, format="json")
        assert response.status_code == 400
        assert response.json() == error("validation_error", code, detail, attr)
    for tile, color in ((own, "red"), (neighbour, None), (foreign, None)):
        tile.refresh_from_db()
        assert tile.color == color
    dashboard.refresh_from_db()
    assert dashboard.name != "renamed"


def test_duplicate_a_dashboard_showing_the_same_insights(client, dashboards, team):
    source = make_dashboard(team, name="KPIs", filters={"date_from": "-7d"})
    insight = make_insight(team, name="Pageviews")
    tile = put_on(insight, source, layouts={"sm": {"x": 1}}, color="blue", filters_overrides={"date_from": "-30d"})
    put_on(make_insight(team), source, deleted=True)
    response = client.post(dashboards, {"name": "KPIs (Copy)", "filters": source.filters, "use_dashboard": source.id}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["creation_mode"], body["filters"]) == ("KPIs (Copy)", "duplicate", {"date_from": "-7d"})
    assert "use_dashboard" not in body and "duplicate_tiles" not in body
    [copied] = body["tiles"]
    assert copied["id"] != tile.id and copied["insight"]["id"] == insight.id
    assert (copied["layouts"], copied["color"], copied["filters_overrides"]) == ({"sm": {"x": 1}}, "blue", {"date_from": "-30d"})
    assert sorted(copied["insight"]["dashboards"]) == [source.id, body["id"]]
    assert len(retrieve(client, dashboards, source)["tiles"]) == 1  # the source is untouched


def test_duplicate_tiles_copies_the_insights(client, dashboards, team):
    source = make_dashboard(team)
    insight = make_insight(team, name="Pageviews", description="all of them", tags=["kpi"])
    put_on(insight, source, color="green")
    unnamed = make_insight(team, name=None, derived_name="Count of pageviews")
    put_on(unnamed, source)
    body = client.post(dashboards, {"name": "Copy", "use_dashboard": source.id, "duplicate_tiles": True}, format="json").json()
    first, second = (tile["insight"] for tile in body["tiles"])
    assert first["id"] not in (insight.id, unnamed.id) and second["id"] not in (insight.id, unnamed.id)
    assert (first["name"], first["description"], first["tags"], first["query"]) == ("Pageviews (Copy)", "all of them", ["kpi"], insight.query)
    assert (second["name"], second["derived_name"]) == (None, "Count of pageviews")
    assert first["dashboards"] == [body["id"]] and body["tiles"][0]["color"] == "green"


def test_duplicate_refuses_unknown_and_other_tenants_dashboards(client, dashboards, team):
    foreign = make_dashboard(make_team())
    for value in (foreign.id, 2**40):
        response = client.post(dashboards, {"name": "x", "use_dashboard": value}, format="json")
        assert response.status_code == 400
        assert response.json() == error("validation_error", "invalid_input", "Invalid value provided", "use_dashboard")
    response = client.post(dashboards, {"name": "x", "use_dashboard": "abc"}, format="json")
    assert response.json() == error("validation_error", "invalid_input", "A valid integer is required.", "use_dashboard")
    assert client.get(dashboards).json()["count"] == 0


def test_identical_dashboard_retrieves_are_coalesced_like_insight_retrieves(client, dashboards, team):
    class Request:
        method, body, COOKIES = "GET", b"", {}
        META = {"QUERY_STRING": "refresh=blocking"}

    Request.path = f"{dashboards}7/"
    assert coalescing.request_key(Request) is not None
    Request.path = dashboards
    assert coalescing.request_key(Request) is None
    dashboard = make_dashboard(team)
    put_on(make_insight(team), dashboard)
    assert len(retrieve(client, dashboards, dashboard, refresh="blocking")["tiles"]) == 1


@pytest.mark.parametrize("duplicate", [False, True])
def test_a_dashboard_created_deleted_is_answered(client, dashboards, team, duplicate):
    # Found by the schema fuzzer: the created dashboard was read back through the live-only queryset.
    source = make_dashboard(team)
    put_on(make_insight(team), source)
    body = {"name": "gone", "deleted": True, **({"use_dashboard": source.id} if duplicate else {})}
    response = client.post(dashboards, body, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["name"], response.json()["deleted"]) == ("gone", True)
    assert client.get(f"{dashboards}{response.json()['id']}/").status_code == 404
