"""Breakdowns: ranking, limit, the "other" and "null" buckets, hasMore, labels, kinds of breakdown."""
import pytest

from tests.queries.events import events, person

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

OTHER = "$$_posthog_breakdown_other_$$"
NULL = "$$_posthog_breakdown_null_$$"
RANGE = {"dateRange": {"date_from": "2020-01-01", "date_to": "2020-01-02"}}


@pytest.fixture
def data(team):
    person(team, "a", properties={"plan": "pro"})
    person(team, "b", properties={"plan": "free"})
    person(team, "c")

    def view(distinct_id, day, browser="missing", **extra):
        properties = dict(extra) if browser == "missing" else {"$browser": browser, **extra}
        return ("$pageview", distinct_id, f"2020-01-0{day} 12:00", properties)

    events(
        team,
        view("a", 1, "Chrome"), view("b", 1, "Chrome"), view("c", 1, "Chrome"),
        view("a", 1, "Safari"), view("d", 1, "Safari"),
        view("a", 1, "Firefox"),
        view("b", 1), view("c", 1), view("d", 1, ""),
        view("a", 2, "Chrome"),
        view("a", 2, "Safari"), view("a", 2, "Safari"), view("b", 2, "Safari"),
        view("c", 2, "Edge"), view("d", 2, "Opera"),
        ("signed_up", "a", "2020-01-01 13:00", {"$browser": "Chrome"}),
        ("signed_up", "d", "2020-01-02 13:00", {"$browser": "Opera"}),
    )


def breakdown(value="$browser", **fields):
    return {"breakdownFilter": {"breakdown": value, "breakdown_type": "event", **fields}}


def summary(results):
    return [(item["breakdown_value"], item["data"]) for item in results]


def test_event_property_breakdown_ranks_by_total_with_null_last(data, trends):
    results = trends(**breakdown(), **RANGE)
    assert summary(results) == [
        ("Safari", [2, 3]),
        ("Chrome", [3, 1]),
        ("Edge", [0, 1]),
        ("Firefox", [1, 0]),
        ("Opera", [0, 1]),
        (NULL, [3, 0]),  # missing and empty values
    ]
    assert [item["label"] for item in results] == ["Safari", "Chrome", "Edge", "Firefox", "Opera", NULL]
    assert results[0]["filter"]["breakdown"] == "$browser" and results[0]["filter"]["breakdown_type"] == "event"


def test_breakdown_limit_sums_the_rest_into_other(data, run_query):
    query = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], **breakdown(breakdown_limit=2), **RANGE}
    body = run_query(query, refresh="force_blocking").json()
    assert summary(body["results"]) == [("Safari", [2, 3]), ("Chrome", [3, 1]), (OTHER, [4, 2])]
    assert body["hasMore"] is True
    query["breakdownFilter"]["breakdown_hide_other_aggregation"] = True
    body = run_query(query, refresh="force_blocking").json()
    assert summary(body["results"]) == [("Safari", [2, 3]), ("Chrome", [3, 1])]
    assert body["hasMore"] is True


def test_null_is_ranked_after_every_value(data, trends):
    results = trends(**breakdown(breakdown_limit=5), **RANGE)
    assert [item["breakdown_value"] for item in results] == ["Safari", "Chrome", "Edge", "Firefox", "Opera", OTHER]
    assert results[-1]["data"] == [3, 0]


def test_default_limit_is_25(team, trends):
    events(team, *[("$pageview", "u", "2020-01-01 12:00", {"v": f"value{n:02d}"}) for n in range(30)])
    assert len(trends(**breakdown("v"), **RANGE)) == 26
    assert len(trends(**breakdown("v", breakdown_limit=10), **RANGE)) == 11


def test_dau_breakdown(data, trends):
    results = trends([{"kind": "EventsNode", "event": "$pageview", "math": "dau"}], **breakdown(), **RANGE)
    assert summary(results) == [("Chrome", [3, 1]), ("Safari", [2, 2]), ("Edge", [0, 1]), ("Firefox", [1, 0]), ("Opera", [0, 1]), (NULL, [3, 0])]


def test_person_property_breakdown(data, trends):
    results = trends(breakdownFilter={"breakdown": "plan", "breakdown_type": "person"}, **RANGE)
    # "d" was created by its first event with no properties
    assert summary(results) == [("pro", [3, 3]), ("free", [2, 1]), (NULL, [4, 2])]


def test_hogql_breakdown(data, trends):
    results = trends(breakdownFilter={"breakdown": "if(properties.$browser = 'Chrome', 'chromium', 'other')", "breakdown_type": "hogql"}, **RANGE)
    assert summary(results) == [("other", [6, 5]), ("chromium", [3, 1])]


def test_event_metadata_breakdown(data, trends):
    results = trends(breakdownFilter={"breakdown": "distinct_id", "breakdown_type": "event_metadata"}, **RANGE)
    assert summary(results) == [("a", [3, 3]), ("b", [2, 1]), ("c", [2, 1]), ("d", [2, 1])]


def test_multiple_breakdowns(data, trends):
    results = trends(breakdownFilter={"breakdowns": [{"property": "$browser"}, {"property": "plan", "type": "person"}]}, **RANGE)
    assert summary(results)[:3] == [(["Safari", "pro"], [1, 2]), (["Chrome", "pro"], [1, 1]), (["Chrome", "free"], [1, 0])]
    assert results[0]["label"] == "Safari::pro"
    assert len(results) == 11


def test_multiple_breakdowns_sum_the_rest_into_an_other_list(data, run_query):
    breakdowns = [{"property": "$browser"}, {"property": "plan", "type": "person"}]
    query = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}],
             "breakdownFilter": {"breakdowns": breakdowns, "breakdown_limit": 2}, **RANGE}
    body = run_query(query, refresh="force_blocking").json()
    assert summary(body["results"]) == [(["Safari", "pro"], [1, 2]), (["Chrome", "pro"], [1, 1]), ([OTHER, OTHER], [7, 3])]
    assert body["results"][-1]["label"] == f"{OTHER}::{OTHER}"
    assert body["hasMore"] is True


def test_several_series_prefix_labels(data, trends):
    series = [{"kind": "EventsNode", "event": "$pageview"}, {"kind": "EventsNode", "event": "signed_up"}]
    results = trends(series, **breakdown(breakdown_limit=1), **RANGE)
    assert [(item["label"], item["breakdown_value"], item["data"]) for item in results] == [
        ("$pageview - Safari", "Safari", [2, 3]),
        ("$pageview - " + OTHER, OTHER, [7, 3]),
        ("signed_up - Chrome", "Chrome", [1, 0]),  # ties rank by value: Chrome before Opera
        ("signed_up - " + OTHER, OTHER, [0, 1]),
    ]


def test_total_value_breakdown(data, trends):
    results = trends(trendsFilter={"display": "ActionsPie"}, **breakdown(breakdown_limit=2), **RANGE)
    assert [(item["breakdown_value"], item["aggregated_value"]) for item in results] == [("Safari", 5), ("Chrome", 4), (OTHER, 6)]
    assert all(item["data"] == [] for item in results)


def test_normalized_url_breakdown(team, trends):
    urls = ["https://a.com/x/", "https://a.com/x", "https://a.com/x?#", "/", "https://b.com"]
    events(team, *[("$pageview", "u", "2020-01-01 12:00", {"$current_url": url}) for url in urls])
    results = trends(**breakdown("$current_url", breakdown_normalize_url=True), **RANGE)
    assert summary(results) == [("https://a.com/x", [3, 0]), ("/", [1, 0]), ("https://b.com", [1, 0])]


def test_no_events_no_series(team, trends):
    assert trends(**breakdown(), **RANGE) == []


@pytest.mark.parametrize(
    "breakdown_filter, detail",
    [
        ({"breakdown": 3, "breakdown_type": "cohort"}, "Could not find cohort with ID 3"),
        ({"breakdown": "nope", "breakdown_type": "event_metadata"}, "Unknown event metadata field: 'nope'"),
    ],
)
def test_unsupported_breakdowns_are_400(run_query, team, breakdown_filter, detail):
    query = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], "breakdownFilter": breakdown_filter}
    response = run_query(query)
    assert response.status_code == 400
    assert response.json()["detail"] == detail


def test_values_are_compared_and_shown_as_text(team, trends):
    values = [True, False, 5, 1.5, "5", "x"]
    events(team, *[("$pageview", "u", "2020-01-01 12:00", {"v": value}) for value in values])
    results = trends(**breakdown("v"), **RANGE)
    assert summary(results) == [("5", [2, 0]), ("1.5", [1, 0]), ("false", [1, 0]), ("true", [1, 0]), ("x", [1, 0])]
    [true_only] = trends(properties=[{"key": "v", "value": "true", "operator": "exact", "type": "event"}], **RANGE)
    assert true_only["data"] == [1, 0]
