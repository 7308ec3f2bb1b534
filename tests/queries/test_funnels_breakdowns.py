"""FunnelsQuery breakdowns: values as lists, limit and "Other", attribution types, ordering."""
import pytest

from queries import clock
from tests.queries.events import events, person, ts
from tests.queries.test_funnels_steps import NOW, funnel, run

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

STEPS = ("sign up", "play movie", "buy")


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts(NOW))


def by_value(body: dict) -> list[tuple]:
    """[(breakdown value, counts, average times)] in result order; checks breakdown == breakdown_value."""
    summary = []
    for steps in body["results"]:
        assert len({repr(step["breakdown"]) for step in steps} | {repr(step["breakdown_value"]) for step in steps}) == 1
        summary.append((steps[0]["breakdown_value"], [s["count"] for s in steps], [s["average_conversion_time"] for s in steps]))
    return summary


def broken_down(breakdown, breakdown_type="event", *steps, **fields) -> dict:
    return funnel(*(steps or STEPS), breakdownFilter={"breakdown": breakdown, "breakdown_type": breakdown_type}, **fields)


@pytest.fixture
def browsers(team):
    events(
        team,
        ("sign up", "person1", "2021-05-01 12:00", {"$browser": "Chrome", "$browser_version": 95}),
        ("play movie", "person1", "2021-05-01 13:00", {"$browser": "Chrome", "$browser_version": 95}),
        ("buy", "person1", "2021-05-01 15:00", {"$browser": "Chrome", "$browser_version": 95}),
        ("sign up", "person2", "2021-05-02 14:00", {"$browser": "Safari", "$browser_version": 15}),
        ("play movie", "person2", "2021-05-02 16:00", {"$browser": "Safari", "$browser_version": 15}),
        ("sign up", "person3", "2021-05-02 14:00", {"$browser": "Safari", "$browser_version": 14}),
    )


def test_string_breakdown_gives_list_values(client, team, browsers):
    body = run(client, team, broken_down("$browser"))
    assert by_value(body) == [
        (["Chrome"], [1, 1, 1], [None, 3600.0, 7200.0]),
        (["Safari"], [2, 1, 0], [None, 7200.0, None]),
    ]
    first = body["results"][0][0]
    assert set(first) == {"action_id", "name", "custom_name", "order", "people", "count", "type", "average_conversion_time",
                          "median_conversion_time", "breakdown", "breakdown_value"}
    assert body["results"][1][1]["median_conversion_time"] == 7200.0


def test_list_breakdown_is_the_same(client, team, browsers):
    assert by_value(run(client, team, broken_down(["$browser"]))) == by_value(run(client, team, broken_down("$browser")))


def test_multi_property_breakdown(client, team, browsers):
    assert by_value(run(client, team, broken_down(["$browser", "$browser_version"]))) == [
        (["Chrome", "95"], [1, 1, 1], [None, 3600.0, 7200.0]),
        (["Safari", "15"], [1, 1, 0], [None, 7200.0, None]),
        (["Safari", "14"], [1, 0, 0], [None, None, None]),
    ]


def test_breakdowns_field(client, team, browsers):
    query = funnel(*STEPS, breakdownFilter={"breakdowns": [{"property": "$browser", "type": "event"}, {"property": "$browser_version"}]})
    assert [value for value, _, _ in by_value(run(client, team, query))] == [["Chrome", "95"], ["Safari", "15"], ["Safari", "14"]]


def test_person_breakdown(client, team):
    person(team, "person1", properties={"$browser": "Chrome"})
    person(team, "person2", properties={"$browser": "Safari"})
    person(team, "person3")
    events(
        team,
        ("sign up", "person1", "2021-05-01 12:00"), ("play movie", "person1", "2021-05-01 13:00"), ("buy", "person1", "2021-05-01 15:00"),
        ("sign up", "person2", "2021-05-02 14:00"), ("play movie", "person2", "2021-05-02 16:00"),
        ("sign up", "person3", "2021-05-02 14:00"),
    )
    assert by_value(run(client, team, broken_down("$browser", "person"))) == [
        (["Chrome"], [1, 1, 1], [None, 3600.0, 7200.0]),
        (["Safari"], [1, 1, 0], [None, 7200.0, None]),
        ([""], [1, 0, 0], [None, None, None]),
    ]


def test_limit_merges_the_rest_into_other(client, team):
    events(
        team,
        ("sign up", "person1", "2021-05-01 12:00", {"$browser": "Chrome"}), ("play movie", "person1", "2021-05-01 13:00", {"$browser": "Chrome"}),
        ("sign up", "person2", "2021-05-02 14:00", {"$browser": "Safari"}), ("play movie", "person2", "2021-05-02 15:00", {"$browser": "Safari"}),
        ("buy", "person2", "2021-05-02 16:00", {"$browser": "Safari"}),
        ("sign up", "person3", "2021-05-02 14:00", {"$browser": "Safari"}),
        ("sign up", "person4", "2021-05-02 14:00", {"$browser": "random"}),
        ("sign up", "person5", "2021-05-02 15:00", {"$browser": "another one"}),
    )
    query = funnel(*STEPS, breakdownFilter={"breakdown": "$browser", "breakdown_type": "event", "breakdown_limit": 1})
    assert by_value(run(client, team, query)) == [
        (["Safari"], [2, 1, 1], [None, 3600.0, 3600.0]),
        (["Other"], [3, 1, 0], [None, 3600.0, None]),
    ]
    # The default limit (25) keeps every value: most conversions first, ties in code point order.
    assert [value for value, _, _ in by_value(run(client, team, broken_down("$browser")))] == [
        ["Safari"], ["Chrome"], ["another one"], ["random"]]


@pytest.fixture
def touches(team):
    events(
        team,
        ("sign up", "p1", "2021-05-01 10:00", {"$browser": "Chrome"}), ("play movie", "p1", "2021-05-01 11:00", {"$browser": "Safari"}),
        ("buy", "p1", "2021-05-01 12:00"),
        ("sign up", "p2", "2021-05-01 10:00"), ("play movie", "p2", "2021-05-01 11:00", {"$browser": "Firefox"}),
    )


@pytest.mark.parametrize(
    "attribution, value, expected",
    [
        ("first_touch", None, [(["Chrome"], [1, 1, 1]), (["Firefox"], [1, 1, 0])]),
        ("last_touch", None, [(["Safari"], [1, 1, 1]), (["Firefox"], [1, 1, 0])]),
        ("all_events", None, [([""], [1, 0, 0]), (["Chrome"], [1, 0, 0])]),
        ("step", 1, [(["Safari"], [1, 1, 1]), (["Firefox"], [1, 1, 0])]),
        ("step", 0, [(["Chrome"], [1, 1, 1]), ([""], [1, 1, 0])]),
    ],
)
def test_attribution_types(client, team, touches, attribution, value, expected):
    query = broken_down("$browser", funnelsFilter={"breakdownAttributionType": attribution, "breakdownAttributionValue": value})
    assert [(v, c) for v, c, _ in by_value(run(client, team, query))] == expected


def test_step_attribution_needs_a_step_of_the_funnel(client, team):
    query = broken_down("$browser", funnelsFilter={"breakdownAttributionType": "step", "breakdownAttributionValue": 3})
    assert run(client, team, query, status=400)["detail"] == "breakdownAttributionValue must be between 0 and 2."


def test_normalized_url_breakdown(client, team):
    url = "$current_url"
    events(
        team,
        ("a", "p1", "2021-05-02 10:00", {url: "https://example.com/"}), ("b", "p1", "2021-05-02 10:01"),
        ("a", "p2", "2021-05-02 10:00", {url: "https://example.com"}),
        ("a", "p3", "2021-05-02 10:00", {url: "https://example.com/?#"}),
        ("a", "p4", "2021-05-02 10:00"),
    )
    query = funnel("a", "b", breakdownFilter={"breakdown": url, "breakdown_type": "event", "breakdown_normalize_url": True})
    assert [(v, c) for v, c, _ in by_value(run(client, team, query))] == [(["https://example.com"], [3, 1]), (["/"], [1, 0])]


def test_hogql_breakdown(client, team, browsers):
    query = broken_down("properties.$browser_version > 14", "hogql", "sign up", "play movie")
    assert [(v, c) for v, c, _ in by_value(run(client, team, query))] == [(["true"], [2, 2]), (["false"], [1, 0])]


def test_numbers_and_booleans_are_shown_as_text(client, team):
    events(
        team,
        ("a", "p1", "2021-05-02 10:00", {"flag": True, "n": 1.5}),
        ("a", "p2", "2021-05-02 10:00", {"flag": False, "n": 2}),
    )
    query = funnel("a", "a", breakdownFilter={"breakdown": ["flag", "n"], "breakdown_type": "event"})
    assert sorted(v for v, _, _ in by_value(run(client, team, query))) == [["false", "2"], ["true", "1.5"]]


def test_unordered_funnel_breakdown(client, team):
    events(
        team,
        ("b", "p1", "2021-05-02 10:00", {"$browser": "Chrome"}), ("a", "p1", "2021-05-02 11:00", {"$browser": "Safari"}),
        ("a", "p2", "2021-05-02 10:00", {"$browser": "Firefox"}),
    )
    query = funnel("a", "b", breakdownFilter={"breakdown": "$browser", "breakdown_type": "event"})
    query["funnelsFilter"]["funnelOrderType"] = "unordered"
    assert by_value(run(client, team, query)) == [(["Chrome"], [1, 1], [None, 3600.0]), (["Firefox"], [1, 0], [None, None])]
    query["funnelsFilter"]["breakdownAttributionType"] = "all_events"
    assert [(v, c) for v, c, _ in by_value(run(client, team, query))] == [(["Chrome"], [1, 0]), (["Firefox"], [1, 0]), (["Safari"], [1, 0])]
