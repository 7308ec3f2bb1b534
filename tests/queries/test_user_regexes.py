"""Regular expressions from users run in linear time (RE2) or are refused with a clear 400.

A backtracking engine takes exponential time for `(a+)+$` over 'aaa...ab'; these queries would
never finish on SQLite with Python's `re`, whose calls the query timeout cannot interrupt.
"""
import pytest

from tests.conftest import error
from tests.queries.events import events, person

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

CATASTROPHIC = "(a+)+$"
LONG = "a" * 5000 + "b"
DAY = {"dateRange": {"date_from": "2020-01-02", "date_to": "2020-01-02"}}
LOOKAHEAD_PROBLEM = ("Invalid regular expression '(?=a)b': invalid perl operator: (?= "
                     "(lookaround and backreferences are not supported)")
BACKREFERENCE_PROBLEM = ("Invalid regular expression '(a)\\\\1': invalid escape sequence: \\1 "
                         "(lookaround and backreferences are not supported)")


@pytest.fixture
def data(team):
    person(team, "u1")
    events(
        team,
        ("$pageview", "u1", "2020-01-02 10:00", {"s": LONG, "$current_url": "/" + LONG}),
        ("$pageview", "u1", "2020-01-02 10:01", {"s": "aaa", "$current_url": "/done"}),
        ("$pageview", "u2", "2020-01-02 10:02", {"s": "xyz", "$current_url": "/xyz"}),
    )


def trends_total(run_query, properties):
    query = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], "properties": properties, **DAY}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 200, response.json()
    return response.json()["results"][0]["count"]


def sql(run_query, query, status=200):
    response = run_query({"kind": "HogQLQuery", "query": query}, refresh="force_blocking")
    assert response.status_code == status, response.json()
    return response.json()


def test_catastrophic_property_regex_runs(run_query, data):
    regex = {"key": "s", "operator": "regex", "value": CATASTROPHIC, "type": "event"}
    assert trends_total(run_query, [regex]) == 1  # 'aaa'
    assert trends_total(run_query, [{**regex, "operator": "not_regex"}]) == 2
    assert trends_total(run_query, [{"key": "properties.s =~ '(a+)+$'", "type": "hogql"}]) == 1


def test_catastrophic_sql_insight_regex_runs(run_query, data):
    body = sql(run_query, "SELECT countIf(properties.s =~ '(a+)+$'), countIf(match(properties.s, '(a+)+$')), "
                          "countIf(properties.s !~ '(a+)+$') FROM events")
    assert body["results"] == [[1, 1, 2]]


def test_catastrophic_pattern_computed_per_row_runs(run_query, data):
    # The pattern is a column value, so it cannot be checked before the query runs.
    body = sql(run_query, "SELECT countIf(properties.s =~ concat('(a+)', '+$')) FROM events")
    assert body["results"] == [[1]]


def test_catastrophic_path_cleaning_rule_runs(run_query, data):
    query = {"kind": "PathsQuery", **DAY,
             "pathsFilter": {"includeEventTypes": ["$pageview"],
                             "localPathCleaningFilters": [{"regex": "/(a+)+$", "alias": "/aaa"}]}}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 200, response.json()
    # '/aaa...ab' does not match: the case a backtracking engine never finishes.
    assert [(row["source"], row["target"], row["value"]) for row in response.json()["results"]] == [("1_/" + LONG, "2_/done", 1)]


@pytest.mark.parametrize("pattern, problem", [("(?=a)b", LOOKAHEAD_PROBLEM), ("(a)\\1", BACKREFERENCE_PROBLEM)])
def test_patterns_re2_cannot_run_are_400_everywhere(run_query, data, pattern, problem):
    expected = error("validation_error", "invalid_input", problem)
    trends = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], **DAY}
    literal = "'" + pattern.replace("\\", "\\\\") + "'"
    for query in (
        {**trends, "properties": [{"key": "s", "operator": "regex", "value": pattern, "type": "event"}]},
        {**trends, "properties": [{"key": "s", "operator": "not_regex", "value": pattern, "type": "event"}]},
        {**trends, "properties": [{"key": f"properties.s =~ {literal}", "type": "hogql"}]},
        {"kind": "HogQLQuery", "query": f"SELECT count() FROM events WHERE properties.s =~ {literal}"},
        {"kind": "HogQLQuery", "query": f"SELECT count() FROM events WHERE match(properties.s, {literal})"},
    ):
        response = run_query(query, refresh="force_blocking")
        assert (response.status_code, response.json()) == (400, expected), query
    paths = {"kind": "PathsQuery", **DAY, "pathsFilter": {"localPathCleaningFilters": [{"regex": pattern, "alias": "x"}]}}
    response = run_query(paths, refresh="force_blocking")
    assert response.status_code == 400
    assert response.json()["detail"] == problem.replace("Invalid regular expression", "Invalid regular expression in path cleaning rule")
