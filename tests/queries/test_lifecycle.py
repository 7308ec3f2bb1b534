"""LifecycleQuery through POST /api/projects/:id/query/, number by number on hand-made events."""
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
    """$pageviews around 10-15 January 2020 (the queried range) by persons with known creation times."""
    person(team, "p1", created_at="2020-01-09 10:00")
    person(team, "p2", created_at="2020-01-11 05:00")
    person(team, "p3", created_at="2019-12-01 00:00")
    person(team, "p4", created_at="2020-01-14 23:00")  # created the day before its first event
    person(team, "p5", created_at="2020-01-08 00:00")
    person(team, "p6", created_at="2020-01-12 00:00")
    events(
        team,
        ("$pageview", "p1", "2020-01-09 10:00"),
        ("$pageview", "p1", "2020-01-10 11:00"),
        ("$pageview", "p1", "2020-01-12 11:00"),
        ("$pageview", "p1", "2020-01-13 11:00"),
        ("$pageview", "p1", "2020-01-13 12:00"),
        ("$pageview", "p1", "2020-01-15 11:00"),
        ("$pageview", "p2", "2020-01-11 05:00"),
        ("$pageview", "p2", "2020-01-12 05:00"),
        ("$pageview", "p3", "2020-01-10 08:00"),
        ("$pageview", "p3", "2020-01-14 08:00"),
        ("$pageview", "p4", "2020-01-15 01:00"),
        ("$pageview", "p5", "2020-01-08 09:00"),
        ("$pageview", "p5", "2020-01-09 09:00"),
        ("$pageview", "p6", "2020-01-12 09:00", {"$process_person_profile": False}),
        ("$pageview", "ghost", "2020-01-12 09:00"),
        ("signed up", "p2", "2020-01-13 09:00"),
        personless=("ghost",),
    )


def lifecycle(**fields) -> dict:
    return {
        "kind": "LifecycleQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview", "name": "$pageview"}],
        "dateRange": {"date_from": "2020-01-10", "date_to": "2020-01-15"},
        "interval": "day",
        **fields,
    }


def run(client, team, query: dict, status: int = 200) -> dict:
    response = client.post(f"/api/projects/{team.id}/query/", {"query": query, "refresh": "force_blocking"}, format="json")
    assert response.status_code == status, response.content
    return response.json()


def by_status(body: dict) -> dict:
    return {series["status"]: series["data"] for series in body["results"]}


def test_daily_lifecycle(client, team, activity):
    body = run(client, team, lifecycle())
    assert [series["status"] for series in body["results"]] == ["new", "returning", "resurrecting", "dormant"]
    assert by_status(body) == {
        "new": [0, 1, 0, 0, 0, 0],
        "returning": [1, 0, 1, 1, 0, 0],
        "resurrecting": [1, 0, 1, 0, 1, 2],
        "dormant": [-1, -2, 0, -1, -1, -1],
    }
    new = body["results"][0]
    assert set(new) == {"action", "data", "count", "labels", "days", "label", "status"}
    assert new["action"] == {"id": "$pageview", "name": "$pageview", "type": "events", "order": 0, "math": "total"}
    assert new["label"] == "$pageview - new" and body["results"][3]["label"] == "$pageview - dormant"
    assert new["days"] == ["2020-01-10", "2020-01-11", "2020-01-12", "2020-01-13", "2020-01-14", "2020-01-15"]
    assert new["labels"] == ["10-Jan-2020", "11-Jan-2020", "12-Jan-2020", "13-Jan-2020", "14-Jan-2020", "15-Jan-2020"]
    assert [series["count"] for series in body["results"]] == [1.0, 3.0, 5.0, -6.0]
    assert all(isinstance(value, float) for series in body["results"] for value in series["data"])
    assert body["resolved_date_range"] == {"date_from": "2020-01-10T00:00:00Z", "date_to": "2020-01-15T23:59:59.999999Z"}
    assert body["error"] is None and "LAG" in body["hogql"].upper()


def test_all_events_series_and_custom_name(client, team, activity):
    body = run(client, team, lifecycle(series=[{"kind": "EventsNode", "custom_name": "Anything"}]))
    assert body["results"][0]["label"] == "All events - new"
    assert body["results"][0]["action"] == {"id": None, "name": "All events", "type": "events", "order": 0, "math": "total",
                                            "custom_name": "Anything"}
    # p2's sign-up on the 13th keeps it active that day: returning instead of dormant.
    assert by_status(body)["returning"] == [1, 0, 1, 2, 0, 0]
    assert by_status(body)["dormant"] == [-1, -2, 0, 0, -2, -1]


def test_property_filters(client, team, activity):
    person(team, "p7", properties={"plan": "pro"}, created_at="2020-01-12 08:00")
    events(team, ("$pageview", "p7", "2020-01-12 09:00", {"$browser": "Safari"}),
           ("$pageview", "p7", "2020-01-13 09:00", {"$browser": "Chrome"}))
    by_person = run(client, team, lifecycle(properties=[{"key": "plan", "value": "pro", "type": "person"}]))
    assert by_status(by_person) == {
        "new": [0, 0, 1, 0, 0, 0], "returning": [0, 0, 0, 1, 0, 0], "resurrecting": [0] * 6, "dormant": [0, 0, 0, 0, -1, 0]}
    series_filter = [{"kind": "EventsNode", "event": "$pageview", "properties": [{"key": "$browser", "value": "Safari"}]}]
    by_event = run(client, team, lifecycle(series=series_filter))
    assert by_status(by_event)["new"] == [0, 0, 1, 0, 0, 0] and by_status(by_event)["dormant"] == [0, 0, 0, -1, 0, 0]


def test_weekly_lifecycle_labels(client, team):
    person(team, "w1", created_at="2020-01-01 00:00")
    events(team, ("$pageview", "w1", "2020-01-01 10:00"), ("$pageview", "w1", "2020-01-06 10:00"),
           ("$pageview", "w1", "2020-01-16 10:00"))
    body = run(client, team, lifecycle(interval="week", dateRange={"date_from": "2020-01-01", "date_to": "2020-01-18"}))
    new = body["results"][0]
    # Weeks start on Sunday: 29 Dec, 5 Jan, 12 Jan (labels clamp to the range).
    assert new["days"] == ["2019-12-29", "2020-01-05", "2020-01-12"]
    assert new["labels"] == ["1–4 Jan", "5–11 Jan", "12–18 Jan"]
    assert by_status(body) == {"new": [1, 0, 0], "returning": [0, 1, 1], "resurrecting": [0, 0, 0], "dormant": [0, 0, 0]}


def test_hourly_lifecycle(client, team):
    person(team, "h1", created_at="2020-01-20 09:30")
    events(team, ("$pageview", "h1", "2020-01-20 09:40"), ("$pageview", "h1", "2020-01-20 11:05"))
    body = run(client, team, lifecycle(interval="hour", dateRange={"date_from": "-3h"}))
    assert body["results"][0]["days"] == ["2020-01-20 09:00:00", "2020-01-20 10:00:00", "2020-01-20 11:00:00", "2020-01-20 12:00:00"]
    assert body["results"][0]["labels"][0] == "20-Jan 09:00"
    assert by_status(body) == {"new": [1, 0, 0, 0], "returning": [0, 0, 0, 0], "resurrecting": [0, 0, 1, 0], "dormant": [0, -1, 0, -1]}


def test_periods_follow_the_team_timezone(client, api_client):
    team = make_team(name="Tokyo")
    team.timezone = "Asia/Tokyo"
    team.save()
    api = api_client(user=make_member(team))
    person(team, "t1", created_at="2020-01-10 16:00")  # 11 Jan 01:00 in Tokyo
    # 10 Jan 16:30 UTC and 11 Jan 14:00 UTC are both 11 Jan in Tokyo (UTC+9); 11 Jan 15:30 UTC is the 12th.
    events(team, ("$pageview", "t1", "2020-01-10 16:30"), ("$pageview", "t1", "2020-01-11 14:00"),
           ("$pageview", "t1", "2020-01-11 15:30"))
    body = run(api, team, lifecycle(dateRange={"date_from": "2020-01-10", "date_to": "2020-01-13"}))
    assert by_status(body) == {"new": [0, 1, 0, 0], "returning": [0, 0, 1, 0], "resurrecting": [0, 0, 0, 0], "dormant": [0, 0, 0, -1]}


def test_other_teams_events_are_invisible(client, team, activity):
    other = make_team(name="Other")
    person(other, "x", created_at="2020-01-10 00:00")
    events(other, ("$pageview", "x", "2020-01-10 10:00"))
    assert by_status(run(client, team, lifecycle()))["new"] == [0, 1, 0, 0, 0, 0]


def test_empty_project_gives_four_zero_series(client, team):
    body = run(client, team, lifecycle())
    assert [series["data"] for series in body["results"]] == [[0.0] * 6] * 4


@pytest.mark.parametrize(
    "fields, detail",
    [
        ({"series": [{"kind": "ActionsNode", "id": 1}]}, "Action ID 1 does not exist!"),
        ({"series": []}, "A LifecycleQuery needs at least one series."),
        ({"aggregation_group_type_index": 7}, "Invalid group type index: 7 (0 to 4)."),
        ({"properties": [{"key": "x", "value": "(", "operator": "regex"}]}, "Invalid regular expression '(': missing ), unterminated subpattern at position 0"),
    ],
)
def test_invalid_queries_are_400(client, team, fields, detail):
    assert run(client, team, lifecycle(**fields), status=400) == error("validation_error", "invalid_input", detail)


def test_query_count(client, team, activity, django_assert_max_num_queries):
    with django_assert_max_num_queries(10):
        run(client, team, lifecycle())


def test_saved_insight_result(client, team, activity):
    created = client.post(f"/api/projects/{team.id}/insights/", {"name": "Lifecycle", "query": {"kind": "InsightVizNode", "source": lifecycle()}},
                          format="json")
    assert created.status_code == 201, created.content
    response = client.get(f"/api/projects/{team.id}/insights/{created.json()['id']}/?refresh=blocking")
    assert response.status_code == 200
    body = response.json()
    assert body["is_cached"] is False and body["filters_hash"].startswith("cache_")
    assert [series["data"] for series in body["result"]][0] == [0, 1, 0, 0, 0, 0]


@pytest.mark.parametrize("date_range", [{"date_from": "-10000000d"}, {"date_to": "-99999999y"}])
def test_dates_out_of_bounds_are_400(client, team, date_range):
    body = run(client, team, {**lifecycle(), "dateRange": date_range}, status=400)
    assert body["type"] == "validation_error" and body["detail"].startswith("The date range is out of bounds: ")
