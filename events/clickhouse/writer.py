"""Group commit of capture requests into ClickHouse.

Each ClickHouse insert has a fixed cost (a new part: every column written, the materialized
columns and skip indexes computed) that dwarfs its per-row cost at capture batch sizes: 100
events cost about as much CPU as 1,000. So concurrent requests of this process are written
together: a request hands its rows (events, mirrored persons and distinct ids, overrides) to
the writer and waits; one waiting request at a time is the leader and writes everything queued
with one insert per table, then wakes the others, each with the outcome. No request is
acknowledged before its rows are stored, a failed insert fails every request of its group (their
Django transactions roll back). A group is whatever queued while the previous one was written,
plus the requests already on their way here (`expecting`: they resolve persons meanwhile), for
which a leader waits at most LINGER_SECONDS: a lone request never waits, and concurrent ones
share inserts instead of each paying an insert's fixed cost. The mirror inserts and the uuid
lookup run side by side (ClickHouse works outside the GIL), the events insert after them.

The leader also drops events whose (team, uuid) is already stored or repeated in the group,
with one lookup for the group (retried batches are stored once). The lookup reads only the days
around the group's events (a retry carries the same event name and, within a day, the same
timestamp: SDKs correct clocks by `sent_at`), and of them only the events written within an hour
of the group (SDKs retry within minutes; a `created_at` index skips older parts), so its cost
follows the recent rate, not the size of the table or of the day.

The materialized columns' values are computed here from the properties the request decoded
anyway (`materialized.property_text`), so ClickHouse does not evaluate their JSON expressions:
that evaluation's set-up was about half the fixed cost of an events insert.
"""
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import chain
from typing import NamedTuple, Optional

from .client import ClickHouseClient, ClickHouseError, json_row, quote
from .mirror import DISTINCT_ID_COLUMNS, EVENT_COLUMNS, OVERRIDE_COLUMNS, PERSON_COLUMNS
from .materialized import UNKNOWN, materialized_columns, property_text
from .schema import EVENTS, PERSON_DISTINCT_ID_OVERRIDES, PERSON_DISTINCT_IDS, PERSONS, configured_cluster

UUID_LOOKUP_CHUNK = 4_000  # uuids per lookup: its text stays within max_query_size (256 KiB)
# This writer groups requests itself: ClickHouse's own async-insert buffer (on by default in
# chDB) would only add its flush delay to every request.
# A group's few MB parse faster in one thread. Each insert is deduplicated here already (events
# by uuid; mirrors are versioned rows that queries resolve with argMax): ClickHouse need not
# merge the block as it writes it (`optimize_on_insert`, ~15% of an events insert's CPU).
INSERT_SETTINGS = {"async_insert": 0, "input_format_parallel_parsing": 0, "optimize_on_insert": 0}
# Events inserted with their materialized columns' values.
WITH_MATERIALIZED = {**INSERT_SETTINGS, "insert_allow_materialized_columns": 1}
# A retried event's timestamp may differ from the first attempt's (clock correction by a new
# `sent_at`, or the server's time for events without one): the lookup reads these days around it.
RETRY_DAYS = 1
# And it reads only the events written from RETRY_WINDOW before the group's earliest `created_at`
# (a minmax index skips older parts): SDKs retry within minutes, a spooled group written again
# keeps its events' `created_at`, so the lookup's cost follows the recent rate instead of growing
# with the day's events. A copy coming later still (an app offline for hours) has the original's
# sorting key, so ReplacingMergeTree drops it when their parts merge, as in PostHog.
RETRY_WINDOW = timedelta(hours=1)
WAIT_SECONDS = 300  # a leader stuck longer than any insert may take: give up (the request fails)
# How long a leader waits for requests still on their way (they take a few milliseconds to
# resolve their persons): long enough to gather them, short against a request's latency.
LINGER_SECONDS = 0.005


@dataclass
class Rows:
    """One request's rows, per table (column orders of `mirror`)."""

    persons: list[tuple] = field(default_factory=list)
    distinct_ids: list[tuple] = field(default_factory=list)
    overrides: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)  # uuid first, team_id second, event third, timestamp sixth
    # The decoded properties of each event (same order), for the materialized columns; optional.
    properties: list[dict] = field(default_factory=list)
    # Or the events already encoded for the insert (`encode_events`): one JSONCompactEachRow line
    # each, in `encoded_columns` order; and their uuid lookup (keys in the same order).
    encoded: list[bytes] = field(default_factory=list)
    encoded_columns: tuple = ()
    encoded_lookup: Optional["Lookup"] = None


class Lookup(NamedTuple):
    """What the uuid lookup of some events reads: their (team, uuid) keys, event names, the days
    around their timestamps (`_lookup_days`) and their earliest `created_at`."""

    keys: list[tuple[int, str]]
    names: set[str]
    days: set[str]
    earliest: Optional[datetime]

    @classmethod
    def of_rows(cls, events: list[tuple]) -> "Lookup":
        return cls([(row[1], str(row[0])) for row in events], {row[2] for row in events},
                   _lookup_days(row[5] for row in events), min((row[8] for row in events), default=None))


class _Ticket:
    __slots__ = ("rows", "done", "lead", "error")

    def __init__(self, rows: Rows):
        self.rows = rows
        self.done = threading.Event()
        self.lead = False
        self.error: Optional[BaseException] = None


class GroupWriter:
    def __init__(self):
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._queue: list[_Ticket] = []
        self._writing = False
        self._coming = 0  # requests in `expecting` that have not called `write` yet
        self._local = threading.local()

    @contextmanager
    def expecting(self):
        """Around a request that is going to `write` (ingestion, from its start): leaders wait for it."""
        with self._lock:
            self._coming += 1
        self._local.expected = True
        try:
            yield
        finally:
            if self._local.expected:  # left without writing (invalid, nothing to store, failed)
                self._local.expected = False
                with self._lock:
                    self._coming -= 1
                    self._arrived.notify_all()

    def write(self, client: ClickHouseClient, rows: Rows) -> None:
        """Store `rows` (with those of concurrent requests); raises ClickHouseError if that failed."""
        ticket = _Ticket(rows)
        arriving = getattr(self._local, "expected", False)
        self._local.expected = False
        with self._lock:
            self._queue.append(ticket)
            if arriving:
                self._coming -= 1
                self._arrived.notify_all()
            if not self._writing:
                self._writing = ticket.lead = True
        if not ticket.lead:
            if not ticket.done.wait(WAIT_SECONDS):
                raise ClickHouseError("Timed out waiting for the ClickHouse insert of this request.")
        if ticket.lead:
            self._lead(client)
        if ticket.error is not None:
            raise ticket.error

    def _lead(self, client: ClickHouseClient) -> None:
        deadline = time.monotonic() + LINGER_SECONDS
        with self._lock:
            while self._coming > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.wait(remaining)
            group, self._queue = self._queue, []
        error: Optional[BaseException] = None
        try:
            write_rows(client, [ticket.rows for ticket in group])
        except BaseException as exc:  # every request of the group learns the outcome
            error = exc
        finally:
            with self._lock:
                if self._queue:
                    # The next group's first request leads it; this request returns now.
                    self._queue[0].lead = True
                    self._queue[0].done.set()
                else:
                    self._writing = False
            for ticket in group:
                ticket.error = error
                ticket.done.set()


def write_rows(client: ClickHouseClient, batches: list[Rows], *, side_by_side: bool = True) -> None:
    """One insert per table for all `batches`: persons and links first (if the events insert
    then fails, they are at most rows no event points to), events last, without those stored.
    `side_by_side`: the mirror inserts run beside the uuid lookup (on a thread pool)."""
    mirrors = [(table, rows, columns) for table, rows, columns in (
        (PERSONS, [row for rows in batches for row in rows.persons], PERSON_COLUMNS),
        (PERSON_DISTINCT_IDS, [row for rows in batches for row in rows.distinct_ids], DISTINCT_ID_COLUMNS),
        (PERSON_DISTINCT_ID_OVERRIDES, [row for rows in batches for row in rows.overrides], OVERRIDE_COLUMNS),
    ) if rows]
    lookups = [_batch_lookup(rows) for rows in batches]
    lookup = _merged(lookups)
    unique = list(dict.fromkeys(lookup.keys))
    # Independent statements, side by side; every one has finished before this goes on.
    if not side_by_side:
        for table, rows, columns in mirrors:
            client.insert(table, rows, columns, settings=INSERT_SETTINGS)
        mirrors = []
    pending = [_pool().submit(client.insert, table, rows, columns, settings=INSERT_SETTINGS) for table, rows, columns in mirrors]
    try:
        stored = _stored_uuids(client, lookup._replace(keys=unique)) if unique else set()
    finally:
        errors = [error for error in (future.exception() for future in pending) if error is not None]
    if errors:
        raise errors[0]
    plain, lines_by_columns = _new_events(batches, lookups, stored, every=not stored and len(unique) == len(lookup.keys))
    if plain:
        _insert_events(client, plain)
    for columns, lines in lines_by_columns.items():
        client.insert_lines(EVENTS, lines, columns, settings=WITH_MATERIALIZED if len(columns) > len(EVENT_COLUMNS) else INSERT_SETTINGS)


def _batch_lookup(rows: Rows) -> Lookup:
    """The uuid lookup of one batch's events (encoded ones carry theirs)."""
    return rows.encoded_lookup if rows.encoded_lookup is not None else Lookup.of_rows(rows.events)


def _merged(lookups: list[Lookup]) -> Lookup:
    earliest = [lookup.earliest for lookup in lookups if lookup.earliest is not None]
    return Lookup(list(chain.from_iterable(lookup.keys for lookup in lookups)), set().union(*(lookup.names for lookup in lookups)),
                  set().union(*(lookup.days for lookup in lookups)), min(earliest, default=None))


def _new_events(batches: list[Rows], lookups: list[Lookup], stored: set[tuple[int, str]], *,
                every: bool) -> tuple[list[tuple], dict[tuple, list[bytes]]]:
    """The events to insert: the first of each (team, uuid) not `stored`, as (row, its decoded
    properties or None), and encoded lines by their columns. `every`: no uuid is stored or
    repeated, so all go in (no look at each event: a spool group has thousands)."""
    plain: list[tuple] = []
    lines_by_columns: dict[tuple, list[bytes]] = {}
    seen = set(stored)
    for rows, lookup in zip(batches, lookups):
        if rows.encoded:
            items, into = rows.encoded, lines_by_columns.setdefault(rows.encoded_columns, [])
        else:
            properties = rows.properties if len(rows.properties) == len(rows.events) else [None] * len(rows.events)
            items, into = list(zip(rows.events, properties)), plain
        if every:
            into += items
            continue
        for item, key in zip(items, lookup.keys):
            if key not in seen:
                seen.add(key)
                into.append(item)
    return plain, {columns: lines for columns, lines in lines_by_columns.items() if lines}


def _stored_uuids(client: ClickHouseClient, lookup: Lookup) -> set[tuple[int, str]]:
    """The (team, uuid) keys of `lookup` (each once) ClickHouse already has. The event name and day lead the
    sorting key and are the same in a retry (the day within RETRY_DAYS), so the lookup reads only
    those ranges, and of them only the parts written within RETRY_WINDOW (the `created_at` index).
    The uuid bloom filter skips granules only for small groups: a spool group's thousands of uuids
    pass it nearly everywhere."""
    stored: set[tuple[int, str]] = set()
    keys = lookup.keys
    written = f"AND created_at >= {quote(lookup.earliest - RETRY_WINDOW)} " if lookup.earliest is not None else ""
    for start in range(0, len(keys), UUID_LOOKUP_CHUNK):
        chunk = keys[start : start + UUID_LOOKUP_CHUNK]
        teams = sorted({team for team, _ in chunk})
        found = client.query(
            f"SELECT team_id, toString(uuid) FROM {EVENTS} WHERE team_id IN {_tuple(teams)} AND event IN {_tuple(sorted(lookup.names))} "
            # The uuids as one string literal split by ClickHouse: parsing thousands of literals
            # cost more than the lookup itself.
            f"AND toDate(timestamp) IN {_tuple(sorted(lookup.days))} {written}"
            f"AND uuid IN (SELECT toUUID(arrayJoin(splitByChar(',', {quote(','.join(uuid for _, uuid in chunk))}))))",
            settings={"max_threads": 1},  # a point lookup: one thread costs less than a pipeline
        ).rows
        stored.update((team, uuid) for team, uuid in found)
    return stored


def _lookup_days(timestamps) -> set[str]:
    """The days a retry of events at these times may carry (UTC, RETRY_DAYS either side)."""
    utc_days = {timestamp.astimezone(timezone.utc).date() for timestamp in timestamps}
    return {(day + timedelta(days=offset)).isoformat() for day in utc_days for offset in range(-RETRY_DAYS, RETRY_DAYS + 1)}


def _insert_events(client: ClickHouseClient, entries: list[tuple[tuple, Optional[dict]]]) -> None:
    """The events, with their materialized columns' values when every one is known here (see
    `_with_materialized`)."""
    rows, columns = _with_materialized(client, entries)
    client.insert(EVENTS, rows, columns, settings=WITH_MATERIALIZED if len(columns) > len(EVENT_COLUMNS) else INSERT_SETTINGS)


def encode_events(client: ClickHouseClient, rows: Rows) -> Rows:
    """Encode `rows`' events for the insert now (in the spool's person resolution process: off the
    server process's GIL); `write_rows` then only looks up their uuids and sends the lines."""
    properties = rows.properties if len(rows.properties) == len(rows.events) else [None] * len(rows.events)
    extended, columns = _with_materialized(client, list(zip(rows.events, properties)))
    rows.encoded = [json_row(row) for row in extended]
    rows.encoded_columns = columns
    rows.encoded_lookup = Lookup.of_rows(rows.events)
    rows.events, rows.properties = [], []
    return rows


def _with_materialized(client: ClickHouseClient, entries: list[tuple[tuple, Optional[dict]]]) -> tuple[list[tuple], tuple]:
    """(the event rows, their columns): with the materialized columns' values when every one is
    known here (one insert has one column list: an event with a value only ClickHouse can render,
    e.g. a float, leaves them all to ClickHouse). Not on a cluster: the Distributed table declares
    the materialized columns as plain ones and the shards compute them."""
    rows = [row for row, _ in entries]
    if not configured_cluster() and all(props is not None for _, props in entries):
        columns = materialized_columns(client)
        if columns:
            keys = list(columns)
            extended = []
            for row, props in entries:
                texts = list(map(props.get, keys))
                if not _TEXT_AS_IS.issuperset(map(type, texts)):  # (strings and missing: the common case, at C speed)
                    texts = [property_text(value) for value in texts]
                    if UNKNOWN in texts:
                        break
                extended.append((*row, *texts))
            else:
                return extended, (*EVENT_COLUMNS, *columns.values())
    return rows, EVENT_COLUMNS


_TEXT_AS_IS = frozenset({str, type(None)})  # property values that are their column's text (`property_text`)
_executor: dict = {}
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Threads for the mirror inserts (made on first use: after a server forks its workers)."""
    if "pool" not in _executor:
        with _executor_lock:
            if "pool" not in _executor:
                _executor["pool"] = ThreadPoolExecutor(max_workers=3, thread_name_prefix="clickhouse-mirror")
    return _executor["pool"]


def _tuple(values) -> str:
    return "(" + ", ".join(quote(value) for value in values) + ")"


writer = GroupWriter()
