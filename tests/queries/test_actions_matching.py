"""Which events an action matches (PostHog's `action_to_expr`, spec/vocabulary.md §1.4), counted
through a trends series: URL matching, autocapture selector / tag / href / text over the
elements chain, step properties, OR of steps, missing and deleted actions."""
import pytest

from tests.factories import ActionFactory
from tests.queries.events import events

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

DAY = {"dateRange": {"date_from": "2020-01-02", "date_to": "2020-01-02"}}
BUY = ('a.btn.buy:attr__href="/checkout"attr_id="buy"href="/checkout"nth-child="1"nth-of-type="1"text="Buy now";'
       'div.card:nth-child="2"nth-of-type="1";body:nth-child="1"nth-of-type="1"')
SIGN_UP = ('button.primary:nth-child="1"nth-of-type="1"text="Sign up";form:attr_id="signup"nth-child="1"nth-of-type="1";'
           'div.card.wide:nth-child="1"nth-of-type="1";body:nth-child="1"nth-of-type="1"')
SPAN_IN_LINK = ('span:nth-child="1"nth-of-type="1"text="Buy";a.btn:href="/checkout?x=1"nth-child="1"nth-of-type="1";'
                'body:nth-child="1"nth-of-type="1"')


@pytest.fixture
def data(team):
    events(
        team,
        ("$autocapture", "u1", "2020-01-02 10:00", {"$elements_chain": BUY, "$current_url": "https://example.com/pricing"}),
        ("$autocapture", "u2", "2020-01-02 10:00", {"$elements_chain": SIGN_UP}),
        ("$autocapture", "u3", "2020-01-02 10:00", {"$elements_chain": SPAN_IN_LINK}),
        ("$pageview", "u1", "2020-01-02 10:00", {"$current_url": "https://example.com/pricing?plan=Pro", "plan": "pro"}),
        ("$pageview", "u2", "2020-01-02 10:00", {"$current_url": "https://example.com/PRICING"}),
        ("$pageview", "u3", "2020-01-02 10:00", {"$current_url": "https://example.com/docs"}),
    )


@pytest.fixture
def count(trends, data, team):
    def matching(*steps, **action_fields):
        action = ActionFactory(team=team, steps_json=list(steps), **action_fields)
        results = trends([{"kind": "ActionsNode", "id": action.id}], **DAY)
        return results[0]["data"][0] if results else None

    return matching


@pytest.mark.parametrize("step, expected", [
    ({"event": "$pageview", "url": "pricing"}, 1),  # contains is case-sensitive
    ({"event": "$pageview", "url": "pricing", "url_matching": "contains"}, 1),
    ({"event": "$pageview", "url": "https://example.com/docs", "url_matching": "exact"}, 1),
    ({"event": "$pageview", "url": "https://example.com/doc", "url_matching": "exact"}, 0),
    ({"event": "$pageview", "url": "/(pricing|docs)", "url_matching": "regex"}, 2),
    ({"event": "$pageview", "url": "(?i)/pricing$", "url_matching": "regex"}, 1),
    ({"event": "$pageview", "url": "example.com/_ocs"}, 1),  # the URL's _ is a LIKE wildcard, as in PostHog
    ({"url": "pricing"}, 2),  # no event: any event with that URL
    ({"event": "$pageview", "url": ""}, 3),  # an empty URL is no condition
])
def test_url_matching(count, step, expected):
    assert count(step) == expected


@pytest.mark.parametrize("selector, expected", [
    ("a.btn", 2),  # the clicked element or any ancestor
    ("a.buy", 1),
    ("a.btn.buy", 1),
    (".buy.btn", 1),
    ("a.bt", 0),  # whole class names only
    ("div > a.btn", 1),
    ("body > a.btn", 1),
    ("body a.btn", 2),
    ("div a", 1),
    ("#buy", 1),
    ("a#buy", 1),
    ("button#buy", 0),
    ("form#signup button", 1),
    ("form#signup > button", 1),
    ("div.wide button.primary", 1),
    ("[nth-child='2']", 1),  # nth-child, nth-of-type, href, text and id are element fields, not attr__ keys
    ("[data-nth='2']", 0),
    ("div:nth-child(2) > a", 1),
    ("*", 3),
])
def test_autocapture_selector(count, selector, expected):
    assert count({"event": "$autocapture", "selector": selector}) == expected


@pytest.mark.parametrize("step, expected", [
    ({"tag_name": "button"}, 1),
    ({"tag_name": "a"}, 2),  # any element of the chain
    ({"tag_name": "form"}, 1),
    ({"tag_name": "abbr"}, 0),
    ({"href": "/checkout"}, 1),  # exact (null matching) on the chain's first href
    ({"href": "/checkout", "href_matching": "exact"}, 1),
    ({"href": "CHECKOUT", "href_matching": "contains"}, 2),  # case-insensitive
    ({"href": r"\?x=\d", "href_matching": "regex"}, 1),
    ({"text": "Buy"}, 1),
    ({"text": "Buy", "text_matching": "exact"}, 1),
    ({"text": "buy", "text_matching": "contains"}, 2),
    ({"text": "b_y", "text_matching": "contains"}, 2),  # ILIKE wildcard
    ({"text": "^Sign", "text_matching": "regex"}, 1),
    ({"text": "^(Buy|Sign up)$", "text_matching": "regex"}, 2),
    ({"text": "now$", "text_matching": "regex"}, 1),
    ({"text": 'say "hi"'}, 0),
    ({"tag_name": "a", "text": "Buy now", "href": "/checkout"}, 1),  # all conditions of a step
])
def test_autocapture_elements(count, step, expected):
    assert count({"event": "$autocapture", **step}) == expected


def test_element_conditions_apply_to_autocapture_only(count):
    assert count({"event": "$pageview", "selector": "a.btn", "tag_name": "button", "text": "x", "href": "y"}) == 3


def test_step_properties(count):
    assert count({"event": "$pageview", "properties": [{"key": "$current_url", "operator": "icontains", "value": "pricing"}]}) == 2
    assert count({"event": "$pageview", "properties": [{"key": "plan", "value": "pro", "type": "event"}], "url": "pricing"}) == 1


def test_person_properties_on_steps(count, team):
    from tests.queries.events import person
    person(team, "u9", properties={"plan": "team"})
    events(team, ("$pageview", "u9", "2020-01-02 11:00", {}))
    assert count({"event": "$pageview", "properties": [{"key": "plan", "value": "team", "type": "person"}]}) == 1


def test_steps_are_ored(count):
    assert count({"event": "$pageview", "url": "docs"}, {"event": "$autocapture", "tag_name": "button"}) == 2


def test_no_steps_and_empty_steps_match_every_event(count):
    assert count() == 6
    assert count({}) == 6
    assert count({"event": "$pageview", "url": "docs"}, {}) == 6


def test_deleted_actions_still_compute(count):
    assert count({"event": "$pageview"}, deleted=True) == 3


def test_missing_action_drops_the_series(trends, data, team):
    results = trends([{"kind": "EventsNode", "event": "$pageview"}, {"kind": "ActionsNode", "id": 987654}], **DAY)
    assert [item["label"] for item in results] == ["$pageview"]


def test_another_projects_action_is_missing(trends, data):
    from tests.factories import make_team
    other = ActionFactory(team=make_team(name="elsewhere"))
    assert trends([{"kind": "ActionsNode", "id": other.id}], **DAY) == []


def test_an_environment_sees_its_projects_actions(trends, data, team):
    from tests.factories import make_environment
    action = ActionFactory(team=make_environment(team), steps_json=[{"event": "$pageview"}])
    assert trends([{"kind": "ActionsNode", "id": action.id}], **DAY)[0]["data"] == [3]


def test_a_regex_rre2_refuses_is_a_400(run_query, data, team):
    action = ActionFactory(team=team, steps_json=[{"event": "$pageview", "url": "(a)\\1", "url_matching": "regex"}])
    response = run_query({"kind": "TrendsQuery", "series": [{"kind": "ActionsNode", "id": action.id}]}, refresh="force_blocking")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Invalid regular expression in an action's URL")


def test_editing_an_action_changes_the_cache_key(run_query, data, team):
    action = ActionFactory(team=team, steps_json=[{"event": "$pageview"}])
    query = {"kind": "TrendsQuery", "series": [{"kind": "ActionsNode", "id": action.id}], **DAY}
    first = run_query(query, refresh="blocking").json()
    action.steps_json = [{"event": "$autocapture"}]
    action.save()
    second = run_query(query, refresh="blocking").json()
    assert first["cache_key"] != second["cache_key"]
    assert (first["results"][0]["data"], second["results"][0]["data"]) == ([3], [3])


QUOTED = 'a.btn:attr__data-x="a;b"attr__style="x:\\"y\\";z"href="/x"nth-child="1"text="Hi; there";div:nth-child="2";body'


@pytest.mark.parametrize("selector, expected", [
    ('a[data-x="a;b"]', 1),
    ('a[data-x="a"]', 0),
    ("a[style='x:\"y\";z']", 1),  # a bare quote in the selector matches the chain's escaped one
    ('a[href="/x"]', 1),
    ('body a[text="Hi; there"]', 1),  # a `;` inside a quoted value does not end the element
    ('div > a.btn[data-x="a;b"]', 1),
    ("body > div > a", 2),
    ("body > a", 1),  # the span's link in the shared data
])
def test_selector_over_quoted_values(count, team, selector, expected):
    events(team, ("$autocapture", "u7", "2020-01-02 12:00", {"$elements_chain": QUOTED}))
    assert count({"event": "$autocapture", "selector": selector}) == expected


def test_unreadable_selector_is_a_400_and_a_bytecode_error(run_query, data, team, client):
    response = client.post(f"/api/projects/{team.id}/actions/", {"name": "s", "steps": [{"event": "$autocapture", "selector": "a["}]},
                           format="json")
    assert response.status_code == 201
    assert response.json()["bytecode_error"] == "Unsupported selector 'a['"
    query = {"kind": "TrendsQuery", "series": [{"kind": "ActionsNode", "id": response.json()["id"]}]}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 400
    assert response.json()["detail"] == "An action step's selector 'a[' could not be read."
