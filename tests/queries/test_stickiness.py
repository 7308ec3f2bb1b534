"""StickinessQuery through POST /api/projects/:id/query/, number by number on hand-made events."""
import pytest

from queries import clock
from tests.conftest import error
from tests.factories import make_member, make_team
from tests.queries.events import events, person, ts

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

NOW = "2020-01-20 12:00"


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts(NOW))


@pytest.fixture
def activity(team):
    """Active days within 10-16 January: s1 three (two events on the 11th), s2 two, s3, s4 and anon one each."""
    for distinct_id in ("s1", "s2", "s3", "s4"):
        person(team, distinct_id)
    events(
        team,
        ("$pageview", "s1", "2020-01-10 10:00"),
        ("$pageview", "s1", "2020-01-11 10:00"),
        ("$pageview", "s1", "2020-01-11 11:00"),
        ("$pageview", "s1", "2020-01-12 10:00"),
        ("signed up", "s1", "2020-01-13 10:00"),
        ("$pageview", "s2", "2020-01-10 00:00"),
        ("$pageview", "s2", "2020-01-16 23:59:59"),
        ("$pageview", "s3", "2020-01-13 10:00"),
        ("$pageview", "s4", "2020-01-09 23:59:59"),
        ("$pageview", "s4", "2020-01-15 10:00"),
        ("$pageview", "s4", "2020-01-17 00:00"),
        ("$pageview", "anon", "2020-01-14 08:00"),
        ("$pageview", "anon", "2020-01-14 09:00"),
        personless=("anon",),
    )


def stickiness(**fields) -> dict:
    return {
        "kind": "StickinessQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview"}],
        "dateRange": {"date_from": "2020-01-10", "date_to": "2020-01-16"},
        **fields,
    }


def run(client, team, query: dict, status: int = 200) -> dict:
    response = client.post(f"/api/projects/{team.id}/query/", {"query": query, "refresh": "force_blocking"}, format="json")
    assert response.status_code == status, response.content
    return response.json()


def test_daily_stickiness(client, team, activity):
    body = run(client, team, stickiness())
    assert len(body["results"]) == 1
    series = body["results"][0]
    assert series == {
        "count": 5,
        "data": [3, 1, 1, 0, 0, 0, 0],
        "days": [1, 2, 3, 4, 5, 6, 7],
        "label": "$pageview",
        "labels": ["1 day", "2 days", "3 days", "4 days", "5 days", "6 days", "7 days"],
        "action": {"order": 0, "type": "events", "name": "$pageview", "id": "$pageview", "custom_name": None},
    }
    assert body["resolved_date_range"] == {"date_from": "2020-01-10T00:00:00Z", "date_to": "2020-01-16T23:59:59.999999Z"}
    assert body["error"] is None and "COUNT(*)" in body["hogql"]


def test_cumulative(client, team, activity):
    series = run(client, team, stickiness(stickinessFilter={"computedAs": "cumulative"}))["results"][0]
    assert series["data"] == [5, 2, 1, 0, 0, 0, 0] and series["count"] == 5
    assert series["labels"][:2] == ["1 day or more", "2 days or more"]


@pytest.mark.parametrize("criteria, data", [
    ({"operator": "gte", "value": 2}, [2, 0, 0, 0, 0, 0, 0]),
    # Intervals with a single event: s1 the 10th and 12th, s2 two days, s3 and s4 one each, anon none.
    ({"operator": "exact", "value": 1}, [2, 2, 0, 0, 0, 0, 0]),
    ({"operator": "lte", "value": 1}, [2, 2, 0, 0, 0, 0, 0]),
])
def test_stickiness_criteria_count_events_per_interval(client, team, activity, criteria, data):
    series = run(client, team, stickiness(stickinessFilter={"stickinessCriteria": criteria}))["results"][0]
    assert series["data"] == data


def test_interval_count_groups_intervals_back_from_date_to(client, team, activity):
    series = run(client, team, stickiness(intervalCount=2))["results"][0]
    # Blocks of two days ending on the 16th: 15-16, 13-14, 11-12, 10 (and the 9th).
    assert series["days"] == [1, 2, 3, 4] and series["data"] == [3, 2, 0, 0]
    assert series["labels"] == ["1 day", "2 days", "3 days", "4 days"]


def test_several_series_and_compare_to_previous_period(client, team, activity):
    query = stickiness(series=[{"kind": "EventsNode", "event": "$pageview"}, {"kind": "EventsNode", "event": "signed up", "custom_name": "Sign-ups"}],
                       compareFilter={"compare": True})
    results = run(client, team, query)["results"]
    assert [(r["label"], r["compare_label"], r["action"]["order"], r["data"][:3]) for r in results] == [
        ("$pageview", "current", 0, [3, 1, 1]),
        ("$pageview", "previous", 0, [1, 0, 0]),  # s4 on the 9th (3-9 January)
        ("signed up", "current", 1, [1, 0, 0]),
        ("signed up", "previous", 1, [0, 0, 0]),
    ]
    assert all(r["compare"] is True for r in results) and results[2]["action"]["custom_name"] == "Sign-ups"
    shifted = run(client, team, stickiness(compareFilter={"compare": True, "compare_to": "-1d"}))["results"]
    # 9-15 January: s2, s3 and anon one day, s4 two (the 9th and 15th), s1 three.
    assert shifted[1]["data"] == [3, 1, 1, 0, 0, 0, 0]


def test_property_filters_and_hogql_actor(client, team, activity):
    person(team, "s6", properties={"plan": "pro"})
    events(team, ("$pageview", "s6", "2020-01-11 10:00", {"$browser": "Safari"}), ("$pageview", "s6", "2020-01-12 10:00"))
    pro = run(client, team, stickiness(properties=[{"key": "plan", "value": "pro", "type": "person"}]))["results"][0]
    assert pro["data"] == [0, 1, 0, 0, 0, 0, 0]
    safari = run(client, team, stickiness(series=[{"kind": "EventsNode", "event": "$pageview",
                                                   "properties": [{"key": "$browser", "value": "Safari"}]}]))["results"][0]
    assert safari["data"] == [1, 0, 0, 0, 0, 0, 0]
    by_event = run(client, team, stickiness(series=[{"kind": "EventsNode", "math": "hogql", "math_hogql": "event"}]))["results"][0]
    # Two "actors": $pageview (active all 7 days) and signed up (the 13th).
    assert by_event["label"] == "All events" and by_event["data"] == [1, 0, 0, 0, 0, 0, 1]


def test_weekly_and_hourly_intervals(client, team):
    person(team, "w")
    events(team, ("$pageview", "w", "2020-01-01 10:00"), ("$pageview", "w", "2020-01-04 10:00"),
           ("$pageview", "w", "2020-01-14 10:00"), ("$pageview", "w", "2020-01-20 09:30"), ("$pageview", "w", "2020-01-20 11:30"))
    weekly = run(client, team, stickiness(interval="week", dateRange={"date_from": "2020-01-01", "date_to": "2020-01-18"}))["results"][0]
    assert weekly["days"] == [1, 2, 3] and weekly["data"] == [0, 1, 0] and weekly["labels"] == ["1 week", "2 weeks", "3 weeks"]
    hourly = run(client, team, stickiness(interval="hour", dateRange={"date_from": "-3h"}))["results"][0]
    assert hourly["days"] == [1, 2, 3, 4] and hourly["data"] == [0, 1, 0, 0] and hourly["labels"][0] == "1 hour"


def test_intervals_follow_the_team_timezone(client, api_client):
    team = make_team(name="Los Angeles")
    team.timezone = "America/Los_Angeles"
    team.save()
    api = api_client(user=make_member(team))
    person(team, "la")
    # 20:00 UTC on the 10th and 05:00 UTC on the 11th are both 10 January in Los Angeles (UTC-8).
    events(team, ("$pageview", "la", "2020-01-10 20:00"), ("$pageview", "la", "2020-01-11 05:00"))
    assert run(api, team, stickiness())["results"][0]["data"][:2] == [1, 0]
    assert run(api, team, stickiness(dateRange={"date_from": "2020-01-10", "date_to": "2020-01-10"}))["results"][0]["data"] == [1]


def test_other_teams_events_are_invisible(client, team, activity):
    other = make_team(name="Other")
    person(other, "o")
    events(other, ("$pageview", "o", "2020-01-10 10:00"))
    assert run(client, team, stickiness())["results"][0]["data"][0] == 3


@pytest.mark.parametrize(
    "fields, code, detail",
    [
        ({"stickinessFilter": {"stickinessCriteria": {"operator": "gte", "value": -1}}}, "stickiness_criteria_negative",
         "Stickiness criteria value must be non-negative."),
        ({"stickinessFilter": {"stickinessCriteria": {"operator": "exact", "value": 0}}}, "stickiness_criteria_zero_incompatible",
         "Stickiness criteria with operator exact or lte must use a value greater than 0."),
        ({"intervalCount": 0}, "stickiness_interval_count_non_positive", "intervalCount must be a positive integer."),
        ({"intervalCount": 366}, "stickiness_interval_count_too_large", "intervalCount cannot exceed 365."),
        ({"series": [{"kind": "ActionsNode", "id": 4}]}, "invalid_input", "Action ID 4 does not exist!"),
        ({"interval": "minute", "dateRange": {"date_from": "-30d"}}, "invalid_input",
         "The date range has more than 10000 minute intervals. Use a shorter date range or a longer interval."),
    ],
)
def test_invalid_queries_are_400(client, team, fields, code, detail):
    assert run(client, team, stickiness(**fields), status=400) == error("validation_error", code, detail)


def test_query_count(client, team, activity, django_assert_max_num_queries):
    with django_assert_max_num_queries(10):
        run(client, team, stickiness())


def test_saved_insight_result(client, team, activity):
    created = client.post(f"/api/projects/{team.id}/insights/",
                          {"name": "Stickiness", "query": {"kind": "InsightVizNode", "source": stickiness()}}, format="json")
    assert created.status_code == 201, created.content
    response = client.get(f"/api/projects/{team.id}/insights/{created.json()['id']}/?refresh=blocking")
    assert response.status_code == 200
    body = response.json()
    assert body["is_cached"] is False and body["filters_hash"].startswith("cache_")
    assert body["result"][0]["data"] == [3, 1, 1, 0, 0, 0, 0]


@pytest.mark.parametrize("date_range", [{"date_from": "-10000000d"}, {"date_to": "-99999999y"}])
def test_dates_out_of_bounds_are_400(client, team, date_range):
    body = run(client, team, {**stickiness(), "dateRange": date_range}, status=400)
    assert body["type"] == "validation_error" and body["detail"].startswith("The date range is out of bounds: ")
