"""EventsQuery (DataTableNode event lists) through POST /api/projects/:id/query/, on hand-made events."""
from datetime import timedelta

import pytest

from queries import clock
from tests.conftest import error
from tests.events.helpers import message, post_batch
from tests.factories import ActionFactory, make_team
from tests.queries.events import events, person, ts

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

NOW = "2020-01-15 12:00"


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts(NOW))


@pytest.fixture
def people(team):
    alice = person(team, "alice", properties={"email": "alice@example.com", "name": "Alice", "plan": "pro"})
    bob = person(team, "bob", properties={"email": "bob@example.com"}, created_at="2020-01-02 00:00")
    events(
        team,
        ("$pageview", "bob", "2020-01-10 09:00", {"$browser": "Chrome"}),  # older than the default 24 hours
        ("$pageview", "alice", "2020-01-14 13:00", {"$browser": "Chrome", "$current_url": "https://example.com/a"}),
        ("$pageview", "alice", "2020-01-15 10:00", {"$browser": "Safari"}),
        ("purchase", "bob", "2020-01-15 11:00", {"price": 10}),
        ("$pageview", "erin", "2020-01-15 11:30", {"$browser": "Chrome"}),
        personless=("erin",),
    )
    other = make_team(name="Other")
    person(other, "mallory")
    events(other, ("$pageview", "mallory", "2020-01-15 11:00", {"$browser": "Chrome"}))
    return {"alice": alice, "bob": bob, "other": other}


def run(client, team, status: int = 200, **query) -> dict:
    response = client.post(f"/api/projects/{team.id}/query/", {"query": {"kind": "EventsQuery", **query}}, format="json")
    assert response.status_code == status, response.content
    return response.json()


def test_default_list_is_the_last_day_newest_first(client, team, people):
    body = run(client, team, select=["*", "event", "person", "properties.$browser", "timestamp"])
    assert body["columns"] == ["*", "event", "person", "properties.$browser", "timestamp"]
    assert body["types"] == [
        "Tuple(UUID, String, String, DateTime64(6, 'UTC'), Int64, String, String, DateTime64(6, 'UTC'))", "String",
        "Tuple(String, UUID, DateTime64(6, 'UTC'), String)", "String", "DateTime64(6, 'UTC')"]
    assert [row[1:2] + row[3:] for row in body["results"]] == [
        ["$pageview", "Chrome", "2020-01-15T11:30:00Z"],
        ["purchase", None, "2020-01-15T11:00:00Z"],
        ["$pageview", "Safari", "2020-01-15T10:00:00Z"],
        ["$pageview", "Chrome", "2020-01-14T13:00:00Z"],
    ]
    assert (body["hasMore"], body["limit"], body["offset"]) == (False, 100, 0)
    event = body["results"][1][0]
    assert set(event) == {"uuid", "event", "properties", "timestamp", "team_id", "distinct_id", "elements_chain", "created_at"}
    assert {key: event[key] for key in ("event", "properties", "timestamp", "team_id", "distinct_id", "elements_chain")} == {
        "event": "purchase", "properties": {"price": 10}, "timestamp": "2020-01-15T11:00:00Z", "team_id": team.id,
        "distinct_id": "bob", "elements_chain": ""}
    assert body["results"][1][2] == {"uuid": str(people["bob"].uuid), "created_at": "2020-01-02T00:00:00Z",
                                     "properties": {"email": "bob@example.com"}, "distinct_id": "bob"}
    assert body["results"][2][2]["properties"] == {"email": "alice@example.com", "name": "Alice"}
    assert body["results"][0][2] == {"uuid": None, "created_at": None, "properties": {}, "distinct_id": "erin"}


def test_time_window_and_filters(client, team, people):
    select = ["event", "distinct_id"]
    assert len(run(client, team, select=select, after="all")["results"]) == 5
    assert run(client, team, select=select, after="-7d", before="2020-01-14 23:59")["results"] == [
        ["$pageview", "alice"], ["$pageview", "bob"]]
    assert run(client, team, select=select, after="2020-01-15", event="$pageview")["results"] == [
        ["$pageview", "erin"], ["$pageview", "alice"]]
    assert run(client, team, select=select, after="all", personId=str(people["alice"].uuid))["results"] == [
        ["$pageview", "alice"], ["$pageview", "alice"]]
    assert run(client, team, select=select, after="all", personId=str(people["other"].id))["results"] == []
    chrome = [{"key": "$browser", "value": "Chrome", "operator": "exact", "type": "event"}]
    assert run(client, team, select=select, after="all", properties=chrome)["results"] == [
        ["$pageview", "erin"], ["$pageview", "alice"], ["$pageview", "bob"]]
    pro = [{"key": "plan", "value": "pro", "operator": "exact", "type": "person"}]
    assert run(client, team, select=select, after="all", properties=chrome, fixedProperties=pro)["results"] == [["$pageview", "alice"]]
    assert run(client, team, select=select, after="all", where=["distinct_id != 'erin'", "event = '$pageview'"],
               orderBy=["timestamp ASC"])["results"] == [["$pageview", "bob"], ["$pageview", "alice"], ["$pageview", "alice"]]
    team.test_account_filters = [{"key": "email", "value": "@example.com", "operator": "not_icontains", "type": "person"}]
    team.save()
    assert run(client, team, select=select, after="all", filterTestAccounts=True)["results"] == [["$pageview", "erin"]]


def test_aggregations_group_by_the_other_columns(client, team, people):
    body = run(client, team, select=["event", "count()", "uniq(distinct_id) AS people"], after="all")
    assert body["results"] == [["$pageview", 4, 3], ["purchase", 1, 1]]
    assert body["types"] == ["String", "Int64", "Int64"]
    assert run(client, team, select=["properties.$browser", "count()"], after="all", where=["count() > 1"])["results"] == [["Chrome", 3]]
    assert run(client, team, select=["count()"], after="all")["results"] == [[5]]
    assert run(client, team, select=["event", "count() AS c"], after="all", orderBy=["event"])["results"] == [
        ["$pageview", 4], ["purchase", 1]]


def test_action_id_lists_the_events_the_action_matches(client, team, people):
    action = ActionFactory(team=team, name="Page a or purchase", steps_json=[
        {"event": "$pageview", "url": "/a", "url_matching": "contains"}, {"event": "purchase"}])
    select = ["event", "distinct_id", "timestamp"]
    assert run(client, team, select=select, after="all", actionId=action.id)["results"] == [
        ["purchase", "bob", "2020-01-15T11:00:00Z"], ["$pageview", "alice", "2020-01-14T13:00:00Z"]]
    # With the other filters (AND), and in the default last 24 hours.
    chrome = [{"key": "$browser", "value": "Chrome", "operator": "exact", "type": "event"}]
    assert run(client, team, select=select, after="all", actionId=action.id, properties=chrome)["results"] == [
        ["$pageview", "alice", "2020-01-14T13:00:00Z"]]
    assert run(client, team, select=["count()"], actionId=action.id)["results"] == [[2]]
    assert run(client, team, select=["count()"], actionId=action.id, event="purchase")["results"] == [[1]]
    # Editing the action changes the answer (and the cache key).
    action.steps_json = [{"event": "$pageview", "url": "example.com/a$", "url_matching": "regex"}]
    action.save()
    assert run(client, team, select=select, after="all", actionId=action.id)["results"] == [
        ["$pageview", "alice", "2020-01-14T13:00:00Z"]]


def test_action_id_must_be_a_project_action_with_steps(client, team, people):
    foreign = ActionFactory(team=people["other"], name="Theirs", steps_json=[{"event": "$pageview"}])
    assert run(client, team, 400, select=["event"], actionId=foreign.id) == error("validation_error", "invalid_input", "Action does not exist")
    empty = ActionFactory(team=team, name="Empty", steps_json=[])
    assert run(client, team, 400, select=["event"], actionId=empty.id) == error(
        "validation_error", "invalid_input", "Action does not have any match groups")


def test_limit_offset_and_has_more(client, team, people):
    body = run(client, team, select=["distinct_id"], after="all", orderBy=["timestamp ASC"], limit=2)
    assert (body["results"], body["hasMore"], body["limit"], body["offset"]) == ([["bob"], ["alice"]], True, 2, 0)
    body = run(client, team, select=["distinct_id"], after="all", orderBy=["timestamp ASC"], limit=2, offset=4)
    assert (body["results"], body["hasMore"], body["offset"]) == ([["erin"]], False, 4)
    assert run(client, team, select=["event"], after="all", limit=1_000_000)["limit"] == 50_000


def test_other_teams_events_are_invisible(client, team, people):
    assert run(client, team, select=["distinct_id"], after="all", where=["distinct_id = 'mallory'"])["results"] == []
    response = client.post(f"/api/projects/{people['other'].id}/query/", {"query": {"kind": "EventsQuery", "select": ["*"]}}, format="json")
    assert response.status_code == 403


@pytest.mark.parametrize("query, detail", [
    ({"select": ["event"], "actionId": 2**62}, "Action does not exist"),
    ({"select": []}, "An EventsQuery needs at least one column in `select`."),
    ({"select": ["event"], "limit": -1}, "limit and offset must be 0 or more."),
    ({"select": ["event FROM pg_user"]}, "Not a single expression: 'event FROM pg_user'"),
    ({"select": ["pg_read_file('/etc/passwd')"]},
     "Unsupported function: pg_read_file(). SQL insights support a subset of HogQL functions "
     "(count, sum, avg, quantile, if, coalesce, toString, toDate, toStartOfDay, dateDiff...)."),
    ({"select": ["team_id"]}, "Unknown field `team_id`."),
    ({"select": ["event"], "where": ["1; DROP TABLE events_event"]}, "Not a single expression: '1; DROP TABLE events_event'"),
    ({"select": ["event"], "orderBy": ["(SELECT 1 FROM sqlite_master)"]},
     "Table `sqlite_master` is not allowed. You can query the tables: events, persons, person_distinct_ids, sessions."),
    ({"select": ["event", "timestamp"], "where": ["count() > 1"]},
     "Column 'event' must be in GROUP BY or inside an aggregate function such as count() or any()."),
])
def test_invalid_queries_are_400(client, team, query, detail):
    assert run(client, team, 400, **query) == error("validation_error", "invalid_input", detail)


def test_data_table_node(client, team, people):
    query = {"kind": "DataTableNode", "source": {"kind": "EventsQuery", "select": ["event", "distinct_id"], "after": "-1d"},
             "columns": ["event", "distinct_id"], "showActions": False}
    response = client.post(f"/api/projects/{team.id}/query/", {"query": query}, format="json")
    assert response.status_code == 200
    assert response.json()["results"] == [["$pageview", "erin"], ["purchase", "bob"], ["$pageview", "alice"], ["$pageview", "alice"]]
    # A DataTableNode around SQL runs it as a SQL insight.
    sql = {"kind": "DataTableNode", "source": {"kind": "HogQLQuery", "query": "SELECT count() FROM events"}}
    assert client.post(f"/api/projects/{team.id}/query/", {"query": sql}, format="json").json()["results"] == [[5]]


def test_event_list_insight(client, team, people):
    query = {"kind": "DataTableNode", "source": {"kind": "EventsQuery", "select": ["event", "count()"], "after": "all"}}
    created = client.post(f"/api/projects/{team.id}/insights/", {"name": "Events", "query": query}, format="json")
    assert created.status_code == 201, created.content
    response = client.get(f"/api/projects/{team.id}/insights/{created.json()['id']}/?refresh=blocking")
    assert response.status_code == 200
    body = response.json()
    assert body["result"] == [["$pageview", 4], ["purchase", 1]]
    assert body["columns"] == ["event", "count()"]


def test_query_count_is_bounded(client, team, people, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        body = run(client, team, select=["*", "person"], after="all")
    assert len(body["results"]) == 5


def test_events_at_the_same_instant_list_the_last_sent_first(client, team):
    # uuids in the batch order: an engine ordering ties by uuid (or by chance) fails.
    urls = ["/a", "/b", "/c", "/d"]
    moment = (ts(NOW) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    batch = [message(distinct_id="tied", properties={"$current_url": url}, timestamp=moment,
                     uuid=f"0000000{index}-0000-4000-8000-000000000000") for index, url in enumerate(urls)]
    assert post_batch(team, batch).status_code == 200
    body = run(client, team, select=["properties.$current_url"])
    assert body["results"] == [["/d"], ["/c"], ["/b"], ["/a"]]
