"""Group commit of capture requests into ClickHouse.

Each ClickHouse insert has a fixed cost (a new part: every column written, the materialized
columns and skip indexes computed) that dwarfs its per-row cost at capture batch sizes: 100
events cost about as much CPU as 1,000. So concurrent requests of this process are written
together: a request hands its rows (events, mirrored persons and distinct ids, overrides) to
the writer and waits; one waiting request at a time is the leader and writes everything queued
with one insert per table, then wakes the others, each with the outcome. No request is
acknowledged before its rows are stored, a failed insert fails every request of its group (their
Django transactions roll back), and nothing waits on a timer: a group is whatever queued while
the previous one was written.

The leader also drops events whose (team, uuid) is already stored or repeated in the group,
with one lookup for the group (retried batches are stored once).
"""
import threading
from dataclasses import dataclass, field
from typing import Optional

from .client import ClickHouseClient, ClickHouseError, quote
from .mirror import DISTINCT_ID_COLUMNS, EVENT_COLUMNS, OVERRIDE_COLUMNS, PERSON_COLUMNS
from .schema import EVENTS, PERSON_DISTINCT_ID_OVERRIDES, PERSON_DISTINCT_IDS, PERSONS

UUID_LOOKUP_CHUNK = 10_000
# This writer groups requests itself: ClickHouse's own async-insert buffer (on by default in
# chDB) would only add its flush delay to every request.
INSERT_SETTINGS = {"async_insert": 0}
WAIT_SECONDS = 300  # a leader stuck longer than any insert may take: give up (the request fails)


@dataclass
class Rows:
    """One request's rows, per table (column orders of `mirror`)."""

    persons: list[tuple] = field(default_factory=list)
    distinct_ids: list[tuple] = field(default_factory=list)
    overrides: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)  # uuid first, team_id second, event third


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
        self._queue: list[_Ticket] = []
        self._writing = False

    def write(self, client: ClickHouseClient, rows: Rows) -> None:
        """Store `rows` (with those of concurrent requests); raises ClickHouseError if that failed."""
        ticket = _Ticket(rows)
        with self._lock:
            self._queue.append(ticket)
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
        with self._lock:
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


def write_rows(client: ClickHouseClient, batches: list[Rows]) -> None:
    """One insert per table for all `batches`: persons and links first (if the events insert
    then fails, they are at most rows no event points to), events last, without those stored."""
    persons = [row for rows in batches for row in rows.persons]
    distinct_ids = [row for rows in batches for row in rows.distinct_ids]
    overrides = [row for rows in batches for row in rows.overrides]
    if persons:
        client.insert(PERSONS, persons, PERSON_COLUMNS, settings=INSERT_SETTINGS)
    if distinct_ids:
        client.insert(PERSON_DISTINCT_IDS, distinct_ids, DISTINCT_ID_COLUMNS, settings=INSERT_SETTINGS)
    if overrides:
        client.insert(PERSON_DISTINCT_ID_OVERRIDES, overrides, OVERRIDE_COLUMNS, settings=INSERT_SETTINGS)
    events = _new_events([row for rows in batches for row in rows.events], client)
    if events:
        client.insert(EVENTS, events, EVENT_COLUMNS, settings=INSERT_SETTINGS)


def _new_events(rows: list[tuple], client: ClickHouseClient) -> list[tuple]:
    """The first row of each (team, uuid) not stored yet. The event name is part of the sorting
    key and the same in a retry, so the lookup reads only those names' ranges; the uuid bloom
    filter skips the granules without the uuids."""
    first: dict[tuple[int, str], tuple] = {}
    for row in rows:
        first.setdefault((row[1], str(row[0])), row)
    if not first:
        return []
    stored: set[tuple[int, str]] = set()
    keys = list(first)
    for start in range(0, len(keys), UUID_LOOKUP_CHUNK):
        chunk = keys[start : start + UUID_LOOKUP_CHUNK]
        teams = sorted({team for team, _ in chunk})
        names = sorted({first[key][2] for key in chunk})
        found = client.query(
            f"SELECT team_id, toString(uuid) FROM {EVENTS} WHERE team_id IN {_tuple(teams)} AND event IN {_tuple(names)} "
            f"AND uuid IN {_tuple([uuid for _, uuid in chunk])}",
            settings={"max_threads": 1},  # a point lookup: one thread costs less than a pipeline
        ).rows
        stored.update((team, uuid) for team, uuid in found)
    return [row for key, row in first.items() if key not in stored]


def _tuple(values) -> str:
    return "(" + ", ".join(quote(value) for value in values) + ")"


writer = GroupWriter()
