"""The group-commit writer: concurrent requests share inserts, every request learns its outcome,
and events already stored or repeated in a group are written once."""
import threading
import uuid
from datetime import datetime, timezone

import pytest

from events.clickhouse import ClickHouseError
from events.clickhouse.client import QueryResult
from events.clickhouse.writer import GroupWriter, Rows, _batch_lookup, _stored_uuids, write_rows

WHEN = datetime(2024, 1, 1, tzinfo=timezone.utc)


def event_row(event_uuid=None, team_id=1, name="e"):
    return (event_uuid or uuid.uuid4(), team_id, name, "d", "{}", WHEN, None, "", WHEN)


class FakeClient:
    """Records inserts; the first events insert blocks until released, so others queue meanwhile."""

    def __init__(self, fail_first=False):
        self.inserts: list[tuple[str, int]] = []
        self.release = threading.Event()
        self.entered = threading.Event()
        self.fail_first = fail_first
        self.calls = 0

    def query(self, sql, **kwargs):
        return QueryResult(["team_id", "uuid"], ["Int64", "String"], [])

    def insert(self, table, rows, column_names, **kwargs):
        if table == "events":
            self.calls += 1
            if self.calls == 1:
                self.entered.set()
                self.release.wait(10)
                if self.fail_first:
                    raise ClickHouseError("Code: 241. Memory limit exceeded", 241)
        self.inserts.append((table, len(rows)))


def run_concurrently(writer, client, batches):
    outcomes = [None] * len(batches)

    def send(index):
        try:
            writer.write(client, batches[index])
            outcomes[index] = "ok"
        except ClickHouseError as error:
            outcomes[index] = error

    first = threading.Thread(target=send, args=(0,))
    first.start()
    assert client.entered.wait(10)  # the first request is writing; the others queue behind it
    others = [threading.Thread(target=send, args=(i,)) for i in range(1, len(batches))]
    for thread in others:
        thread.start()
    while len(writer._queue) < len(others):
        threading.Event().wait(0.01)
    client.release.set()
    for thread in [first, *others]:
        thread.join(10)
    return outcomes


def test_requests_queued_during_a_write_share_the_next_insert():
    writer, client = GroupWriter(), FakeClient()
    batches = [Rows(events=[event_row(), event_row()], persons=[(i, "u", 1, WHEN, "{}", False, 0, 0)]) for i in range(5)]
    assert run_concurrently(writer, client, batches) == ["ok"] * 5
    assert [count for table, count in client.inserts if table == "events"] == [2, 8]
    assert [count for table, count in client.inserts if table == "persons"] == [1, 4]
    assert writer._writing is False and writer._queue == []


def test_a_failed_insert_fails_its_group_only():
    writer, client = GroupWriter(), FakeClient(fail_first=True)
    batches = [Rows(events=[event_row()]) for _ in range(3)]
    outcomes = run_concurrently(writer, client, batches)
    assert isinstance(outcomes[0], ClickHouseError) and outcomes[0].code == 241
    assert outcomes[1:] == ["ok", "ok"]
    writer.write(client, Rows(events=[event_row()]))  # and the writer keeps working
    assert writer._writing is False


def lead_while_another_request_is_on_its_way(monkeypatch, other_request):
    """Start `other_request(writer, client, started, go)` (it enters `expecting`, sets `started`,
    then waits for `go`), then a leader; once the leader is writing, `go`. Returns the client."""
    monkeypatch.setattr("events.clickhouse.writer.LINGER_SECONDS", 60)  # far longer than the test
    writer, client = GroupWriter(), FakeClient()
    client.release.set()
    started, go = threading.Event(), threading.Event()
    other = threading.Thread(target=other_request, args=(writer, client, started, go))
    other.start()
    assert started.wait(10)

    def lead():
        with writer.expecting():
            writer.write(client, Rows(events=[event_row()]))

    leader = threading.Thread(target=lead)
    leader.start()
    while not writer._writing:
        threading.Event().wait(0.01)
    go.set()
    leader.join(10)
    other.join(10)
    assert not leader.is_alive() and not other.is_alive()
    return client


def test_a_leader_waits_for_requests_on_their_way(monkeypatch):
    """A request that started ingesting (`expecting`) before the leader wrote joins its insert."""
    def on_its_way(writer, client, started, go):
        with writer.expecting():
            started.set()
            go.wait(10)  # resolving its persons
            writer.write(client, Rows(events=[event_row()]))

    client = lead_while_another_request_is_on_its_way(monkeypatch, on_its_way)
    assert [count for table, count in client.inserts if table == "events"] == [2]


def test_a_request_that_leaves_without_writing_does_not_hold_the_leader(monkeypatch):
    def gives_up(writer, client, started, go):
        with writer.expecting():
            started.set()
            go.wait(10)  # then e.g. its batch turns out invalid

    client = lead_while_another_request_is_on_its_way(monkeypatch, gives_up)
    assert [count for table, count in client.inserts if table == "events"] == [1]


@pytest.mark.django_db
def test_events_stored_or_repeated_are_written_once(clickhouse):
    stored, repeated, other_team = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    write_rows(clickhouse, [Rows(events=[event_row(stored)])])
    write_rows(clickhouse, [
        Rows(events=[event_row(stored), event_row(repeated)]),
        Rows(events=[event_row(repeated), event_row(other_team), event_row(stored, team_id=2)]),
    ])
    rows = clickhouse.query("SELECT team_id, toString(uuid), count() FROM events GROUP BY team_id, uuid ORDER BY team_id").rows
    assert sorted(rows) == sorted([(1, str(stored), 1), (1, str(repeated), 1), (1, str(other_team), 1), (2, str(stored), 1)])


def test_a_retry_whose_timestamp_moved_past_midnight_is_still_found(clickhouse):
    """A retry's clock correction (a new `sent_at`) may move its timestamp into the next day: the
    lookup reads the days around each event, not only its own."""
    event_uuid = uuid.uuid4()
    late = datetime(2024, 1, 1, 23, 59, 59, tzinfo=timezone.utc)
    write_rows(clickhouse, [Rows(events=[(event_uuid, 1, "e", "d", "{}", late, None, "", late)])])
    moved = datetime(2024, 1, 2, 0, 0, 1, tzinfo=timezone.utc)
    write_rows(clickhouse, [Rows(events=[(event_uuid, 1, "e", "d", "{}", moved, None, "", moved)])])
    assert clickhouse.query("SELECT toString(uuid), timestamp FROM events").rows == [(str(event_uuid), late)]


def test_the_lookup_reads_what_was_written_within_the_retry_window(clickhouse):
    """Retries come within minutes: the lookup reads only events written from RETRY_WINDOW before
    the group's earliest `created_at`, so its cost does not grow with the day's events. A group
    written again (a spool flush retried, a replay after a crash) keeps its `created_at`: found."""
    from datetime import timedelta

    from events.clickhouse.writer import RETRY_WINDOW

    def row(event_uuid, written):
        return (event_uuid, 1, "e", "d", "{}", WHEN, None, "", written)

    recent, old = uuid.uuid4(), uuid.uuid4()
    now = WHEN + timedelta(days=1)
    write_rows(clickhouse, [Rows(events=[row(recent, now - RETRY_WINDOW + timedelta(minutes=1)), row(old, now - 2 * RETRY_WINDOW)])])
    write_rows(clickhouse, [Rows(events=[row(old, now - 2 * RETRY_WINDOW)])])  # the same group again: found
    write_rows(clickhouse, [Rows(events=[row(recent, now), row(old, now)])])  # a retry now
    counts = dict(clickhouse.query("SELECT toString(uuid), count() FROM events GROUP BY uuid").rows)
    assert counts == {str(recent): 1, str(old): 2}  # the old one was not looked up...
    clickhouse.command("OPTIMIZE TABLE events FINAL")  # ...and goes when its parts merge (same sorting key)
    assert dict(clickhouse.query("SELECT toString(uuid), count() FROM events GROUP BY uuid").rows) == {str(recent): 1, str(old): 1}


MATERIALIZED_CASES = [
    {"$browser": "Chrome", "$os": "Mac OS X"},
    {"$browser": "", "$os": None},
    {"$browser": "say \"hi\" \\ é \u2028", "$os": True, "$host": False},
    {"$browser": 42, "$os": -(2**63), "$host": 2**64 - 1},
    {},
]


def spy_inserts(clickhouse, monkeypatch):
    columns = []
    original = type(clickhouse).insert

    def spy(self, table, rows, column_names, **kwargs):
        if table == "events":
            columns.append(tuple(column_names))
        return original(self, table, rows, column_names, **kwargs)

    monkeypatch.setattr(type(clickhouse), "insert", spy)
    return columns


def materialized_mismatches(clickhouse) -> list:
    """Rows whose materialized columns differ from what ClickHouse computes from `properties`."""
    from events.clickhouse.materialized import materialized_columns, property_text_sql

    checks = " OR ".join(f"NOT (`{column}` <=> {property_text_sql(key)})" for key, column in materialized_columns(clickhouse).items())
    return clickhouse.query(f"SELECT properties FROM events WHERE {checks}").rows


@pytest.mark.django_db
def test_materialized_values_computed_at_ingestion_are_the_ones_clickhouse_computes(clickhouse, monkeypatch):
    import json

    columns = spy_inserts(clickhouse, monkeypatch)
    rows = [(uuid.uuid4(), 1, "e", "d", json.dumps(props), WHEN, None, "", WHEN) for props in MATERIALIZED_CASES]
    write_rows(clickhouse, [Rows(events=rows, properties=MATERIALIZED_CASES)])
    assert "mat_$browser" in columns[0]  # supplied: ClickHouse did not evaluate the expressions
    assert materialized_mismatches(clickhouse) == []
    values = clickhouse.query("SELECT `mat_$browser`, `mat_$os`, `mat_$host` FROM events ORDER BY properties").rows
    assert sorted(values, key=repr) == sorted([
        ("Chrome", "Mac OS X", None), ("", None, None), ("say \"hi\" \\ é \u2028", "true", "false"),
        ("42", str(-(2**63)), str(2**64 - 1)), (None, None, None)], key=repr)


@pytest.mark.django_db
@pytest.mark.parametrize("odd", [1.0, 1e100, {"a": [1, 2]}, [1, "x"], 2**64, -(2**63) - 1])
def test_values_only_clickhouse_can_render_leave_the_columns_to_it(clickhouse, monkeypatch, odd):
    import json

    columns = spy_inserts(clickhouse, monkeypatch)
    cases = [{"$browser": "Chrome"}, {"$os": odd}]
    rows = [(uuid.uuid4(), 1, "e", "d", json.dumps(props), WHEN, None, "", WHEN) for props in cases]
    write_rows(clickhouse, [Rows(events=rows, properties=cases)])
    assert "mat_$browser" not in columns[0]
    assert materialized_mismatches(clickhouse) == []
    assert clickhouse.query("SELECT count() FROM events WHERE `mat_$browser` = 'Chrome'").rows == [(1,)]


def test_a_spool_sized_group_is_looked_up_in_statements_clickhouse_accepts(clickhouse):
    """A spool flush carries thousands of events: the uuid lookup splits them (max_query_size)."""
    stored = event_row()
    write_rows(clickhouse, [Rows(events=[stored])])
    group = [event_row() for _ in range(12_000)] + [stored]
    assert _stored_uuids(clickhouse, _batch_lookup(Rows(events=group))) == {(1, str(stored[0]))}
