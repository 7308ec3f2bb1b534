"""GET|POST .../insights/:id/suggestions/ (spec §6.2): every targetQuery is run through the engine."""
import json

import pytest
from rest_framework.test import APIClient

from queries import clock
from queries.api import execute_query
from tests.conftest import error
from tests.factories import make_team
from tests.queries.events import events, ts

from .conftest import make_insight
from .test_analyze_llm import FakeProvider

pytestmark = pytest.mark.django_db

DATES = {"date_from": "2020-01-10", "date_to": "2020-01-19"}
BROWSERS = ("Chrome", "Firefox", "Safari")


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts("2020-01-20 12:00"))


@pytest.fixture
def api(api_client):
    return api_client(None)


@pytest.fixture
def data(team):
    """Page views and signups on 10-19 January; `$browser` varies, `plan` does not, `$session_id` and
    `ref` are identifiers; 10 sign up, 8 activate, 1 pays (activated → paid is the bad step)."""
    rows = []
    for offset in range(10):
        day = f"2020-01-{10 + offset}"
        for i in range(offset + 1):
            rows.append(("$pageview", f"user{i}", f"{day} 10:00", {
                "$browser": BROWSERS[i % 3], "plan": "free", "$session_id": f"{day}-{i}", "ref": f"r-{day}-{i}"}))
    for i in range(10):
        rows.append(("signed up", f"f{i}", "2020-01-12 10:00", {"$os": "Mac" if i % 2 else "Windows", "$lib": "web"}))
        if i < 8:
            rows.append(("activated", f"f{i}", "2020-01-12 11:00", {"$os": "Mac" if i % 2 else "Windows"}))
        if i == 0:
            rows.append(("paid", f"f{i}", "2020-01-13 11:00", {"$os": "Windows"}))
    events(team, *rows)


def viz(source: dict) -> dict:
    return {"kind": "InsightVizNode", "source": source}


def series(*names, **fields) -> list[dict]:
    return [{"kind": "EventsNode", "event": name, **fields} for name in names]


TRENDS = viz({"kind": "TrendsQuery", "series": series("$pageview", "signed up"), "dateRange": DATES, "interval": "day"})
FUNNEL = viz({"kind": "FunnelsQuery", "series": series("signed up", "activated", "paid"), "dateRange": DATES,
              "funnelsFilter": {"funnelWindowInterval": 7, "funnelWindowIntervalUnit": "day"}})
RETENTION = viz({"kind": "RetentionQuery", "dateRange": DATES, "retentionFilter": {
    "targetEntity": {"id": "signed up", "type": "events"}, "returningEntity": {"id": "$pageview", "name": "$pageview", "type": "events"},
    "period": "Week", "totalIntervals": 4}})


def suggestions(api, team, insight, method="get", body=None, status=200):
    url = f"/api/projects/{team.id}/insights/{insight.id}/suggestions/"
    response = api.post(url, body, format="json") if method == "post" else api.get(url)
    assert response.status_code == status, response.content
    return response.json()


def assert_runnable(team, items: list[dict]) -> None:
    """Each suggestion is {title, description, targetQuery} and its query computes without error."""
    for item in items:
        assert list(item) == ["title", "description", "targetQuery"]
        assert isinstance(item["title"], str) and item["title"]
        assert item["targetQuery"]["kind"] == "InsightVizNode"
        response = execute_query(team, item["targetQuery"], refresh="blocking")
        assert response.get("error") is None and response["results"] is not None, item["title"]


def test_retention_suggests_stickiness_and_lifecycle_of_the_returning_entity(api, team, data):
    items = suggestions(api, team, make_insight(team, query=RETENTION))
    assert [item["title"] for item in items] == [
        "How often people do $pageview",
        "New, returning, resurrecting and dormant users of $pageview",
    ]
    stickiness, lifecycle = (item["targetQuery"]["source"] for item in items)
    expected_series = [{"kind": "EventsNode", "event": "$pageview", "name": "$pageview"}]
    # A weekly retention looks at days per week, as PostHog.
    assert stickiness == {"kind": "StickinessQuery", "series": expected_series, "interval": "day", "stickinessFilter": {},
                          "dateRange": DATES}
    assert lifecycle == {"kind": "LifecycleQuery", "series": expected_series, "interval": "day", "lifecycleFilter": {}, "dateRange": DATES}
    assert_runnable(team, items)
    body = execute_query(team, items[0]["targetQuery"], refresh="force_cache")
    assert body["results"][0]["count"] == 10  # ten people viewed pages, cached by the run above


def test_retention_periods_map_to_intervals(api, team, data):
    for period, interval in (("Month", "week"), ("Day", "day"), ("Hour", "hour")):
        query = viz({**RETENTION["source"], "retentionFilter": {**RETENTION["source"]["retentionFilter"], "period": period}})
        items = suggestions(api, team, make_insight(team, query=query))
        assert [item["targetQuery"]["source"]["interval"] for item in items] == [interval, interval]


def test_trends_suggestions(api, team, data):
    items = suggestions(api, team, make_insight(team, query=TRENDS))
    assert [item["title"] for item in items] == [
        "$pageview, signed up by $browser",
        "Unique users instead of total count",
        "Compare to the previous period",
        "Funnel: $pageview → signed up",
    ]
    breakdown, dau, compare, funnel = (item["targetQuery"]["source"] for item in items)
    # $browser splits the events; plan is constant, $session_id and ref are identifiers.
    assert breakdown["breakdownFilter"] == {"breakdown": "$browser", "breakdown_type": "event"}
    assert items[0]["description"] == "$browser takes 3 different values on recent events: see which ones drive the numbers."
    assert [node["math"] for node in dau["series"]] == ["dau", "dau"]
    assert compare["compareFilter"] == {"compare": True}
    assert funnel == {"kind": "FunnelsQuery", "series": [
        {"kind": "EventsNode", "event": "$pageview", "name": "$pageview"},
        {"kind": "EventsNode", "event": "signed up", "name": "signed up"}], "dateRange": DATES}
    assert_runnable(team, items)
    by_browser = execute_query(team, items[0]["targetQuery"], refresh="force_cache")["results"]
    assert [(row["label"], row["count"]) for row in by_browser if row["label"].startswith("$pageview")] == [
        ("$pageview - Chrome", 22.0), ("$pageview - Firefox", 18.0), ("$pageview - Safari", 15.0)]


def test_trends_suggestions_skip_what_the_insight_already_does(api, team, data):
    query = viz({**TRENDS["source"], "series": series("$pageview", math="dau"), "breakdownFilter": {"breakdown": "$browser"},
                 "compareFilter": {"compare": True}})
    assert suggestions(api, team, make_insight(team, query=query)) == []
    all_time = viz({**TRENDS["source"], "dateRange": {"date_from": "all"}, "series": series("$pageview")})
    titles = [item["title"] for item in suggestions(api, team, make_insight(team, query=all_time))]
    assert "Compare to the previous period" not in titles


def test_trends_without_variety_gets_no_breakdown(api, team):
    events(team, *[("flat", "u", "2020-01-12 10:00", {"plan": "free", "$session_id": f"s{i}"}) for i in range(20)])
    query = viz({**TRENDS["source"], "series": series("flat")})
    titles = [item["title"] for item in suggestions(api, team, make_insight(team, query=query))]
    assert titles == ["Unique users instead of total count", "Compare to the previous period"]


def test_funnel_breakdown_of_the_biggest_drop_off(api, team, data):
    insight = make_insight(team, query=FUNNEL)
    execute_query(team, FUNNEL, refresh="blocking")
    items = suggestions(api, team, insight)
    assert [item["title"] for item in items] == ["activated → paid by $os", "Conversion over time: activated → paid"]
    assert items[0]["description"] == (
        "Break down the biggest drop-off (88% did not continue) by $os (2 values on recent events) to see which segments convert worst."
    )
    breakdown, over_time = (item["targetQuery"]["source"] for item in items)
    assert breakdown == {"kind": "FunnelsQuery", "dateRange": DATES, "series": series("activated", "paid"),
                         "funnelsFilter": {"funnelWindowInterval": 7, "funnelWindowIntervalUnit": "day"},
                         "breakdownFilter": {"breakdown": "$os", "breakdown_type": "event"}}
    assert over_time["funnelsFilter"]["funnelVizType"] == "trends"
    assert_runnable(team, items)
    groups = execute_query(team, items[0]["targetQuery"], refresh="force_cache")["results"]
    assert {tuple(group[0]["breakdown_value"]): [step["count"] for step in group] for group in groups} == {
        ("Mac",): [4, 0], ("Windows",): [4, 1]}


def test_funnel_without_cached_result_breaks_down_the_whole_funnel(api, team, data):
    items = suggestions(api, team, make_insight(team, query=FUNNEL))
    assert [item["title"] for item in items] == ["Funnel by $os", "Conversion over time: signed up → activated → paid"]
    assert [node["event"] for node in items[0]["targetQuery"]["source"]["series"]] == ["signed up", "activated", "paid"]
    assert_runnable(team, items)


def test_lifecycle_and_stickiness_suggest_each_other_and_retention(api, team, data):
    lifecycle = viz({"kind": "LifecycleQuery", "series": series("$pageview"), "dateRange": DATES, "interval": "week"})
    items = suggestions(api, team, make_insight(team, query=lifecycle))
    assert [item["title"] for item in items] == ["How often people do $pageview", "Retention of $pageview"]
    assert items[1]["targetQuery"]["source"]["retentionFilter"]["period"] == "Week"
    assert_runnable(team, items)

    stickiness = viz({"kind": "StickinessQuery", "series": series("$pageview"), "dateRange": DATES})
    items = suggestions(api, team, make_insight(team, query=stickiness))
    assert [item["title"] for item in items] == ["New, returning, resurrecting and dormant users of $pageview", "Retention of $pageview"]
    assert_runnable(team, items)


@pytest.mark.parametrize("query", [
    None,
    viz({"kind": "PathsQuery", "pathsFilter": {}}),
    {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query": "select 1"}},
    {"kind": "TrendsQuery", "series": series("$pageview")},  # not wrapped in an InsightVizNode
    viz({"kind": "TrendsQuery", "series": [{"kind": "DataWarehouseNode", "id": "t", "table_name": "t", "timestamp_field": "ts", "id_field": "id", "distinct_id_field": "d"}]}),  # the engine refuses it
], ids=["no-query", "paths", "sql", "bare", "unsupported"])
def test_unsupported_queries_have_no_suggestions(api, team, query):
    insight = make_insight(team, query=query, **({"filters": {"insight": "TRENDS"}} if query is None else {}))
    assert suggestions(api, team, insight) == []
    assert suggestions(api, team, insight, "post", {"context": "anything"}) == []


def test_post_body(api, team, data):
    insight = make_insight(team, query=RETENTION)
    expected = suggestions(api, team, insight)
    assert suggestions(api, team, insight, "post", {"context": "Retention fell in week 2."}) == expected
    assert suggestions(api, team, insight, "post", {}) == expected
    assert suggestions(api, team, insight, "post", {"context": None}) == expected
    assert suggestions(api, team, insight, "post", {"context": {"not": "text"}}, status=400) == error(
        "validation_error", "invalid_input", "Not a valid string.", "context")
    assert suggestions(api, team, insight, "post", ["a list"], status=400) == error(
        "validation_error", "invalid_input", "Invalid data. Expected a dictionary, but got list.")
    response = api.post(f"/api/projects/{team.id}/insights/{insight.id}/suggestions/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["type"] == "invalid_request" and response.json()["code"] == "parse_error"


def test_access(team, user, data, api_client):
    insight = make_insight(team, query=RETENTION)
    url = f"/api/projects/{team.id}/insights/{insight.id}/suggestions/"
    for scopes in (["insight:read"], ["*"]):
        for method in ("get", "post"):
            response = getattr(api_client(scopes), method)(url, format="json")
            assert response.status_code == 403
            assert response.json() == error(
                "authentication_error", "permission_denied", "This action does not support Personal API Key access")
    session = APIClient()
    session.force_login(user)
    assert len(session.get(f"/api/environments/{team.id}/insights/{insight.short_id}/suggestions/").json()) == 2
    assert APIClient().get(url).status_code == 401
    other = make_insight(make_team(), query=RETENTION)
    response = api_client(None).get(f"/api/projects/{team.id}/insights/{other.id}/suggestions/")
    assert response.status_code == 404


def test_query_count_is_bounded(api, team, data, django_assert_max_num_queries):
    insight = make_insight(team, query=TRENDS)
    with django_assert_max_num_queries(10):
        assert len(suggestions(api, team, insight)) == 4


# --- With an LLM ----------------------------------------------------------------------------------


@pytest.fixture
def llm(settings, team):
    fake = FakeProvider()
    settings.LLM_API_BASE, settings.LLM_API_KEY, settings.LLM_MODEL = fake.url, "sk-test", "test-model"
    settings.LLM_TIMEOUT_SECONDS = 5
    team.organization.is_ai_data_processing_approved = True
    team.organization.save()
    yield fake
    fake.close()


def llm_item(title, source, **extra) -> dict:
    return {"title": title, "description": f"{title}.", "targetQuery": {"kind": "InsightVizNode", "source": source}, **extra}


GOOD_1 = llm_item("Signups per week", {"kind": "TrendsQuery", "series": series("signed up"), "interval": "week"})
GOOD_2 = llm_item("Page views as a bar chart",
                  {"kind": "TrendsQuery", "series": series("$pageview"), "trendsFilter": {"display": "ActionsBar"}})
GOOD_3 = llm_item("Paths after signing up", {"kind": "PathsQuery", "pathsFilter": {"startPoint": "signed up"}})
GOOD_4 = llm_item("One too many", {"kind": "TrendsQuery", "series": series("paid")})


def test_llm_suggestions_follow_the_deterministic_ones(api, team, data, llm):
    insight = make_insight(team, query=RETENTION, name="Signup retention")
    execute_query(team, RETENTION, refresh="blocking")
    answer = [
        llm_item("Warehouse series", {"kind": "TrendsQuery", "series": [{"kind": "DataWarehouseNode", "id": "t", "table_name": "t", "timestamp_field": "ts", "id_field": "id", "distinct_id_field": "d"}]}),  # engine refuses
        {"title": "Not a viz node", "targetQuery": {"kind": "TrendsQuery", "series": series("paid")}},
        {"description": "no title", "targetQuery": GOOD_1["targetQuery"]},
        llm_item("Broken", {"kind": "TrendsQuery"}),  # invalid node
        "not an object",
        GOOD_1, GOOD_2, GOOD_2, GOOD_3, GOOD_4,
    ]
    llm.reply = ("answer", "```json\n" + json.dumps(answer) + "\n```")
    items = suggestions(api, team, insight, "post", {"context": "Week 1 retention is low."})
    assert [item["title"] for item in items] == [
        "How often people do $pageview",
        "New, returning, resurrecting and dormant users of $pageview",
        "Signups per week", "Page views as a bar chart", "Paths after signing up",
    ]
    assert items[2] == GOOD_1
    assert_runnable(team, items)
    [request] = llm.requests
    prompt = request["body"]["messages"][1]["content"]
    assert "Week 1 retention is low." in prompt
    assert "Insight: Signup retention" in prompt
    assert "Retention insight from" in prompt  # the computed facts


def test_llm_prompt_has_no_filter_values(api, team, data, llm):
    email_filter = {"key": "email", "value": "ceo@secret.example", "operator": "is_not", "type": "person"}
    query = viz({**TRENDS["source"], "properties": [email_filter]})
    insight = make_insight(team, query=query)
    execute_query(team, query, refresh="blocking")
    llm.reply = ("answer", "[]")
    assert len(suggestions(api, team, insight)) == 4
    prompt = json.dumps(llm.requests[0]["body"])
    assert "secret.example" not in prompt and '\\"key\\": \\"email\\"' in prompt


@pytest.mark.parametrize("reply", [
    ("answer", "Here are some ideas: try a funnel."),
    ("answer", '{"title": "an object, not an array"}'),
    ("raw", 200, b"<html>gateway</html>"),
    ("raw", 503, {"error": "down"}),
    ("hang",),
], ids=["prose", "object", "html", "503", "timeout"])
def test_llm_failures_leave_the_deterministic_suggestions(api, team, data, llm, settings, reply):
    settings.LLM_TIMEOUT_SECONDS = 0.2
    insight = make_insight(team, query=RETENTION)
    execute_query(team, RETENTION, refresh="blocking")
    llm.reply = reply
    assert [item["title"] for item in suggestions(api, team, insight)] == [
        "How often people do $pageview", "New, returning, resurrecting and dormant users of $pageview"]


def test_llm_is_not_asked_without_a_cached_result(api, team, data, llm):
    assert len(suggestions(api, team, make_insight(team, query=RETENTION))) == 2
    assert llm.requests == []
