"""Ordered and strict funnels with optional steps (`optionalInFunnel`), number by number.

Restated from PostHog's funnel UDF: a step event extends the attempt of the nearest earlier step in
its conversion window, skipping optional steps; the counted attempt is the first at the furthest step
(optional steps included); an actor counts at the steps its attempt passed; conversion times are the
gaps between the attempt's required steps, reported in order from step 1 on.
"""
import pytest

from queries import clock
from tests.conftest import error
from tests.queries.events import events, ts

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

DAY = "2021-05-03"


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts("2021-06-20 12:00"))


def step(name, optional=False, **extra):
    return {"kind": "EventsNode", "event": name, **({"optionalInFunnel": True} if optional else {}), **extra}


def funnel(*steps, **funnels_filter):
    return {"kind": "FunnelsQuery", "series": list(steps), "dateRange": {"date_from": "2021-05-01", "date_to": "2021-05-14"},
            "funnelsFilter": funnels_filter}


def at(name, distinct_id, time, **properties):
    return (name, distinct_id, f"{DAY} {time}", properties)


def run(client, team, query, status=200):
    response = client.post(f"/api/projects/{team.id}/query/", {"query": query, "refresh": "force_blocking"}, format="json")
    assert response.status_code == status, response.content
    return response.json()


def summary(steps):
    return [(item["name"], item["count"], item["average_conversion_time"], item["median_conversion_time"]) for item in steps]


def test_an_optional_step_may_be_skipped(client, team):
    events(
        team,
        at("A", "u1", "10:00"), at("B", "u1", "10:10"), at("C", "u1", "10:30"),
        at("A", "u2", "10:00"), at("C", "u2", "10:20"),
        at("A", "u3", "10:00"), at("B", "u3", "10:05"),
        at("A", "u4", "10:00"),
        at("B", "u5", "10:00"), at("C", "u5", "10:10"),  # never entered
    )
    body = run(client, team, funnel(step("A"), step("B", optional=True), step("C")))
    # u1 passed B, u2 skipped it; the gaps between required steps (u1 30 min, u2 20 min) are reported at step 1
    assert summary(body["results"]) == [("A", 4, None, None), ("B", 2, 1500.0, 1500.0), ("C", 2, None, None)]
    assert [item["order"] for item in body["results"]] == [0, 1, 2]
    assert "WITH RECURSIVE" in body["hogql"].upper() and len(body["hogql"].split(";\n\n")) == 1


def test_an_optional_step_out_of_the_window_is_skipped(client, team):
    events(team, at("A", "u6", "10:00"), at("B", "u6", "10:10"), at("A", "u6", "11:30"), at("C", "u6", "11:40"))
    body = run(client, team, funnel(step("A"), step("B", optional=True), step("C"), funnelWindowInterval=1, funnelWindowIntervalUnit="hour"))
    # the attempt through B (10:00) ran out of window; C extends the 11:30 attempt, which skipped B
    assert summary(body["results"]) == [("A", 1, None, None), ("B", 0, 600.0, 600.0), ("C", 1, None, None)]


def test_an_attempt_reaches_a_step_once(client, team):
    events(team, at("A", "u9", "10:00"), at("C", "u9", "10:01"), at("B", "u9", "10:02"), at("C", "u9", "10:03"), at("D", "u9", "10:04"))
    body = run(client, team, funnel(step("A"), step("B", optional=True), step("C"), step("D")))
    # C at 10:01 skipped B; B then joined the same attempt, which had already reached C: D extends A -> C
    assert summary(body["results"]) == [("A", 1, None, None), ("B", 0, 60.0, 60.0), ("C", 1, 180.0, 180.0), ("D", 1, None, None)]


def test_strict_funnel_with_an_optional_step(client, team):
    events(
        team,
        at("A", "u7", "10:00"), at("C", "u7", "10:01"),
        at("A", "u8", "10:00"), at("X", "u8", "10:01"), at("C", "u8", "10:02"),
        at("A", "u10", "10:00"), at("B", "u10", "10:01"), at("C", "u10", "10:02"),
    )
    body = run(client, team, funnel(step("A"), step("B", optional=True), step("C"), funnelOrderType="strict"))
    # u8's X breaks its attempt
    assert [item["count"] for item in body["results"]] == [3, 1, 2]


def test_exclusions_drop_the_attempt(client, team):
    events(team, at("A", "u10", "10:00"), at("X", "u10", "10:01"), at("C", "u10", "10:02"), at("A", "u11", "10:00"), at("C", "u11", "10:05"))
    exclusion = {"kind": "EventsNode", "event": "X", "funnelFromStep": 0, "funnelToStep": 2}
    body = run(client, team, funnel(step("A"), step("B", optional=True), step("C"), exclusions=[exclusion]))
    assert summary(body["results"]) == [("A", 1, None, None), ("B", 0, 300.0, 300.0), ("C", 1, None, None)]


def test_breakdown_ranks_by_the_steps_passed(client, team):
    events(
        team,
        at("A", "u1", "10:00", **{"$browser": "Chrome"}), at("B", "u1", "10:01"), at("C", "u1", "10:02"),
        at("A", "u2", "10:00", **{"$browser": "Safari"}), at("C", "u2", "10:02"),
        at("A", "u3", "10:00", **{"$browser": "Safari"}), at("B", "u3", "10:02"),
    )
    query = funnel(step("A"), step("B", optional=True), step("C"))
    query["breakdownFilter"] = {"breakdown": "$browser", "breakdown_type": "event"}
    body = run(client, team, query)
    assert [([item["count"] for item in steps], steps[0]["breakdown_value"]) for steps in body["results"]] == [
        ([2, 1, 1], ["Safari"]),
        ([1, 1, 1], ["Chrome"]),
    ]


def test_without_optional_steps_nothing_changes(client, team):
    events(team, at("A", "u1", "10:00"), at("C", "u1", "10:20"))
    body = run(client, team, funnel(step("A"), step("B"), step("C")))
    assert [item["count"] for item in body["results"]] == [1, 0, 0]
    assert "RECURSIVE" not in body["hogql"].upper()


@pytest.mark.parametrize(
    "query, detail",
    [
        (funnel(step("A", optional=True), step("B")), "The first step of a funnel cannot be optional."),
        (funnel(step("A"), step("B", optional=True), step("C"), funnelVizType="trends"),
         'Optional funnel steps are only supported in funnels with step order Sequential or Strict and the graph type "Conversion Steps".'),
        (funnel(step("A"), step("B", optional=True), step("C"), funnelOrderType="unordered"),
         'Optional funnel steps are only supported in funnels with step order Sequential or Strict and the graph type "Conversion Steps".'),
        (funnel(step("A"), step("B", optional=True, properties=[{"key": "x", "value": "1", "operator": "exact", "type": "event"}]), step("B")),
         "An optional step cannot be the same as the following required step."),
        (funnel(step("A"), *[step(f"O{i}", optional=True) for i in range(8)], step("Z")),
         "This funnel is too complex to compute with optional steps: use fewer steps, optional steps or exclusions."),
    ],
)
def test_refused_optional_steps_are_400(client, team, query, detail):
    assert run(client, team, query, status=400) == error("validation_error", "invalid_input", detail)


@pytest.mark.parametrize("attribution", ["first_touch", "last_touch", "all_events", "step"])
@pytest.mark.parametrize("order", ["ordered", "strict"])
def test_breakdown_attributions_and_orders(client, team, attribution, order):
    chrome, safari = {"$browser": "Chrome"}, {"$browser": "Safari"}
    events(
        team,
        at("A", "u1", "10:00", **chrome), at("B", "u1", "10:01", **chrome), at("C", "u1", "10:02", **chrome),
        at("A", "u2", "10:00", **safari), at("C", "u2", "10:02", **safari),
    )
    query = funnel(step("A"), step("B", optional=True), step("C"), funnelOrderType=order, breakdownAttributionType=attribution,
                   **({"breakdownAttributionValue": 0} if attribution == "step" else {}))
    query["breakdownFilter"] = {"breakdown": "$browser", "breakdown_type": "event"}
    body = run(client, team, query)
    assert sorted(([item["count"] for item in steps], steps[0]["breakdown_value"]) for steps in body["results"]) == [
        ([1, 0, 1], ["Safari"]),
        ([1, 1, 1], ["Chrome"]),
    ]


def test_aggregated_by_session(client, team):
    events(team, *[(name, "u1", f"{DAY} {time}", {"$session_id": session}, session)
                   for name, time, session in [("A", "10:00", "s1"), ("C", "10:01", "s1"), ("A", "11:00", "s2")]])
    body = run(client, team, funnel(step("A"), step("B", optional=True), step("C"), funnelAggregateByHogQL="properties.$session_id"))
    assert [item["count"] for item in body["results"]] == [2, 0, 1]
