"""Histogram breakdowns (`breakdown_histogram_bin_count`, `breakdowns[].histogram_bin_count`).

Numbers restated from PostHog's trends query builder: N equal bins between the min and max of the
property over the series' events, bin x = [step*x + min, step*(x+1) + min) with the last bin's upper
bound + 0.01, labels "[low,high]" printed as ClickHouse prints doubles; no bin -> the null sentinel.
"""
import pytest

from tests.queries.events import events, person

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

NULL = "$$_posthog_breakdown_null_$$"
OTHER = "$$_posthog_breakdown_other_$$"
RANGE = {"dateRange": {"date_from": "2020-01-01", "date_to": "2020-01-02"}}


def view(day, price="missing", browser="Chrome", distinct_id="u"):
    properties = {"$browser": browser} if price == "missing" else {"price": price, "$browser": browser}
    return ("$pageview", distinct_id, f"2020-01-0{day} 12:00", properties)


@pytest.fixture
def prices(team):
    events(
        team,
        view(1, 1), view(1, 2), view(1, "3"), view(1, 4, "Safari"), view(1, 10, "Safari"),
        view(2, 7), view(2), view(2, "abc"),
    )


def histogram(bins, **fields):
    return {"breakdownFilter": {"breakdown": "price", "breakdown_type": "event", "breakdown_histogram_bin_count": bins, **fields}}


def summary(results):
    return [(item["breakdown_value"], item["data"]) for item in results]


def test_bins_between_min_and_max(prices, trends):
    results = trends(**histogram(3), **RANGE)
    # min 1, max 10: step 3 -> [1,4) [4,7) [7,10.01); a missing or non-numeric price has no bin
    assert summary(results) == [("[1,4]", [3, 0]), ("[7,10.01]", [1, 1]), ("[4,7]", [1, 0]), (NULL, [0, 2])]
    assert [item["label"] for item in results] == ["[1,4]", "[7,10.01]", "[4,7]", NULL]
    assert results[0]["filter"]["breakdown_histogram_bin_count"] == 3


def test_labels_are_printed_as_clickhouse_doubles(team, trends):
    events(team, view(1, 0), view(1, 1), view(1, 0.5))
    results = trends(**histogram(3), **RANGE)
    assert summary(results) == [
        ("[0,0.3333333333333333]", [1, 0]),
        ("[0.3333333333333333,0.6666666666666666]", [1, 0]),
        ("[0.6666666666666666,1.01]", [1, 0]),
    ]


def test_one_distinct_value_falls_in_the_last_bin(team, trends):
    events(team, view(1, 5), view(2, 5))
    results = trends(**histogram(2), **RANGE)
    # min = max: every bin but the last is empty ([5,5)), the last is [5,5.01)
    assert summary(results) == [("[5,5.01]", [1, 1])]


def test_no_numeric_value_at_all(team, trends):
    events(team, view(1), view(1, "abc"))
    assert summary(trends(**histogram(4), **RANGE)) == [(NULL, [2, 0])]


def test_limit_sums_the_rest_into_other(prices, run_query):
    query = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], **histogram(3, breakdown_limit=1), **RANGE}
    body = run_query(query, refresh="force_blocking").json()
    assert summary(body["results"]) == [("[1,4]", [3, 0]), (OTHER, [2, 3])]
    assert body["hasMore"] is True


def test_dau_by_bins(prices, trends):
    results = trends([{"kind": "EventsNode", "event": "$pageview", "math": "dau"}], **histogram(3), **RANGE)
    assert summary(results) == [("[7,10.01]", [1, 1]), ("[1,4]", [1, 0]), ("[4,7]", [1, 0]), (NULL, [0, 1])]


def test_total_value_display(prices, trends):
    results = trends(trendsFilter={"display": "ActionsBarValue"}, **histogram(2), **RANGE)
    # step 4.5: [1,5.5) [5.5,10.01)
    assert [(item["breakdown_value"], item["aggregated_value"]) for item in results] == [("[1,5.5]", 4), ("[5.5,10.01]", 2), (NULL, 2)]


def test_person_property_bins(team, trends):
    person(team, "young", properties={"age": 20})
    person(team, "old", properties={"age": 60})
    person(team, "middle", properties={"age": 35})
    events(team, view(1, distinct_id="young"), view(1, distinct_id="old"), view(2, distinct_id="old"), view(2, distinct_id="middle"))
    results = trends(breakdownFilter={"breakdown": "age", "breakdown_type": "person", "breakdown_histogram_bin_count": 2}, **RANGE)
    assert summary(results) == [("[20,40]", [1, 1]), ("[40,60.01]", [1, 1])]  # ties rank by value


def test_histogram_among_multiple_breakdowns(prices, trends):
    breakdowns = [{"property": "price", "histogram_bin_count": 2}, {"property": "$browser"}]
    results = trends(breakdownFilter={"breakdowns": breakdowns}, **RANGE)
    # a null part ranks the pair after every complete pair; ties rank by value
    assert summary(results) == [
        (["[1,5.5]", "Chrome"], [3, 0]),
        (["[1,5.5]", "Safari"], [1, 0]),
        (["[5.5,10.01]", "Chrome"], [0, 1]),
        (["[5.5,10.01]", "Safari"], [1, 0]),
        ([NULL, "Chrome"], [0, 2]),
    ]
    assert results[0]["label"] == "[1,5.5]::Chrome"


def test_each_compared_period_has_its_own_bins(team, trends):
    events(team, view(2, 0), view(2, 10), view(3, 100), view(3, 200))
    results = trends(**histogram(1), dateRange={"date_from": "2020-01-03", "date_to": "2020-01-03"}, compareFilter={"compare": True})
    assert [(item["compare_label"], item["breakdown_value"], item["data"]) for item in results] == [
        ("current", "[100,200.01]", [2]),
        ("previous", "[0,10.01]", [2]),
    ]


def test_two_statements_per_series(prices, run_query):
    query = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], **histogram(3), **RANGE}
    body = run_query(query, refresh="force_blocking").json()
    statements = body["hogql"].split(";\n\n")
    assert len(statements) == 2 and "MIN(" in statements[0].upper()


@pytest.mark.parametrize(
    "breakdown_filter, detail",
    [
        ({"breakdown": "price", "breakdown_histogram_bin_count": 0}, "The histogram bin count must be between 1 and 100."),
        ({"breakdown": "price", "breakdown_histogram_bin_count": 101}, "The histogram bin count must be between 1 and 100."),
        ({"breakdown": "properties.price", "breakdown_type": "hogql", "breakdown_histogram_bin_count": 3},
         "Histogram breakdowns of type 'hogql' are not supported; use an event or person property."),
        ({"breakdowns": [{"property": "distinct_id", "type": "event_metadata", "histogram_bin_count": 3}]},
         "Histogram breakdowns of type 'event_metadata' are not supported; use an event or person property."),
    ],
)
def test_refused_histograms_are_400(run_query, team, breakdown_filter, detail):
    query = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], "breakdownFilter": breakdown_filter}
    response = run_query(query)
    assert response.status_code == 400
    assert response.json()["detail"] == detail


def test_funnels_ignore_the_bin_count(team, run_query):
    # PostHog's funnels break down by the raw value whatever the histogram bin count
    events(team, ("A", "u1", "2020-01-01 10:00", {"price": 1}), ("B", "u1", "2020-01-01 10:01"),
           ("A", "u2", "2020-01-01 10:00", {"price": 10}))
    query = {"kind": "FunnelsQuery", "series": [{"kind": "EventsNode", "event": "A"}, {"kind": "EventsNode", "event": "B"}],
             **histogram(2), **RANGE}
    body = run_query(query, refresh="force_blocking").json()
    assert [([step["count"] for step in steps], steps[0]["breakdown_value"]) for steps in body["results"]] == [
        ([1, 1], ["1"]), ([1, 0], ["10"]),
    ]
