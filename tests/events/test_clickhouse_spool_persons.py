"""The chDB spool resolving persons after capture (CLICKHOUSE_SPOOL_PERSONS, on in production):
capture is acknowledged once its validated events are on disk; the flusher resolves the persons of
a whole group of requests in one transaction and stores the events. The results equal capture
resolving them itself; a request that cannot be stored is set aside without holding up the rest;
an outage rolls the persons back and loses nothing; API requests read their writes.

These tests commit (the flusher works on its own database connection, as in production)."""

import json
import os
import time

import pytest
from django.db import connection, transaction

from events.clickhouse import get_client, reset_client
from events.clickhouse import spool as spool_module
from events.clickhouse.client import ChdbClient, ClickHouseError
from events.clickhouse.resolver import ResolverProcess
from events.clickhouse.mirror import mirror_groups
from events.clickhouse.schema import EVENTS
from events.models import Person, PersonDistinctId
from groups.models import Group
from tests.factories import TeamFactory

from .helpers import T0, message, minutes, post_batch

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def spool(clickhouse, settings, monkeypatch):
    """The spool resolving persons, flushing only when a reader waits (no timer)."""
    settings.CLICKHOUSE_SPOOL_PERSONS = True
    spool = clickhouse.spool
    monkeypatch.setattr(spool, "flush_seconds", 3600)
    yield spool
    spool_module.close_spools()  # its thread's database connection closes with it
    reset_client()


def ingest(team, *messages):
    response = post_batch(team, list(messages))
    assert response.status_code == 200, response.content
    assert response.json() == {"status": 1}


def flush(spool) -> None:
    spool.wait_flushed()


# A sequence of requests with anonymous events, an identify, an alias, property updates, a
# personless event and a group: what persons resolve to must not depend on when they resolve.
REQUESTS = [
    [message("$pageview", "anon-1", {"$set": {"plan": "free"}}, timestamp=T0),
     message("$pageview", "anon-2", timestamp=T0 + minutes(1))],
    [message("$identify", "user-1", {"$anon_distinct_id": "anon-1", "$set": {"email": "a@example.com"}}, timestamp=T0 + minutes(2)),
     message("$pageview", "user-1", {"$set_once": {"first": "yes"}, "$set": {"plan": "pro"}}, timestamp=T0 + minutes(3))],
    [message("$create_alias", "user-1", {"alias": "anon-2"}, timestamp=T0 + minutes(4)),
     message("$pageview", "visitor", {"$process_person_profile": False}, timestamp=T0 + minutes(5)),
     message("$groupidentify", "user-1", {"$group_type": "company", "$group_key": "acme", "$group_set": {"size": 5}},
             timestamp=T0 + minutes(6))],
    [message("$pageview", "anon-2", {"$unset": ["first"]}, timestamp=T0 + minutes(7))],
]


def persons_of(team) -> list[tuple]:
    """Each person's properties, identified flag and sorted distinct ids."""
    links: dict[int, list[str]] = {}
    for distinct_id, person_id in PersonDistinctId.objects.filter(team=team).values_list("distinct_id", "person_id"):
        links.setdefault(person_id, []).append(distinct_id)
    return sorted((sorted(links.get(p.id, [])), p.properties, p.is_identified) for p in Person.objects.filter(team=team))


def events_by_person(client, team) -> list[tuple]:
    """(event, distinct id, the person's first distinct id) of every stored event, through the overrides."""
    uuid_of = {str(p.uuid): sorted(PersonDistinctId.objects.filter(person=p).values_list("distinct_id", flat=True))[0]
               for p in Person.objects.filter(team=team)}
    rows = client.query(
        f"SELECT e.event, e.distinct_id, toString(p.uuid) FROM {EVENTS} e "
        f"LEFT JOIN (SELECT distinct_id, argMax(person_id, version) AS person_id FROM person_distinct_ids "
        f"WHERE team_id = {team.id} GROUP BY distinct_id) d ON d.distinct_id = e.distinct_id "
        f"LEFT JOIN (SELECT id, argMax(uuid, version) AS uuid FROM persons WHERE team_id = {team.id} GROUP BY id) p "
        f"ON p.id = d.person_id WHERE e.team_id = {team.id} ORDER BY e.timestamp"
    ).rows
    return [(event, distinct_id, uuid_of.get(person_uuid)) for event, distinct_id, person_uuid in rows]


def test_capture_is_acknowledged_before_persons_are_resolved(spool):
    team = TeamFactory()
    ingest(team, message("$identify", "user-1", {"$anon_distinct_id": "anon-1", "$set": {"plan": "pro"}}))
    assert not Person.objects.filter(team=team).exists()  # on disk only
    flush(spool)
    assert persons_of(team) == [(["anon-1", "user-1"], {"plan": "pro"}, True)]
    assert get_client().query(f"SELECT count() FROM {EVENTS} WHERE team_id = {team.id}").rows == [(1,)]


def test_a_group_of_requests_resolves_as_capture_would_one_by_one(spool, settings):
    deferred, immediate = TeamFactory(), TeamFactory()
    for batch in REQUESTS:  # all in one flush group
        ingest(deferred, *batch)
    flush(spool)
    settings.CLICKHOUSE_SPOOL_PERSONS = False
    for batch in REQUESTS:  # each resolved and stored by its own request
        ingest(immediate, *batch)
    flush(spool)

    assert persons_of(deferred) == persons_of(immediate)
    assert persons_of(deferred) == [(["anon-1", "anon-2", "user-1"], {"plan": "pro", "email": "a@example.com"}, True)]
    client = get_client()
    assert events_by_person(client, deferred) == events_by_person(client, immediate)
    assert ("$pageview", "visitor", None) in events_by_person(client, deferred)  # personless
    assert list(Group.objects.filter(team=deferred).values_list("group_key", "group_properties")) == [("acme", {"size": 5})]


def test_properties_keep_their_exact_values_through_the_spool(spool, settings):
    # The spool keeps properties as their JSON text: read back, they are what capture decoded
    # (an integer past 64 bits stays exact, not a float).
    properties = {"big": 2**70, "text": "café ☕", "nested": {"list": [1, 2.5, None, True]}, "$set": {"big": 2**70}}
    deferred, immediate = TeamFactory(), TeamFactory()
    ingest(deferred, message("$pageview", "user-1", properties, timestamp=T0))
    flush(spool)
    settings.CLICKHOUSE_SPOOL_PERSONS = False
    ingest(immediate, message("$pageview", "user-1", properties, timestamp=T0))
    flush(spool)

    def stored(team):
        return get_client().query(f"SELECT properties FROM {EVENTS} WHERE team_id = {team.id}").rows

    assert stored(deferred) == stored(immediate)
    assert json.loads(stored(deferred)[0][0])["big"] == 2**70
    assert Person.objects.get(team=deferred).properties == Person.objects.get(team=immediate).properties == {"big": 2**70}


def test_retries_are_stored_once_across_groups_and_within_one(spool):
    team = TeamFactory()
    batch = [message("$pageview", "user-1", timestamp=T0 + minutes(i)) for i in range(5)]
    ingest(team, *batch)
    ingest(team, *batch)  # same group
    flush(spool)
    client = get_client()
    assert client.query(f"SELECT count() FROM {EVENTS} WHERE team_id = {team.id}").rows == [(5,)]
    ingest(team, *batch[:3], message("$pageview", "user-1"))  # a later group
    flush(spool)
    assert client.query(f"SELECT count(), uniqExact(uuid) FROM {EVENTS} WHERE team_id = {team.id}").rows == [(6, 6)]


def test_api_requests_read_what_was_acknowledged_before_them(spool, team, client):
    ingest(team, message("$groupidentify", "user-1", {"$group_type": "company", "$group_key": "acme", "$group_set": {"n": 1}}))
    assert not Group.objects.filter(team=team).exists()
    response = client.get(f"/api/projects/{team.project_id}/groups/?group_type_index=0")
    assert response.status_code == 200, response.content
    assert [group["group_key"] for group in response.json()["results"]] == ["acme"]


def test_a_request_that_cannot_be_stored_is_set_aside_and_the_others_go_in(spool):
    kept, deleted = TeamFactory(), TeamFactory()
    ingest(kept, message("$pageview", "user-1"))
    ingest(deleted, message("$pageview", "user-2"))
    ingest(kept, message("$pageview", "user-3"))
    deleted_id = deleted.id
    deleted.delete()  # between capture and the flush: its persons cannot be written
    flush(spool)
    assert sorted(PersonDistinctId.objects.filter(team=kept).values_list("distinct_id", flat=True)) == ["user-1", "user-3"]
    assert get_client().query(f"SELECT count() FROM {EVENTS} WHERE team_id = {kept.id}").rows == [(2,)]
    dead = list((spool.directory / "dead").glob("*.spool"))
    assert len(dead) == 1  # kept on disk, in the spool's record format, for an operator
    item = spool_module._item(dead[0].read_bytes()[spool_module.HEADER.size:])
    assert (item.team_id, [e.distinct_id for e in item.events]) == (deleted_id, ["user-2"])
    for path in dead:
        path.unlink()


def test_an_outage_loses_nothing(spool, monkeypatch):
    team = TeamFactory()
    refused = []

    def refuse(self, *args, **kwargs):
        refused.append(1)
        raise ClickHouseError("Code: 242. DB::Exception: Table is in readonly mode", 242)

    monkeypatch.setattr(ChdbClient, "insert", refuse)
    ingest(team, message("$identify", "user-1", {"$anon_distinct_id": "anon-1"}))
    with pytest.raises(ClickHouseError, match="not yet stored"):
        spool.wait_flushed()
    assert refused
    if spool.resolver is False:  # resolved in the spool's thread: rolled back with the insert
        assert not Person.objects.filter(team=team).exists()
    # (A resolver process commits persons first; they are resolved again, to the same, on retry.)
    response = post_batch(team, [message("$pageview", "user-1")])
    assert response.status_code == 200  # capture still acknowledges (the backlog is within its bound)
    monkeypatch.undo()
    monkeypatch.setattr(spool, "flush_seconds", 3600)
    flush(spool)
    assert persons_of(team) == [(["anon-1", "user-1"], {}, True)]
    assert get_client().query(f"SELECT count() FROM {EVENTS} WHERE team_id = {team.id}").rows == [(2,)]


def test_spooled_requests_survive_a_crash_and_resolve_on_the_next_start(spool):
    team = TeamFactory()
    ingest(team, *[message("$pageview", "user-1", timestamp=T0 + minutes(i)) for i in range(3)])
    ingest(team, message("$identify", "user-1", {"$anon_distinct_id": "anon-1", "$set": {"plan": "pro"}}))
    with spool._lock:  # a crash: the flusher stops, nothing is flushed or closed
        spool._stopping = True
        spool._changed.notify_all()
    spool._thread.join()
    with spool_module._spools_lock:
        spool_module._spools.pop(str(spool.client.path), None)
    reset_client()
    client = get_client()  # the next start replays the segments left behind
    assert client.spool is not spool
    assert client.query(f"SELECT count() FROM {EVENTS} WHERE team_id = {team.id}").rows == [(4,)]
    assert persons_of(team) == [(["anon-1", "user-1"], {"plan": "pro"}, True)]


def in_memory_database() -> bool:
    return getattr(connection, "is_in_memory_db", lambda: False)()


def test_persons_resolve_in_a_process_of_their_own_where_the_database_allows(spool, settings):
    team = TeamFactory()
    ingest(team, message("$pageview", "user-1"))
    flush(spool)
    if in_memory_database():  # another process cannot open it: the spool's thread resolves
        assert spool.resolver is False
    else:
        assert isinstance(spool.resolver, ResolverProcess)
        process = spool.resolver._process
        assert process.pid != os.getpid() and process.poll() is None
    assert PersonDistinctId.objects.filter(team=team, distinct_id="user-1").exists()


def test_without_the_process_persons_resolve_in_the_spools_thread(spool, settings):
    settings.CLICKHOUSE_SPOOL_PERSONS_PROCESS = False
    team = TeamFactory()
    ingest(team, message("$identify", "user-1", {"$anon_distinct_id": "anon-1"}))
    flush(spool)
    assert spool.resolver is False
    assert persons_of(team) == [(["anon-1", "user-1"], {}, True)]


def test_a_resolver_process_that_died_is_started_again_and_nothing_is_lost(spool):
    if in_memory_database():
        pytest.skip("SQLite in memory: persons resolve in the spool's thread")
    team = TeamFactory()
    ingest(team, message("$pageview", "user-1"))
    flush(spool)
    first = spool.resolver._process
    first.kill()
    first.wait()
    ingest(team, message("$identify", "user-2", {"$anon_distinct_id": "user-1"}))
    flush(spool)
    assert spool.resolver._process.pid != first.pid
    assert persons_of(team) == [(["user-1", "user-2"], {}, True)]
    assert get_client().query(f"SELECT count() FROM {EVENTS} WHERE team_id = {team.id}").rows == [(2,)]


def test_statements_in_a_transaction_never_wait_for_a_flush_that_needs_its_lock(spool):
    # On SQLite a transaction holds the database's one write lock, which the flush needs to store
    # persons: waiting for it there could only time out. Inserts never wait; queries do where they can.
    team = TeamFactory()
    ingest(team, message("$groupidentify", "user-1", {"$group_type": "company", "$group_key": "acme"}))
    started = time.monotonic()
    with transaction.atomic():
        group = Group.objects.create(team=team, group_type_index=0, group_key="beta", group_properties={})
        mirror_groups([group])
        assert get_client().query("SELECT 1").rows == [(1,)]
    assert time.monotonic() - started < 10
    flush(spool)
    assert sorted(Group.objects.filter(team=team).values_list("group_key", flat=True)) == ["acme", "beta"]
