"""Ordered funnels at the edges where ClickHouse's per-actor arrays (queries.sql.funnel_arrays) could
part from the window form: events at the very same instant and step slot, one event in two steps,
repeated steps, exclusions at a step's instant, the conversion window's last microsecond. Every
engine must give the same numbers."""
import pytest

from queries import clock
from tests.queries.events import events, ts
from tests.queries.test_funnels_steps import NOW, counts, funnel, run, times

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts(NOW))


def with_x(event: str) -> dict:
    return {"kind": "EventsNode", "event": event, "properties": [{"key": "x", "value": "1", "operator": "exact", "type": "event"}]}


def test_events_at_the_same_instant_do_not_extend_each_other(client, team):
    # Both "a" events share an instant and a slot (step 0); the one with x=1 also matches step 1 but
    # cannot extend the other's attempt: neither is before the other.
    events(team, ("a", "p1", "2021-05-02 10:00", {"x": "1"}), ("a", "p1", "2021-05-02 10:00"), ("b", "p1", "2021-05-02 11:00"),
           ("a", "p2", "2021-05-02 10:00"), ("a", "p2", "2021-05-02 10:00", {"x": "1"}), ("a", "p2", "2021-05-02 10:30", {"x": "1"}),
           ("b", "p2", "2021-05-02 11:00"))
    body = run(client, team, funnel("a", with_x("a"), "b"))
    assert counts(body) == [2, 1, 1]
    assert times(body) == [None, 1800.0, 1800.0]


def test_one_event_in_two_steps_and_repeats(client, team):
    events(team, ("a", "p1", "2021-05-02 10:00"), ("a", "p1", "2021-05-02 10:10"), ("a", "p1", "2021-05-02 10:10"),
           ("a", "p1", "2021-05-02 10:40"), ("a", "p2", "2021-05-02 10:00"))
    body = run(client, team, funnel("a", "a", "a"))
    assert counts(body) == [2, 1, 1]
    assert times(body) == [None, 600.0, 1800.0]


def test_exclusion_at_a_step_instant_and_at_the_window_edge(client, team):
    query = funnel("a", "b", funnelsFilter={"funnelWindowInterval": 1, "funnelWindowIntervalUnit": "hour",
                                            "exclusions": [{"kind": "EventsNode", "event": "x", "funnelFromStep": 0, "funnelToStep": 1}]})
    events(team,
           # The exclusion at b's instant comes first: the attempt is cut.
           ("a", "cut", "2021-05-02 10:00"), ("x", "cut", "2021-05-02 10:30"), ("x", "cut", "2021-05-02 10:30"),
           ("b", "cut", "2021-05-02 10:30"),
           # An exclusion at a's instant is before a: harmless.
           ("x", "before", "2021-05-02 10:00"), ("a", "before", "2021-05-02 10:00"), ("b", "before", "2021-05-02 10:20"),
           # b exactly one hour after a converts; an exclusion after that within a's hour drops the person.
           ("a", "edge", "2021-05-02 10:00"), ("b", "edge", "2021-05-02 11:00"),
           ("a", "late", "2021-05-02 10:00"), ("x", "late", "2021-05-02 10:59"),
           ("a", "past", "2021-05-02 10:00"), ("b", "past", "2021-05-02 11:00:00.000001"))
    body = run(client, team, query)
    assert counts(body) == [3, 2]
    assert times(body) == [None, 2400.0]  # before (20 min) and edge (60 min)
