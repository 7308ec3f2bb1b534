"""RetentionQuery through POST /api/projects/:id/query/, number by number on hand-made events."""
import pytest

from queries import clock
from tests.conftest import error
from tests.factories import make_member, make_team
from tests.queries.events import events, person, ts

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

NOW = "2020-06-20 12:00"
CHROME, SAFARI = {"$browser": "Chrome"}, {"$browser": "Safari"}


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts(NOW))


@pytest.fixture
def activity(team):
    """Daily $pageview activity, 10-13 June 2020 (days 0-3 of the range), plus a few sign-ups.

    alice: days 0, 1, 3      bob: 0, 2 (day 2 on Safari)      carol: 1, 2 (twice on day 2)
    dave: 9 June (before the range) and day 0                  erin (personless): 2, 3
    """
    person(team, "alice")
    person(team, "bob")
    person(team, "carol")
    person(team, "dave")
    events(
        team,
        ("$pageview", "alice", "2020-06-10 09:00", CHROME),
        ("signed up", "alice", "2020-06-10 09:30", CHROME),
        ("$pageview", "alice", "2020-06-11 10:00", CHROME),
        ("$pageview", "alice", "2020-06-13 08:00", CHROME),
        ("$pageview", "alice", "2020-06-14 08:00", CHROME),  # after the range
        ("$pageview", "bob", "2020-06-10 23:30", CHROME),
        ("$pageview", "bob", "2020-06-12 01:00", SAFARI),
        ("$pageview", "carol", "2020-06-11 12:00", CHROME),
        ("$pageview", "carol", "2020-06-12 12:00", CHROME),
        ("$pageview", "carol", "2020-06-12 13:00", CHROME),
        ("signed up", "carol", "2020-06-12 12:30", CHROME),
        ("$pageview", "dave", "2020-06-09 12:00", CHROME),
        ("$pageview", "dave", "2020-06-10 12:00", CHROME),
        ("$pageview", "erin", "2020-06-12 05:00", CHROME),
        ("$pageview", "erin", "2020-06-13 05:00", CHROME),
        personless=("erin",),
    )


def retention(**retention_filter) -> dict:
    return {
        "kind": "RetentionQuery",
        "dateRange": {"date_from": "2020-06-10", "date_to": "2020-06-13"},
        "retentionFilter": {"period": "Day", "totalIntervals": 4, **retention_filter},
    }


def run(client, team, query: dict, status: int = 200) -> dict:
    response = client.post(f"/api/projects/{team.id}/query/", {"query": query, "refresh": "force_blocking"}, format="json")
    assert response.status_code == status, response.content
    return response.json()


def matrix(body: dict) -> list[list[int]]:
    return [[cell["count"] for cell in row["values"]] for row in body["results"]]


def test_recurring_daily_retention(client, team, activity):
    body = run(client, team, retention())
    assert matrix(body) == [[3, 1, 1, 1], [2, 1, 1, 0], [3, 1, 0, 0], [2, 0, 0, 0]]
    first = body["results"][0]
    assert set(first) == {"values", "label", "date"}
    assert [row["label"] for row in body["results"]] == ["Day 0", "Day 1", "Day 2", "Day 3"]
    assert [row["date"] for row in body["results"]] == [
        "2020-06-10T00:00:00Z", "2020-06-11T00:00:00Z", "2020-06-12T00:00:00Z", "2020-06-13T00:00:00Z"]
    assert [cell["label"] for cell in first["values"]] == ["Day 0", "Day 1", "Day 2", "Day 3"]
    assert body["resolved_date_range"] == {"date_from": "2020-06-10T00:00:00Z", "date_to": "2020-06-14T00:00:00Z"}
    assert body["is_cached"] is False and body["error"] is None and "SELECT" in body["hogql"]


def test_recurring_is_the_default_type_and_counts_personless_actors(client, team, activity):
    explicit = run(client, team, retention(retentionType="retention_recurring"))
    assert matrix(explicit) == matrix(run(client, team, retention()))
    # Erin (personless) is the only actor of day 2 who came back on day 3.
    assert matrix(explicit)[2][1] == 1


def test_first_time_retention(client, team, activity):
    body = run(client, team, retention(retentionType="retention_first_time"))
    # Dave's first pageview (9 June) is before the range: he is in no cohort.
    assert matrix(body) == [[2, 1, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]


def test_first_ever_occurrence_needs_the_first_event_to_match_the_filters(client, team, activity):
    target = {"id": "$pageview", "type": "events", "properties": [{"key": "$browser", "value": "Safari", "type": "event"}]}
    body = run(client, team, retention(retentionType="retention_first_ever_occurrence", targetEntity=target))
    # Bob's first-ever pageview was on Chrome, so no one qualifies ...
    assert matrix(body) == [[0, 0, 0, 0]] * 4
    # ... while "first time" takes the first pageview matching the filters (bob, day 2).
    body = run(client, team, retention(retentionType="retention_first_time", targetEntity=target))
    assert matrix(body) == [[0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]


def test_cumulative_counts_an_actor_at_every_interval_up_to_its_last_return(client, team, activity):
    body = run(client, team, retention(cumulative=True))
    assert matrix(body) == [[3, 2, 2, 1], [2, 2, 1, 0], [3, 1, 0, 0], [2, 0, 0, 0]]


def test_target_and_returning_entities(client, team, activity):
    body = run(client, team, retention(
        targetEntity={"id": "signed up", "type": "events", "name": "signed up"},
        returningEntity={"id": "$pageview", "type": "events"},
    ))
    # Alice signed up on day 0 and viewed pages on days 1 and 3; carol's same-day pageviews do not count.
    assert matrix(body) == [[1, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]


def test_minimum_occurrences(client, team, activity):
    body = run(client, team, retention(minimumOccurrences=2))
    # Only carol's day 2 has two pageviews.
    assert matrix(body) == [[3, 0, 0, 0], [2, 1, 0, 0], [3, 0, 0, 0], [2, 0, 0, 0]]


def test_property_filters_apply_to_both_entities(client, team, activity):
    query = {**retention(), "properties": [{"key": "$browser", "value": "Chrome", "operator": "exact", "type": "event"}]}
    assert matrix(run(client, team, query)) == [[3, 1, 0, 1], [2, 1, 1, 0], [2, 1, 0, 0], [2, 0, 0, 0]]
    returning = {"id": "$pageview", "type": "events", "properties": [{"key": "$browser", "value": "Safari"}]}
    assert matrix(run(client, team, retention(returningEntity=returning))) == [[3, 0, 1, 0], [2, 0, 0, 0], [3, 0, 0, 0], [2, 0, 0, 0]]


def test_test_account_filters(client, team, activity):
    team.test_account_filters = [{"key": "$browser", "value": "Safari", "operator": "is_not", "type": "event"}]
    team.save()
    assert matrix(run(client, team, {**retention(), "filterTestAccounts": True})) == [[3, 1, 0, 1], [2, 1, 1, 0], [2, 1, 0, 0], [2, 0, 0, 0]]


def test_person_property_filter(client, team, activity):
    person(team, "frank", properties={"plan": "pro"})
    events(team, ("$pageview", "frank", "2020-06-11 09:00"), ("$pageview", "frank", "2020-06-13 09:00"))
    query = {**retention(), "properties": [{"key": "plan", "value": "pro", "type": "person"}]}
    assert matrix(run(client, team, query)) == [[0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]]


def test_breakdown_by_event_property_with_limit(client, team, activity):
    query = {**retention(), "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"}}
    body = run(client, team, query)
    assert [row["breakdown_value"] for row in body["results"]] == ["Chrome"] * 4 + ["Safari"] * 4
    assert matrix(body) == [[3, 1, 0, 1], [2, 1, 1, 0], [2, 1, 0, 0], [2, 0, 0, 0],
                            [0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert set(body["results"][0]) == {"values", "label", "date", "breakdown_value"}

    limited = run(client, team, {**query, "breakdownFilter": {**query["breakdownFilter"], "breakdown_limit": 1}})
    assert [row["breakdown_value"] for row in limited["results"]] == ["Chrome"] * 4 + ["$$_posthog_breakdown_other_$$"] * 4
    assert matrix(limited)[4:] == [[0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]


def test_breakdown_by_person_property_missing_value_is_empty_string(client, team):
    person(team, "p1", properties={"plan": "pro"})
    person(team, "p2")
    events(team, ("$pageview", "p1", "2020-06-10 09:00"), ("$pageview", "p1", "2020-06-11 09:00"),
           ("$pageview", "p2", "2020-06-10 09:00"))
    query = {**retention(), "breakdownFilter": {"breakdowns": [{"property": "plan", "type": "person"}]}}
    body = run(client, team, query)
    # Ranked by cohort sizes summed over all cohorts: "pro" 2 (days 0 and 1), "" 1.
    assert [(row["breakdown_value"], row["values"][0]["count"], row["values"][1]["count"]) for row in body["results"][::4]] == [
        ("pro", 1, 1), ("", 1, 0)]


def test_default_range_is_total_intervals_ending_today(client, team):
    person(team, "alice")
    events(team, ("$pageview", "alice", "2020-06-13 10:00"), ("$pageview", "alice", "2020-06-20 09:00"))
    body = run(client, team, {"kind": "RetentionQuery", "retentionFilter": {}})
    # Default: Day period, 8 intervals (the schema's totalIntervals default) ending with today.
    assert [row["date"][:10] for row in body["results"]] == [f"2020-06-{day}" for day in range(13, 21)]
    assert len(body["results"][0]["values"]) == 8
    assert body["results"][0]["values"][7]["count"] == 1 and matrix(body)[0][0] == 1
    assert matrix(body)[7] == [1, 0, 0, 0, 0, 0, 0, 0]


def test_weekly_retention_weeks_start_on_sunday(client, team):
    person(team, "alice")
    person(team, "bob")
    events(
        team,
        ("$pageview", "alice", "2020-06-06 10:00"),  # Saturday: week of Sunday 31 May
        ("$pageview", "alice", "2020-06-07 10:00"),  # Sunday: next week
        ("$pageview", "bob", "2020-06-08 10:00"),
        ("$pageview", "bob", "2020-06-20 10:00"),
    )
    query = {"kind": "RetentionQuery", "dateRange": {"date_from": "2020-06-01", "date_to": "2020-06-20"},
             "retentionFilter": {"period": "Week", "totalIntervals": 3}}
    body = run(client, team, query)
    assert [row["date"] for row in body["results"]] == ["2020-05-31T00:00:00Z", "2020-06-07T00:00:00Z", "2020-06-14T00:00:00Z"]
    assert [row["label"] for row in body["results"]] == ["Week 0", "Week 1", "Week 2"]
    assert matrix(body) == [[1, 1, 0], [2, 1, 0], [1, 0, 0]]


def test_hourly_and_monthly_periods(client, team):
    person(team, "alice")
    events(team, ("$pageview", "alice", "2020-06-20 09:10"), ("$pageview", "alice", "2020-06-20 11:59"),
           ("$pageview", "alice", "2020-04-30 23:00"), ("$pageview", "alice", "2020-06-02 00:00"))
    hourly = run(client, team, {"kind": "RetentionQuery", "dateRange": {"date_from": "-3h"},
                                "retentionFilter": {"period": "Hour", "totalIntervals": 3}})
    assert [row["date"] for row in hourly["results"]] == [
        "2020-06-20T09:00:00Z", "2020-06-20T10:00:00Z", "2020-06-20T11:00:00Z", "2020-06-20T12:00:00Z"]
    assert [row["label"] for row in hourly["results"]][:2] == ["Hour 0", "Hour 1"]
    assert matrix(hourly) == [[1, 0, 1], [0, 0, 0], [1, 0, 0], [0, 0, 0]]

    monthly = run(client, team, {"kind": "RetentionQuery", "retentionFilter": {"period": "Month", "totalIntervals": 3}})
    assert [row["date"] for row in monthly["results"]] == ["2020-04-01T00:00:00Z", "2020-05-01T00:00:00Z", "2020-06-01T00:00:00Z"]
    assert matrix(monthly) == [[1, 0, 1], [0, 0, 0], [1, 0, 0]]


def test_intervals_follow_the_team_timezone(client, api_client):
    team = make_team(name="New York")
    team.timezone = "America/New_York"
    team.save()
    person(team, "alice")
    # 02:00 UTC on 12 June is 22:00 on 11 June in New York (UTC-4).
    events(team, ("$pageview", "alice", "2020-06-11 14:00"), ("$pageview", "alice", "2020-06-12 02:00"),
           ("$pageview", "alice", "2020-06-12 14:00"))
    api = api_client(user=make_member(team))
    body = run(api, team, {**retention(), "dateRange": {"date_from": "2020-06-11", "date_to": "2020-06-12"}})
    assert [row["date"] for row in body["results"]] == ["2020-06-11T00:00:00-04:00", "2020-06-12T00:00:00-04:00"]
    assert matrix(body) == [[1, 1, 0, 0], [1, 0, 0, 0]]
    assert body["timezone"] == "America/New_York"


def test_other_teams_events_are_invisible(client, team, activity):
    other = make_team(name="Other")
    person(other, "mallory")
    events(other, ("$pageview", "mallory", "2020-06-10 10:00"), ("$pageview", "mallory", "2020-06-11 10:00"))
    assert matrix(run(client, team, retention()))[0] == [3, 1, 1, 1]
    # Another team's id in the URL is not this key's project.
    response = client.post(f"/api/projects/{other.id}/query/", {"query": retention()}, format="json")
    assert response.status_code == 403


def test_empty_range_and_date_from_after_date_to(client, team):
    body = run(client, team, retention())
    assert matrix(body) == [[0, 0, 0, 0]] * 4
    backwards = run(client, team, {**retention(), "dateRange": {"date_from": "2020-06-15", "date_to": "2020-06-10"}})
    assert backwards["results"] == []


@pytest.mark.parametrize(
    "retention_filter, detail",
    [
        ({"targetEntity": {"id": 3, "type": "actions"}}, "targetEntity: Action ID 3 does not exist!"),
        ({"returningEntity": {"id": 3, "kind": "ActionsNode"}}, "returningEntity: Action ID 3 does not exist!"),
        ({"totalIntervals": -1}, "totalIntervals must be at least 1."),
        ({"totalIntervals": 10**9}, "totalIntervals must be at most 250000."),
        ({"minimumOccurrences": -1}, "minimumOccurrences must be at least 1."),
        ({"timeWindowMode": "24_hour_windows"}, "The 24_hour_windows time window mode is not supported."),
        ({"period": "Hour", "totalIntervals": 500},
         "The retention matrix would have more than 250000 cells. Use a shorter date range, a longer period or fewer totalIntervals."),
    ],
)
def test_invalid_queries_are_400(client, team, retention_filter, detail):
    query = {**retention(**retention_filter), "dateRange": {"date_from": "-60d"}}
    body = run(client, team, query, status=400)
    assert body == error("validation_error", "invalid_input", detail)


def test_bad_shapes_are_400(client, team):
    body = run(client, team, {"kind": "RetentionQuery", "retentionFilter": {"period": "Year"}}, status=400)
    assert body["type"] == "invalid_request" and body["code"] == "parse_error"
    body = run(client, team, {**retention(), "aggregation_group_type_index": 7}, status=400)
    assert body == error("validation_error", "invalid_input", "Invalid group type index: 7 (0 to 4).")
    body = run(client, team, {**retention(), "breakdownFilter": {"breakdown": "1", "breakdown_type": "cohort"}}, status=400)
    assert body == error("validation_error", "invalid_input", "Could not find cohort with ID 1")


def test_cached_result_and_query_count(client, team, activity, django_assert_max_num_queries):
    first = run(client, team, retention())
    with django_assert_max_num_queries(10):
        response = client.post(f"/api/projects/{team.id}/query/", {"query": retention()}, format="json")
    assert response.status_code == 200
    assert response.json()["is_cached"] is True and matrix(response.json()) == matrix(first)


def test_saved_insight_result(client, team, activity):
    created = client.post(f"/api/projects/{team.id}/insights/", {"name": "Retention", "query": {"kind": "InsightVizNode", "source": retention()}},
                          format="json")
    assert created.status_code == 201, created.content
    response = client.get(f"/api/projects/{team.id}/insights/{created.json()['id']}/?refresh=blocking")
    assert response.status_code == 200
    body = response.json()
    assert body["is_cached"] is False and body["filters_hash"].startswith("cache_")
    assert [[cell["count"] for cell in row["values"]] for row in body["result"]] == [[3, 1, 1, 1], [2, 1, 1, 0], [3, 1, 0, 0], [2, 0, 0, 0]]


@pytest.mark.parametrize("date_range", [{"date_from": "-10000000d"}, {"date_to": "-99999999y"}])
def test_dates_out_of_bounds_are_400(client, team, date_range):
    body = run(client, team, {**retention(), "dateRange": date_range}, status=400)
    assert body["type"] == "validation_error" and body["detail"].startswith("The date range is out of bounds: ")
