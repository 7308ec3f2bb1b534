"""PathsQuery with funnelPathsFilter: the paths of a funnel's actors after, before or between its steps.

Restated from PostHog's paths runner: the actors are the funnel's actors at `funnelStep` (negative:
dropped off there), and each actor's events are cut at the times its counted attempt reached the
steps (after: from the target step on, or one conversion window after it for a drop-off; before: up
to it; between: from the step before to it).
"""
import pytest

from queries import clock
from tests.conftest import error
from tests.queries.events import events, ts

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

DAY = "2012-01-14"


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts("2012-01-15 03:21:34"))


def at(name, distinct_id, time):
    return (name, distinct_id, f"{DAY} {time}")


@pytest.fixture
def journeys(team):
    events(
        team,
        at("step one", "p1", "10:00"), at("x", "p1", "10:01"), at("step two", "p1", "10:02"), at("y", "p1", "10:03"),
        at("step three", "p1", "10:04"), at("z", "p1", "10:05"),
        at("step one", "p2", "10:00"), at("x", "p2", "10:01"), at("w", "p2", "10:02"),
        at("late1", "p2", "11:30"), at("late2", "p2", "11:31"),
        at("a", "p3", "10:00"), at("step one", "p3", "10:01"), at("step two", "p3", "10:02"), at("y", "p3", "10:03"),
    )


def funnel(**funnels_filter):
    steps = [{"kind": "EventsNode", "event": name} for name in ("step one", "step two", "step three")]
    return {"kind": "FunnelsQuery", "series": steps, "funnelsFilter": funnels_filter}


def paths_query(path_type, step, source=None):
    return {"kind": "PathsQuery", "pathsFilter": {},
            "funnelPathsFilter": {"funnelPathType": path_type, "funnelStep": step, "funnelSource": source or funnel()}}


def run(client, team, query, status=200):
    response = client.post(f"/api/projects/{team.id}/query/", {"query": query, "refresh": "force_blocking"}, format="json")
    assert response.status_code == status, response.content
    return response.json()


def edges(body):
    return [(edge["source"], edge["target"], edge["value"]) for edge in body["results"]]


def test_after_step(client, team, journeys):
    body = run(client, team, paths_query("funnel_path_after_step", 2))
    # p1 and p3 reached step two at 10:02; p2 never did
    assert edges(body) == [("1_step two", "2_y", 2), ("2_y", "3_step three", 1), ("3_step three", "4_z", 1)]
    assert body["results"][0]["average_conversion_time"] == 60000.0
    assert len(body["hogql"].split(";\n\n")) == 1  # the funnel is a subquery of the one paths statement


def test_before_step(client, team, journeys):
    body = run(client, team, paths_query("funnel_path_before_step", 2))
    assert edges(body) == [
        ("1_a", "2_step one", 1), ("1_step one", "2_x", 1), ("2_step one", "3_step two", 1), ("2_x", "3_step two", 1),
    ]


def test_between_steps(client, team, journeys):
    body = run(client, team, paths_query("funnel_path_between_steps", 2))
    # p1: 10:00 - 10:02, p3: 10:01 - 10:02 (p3's "a" came before its step one)
    assert edges(body) == [("1_step one", "2_step two", 1), ("1_step one", "2_x", 1), ("2_x", "3_step two", 1)]


def test_after_a_drop_off_starts_one_conversion_window_later(client, team, journeys):
    source = funnel(funnelWindowInterval=1, funnelWindowIntervalUnit="hour")
    body = run(client, team, paths_query("funnel_path_after_step", -2, source))
    # p2 reached step one at 10:00 and never step two: its events from 11:00 on
    assert edges(body) == [("1_late1", "2_late2", 1)]
    # with the default 14-day window nothing is left
    assert edges(run(client, team, paths_query("funnel_path_after_step", -2))) == []


def test_drop_off_between(client, team, journeys):
    body = run(client, team, paths_query("funnel_path_between_steps", -3))
    # dropped off at step three: p3 (step one 10:01 -> step two 10:02)
    assert edges(body) == [("1_step one", "2_step two", 1)]


def test_funnel_date_range_and_filters_apply(client, team, journeys):
    events(team, at("step one", "p4", "09:00"), at("q", "p4", "09:01"), at("step two", "p4", "09:02"))
    source = {**funnel(), "dateRange": {"date_from": f"{DAY} 09:30", "date_to": f"{DAY} 23:00"}}
    body = run(client, team, paths_query("funnel_path_before_step", 2, source))
    assert ("1_step one", "2_q", 1) not in edges(body)  # p4 converted before the funnel's range
    assert ("1_a", "2_step one", 1) in edges(body)


def test_strict_funnel_source(client, team, journeys):
    body = run(client, team, paths_query("funnel_path_after_step", 2, funnel(funnelOrderType="strict")))
    # strict: p1's "x" breaks the attempt; only p3 converts
    assert edges(body) == [("1_step two", "2_y", 1)]


@pytest.mark.parametrize(
    "path_type, step, source, detail",
    [
        ("funnel_path_after_step", None, None, "funnelPathsFilter needs a funnelStep."),
        (None, 2, None, "funnelPathsFilter needs a funnelPathType."),
        ("funnel_path_after_step", 0, None, "Funnel steps are 1-indexed, so step 0 doesn't exist"),
        ("funnel_path_after_step", -1, None, "The first valid drop-off argument for funnelStep is -2. -2 refers to persons who "
                                             "performed the first step but never made it to the second."),
        ("funnel_path_after_step", 4, None, "funnelStep is out of bounds: the funnel has 3 steps."),
        ("funnel_path_between_steps", 1, None, "Cannot request preceding step timestamp if target funnel step is the first step"),
        ("funnel_path_after_step", 2, funnel(funnelOrderType="unordered"), "Funnel paths are not supported for unordered funnels."),
        ("funnel_path_after_step", 2, {"kind": "FunnelsQuery", "series": []}, "A funnel needs at least one step."),
    ],
)
def test_invalid_funnel_paths_are_400(client, team, path_type, step, source, detail):
    body = run(client, team, paths_query(path_type, step, source), status=400)
    assert body == error("validation_error", "invalid_input", detail)


def test_funnel_source_with_an_optional_step(client, team, journeys):
    steps = [{"kind": "EventsNode", "event": "step one"}, {"kind": "EventsNode", "event": "x", "optionalInFunnel": True},
             {"kind": "EventsNode", "event": "step two"}]
    source = {"kind": "FunnelsQuery", "series": steps}
    body = run(client, team, paths_query("funnel_path_after_step", 3, source))
    # p1 passed x, p3 skipped it: both reached step two at 10:02
    assert edges(body) == [("1_step two", "2_y", 2), ("2_y", "3_step three", 1), ("3_step three", "4_z", 1)]


def test_optional_target_step_selects_the_actors_who_passed_it(client, team, journeys):
    steps = [{"kind": "EventsNode", "event": "step one"}, {"kind": "EventsNode", "event": "x", "optionalInFunnel": True},
             {"kind": "EventsNode", "event": "step two"}]
    source = {"kind": "FunnelsQuery", "series": steps}
    # p1 and p2 passed x (p3 skipped it); p2's later events start a new session
    assert edges(run(client, team, paths_query("funnel_path_after_step", 2, source))) == [
        ("1_late1", "2_late2", 1), ("1_x", "2_step two", 1), ("1_x", "2_w", 1),
        ("2_step two", "3_y", 1), ("3_y", "4_step three", 1), ("4_step three", "5_z", 1),
    ]
    # dropped off at step two: passed step one (the last required step before it), not step two: p2
    assert edges(run(client, team, paths_query("funnel_path_before_step", -3, source))) == [("1_step one", "2_x", 1)]
