"""Property filters: every operator with HogQL's NULL semantics, groups, person and HogQL filters."""
import pytest

from tests.queries.events import events, person

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

DAY = {"dateRange": {"date_from": "2020-01-02", "date_to": "2020-01-02"}}


@pytest.fixture
def data(team):
    person(team, "u1", properties={"plan": "pro", "email": "alice@example.com"})
    person(team, "u2", properties={"plan": "pro"})
    person(team, "u3", properties={"plan": "free"})
    events(
        team,
        ("$pageview", "u1", "2020-01-02 10:00", {"browser": "Chrome", "n": 5, "flag": True, "url": "https://a.com/50%_off",
                                                 "email": "alice@example.com", "date": "2020-01-05T10:00:00Z"}),
        ("$pageview", "u2", "2020-01-02 10:00", {"browser": "Firefox", "n": "12", "flag": False, "email": "bob@test.io", "date": "2019-12-01"}),
        ("$pageview", "u3", "2020-01-02 10:00", {"browser": "", "n": 20.5}),
        ("$pageview", "u4", "2020-01-02 10:00", {}),
        ("$pageview", "u5", "2020-01-02 10:00", {"browser": None, "n": "abc"}),
        ("$pageview", "u6", "2020-01-02 10:00", {"browser": "chrome mobile", "n": -1}),
        personless=("u6",),
    )


@pytest.fixture
def count(trends, data):
    def matching(properties, **fields):
        [result] = trends(properties=properties, **DAY, **fields)
        return result["data"][0]

    return matching


def prop(key, operator, value=None, type_="event"):
    return {"key": key, "operator": operator, "value": value, "type": type_}


@pytest.mark.parametrize(
    "key, operator, value, expected",
    [
        ("browser", "exact", "Chrome", 1),
        ("browser", "exact", ["Chrome", "Firefox"], 2),
        ("browser", "exact", ["Chrome"], 1),
        ("browser", "exact", [], 6),  # an empty list filters nothing
        ("browser", "exact", "", 1),
        ("browser", "is_not", "Chrome", 5),  # missing and null values match is_not
        ("browser", "is_not", ["Chrome", "Firefox"], 4),
        ("browser", "in", ["Chrome", "Firefox"], 2),
        ("browser", "not_in", ["Chrome", "Firefox"], 4),
        ("browser", "icontains", "chrome", 2),
        ("browser", "icontains", ["fire", "mobile"], 2),  # positive operators OR their values
        ("browser", "not_icontains", "chrome", 4),
        ("browser", "not_icontains", ["fire", "mobile"], 4),  # negative operators AND them
        ("browser", "regex", "^[Cc]hrome", 2),
        ("browser", "not_regex", "^C", 5),
        ("browser", "is_set", None, 4),  # "" is set, null is not
        ("browser", "is_not_set", None, 2),
        ("url", "icontains", "%_", 1),  # LIKE wildcards in the value are literal
        ("n", "gt", 10, 2),  # "12" counts as 12; "abc" never matches
        ("n", "gte", "12", 2),
        ("n", "lt", 5, 1),
        ("n", "lte", 5, 2),
        ("n", "min", 12, 2),
        ("n", "max", 5, 2),
        ("n", "between", [5, 12], 2),
        ("n", "not_between", [5, 12], 2),
        ("n", "exact", 5, 1),
        ("flag", "exact", True, 1),
        ("flag", "exact", "false", 1),
        ("flag", "is_not", True, 5),
        ("date", "is_date_before", "2020-01-01", 1),
        ("date", "is_date_after", "2020-01-01", 1),
    ],
)
def test_event_property_operators(count, key, operator, value, expected):
    assert count([prop(key, operator, value)]) == expected


def test_operator_defaults_to_exact(count):
    assert count([{"key": "browser", "value": "Chrome", "type": "event"}]) == 1


def test_person_properties(count):
    assert count([prop("plan", "exact", "pro", "person")]) == 2
    assert count([prop("plan", "is_not", "pro", "person")]) == 4  # persons without a plan, and personless events
    assert count([prop("email", "icontains", "example", "person"), prop("browser", "exact", "Chrome")]) == 1


def test_event_metadata(count):
    assert count([prop("distinct_id", "exact", "u2", "event_metadata")]) == 1
    assert count([prop("timestamp", "is_date_before", "2020-01-02T10:00:01Z", "event_metadata")]) == 6


def test_hogql_filter(count):
    assert count([{"key": "properties.n > 10 and properties.browser != 'x'", "type": "hogql"}]) == 2
    assert count([{"key": "person.properties.plan = 'pro' or distinct_id = 'u6'", "type": "hogql"}]) == 3
    assert count([{"key": "lower(properties.browser) like 'chrome%' and notEmpty(properties.browser)", "type": "hogql"}]) == 2


def test_list_is_and_group_is_and_or(count):
    assert count([prop("browser", "icontains", "chrome"), prop("n", "gt", 0)]) == 1
    group = {
        "type": "OR",
        "values": [
            {"type": "AND", "values": [prop("browser", "exact", "Chrome")]},
            {"type": "AND", "values": [prop("n", "gt", 15), prop("browser", "is_set")]},
        ],
    }
    assert count(group) == 2
    assert count({"type": "AND", "values": []}) == 6


def test_series_and_query_properties_combine(trends, data):
    series = [{"kind": "EventsNode", "event": "$pageview", "properties": [prop("browser", "icontains", "chrome")]}]
    [result] = trends(series, properties=[prop("n", "lt", 0)], **DAY)
    assert result["data"] == [1]


def test_filter_test_accounts(team, count):
    team.test_account_filters = [prop("email", "not_icontains", "@test.io")]
    team.save()
    assert count([], filterTestAccounts=True) == 5
    assert count([], filterTestAccounts=False) == 6


@pytest.mark.parametrize(
    "properties, detail",
    [
        ([prop("browser", "regex", "(")], "Invalid regular expression '(': missing ), unterminated subpattern at position 0"),
        ([{"key": "id", "value": 3, "type": "cohort"}], "Could not find cohort with ID 3"),
        ([prop("n", "between", [1])], "The between operator needs a list of two numbers, got [1]."),
        ([{"key": "properties.n >", "type": "hogql"}], "Syntax error in HogQL expression 'properties.n >': unexpected 'end of expression'"),
        ([{"key": "nosuchfn(event)", "type": "hogql"}], "Unsupported function in HogQL expression: nosuchfn"),
        ([{"key": "properties.n", "type": "hogql"}], "A HogQL condition must be a comparison or a boolean expression."),
    ],
)
def test_bad_filters_are_400(run_query, data, properties, detail):
    query = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], "properties": properties, **DAY}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 400
    assert response.json() == {"type": "validation_error", "code": "invalid_input", "detail": detail, "attr": None}
