"""The chDB ingestion spool (events/clickhouse/spool.py): acknowledged capture survives a restart,
retries are stored once across flushes, queries read their writes, a failing ClickHouse makes the
flusher retry, and a backlog past its bound answers 503 with Retry-After without losing anything."""
import time

import pytest

from events.clickhouse import ClickHouseError, get_client, reset_client
from events.clickhouse import spool as spool_module
from events.clickhouse.client import ChdbClient
from events.clickhouse.schema import EVENTS

from .helpers import T0, message, minutes, post_batch

pytestmark = pytest.mark.django_db


def ingest(team, *messages):
    response = post_batch(team, list(messages))
    assert response.status_code == 200, response.content
    return response


def stored_count(client, team) -> int:
    return client.query(f"SELECT count() FROM {EVENTS} WHERE team_id = {team.id}").rows[0][0]


def pending_events(spool) -> int:
    with spool._lock:
        return sum(segment.events for segment in [*spool._sealed, spool._current])


@pytest.fixture
def spool(clickhouse, monkeypatch):
    """The process's spool, flushing only when a reader waits (no timer)."""
    spool = clickhouse.spool
    assert spool is not None
    monkeypatch.setattr(spool, "flush_seconds", 3600)
    return spool


@pytest.fixture
def refusing(monkeypatch):
    """ClickHouse refuses inserts until `refusing.stop()`; counts the refusals."""

    class Refusing:
        count = 0

        def stop(self):
            monkeypatch.undo()

    state = Refusing()
    original = ChdbClient.insert

    def refuse(self, *args, **kwargs):
        state.count += 1
        raise ClickHouseError("Code: 242. DB::Exception: Table is in readonly mode", 242)

    monkeypatch.setattr(ChdbClient, "insert", refuse)
    state.original = original
    return state


def crash(spool) -> None:
    """Stop a spool's flusher as a crash would: nothing more is flushed or closed."""
    with spool._lock:
        spool._stopping = True
        spool._changed.notify_all()
    spool._thread.join()
    with spool._lock:
        spool_module._spools.pop(str(spool.client.path), None)


def test_acknowledged_events_wait_in_the_spool_and_queries_read_them(spool, team):
    batch = [message("$pageview", f"user-{i % 3}", timestamp=T0 + minutes(i)) for i in range(20)]
    ingest(team, *batch)
    assert pending_events(spool) == 20  # acknowledged, not yet in ClickHouse
    client = get_client()
    assert stored_count(client, team) == 20  # the query waited for the flush
    assert pending_events(spool) == 0
    assert list(spool.directory.glob("*.spool")) == [spool._current.path]  # flushed segments deleted


def test_acknowledged_events_survive_a_crash(spool, team, refusing):
    batch = [message("$pageview", "user-1", timestamp=T0 + minutes(i)) for i in range(5)]
    ingest(team, *batch)
    ingest(team, message("$identify", "user-2", {"$anon_distinct_id": "anon-2"}))
    crash(spool)  # the flusher never wrote them
    refusing.stop()
    reset_client()
    client = get_client()  # the next start: a new spool replays the segments left behind
    assert client.spool is not spool
    assert stored_count(client, team) == 6
    persons = client.query(f"SELECT count() FROM person_distinct_ids WHERE team_id = {team.id}").rows[0][0]
    assert persons == 3  # the links of user-1, user-2 and anon-2, mirrored from the spool too


def test_a_torn_last_record_is_skipped_on_replay(spool, team, refusing):
    ingest(team, message("$pageview", "user-1"))
    path = spool._current.path
    crash(spool)
    refusing.stop()
    with open(path, "ab") as file:
        file.write(spool_module.HEADER.pack(1000, 0) + b"half a record")  # a crash mid-append
    reset_client()
    assert stored_count(get_client(), team) == 1


def test_a_replayed_segment_already_flushed_is_stored_once(spool, team):
    batch = [message("$pageview", "user-1", timestamp=T0 + minutes(i)) for i in range(4)]
    ingest(team, *batch)
    kept = spool._current.path.read_bytes()
    assert stored_count(get_client(), team) == 4  # flushed, segment deleted
    crash(spool)
    # A crash between the ClickHouse insert and the segment's deletion: it is replayed.
    (spool.directory / f"{spool._number + 1:012d}.spool").write_bytes(kept)
    reset_client()
    assert stored_count(get_client(), team) == 4


def test_retries_are_stored_once_across_flushes_and_within_one(spool, team):
    batch = [message("$pageview", "user-1", timestamp=T0 + minutes(i)) for i in range(5)]
    ingest(team, *batch)
    ingest(team, *batch)  # same flush group
    client = get_client()
    assert stored_count(client, team) == 5
    ingest(team, *batch[:3], message("$pageview", "user-1"))  # a later flush
    assert stored_count(client, team) == 6
    assert client.query(f"SELECT uniqExact(uuid) FROM {EVENTS} WHERE team_id = {team.id}").rows == [(6,)]


def test_the_flusher_retries_a_failing_insert(spool, team, refusing):
    ingest(team, *[message("$pageview", "user-1", timestamp=T0 + minutes(i)) for i in range(3)])
    with spool._lock:
        spool._urgent = True
        spool._changed.notify_all()
    deadline = time.monotonic() + 30
    while refusing.count < 2 and time.monotonic() < deadline:  # it tried, and again after a backoff
        time.sleep(0.01)
    assert refusing.count >= 2
    assert pending_events(spool) == 3  # still spooled
    refusing.stop()
    assert stored_count(get_client(), team) == 3


def test_a_backlog_past_its_bound_answers_503_and_loses_nothing(spool, team, refusing, monkeypatch):
    monkeypatch.setattr(spool, "max_bytes", 1)
    first = [message("$pageview", "user-1", timestamp=T0 + minutes(i)) for i in range(3)]
    ingest(team, *first)  # the backlog was empty: accepted
    response = post_batch(team, [message("$pageview", "user-1")])
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert int(response["Retry-After"]) > 0
    refusing.stop()  # undoes max_bytes as well
    client = get_client()
    assert stored_count(client, team) == 3  # the acknowledged batch, not the refused one
    ingest(team, message("$pageview", "user-1"))  # caught up: accepted again
    assert stored_count(client, team) == 4


def test_an_old_backlog_answers_503(spool, team, refusing, monkeypatch):
    monkeypatch.setattr(spool, "max_age_seconds", 0)
    ingest(team, message("$pageview", "user-1"))
    assert post_batch(team, [message("$pageview", "user-2")]).status_code == 503
    refusing.stop()
    assert stored_count(get_client(), team) == 1


def test_without_the_spool_requests_are_written_before_their_response(clickhouse, team, settings):
    settings.CLICKHOUSE_SPOOL = False
    reset_client()
    client = get_client()
    assert client.spool is None
    ingest(team, message("$pageview", "user-1"))
    assert stored_count(client, team) == 1


def test_a_query_while_clickhouse_refuses_the_spool_fails_instead_of_hanging(spool, team, refusing):
    ingest(team, message("$pageview", "user-1"))
    with pytest.raises(ClickHouseError, match="not yet stored in ClickHouse: .*readonly"):
        get_client().query("SELECT 1")
    assert pending_events(spool) == 1  # kept for the retries
    refusing.stop()
    assert stored_count(get_client(), team) == 1
