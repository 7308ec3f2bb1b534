"""Compare to the previous period / compare_to, and formulas (alone, with compare, breakdown, totals)."""
import pytest

from tests.queries.events import events

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

PAGEVIEW = {"kind": "EventsNode", "event": "$pageview"}
SIGNUP = {"kind": "EventsNode", "event": "signed_up"}
CURRENT = {"dateRange": {"date_from": "2020-01-15", "date_to": "2020-01-19"}}


@pytest.fixture
def data(team):
    # n pageviews on Jan 7 + n; sign-ups: 2 on Jan 15, 1 on Jan 17
    rows = [("$pageview", f"u{i}", f"2020-01-{7 + n:02d} 12:00") for n in range(1, 13) for i in range(n)]
    rows += [("signed_up", "u0", "2020-01-15 13:00"), ("signed_up", "u1", "2020-01-15 14:00"), ("signed_up", "u0", "2020-01-17 13:00")]
    events(team, *rows)


def test_compare_to_previous_period(data, trends):
    results = trends([PAGEVIEW, SIGNUP], compareFilter={"compare": True}, **CURRENT)
    assert [(r["label"], r["compare_label"], r["data"]) for r in results] == [
        ("$pageview", "current", [8, 9, 10, 11, 12]),
        ("signed_up", "current", [2, 0, 1, 0, 0]),
        ("$pageview", "previous", [3, 4, 5, 6, 7]),
        ("signed_up", "previous", [0, 0, 0, 0, 0]),
    ]
    assert all(r["compare"] is True for r in results)
    assert results[2]["days"] == ["2020-01-10", "2020-01-11", "2020-01-12", "2020-01-13", "2020-01-14"]
    assert results[2]["labels"][0] == "10-Jan-2020"
    assert results[2]["filter"]["date_from"] == "2020-01-15T00:00:00Z"  # the filter describes the query


@pytest.mark.parametrize("compare_to, days, expected", [
    ("-2d", ["2020-01-13", "2020-01-17"], [6, 7, 8, 9, 10]),
    ("-1w", ["2020-01-08", "2020-01-12"], [1, 2, 3, 4, 5]),
])
def test_compare_to_relative_offset(data, trends, compare_to, days, expected):
    current, previous = trends(compareFilter={"compare": True, "compare_to": compare_to}, **CURRENT)
    assert current["data"] == [8, 9, 10, 11, 12]
    assert (previous["days"][0], previous["days"][-1]) == tuple(days)
    assert previous["data"] == expected


def test_without_compare_there_are_no_compare_keys(data, trends):
    [result] = trends(**CURRENT)
    assert "compare" not in result and "compare_label" not in result


def test_invalid_compare_to_is_400(data, run_query):
    query = {"kind": "TrendsQuery", "series": [PAGEVIEW], "compareFilter": {"compare": True, "compare_to": "last year"}, **CURRENT}
    response = run_query(query)
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid compare_to value: 'last year'. Use a relative date such as -1w or -1m."


@pytest.mark.parametrize("formula, expected", [
    ("A+B", [10.0, 9.0, 11.0, 11.0, 12.0]),
    ("A/B", [4.0, 0.0, 10.0, 0.0, 0.0]),  # division by zero gives 0
    ("B+1", [3.0, 1.0, 2.0, 1.0, 1.0]),
    ("(A - B) * 2", [12.0, 18.0, 18.0, 22.0, 24.0]),
    ("-a", [-8.0, -9.0, -10.0, -11.0, -12.0]),
])
def test_formula(data, trends, formula, expected):
    [result] = trends([PAGEVIEW, SIGNUP], trendsFilter={"formula": formula}, **CURRENT)
    assert result["data"] == expected
    assert result["count"] == sum(expected)
    assert result["label"] == f"Formula ({formula})"
    assert result["action"] is None
    assert result["days"][0] == "2020-01-15"


def test_several_formulas_and_custom_names(data, trends):
    results = trends([PAGEVIEW, SIGNUP], trendsFilter={"formulas": ["A*2", "A-B"]}, **CURRENT)
    assert [(r["label"], r["data"]) for r in results] == [
        ("Formula (A*2)", [16.0, 18.0, 20.0, 22.0, 24.0]),
        ("Formula (A-B)", [6.0, 9.0, 9.0, 11.0, 12.0]),
    ]
    nodes = {"formulaNodes": [{"formula": "A+B", "custom_name": "Everything"}], "formula": "A"}
    [named] = trends([PAGEVIEW, SIGNUP], trendsFilter=nodes, **CURRENT)
    assert named["label"] == "Everything"  # formulaNodes win over formula


def test_formula_with_compare(data, trends):
    results = trends([PAGEVIEW, SIGNUP], trendsFilter={"formula": "A+B"}, compareFilter={"compare": True}, **CURRENT)
    assert [(r["compare_label"], r["data"]) for r in results] == [
        ("current", [10.0, 9.0, 11.0, 11.0, 12.0]),
        ("previous", [3.0, 4.0, 5.0, 6.0, 7.0]),
    ]


def test_formula_on_total_value(data, trends):
    [result] = trends([PAGEVIEW, SIGNUP], trendsFilter={"formula": "A/B", "display": "BoldNumber"}, **CURRENT)
    assert result["aggregated_value"] == pytest.approx(50 / 3)
    assert result["data"] is None and result["count"] == 0


def test_formula_with_breakdown_fills_missing_values(team, trends):
    events(
        team,
        ("$pageview", "a", "2020-01-01 10:00", {"$browser": "Chrome"}),
        ("$pageview", "a", "2020-01-01 11:00", {"$browser": "Chrome"}),
        ("$pageview", "a", "2020-01-02 10:00", {"$browser": "Chrome"}),
        *[("$pageview", "b", "2020-01-02 10:00", {"$browser": "Safari"})] * 3,
        ("signed_up", "a", "2020-01-01 12:00", {"$browser": "Chrome"}),
        *[("signed_up", "c", "2020-01-02 12:00", {"$browser": "Firefox"})] * 2,
    )
    results = trends([PAGEVIEW, SIGNUP], trendsFilter={"formula": "A+B"}, breakdownFilter={"breakdown": "$browser"},
                     dateRange={"date_from": "2020-01-01", "date_to": "2020-01-02"})
    assert [(r["breakdown_value"], r["data"], r["label"]) for r in results] == [
        ("Chrome", [3.0, 1.0], "Formula (A+B)"),
        ("Safari", [0.0, 3.0], "Formula (A+B)"),
        ("Firefox", [0.0, 2.0], "Formula (A+B)"),  # built on a zero filler for series A
    ]


@pytest.mark.parametrize("formula, detail", [
    ("A+C", "Invalid formula 'A+C': there is no series C"),
    ("__import__('os')", "Invalid formula \"__import__('os')\": only series letters, numbers, + - * / and parentheses are allowed"),
    ("A+", "Invalid formula 'A+': syntax error"),
])
def test_invalid_formula_is_400(data, run_query, formula, detail):
    query = {"kind": "TrendsQuery", "series": [PAGEVIEW, SIGNUP], "trendsFilter": {"formula": formula}, **CURRENT}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 400
    assert response.json()["detail"] == detail
