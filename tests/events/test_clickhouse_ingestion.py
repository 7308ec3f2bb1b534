"""Ingestion into ClickHouse (chDB): one insert per request, retries stored once, persons mirrored,
merges and personless ids visible through overrides without rewriting events, 503 on failure."""
import importlib.util
import json
from datetime import timedelta

import pytest
from django.core.management import call_command

from events.clickhouse import ClickHouseError
from events.clickhouse.schema import EVENTS, PERSON_DISTINCT_ID_OVERRIDES
from events.models import Event, Person, PersonDistinctId, PersonlessDistinctId
from events.store import ClickHouseEventStore, DjangoEventStore, get_store

from .helpers import T0, message, minutes, post_batch

pytestmark = pytest.mark.django_db

# An event's person at query time: the newest override of its distinct id, else the person
# written at ingestion (the engine's override join, written out by hand).
PERSON_OF_EVENT = """
    SELECT e.uuid AS uuid, e.event AS event, e.distinct_id AS distinct_id, e.timestamp AS timestamp,
           if(o.distinct_id = '', e.person_id, o.person_id) AS person_id
    FROM events AS e
    LEFT JOIN (
        SELECT distinct_id, argMax(person_id, version) AS person_id
        FROM person_distinct_id_overrides WHERE team_id = {team:Int64} GROUP BY distinct_id
    ) AS o ON o.distinct_id = e.distinct_id
    WHERE e.team_id = {team:Int64}
"""


def ingest(team, *messages, **kwargs):
    response = post_batch(team, list(messages), **kwargs)
    assert response.status_code == 200, response.content
    return response


def events_with_persons(clickhouse, team):
    rows = clickhouse.query(f"SELECT event, distinct_id, person_id FROM ({PERSON_OF_EVENT}) ORDER BY timestamp, event",
                            parameters={"team": team.id}).rows
    return rows


def daily_active_persons(clickhouse, team) -> list[tuple]:
    """A trends `dau` count (distinct persons per day; personless events count their distinct id)."""
    return clickhouse.query(
        f"SELECT toDate(timestamp) AS day, count(DISTINCT ifNull(toString(person_id), distinct_id)) "
        f"FROM ({PERSON_OF_EVENT}) GROUP BY day ORDER BY day",
        parameters={"team": team.id},
    ).rows


def stored_count(clickhouse, team) -> int:
    return clickhouse.query(f"SELECT count() FROM {EVENTS} WHERE team_id = {team.id}").rows[0][0]


@pytest.fixture
def clickhouse_sync(clickhouse, settings):
    """chDB with the synchronous group writer (the spool off), as on a ClickHouse server: a
    request's rows are in ClickHouse before its response (the spool's tests: test_clickhouse_spool)."""
    from events.clickhouse import get_client, reset_client

    settings.CLICKHOUSE_SPOOL = False
    reset_client()
    return get_client()


def person_of(team, distinct_id):
    return Person.objects.get(team=team, distinct_ids__distinct_id=distinct_id)


def test_events_go_to_clickhouse_in_one_insert(clickhouse_sync, team, monkeypatch):
    clickhouse = clickhouse_sync
    inserts = []
    original = type(clickhouse).insert

    def spy(self, table, rows, column_names, **kwargs):
        inserts.append((table, len(rows)))
        return original(self, table, rows, column_names, **kwargs)

    monkeypatch.setattr(type(clickhouse), "insert", spy)
    batch = [message("$pageview", f"user-{i % 7}", {"$browser": "Chrome", "n": i}, timestamp=T0 + minutes(i)) for i in range(50)]
    ingest(team, *batch)
    assert [count for table, count in inserts if table == EVENTS] == [50]
    assert not Event.objects.exists()  # not in the Django database
    rows = clickhouse.query(
        f"SELECT uuid, event, distinct_id, properties, timestamp, person_id, `mat_$browser` FROM {EVENTS} "
        f"WHERE team_id = {team.id} ORDER BY timestamp"
    ).rows
    assert [row[0] for row in rows] == [m["uuid"] for m in batch]
    assert rows[3][1:3] == ("$pageview", "user-3")
    assert json.loads(rows[3][3])["n"] == 3
    assert rows[3][4] == T0 + minutes(3)
    assert rows[3][5] == person_of(team, "user-3").pk
    assert rows[3][6] == "Chrome"


def test_retried_batches_are_stored_once(clickhouse, team):
    batch = [message("$pageview", "user-1", timestamp=T0 + minutes(i)) for i in range(5)]
    ingest(team, *batch)
    ingest(team, *batch)  # an SDK retry after a lost response
    ingest(team, *batch[:2], message("$pageview", "user-1"), batch[2])  # partly new, a uuid twice
    assert stored_count(clickhouse, team) == 6
    assert clickhouse.query(f"SELECT uniqExact(uuid) FROM {EVENTS}").rows == [(6,)]


def test_the_same_uuid_in_another_team_is_another_event(clickhouse, team):
    from tests.factories import make_team

    other = make_team()
    shared = message("$pageview", "user-1")
    ingest(team, shared)
    ingest(other, shared)
    assert stored_count(clickhouse, team) == 1
    assert stored_count(clickhouse, other) == 1


def test_persons_and_distinct_ids_are_mirrored(clickhouse, team):
    ingest(team, message("$pageview", "anon-1", {"$set": {"plan": "free"}}))
    ingest(team, message("$identify", "user-1", {"$anon_distinct_id": "anon-1", "$set": {"plan": "pro"}}))
    person = person_of(team, "user-1")
    rows = clickhouse.query(
        "SELECT id, argMax(properties, version), argMax(is_identified, version), max(version) FROM persons "
        f"WHERE team_id = {team.id} GROUP BY id"
    ).rows
    assert [(r[0], json.loads(r[1]), r[2], r[3]) for r in rows] == [(person.pk, {"plan": "pro"}, True, person.version)]
    links = clickhouse.query(
        f"SELECT distinct_id, argMax(person_id, version) FROM person_distinct_ids WHERE team_id = {team.id} "
        "GROUP BY distinct_id ORDER BY distinct_id"
    ).rows
    assert links == [("anon-1", person.pk), ("user-1", person.pk)]


def test_identify_merging_two_persons_shows_through_overrides(clickhouse, team):
    ingest(team, message("$pageview", "anon-1", timestamp=T0), message("$pageview", "user-1", timestamp=T0 + minutes(1)))
    anon_person, user_person = person_of(team, "anon-1"), person_of(team, "user-1")
    assert daily_active_persons(clickhouse, team) == [(T0.date(), 2)]

    ingest(team, message("$identify", "user-1", {"$anon_distinct_id": "anon-1"}, timestamp=T0 + minutes(2)))
    assert not Person.objects.filter(pk=anon_person.pk).exists()
    assert daily_active_persons(clickhouse, team) == [(T0.date(), 1)]
    assert {row[2] for row in events_with_persons(clickhouse, team)} == {user_person.pk}
    # the events were not rewritten: the merge is one override at the new link version
    stored = clickhouse.query(f"SELECT DISTINCT person_id FROM {EVENTS} WHERE event = '$pageview'").rows
    assert {row[0] for row in stored} == {anon_person.pk, user_person.pk}
    version = PersonDistinctId.objects.get(team=team, distinct_id="anon-1").version
    assert clickhouse.query(f"SELECT distinct_id, person_id, version FROM {PERSON_DISTINCT_ID_OVERRIDES}").rows == [
        ("anon-1", user_person.pk, version)
    ]
    deleted = clickhouse.query(f"SELECT argMax(is_deleted, version) FROM persons WHERE id = {anon_person.pk}").rows
    assert deleted == [(1,)]


def test_chained_merges_point_every_id_at_the_final_person(clickhouse, team):
    ingest(team, message("$pageview", "a"), message("$pageview", "b"), message("$pageview", "c"))
    ingest(team, message("$create_alias", "b", {"alias": "a"}))
    ingest(team, message("$pageview", "c2", timestamp=T0 + minutes(1)))
    ingest(team, message("$merge_dangerously", "c", {"alias": "b"}))
    final = person_of(team, "c")
    assert Person.objects.filter(team=team).count() == 2  # c (with a, b) and c2
    persons = {distinct_id: person for _, distinct_id, person in events_with_persons(clickhouse, team)}
    assert persons["a"] == persons["b"] == persons["c"] == final.pk
    assert persons["c2"] == person_of(team, "c2").pk
    assert daily_active_persons(clickhouse, team) == [(T0.date(), 2)]


def test_personless_ids_that_get_a_person_are_overridden(clickhouse, team):
    ingest(team, message("read", "visitor-1", {"$process_person_profile": False}, timestamp=T0))
    assert PersonlessDistinctId.objects.filter(team=team, distinct_id="visitor-1", is_merged=False).exists()
    assert events_with_persons(clickhouse, team) == [("read", "visitor-1", None)]

    ingest(team, message("$pageview", "visitor-1", timestamp=T0 + minutes(5)))
    person = person_of(team, "visitor-1")
    assert events_with_persons(clickhouse, team) == [("read", "visitor-1", person.pk), ("$pageview", "visitor-1", person.pk)]
    assert PersonlessDistinctId.objects.get(team=team, distinct_id="visitor-1").is_merged is True
    assert clickhouse.query(f"SELECT count() FROM {PERSON_DISTINCT_ID_OVERRIDES}").rows == [(1,)]
    # an id that had a person from the start needs no override
    ingest(team, message("$pageview", "user-2"), message("more", "user-2", {"$process_person_profile": False}))
    assert clickhouse.query(f"SELECT count() FROM {PERSON_DISTINCT_ID_OVERRIDES}").rows == [(1,)]
    assert not PersonlessDistinctId.objects.filter(distinct_id="user-2").exists()


def test_a_clickhouse_failure_answers_503_and_stores_nothing(clickhouse_sync, team, monkeypatch):
    clickhouse = clickhouse_sync
    def refuse(*args, **kwargs):
        raise ClickHouseError("Code: 242. DB::Exception: Table is in readonly mode", 242)

    monkeypatch.setattr(type(clickhouse), "insert", refuse)
    response = post_batch(team, [message("$pageview", "user-1"), message("$identify", "user-1", {"$anon_distinct_id": "a"})])
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response.json()["type"] == "server_error"
    assert response["Retry-After"]
    assert not Person.objects.filter(team=team).exists()
    assert not PersonDistinctId.objects.filter(team=team).exists()
    monkeypatch.undo()
    assert stored_count(clickhouse, team) == 0


def test_ingestion_on_clickhouse_stays_set_based(clickhouse, team, django_assert_max_num_queries):
    batch = [message("$pageview", f"anon-{i}", {"$set": {"n": i}}) for i in range(100)]
    batch += [message("$identify", f"user-{i}", {"$anon_distinct_id": f"anon-{i}"}) for i in range(10)]
    batch += [message("read", f"visitor-{i}", {"$process_person_profile": False}) for i in range(20)]
    with django_assert_max_num_queries(10):  # the Django side, PostgreSQL's advisory locks included (no mirror reads)
        ingest(team, *batch)
    assert stored_count(clickhouse, team) == 130


def test_demo_data_goes_to_clickhouse(clickhouse, team):
    call_command("generate_demo_data", "--team", str(team.id), "--events", "500", "--days", "5", "--seed", "3", verbosity=0)
    assert stored_count(clickhouse, team) == 500
    assert not Event.objects.exists()
    mirrored = clickhouse.query(f"SELECT uniqExact(id) FROM persons WHERE team_id = {team.id}").rows[0][0]
    assert mirrored == Person.objects.filter(team=team).count()
    # every event's person is a mirrored person
    orphans = clickhouse.query(
        f"SELECT count() FROM {EVENTS} WHERE team_id = {team.id} AND person_id NOT IN (SELECT id FROM persons)"
    ).rows
    assert orphans == [(0,)]
    call_command("generate_demo_data", "--team", str(team.id), "--events", "500", "--if-empty", verbosity=0)
    assert stored_count(clickhouse, team) == 500


def test_store_reads_on_clickhouse(clickhouse, team):
    store = get_store()
    assert isinstance(store, ClickHouseEventStore)
    assert store.team_has_events(team.id) is False
    assert store.earliest_event(team.id) is None
    ingest(team, message("a", "u", {"k": 1}, timestamp=T0), message("b", "u", {"k": 2}, timestamp=T0 + minutes(1)),
           message("a", "u", {"k": 3}, timestamp=T0 + minutes(2)))
    assert store.team_has_events(team.id) is True
    assert store.earliest_event(team.id) == T0
    assert store.earliest_event(team.id, ["b"]) == T0 + minutes(1)
    assert store.earliest_event(team.id, ["a"], after=T0) == T0 + minutes(2)
    assert store.earliest_event(team.id, []) is None
    assert [p["k"] for p in store.recent_event_properties(team.id, limit=2)] == [3, 2]
    assert [p["k"] for p in store.recent_event_properties(team.id, event="a", limit=5)] == [3, 1]


def test_store_reads_on_the_django_database(team):
    store = get_store()
    assert isinstance(store, DjangoEventStore)
    assert store.team_has_events(team.id) is False
    ingest(team, message("a", "u", {"k": 1}, timestamp=T0), message("b", "u", {"k": 2}, timestamp=T0 + minutes(1)))
    assert store.team_has_events(team.id) is True
    assert store.earliest_event(team.id, ["b"]) == T0 + minutes(1)
    assert [p["k"] for p in store.recent_event_properties(team.id, limit=5)] == [2, 1]


def test_uuid_lookups_use_the_bloom_filter_and_the_created_at_index(clickhouse):
    indexes = clickhouse.query(f"SELECT name, type FROM system.data_skipping_indices WHERE table = '{EVENTS}'").rows
    assert ("uuid_bloom", "bloom_filter") in indexes
    assert ("created_at_minmax", "minmax") in indexes


@pytest.mark.skipif(importlib.util.find_spec("queries.sql.engine.clickhouse") is None,
                    reason="needs the ClickHouse query engine (chengine's branch)")
def test_trends_dau_before_and_after_a_merge_end_to_end(clickhouse, team, api_client):
    client = api_client(["query:read"], team=team)
    day = T0.replace(hour=0)
    ingest(team, message("$pageview", "anon-1", timestamp=day + timedelta(hours=1)),
           message("$pageview", "user-1", timestamp=day + timedelta(hours=2)))
    query = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
             "dateRange": {"date_from": (day - timedelta(days=1)).date().isoformat(), "date_to": day.date().isoformat()}}

    def dau():
        response = client.post(f"/api/projects/{team.id}/query/", {"query": query, "refresh": "force_blocking"}, format="json")
        assert response.status_code == 200, response.content
        return response.json()["results"][0]["data"][-1]

    assert dau() == 2
    ingest(team, message("$identify", "user-1", {"$anon_distinct_id": "anon-1"}, timestamp=day + timedelta(hours=3)))
    assert dau() == 1
