"""ActionsNode wherever PostHog accepts it (spec/vocabulary.md §1.5-§1.6): trends series under
every math (same numbers as the equivalent EventsNode), funnel steps and exclusions, retention
entities, lifecycle and stickiness, with PostHog's labels and result objects."""
import pytest

from queries import clock
from tests.factories import ActionFactory
from tests.queries.events import events, person, ts

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

RANGE = {"dateRange": {"date_from": "2020-01-01", "date_to": "2020-01-07"}}
PRICING = {"kind": "EventsNode", "event": "$pageview",
           "properties": [{"key": "$current_url", "operator": "icontains", "value": "/pricing", "type": "event"}]}


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts("2020-01-08 12:00"))


@pytest.fixture
def data(team):
    person(team, "p1", properties={"plan": "pro"}, created_at="2020-01-01 00:00")
    person(team, "p2", properties={"plan": "free"}, created_at="2020-01-02 00:00")
    person(team, "p3", created_at="2019-12-01 00:00")
    rows = [
        ("$pageview", "p1", "2020-01-01 10:00", {"$current_url": "https://x.com/pricing", "amount": 5}, "s1"),
        ("$pageview", "p1", "2020-01-01 11:00", {"$current_url": "https://x.com/docs", "amount": 1}, "s1"),
        ("signed up", "p1", "2020-01-01 12:00", {}, "s1"),
        ("$pageview", "p1", "2020-01-03 10:00", {"$current_url": "https://x.com/pricing", "amount": 7}, "s2"),
        ("$pageview", "p2", "2020-01-02 10:00", {"$current_url": "https://x.com/pricing", "amount": 2}, "s3"),
        ("$pageview", "p2", "2020-01-03 10:00", {"$current_url": "https://x.com/pricing"}, "s4"),
        ("signed up", "p2", "2020-01-05 10:00", {}, "s5"),  # outside a 1-day window from the pricing view
        ("$pageview", "p3", "2020-01-04 10:00", {"$current_url": "https://x.com/PRICING", "amount": 9}, "s6"),
        ("$pageview", "p3", "2020-01-05 10:00", {"$current_url": "https://x.com/pricing", "amount": 3}, "s7"),
        ("signed up", "p3", "2020-01-05 10:30", {}, "s7"),
        ("$pageview", "p4", "2020-01-06 10:00", {"$current_url": "https://x.com/pricing"}, "s8"),  # personless
    ]
    events(team, *rows, personless=("p4",))


@pytest.fixture
def pricing(team):
    """The action equivalent of PRICING: pageviews whose URL contains /pricing (case-sensitive, like icontains here)."""
    return ActionFactory(team=team, name="Viewed pricing", steps_json=[{"event": "$pageview", "url": "/pricing"}])


def pricing_action(action, **fields):
    return {"kind": "ActionsNode", "id": action.id, **fields}


MATHS = [
    {}, {"math": "dau"}, {"math": "weekly_active"}, {"math": "monthly_active"}, {"math": "unique_session"},
    {"math": "first_matching_event_for_user"},
    {"math": "sum", "math_property": "amount"}, {"math": "avg", "math_property": "amount"},
    {"math": "min", "math_property": "amount"}, {"math": "max", "math_property": "amount"},
    {"math": "median", "math_property": "amount"}, {"math": "p90", "math_property": "amount"},
    {"math": "avg_count_per_actor"}, {"math": "max_count_per_actor"}, {"math": "p75_count_per_actor"},
    {"math": "hogql", "math_hogql": "count(distinct properties.$current_url)"},
]


def _numbers(results):
    return [(item.get("data"), item.get("aggregated_value"), item.get("breakdown_value")) for item in results]


@pytest.mark.parametrize("math", MATHS, ids=lambda m: m.get("math", "total"))
@pytest.mark.parametrize("display", [None, "BoldNumber"])
def test_trends_action_equals_the_equivalent_events_node_under_every_math(trends, data, team, math, display):
    # icontains would also take /PRICING; the action's URL contains is case-sensitive, so the
    # equivalent filter excludes it with a regex.
    equivalent = {**PRICING, "properties": [{"key": "$current_url", "operator": "regex", "value": "/pricing", "type": "event"}], **math}
    action = ActionFactory(team=team, name="Viewed pricing", steps_json=[{"event": "$pageview", "url": "/pricing"}])
    fields = {**RANGE, **({"trendsFilter": {"display": display}} if display else {})}
    expected = trends([equivalent], **fields)
    got = trends([pricing_action(action, **math)], **fields)
    assert _numbers(got) == _numbers(expected)


def test_first_time_for_user_takes_the_first_event_matching_the_action(trends, data, pricing):
    # The action's conditions define "first time" (an EventsNode's property filters do not):
    # p3's first pricing view is on the 5th, its earlier /PRICING view does not match the step.
    [result] = trends([pricing_action(pricing, math="first_time_for_user")], **RANGE)
    assert result["data"] == [1, 1, 0, 0, 1, 1, 0]


def test_trends_action_with_breakdown_equals_the_events_node(trends, data, pricing):
    fields = {**RANGE, "breakdownFilter": {"breakdown": "plan", "breakdown_type": "person"}}
    equivalent = {**PRICING, "properties": [{"key": "$current_url", "operator": "regex", "value": "/pricing", "type": "event"}]}
    assert _numbers(trends([pricing_action(pricing)], **fields)) == _numbers(trends([equivalent], **fields))


def test_trends_numbers_labels_and_action_object(trends, data, team, pricing):
    either = ActionFactory(team=team, name="Pricing or signup", steps_json=[{"event": "$pageview", "url": "/pricing"}, {"event": "signed up"}])
    first, second = trends([pricing_action(pricing, custom_name="Pricing"), pricing_action(either, math="dau")], **RANGE)
    assert first["data"] == [1, 1, 2, 0, 1, 1, 0]
    assert second["data"] == [1, 1, 2, 0, 2, 1, 0]
    assert first["label"] == "Viewed pricing" and second["label"] == "Pricing or signup"
    action = first["action"]
    assert (action["id"], action["type"], action["order"], action["name"], action["custom_name"]) == (
        "Viewed pricing", "events", 0, "Viewed pricing", "Pricing")
    assert second["action"]["order"] == 1 and second["action"]["math"] == "dau"


def test_trends_action_in_a_formula(trends, data, pricing):
    [result] = trends([pricing_action(pricing), {"kind": "EventsNode", "event": "signed up"}], **RANGE,
                      trendsFilter={"formula": "A + B"})
    assert result["data"] == [2, 1, 2, 0, 3, 1, 0]


def test_trends_series_properties_apply_on_top_of_the_action(trends, data, pricing):
    series = pricing_action(pricing, properties=[{"key": "plan", "value": "pro", "type": "person"}])
    assert trends([series], **RANGE)[0]["data"] == [1, 0, 1, 0, 0, 0, 0]


def test_all_time_range_starts_at_the_actions_first_event(trends, data, team):
    signup = ActionFactory(team=team, name="Signup", steps_json=[{"event": "signed up"}])
    [result] = trends([pricing_action(signup)], dateRange={"date_from": "all"})
    assert result["days"][0] == "2020-01-01" and sum(result["data"]) == 3


def funnel(run_query, series, **filters):
    query = {"kind": "FunnelsQuery", "series": series, **RANGE,
             "funnelsFilter": {"funnelWindowInterval": 1, "funnelWindowIntervalUnit": "day", **filters}}
    return run_query(query, refresh="force_blocking")


def test_funnel_steps_with_actions(run_query, data, team, pricing):
    response = funnel(run_query, [pricing_action(pricing), {"kind": "EventsNode", "event": "signed up"}])
    assert response.status_code == 200, response.json()
    first, second = response.json()["results"]
    assert [first["count"], second["count"]] == [4, 2]  # p1, p2, p3, p4 viewed pricing; p1 and p3 signed up within a day
    assert (first["action_id"], first["name"], first["type"]) == (pricing.id, "Viewed pricing", "actions")
    assert (second["action_id"], second["name"], second["type"]) == ("signed up", "signed up", "events")


def test_funnel_equals_the_equivalent_events_funnel(run_query, data, pricing):
    equivalent = {**PRICING, "properties": [{"key": "$current_url", "operator": "regex", "value": "/pricing", "type": "event"}]}
    signup = {"kind": "EventsNode", "event": "signed up"}
    for order in ("ordered", "strict", "unordered"):
        with_action = funnel(run_query, [pricing_action(pricing), signup], funnelOrderType=order).json()["results"]
        with_event = funnel(run_query, [equivalent, signup], funnelOrderType=order).json()["results"]
        assert [step["count"] for step in with_action] == [step["count"] for step in with_event], order


def test_funnel_exclusion_with_an_action(run_query, data, team, pricing):
    docs = ActionFactory(team=team, name="Docs", steps_json=[{"event": "$pageview", "url": "/docs"}])
    exclusion = {"kind": "ActionsNode", "id": docs.id, "funnelFromStep": 0, "funnelToStep": 1}
    steps = [pricing_action(pricing), {"kind": "EventsNode", "event": "signed up"}]
    response = funnel(run_query, steps, exclusions=[exclusion])
    assert response.status_code == 200, response.json()
    # p1 read the docs between its pricing view and its signup: excluded from the funnel altogether.
    assert [step["count"] for step in response.json()["results"]] == [3, 1]
    as_event = {"kind": "EventsNode", "event": "$pageview", "funnelFromStep": 0, "funnelToStep": 1,
                "properties": [{"key": "$current_url", "operator": "regex", "value": "/docs", "type": "event"}]}
    assert response.json()["results"] == funnel(run_query, steps, exclusions=[as_event]).json()["results"]


def test_funnel_with_a_missing_action_is_400(run_query, data):
    response = funnel(run_query, [{"kind": "ActionsNode", "id": 999999}, {"kind": "EventsNode", "event": "signed up"}])
    assert response.status_code == 400
    assert response.json()["detail"] == "Action ID 999999 does not exist!"


def test_retention_with_action_entities(run_query, data, pricing):
    def run(target):
        query = {"kind": "RetentionQuery", "dateRange": {"date_from": "2020-01-01", "date_to": "2020-01-04"},
                 "retentionFilter": {"period": "Day", "totalIntervals": 3, "targetEntity": target,
                                     "returningEntity": target}}
        response = run_query(query, refresh="force_blocking")
        assert response.status_code == 200, response.json()
        return [[value["count"] for value in row["values"]] for row in response.json()["results"]]

    with_action = run({"id": pricing.id, "type": "actions"})
    with_node = run({"id": pricing.id, "kind": "ActionsNode"})
    assert with_action == with_node
    assert with_action[0] == [1, 0, 1]  # p1 on the 1st, back on the 3rd
    assert with_action[1] == [1, 1, 0]  # p2 on the 2nd and 3rd


def test_retention_with_a_missing_action_is_400(run_query, data):
    query = {"kind": "RetentionQuery", "retentionFilter": {"targetEntity": {"id": 999999, "type": "actions"}}}
    assert run_query(query, refresh="force_blocking").status_code == 400


def test_lifecycle_with_an_action(run_query, data, pricing):
    query = {"kind": "LifecycleQuery", "series": [pricing_action(pricing)], **RANGE}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 200, response.json()
    results = {item["status"]: item for item in response.json()["results"]}
    assert results["new"]["action"] == {"id": str(pricing.id), "name": "Viewed pricing", "type": "actions", "order": 0, "math": "total"}
    assert results["new"]["label"] == "Viewed pricing - new"
    assert results["new"]["data"] == [1, 1, 0, 0, 0, 0, 0]
    assert results["resurrecting"]["data"] == [0, 0, 1, 0, 1, 0, 0]  # p1 on the 3rd; p3 (created earlier) on the 5th


def test_stickiness_with_an_action(run_query, data, pricing):
    def run(series):
        response = run_query({"kind": "StickinessQuery", "series": [series], **RANGE}, refresh="force_blocking")
        assert response.status_code == 200, response.json()
        return response.json()["results"][0]

    equivalent = {**PRICING, "properties": [{"key": "$current_url", "operator": "regex", "value": "/pricing", "type": "event"}]}
    with_action, with_event = run(pricing_action(pricing)), run(equivalent)
    assert with_action["data"] == with_event["data"] == [2, 2, 0, 0, 0, 0, 0]
    assert with_action["label"] == "Viewed pricing"
    assert (with_action["action"]["id"], with_action["action"]["type"]) == ("Viewed pricing", "events")


@pytest.mark.parametrize("kind", ["LifecycleQuery", "StickinessQuery"])
def test_missing_action_in_lifecycle_and_stickiness_is_400(run_query, data, kind):
    response = run_query({"kind": kind, "series": [{"kind": "ActionsNode", "id": 999999}], **RANGE}, refresh="force_blocking")
    assert response.status_code == 400
    assert response.json()["detail"] == "Action ID 999999 does not exist!"
