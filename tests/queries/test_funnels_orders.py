"""FunnelsQuery order types (strict, unordered) and exclusions, number by number on hand-made events."""
import pytest

from queries import clock
from tests.conftest import error
from tests.queries.events import events, ts
from tests.queries.test_funnels_steps import NOW, counts, funnel, run, times

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts(NOW))


def ordered_as(order: str, *steps, **fields) -> dict:
    query = funnel(*steps, **fields)
    query["funnelsFilter"]["funnelOrderType"] = order
    return query


def excluding(event: str, from_step: int, to_step: int, **fields) -> dict:
    return {"exclusions": [{"kind": "EventsNode", "event": event, "funnelFromStep": from_step, "funnelToStep": to_step, **fields}]}


# --- Strict ---------------------------------------------------------------------------------------


def test_strict_needs_the_very_next_event(client, team):
    events(
        team,
        ("a", "direct", "2021-05-02 10:00"), ("b", "direct", "2021-05-02 11:00"), ("c", "direct", "2021-05-02 12:00"),
        ("a", "interrupted", "2021-05-02 10:00"), ("other", "interrupted", "2021-05-02 10:30"), ("b", "interrupted", "2021-05-02 11:00"),
        ("a", "late_break", "2021-05-02 10:00"), ("b", "late_break", "2021-05-02 11:00"), ("other", "late_break", "2021-05-02 11:30"),
        ("c", "late_break", "2021-05-02 12:00"),
        ("a", "retry", "2021-05-02 10:00"), ("other", "retry", "2021-05-02 10:30"), ("a", "retry", "2021-05-02 11:00"),
        ("b", "retry", "2021-05-02 13:00"),
    )
    body = run(client, team, ordered_as("strict", "a", "b", "c"))
    assert counts(body) == [4, 3, 1]
    assert times(body) == [None, 4800.0, 3600.0]
    # The same events as an ordered funnel: interruptions do not matter.
    assert counts(run(client, team, ordered_as("ordered", "a", "b", "c"))) == [4, 4, 2]


def test_strict_keeps_the_attempt_across_repeats_of_the_same_step(client, team):
    events(
        team,
        ("a", "p1", "2021-05-02 10:00"), ("b", "p1", "2021-05-02 11:00"), ("b", "p1", "2021-05-02 12:00"), ("c", "p1", "2021-05-02 13:00"),
    )
    body = run(client, team, ordered_as("strict", "a", "b", "c"))
    assert counts(body) == [1, 1, 1]
    # The first b is the one that counts for the attempt.
    assert times(body) == [None, 3600.0, 7200.0]


def test_strict_reads_events_that_match_no_step(client, team):
    events(team, ("a", "p1", "2021-05-02 10:00"), ("$autocapture", "p1", "2021-05-02 10:10"), ("b", "p1", "2021-05-02 10:20"))
    assert counts(run(client, team, ordered_as("strict", "a", "b"))) == [1, 0]


# --- Unordered ------------------------------------------------------------------------------------


def test_unordered_counts_steps_done_in_any_order(client, team):
    events(
        team,
        ("c", "all_reversed", "2021-05-02 10:00"), ("b", "all_reversed", "2021-05-02 11:00"), ("a", "all_reversed", "2021-05-02 13:00"),
        ("b", "two", "2021-05-02 10:00"), ("c", "two", "2021-05-02 10:30"),
        ("a", "one", "2021-05-02 10:00"),
        ("a", "out_of_window", "2021-05-02 10:00"), ("b", "out_of_window", "2021-05-05 10:00"),
    )
    body = run(client, team, ordered_as("unordered", "a", "b", "c", funnelsFilter={"funnelWindowInterval": 1}))
    assert [step["name"] for step in body["results"]] == ["Completed 1 step", "Completed 2 steps", "Completed 3 steps"]
    assert {(step["action_id"], step["custom_name"], step["type"]) for step in body["results"]} == {(None, None, "events")}
    assert counts(body) == [4, 2, 1]
    # Gaps between the steps' first events in time order: c->b 1h, b->a 2h; b->c 30min.
    assert times(body) == [None, 2700.0, 7200.0]
    assert times(body, "median_conversion_time") == [None, 2700.0, 7200.0]


def test_unordered_repeated_steps_need_distinct_events(client, team):
    events(
        team,
        ("a", "once", "2021-05-02 10:00"),
        ("a", "twice", "2021-05-02 10:00"), ("a", "twice", "2021-05-02 10:20"),
        ("b", "with_b", "2021-05-02 10:00"), ("a", "with_b", "2021-05-02 10:20"), ("a", "with_b", "2021-05-02 10:30"),
    )
    body = run(client, team, ordered_as("unordered", "a", "a", "b"))
    assert counts(body) == [3, 2, 1]
    assert times(body) == [None, 1200.0, 600.0]


def test_unordered_exclusion_voids_the_window_it_cuts(client, team):
    events(
        team,
        ("a", "clean", "2021-05-02 10:00"), ("b", "clean", "2021-05-02 11:00"),
        ("a", "cut", "2021-05-02 10:00"), ("x", "cut", "2021-05-02 10:30"), ("b", "cut", "2021-05-02 11:00"),
        ("b", "after", "2021-05-02 10:00"), ("a", "after", "2021-05-02 10:10"), ("x", "after", "2021-05-02 10:30"),
    )
    body = run(client, team, ordered_as("unordered", "a", "b", funnelsFilter=excluding("x", 0, 1)))
    # "cut" keeps only the window that starts after the exclusion; "after" completed before it.
    assert counts(body) == [3, 2]


def test_unordered_rejects_partial_exclusions(client, team):
    query = ordered_as("unordered", "a", "b", "c", funnelsFilter=excluding("x", 0, 1))
    assert run(client, team, query, status=400) == error("validation_error", "invalid_input", "Partial Exclusions not allowed in unordered funnels")


# --- Exclusions -----------------------------------------------------------------------------------


def test_exclusion_drops_the_person_whose_attempt_it_cuts(client, team):
    events(
        team,
        ("user signed up", "person1", "2021-05-01 01:00"), ("paid", "person1", "2021-05-01 02:00"),
        ("user signed up", "person2", "2021-05-01 03:00"), ("x", "person2", "2021-05-01 03:30"), ("paid", "person2", "2021-05-01 04:00"),
        ("user signed up", "person3", "2021-05-01 05:00"), ("x", "person3", "2021-05-01 06:00"),
        ("user signed up", "person4", "2021-05-01 07:00"), ("x", "person4", "2021-05-02 08:00"),
    )
    query = funnel("user signed up", "paid", funnelsFilter={"funnelWindowInterval": 1, **excluding("x", 0, 1)})
    body = run(client, team, query)
    # person2 and person3 are excluded; person4's exclusion falls outside its 1-day window.
    assert counts(body) == [2, 1]
    assert times(body) == [None, 3600.0]


@pytest.mark.parametrize(
    "journey, expected",
    [
        ([("step one", "00:00:00"), ("exclusion", "00:00:01"), ("step one", "00:00:31")], [1, 0]),
        ([("step one", "00:00:00"), ("step one", "00:00:31"), ("exclusion", "00:00:32")], [1, 0]),
        ([("step one", "00:00:00"), ("step one", "00:00:01"), ("exclusion", "00:00:02")], []),
    ],
)
def test_exclusion_with_several_attempts(client, team, journey, expected):
    events(team, *[(name, "user_one", f"2021-05-01 {at}") for name, at in journey])
    query = funnel("step one", "step two", funnelsFilter={"funnelWindowInterval": 10, "funnelWindowIntervalUnit": "second",
                                                          **excluding("exclusion", 0, 1)})
    assert [step["count"] for step in run(client, team, query)["results"]] == expected


def test_exclusion_between_later_steps_only(client, team):
    events(
        team,
        ("a", "clean", "2021-05-02 10:00"), ("b", "clean", "2021-05-02 11:00"), ("c", "clean", "2021-05-02 12:00"),
        ("a", "early_x", "2021-05-02 10:00"), ("x", "early_x", "2021-05-02 10:30"), ("b", "early_x", "2021-05-02 11:00"),
        ("c", "early_x", "2021-05-02 12:00"),
        ("a", "late_x", "2021-05-02 10:00"), ("b", "late_x", "2021-05-02 11:00"), ("x", "late_x", "2021-05-02 11:30"),
        ("c", "late_x", "2021-05-02 12:00"),
        ("a", "x_after", "2021-05-02 10:00"), ("b", "x_after", "2021-05-02 11:00"), ("c", "x_after", "2021-05-02 12:00"),
        ("x", "x_after", "2021-05-02 12:30"),
    )
    body = run(client, team, funnel("a", "b", "c", funnelsFilter=excluding("x", 1, 2)))
    assert counts(body) == [3, 3, 3]
    body = run(client, team, funnel("a", "b", "c", funnelsFilter=excluding("x", 0, 2)))
    assert counts(body) == [2, 2, 2]


def test_exclusion_with_property_filter(client, team):
    events(
        team,
        ("a", "p1", "2021-05-02 10:00"), ("b", "p1", "2021-05-02 10:10", {"plan": "free"}), ("c", "p1", "2021-05-02 10:20"),
        ("a", "p2", "2021-05-02 10:00"), ("b", "p2", "2021-05-02 10:10", {"plan": "pro"}), ("c", "p2", "2021-05-02 10:20"),
    )
    pro = [{"key": "plan", "value": "pro", "operator": "exact", "type": "event"}]
    query = funnel("a", "c", funnelsFilter=excluding("b", 0, 1, properties=pro))
    assert counts(run(client, team, query)) == [1, 1]


def test_exclusions_in_strict_funnels(client, team):
    events(
        team,
        ("a", "p1", "2021-05-02 10:00"), ("b", "p1", "2021-05-02 10:10"),
        ("a", "p2", "2021-05-02 10:00"), ("x", "p2", "2021-05-02 10:05"), ("b", "p2", "2021-05-02 10:10"),
    )
    assert counts(run(client, team, ordered_as("strict", "a", "b", funnelsFilter=excluding("x", 0, 1)))) == [1, 1]
