"""Retrieve in a dashboard's context: its filters (with `filters_override` over them) and variables
change what is computed and the `query` returned (spec/vocabulary.md §5)."""
import pytest

from tests.queries.events import events

from .conftest import make_dashboard, make_insight, put_on

pytestmark = pytest.mark.django_db

JANUARY = {"date_from": "2024-01-01", "date_to": "2024-01-31"}
FEBRUARY = {"date_from": "2024-02-01", "date_to": "2024-02-29"}
CHROME = [{"key": "$browser", "value": "Chrome", "operator": "exact", "type": "event"}]
TRENDS = {
    "kind": "InsightVizNode",
    "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], "interval": "month", "dateRange": JANUARY},
}


@pytest.fixture
def pageviews(team):
    chrome, safari = {"$browser": "Chrome"}, {"$browser": "Safari"}
    events(
        team,
        ("$pageview", "a", "2024-01-05 10:00", chrome), ("$pageview", "a", "2024-01-06 10:00", chrome),
        ("$pageview", "b", "2024-01-07 10:00", safari),
        ("$pageview", "a", "2024-02-05 10:00", chrome), ("$pageview", "b", "2024-02-06 10:00", safari),
        ("$pageview", "b", "2024-02-07 10:00", safari), ("$pageview", "c", "2024-02-08 10:00", safari),
    )


def totals(body) -> dict:
    return {str(series.get("breakdown_value", series["label"])): series["count"] for series in body["result"]}


def get(client, base, insight, **params):
    response = client.get(f"{base}{insight.id}/", {"refresh": "blocking", **params})
    assert response.status_code == 200, response.content
    return response.json()


def test_the_dashboards_filters_change_the_numbers_and_the_returned_query(client, base, team, pageviews):
    insight = make_insight(team, query=TRENDS)
    dashboard = make_dashboard(team, filters={**FEBRUARY, "properties": CHROME})
    put_on(insight, dashboard)
    alone = get(client, base, insight)
    assert totals(alone) == {"$pageview": 3} and alone["query"] == TRENDS
    on_dashboard = get(client, base, insight, from_dashboard=dashboard.id)
    assert totals(on_dashboard) == {"$pageview": 1}  # February, Chrome only
    source = on_dashboard["query"]["source"]
    assert (source["dateRange"]["date_from"], source["dateRange"]["date_to"]) == ("2024-02-01", "2024-02-29")
    assert source["properties"] == CHROME
    assert on_dashboard["filters_hash"] != alone["filters_hash"]  # its own cache entry
    assert get(client, base, insight)["query"] == TRENDS  # nothing saved


def test_filters_override_is_merged_over_the_dashboards_filters(client, base, team, pageviews):
    insight = make_insight(team, query=TRENDS)
    dashboard = make_dashboard(team, filters={**FEBRUARY, "properties": CHROME})
    put_on(insight, dashboard)
    # Key by key: the override's properties replace the dashboard's; its dates stay.
    safari = [{"key": "$browser", "value": "Safari", "operator": "exact", "type": "event"}]
    body = get(client, base, insight, from_dashboard=dashboard.id, filters_override=f'{{"properties": [{safari[0]!r}]}}'.replace("'", '"'))
    assert totals(body) == {"$pageview": 3}
    # A breakdown from the override replaces the insight's.
    breakdown = '{"breakdown_filter": {"breakdown": "$browser", "breakdown_type": "event"}, "properties": []}'
    assert totals(get(client, base, insight, from_dashboard=dashboard.id, filters_override=breakdown)) == {"Chrome": 1, "Safari": 3}
    # Without a dashboard the override applies alone.
    assert totals(get(client, base, insight, filters_override='{"date_from": "2024-01-01", "date_to": "2024-02-29"}')) == {"$pageview": 7}


def test_a_dashboard_without_this_insight_changes_nothing(client, base, team, pageviews):
    insight = make_insight(team, query=TRENDS)
    dashboard = make_dashboard(team, filters=FEBRUARY)
    body = get(client, base, insight, from_dashboard=dashboard.id)
    assert totals(body) == {"$pageview": 3} and body["query"] == TRENDS


def test_properties_are_anded_with_the_insights_own(client, base, team, pageviews):
    own = [{"key": "$browser", "value": ["Chrome", "Safari"], "operator": "exact", "type": "event"}]
    insight = make_insight(team, query={**TRENDS, "source": {**TRENDS["source"], "properties": own}})
    dashboard = make_dashboard(team, filters={**FEBRUARY, "properties": CHROME})
    put_on(insight, dashboard)
    body = get(client, base, insight, from_dashboard=dashboard.id)
    assert totals(body) == {"$pageview": 1}
    assert body["query"]["source"]["properties"] == {
        "type": "AND", "values": [{"type": "AND", "values": own}, {"type": "AND", "values": CHROME}],
    }


@pytest.mark.parametrize("override", ['{"properties": "Chrome"}', '{"date_from": 5}', '{"breakdown_filter": []}'])
def test_a_malformed_filters_override_is_400(client, base, team, override):
    insight = make_insight(team, query=TRENDS)
    response = client.get(f"{base}{insight.id}/", {"filters_override": override})
    assert response.status_code == 400
    body = response.json()
    assert (body["type"], body["code"], body["attr"]) == ("validation_error", "invalid_input", "filters_override")
    assert body["detail"].startswith("Invalid dashboard filters: ")


def test_malformed_stored_dashboard_filters_fail_only_the_result(client, base, team):
    insight = make_insight(team, query=TRENDS)
    dashboard = make_dashboard(team, filters={"properties": "Chrome"})
    put_on(insight, dashboard)
    body = get(client, base, insight, from_dashboard=dashboard.id)
    assert body["result"] is None and body["query_status"]["error"] is True
    assert body["query"] == TRENDS


def test_variables_override_sets_the_sql_variables_the_query_declares(client, base, team):
    query = {
        "kind": "DataVisualizationNode",
        "source": {
            "kind": "HogQLQuery", "query": "select {variables.n} * 2",
            "variables": {"v1": {"variableId": "v1", "code_name": "n", "value": 1}},
        },
    }
    insight = make_insight(team, query=query)
    dashboard = make_dashboard(team, variables={"v1": {"variableId": "v1", "code_name": "n", "value": 10}})
    put_on(insight, dashboard)
    assert get(client, base, insight)["result"] == [[2]]
    assert get(client, base, insight, from_dashboard=dashboard.id)["result"] == [[20]]
    body = get(client, base, insight, from_dashboard=dashboard.id, variables_override='{"v1": {"value": 21}, "v9": {"value": 0}}')
    assert body["result"] == [[42]]
    assert body["query"]["source"]["variables"] == {"v1": {"variableId": "v1", "code_name": "n", "value": 21, "isNull": None}}


def test_share_viewers_get_the_insight_as_saved(client, base, team, pageviews):
    insight = make_insight(team, query=TRENDS)
    dashboard = make_dashboard(team, filters=FEBRUARY)
    put_on(insight, dashboard)
    token = client.patch(f"{base}{insight.id}/sharing/", {"enabled": True}, format="json").json()["access_token"]
    get(client, base, insight)  # cached for the viewer
    client.credentials()
    response = client.get(f"{base}{insight.id}/", {"sharing_access_token": token, "from_dashboard": dashboard.id,
                                                 "filters_override": '{"date_from": "2024-02-01"}'})
    assert response.status_code == 200
    assert totals(response.json()) == {"$pageview": 3} and response.json()["query"] == TRENDS
