"""The seven refresh modes on a missing, fresh and stale cache; cache keys and freshness metadata.

`execute_query` is the engine's public entry point (insights, sharing and alerts call it); the
/query/ endpoint maps its body onto it. Async jobs enqueued here never start (test transactions
never commit), so their status stays "running"; tests/queries/test_async.py runs them.
"""
from datetime import timedelta

import pytest

from queries import execute_query
from tests.queries.events import events

pytestmark = pytest.mark.django_db

T = "2020-01-10 12:00"
QUERY = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], "dateRange": {"date_from": "-7d"}}


@pytest.fixture
def seeded(team, clock):
    clock(T)
    events(team, ("$pageview", "a", "2020-01-09 10:00"))


def add_pageview(team):
    events(team, ("$pageview", "b", "2020-01-10 11:00"))


def total(response) -> int:
    return sum(response["results"][0]["data"])


def later(clock, **delta):
    start = clock(T)
    return clock((start + timedelta(**delta)).isoformat())


def warm(team, clock) -> dict:
    """Compute at T and store in the cache, then add an event the cache does not know about."""
    clock(T)
    response = execute_query(team, QUERY, refresh="force_blocking")
    add_pageview(team)
    return response


def assert_cached(response, warmed):
    assert response["is_cached"] is True
    assert response["last_refresh"] == warmed["last_refresh"]
    assert total(response) == 1


def assert_computed(response, now):
    assert response["is_cached"] is False
    assert response["last_refresh"] == now.isoformat().replace("+00:00", "Z")
    assert total(response) == 2


def assert_enqueued(status, team, query_id):
    assert status["complete"] is False and status["error"] is False
    assert status["id"] == query_id and status["team_id"] == team.id and status["query_async"] is True


# --- missing cache -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["force_cache", "async", "lazy_async"])
def test_cache_miss_without_computing(seeded, team, mode):
    response = execute_query(team, QUERY, refresh=mode)
    assert set(response) == {"cache_key", "query_status"}
    assert response["cache_key"].startswith("cache_")
    if mode == "force_cache":
        assert response["query_status"] is None
    else:
        assert_enqueued(response["query_status"], team, response["cache_key"])


@pytest.mark.parametrize("mode", ["blocking", "force_blocking", "async_except_on_cache_miss"])
def test_cache_miss_computes(seeded, team, mode):
    response = execute_query(team, QUERY, refresh=mode)
    assert response["is_cached"] is False and total(response) == 1
    assert execute_query(team, QUERY, refresh="force_cache")["is_cached"] is True


def test_force_async_only_returns_a_status(seeded, team):
    response = execute_query(team, QUERY, refresh="force_async", client_query_id="my-id")
    assert list(response) == ["query_status"]
    assert_enqueued(response["query_status"], team, "my-id")


# --- fresh cache --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["force_cache", "blocking", "async", "lazy_async", "async_except_on_cache_miss"])
def test_fresh_cache_is_returned(seeded, team, clock, mode):
    warmed = warm(team, clock)
    later(clock, hours=5, minutes=59)
    response = execute_query(team, QUERY, refresh=mode)
    assert_cached(response, warmed)
    assert response["query_status"] is None


def test_force_blocking_ignores_a_fresh_cache(seeded, team, clock):
    warm(team, clock)
    now = later(clock, minutes=1)
    assert_computed(execute_query(team, QUERY, refresh="force_blocking"), now)
    assert_computed(execute_query(team, QUERY, refresh=True), now)


# --- stale cache (day interval: stale after 6 h, lazily stale after 12 h) ------------------------


def test_stale_force_cache_returns_the_stale_result(seeded, team, clock):
    warmed = warm(team, clock)
    later(clock, hours=7)
    response = execute_query(team, QUERY, refresh="force_cache")
    assert_cached(response, warmed)
    assert response["query_status"] is None


def test_stale_blocking_recomputes(seeded, team, clock):
    warm(team, clock)
    now = later(clock, hours=7)
    assert_computed(execute_query(team, QUERY, refresh="blocking"), now)


@pytest.mark.parametrize("mode", ["async", "async_except_on_cache_miss"])
def test_stale_async_returns_stale_and_starts_a_job(seeded, team, clock, mode):
    warmed = warm(team, clock)
    later(clock, hours=7)
    response = execute_query(team, QUERY, refresh=mode)
    assert_cached(response, warmed)
    assert_enqueued(response["query_status"], team, response["cache_key"])
    # the next request sees the same running job instead of starting another one
    again = execute_query(team, QUERY, refresh="force_cache")
    assert again["query_status"]["task_id"] == response["query_status"]["task_id"]


def test_lazy_async_waits_for_the_lazy_threshold(seeded, team, clock):
    warmed = warm(team, clock)
    later(clock, hours=7)
    response = execute_query(team, QUERY, refresh="lazy_async")
    assert_cached(response, warmed)
    assert response["query_status"] is None
    later(clock, hours=13)
    response = execute_query(team, QUERY, refresh="lazy_async")
    assert_cached(response, warmed)
    assert_enqueued(response["query_status"], team, response["cache_key"])


def test_force_async_ignores_the_cache(seeded, team, clock):
    warm(team, clock)
    later(clock, minutes=1)
    response = execute_query(team, QUERY, refresh="force_async")
    assert list(response) == ["query_status"]


def test_a_range_that_ended_before_the_computation_never_goes_stale(seeded, team, clock):
    closed = {**QUERY, "dateRange": {"date_from": "2020-01-01", "date_to": "2020-01-05"}}
    clock(T)
    warmed = execute_query(team, closed, refresh="blocking")
    later(clock, days=30)
    assert execute_query(team, closed, refresh="blocking")["last_refresh"] == warmed["last_refresh"]


@pytest.mark.parametrize("interval, fresh, stale", [
    ("minute", {"minutes": 4}, {"minutes": 6}),
    ("hour", {"minutes": 59}, {"minutes": 61}),
    ("day", {"hours": 5}, {"hours": 7}),
    ("week", {"hours": 23}, {"hours": 25}),
    ("month", {"hours": 47}, {"hours": 49}),
])
def test_staleness_threshold_per_interval(seeded, team, clock, interval, fresh, stale):
    query = {**QUERY, "interval": interval, "dateRange": {"date_from": "-1h" if interval == "minute" else "-7d"}}
    clock(T)
    warmed = execute_query(team, query, refresh="blocking")
    later(clock, **fresh)
    assert execute_query(team, query, refresh="blocking")["last_refresh"] == warmed["last_refresh"]
    later(clock, **stale)
    assert execute_query(team, query, refresh="blocking")["is_cached"] is False


# --- response metadata and cache keys --------------------------------------------------------------


def test_freshness_metadata(seeded, team):
    response = execute_query(team, QUERY, refresh="blocking")
    assert response["last_refresh"] == "2020-01-10T12:00:00Z"
    assert response["cache_target_age"] == "2020-01-10T18:00:00Z"  # + 6 h for a day interval
    assert response["next_allowed_client_refresh"] == "2020-01-10T12:15:00Z"  # 8-day range: 15 min
    assert response["timezone"] == "UTC"
    assert response["query_status"] is None
    assert response["resolved_date_range"] == {"date_from": "2020-01-03T00:00:00Z", "date_to": "2020-01-10T23:59:59.999999Z"}
    short = execute_query(team, {**QUERY, "dateRange": {"date_from": "-3d"}}, refresh="blocking")
    assert short["next_allowed_client_refresh"] == "2020-01-10T12:03:00Z"  # ranges up to 7 days: 3 min
    hourly = execute_query(team, {**QUERY, "interval": "hour", "dateRange": {"date_from": "-48h"}}, refresh="blocking")
    assert hourly["cache_target_age"] == "2020-01-10T13:00:00Z"
    assert hourly["next_allowed_client_refresh"] == "2020-01-10T12:03:00Z"


def test_cache_key_is_the_query_team_and_timezone(seeded, team):
    key = execute_query(team, QUERY)["cache_key"]
    wrapped = {"kind": "InsightVizNode", "source": QUERY, "showHeader": True}
    assert execute_query(team, wrapped)["cache_key"] == key
    assert execute_query(team, {**QUERY, "tags": {"scene": "Insight"}})["cache_key"] == key
    assert execute_query(team, {**QUERY, "interval": "hour"})["cache_key"] != key
    team.timezone = "Europe/Paris"
    assert execute_query(team, QUERY)["cache_key"] != key


def test_force_cache_needs_no_database_query(seeded, team, django_assert_max_num_queries):
    execute_query(team, QUERY, refresh="blocking")
    with django_assert_max_num_queries(0):
        assert execute_query(team, QUERY, refresh="force_cache")["is_cached"] is True
        assert execute_query(team, {**QUERY, "interval": "week"}, refresh="force_cache")["cache_key"]


def test_teams_never_share_results(seeded, team):
    from tests.factories import make_team

    other = make_team()
    events(other, *[("$pageview", f"x{i}", "2020-01-09 10:00") for i in range(5)])
    assert total(execute_query(team, QUERY, refresh="blocking")) == 1
    assert total(execute_query(other, QUERY, refresh="blocking")) == 5
    assert execute_query(other, QUERY)["cache_key"] != execute_query(team, QUERY)["cache_key"]


@pytest.mark.parametrize("value, mode", [
    (None, "force_cache"), (False, "force_cache"), ("false", "force_cache"), ("0", "force_cache"), ("no", "force_cache"),
    ("bogus", "force_cache"), (True, "force_blocking"), ("true", "force_blocking"), ("1", "force_blocking"),
    ("yes", "force_blocking"), ("", "force_blocking"), ("TRUE", "force_blocking"), ("lazy_async", "lazy_async"),
    ("async_except_on_cache_miss", "async_except_on_cache_miss"),
])
def test_refresh_values(value, mode):
    from queries import resolve_refresh

    assert resolve_refresh(value) == mode


# --- through the /query/ endpoint ------------------------------------------------------------------


def test_query_endpoint_defaults_to_blocking(seeded, team, clock, run_query):
    first = run_query(QUERY)
    assert first.status_code == 200 and first.json()["is_cached"] is False
    assert run_query(QUERY).json()["is_cached"] is True
    # force_cache is upgraded to blocking here: a stale result is recomputed
    later(clock, hours=7)
    response = run_query(QUERY, refresh="force_cache")
    assert response.status_code == 200 and response.json()["is_cached"] is False


def test_query_endpoint_async_is_202(seeded, team, run_query):
    response = run_query(QUERY, refresh="async", client_query_id="abc")
    assert response.status_code == 202
    assert set(response.json()) == {"cache_key", "query_status"}
    assert response.json()["query_status"]["id"] == "abc"
    legacy = run_query({**QUERY, "interval": "hour"}, **{"async": True})
    assert legacy.status_code == 202
    forced = run_query(QUERY, refresh="force_async")
    assert forced.status_code == 202 and list(forced.json()) == ["query_status"]
