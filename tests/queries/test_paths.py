"""PathsQuery through POST /api/projects/:id/query/, edge by edge on hand-made events."""
import pytest

from queries import clock
from tests.conftest import error
from tests.factories import make_team
from tests.events.helpers import message, post_batch
from tests.queries.events import events, person, ts

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

NOW = "2012-01-15 03:21:34"
DAY = "2012-01-14"


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts(NOW))


def pageview(distinct_id: str, url: str, at: str, **properties) -> tuple:
    return ("$pageview", distinct_id, f"{DAY} {at}" if len(at) <= 8 else at, {"$current_url": url, **properties})


@pytest.fixture
def site(team):
    person(team, "fake")
    person(team, "person_1", properties={"email": "test@posthog.com"})
    person(team, "person_2a", "person_2b")
    person(team, "person_3")
    person(team, "person_4")
    events(
        team,
        pageview("fake", "/", "2012-01-01 03:21:34"),  # before the default range (last 7 days)
        pageview("fake", "/about", "2012-01-01 03:21:35"),
        pageview("person_1", "/", "03:21:34"),
        pageview("person_1", "/about", "03:28:34"),
        pageview("person_2a", "/", "03:21:34"),
        pageview("person_2b", "/pricing", "03:28:34"),
        pageview("person_2a", "/about", "03:29:34"),
        pageview("person_3", "/pricing", "03:21:34"),
        pageview("person_3", "/", "03:28:34"),
        pageview("person_4", "/", "03:21:34"),
        pageview("person_4", "/pricing", "03:28:34"),
    )


def paths(paths_filter: dict | None = None, **fields) -> dict:
    return {"kind": "PathsQuery", "pathsFilter": paths_filter or {}, **fields}


def run(client, team, query: dict, status: int = 200) -> dict:
    response = client.post(f"/api/projects/{team.id}/query/", {"query": query, "refresh": "force_blocking"}, format="json")
    assert response.status_code == status, response.content
    return response.json()


def edges(body: dict) -> list[tuple]:
    return [(edge["source"], edge["target"], edge["value"]) for edge in body["results"]]


def test_pageview_paths(client, team, site):
    body = run(client, team, paths())
    assert body["results"] == [
        {"source": "1_/", "target": "2_/pricing", "value": 2, "average_conversion_time": 420000.0},
        {"source": "1_/", "target": "2_/about", "value": 1, "average_conversion_time": 420000.0},
        {"source": "1_/pricing", "target": "2_/", "value": 1, "average_conversion_time": 420000.0},
        {"source": "2_/pricing", "target": "3_/about", "value": 1, "average_conversion_time": 60000.0},
    ]
    assert body["error"] is None and "numbered AS" in body["hogql"]  # the one statement that numbered the steps
    assert body["resolved_date_range"] == {"date_from": "2012-01-08T00:00:00Z", "date_to": "2012-01-15T23:59:59.999999Z"}


@pytest.mark.parametrize("date_range, count", [
    ({"date_from": "2012-01-08"}, 4),
    ({"date_to": "2012-01-15"}, 4),
    ({"date_from": "2012-01-22"}, 0),
    ({"date_to": "2012-01-08"}, 0),
    ({"date_from": "2012-01-08", "date_to": "2012-01-22"}, 4),
    ({"date_from": "2011-12-25"}, 4),
    ({"date_from": "2012-01-22", "date_to": "2012-01-08"}, 0),
])
def test_date_ranges(client, team, site, date_range, count):
    assert len(run(client, team, paths(dateRange=date_range))["results"]) == count


def test_longer_range_adds_older_paths(client, team, site):
    # fake's 1 January "/" -> "/about" (one second) joins person_1's edge.
    assert run(client, team, paths(dateRange={"date_from": "2011-12-25"}))["results"][0] == {
        "source": "1_/", "target": "2_/about", "value": 2, "average_conversion_time": 210500.0}


def test_test_account_filters(client, team, site):
    team.test_account_filters = [{"key": "email", "value": "@posthog.com", "operator": "not_icontains", "type": "person"}]
    team.save()
    assert edges(run(client, team, paths(filterTestAccounts=True))) == [
        ("1_/", "2_/pricing", 2), ("1_/pricing", "2_/", 1), ("2_/pricing", "3_/about", 1)]


def test_sessions_split_at_30_minutes_and_repeats_collapse(client, team):
    person(team, "p")
    events(
        team,
        pageview("p", "/", "10:00:00"),
        pageview("p", "/", "10:05:00"),  # a repeat: the path keeps this one
        pageview("p", "/a/", "10:06:00"),  # trailing slash removed
        pageview("p", "/b", "10:36:00"),  # exactly 30 minutes later: a new session
        pageview("p", "/c", "10:36:30"),
        pageview("p", "/", "11:40:00"),  # "/" keeps its slash
        pageview("p", "/", "11:41:00"),  # a session of a single item has no edge
    )
    assert run(client, team, paths())["results"] == [
        {"source": "1_/", "target": "2_/a", "value": 1, "average_conversion_time": 60000.0},
        {"source": "1_/b", "target": "2_/c", "value": 1, "average_conversion_time": 30000.0},
    ]


def test_trailing_slash_of_a_url_with_multibyte_characters(client, team):
    # Characters, not bytes: "/café/" loses its slash on every engine.
    person(team, "p")
    events(team, pageview("p", "/café/", "10:00:00"), pageview("p", "/ü/", "10:01:00"), pageview("p", "/é", "10:02:00"))
    assert edges(run(client, team, paths())) == [("1_/café", "2_/ü", 1), ("2_/ü", "3_/é", 1)]


def test_an_empty_item_is_a_step_unless_it_ends_the_session(client, team):
    # PostHog compares each item with the next, '' standing after the last: an empty last item goes.
    person(team, "p")
    events(
        team,
        pageview("p", "/x", "10:00:00"),
        ("$pageview", "p", f"{DAY} 10:01:00", {}),  # no URL: the item is ''
        pageview("p", "/y", "10:02:00"),
        ("$pageview", "p", f"{DAY} 10:03:00", {}),  # '' last in its session: dropped
        ("$pageview", "p", f"{DAY} 11:00:00", {}),  # a session of '' alone: no steps
    )
    assert run(client, team, paths())["results"] == [
        {"source": "1_/x", "target": "2_", "value": 1, "average_conversion_time": 60000.0},
        {"source": "2_", "target": "3_/y", "value": 1, "average_conversion_time": 60000.0},
    ]


@pytest.fixture
def long_paths(team):
    """p1: /1 /2 /3 /4 /5 /6 /7, p2: /0 /2 /3 /9 /4, one minute apart."""
    person(team, "p1")
    person(team, "p2")
    rows = [pageview("p1", f"/{n}", f"10:{n:02d}:00") for n in range(1, 8)]
    rows += [pageview("p2", url, f"12:{minute:02d}:00") for minute, url in enumerate(["/0", "/2", "/3", "/9", "/4"])]
    events(team, *rows)


def test_step_limit(client, team, long_paths):
    assert edges(run(client, team, paths({"stepLimit": 3}))) == [
        ("2_/2", "3_/3", 2), ("1_/0", "2_/2", 1), ("1_/1", "2_/2", 1)]


def test_start_point(client, team, long_paths):
    # Paths start at the first "/2" (trailing slash of the point ignored); sessions without it are dropped.
    assert edges(run(client, team, paths({"startPoint": "/2/", "stepLimit": 3}))) == [
        ("1_/2", "2_/3", 2), ("2_/3", "3_/4", 1), ("2_/3", "3_/9", 1)]


def test_end_point(client, team, long_paths):
    # Paths end at "/4" and keep its last stepLimit steps.
    assert edges(run(client, team, paths({"endPoint": "/4", "stepLimit": 3}))) == [
        ("1_/2", "2_/3", 1), ("1_/3", "2_/9", 1), ("2_/3", "3_/4", 1), ("2_/9", "3_/4", 1)]


def test_times_run_from_the_step_before_when_a_path_is_cut_at_one_point(client, team):
    person(team, "q")
    events(team, pageview("q", "/a", "10:00:00"), pageview("q", "/b", "10:01:00"),
           pageview("q", "/b", "10:03:00"),  # the repeat kept: times run from 10:03
           pageview("q", "/c", "10:07:00"), pageview("q", "/d", "10:15:00"))

    def timed(paths_filter):
        return [(edge["source"], edge["target"], edge["average_conversion_time"]) for edge in run(client, team, paths(paths_filter))["results"]]

    assert timed({}) == [("1_/a", "2_/b", 180000.0), ("2_/b", "3_/c", 240000.0), ("3_/c", "4_/d", 480000.0)]
    assert timed({"startPoint": "/b", "stepLimit": 2}) == [("1_/b", "2_/c", 240000.0)]
    assert timed({"endPoint": "/d", "stepLimit": 2}) == [("1_/c", "2_/d", 480000.0)]


def test_start_and_end_points_shorten_long_paths_around_an_ellipsis(client, team, long_paths):
    body = run(client, team, paths({"startPoint": "/1", "endPoint": "/7", "stepLimit": 4}))
    # /1 ... /7 has 7 steps: the first 2, "...", the last 2.
    assert edges(body) == [("1_/1", "2_/2", 1), ("2_/2", "3_...", 1), ("3_...", "4_/6", 1), ("4_/6", "5_/7", 1)]
    # The "..." step carries the time of the step it replaces (/3 at 10:03).
    assert [edge["average_conversion_time"] for edge in body["results"]] == [60000.0, 60000.0, 180000.0, 60000.0]
    short = run(client, team, paths({"startPoint": "/2", "endPoint": "/4", "stepLimit": 5}))
    assert edges(short) == [("1_/2", "2_/3", 2), ("2_/3", "3_/4", 1), ("2_/3", "3_/9", 1), ("3_/9", "4_/4", 1)]


def test_custom_events_and_hogql_items(client, team):
    for distinct_id in ("person_1", "person_2", "person_3", "person_4"):
        person(team, distinct_id)
    rows = []
    stories = {
        "person_1": ["custom_event_1", "custom_event_3", "$pageview"],
        "person_2": ["custom_event_1", "custom_event_2", "custom_event_3"],
        "person_3": ["custom_event_2", "custom_event_1"],
        "person_4": ["custom_event_1", "custom_event_2"],
    }
    for distinct_id, names in stories.items():
        rows += [(name, distinct_id, f"{DAY} 10:0{n}", {"a": "!"} if name != "$pageview" else {"$current_url": "/"}) for n, name in enumerate(names)]
    events(team, *rows)
    expected = [("1_custom_event_1", "2_custom_event_2", 2), ("1_custom_event_1", "2_custom_event_3", 1),
                ("1_custom_event_2", "2_custom_event_1", 1), ("2_custom_event_2", "3_custom_event_3", 1)]
    assert edges(run(client, team, paths({"includeEventTypes": ["custom_event"]}))) == expected
    # HogQL items: the pageview's item is NULL || ... = '' and, being last, drops out like a repeat.
    hogql = run(client, team, paths({"includeEventTypes": ["hogql"], "pathsHogQLExpression": "event || properties.a"}))
    assert edges(hogql) == [(source + "!", target + "!", value) for source, target, value in expected]
    # Without includeEventTypes every event counts, pageviews as their URL.
    assert ("2_custom_event_3", "3_/", 1) in edges(run(client, team, paths()))


def test_screens_and_excluded_items(client, team):
    person(team, "app")
    events(team,
           ("$screen", "app", f"{DAY} 10:00", {"$screen_name": "Home"}),
           ("$screen", "app", f"{DAY} 10:01", {"$screen_name": "Settings"}),
           ("$pageview", "app", f"{DAY} 10:02", {"$current_url": "/web"}),
           ("$screen", "app", f"{DAY} 10:03", {"$screen_name": "Profile"}))
    assert edges(run(client, team, paths({"includeEventTypes": ["$screen"]}))) == [
        ("1_Home", "2_Settings", 1), ("2_Settings", "3_Profile", 1)]
    assert edges(run(client, team, paths({"includeEventTypes": ["$screen", "$pageview"], "excludeEvents": ["Settings"]}))) == [
        ("1_Home", "2_/web", 1), ("2_/web", "3_Profile", 1)]


def test_path_cleaning_and_groupings(client, team):
    person(team, "c")
    events(team,
           pageview("c", "/merchant/12/dashboard", "10:00"),
           pageview("c", "/merchant/34/dashboard", "10:01"),  # the same item once cleaned: collapses
           pageview("c", "/blog/one", "10:02"),
           pageview("c", "/docs/blog/two", "10:03"))  # groupings match anywhere in the item
    body = run(client, team, paths({
        "localPathCleaningFilters": [{"regex": r"/merchant/\d+/", "alias": "/merchant/:id/"}],
        "pathGroupings": ["/blog*"],
    }))
    assert edges(body) == [("1_/merchant/:id/dashboard", "2_/blog*", 1)]
    # From the second (kept) /merchant/:id/dashboard at 10:01 to the last /blog* item at 10:03.
    assert body["results"][0]["average_conversion_time"] == 120000.0


def test_edge_weights_limit_and_unreachable_edges(client, team, site):
    assert edges(run(client, team, paths({"minEdgeWeight": 2}))) == [("1_/", "2_/pricing", 2)]
    # Without the 1_/ -> 2_/pricing edge, 2_/pricing -> 3_/about cannot be reached and is dropped.
    assert edges(run(client, team, paths({"maxEdgeWeight": 1}))) == [("1_/", "2_/about", 1), ("1_/pricing", "2_/", 1)]
    assert edges(run(client, team, paths({"edgeLimit": 3}))) == [
        ("1_/", "2_/pricing", 2), ("1_/", "2_/about", 1), ("1_/pricing", "2_/", 1)]


def test_personless_events_group_by_distinct_id(client, team):
    events(team, pageview("anon", "/x", "10:00"), pageview("anon", "/y", "10:01"), pageview("anon2", "/x", "10:00"),
           personless=("anon", "anon2"))
    assert edges(run(client, team, paths())) == [("1_/x", "2_/y", 1)]


def test_other_teams_events_are_invisible(client, team, site):
    other = make_team(name="Other")
    person(other, "o")
    events(other, pageview("o", "/", "03:00"), pageview("o", "/pricing", "03:01"))
    assert edges(run(client, team, paths()))[0] == ("1_/", "2_/pricing", 2)


@pytest.mark.parametrize(
    "fields, detail",
    [
        ({"funnelPathsFilter": {"funnelSource": {"kind": "FunnelsQuery", "series": []}, "funnelPathType": "funnel_path_after_step"}},
         "A funnel needs at least one step."),
        ({"aggregation_group_type_index": 0}, "Paths cannot be aggregated by groups (aggregation_group_type_index): paths follow persons."),
        ({"pathsFilter": {"localPathCleaningFilters": [{"regex": "(", "alias": "x"}]}},
         "Invalid regular expression in path cleaning rule '(': missing ), unterminated subpattern at position 0"),
        ({"pathsFilter": {"stepLimit": -1}}, "stepLimit must be at least 1."),
        ({"pathsFilter": {"pathsHogQLExpression": "nosuchfield", "includeEventTypes": ["hogql"]}},
         "Unknown field in HogQL expression: nosuchfield"),
    ],
)
def test_invalid_queries_are_400(client, team, fields, detail):
    assert run(client, team, {**paths(), **fields}, status=400) == error("validation_error", "invalid_input", detail)


def test_query_count(client, team, site, django_assert_max_num_queries):
    with django_assert_max_num_queries(10):
        run(client, team, paths())


def test_saved_insight_result(client, team, site):
    created = client.post(f"/api/projects/{team.id}/insights/", {"name": "Paths", "query": {"kind": "InsightVizNode", "source": paths()}},
                          format="json")
    assert created.status_code == 201, created.content
    response = client.get(f"/api/projects/{team.id}/insights/{created.json()['id']}/?refresh=blocking")
    assert response.status_code == 200
    body = response.json()
    assert body["is_cached"] is False and body["filters_hash"].startswith("cache_")
    assert edges({"results": body["result"]})[0] == ("1_/", "2_/pricing", 2)


@pytest.mark.parametrize("date_range", [{"date_from": "-10000000d"}, {"date_to": "-99999999y"}])
def test_dates_out_of_bounds_are_400(client, team, date_range):
    body = run(client, team, {**paths(), "dateRange": date_range}, status=400)
    assert body["type"] == "validation_error" and body["detail"].startswith("The date range is out of bounds: ")


def test_events_at_the_same_instant_follow_the_order_they_were_sent_in(client, team):
    # uuids in the reverse of the batch order: an engine ordering ties by uuid (or by chance) fails.
    urls = ["/a", "/b", "/c", "/d"]
    batch = [message(distinct_id="tied", properties={"$current_url": url}, timestamp=f"{DAY}T03:00:00Z",
                     uuid=f"0000000{9 - index}-0000-4000-8000-000000000000") for index, url in enumerate(urls)]
    assert post_batch(team, batch).status_code == 200
    assert edges(run(client, team, paths())) == [("1_/a", "2_/b", 1), ("2_/b", "3_/c", 1), ("3_/c", "4_/d", 1)]
