"""Where ingested events live: the Django database or ClickHouse, behind one small interface.

Persons and distinct ids are resolved and written in the Django database on every engine
(`events.services`); the store then writes the request's events and makes the person changes
visible to them:

- `DjangoEventStore` (SQLite, PostgreSQL): events in `events_event`; merges and personless ids
  that got a person re-point the stored events' `person_id`.
- `ClickHouseEventStore`: events in ClickHouse, never rewritten. Changed persons and their
  distinct ids are mirrored; merges and personless ids that got a person write overrides (the
  engine joins them at query time). All ClickHouse writes happen inside the Django transaction,
  after the person writes succeeded and before the commit, so a ClickHouse failure rolls the
  persons back and the request fails with 503: nothing is acknowledged that was not stored.
  Concurrent requests are written together (`events.clickhouse.writer`: one insert per table
  for all of them), as the fixed cost of a ClickHouse insert outweighs its rows.

Both skip events whose uuid the team already stored, so a retried batch is stored once.
Callers outside ingestion that need events (demo data, the engine's helpers) use the reads at
the bottom instead of the `Event` model, so they work on every engine.
"""
import json
import logging
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Iterable, Optional, Sequence

from django.conf import settings
from django.db import connection
from django.db.models import BigIntegerField, Case, Min, Value, When
from django.db.models.constants import OnConflict

from core.database import for_connection

from .clickhouse.client import ClickHouseError, get_client, is_enabled, json_text, quote
from .exceptions import EventStoreUnavailable
from .models import Event, PersonlessDistinctId

if TYPE_CHECKING:  # services imports this module
    from .services import CapturedEvent

logger = logging.getLogger(__name__)

EVENT_COLUMNS = ("uuid", "team_id", "event", "distinct_id", "properties", "timestamp", "person_id", "session_id", "created_at")
LINK_CHUNK = 300  # 3 parameters a link: within SQLite's parameter limit


@dataclass
class PersonChanges:
    """What a request changed about persons, once its Django writes succeeded."""

    # Persons created or changed, or that gained distinct ids (rows and links to mirror).
    person_ids: set[int] = field(default_factory=set)
    # Merged-away person id -> the surviving person's id.
    merged: dict[int, int] = field(default_factory=dict)
    # Merged-away persons as (id, version they had): deleted in the Django database.
    deleted: list[tuple[int, int]] = field(default_factory=list)
    # Distinct ids moved by a merge: (distinct id, surviving person id, new link version).
    moved_distinct_ids: list[tuple[str, int, int]] = field(default_factory=list)
    # Distinct ids linked to a person by this request (version 0 links).
    new_links: dict[str, int] = field(default_factory=dict)
    # The rows of `person_ids` as now written, when the writer has them: (id, uuid, team_id,
    # created_at, properties dict, is_identified, version). None: the store reads them.
    person_rows: Optional[list[tuple]] = None


class EventStore:
    """Write the events of one request (inside its transaction) and answer the few reads that
    code outside the query engine needs. Subclasses implement every method."""

    def write(self, team_id: int, events: Sequence["CapturedEvent"], person_ids: dict[str, int], now: datetime,
              changes: PersonChanges, *, skip_stored_uuids: bool = False) -> None:
        raise NotImplementedError

    def writing(self):
        """A context around one request's ingestion, from its start to its last `write`."""
        return nullcontext()

    def capture_spool(self):
        """The spool that takes validated capture requests as they come and resolves their persons
        later, in groups (`events.clickhouse.spool`), or None: capture resolves and stores them."""
        return None

    def team_has_events(self, team_id: int) -> bool:
        raise NotImplementedError

    def earliest_event(self, team_id: int, event_names: Optional[Iterable[str]] = None, *,
                       after: Optional[datetime] = None) -> Optional[datetime]:
        """The team's first event timestamp, among `event_names` when given, after `after`."""
        raise NotImplementedError

    def recent_event_properties(self, team_id: int, *, event: Optional[str] = None, limit: int) -> list[dict]:
        """The `properties` of the team's `limit` most recent events (of `event` when given), newest first."""
        raise NotImplementedError


def stored_at(now: datetime, position: int) -> datetime:
    """The `created_at` of a request's event at `position`: one microsecond apart in request order,
    so that the stored order (ClickHouse's event `id`, Django's row id) breaks ties at equal timestamps
    the same way on every engine and in `ORDER BY timestamp, created_at`."""
    return now + timedelta(microseconds=position)


def created_at(event: "CapturedEvent", now: datetime, position: int) -> datetime:
    """The stored row's `created_at`: when the spool received the event, else `stored_at`."""
    return event.received_at or stored_at(now, position)


def _unique(events: Sequence["CapturedEvent"]) -> list["CapturedEvent"]:
    """The first event of each uuid (a batch may repeat one)."""
    first_of_uuid: dict[uuid.UUID, "CapturedEvent"] = {}
    for e in events:
        first_of_uuid.setdefault(e.uuid, e)
    return list(first_of_uuid.values())


class DjangoEventStore(EventStore):
    """Events in the Django database's `events_event` table."""

    def write(self, team_id, events, person_ids, now, changes, *, skip_stored_uuids=False):
        if changes.merged:
            # Events of persons merged away now belong to the surviving person.
            target_of = Case(*[When(person_id=source, then=Value(target)) for source, target in changes.merged.items()],
                             output_field=BigIntegerField())
            Event.objects.filter(team_id=team_id, person_id__in=list(changes.merged)).update(person_id=target_of)
        if changes.new_links:
            self._link_personless_events(team_id, changes.new_links)
        self._insert(team_id, events, person_ids, now, skip_stored_uuids=skip_stored_uuids)

    def _link_personless_events(self, team_id: int, new_links: dict[str, int]) -> None:
        """Personless events sent before these ids had a person now belong to it."""
        ops = connection.ops
        ordered = sorted(new_links.items())
        with connection.cursor() as cursor:
            for start in range(0, len(ordered), LINK_CHUNK):
                links = ordered[start : start + LINK_CHUNK]
                cursor.execute(
                    f"UPDATE {ops.quote_name(Event._meta.db_table)} SET person_id = CASE distinct_id "
                    f"{' '.join(['WHEN %s THEN %s'] * len(links))} END "
                    f"WHERE team_id = %s AND person_id IS NULL AND distinct_id IN ({', '.join(['%s'] * len(links))})",
                    [value for link in links for value in link] + [team_id] + [distinct_id for distinct_id, _ in links],
                )

    def _insert(self, team_id, events, person_ids, now, *, skip_stored_uuids):
        """Plain SQL because this is the hot path: model instances and Django's bulk insert cost more
        than the database's own work at capture rates. PostgreSQL gets COPY, the cheapest way in for
        both sides; COPY cannot skip duplicates, so an event stored before (an SDK retry) fails the
        unique constraint, and ingestion runs the request again with `skip_stored_uuids`."""
        unique = _unique(events)
        ops = connection.ops
        table = ops.quote_name(Event._meta.db_table)
        columns = ", ".join(ops.quote_name(Event._meta.get_field(name).column) for name in EVENT_COLUMNS)
        if for_connection().copy_from_stdin:
            if skip_stored_uuids:
                stored = {str(u) for u in Event.objects.filter(team_id=team_id, uuid__in=[e.uuid for e in unique]).values_list("uuid", flat=True)}
                unique = [e for e in unique if str(e.uuid) not in stored]
            with connection.cursor() as cursor, connection.wrap_database_errors:
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for position, e in enumerate(unique):
                        copy.write_row((e.uuid, team_id, e.event, e.distinct_id, json.dumps(e.properties), e.timestamp,
                                        person_ids.get(e.distinct_id), e.session_id, created_at(e, now, position)))
            return
        rows = [
            (str(e.uuid).replace("-", ""), team_id, e.event, e.distinct_id, json.dumps(e.properties), ops.adapt_datetimefield_value(e.timestamp),
             person_ids.get(e.distinct_id), e.session_id, ops.adapt_datetimefield_value(created_at(e, now, position)))
            for position, e in enumerate(unique)
        ]
        per_statement = connection.features.max_query_params // len(EVENT_COLUMNS)
        placeholder = "(" + ", ".join(["%s"] * len(EVENT_COLUMNS)) + ")"
        with connection.cursor() as cursor:
            for start in range(0, len(rows), per_statement):
                chunk = rows[start : start + per_statement]
                cursor.execute(
                    f"{ops.insert_statement(on_conflict=OnConflict.IGNORE)} {table} ({columns}) VALUES {', '.join([placeholder] * len(chunk))}",
                    [value for row in chunk for value in row],
                )

    def team_has_events(self, team_id):
        return Event.objects.filter(team_id=team_id).exists()

    def earliest_event(self, team_id, event_names=None, *, after=None):
        events = Event.objects.filter(team_id=team_id)
        if after is not None:
            events = events.filter(timestamp__gt=after)
        if event_names is not None:
            events = events.filter(event__in=list(event_names))
        return events.aggregate(earliest=Min("timestamp"))["earliest"]

    def recent_event_properties(self, team_id, *, event=None, limit):
        rows = Event.objects.filter(team_id=team_id)
        if event is not None:
            rows = rows.filter(event=event)
        return list(rows.order_by("-timestamp", "-created_at").values_list("properties", flat=True)[:limit])


class ClickHouseEventStore(EventStore):
    """Events in ClickHouse (`events.clickhouse`); persons mirrored, merges as overrides."""

    def write(self, team_id, events, person_ids, now, changes, *, skip_stored_uuids=False):
        from .clickhouse.writer import writer

        rows = self.rows(team_id, events, person_ids, now, changes)
        client = get_client()
        try:
            if getattr(client, "spool", None) is not None:
                client.spool.append(rows)  # on disk now, in ClickHouse shortly (see the spool)
            else:
                # With the rows of concurrent requests, in one insert per table (see the writer).
                writer.write(client, rows)
        except ClickHouseError as error:
            logger.warning("ClickHouse write failed for team %s: %s", team_id, error)
            raise EventStoreUnavailable() from error

    def rows(self, team_id, events, person_ids, now, changes, *, skip_stored_uuids=False):
        """The ClickHouse rows of one request (`writer.Rows`), after the Django-database work they need."""
        from .clickhouse import mirror
        from .clickhouse.writer import Rows

        # Django-database reads and writes first: they may still fail and roll back, and then
        # nothing may have reached ClickHouse.
        overrides = list(changes.moved_distinct_ids)
        overrides += self._personless_now_with_person(team_id, changes.new_links)
        personless = {e.distinct_id for e in events if person_ids.get(e.distinct_id) is None}
        if personless:
            PersonlessDistinctId.objects.bulk_create(
                [PersonlessDistinctId(team_id=team_id, distinct_id=d, created_at=now) for d in sorted(personless)],
                ignore_conflicts=True,
            )
        # Links change only when made (version 0) or moved by a merge: only those are mirrored.
        links = [(team_id, d, pk, 0, 0) for d, pk in changes.new_links.items()]
        links += [(team_id, d, pk, version, 0) for d, pk, version in changes.moved_distinct_ids]
        if changes.person_rows is None:
            persons = mirror.person_rows(changes.person_ids, with_links=False)[0]
        else:
            persons = mirror.rows_of_persons(changes.person_rows)
        return Rows(
            persons=persons + mirror.deleted_person_rows(team_id, changes.deleted),
            distinct_ids=links,
            overrides=mirror.override_rows(team_id, overrides),
            events=[(str(e.uuid), team_id, e.event, e.distinct_id, e.properties_json or json_text(e.properties), e.timestamp,
                     person_ids.get(e.distinct_id), e.session_id, created_at(e, now, position))
                    for position, e in enumerate(events)],
            properties=[e.properties for e in events],
        )

    def capture_spool(self):
        spool = getattr(get_client(), "spool", None)
        return spool if spool is not None and settings.CLICKHOUSE_SPOOL_PERSONS else None

    def writing(self):
        from .clickhouse.writer import writer

        if getattr(get_client(), "spool", None) is not None or not for_connection().needs_write_locks:
            # The spool groups requests itself. One writer at a time (SQLite): a request on its
            # way waits for the leader's transaction, so the leader must not wait for it.
            return nullcontext()
        return writer.expecting()  # the group writer waits (briefly) for requests on their way

    @staticmethod
    def _personless_now_with_person(team_id: int, new_links: dict[str, int]) -> list[tuple[str, int, int]]:
        """Overrides for newly linked ids that sent personless events before (their links are version 0)."""
        if not new_links:
            return []
        waiting = PersonlessDistinctId.objects.filter(team_id=team_id, is_merged=False, distinct_id__in=list(new_links))
        found = list(waiting.values_list("distinct_id", flat=True))
        if not found:
            return []
        PersonlessDistinctId.objects.filter(team_id=team_id, distinct_id__in=found).update(is_merged=True)
        return [(distinct_id, new_links[distinct_id], 0) for distinct_id in found]

    def team_has_events(self, team_id):
        return bool(get_client().query(f"SELECT 1 FROM events WHERE team_id = {int(team_id)} LIMIT 1").rows)

    def earliest_event(self, team_id, event_names=None, *, after=None):
        conditions = [f"team_id = {int(team_id)}"]
        if after is not None:
            conditions.append(f"timestamp > {quote(after)}")
        if event_names is not None:
            names = list(event_names)
            if not names:
                return None
            conditions.append(f"event IN {_tuple(names)}")
        rows = get_client().query(
            f"SELECT min(timestamp), count() FROM events WHERE {' AND '.join(conditions)}"
        ).rows
        return rows[0][0] if rows and rows[0][1] else None

    def recent_event_properties(self, team_id, *, event=None, limit):
        condition = f" AND event = {quote(event)}" if event is not None else ""
        rows = get_client().query(
            f"SELECT properties FROM events WHERE team_id = {int(team_id)}{condition} "
            f"ORDER BY timestamp DESC, created_at DESC LIMIT {int(limit)}"
        ).rows
        return [_json_object(row[0]) for row in rows]


def _tuple(values: Sequence) -> str:
    return "(" + ", ".join(quote(value) for value in values) + ")"


def _json_object(text: str):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return {}


_DJANGO = DjangoEventStore()
_CLICKHOUSE = ClickHouseEventStore()


def get_store() -> EventStore:
    """The store of the configured engine (`settings.EVENTS_ENGINE`)."""
    return _CLICKHOUSE if is_enabled() else _DJANGO


def team_has_events(team_id: int) -> bool:
    return get_store().team_has_events(team_id)


def earliest_event(team_id: int, event_names: Optional[Iterable[str]] = None, *,
                   after: Optional[datetime] = None) -> Optional[datetime]:
    return get_store().earliest_event(team_id, event_names, after=after)


def recent_event_properties(team_id: int, *, event: Optional[str] = None, limit: int) -> list:
    return get_store().recent_event_properties(team_id, event=event, limit=limit)
