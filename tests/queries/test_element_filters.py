"""Element property filters (`type: "element"`, PostHog's `property_to_expr`) over the events'
`$elements_chain`: selector and tag name (exact / is_not), any element's text, the first href,
and the chain itself, in trends, funnels and event lists."""
import pytest

from tests.conftest import error
from tests.queries.events import events
from tests.queries.test_actions_matching import BUY, DAY, SIGN_UP, SPAN_IN_LINK

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

ALL_EVENTS = [{"kind": "EventsNode", "event": None}]


@pytest.fixture
def data(team):
    events(
        team,
        ("$autocapture", "u1", "2020-01-02 10:00", {"$elements_chain": BUY}),
        ("$autocapture", "u2", "2020-01-02 10:00", {"$elements_chain": SIGN_UP}),
        ("$autocapture", "u3", "2020-01-02 10:00", {"$elements_chain": SPAN_IN_LINK}),
        ("$pageview", "u1", "2020-01-02 11:00", {}),
        ("$pageview", "u2", "2020-01-02 11:00", {}),
        ("$pageview", "u3", "2020-01-02 11:00", {}),
    )


@pytest.fixture
def count(trends, data):
    def matching(key, operator, value=None, type="element"):
        prop = {"type": type, "key": key, "operator": operator, **({"value": value} if value is not None else {})}
        return trends(ALL_EVENTS, properties=[prop], **DAY)[0]["data"][0]

    return matching


@pytest.mark.parametrize("key, operator, value, expected", [
    ("selector", "exact", "a.btn", 2),
    ("selector", "exact", "form#signup > button", 1),
    ("selector", "is_not", "a.btn", 4),  # events without a chain match the negation
    ("selector", "exact", ["a.buy", "button.primary"], 2),  # a list is an OR
    ("selector", "is_not", ["a.buy", "button.primary"], 4),  # ... and for a negation an AND
    ("tag_name", "exact", "button", 1),
    ("tag_name", "exact", "a", 2),  # any element of the chain
    ("tag_name", "is_not", "button", 5),
    ("text", "exact", "Buy", 1),  # whole texts
    ("text", "exact", ["Buy", "Sign up"], 2),
    ("text", "is_not", "Buy", 5),
    ("text", "icontains", "BUY", 2),
    ("text", "not_icontains", "buy", 4),
    ("text", "regex", "^Sign", 1),
    ("text", "not_regex", "^Sign", 5),
    ("text", "is_set", None, 3),
    ("text", "is_not_set", None, 3),
    ("href", "exact", "/checkout", 1),  # the chain's first href
    ("href", "icontains", "CHECKOUT", 2),
    ("href", "regex", r"x=\d$", 1),
    ("href", "is_not", "/checkout", 5),
    ("href", "is_set", None, 2),
    ("href", "is_not_set", None, 4),
    ("$elements_chain", "icontains", "div.card", 2),
    ("$elements_chain", "regex", "^span", 1),
])
def test_element_filters(count, key, operator, value, expected):
    assert count(key, operator, value) == expected


def test_the_elements_chain_as_an_event_property(count):
    assert count("$elements_chain", "icontains", 'form:attr_id="signup"', type="event") == 1
    assert count("$elements_chain", "is_set", type="event") == 3


@pytest.mark.parametrize("prop, detail", [
    ({"key": "selector", "operator": "icontains", "value": "a"}, "Element filters on selector take the operators exact, is_not; 'icontains' is not supported."),
    ({"key": "tag_name", "operator": "regex", "value": "a"}, "Element filters on tag_name take the operators exact, is_not; 'regex' is not supported."),
    ({"key": "text", "operator": "gt", "value": "a"},
     "Element filters on text take the operators exact, is_not, icontains, not_icontains, regex, not_regex, is_set, is_not_set; 'gt' is not supported."),
    ({"key": "attr_id", "operator": "exact", "value": "buy"},
     "Element property filters take the keys selector, tag_name, text, href, $elements_chain, not 'attr_id'."),
])
def test_unsupported_element_filters_are_400(run_query, data, prop, detail):
    query = {"kind": "TrendsQuery", "series": ALL_EVENTS, "properties": [{"type": "element", **prop}], **DAY}
    response = run_query(query)
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", detail)


def test_element_filters_in_funnels_and_event_lists(run_query, data):
    query = {"kind": "FunnelsQuery", "series": [
        {"kind": "EventsNode", "event": "$autocapture", "properties": [{"type": "element", "key": "text", "operator": "icontains", "value": "buy"}]},
        {"kind": "EventsNode", "event": "$pageview"}], **DAY}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 200, response.json()
    assert [step["count"] for step in response.json()["results"]] == [2, 2]
    listed = run_query({"kind": "EventsQuery", "select": ["distinct_id"], "after": "all", "orderBy": ["distinct_id"],
                        "properties": [{"type": "element", "key": "selector", "operator": "exact", "value": "a.btn"}]})
    assert listed.status_code == 200, listed.json()
    assert listed.json()["results"] == [["u1"], ["u3"]]
