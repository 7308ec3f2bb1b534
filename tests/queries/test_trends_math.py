"""Every math type of a TrendsQuery series, number by number, on one hand-made fixture.

Fixture (UTC, range 2020-01-01 .. 2020-01-05, day interval):

  day          events ($pageview unless noted)                              persons
  2019-12-31   alice (outside the range: only seen by look-back maths)
  2020-01-01   alice price=10 s1, alice2 (=alice) price=20 s1, bob price=30 s2, bob signed_up
  2020-01-02   bob price="40" s3, carol price="abc" (no session), anon1 (personless, no session)
  2020-01-03   -
  2020-01-04   alice price=5.5 s4
  2020-01-05   carol price=1 s5 at 23:59:59
  2020-01-06   carol at 00:00:00 (outside)
"""
import pytest

from tests.queries.events import events, person

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

RANGE = {"dateRange": {"date_from": "2020-01-01", "date_to": "2020-01-05"}}


@pytest.fixture
def data(team):
    person(team, "alice", "alice2", properties={"age": 30})
    person(team, "bob", properties={"age": 40})
    person(team, "carol", properties={"age": "50"})
    events(
        team,
        ("$pageview", "alice", "2019-12-31 23:59:59"),
        ("$pageview", "alice", "2020-01-01 10:00", {"price": 10}, "s1"),
        ("$pageview", "alice2", "2020-01-01 11:00", {"price": 20}, "s1"),
        ("$pageview", "bob", "2020-01-01 12:00", {"price": 30}, "s2"),
        ("signed_up", "bob", "2020-01-01 12:01"),
        ("$pageview", "bob", "2020-01-02 09:00", {"price": "40"}, "s3"),
        ("$pageview", "carol", "2020-01-02 10:00", {"price": "abc"}),
        ("$pageview", "anon1", "2020-01-02 11:00"),
        ("$pageview", "alice", "2020-01-04 08:00", {"price": 5.5}, "s4"),
        ("$pageview", "carol", "2020-01-05 23:59:59", {"price": 1}, "s5"),
        ("$pageview", "carol", "2020-01-06 00:00:00", {"price": 1000}),
        personless=("anon1",),
    )


def series(**fields):
    return [{"kind": "EventsNode", "event": "$pageview", **fields}]


@pytest.mark.parametrize(
    "math, expected",
    [
        (None, [3, 3, 0, 1, 1]),
        ("total", [3, 3, 0, 1, 1]),
        ("dau", [2, 3, 0, 1, 1]),
        ("unique_session", [2, 2, 0, 1, 1]),  # events without a session share the "" session
        ("weekly_active", [2, 4, 4, 4, 4]),  # the Dec 31 visit counts in Jan 1's window
        ("monthly_active", [2, 4, 4, 4, 4]),
        ("first_time_for_user", [1, 2, 0, 0, 0]),  # alice's first pageview was on Dec 31
        ("avg_count_per_actor", [1.5, 1.0, 0.0, 1.0, 1.0]),
        ("min_count_per_actor", [1, 1, 0, 1, 1]),
        ("max_count_per_actor", [2, 1, 0, 1, 1]),
        ("median_count_per_actor", [1.5, 1.0, 0.0, 1.0, 1.0]),
        ("p90_count_per_actor", [1.9, 1.0, 0.0, 1.0, 1.0]),
    ],
)
def test_counting_maths(data, trends, math, expected):
    [result] = trends(series(math=math), **RANGE)
    assert result["data"] == expected
    assert result["count"] == float(sum(expected))
    assert result["action"]["math"] == math


@pytest.mark.parametrize(
    "math, expected",
    [
        ("sum", [60.0, 40.0, 0.0, 5.5, 1.0]),  # "40" counts as 40, "abc" is ignored
        ("avg", [20.0, 40.0, 0.0, 5.5, 1.0]),
        ("min", [10.0, 40.0, 0.0, 5.5, 1.0]),
        ("max", [30.0, 40.0, 0.0, 5.5, 1.0]),
        ("median", [20.0, 40.0, 0.0, 5.5, 1.0]),
        ("p75", [25.0, 40.0, 0.0, 5.5, 1.0]),  # linear interpolation between 20 and 30
        ("p90", [28.0, 40.0, 0.0, 5.5, 1.0]),
        ("p95", [29.0, 40.0, 0.0, 5.5, 1.0]),
        ("p99", [29.8, 40.0, 0.0, 5.5, 1.0]),
    ],
)
def test_property_maths(data, trends, math, expected):
    [result] = trends(series(math=math, math_property="price"), **RANGE)
    assert result["data"] == pytest.approx(expected)
    assert result["action"]["math_property"] == "price"


def test_math_multiplier(data, trends):
    [result] = trends(series(math="sum", math_property="price", math_multiplier=2), **RANGE)
    assert result["data"] == [120.0, 80.0, 0.0, 11.0, 2.0]


def test_person_property_math(data, trends):
    # ages: alice 30 (two events on Jan 1), bob 40, carol "50" (numeric string); anon1 has no person
    [result] = trends(series(math="sum", math_property="age", math_property_type="person_properties"), **RANGE)
    assert result["data"] == [100.0, 90.0, 0.0, 30.0, 50.0]


def test_hogql_math(data, trends):
    [result] = trends(series(math="hogql", math_hogql="sum(toFloat(properties.price)) + count()"), **RANGE)
    assert result["data"] == [63.0, 43.0, 0.0, 6.5, 2.0]


def test_first_matching_event_for_user_applies_filters_before_taking_the_first(data, trends):
    has_price = [{"key": "price", "operator": "is_set", "type": "event"}]
    [first_matching] = trends(series(math="first_matching_event_for_user", properties=has_price), **RANGE)
    assert first_matching["data"] == [2, 1, 0, 0, 0]  # alice's first priced visit is on Jan 1
    [first_time] = trends(series(math="first_time_for_user", properties=has_price), **RANGE)
    assert first_time["data"] == [1, 1, 0, 0, 0]  # alice's very first visit (Dec 31) had no price


def test_all_events_series(data, trends):
    [result] = trends([{"kind": "EventsNode", "event": None}], **RANGE)
    assert result["data"] == [4, 3, 0, 1, 1]
    assert result["label"] == "All events"
    assert result["action"]["id"] is None and result["action"]["name"] == "All events"


def test_cumulative_display(data, trends):
    cumulative = {"trendsFilter": {"display": "ActionsLineGraphCumulative"}, **RANGE}
    [total] = trends(series(), **cumulative)
    assert total["data"] == [3, 6, 6, 7, 8] and total["count"] == 8
    # cumulative unique users count each person once, on the first day they appear
    [users] = trends(series(math="dau"), **cumulative)
    assert users["data"] == [2, 4, 4, 4, 4] and users["count"] == 4


def test_smoothing(data, trends):
    [result] = trends(series(), trendsFilter={"smoothingIntervals": 2}, **RANGE)
    assert result["data"] == [3, 3, 1, 0, 1]  # floor of the 2-day moving average


@pytest.mark.parametrize(
    "math, math_property, expected",
    [
        ("total", None, 8),
        ("dau", None, 4),
        ("unique_session", None, 6),
        ("sum", "price", 106.5),
        ("median", "price", 15.0),  # of 1, 5.5, 10, 20, 30, 40
        ("avg_count_per_actor", None, 2.0),
        ("weekly_active", None, 4),  # actors seen in the 7 days up to the end of Jan 5
    ],
)
def test_total_value_displays(data, trends, math, math_property, expected):
    for display in ("BoldNumber", "ActionsPie", "ActionsTable"):
        [result] = trends(series(math=math, math_property=math_property), trendsFilter={"display": display}, **RANGE)
        assert result["aggregated_value"] == pytest.approx(expected)
        assert result["data"] == [] and result["days"] == [] and result["count"] == 0
        assert "labels" not in result
