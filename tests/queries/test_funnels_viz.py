"""FunnelsQuery `time_to_convert` and `trends` visualisations, and funnels saved as insights."""
import pytest

from queries import clock
from tests.conftest import error
from tests.queries.events import events, ts
from tests.queries.test_funnels_steps import NOW, funnel, run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts(NOW))


# --- Time to convert --------------------------------------------------------------------------------


@pytest.fixture
def conversions(team):
    """Step one -> two in 3600 s (user a, who also reaches step three 2 h later), 2220 s and 82800 s."""
    events(
        team,
        ("step one", "user a", "2021-06-08 18:00"), ("step two", "user a", "2021-06-08 19:00"), ("step three", "user a", "2021-06-08 21:00"),
        ("step one", "user b", "2021-06-09 13:00"), ("step two", "user b", "2021-06-09 13:37"),
        ("step one", "user c", "2021-06-11 07:00"), ("step two", "user c", "2021-06-12 06:00"),
    )


def time_to_convert(*steps, **funnels_filter) -> dict:
    return funnel(*(steps or ("step one", "step two", "step three")), date_from="2021-06-07", date_to="2021-06-13",
                  funnelsFilter={"funnelVizType": "time_to_convert", "funnelWindowInterval": 7, **funnels_filter})


def test_time_to_convert_auto_bins(client, team, conversions):
    body = run(client, team, time_to_convert(funnelFromStep=0, funnelToStep=1))
    assert body["results"] == {"average_conversion_time": 29540.0, "bins": [[2220, 2], [42510, 0], [82800, 1]]}


def test_time_to_convert_custom_bins(client, team, conversions):
    body = run(client, team, time_to_convert(funnelFromStep=0, funnelToStep=1, binCount=7))
    assert body["results"] == {
        "average_conversion_time": 29540.0,
        "bins": [[2220, 2], [13732, 0], [25244, 0], [36756, 0], [48268, 0], [59780, 0], [71292, 1], [82804, 0]],
    }
    one_bin = run(client, team, time_to_convert(funnelFromStep=0, funnelToStep=1, binCount=0))["results"]
    assert one_bin["bins"] == [[2220, 2], [82800, 1]]


def test_time_to_convert_defaults_to_the_whole_funnel(client, team, conversions):
    # Only user a reaches step three, 10800 s after step one; one value gets the minimum 60 s bin width.
    assert run(client, team, time_to_convert())["results"] == {"average_conversion_time": 10800.0, "bins": [[10800, 1], [10860, 0]]}
    assert run(client, team, time_to_convert(funnelFromStep=1, funnelToStep=2))["results"] == {
        "average_conversion_time": 7200.0, "bins": [[7200, 1], [7260, 0]]}


def test_time_to_convert_without_conversions(client, team, conversions):
    body = run(client, team, time_to_convert("step one", "never"))
    assert body["results"] == {"average_conversion_time": None, "bins": [[0, 0], [60, 0]]}


def test_time_to_convert_unordered(client, team):
    events(
        team,
        ("step three", "user a", "2021-06-08 18:00"), ("step one", "user a", "2021-06-08 19:00"), ("step two", "user a", "2021-06-08 21:00"),
        ("step one", "user b", "2021-06-09 13:00"), ("step two", "user b", "2021-06-09 13:37"),
        ("step two", "user c", "2021-06-11 07:00"), ("step one", "user c", "2021-06-12 06:00"),
    )
    body = run(client, team, time_to_convert(funnelFromStep=0, funnelToStep=1, funnelOrderType="unordered"))
    # Unordered: the time between the first two steps done, whichever they are.
    assert body["results"] == {"average_conversion_time": 29540.0, "bins": [[2220, 2], [42510, 0], [82800, 1]]}


def test_time_to_convert_needs_a_later_step(client, team):
    body = run(client, team, time_to_convert("step one"), status=400)
    assert body == error("validation_error", "invalid_input", "Filter parameter funnel_to_step can only be one of  for time to convert!")


# --- Trends -----------------------------------------------------------------------------------------


def trends(*steps, date_from="2021-05-01", date_to="2021-05-07", **fields) -> dict:
    funnels_filter = {"funnelVizType": "trends", "funnelWindowInterval": 7, **fields.pop("funnelsFilter", {})}
    return funnel(*(steps or ("a", "b")), date_from=date_from, date_to=date_to, funnelsFilter=funnels_filter, **fields)


@pytest.fixture
def entrances(team):
    events(
        team,
        ("a", "p1", "2021-05-01 10:00"), ("b", "p1", "2021-05-01 11:00"),
        ("a", "p2", "2021-05-01 12:00"),
        ("a", "p3", "2021-05-02 23:00"), ("b", "p3", "2021-05-03 01:00"),
        ("a", "p4", "2021-05-04 08:00"), ("a", "p4", "2021-05-04 09:00"), ("b", "p4", "2021-05-04 10:00"),
        ("a", "p1", "2021-05-05 10:00"),
    )


def test_conversion_rate_per_entrance_day(client, team, entrances):
    body = run(client, team, trends())
    assert body["results"] == [{
        "count": 7,
        "data": [50.0, 100.0, 0, 100.0, 0.0, 0, 0],
        "days": ["2021-05-01", "2021-05-02", "2021-05-03", "2021-05-04", "2021-05-05", "2021-05-06", "2021-05-07"],
        "labels": ["1-May-2021", "2-May-2021", "3-May-2021", "4-May-2021", "5-May-2021", "6-May-2021", "7-May-2021"],
    }]


def test_conversion_rate_between_chosen_steps(client, team):
    events(
        team,
        ("a", "p1", "2021-05-01 10:00"), ("b", "p1", "2021-05-01 11:00"), ("c", "p1", "2021-05-01 12:00"),
        ("a", "p2", "2021-05-01 10:00"), ("b", "p2", "2021-05-01 11:00"),
        ("a", "p3", "2021-05-01 10:00"),
    )
    body = run(client, team, trends("a", "b", "c", funnelsFilter={"funnelFromStep": 1, "funnelToStep": 2}))
    assert body["results"][0]["data"][:2] == [50.0, 0]
    assert run(client, team, trends("a", "b", "c"))["results"][0]["data"][:2] == [33.33, 0]


def test_trends_conversion_window(client, team, entrances):
    body = run(client, team, trends(funnelsFilter={"funnelWindowInterval": 90, "funnelWindowIntervalUnit": "minute"}))
    assert body["results"][0]["data"] == [50.0, 0.0, 0, 100.0, 0.0, 0, 0]


def test_hourly_trends(client, team, entrances):
    body = run(client, team, trends(date_from="2021-05-01 09:00", date_to="2021-05-01 12:59", interval="hour"))
    result = body["results"][0]
    assert result["data"] == [0, 100.0, 0, 0.0]
    assert result["days"] == ["2021-05-01 09:00:00", "2021-05-01 10:00:00", "2021-05-01 11:00:00", "2021-05-01 12:00:00"]
    assert result["labels"] == ["1-May 09:00", "1-May 10:00", "1-May 11:00", "1-May 12:00"]


def test_trends_follow_the_team_timezone(client, team, entrances):
    team.timezone = "Asia/Tokyo"
    team.save()
    # p3 enters at 2021-05-03 08:00 in Tokyo; p1 and p2 on 1 May in the evening.
    data = run(client, team, trends())["results"][0]["data"]
    assert data == [50.0, 0, 100.0, 100.0, 0.0, 0, 0]


def test_trends_with_breakdown(client, team):
    events(
        team,
        ("a", "p1", "2021-05-01 10:00", {"$browser": "Chrome"}), ("b", "p1", "2021-05-01 11:00", {"$browser": "Chrome"}),
        ("a", "p2", "2021-05-01 12:00", {"$browser": "Safari"}),
        ("a", "p3", "2021-05-02 12:00", {"$browser": "Safari"}), ("b", "p3", "2021-05-02 13:00", {"$browser": "Safari"}),
    )
    body = run(client, team, trends(date_to="2021-05-03", breakdownFilter={"breakdown": "$browser", "breakdown_type": "event"}))
    assert [(item["breakdown_value"], item["data"], item["count"]) for item in body["results"]] == [
        (["Chrome"], [100.0, 0, 0], 3),
        (["Safari"], [0.0, 100.0, 0], 3),
    ]
    limited = trends(date_to="2021-05-03", breakdownFilter={"breakdown": "$browser", "breakdown_type": "event", "breakdown_limit": 1})
    assert [item["breakdown_value"] for item in run(client, team, limited)["results"]] == [["Safari"]]


def test_trends_without_events(client, team):
    assert run(client, team, trends(date_to="2021-05-02"))["results"] == [
        {"count": 2, "data": [0, 0], "days": ["2021-05-01", "2021-05-02"], "labels": ["1-May-2021", "2-May-2021"]}]
    breakdown = trends(date_to="2021-05-02", breakdownFilter={"breakdown": "$browser", "breakdown_type": "event"})
    assert run(client, team, breakdown)["results"] == []


def test_unordered_trends_are_refused(client, team):
    body = run(client, team, trends(funnelsFilter={"funnelOrderType": "unordered"}), status=400)
    assert body == error("validation_error", "invalid_input", "Funnel trends are not supported for unordered funnels.")


def test_strict_trends(client, team):
    events(
        team,
        ("a", "p1", "2021-05-01 10:00"), ("b", "p1", "2021-05-01 11:00"),
        ("a", "p2", "2021-05-01 10:00"), ("c", "p2", "2021-05-01 10:30"), ("b", "p2", "2021-05-01 11:00"),
    )
    assert run(client, team, trends(date_to="2021-05-01", funnelsFilter={"funnelOrderType": "strict"}))["results"][0]["data"] == [50.0]


# --- Saved insights ---------------------------------------------------------------------------------


def test_saved_funnel_insight_result(client, team):
    events(team, ("a", "p1", "2021-05-01 10:00"), ("b", "p1", "2021-05-01 11:00"), ("a", "p2", "2021-05-01 10:00"))
    query = {"kind": "InsightVizNode", "source": funnel("a", "b")}
    created = client.post(f"/api/projects/{team.id}/insights/", {"name": "Funnel", "query": query}, format="json")
    assert created.status_code == 201, created.content
    response = client.get(f"/api/projects/{team.id}/insights/{created.json()['id']}/?refresh=blocking")
    assert response.status_code == 200
    body = response.json()
    assert body["is_cached"] is False and body["filters_hash"].startswith("cache_")
    assert [step["count"] for step in body["result"]] == [2, 1]
    assert body["result"][1]["average_conversion_time"] == 3600.0
    # The insights list derives the kind from the query: FUNNELS.
    listed = client.get(f"/api/projects/{team.id}/insights/?insight=FUNNELS")
    assert [item["id"] for item in listed.json()["results"]] == [created.json()["id"]]
