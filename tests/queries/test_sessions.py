"""Sessions in insights (PostHog's sessions table): `$session_duration` math, session filters and
breakdowns, `unique_session`, and the `sessions` table of SQL insights.

Fixture (UTC, range 2020-01-01 .. 2020-01-03, day interval); session ids are UUIDv7 except "legacy":

  session  events                                                          duration  pageviews  bounce
  S1       alice $pageview 01-01 10:00:00 /a, $pageview 10:00:30 /b,        90 s      2          no
           $autocapture 10:01:30
  S2       bob $pageview 01-01 12:00:00 /a (https://x.com/a?q=1)            0 s       1          yes
  S3       bob $pageview 01-01 23:59:50 /c, $pageview 01-02 00:00:10 /d     20 s      2          no
  S4       carol signed_up 01-02 09:00, $pageview 01-02 09:00:05 /e        5 s       1          yes
  legacy   carol $pageview 01-03 10:00 (not a UUIDv7: no session row)      -
  (none)   anon $pageview 01-03 11:00 (no session id)
"""
import pytest

from tests.queries.events import events, person

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

RANGE = {"dateRange": {"date_from": "2020-01-01", "date_to": "2020-01-03"}}


def sid(n: int) -> str:
    return f"016f5e2a-0000-7000-8000-{n:012d}"


S1, S2, S3, S4 = sid(1), sid(2), sid(3), sid(4)


@pytest.fixture
def data(team):
    person(team, "alice")
    person(team, "bob")
    person(team, "carol")
    events(
        team,
        ("$pageview", "alice", "2020-01-01 10:00:00", {"$current_url": "https://x.com/a", "utm_source": "news"}, S1),
        ("$pageview", "alice", "2020-01-01 10:00:30", {"$current_url": "https://x.com/b"}, S1),
        ("$autocapture", "alice", "2020-01-01 10:01:30", {"$current_url": "https://x.com/b"}, S1),
        ("$pageview", "bob", "2020-01-01 12:00:00", {"$current_url": "https://x.com/a?q=1", "$referring_domain": "$direct"}, S2),
        ("$pageview", "bob", "2020-01-01 23:59:50", {"$current_url": "https://y.org/c"}, S3),
        ("$pageview", "bob", "2020-01-02 00:00:10", {"$current_url": "https://y.org/d"}, S3),
        ("signed_up", "carol", "2020-01-02 09:00:00", {}, S4),
        ("$pageview", "carol", "2020-01-02 09:00:05", {"$current_url": "https://x.com/e"}, S4),
        ("$pageview", "carol", "2020-01-03 10:00:00", {"$current_url": "https://x.com/f"}, "legacy"),
        ("$pageview", "anon", "2020-01-03 11:00:00", {}),
        personless=("anon",),
    )


def pageviews(**fields):
    return [{"kind": "EventsNode", "event": "$pageview", **fields}]


@pytest.mark.parametrize(
    "math, expected",
    [
        # Per day, each session once with its whole duration: day 1 has S1 (90), S2 (0), S3 (20);
        # day 2 has S3 again (20) and S4 (5); day 3 only events without a session row.
        ("avg", [110 / 3, 12.5, 0]),
        ("sum", [110, 25, 0]),
        ("min", [0, 5, 0]),
        ("max", [90, 20, 0]),
        ("median", [20, 12.5, 0]),
        ("p90", [76, 18.5, 0]),
    ],
)
def test_session_duration_math_counts_each_session_once_per_bucket(data, trends, math, expected):
    [result] = trends(pageviews(math=math, math_property="$session_duration", math_property_type="session_properties"), **RANGE)
    assert result["data"] == pytest.approx(expected)


def test_session_duration_math_total_value(data, trends):
    [result] = trends(pageviews(math="avg", math_property="$session_duration"), trendsFilter={"display": "BoldNumber"}, **RANGE)
    assert result["aggregated_value"] == pytest.approx((90 + 0 + 20 + 5) / 4)


def test_unique_session_counts_the_empty_session_too(data, trends):
    [result] = trends(pageviews(math="unique_session"), **RANGE)
    assert result["data"] == [3, 2, 2]  # day 3: "legacy" and the empty id


@pytest.mark.parametrize(
    "prop, expected",
    [
        ({"key": "$session_duration", "operator": "gt", "value": 10}, [3, 1, 0]),
        ({"key": "$session_duration", "operator": "lt", "value": 10}, [1, 1, 0]),
        ({"key": "$session_duration", "operator": "between", "value": [5, 20]}, [1, 2, 0]),
        ({"key": "$is_bounce", "operator": "exact", "value": "1"}, [1, 1, 0]),
        ({"key": "$entry_current_url", "operator": "icontains", "value": "y.org"}, [1, 1, 0]),
        ({"key": "$entry_pathname", "operator": "exact", "value": "/a"}, [3, 0, 0]),
        ({"key": "$entry_hostname", "operator": "exact", "value": "x.com"}, [3, 1, 0]),
        ({"key": "$exit_current_url", "operator": "exact", "value": "https://x.com/b"}, [2, 0, 0]),
        ({"key": "$pageview_count", "operator": "gte", "value": 2}, [3, 1, 0]),
        ({"key": "$entry_utm_source", "operator": "exact", "value": "news"}, [2, 0, 0]),
        ({"key": "$entry_referring_domain", "operator": "is_set"}, [1, 0, 0]),
        ({"key": "$session_duration", "operator": "is_not_set"}, [0, 0, 2]),
    ],
)
def test_session_property_filters(data, trends, prop, expected):
    [result] = trends(pageviews(), properties=[{"type": "session", **prop}], **RANGE)
    assert result["data"] == expected


def test_unknown_session_property_is_a_400(data, run_query):
    response = run_query({"kind": "TrendsQuery", "series": pageviews(),
                          "properties": [{"type": "session", "key": "$nope", "value": 1}]}, refresh="force_blocking")
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"


def test_session_breakdown(data, trends):
    results = trends(pageviews(), breakdownFilter={"breakdown_type": "session", "breakdown": "$entry_pathname"}, **RANGE)
    assert {r["breakdown_value"]: r["data"] for r in results} == {
        "/a": [3, 0, 0], "/c": [1, 1, 0], "/e": [0, 1, 0], "$$_posthog_breakdown_null_$$": [0, 0, 2],
    }


def test_session_duration_math_with_breakdown(data, trends):
    results = trends(pageviews(math="avg", math_property="$session_duration"),
                     breakdownFilter={"breakdown_type": "session", "breakdown": "$is_bounce"}, **RANGE)
    assert {r["breakdown_value"]: r["data"] for r in results} == {"0": [55.0, 20.0, 0.0], "1": [0.0, 5.0, 0.0]}


def test_session_filter_in_funnel(data, run_query):
    query = {"kind": "FunnelsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}, {"kind": "EventsNode", "event": "$autocapture"}],
             "properties": [{"type": "session", "key": "$session_duration", "operator": "gt", "value": 60}], **RANGE}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 200, response.json()
    assert [step["count"] for step in response.json()["results"]] == [1, 1]


def test_sessions_table_in_sql_insights(data, run_query):
    query = {"kind": "HogQLQuery", "query": "select session_id, $session_duration, $pageview_count, $is_bounce, $entry_current_url, "
                                             "$end_current_url, distinct_id from sessions order by $start_timestamp"}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 200, response.json()
    assert response.json()["results"] == [
        [S1, 90, 2, 0, "https://x.com/a", "https://x.com/b", "alice"],
        [S2, 0, 1, 1, "https://x.com/a?q=1", "https://x.com/a?q=1", "bob"],
        [S3, 20, 2, 0, "https://y.org/c", "https://y.org/d", "bob"],
        [S4, 5, 1, 1, "https://x.com/e", "https://x.com/e", "carol"],
    ]


def test_session_breakdown_in_funnel(data, run_query):
    query = {"kind": "FunnelsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}, {"kind": "EventsNode", "event": "$pageview"}],
             "breakdownFilter": {"breakdown_type": "session", "breakdown": "$entry_hostname"}, **RANGE}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 200, response.json()
    counts = {steps[0]["breakdown_value"][0]: [step["count"] for step in steps] for steps in response.json()["results"]}
    # First touch: alice (S1), bob (S2) and carol (S4) enter on x.com; the anonymous visitor has no session.
    assert counts["x.com"] == [3, 3]
    assert counts[""] == [1, 0]


def test_channel_type(team, trends):
    rows = [
        ({"$referring_domain": "$direct"}, "Direct"),
        ({"$referring_domain": "news.ycombinator.com"}, "Referral"),
        ({"$referring_domain": "google.com", "gclid": "abc"}, "Paid Search"),
        ({"$referring_domain": "facebook.com", "utm_medium": "cpc", "fbclid": "x"}, "Paid Social"),
        ({"$referring_domain": "$direct", "utm_medium": "Paid-Ads"}, "Paid Unknown"),
        ({"$referring_domain": "$direct", "fbclid": "x"}, "Organic Social"),
        ({"$referring_domain": "$direct", "utm_medium": "email"}, "Email"),
        ({"$referring_domain": "$direct", "utm_campaign": "Cross-Network-Q1"}, "Cross Network"),
        ({}, "Unknown"),
    ]
    events(team, *[("$pageview", f"u{n}", "2020-01-01 10:00", props, sid(100 + n)) for n, (props, _) in enumerate(rows)])
    results = trends(pageviews(), breakdownFilter={"breakdown_type": "session", "breakdown": "$channel_type"},
                     trendsFilter={"display": "ActionsTable"}, **RANGE)
    assert {r["breakdown_value"]: r["aggregated_value"] for r in results} == {label: 1 for _, label in rows}


def test_sessions_are_whole_beyond_the_query_range(data, trends):
    # S3 started the day before: its duration still counts the events outside the range.
    [result] = trends(pageviews(math="max", math_property="$session_duration"), dateRange={"date_from": "2020-01-02", "date_to": "2020-01-02"})
    assert result["data"] == [20]


@pytest.mark.parametrize("math", ["first_time_for_user", "first_matching_event_for_user"])
def test_first_time_maths_with_session_filters_and_breakdowns(data, trends, math):
    results = trends(pageviews(math=math), properties=[{"type": "session", "key": "$session_duration", "operator": "gte", "value": 0}],
                     breakdownFilter={"breakdown_type": "session", "breakdown": "$entry_hostname"}, **RANGE)
    # alice and bob first view on day 1 in x.com sessions; carol on day 2 (S4).
    assert {r["breakdown_value"]: r["data"] for r in results} == {"x.com": [2, 1, 0]}


SESSION_FILTER = {"type": "session", "key": "$session_duration", "operator": "gt", "value": 60}


@pytest.mark.parametrize("query, expected", [
    ({"kind": "RetentionQuery", "retentionFilter": {"period": "Day", "totalIntervals": 2}, **RANGE}, [1, 0]),
    ({"kind": "StickinessQuery", "series": pageviews(), **RANGE}, None),
    ({"kind": "LifecycleQuery", "series": pageviews(), **RANGE}, None),
    ({"kind": "PathsQuery", "pathsFilter": {"includeEventTypes": ["$pageview"]}, **RANGE}, None),
])
def test_session_filters_in_other_insights(data, run_query, query, expected):
    response = run_query({**query, "properties": [SESSION_FILTER]}, refresh="force_blocking")
    assert response.status_code == 200, response.json()
    if expected is not None:  # only alice's S1 lasts over a minute
        assert [[cell["count"] for cell in row["values"]] for row in response.json()["results"]][0] == expected


def test_session_filters_in_sql_filters_and_event_lists(data, run_query):
    # Only alice's S1 lasts over a minute: its three events.
    response = run_query({"kind": "HogQLQuery", "query": "select count() from events where {filters}",
                          "filters": {"properties": [SESSION_FILTER]}}, refresh="force_blocking")
    assert response.status_code == 200, response.json()
    assert response.json()["results"] == [[3]]
    # A negative filter also matches the events without a session (HogQL's NULL semantics).
    short = {"type": "session", "key": "$session_duration", "operator": "lt", "value": 60}
    listed = run_query({"kind": "EventsQuery", "select": ["distinct_id", "event"], "after": "all", "orderBy": ["timestamp"],
                        "properties": [{"type": "session", "key": "$entry_pathname", "operator": "is_not", "value": "/a"}, short]})
    assert listed.status_code == 200, listed.json()
    assert listed.json()["results"] == [["bob", "$pageview"], ["bob", "$pageview"], ["carol", "signed_up"], ["carol", "$pageview"]]
    listed = run_query({"kind": "EventsQuery", "select": ["distinct_id"], "after": "all", "orderBy": ["timestamp"],
                        "properties": [{"type": "session", "key": "$entry_pathname", "operator": "is_not", "value": "/a"}]})
    assert [row[0] for row in listed.json()["results"]] == ["bob", "bob", "carol", "carol", "carol", "anon"]
    # A bounded list reads only the sessions around its range, each still whole: S3 lasted 20 s
    # although the list starts after its first event; S4 lasted 5 s.
    listed = run_query({"kind": "EventsQuery", "select": ["distinct_id", "timestamp"], "after": "2020-01-02", "before": "2020-01-02 12:00",
                        "properties": [{"type": "session", "key": "$session_duration", "operator": "gt", "value": 10}]})
    assert listed.json()["results"] == [["bob", "2020-01-02T00:00:10Z"]]


def test_session_urls(data, run_query):
    response = run_query({"kind": "HogQLQuery", "query": "select session_id, $urls, $num_uniq_urls from sessions order by $start_timestamp"},
                         refresh="force_blocking")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["results"] == [
        [S1, ["https://x.com/a", "https://x.com/b"], 2],
        [S2, ["https://x.com/a?q=1"], 1],
        [S3, ["https://y.org/c", "https://y.org/d"], 2],
        [S4, ["https://x.com/e"], 1],
    ]
    assert body["types"][1] == ["$urls", "Array(String)"]
    response = run_query({"kind": "TrendsQuery", "series": pageviews(), "properties": [
        {"type": "session", "key": "$urls", "operator": "icontains", "value": "x.com"}], **RANGE})
    assert response.status_code == 400
    assert response.json()["detail"] == ("The session property $urls is a list of URLs: filter or break down by $entry_current_url, "
                                         "$end_current_url or $num_uniq_urls instead.")
