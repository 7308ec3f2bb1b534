"""FunnelsQuery `steps` through POST /api/projects/:id/query/, number by number on hand-made events."""
import pytest

from queries import clock
from tests.conftest import error
from tests.factories import make_member, make_team
from tests.queries.events import events, person, ts

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

NOW = "2021-06-20 12:00"
STEP_KEYS = {"action_id", "name", "custom_name", "order", "people", "count", "type", "average_conversion_time", "median_conversion_time"}


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts(NOW))


def funnel(*steps, date_from="2021-05-01", date_to="2021-05-14", **fields) -> dict:
    series = [step if isinstance(step, dict) else {"kind": "EventsNode", "event": step} for step in steps]
    funnels_filter = fields.pop("funnelsFilter", {})
    return {
        "kind": "FunnelsQuery",
        "series": series,
        "dateRange": {"date_from": date_from, "date_to": date_to},
        "funnelsFilter": {"funnelWindowInterval": 14, "funnelWindowIntervalUnit": "day", **funnels_filter},
        **fields,
    }


def run(client, team, query: dict, status: int = 200) -> dict:
    response = client.post(f"/api/projects/{team.id}/query/", {"query": query, "refresh": "force_blocking"}, format="json")
    assert response.status_code == status, response.content
    return response.json()


def counts(body: dict) -> list[int]:
    return [step["count"] for step in body["results"]]


def times(body: dict, key: str = "average_conversion_time") -> list:
    return [step[key] for step in body["results"]]


@pytest.fixture
def movie_journeys(team):
    """Three persons: 1 converts fully (1h then 2h), 2 stops after 2h, 3 converts (2h then 1h)."""
    events(
        team,
        ("sign up", "p1", "2021-05-01 12:00"), ("play movie", "p1", "2021-05-01 13:00"), ("buy", "p1", "2021-05-01 15:00"),
        ("sign up", "p2", "2021-05-02 14:00"), ("play movie", "p2", "2021-05-02 16:00"),
        ("sign up", "p3", "2021-05-02 14:00"), ("play movie", "p3", "2021-05-02 16:00"), ("buy", "p3", "2021-05-02 17:00"),
    )


def test_step_objects_counts_and_conversion_times(client, team, movie_journeys):
    body = run(client, team, funnel("sign up", {"kind": "EventsNode", "event": "play movie", "custom_name": "Watched"}, "buy"))
    assert set(body) >= {"results", "hogql", "modifiers", "resolved_date_range", "is_cached", "last_refresh", "cache_key", "timezone"}
    assert body["resolved_date_range"] == {"date_from": "2021-05-01T00:00:00Z", "date_to": "2021-05-14T23:59:59.999999Z"}
    assert body["results"] == [
        {"action_id": "sign up", "name": "sign up", "custom_name": None, "order": 0, "people": [], "count": 3, "type": "events",
         "average_conversion_time": None, "median_conversion_time": None},
        {"action_id": "play movie", "name": "play movie", "custom_name": "Watched", "order": 1, "people": [], "count": 3,
         "type": "events", "average_conversion_time": 6000.0, "median_conversion_time": 7200.0},
        {"action_id": "buy", "name": "buy", "custom_name": None, "order": 2, "people": [], "count": 2, "type": "events",
         "average_conversion_time": 5400.0, "median_conversion_time": 5400.0},
    ]


def test_no_matching_events_gives_an_empty_list(client, team):
    assert run(client, team, funnel("sign up", "buy"))["results"] == []


def test_skipped_and_reversed_steps_do_not_convert(client, team):
    events(
        team,
        ("sign up", "skipped", "2021-05-02 10:00"), ("buy", "skipped", "2021-05-02 11:00"),
        ("buy", "reversed", "2021-05-02 10:00"), ("play movie", "reversed", "2021-05-02 11:00"), ("sign up", "reversed", "2021-05-02 12:00"),
        ("play movie", "only_later", "2021-05-02 10:00"), ("buy", "only_later", "2021-05-02 11:00"),
    )
    body = run(client, team, funnel("sign up", "play movie", "buy"))
    assert counts(body) == [2, 0, 0]
    assert times(body) == [None, None, None]


def test_a_person_with_several_distinct_ids_counts_once(client, team):
    person(team, "anon-1", "user-1")
    person(team, "anon-2")
    events(
        team,
        ("$pageview", "anon-1", "2021-05-03 10:00"), ("$pageview", "user-1", "2021-05-03 10:30"),
        ("signed up", "user-1", "2021-05-03 11:00"),
        ("$pageview", "anon-2", "2021-05-04 10:00"),
    )
    body = run(client, team, funnel("$pageview", "signed up"))
    assert counts(body) == [2, 1]
    # The latest pageview before the sign-up starts the attempt that converts.
    assert times(body) == [None, 1800.0]


def test_personless_events_are_counted_by_distinct_id(client, team):
    events(
        team,
        ("$pageview", "ghost-1", "2021-05-03 10:00"), ("signed up", "ghost-1", "2021-05-03 10:10"),
        ("$pageview", "ghost-2", "2021-05-03 10:00"),
        personless=("ghost-1", "ghost-2"),
    )
    assert counts(run(client, team, funnel("$pageview", "signed up"))) == [2, 1]


def test_conversion_window_in_days(client, team):
    rows = []
    for i in range(10):
        rows += [("step one", f"fast{i}", "2021-05-01 00:00"), ("step two", f"fast{i}", "2021-05-02 00:00")]
    for i in range(15):
        rows += [("step one", f"slow{i}", "2021-05-01 00:00"), ("step two", f"slow{i}", "2021-05-10 00:00")]
    events(team, *rows)
    body = run(client, team, funnel("step one", "step two", "step three", funnelsFilter={"funnelWindowInterval": 7}))
    assert counts(body) == [25, 10, 0]
    assert times(body) == [None, 86400.0, None]


@pytest.mark.parametrize(
    "window, unit, expected",
    [(15, "second", [25, 10]), (20, "second", [25, 25]), (1, "minute", [25, 25]), (1, "hour", [25, 25]), (2, "week", [25, 25])],
)
def test_conversion_window_units(client, team, window, unit, expected):
    rows = []
    for i in range(10):
        rows += [("step one", f"fast{i}", "2021-05-01 00:00:00"), ("step two", f"fast{i}", "2021-05-01 00:00:10")]
    for i in range(15):
        rows += [("step one", f"slow{i}", "2021-05-01 00:00:00"), ("step two", f"slow{i}", "2021-05-01 00:00:20")]
    events(team, *rows)
    query = funnel("step one", "step two", funnelsFilter={"funnelWindowInterval": window, "funnelWindowIntervalUnit": unit})
    assert counts(run(client, team, query)) == expected


def test_the_window_bound_is_inclusive(client, team):
    events(
        team,
        ("signed up", "exactly", "2021-05-02 14:00"), ("pageview", "exactly", "2021-05-02 14:05"),
        ("signed up", "late", "2021-05-02 12:00"), ("pageview", "late", "2021-05-02 12:05:00.000001"),
    )
    query = funnel("signed up", "pageview", funnelsFilter={"funnelWindowInterval": 5, "funnelWindowIntervalUnit": "minute"})
    body = run(client, team, query)
    assert counts(body) == [2, 1]
    assert times(body) == [None, 300.0]


def test_the_window_counts_from_the_first_step(client, team):
    events(
        team,
        ("a", "p1", "2021-05-01 10:00"), ("b", "p1", "2021-05-05 10:00"), ("c", "p1", "2021-05-09 10:00"),
        ("a", "p2", "2021-05-01 10:00"), ("b", "p2", "2021-05-05 10:00"), ("c", "p2", "2021-05-09 10:00:01"),
    )
    assert counts(run(client, team, funnel("a", "b", "c", funnelsFilter={"funnelWindowInterval": 8}))) == [2, 2, 1]


def test_earlier_complete_attempt_wins_over_later_partial_ones(client, team):
    events(
        team,
        ("user signed up", "p1", "2021-05-01 01:00"), ("$pageview", "p1", "2021-05-01 02:00"), ("something else", "p1", "2021-05-01 03:00"),
        ("user signed up", "p1", "2021-05-03 04:00"), ("$pageview", "p1", "2021-05-03 05:00"),
        ("user signed up", "p1", "2021-05-04 07:00"), ("$pageview", "p1", "2021-05-04 10:00"),
    )
    body = run(client, team, funnel("user signed up", "$pageview", "something else", funnelsFilter={"funnelWindowInterval": 1}))
    assert counts(body) == [1, 1, 1]
    assert times(body) == [None, 3600.0, 3600.0]
    assert times(body, "median_conversion_time") == [None, 3600.0, 3600.0]


def test_a_later_attempt_converts_when_the_first_runs_out_of_window(client, team):
    events(
        team,
        ("a", "p1", "2021-05-01 10:00"), ("a", "p1", "2021-05-06 10:00"), ("b", "p1", "2021-05-07 09:00"),
    )
    body = run(client, team, funnel("a", "b", funnelsFilter={"funnelWindowInterval": 3}))
    assert counts(body) == [1, 1]
    assert times(body) == [None, 82800.0]


def test_repeated_steps_need_distinct_events(client, team):
    events(
        team,
        ("$pageview", "pv_then_signup", "2021-05-02 09:00"), ("user signed up", "pv_then_signup", "2021-05-02 10:00"),
        ("user signed up", "one", "2021-05-02 10:00"), ("$pageview", "one", "2021-05-02 11:00"),
        ("$pageview", "two", "2021-05-02 09:00"), ("user signed up", "two", "2021-05-02 10:00"), ("blah", "two", "2021-05-02 11:00"),
        ("$pageview", "two", "2021-05-02 12:00"),
        ("blah", "three", "2021-05-02 08:00"), ("$pageview", "three", "2021-05-02 09:00"), ("blah", "three", "2021-05-02 09:30"),
        ("$pageview", "three", "2021-05-02 09:45"), ("user signed up", "three", "2021-05-02 10:00"), ("$pageview", "three", "2021-05-02 11:00"),
        ("user signed up", "all", "2021-05-02 10:00"), ("$pageview", "all", "2021-05-02 11:00"), ("blah", "all", "2021-05-02 11:30"),
        ("$pageview", "all", "2021-05-02 12:00"), ("$pageview", "all", "2021-05-02 13:00"), ("$pageview", "all", "2021-05-02 14:00"),
        ("$pageview", "no_signup", "2021-05-02 09:00"), ("blah", "no_signup", "2021-05-02 09:30"), ("$pageview", "no_signup", "2021-05-02 10:00"),
        ("$pageview", "no_signup", "2021-05-02 11:00"), ("$pageview", "no_signup", "2021-05-02 12:00"),
    )
    body = run(client, team, funnel("user signed up", "$pageview", "$pageview", "$pageview", "$pageview"))
    assert counts(body) == [5, 4, 1, 1, 1]
    assert times(body) == [None, 4500.0, 3600.0, 3600.0, 3600.0]
    assert times(body, "median_conversion_time") == [None, 3600.0, 3600.0, 3600.0, 3600.0]


def test_steps_with_filters_on_the_same_event(client, team):
    url = "$current_url"
    events(
        team,
        ("user signed up", "p1", "2021-05-02 10:00"),
        ("user signed up", "p2", "2021-05-02 10:00"), ("$pageview", "p2", "2021-05-02 10:01", {url: "aloha.com"}),
        ("user signed up", "p3", "2021-05-02 10:00"), ("$pageview", "p3", "2021-05-02 10:01", {url: "aloha.com"}),
        ("$pageview", "p3", "2021-05-02 10:02", {url: "aloha2.com"}),
        ("user signed up", "p4", "2021-05-02 10:00"), ("$pageview", "p4", "2021-05-02 10:01", {url: "aloha.com"}),
        ("$pageview", "p4", "2021-05-02 10:02", {url: "aloha2.com"}), ("$pageview", "p4", "2021-05-02 10:03", {url: "aloha2.com"}),
        ("user signed up", "p5", "2021-05-02 10:00"), ("$pageview", "p5", "2021-05-02 10:01", {url: "aloha.com"}),
        ("$pageview", "p5", "2021-05-02 10:02", {url: "aloha2.com"}), ("$pageview", "p5", "2021-05-02 10:03", {url: "aloha.com"}),
        ("$pageview", "p5", "2021-05-02 10:04", {url: "aloha2.com"}),
    )

    def page(value):
        return {"kind": "EventsNode", "event": "$pageview", "properties": [{"key": url, "value": value, "operator": "exact", "type": "event"}]}

    body = run(client, team, funnel("user signed up", page("aloha.com"), page("aloha2.com"), page("aloha2.com"), "$pageview"))
    assert counts(body) == [5, 4, 3, 2, 0]


def test_events_at_the_same_instant_convert_in_step_order(client, team):
    events(
        team,
        ("$pageview", "p1", "2021-05-03 10:00"), ("sign up", "p1", "2021-05-03 10:00"),
        ("sign up", "p2", "2021-05-03 10:00"),
    )
    body = run(client, team, funnel("sign up", "$pageview"))
    assert counts(body) == [2, 1]
    # Conversions that take no time are left out of the averages, as in PostHog.
    assert times(body) == [None, None]


def test_all_events_steps(client, team):
    events(
        team,
        ("a", "p1", "2021-05-03 10:00"),
        ("a", "p2", "2021-05-03 10:00"), ("b", "p2", "2021-05-03 11:00"),
        ("b", "p3", "2021-05-03 10:00"), ("a", "p3", "2021-05-03 11:00"), ("c", "p3", "2021-05-03 12:00"),
    )
    body = run(client, team, funnel({"kind": "EventsNode", "event": None}, {"kind": "EventsNode"}, {"kind": "EventsNode", "event": None}))
    assert counts(body) == [3, 2, 1]
    assert [(step["name"], step["action_id"]) for step in body["results"]] == [(None, None)] * 3


def test_events_outside_the_date_range_are_ignored(client, team):
    events(
        team,
        ("a", "before", "2021-04-30 23:00"), ("b", "before", "2021-05-01 01:00"),
        ("a", "after_end", "2021-05-14 23:00"), ("b", "after_end", "2021-05-15 01:00"),
        ("a", "inside", "2021-05-10 23:00"), ("b", "inside", "2021-05-11 01:00"),
    )
    assert counts(run(client, team, funnel("a", "b"))) == [2, 1]


def test_global_step_and_person_filters(client, team):
    person(team, "safari_user", properties={"email": "a@posthog.com"})
    person(team, "chrome_user", properties={"email": "b@example.com"})
    events(
        team,
        ("sign up", "safari_user", "2021-05-03 10:00", {"$browser": "Safari"}), ("pay", "safari_user", "2021-05-03 11:00", {"$browser": "Safari"}),
        ("sign up", "chrome_user", "2021-05-03 10:00", {"$browser": "Chrome"}), ("pay", "chrome_user", "2021-05-03 11:00", {"$browser": "Chrome"}),
        ("sign up", "mixed", "2021-05-03 10:00", {"$browser": "Safari"}), ("pay", "mixed", "2021-05-03 11:00"),
    )
    safari = [{"key": "$browser", "value": "Safari", "operator": "exact", "type": "event"}]
    assert counts(run(client, team, funnel("sign up", "pay", properties=safari))) == [2, 1]
    per_step = {"kind": "EventsNode", "event": "sign up", "properties": safari}
    assert counts(run(client, team, funnel(per_step, "pay"))) == [2, 2]
    posthog = [{"key": "email", "value": "posthog.com", "operator": "icontains", "type": "person"}]
    assert counts(run(client, team, funnel({"kind": "EventsNode", "event": "sign up", "properties": posthog}, "pay"))) == [1, 1]


def test_filter_test_accounts(client, team):
    team.test_account_filters = [{"key": "email", "value": "@posthog.com", "operator": "not_icontains", "type": "person"}]
    team.save()
    person(team, "staff", properties={"email": "me@posthog.com"})
    person(team, "customer", properties={"email": "you@example.com"})
    events(team, ("a", "staff", "2021-05-03 10:00"), ("a", "customer", "2021-05-03 10:00"))
    assert counts(run(client, team, funnel("a", "a", filterTestAccounts=True))) == [1, 0]
    assert counts(run(client, team, funnel("a", "a"))) == [2, 0]


def test_aggregate_by_hogql_session(client, team):
    events(
        team,
        ("a", "p1", "2021-05-03 10:00", {}, "s1"), ("b", "p1", "2021-05-03 10:05", {}, "s1"),
        ("a", "p1", "2021-05-03 12:00", {}, "s2"),
        ("a", "p2", "2021-05-03 10:00", {}, "s3"), ("b", "p2", "2021-05-03 10:01", {}, "s4"),
        ("b", "p3", "2021-05-03 10:01"),
    )
    query = funnel("a", "b", funnelsFilter={"funnelAggregateByHogQL": "$session_id"})
    assert counts(run(client, team, query)) == [3, 1]
    assert counts(run(client, team, funnel("a", "b"))) == [2, 2]


def test_team_timezone_sets_the_date_range(client, team):
    team.timezone = "America/New_York"
    team.save()
    events(
        team,
        ("a", "early", "2021-05-01 02:00"), ("b", "early", "2021-05-01 03:00"),  # 30 April in New York
        ("a", "inside", "2021-05-01 05:00"), ("b", "inside", "2021-05-01 06:00"),
    )
    body = run(client, team, funnel("a", "b"))
    assert counts(body) == [1, 1]
    assert body["resolved_date_range"] == {"date_from": "2021-05-01T00:00:00-04:00", "date_to": "2021-05-14T23:59:59.999999-04:00"}


def test_other_teams_events_are_invisible(client, team, movie_journeys):
    other = make_team(name="Other")
    events(other, ("sign up", "x", "2021-05-03 10:00"), ("play movie", "x", "2021-05-03 11:00"))
    assert counts(run(client, team, funnel("sign up", "play movie"))) == [3, 3]


def test_another_teams_project_is_forbidden(client, team):
    other = make_team(name="Other")
    response = client.post(f"/api/projects/{other.id}/query/", {"query": funnel("a", "b")}, format="json")
    assert response.status_code == 403


def test_environments_path_and_cache(client, team, movie_journeys):
    query = funnel("sign up", "play movie", "buy")
    first = client.post(f"/api/environments/{team.id}/query/", {"query": query}, format="json").json()
    again = client.post(f"/api/environments/{team.id}/query/", {"query": query}, format="json").json()
    assert counts(first) == [3, 3, 2]
    assert (first["is_cached"], again["is_cached"]) == (False, True)
    assert again["results"] == first["results"]


def test_member_of_another_organization_cannot_read(team, api_client):
    outsider_team = make_team(name="Outsider")
    api = api_client(user=make_member(outsider_team))
    response = api.post(f"/api/projects/{team.id}/query/", {"query": funnel("a", "b")}, format="json")
    assert response.status_code == 403


@pytest.mark.parametrize(
    "fields, detail",
    [
        ({"series": []}, "A funnel needs at least one step."),
        ({"series": [{"kind": "EventsNode", "event": str(i)} for i in range(21)]}, "A funnel can have at most 20 steps."),
        ({"series": [{"kind": "ActionsNode", "id": 1}, {"kind": "EventsNode", "event": "b"}]}, "Action ID 1 does not exist!"),
        ({"aggregation_group_type_index": 5}, "Invalid group type index: 5 (0 to 4)."),
        ({"funnelsFilter": {"funnelFromStep": 1}}, "funnelFromStep is out of bounds. It must be between 0 and 0."),
        ({"funnelsFilter": {"funnelToStep": 2}}, "funnelToStep is out of bounds. It must be between 1 and 1."),
        ({"series": [{"kind": "EventsNode", "event": "a", "optionalInFunnel": True}, {"kind": "EventsNode", "event": "b"}]},
         "The first step of a funnel cannot be optional."),
        ({"funnelsFilter": {"exclusions": [{"kind": "EventsNode", "event": "x", "funnelFromStep": 1, "funnelToStep": 1}]}},
         "Exclusion event range is invalid. End of range should be greater than start."),
        ({"funnelsFilter": {"exclusions": [{"kind": "EventsNode", "event": "x", "funnelFromStep": 0, "funnelToStep": 2}]}},
         "Exclusion event range is invalid. End of range is greater than number of steps."),
        ({"funnelsFilter": {"exclusions": [{"kind": "EventsNode", "event": "b", "funnelFromStep": 0, "funnelToStep": 1}]}},
         "Exclusion steps cannot contain an event that's part of funnel steps."),
        ({"breakdownFilter": {"breakdown": 3, "breakdown_type": "cohort"}}, "Could not find cohort with ID 3"),
        ({"properties": [{"key": "x", "value": "(", "operator": "regex"}]}, "Invalid regular expression '(': missing ), unterminated subpattern at position 0"),
        ({"funnelsFilter": {"funnelAggregateByHogQL": "nosuchfunction(1)"}}, None),
    ],
)
def test_invalid_funnels_are_400(client, team, fields, detail):
    query = {**funnel("a", "b"), **{k: v for k, v in fields.items() if k != "funnelsFilter"}}
    if "funnelsFilter" in fields:
        query["funnelsFilter"] = {**query["funnelsFilter"], **fields["funnelsFilter"]}
    body = run(client, team, query, status=400)
    if detail is None:
        assert (body["type"], body["code"]) == ("validation_error", "invalid_input")
    else:
        assert body == error("validation_error", "invalid_input", detail)


def test_malformed_funnel_is_a_parse_error(client, team):
    body = run(client, team, {"kind": "FunnelsQuery", "series": [{"kind": "EventsNode", "event": "a"}], "funnelsFilter": {"funnelOrderType": "sideways"}}, status=400)
    assert (body["type"], body["code"]) == ("invalid_request", "parse_error")


def test_query_count(client, team, movie_journeys, django_assert_max_num_queries):
    # API key, key use, team, membership, then the one funnel statement (and, on PostgreSQL, its settings).
    with django_assert_max_num_queries(10):
        run(client, team, funnel("sign up", "play movie", "buy"))


def test_all_time_and_a_month_window(client, team):
    events(
        team,
        ("a", "p1", "2020-01-01 10:00"), ("b", "p1", "2020-02-01 09:00"),  # 31 days minus an hour
        ("a", "p2", "2020-03-01 10:00"), ("b", "p2", "2020-04-01 11:00"),  # 31 days and an hour
    )
    body = run(client, team, funnel("a", "b", date_from="all", date_to=None, funnelsFilter={"funnelWindowIntervalUnit": "month", "funnelWindowInterval": 1}))
    assert counts(body) == [2, 1]
    assert body["resolved_date_range"]["date_from"] == "2020-01-01T10:00:00Z"


@pytest.mark.parametrize("date_from, minutes", [("-6d", 3), ("-7d", 15), ("-30d", 15)])
def test_refresh_frequency(client, team, date_from, minutes):
    from datetime import datetime, timedelta

    body = run(client, team, funnel("a", "b", date_from=date_from, date_to=None))
    last, allowed = (datetime.fromisoformat(body[key].replace("Z", "+00:00")) for key in ("last_refresh", "next_allowed_client_refresh"))
    assert allowed - last == timedelta(minutes=minutes)
