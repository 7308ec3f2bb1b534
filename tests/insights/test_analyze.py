"""GET .../insights/:id/analyze/: the deterministic analysis of an insight's cached result (spec §6.1)."""
import pytest
from rest_framework.test import APIClient

from insights.analysis import NO_QUERY, NO_RESULTS
from insights.wording import robust_anomalies
from queries import clock
from queries.api import execute_query
from tests.conftest import error
from tests.factories import make_member, make_team
from tests.queries.events import events, ts

from .conftest import make_insight

pytestmark = pytest.mark.django_db

DATES = {"date_from": "2020-01-10", "date_to": "2020-01-19"}
BROWSERS = ("Chrome", "Firefox", "Safari")


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts("2020-01-20 12:00"))


@pytest.fixture
def api(api_client):
    """Analyze has no scope: a legacy unscoped key is the API-key way in (scoped keys are refused)."""
    return api_client(None)


@pytest.fixture
def shapes(team):
    """10-19 January. `$pageview` rises (day n of 10 has n events, by n people, browsers in turn),
    `spike` is 2 a day with 40 on the 15th, `flat` is 3 every day."""
    rows = []
    for offset in range(10):
        day = f"2020-01-{10 + offset}"
        for i in range(offset + 1):
            rows.append(("$pageview", f"user{i}", f"{day} 10:00", {"$browser": BROWSERS[i % 3], "$session_id": f"{day}-{i}"}))
        rows += [("spike", "spiky", f"{day} 11:00")] * (40 if offset == 5 else 2)
        rows += [("flat", "steady", f"{day} 12:00")] * 3
    events(team, *rows)


@pytest.fixture
def bad_funnel(team):
    """10 sign up; 8 activate an hour later; only 1 of them pays, a day after activating."""
    rows = []
    for i in range(10):
        rows.append(("signed up", f"f{i}", "2020-01-12 10:00"))
        if i < 8:
            rows.append(("activated", f"f{i}", "2020-01-12 11:00"))
        if i == 0:
            rows.append(("paid", f"f{i}", "2020-01-13 11:00"))
    events(team, *rows)


def viz(source: dict) -> dict:
    return {"kind": "InsightVizNode", "source": source}


def trends(*events_, **fields) -> dict:
    return viz({"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": e} for e in events_], "dateRange": DATES, **fields})


FUNNEL = viz({"kind": "FunnelsQuery", "dateRange": DATES,
              "series": [{"kind": "EventsNode", "event": e} for e in ("signed up", "activated", "paid")]})


def cached_insight(team, query: dict, **fields):
    """A saved insight whose result is in the cache (as after loading it once)."""
    insight = make_insight(team, query=query, **fields)
    assert execute_query(team, query, refresh="blocking").get("error") is None
    return insight


def analyze(api, team, insight) -> str:
    response = api.get(f"/api/projects/{team.id}/insights/{insight.id}/analyze/")
    assert response.status_code == 200, response.content
    assert list(response.json()) == ["result"]
    return response.json()["result"]


# --- Trends ---------------------------------------------------------------------------------------


def test_rising_series(api, team, shapes):
    insight = cached_insight(team, trends("$pageview"))
    assert analyze(api, team, insight) == (
        "Trends insight from 2020-01-10 to 2020-01-19.\n"
        "$pageview (count): 55 in total, 5.5 per day on average. "
        "Rising: the second half averages 8 per day, +167% on the first half (3). "
        "Peak 10 on 19-Jan-2020; low 1 on 10-Jan-2020."
    )


def test_spike_is_an_anomaly(api, team, shapes):
    insight = cached_insight(team, trends("spike"))
    assert analyze(api, team, insight) == (
        "Trends insight from 2020-01-10 to 2020-01-19.\n"
        "spike (count): 58 in total, 5.8 per day on average. "
        "Rising: the second half averages 9.6 per day, +380% on the first half (2). "
        "Peak 40 on 15-Jan-2020; low 2 on 10-Jan-2020. "
        "Unusual: 40 on 15-Jan-2020 (spike, robust z-score 8)."
    )


def test_flat_series(api, team, shapes):
    insight = cached_insight(team, trends("flat"))
    assert analyze(api, team, insight) == (
        "Trends insight from 2020-01-10 to 2020-01-19.\n"
        "flat (count): 30 in total, 3 per day on average. Flat: 3 in every day."
    )


def test_several_series_unique_users_and_a_dip(api, team, shapes):
    events(team, *[("dippy", "d", f"2020-01-{day} 09:00") for day in range(10, 20) if day != 14 for _ in range(5)])
    query = trends("$pageview", "dippy")
    query["source"]["series"][0]["math"] = "dau"
    query["source"]["series"][0]["custom_name"] = "Visitors"
    text = analyze(api, team, cached_insight(team, query))
    lines = text.split("\n")
    assert lines[1].startswith("Visitors (unique users): 5.5 per day on average. Rising:")
    assert lines[2] == (
        "dippy (count): 45 in total, 4.5 per day on average. Rising: the second half averages 5 per day, +25% on the first half (4). "
        "Peak 5 on 10-Jan-2020; low 0 on 14-Jan-2020. Unusual: 0 on 14-Jan-2020 (dip, robust z-score -8)."
    )


def test_compare_to_previous_period(api, team, shapes):
    insight = cached_insight(team, trends("$pageview", compareFilter={"compare": True, "compare_to": "-5d"}))
    text = analyze(api, team, insight)
    # Days 5-14 January hold 1+2+3+4+5 page views.
    assert "$pageview (count): 55 in total" in text
    assert text.endswith("Previous period: 15 in total, now 55 (+267%).")


def test_breakdown_leading_values_and_shares(api, team, shapes):
    insight = cached_insight(team, trends("$pageview", breakdownFilter={"breakdown": "$browser", "breakdown_type": "event"}))
    assert analyze(api, team, insight) == (
        "Trends insight from 2020-01-10 to 2020-01-19.\n"
        "$pageview (count): 55 in total, 5.5 per day on average. "
        "Rising: the second half averages 8 per day, +167% on the first half (3). "
        "Peak 10 on 19-Jan-2020; low 1 on 10-Jan-2020. "
        "Leading values of $browser: Chrome 40% (22), Firefox 33% (18), Safari 27% (15)."
    )


def test_total_value_display(api, team, shapes):
    query = trends("$pageview", trendsFilter={"display": "BoldNumber"})
    assert analyze(api, team, cached_insight(team, query)).endswith("$pageview (count): 55 over the whole period.")


def test_robust_anomalies_on_known_shapes():
    assert robust_anomalies([float(n) for n in range(1, 11)]) == []
    assert robust_anomalies([3.0] * 10) == []
    assert robust_anomalies([1.0, 40.0, 1.0]) == []  # too few points to judge
    [(index, z)] = robust_anomalies([10, 11, 9, 10, 12, 10, 95, 11, 9, 10])
    assert index == 6 and z > 3.5


# --- Other kinds ------------------------------------------------------------------------------------


def test_funnel_with_one_bad_step(api, team, bad_funnel):
    assert analyze(api, team, cached_insight(team, FUNNEL)) == (
        "Funnel insight from 2020-01-10 to 2020-01-19.\n"
        "3-step funnel: 10 entered with signed up; 1 (10%) completed all steps.\n"
        "Step conversion: signed up → activated 80%; activated → paid 13%.\n"
        "Biggest drop-off: activated → paid, where 7 of 8 (88%) did not continue.\n"
        "Median time to convert: signed up → activated 1 hour; activated → paid 1 day."
    )


def test_funnel_breakdown_and_empty_funnel(api, team, bad_funnel):
    events(team, ("signed up", "f0", "2020-01-12 09:00", {"plan": "pro"}),
           *[("signed up", f"f{i}", "2020-01-12 09:00", {"plan": "free"}) for i in range(1, 10)])
    query = viz({**FUNNEL["source"], "breakdownFilter": {"breakdown": "plan", "breakdown_type": "event"}})
    text = analyze(api, team, cached_insight(team, query))
    assert "3-step funnel: 10 entered with signed up; 1 (10%) completed all steps." in text
    assert text.endswith("Conversion by plan: free 0% of 9, pro 100% of 1. Best pro (100%), worst free (0%).")

    empty = viz({**FUNNEL["source"], "dateRange": {"date_from": "2019-01-01", "date_to": "2019-01-31"}})
    assert analyze(api, team, cached_insight(team, empty)).endswith("No one entered the funnel in this period.")


def test_funnel_time_to_convert(api, team, bad_funnel):
    query = viz({**FUNNEL["source"], "funnelsFilter": {"funnelVizType": "time_to_convert", "funnelFromStep": 0, "funnelToStep": 1}})
    text = analyze(api, team, cached_insight(team, query))
    assert "8 conversions; average time to convert 1 hour." in text


def test_retention(api, team):
    # r0 is active on 10-13 January, r1 on 10-12, r2-r4 on 10-11, r5-r9 on the 10th only.
    last_day = {0: 13, 1: 12, 2: 11, 3: 11, 4: 11}
    events(team, *[("$pageview", f"r{i}", f"2020-01-{day} 10:00") for i in range(10) for day in range(10, last_day.get(i, 10) + 1)])
    query = viz({"kind": "RetentionQuery", "dateRange": {"date_from": "2020-01-10", "date_to": "2020-01-14"},
                 "retentionFilter": {"totalIntervals": 4, "period": "Day"}})
    assert analyze(api, team, cached_insight(team, query)).split("\n")[1:] == [
        "5 cohorts of 0 to 10 people (18 in total).",
        "Day 1 retention: 44% (cohorts weighted by size). Best cohort 2020-01-10 (50%), worst 2020-01-13 (0%).",
        "Day 3 retention: 6.7% (2 cohorts old enough).",
    ]


def test_lifecycle_and_stickiness(api, team, shapes):
    lifecycle = viz({"kind": "LifecycleQuery", "dateRange": DATES, "series": [{"kind": "EventsNode", "event": "$pageview"}]})
    text = analyze(api, team, cached_insight(team, lifecycle))
    assert "Over the period: 0 new, 45 returning, 10 resurrecting, 0 dormant." in text
    assert "Last period (19-Jan-2020): 0 new, 9 returning, 1 resurrecting, 0 dormant." in text

    stickiness = viz({"kind": "StickinessQuery", "dateRange": DATES, "series": [{"kind": "EventsNode", "event": "$pageview"}]})
    text = analyze(api, team, cached_insight(team, stickiness))
    assert text.endswith("$pageview: 10 people; 10% active in only 1 day of 10, 60% in 5 or more; 5.5 days on average.")


def test_paths(api, team):
    for i in range(3):
        events(team, ("$pageview", f"p{i}", "2020-01-12 10:00", {"$current_url": "https://x.io/home"}),
               ("$pageview", f"p{i}", "2020-01-12 10:01", {"$current_url": "https://x.io/pricing"}))
    query = viz({"kind": "PathsQuery", "dateRange": DATES, "pathsFilter": {"includeEventTypes": ["$pageview"]}})
    text = analyze(api, team, cached_insight(team, query))
    assert "Most paths start at https://x.io/home (3)." in text
    assert "Most frequent transitions: https://x.io/home → https://x.io/pricing (3, 1 minute on average)." in text


def test_sql_insights(api, team, shapes):
    single = {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query": "select count() from events where event = 'flat'"}}
    assert analyze(api, team, cached_insight(team, single)) == "SQL insight.\nThe query returns a single value: 30 (count())."

    per_day = {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query":
               "select toDate(timestamp) as day, count() as spikes from events where event = 'spike' group by day order by day"}}
    text = analyze(api, team, cached_insight(team, per_day))
    assert "10 rows × 2 columns." in text
    assert "Unusual: 40 on 2020-01-15 (spike, robust z-score 8)." in text


# --- No result, no query, bad queries -------------------------------------------------------------


def test_no_cached_result_says_so_and_computes_nothing(api, team, shapes):
    query = trends("$pageview")
    insight = make_insight(team, query=query)
    assert analyze(api, team, insight) == NO_RESULTS
    assert "results" not in execute_query(team, query, refresh="force_cache")


def test_insight_without_query(api, team):
    insight = make_insight(team, filters={"insight": "TRENDS"}, query=None)
    assert analyze(api, team, insight) == NO_QUERY


def test_query_the_engine_refuses(api, team):
    insight = make_insight(team, query=viz({"kind": "TrendsQuery", "series": [{"kind": "DataWarehouseNode", "id": "t", "table_name": "t", "timestamp_field": "ts", "id_field": "id", "distinct_id_field": "d"}]}))
    assert analyze(api, team, insight) == (
        "This insight's query cannot be analyzed: DataWarehouseNode series are not supported; use EventsNode or ActionsNode.")


# --- Access ---------------------------------------------------------------------------------------


def test_scoped_keys_are_refused_even_with_every_scope(team, user, shapes, api_client):
    insight = make_insight(team)
    for scopes in (["insight:read"], ["insight:write"], ["*"]):
        response = api_client(scopes).get(f"/api/projects/{team.id}/insights/{insight.id}/analyze/")
        assert response.status_code == 403
        assert response.json() == error("authentication_error", "permission_denied", "This action does not support Personal API Key access")


def test_sessions_and_environment_routes(team, user, shapes):
    insight = cached_insight(team, trends("flat"))
    session = APIClient()
    session.force_login(user)
    for prefix in ("projects", "environments"):
        response = session.get(f"/api/{prefix}/{team.id}/insights/{insight.short_id}/analyze/")
        assert response.status_code == 200
        assert "Flat: 3 in every day." in response.json()["result"]


def test_unauthenticated(team):
    insight = make_insight(team)
    response = APIClient().get(f"/api/projects/{team.id}/insights/{insight.id}/analyze/")
    assert response.status_code == 401
    assert response.json() == error("authentication_error", "not_authenticated", "Authentication credentials were not provided.")


def test_other_tenants_insights_are_not_found(api, team, user):
    other_team = make_team()
    other = make_insight(other_team)
    response = api.get(f"/api/projects/{team.id}/insights/{other.id}/analyze/")
    assert response.status_code == 404
    assert response.json() == error("invalid_request", "not_found", "Not found.")
    response = api.get(f"/api/projects/{other_team.id}/insights/{other.id}/analyze/")
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", "You don't have access to the project.")
    assert api.get(f"/api/projects/{team.id}/insights/abc/analyze/").status_code == 404
    assert api.get(f"/api/projects/{team.id}/insights/99999999999999999999999/analyze/").status_code == 404


def test_other_member_of_the_organization_can_analyze(team, shapes, api_client):
    colleague = make_member(team)
    insight = cached_insight(team, trends("flat"))
    assert api_client(None, user=colleague).get(f"/api/projects/{team.id}/insights/{insight.id}/analyze/").status_code == 200


def test_query_count_is_bounded(api, team, shapes, django_assert_max_num_queries):
    insight = cached_insight(team, trends("$pageview", breakdownFilter={"breakdown": "$browser"}))
    with django_assert_max_num_queries(8):
        analyze(api, team, insight)


def test_ai_throttles(api, team, user, settings, api_client):
    settings.RATE_LIMIT_ENABLED = True
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "llm_analytics_summarization_burst": "2/minute"}}
    insight = make_insight(team)
    url = f"/api/projects/{team.id}/insights/{insight.id}/"
    assert api.get(f"{url}analyze/").status_code == 200
    assert api.get(f"{url}suggestions/").status_code == 200
    response = api.get(f"{url}analyze/")
    assert response.status_code == 429
    body = response.json()
    assert (body["type"], body["code"], body["attr"]) == ("throttled_error", "throttled", None)
    assert body["detail"].startswith("Request was throttled. Expected available in ")
    assert "Retry-After" in response.headers
    # The AI buckets are their own: other insight routes and other keys are unaffected.
    assert api.get(url).status_code == 200
    assert api_client(None).get(f"{url}analyze/").status_code == 200
    # Session users are throttled too (each request may cost an LLM call), in a bucket of their own.
    session = APIClient()
    session.force_login(user)
    assert [session.get(f"{url}analyze/").status_code for _ in range(3)] == [200, 200, 429]
    assert session.get(f"{url}suggestions/").status_code == 429
    assert session.get(url).status_code == 200  # other routes stay unthrottled for sessions
    colleague = APIClient()
    colleague.force_login(make_member(team))
    assert colleague.get(f"{url}analyze/").status_code == 200


def test_default_ai_rates_are_posthogs(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    names = ("burst", "sustained", "daily")
    assert [rates[f"llm_analytics_summarization_{name}"] for name in names] == ["50/minute", "200/hour", "500/day"]

