"""Insights with only legacy `filters` compute through the equivalent query (PostHog's filter_to_query)."""
import pytest

from queries import api as queries_api
from queries import clock
from tests.queries.events import events, person, ts

from .conftest import make_insight

pytestmark = pytest.mark.django_db

NOW = "2020-06-20 12:00"


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts(NOW))


@pytest.fixture
def activity(team):
    """Three users over 10-13 June 2020: alice on Chrome every day, bob on Safari, carol once."""
    for name in ("alice", "bob", "carol"):
        person(team, name)
    chrome, safari = {"$browser": "Chrome"}, {"$browser": "Safari"}
    events(
        team,
        ("$pageview", "alice", "2020-06-10 09:00", chrome),
        ("signed up", "alice", "2020-06-10 09:30", chrome),
        ("$pageview", "alice", "2020-06-11 10:00", chrome),
        ("$pageview", "alice", "2020-06-12 10:00", chrome),
        ("$pageview", "alice", "2020-06-13 08:00", chrome),
        ("$pageview", "bob", "2020-06-10 11:00", safari),
        ("signed up", "bob", "2020-06-12 11:00", safari),
        ("$pageview", "bob", "2020-06-12 12:00", safari),
        ("$pageview", "carol", "2020-06-11 12:00", chrome),
    )


TRENDS_FILTERS = {
    "insight": "TRENDS",
    "events": [{"id": "$pageview", "type": "events", "order": 0, "math": "dau"}],
    "actions": [],
    "interval": "day",
    "date_from": "2020-06-10",
    "date_to": "2020-06-13",
    "properties": [{"key": "$browser", "value": ["Chrome", "Safari"], "operator": "exact", "type": "event"}],
    "breakdown": "$browser",
    "breakdown_type": "event",
    "display": "ActionsLineGraph",
    "filter_test_accounts": False,
}
TRENDS_QUERY = {
    "kind": "InsightVizNode",
    "source": {
        "kind": "TrendsQuery",
        "dateRange": {"date_from": "2020-06-10", "date_to": "2020-06-13"},
        "interval": "day",
        "series": [{"kind": "EventsNode", "event": "$pageview", "name": "$pageview", "math": "dau"}],
        "filterTestAccounts": False,
        "properties": {"type": "AND", "values": [{"type": "AND", "values": [
            {"key": "$browser", "value": ["Chrome", "Safari"], "operator": "exact", "type": "event"},
        ]}]},
        "breakdownFilter": {"breakdown_type": "event", "breakdown": "$browser"},
        "trendsFilter": {"display": "ActionsLineGraph"},
    },
    "full": True,
}
FUNNEL_FILTERS = {
    "insight": "FUNNELS",
    "events": [
        {"id": "signed up", "type": "events", "order": 1},
        {"id": "$pageview", "type": "events", "order": 0, "properties": {"$browser": "Chrome"}},
    ],
    "date_from": "2020-06-10",
    "date_to": "2020-06-13",
    "funnel_window_days": 3,
    "funnel_viz_type": "steps",
}
FUNNEL_QUERY = {
    "kind": "InsightVizNode",
    "source": {
        "kind": "FunnelsQuery",
        "dateRange": {"date_from": "2020-06-10", "date_to": "2020-06-13"},
        "series": [
            {"kind": "EventsNode", "event": "$pageview", "name": "$pageview",
             "properties": [{"key": "$browser", "value": "Chrome", "operator": "exact", "type": "event"}]},
            {"kind": "EventsNode", "event": "signed up", "name": "signed up"},
        ],
        "funnelsFilter": {"funnelVizType": "steps", "funnelWindowIntervalUnit": "day", "funnelWindowInterval": 3},
    },
    "full": True,
}
RETENTION_FILTERS = {
    "insight": "RETENTION",
    "target_entity": '{"id": "$pageview", "type": "events", "name": "$pageview"}',
    "returning_entity": {"id": "$pageview", "type": "events", "name": "$pageview"},
    "retention_type": "retention_first_time",
    "total_intervals": 4,
    "period": "Day",
    "date_from": "2020-06-10",
    "date_to": "2020-06-13",
    "interval": "day",
    "events": [{"id": "ignored", "type": "events"}],
}
RETENTION_QUERY = {
    "kind": "InsightVizNode",
    "source": {
        "kind": "RetentionQuery",
        "dateRange": {"date_from": "2020-06-10", "date_to": "2020-06-13"},
        "retentionFilter": {
            "retentionType": "retention_first_time",
            "totalIntervals": 4,
            "returningEntity": {"type": "events", "id": "$pageview", "name": "$pageview"},
            "targetEntity": {"type": "events", "id": "$pageview", "name": "$pageview"},
            "period": "Day",
        },
    },
    "full": True,
}


@pytest.mark.parametrize(
    "filters, query",
    [(TRENDS_FILTERS, TRENDS_QUERY), (FUNNEL_FILTERS, FUNNEL_QUERY), (RETENTION_FILTERS, RETENTION_QUERY)],
    ids=["trends", "funnel", "retention"],
)
def test_legacy_filters_convert_to_the_equivalent_query(filters, query):
    assert queries_api.filters_to_query(filters) == query


@pytest.mark.parametrize(
    "filters, query",
    [(TRENDS_FILTERS, TRENDS_QUERY), (FUNNEL_FILTERS, FUNNEL_QUERY), (RETENTION_FILTERS, RETENTION_QUERY)],
    ids=["trends", "funnel", "retention"],
)
def test_a_legacy_insight_computes_the_numbers_of_its_query_equivalent(client, base, team, activity, filters, query):
    legacy = make_insight(team, name="Legacy", filters=filters, query=None)
    modern = make_insight(team, name="Modern", query=query)
    legacy_body = client.get(f"{base}{legacy.id}/", {"refresh": "force_blocking"}).json()
    modern_body = client.get(f"{base}{modern.id}/", {"refresh": "force_blocking"}).json()
    assert legacy_body["query_status"] is None
    assert legacy_body["result"] == modern_body["result"]
    assert legacy_body["result"]  # real numbers, not an empty answer
    # Shown as PostHog shows it: the converted query, no filters; stored as it was.
    assert (legacy_body["filters"], legacy_body["query"]) == ({}, query)
    legacy.refresh_from_db()
    assert (legacy.filters, legacy.query) == (filters, None)


def test_legacy_trends_numbers(client, base, team, activity):
    legacy = make_insight(team, name="Legacy", filters=TRENDS_FILTERS, query=None)
    result = client.get(f"{base}{legacy.id}/", {"refresh": "blocking"}).json()["result"]
    assert {row["breakdown_value"]: row["data"] for row in result} == {"Chrome": [1, 2, 1, 1], "Safari": [1, 0, 1, 0]}


def test_legacy_funnel_numbers(client, base, team, activity):
    legacy = make_insight(team, name="Legacy", filters=FUNNEL_FILTERS, query=None)
    result = client.get(f"{base}{legacy.id}/", {"refresh": "blocking"}).json()["result"]
    assert [(step["name"], step["count"]) for step in result] == [("$pageview", 2), ("signed up", 1)]


def test_legacy_insights_compute_in_the_list_too(client, base, team, activity):
    legacy = make_insight(team, name="Legacy", filters=FUNNEL_FILTERS, query=None)
    rows = client.get(base, {"refresh": "blocking"}).json()["results"]
    assert [row["result"][0]["count"] for row in rows if row["id"] == legacy.id] == [2]


@pytest.mark.parametrize(
    "filters, message",
    [
        ({"insight": "SOMETHING_ELSE"}, "This insight's legacy filters cannot be converted to a query: unknown insight type 'SOMETHING_ELSE'"),
        ({"insight": "TRENDS", "actions": [{"id": "not-a-number", "type": "actions"}]},
         "This insight's legacy filters cannot be converted to a query: invalid literal for int() with base 10: 'not-a-number'"),
        ({"insight": "TRENDS", "events": "{not json"},
         "This insight's legacy filters cannot be converted to a query: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ({"insight": "TRENDS", "events": [{"id": "$pageview"}], "properties": [{"key": "$browser", "type": "nonsense"}]}, None),
    ],
    ids=["unknown-insight", "bad-action-id", "bad-json", "bad-property-type"],
)
def test_unconvertible_filters_become_the_insights_query_status(client, base, team, filters, message):
    legacy = make_insight(team, name="Legacy", filters=filters, query=None)
    response = client.get(f"{base}{legacy.id}/", {"refresh": "blocking"})
    assert response.status_code == 200
    body = response.json()
    assert (body["result"], body["filters"]) == (None, filters)
    status = body["query_status"]
    assert {key: status[key] for key in ("error", "complete", "insight_id", "error_code")} == {
        "error": True, "complete": True, "insight_id": legacy.id, "error_code": "unconvertible_filters",
    }
    assert status["error_message"].startswith("This insight's legacy filters cannot be converted to a query: ")
    if message:
        assert status["error_message"] == message


def test_an_insight_without_query_or_filters_still_answers_empty(client, base, team):
    empty = make_insight(team, name="Empty", filters={}, query=None)
    body = client.get(f"{base}{empty.id}/", {"refresh": "blocking"}).json()
    assert (body["result"], body["query_status"]) == (None, None)


@pytest.mark.parametrize(
    "filters, source",
    [
        (
            {"insight": "STICKINESS", "events": [{"id": "$pageview", "type": "events", "math": "total"}],
             "actions": [{"id": "7", "type": "actions", "order": 0, "math": "weekly_active"}], "compare": "true",
             "display": "ActionsBar", "interval": "week"},
            {"kind": "StickinessQuery", "interval": "week",
             "series": [{"kind": "ActionsNode", "id": 7, "math": "weekly_active"},
                        {"kind": "EventsNode", "event": "$pageview", "name": "$pageview", "math": "dau"}],  # stickiness counts actors
             "compareFilter": {"compare": True}, "stickinessFilter": {"display": "ActionsBar"}},
        ),
        (
            {"insight": "LIFECYCLE", "events": [{"id": "$pageview", "properties": [{"key": "a", "value": "b"}]}],
             "shown_as": "Lifecycle", "toggledLifecycles": ["new", "dormant"]},
            {"kind": "LifecycleQuery", "series": [{"kind": "EventsNode", "event": "$pageview", "name": "$pageview"}],
             "lifecycleFilter": {"toggledLifecycles": ["new", "dormant"]}},
        ),
        (
            {"insight": "PATHS", "include_event_types": ["$pageview"], "start_point": "/home", "step_limit": 4, "date_from": "-30d",
             "exclude_events": ["/x"], "properties": {"$browser__icontains": "chr"}},
            {"kind": "PathsQuery", "dateRange": {"date_from": "-30d"},
             "properties": {"type": "AND", "values": [{"type": "AND", "values": [
                 {"key": "$browser", "value": "chr", "operator": "icontains", "type": "event"}]}]},
             "pathsFilter": {"startPoint": "/home", "stepLimit": 4, "includeEventTypes": ["$pageview"], "excludeEvents": ["/x"]}},
        ),
        (
            {"insight": "SESSIONS", "events": [{"id": "$pageview", "math": "sum", "math_property": "$session_duration"}],
             "formula": "A*2", "compare": True, "compare_to": "-1w", "breakdown": ["$browser", "$os"], "breakdown_type": "event",
             "properties": [{"key": "id", "value": 3, "type": "precalculated-cohort"}]},
            {"kind": "TrendsQuery",
             "series": [{"kind": "EventsNode", "event": "$pageview", "name": "$pageview", "math": "sum", "math_property": "$session_duration"}],
             "properties": {"type": "AND", "values": [{"type": "AND", "values": [{"key": "id", "value": 3, "type": "cohort"}]}]},
             "breakdownFilter": {"breakdown_type": "event", "breakdowns": [{"type": "event", "property": "$browser"},
                                                                         {"type": "event", "property": "$os"}]},
             "compareFilter": {"compare": True, "compare_to": "-1w"}, "trendsFilter": {"formula": "A*2"}},
        ),
    ],
    ids=["stickiness", "lifecycle", "paths-old-style-properties", "sessions-formula-compare-multi-breakdown"],
)
def test_other_kinds_and_legacy_shapes_convert(filters, source):
    assert queries_api.filters_to_query(filters) == {"kind": "InsightVizNode", "source": source, "full": True}
