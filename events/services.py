"""Event ingestion: validation, timestamps, set-based person resolution, one transaction per request.

`ingest_batch` validates every event before it touches the database (a bad event rejects the whole
request), then resolves all distinct ids of the request with a handful of queries, applies person
property updates and merges in memory in arrival order, writes the person changes, and inserts the
events with one bulk insert. Retried events (same uuid) are stored once: unique (uuid, team).
Where the events go (the Django database or ClickHouse) is the event store's business (`events.store`).
With chDB's spool (`CLICKHOUSE_SPOOL_PERSONS`), capture stops after validation: the spool stores the
requests later, a group at a time (`store_spooled`: the same resolution, one transaction per group).
"""
import hashlib
import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import BigIntegerField, Case, F, Value, When
from django.utils import timezone

from accounts.models import Team
from core.database import for_connection
from groups.ingestion import record_groups

from .exceptions import InvalidPayload, invalid_token, missing_token, unusable_token
from .models import Event, Person, PersonDistinctId
from .store import PersonChanges, get_store, stored_at

MAX_DISTINCT_ID_LENGTH = 200
MAX_EVENT_NAME_LENGTH = Event._meta.get_field("event").max_length
MAX_SESSION_ID_LENGTH = Event._meta.get_field("session_id").max_length
# Timestamps further ahead than this are client clock errors: the event is stored at server time.
FUTURE_TOLERANCE = timedelta(hours=23)
# Not analytics events: session recordings and performance data live elsewhere in PostHog.
SKIPPED_EVENTS = frozenset({"$snapshot", "$snapshot_items", "$performance_event"})
# Ids that many users share by accident; merging on them would join strangers into one person.
ILLEGAL_MERGE_IDS_CASE_INSENSITIVE = frozenset(
    {"anonymous", "guest", "distinctid", "distinct_id", "id", "not_authenticated", "email", "undefined", "true", "false"}
)
ILLEGAL_MERGE_IDS = frozenset({"[object Object]", "NaN", "None", "none", "null", "0", "undefined"})
# Person uuids derive from the team and the distinct id that created the person (as PostHog
# derives them), so a retried request or the demo data produce the same uuid for the same person.
PERSON_UUID_NAMESPACE = uuid.UUID("4c1e5a52-7f0e-4c43-9d8e-1b5f0a6b2d11")
LOOKUP_CHUNK = 5000
LINK_CHUNK = 300  # 3 parameters a link: within SQLite's parameter limit
ADVISORY_LOCK_NAMESPACE = 0x45564E54  # "EVNT": the first key of the distinct-id advisory locks
WRITE_ATTEMPTS = 3
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(slots=True)
class CapturedEvent:
    uuid: str | uuid.UUID  # canonical text from capture (the demo data's are UUIDs)
    event: str
    distinct_id: str
    properties: dict
    timestamp: datetime
    session_id: str
    process_person: bool
    # When the store received it (the stored row's `created_at`); None: the request's time, one
    # microsecond apart in request order (`store.stored_at`). Set for events spooled before storing.
    received_at: datetime | None = None
    # `properties` as the JSON text stored (`json_text`), where it is known already: events read
    # back from the chDB spool, which keeps them so.
    properties_json: str | None = None


def team_for_token(token) -> Team:
    """The team a capture token (`phc_...`) belongs to, or the 401 PostHog answers."""
    if token is None or token == "":
        raise missing_token()
    if not isinstance(token, str):
        raise unusable_token("not_string")
    token = token.strip()
    if token.startswith("phx_"):
        raise unusable_token("personal_api_key")
    # Plain SQL and a bare instance: capture asks this on every request, and building the ORM
    # query cost more than the lookup.
    with connection.cursor() as cursor:
        cursor.execute(_TEAM_BY_TOKEN, [token])
        row = cursor.fetchone()
    if row is None:
        raise invalid_token()
    return Team.from_db(None, ["id"], row)  # only `id` loaded; other fields load on access


_TEAM_BY_TOKEN = f"SELECT id FROM {Team._meta.db_table} WHERE api_token = %s"


def person_uuid_for(team_id: int, distinct_id: str) -> uuid.UUID:
    return uuid.uuid5(PERSON_UUID_NAMESPACE, f"{team_id}:{distinct_id}")


def parse_timestamp(value) -> datetime | None:
    """ISO 8601 (naive = UTC) or epoch milliseconds; None when unusable."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value / 1000, tz=dt_timezone.utc)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip())
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt_timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def event_timestamp(raw: dict, properties: dict, now: datetime, sent_at: datetime | None) -> datetime:
    """PostHog's rule: correct the client clock by `sent_at`, else use `offset`, else the timestamp."""
    if properties.get("$ignore_sent_at") is True:
        sent_at = None
    timestamp = now
    try:
        if raw.get("timestamp") is not None:
            parsed = parse_timestamp(raw["timestamp"])
            if parsed is not None:
                timestamp = now + (parsed - sent_at) if sent_at is not None else parsed
        elif raw.get("offset") is not None:
            timestamp = now - timedelta(milliseconds=raw["offset"])
    except OverflowError:
        timestamp = now  # out of the representable range: as invalid as no timestamp at all
    return now if timestamp > now + FUTURE_TOLERANCE else timestamp


def _distinct_id(raw: dict, properties: dict) -> str:
    if "$distinct_id" in raw:
        value = raw["$distinct_id"]
    elif "distinct_id" in properties:
        value = properties["distinct_id"]
    elif "distinct_id" in raw:
        value = raw["distinct_id"]
    else:
        raise InvalidPayload('All events must have the event field "distinct_id"!')
    if not value or (isinstance(value, str) and not value.strip()):
        raise InvalidPayload('Event field "distinct_id" should not be blank!')
    return str(value)[:MAX_DISTINCT_ID_LENGTH]


def _event_uuid(value) -> str:
    """The event's uuid as canonical text (lowercase, hyphenated): as SDKs send it, kept as is
    (parsing and printing a UUID per event cost more than the check)."""
    if value is None:
        return str(uuid.uuid4())
    if isinstance(value, str) and CANONICAL_UUID.fullmatch(value):
        return value
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidPayload('Event field "uuid" is not a valid UUID!') from None


def normalize_event(raw, *, now: datetime, sent_at: datetime | None, ip: str | None) -> CapturedEvent | None:
    """Validate one captured message; None for events that are accepted but not stored."""
    if not isinstance(raw, dict):
        raise InvalidPayload(f"All events must be dictionaries not '{type(raw).__name__}'!")
    properties = raw.get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, dict):
        raise InvalidPayload(f"Properties must be a JSON object, received {type(properties).__name__}!")
    name = raw.get("event")
    if not isinstance(name, str):
        raise InvalidPayload('All events must have the event name field "event"!')
    distinct_id = _distinct_id(raw, properties)
    event_uuid = _event_uuid(raw.get("uuid"))
    offset = raw.get("offset")
    if offset is not None and (isinstance(offset, bool) or not isinstance(offset, (int, float)) or not math.isfinite(offset)):
        raise InvalidPayload('Event field "offset" must be a number!')
    if not name or name in SKIPPED_EVENTS:
        return None

    # SDKs may send $set / $set_once next to the properties; the event keeps them in its properties.
    for key in ("$set", "$set_once"):
        if isinstance(raw.get(key), dict):
            properties[key] = {**(properties[key] if isinstance(properties.get(key), dict) else {}), **raw[key]}
    if ip and "$ip" not in properties:
        properties["$ip"] = ip
    session_id = properties.get("$session_id")
    return CapturedEvent(
        uuid=event_uuid,
        event=name[:MAX_EVENT_NAME_LENGTH],
        distinct_id=distinct_id,
        properties=properties,
        timestamp=event_timestamp(raw, properties, now, sent_at),
        session_id=str(session_id)[:MAX_SESSION_ID_LENGTH] if session_id not in (None, "") else "",
        process_person=properties.get("$process_person_profile") is not False,
    )


def ingest_batch(
    team: Team, events: list, sent_at: datetime | None = None, *, now: datetime | None = None, ip: str | None = None
) -> int:
    """Store the events of one capture request atomically; returns how many were accepted."""
    now = now or timezone.now()
    if any(raw is None for raw in events):
        raise InvalidPayload("some events are null")
    captured = [c for c in (normalize_event(raw, now=now, sent_at=sent_at, ip=ip) for raw in events) if c is not None]
    if not captured:
        return 0
    store = get_store()
    spool = store.capture_spool()
    if spool is not None:
        spool.append_captured(team.id, now, captured)  # persons resolved and stored by the spool's flusher
    else:
        with store.writing():
            _run_attempts(lambda lock, retry: _write(team.id, captured, now, lock_persons=lock, skip_stored_uuids=retry))
    return len(captured)


def store_spooled(requests: list[tuple[int, datetime, list[CapturedEvent]]], write_rows) -> None:
    """Resolve the persons of spooled capture requests and store them, all in one transaction.

    The events of each team, in arrival order, are resolved together: a few statements for the
    whole group instead of a few per request. `write_rows(rows)` gets the event-store rows
    (`ClickHouseEventStore.rows`) inside the transaction: the spool's thread stores them there
    (a failure rolls the persons back); the resolver process hands them to the server, which
    stores them after the commit (see events/clickhouse/resolver.py)."""
    if not requests:
        return
    by_team: dict[int, list[CapturedEvent]] = {}
    for team_id, now, captured in requests:
        for position, event in enumerate(captured):
            event.received_at = stored_at(now, position)
        by_team.setdefault(team_id, []).extend(captured)
    now = max(now for _, now, _ in requests)
    store = get_store()

    def attempt(lock: bool, retry: bool) -> None:
        rows = []
        for team_id, captured in by_team.items():
            _write(team_id, captured, now, lock_persons=lock, skip_stored_uuids=retry,
                   write=lambda *args, **kwargs: rows.append(store.rows(*args, **kwargs)))
        write_rows(rows)

    _run_attempts(attempt)


def _run_attempts(write) -> None:
    """`write(lock_persons, retried)` in a transaction, run again when it met a concurrent change."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        last = attempt == WRITE_ATTEMPTS
        try:
            with transaction.atomic():
                # Optimistic first: no locks, person versions checked on write. The last attempt
                # locks the persons it reads, so a request always gets through.
                write(last, attempt > 1)
            return
        except (ConcurrentPersonChange, IntegrityError, OperationalError):
            # A retried event (unique uuid), a person changed by a concurrent request, or a
            # deadlock: the whole request rolled back, so it is safe to run it again.
            if last:
                raise


class ConcurrentPersonChange(Exception):
    """A person this request read was changed by another request before this one wrote it."""


def _write(team_id: int, captured: list[CapturedEvent], now: datetime, *, lock_persons: bool, skip_stored_uuids: bool,
           write=None) -> None:
    resolver = _PersonResolver(team_id)
    with_persons = _distinct_ids_with_persons(captured)
    database = for_connection()
    if lock_persons and database.needs_write_locks:
        _lock_distinct_ids(team_id, with_persons)
    # Personless events' ids too: they take the person an id already has.
    resolver.load(with_persons | {e.distinct_id for e in captured}, lock=lock_persons)
    unknown = with_persons - resolver.stored_distinct_ids
    if unknown and database.needs_write_locks and not lock_persons:
        # Requests that may create persons for the same new ids take turns (one global lock
        # order, taken before any write: no deadlock); then read what the previous one created.
        _lock_distinct_ids(team_id, unknown)
        resolver.load(unknown, lock=False)
    for event in captured:
        if event.process_person:
            resolver.apply(event)
    person_ids = resolver.persist()
    (write or get_store().write)(team_id, captured, person_ids, now, resolver.changes, skip_stored_uuids=skip_stored_uuids)
    record_groups(team_id, captured)  # group types named in `$groups`, `$groupidentify` upserts


def _lock_distinct_ids(team_id: int, distinct_ids: set[str]) -> None:
    """Transaction-scoped advisory locks on distinct ids, taken in one global order.

    Without them two requests creating the same persons insert unique-index entries (person
    uuid, distinct id) in different orders and deadlock. SQLite runs one writer at a time.
    """
    for_connection().lock_keys(ADVISORY_LOCK_NAMESPACE, sorted({_lock_key(team_id, distinct_id) for distinct_id in distinct_ids}))


def _lock_key(team_id: int, distinct_id: str) -> int:
    digest = hashlib.blake2b(f"{team_id}:{distinct_id}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def _merge_source_id(event: CapturedEvent) -> tuple[str, bool] | None:
    """(the distinct id to merge into the event's person, whether the merge may join identified persons)."""
    properties = event.properties
    if event.event == "$identify":
        other, dangerous = properties.get("$anon_distinct_id"), False
    elif event.event == "$create_alias":
        other, dangerous = properties.get("alias"), False
    elif event.event == "$merge_dangerously":
        other, dangerous = properties.get("alias"), True
    else:
        return None
    if other is None or other == "":
        return None
    return str(other)[:MAX_DISTINCT_ID_LENGTH], dangerous


def _distinct_ids_with_persons(captured: list[CapturedEvent]) -> set[str]:
    """The ids this request may create or change persons for (personless events change none)."""
    ids = set()
    for event in captured:
        if event.process_person:
            ids.add(event.distinct_id)
            if source := _merge_source_id(event):
                ids.add(source[0])
    return ids


def _is_illegal_merge_id(distinct_id: str) -> bool:
    stripped = distinct_id.strip()
    return not stripped or stripped.lower() in ILLEGAL_MERGE_IDS_CASE_INSENSITIVE or stripped in ILLEGAL_MERGE_IDS


class _PersonState:
    """A person as this request sees it: loaded from the database or created by the request."""

    __slots__ = ("pk", "uuid", "_properties", "_stored_properties", "created_at", "is_identified", "version", "is_new", "merged_into", "changed")
    # `version` is the stored version: writes succeed only while the row still has it.

    def __init__(self, *, pk, uuid_, created_at, is_identified, version, is_new, properties=None, stored_properties=None):
        self.pk = pk
        self.uuid = uuid_
        self._properties = properties
        self._stored_properties = stored_properties  # JSON text, decoded only if the request needs it
        self.created_at = created_at
        self.is_identified = is_identified
        self.version = version
        self.is_new = is_new
        self.merged_into: _PersonState | None = None
        self.changed = False

    @property
    def properties(self) -> dict:
        if self._properties is None:
            decoded = json.loads(self._stored_properties) if self._stored_properties else {}
            self._properties = decoded if isinstance(decoded, dict) else {}
        return self._properties

    @properties.setter
    def properties(self, value: dict) -> None:
        self._properties = value

    def resolved(self) -> "_PersonState":
        person = self
        while person.merged_into is not None:
            person = person.merged_into
        return person

    def seen_at(self, timestamp: datetime) -> None:
        # A person's created_at is its earliest event, also when older events arrive later.
        if timestamp < self.created_at:
            self.created_at = timestamp
            self.changed = True

    def identify(self) -> None:
        if not self.is_identified:
            self.is_identified = True
            self.changed = True

    def update_properties(self, properties: dict) -> None:
        """$set_once, then $set, then $unset, as PostHog applies them."""
        set_once, to_set, to_unset = properties.get("$set_once"), properties.get("$set"), properties.get("$unset")
        if not (set_once or to_set or to_unset):
            return
        props = self.properties
        if isinstance(set_once, dict):
            for key, value in set_once.items():
                if key not in props:
                    props[key] = value
                    self.changed = True
        if isinstance(to_set, dict):
            for key, value in to_set.items():
                if key not in props or props[key] != value:
                    props[key] = value
                    self.changed = True
        if isinstance(to_unset, dict):
            to_unset = list(to_unset)
        if isinstance(to_unset, list):
            for key in to_unset:
                if isinstance(key, str) and key in props:
                    del props[key]
                    self.changed = True


class _PersonResolver:
    def __init__(self, team_id: int):
        self.team_id = team_id
        self.by_distinct_id: dict[str, _PersonState] = {}
        self.stored_distinct_ids: set[str] = set()
        self.stored_persons: dict[int, _PersonState] = {}
        self.merged_away: list[_PersonState] = []  # stored persons merged into another person
        self.changes = PersonChanges()  # what `persist` wrote, for the event store

    def load(self, distinct_ids: set[str], *, lock: bool) -> None:
        """The persons of the ids: one query per LOOKUP_CHUNK ids, locked on request.

        Plain SQL: this runs for every request, and Django's query building and row conversion
        cost more than the lookup. By distinct id first, then person id: index probes only, with
        no team-wide condition a planner with stale statistics could turn into a scan.
        """
        ops = connection.ops
        database = for_connection()
        sql = (
            f"SELECT d.distinct_id, p.id, p.uuid, p.properties, {database.utc_text('p.created_at')}, p.is_identified, p.version "
            f"FROM {ops.quote_name(PersonDistinctId._meta.db_table)} d JOIN {ops.quote_name(Person._meta.db_table)} p ON p.id = d.person_id "
            f"WHERE d.distinct_id {{ids}} AND d.team_id = %s ORDER BY p.id"
        )
        if lock and connection.features.has_select_for_update_of:
            # Concurrent requests touching the same persons serialize here, in person-id order.
            # NO KEY: events and distinct ids of other requests may still reference the rows.
            sql += " FOR NO KEY UPDATE OF p"
        ordered = sorted(distinct_ids)
        states = self.stored_persons
        with connection.cursor() as cursor:
            for start in range(0, len(ordered), LOOKUP_CHUNK):
                chunk = ordered[start : start + LOOKUP_CHUNK]
                ids, values = database.in_values(chunk)
                cursor.execute(sql.format(ids=ids), [*values, self.team_id])
                for distinct_id, pk, person_uuid, properties, created_at, is_identified, version in cursor.fetchall():
                    state = states.get(pk)
                    if state is None:
                        created_at = _utc(created_at)
                        state = states[pk] = _PersonState(
                            pk=pk,
                            uuid_=person_uuid,  # for the ClickHouse mirror (stored persons are never inserted again)
                            stored_properties=properties,
                            created_at=created_at,
                            is_identified=bool(is_identified),
                            version=version,
                            is_new=False,
                        )
                    self.by_distinct_id[distinct_id] = state
                    self.stored_distinct_ids.add(distinct_id)

    def find(self, distinct_id: str) -> _PersonState | None:
        state = self.by_distinct_id.get(distinct_id)
        return state.resolved() if state is not None else None

    def _create(self, distinct_id: str, timestamp: datetime) -> _PersonState:
        state = _PersonState(
            pk=None,
            uuid_=person_uuid_for(self.team_id, distinct_id),
            properties={},
            created_at=timestamp,
            is_identified=False,
            version=0,
            is_new=True,
        )
        self.by_distinct_id[distinct_id] = state
        return state

    def apply(self, event: CapturedEvent) -> None:
        merge = _merge_source_id(event)
        if merge is not None:
            self._merge(merge[0], event.distinct_id, event.timestamp, dangerous=merge[1])
        person = self.find(event.distinct_id) or self._create(event.distinct_id, event.timestamp)
        person.seen_at(event.timestamp)
        person.update_properties(event.properties)

    def _merge(self, other_id: str, into_id: str, timestamp: datetime, *, dangerous: bool) -> None:
        """Join the person of `other_id` (anonymous id, alias) with the person of `into_id`."""
        if other_id == into_id or _is_illegal_merge_id(other_id) or _is_illegal_merge_id(into_id):
            return
        other, into = self.find(other_id), self.find(into_id)
        if other is not None and into is not None:
            if other is not into:
                if other.is_identified and not dangerous:
                    return  # PostHog never merges an already identified person into another one
                self._merge_people(source=other, target=into)
            into.identify()
        elif other is not None:
            self.by_distinct_id[into_id] = other
            other.identify()
        elif into is not None:
            self.by_distinct_id[other_id] = into
            into.identify()
        else:
            person = self._create(into_id, timestamp)
            self.by_distinct_id[other_id] = person
            person.identify()

    def _merge_people(self, *, source: _PersonState, target: _PersonState) -> None:
        target.properties = {**source.properties, **target.properties}
        target.created_at = min(target.created_at, source.created_at)
        target.changed = True
        source.merged_into = target
        if not source.is_new:
            self.merged_away.append(source)

    def persist(self) -> dict[str, int]:
        """Write the person changes; returns the person id of every distinct id that has one.

        No other request can link the same new distinct ids meanwhile (PostgreSQL: advisory
        locks; SQLite: one writer), so plain inserts suffice: a unique violation means that
        assumption broke, and the request is run again.
        """
        live = {id(s): s for s in (state.resolved() for state in self.by_distinct_id.values())}.values()
        created = [s for s in live if s.is_new]
        self._insert_persons(created)
        updated = [s for s in live if not s.is_new and s.changed]
        if updated:
            _update_persons(updated)
        self._repoint_merged()

        person_ids = {distinct_id: state.resolved().pk for distinct_id, state in self.by_distinct_id.items()}
        new_links = {d: pk for d, pk in person_ids.items() if d not in self.stored_distinct_ids}
        if new_links:
            self._link_distinct_ids(new_links)
        changes = self.changes
        changes.person_ids = {s.pk for s in created} | {s.pk for s in updated} | set(new_links.values())
        changes.person_ids |= set(changes.merged.values())
        changes.new_links = new_links
        changes.person_rows = self._person_rows(changes.person_ids, created, updated)
        return person_ids

    def _person_rows(self, person_ids: set[int], created: list[_PersonState], updated: list[_PersonState]) -> list[tuple]:
        """The rows of these persons as the Django database now has them (the event store mirrors
        them), built from what this request holds instead of read back."""
        rewritten = {id(s) for s in updated}
        rows = []
        for state in {s.pk: s for s in (state.resolved() for state in self.by_distinct_id.values())}.values():
            if state.pk in person_ids:
                version = state.version + 1 if id(state) in rewritten else state.version
                rows.append((state.pk, _uuid_text(state.uuid), self.team_id, state.created_at, state.properties, state.is_identified, version))
        return rows

    def _insert_persons(self, created: list[_PersonState]) -> None:
        if not created:
            return
        ordered = sorted(created, key=lambda s: s.uuid)
        persons = Person.objects.bulk_create(
            [
                Person(uuid=s.uuid, team_id=self.team_id, properties=s.properties, created_at=s.created_at, is_identified=s.is_identified)
                for s in ordered
            ]
        )
        for state, person in zip(ordered, persons):
            state.pk = person.pk

    def _repoint_merged(self) -> None:
        """Distinct ids and events of persons merged away now belong to the surviving person."""
        if not self.merged_away:
            return
        target_of = Case(
            *[When(person_id=s.pk, then=Value(s.resolved().pk)) for s in self.merged_away], output_field=BigIntegerField()
        )
        source_ids = [s.pk for s in self.merged_away]
        merged = {s.pk: s.resolved().pk for s in self.merged_away}
        moved = PersonDistinctId.objects.filter(team_id=self.team_id, person_id__in=source_ids)
        # The events of these ids belong to the surviving person from the new link version on.
        self.changes.moved_distinct_ids = [
            (distinct_id, merged[person_id], version + 1) for distinct_id, person_id, version in moved.values_list("distinct_id", "person_id", "version")
        ]
        moved.update(person_id=target_of, version=F("version") + 1)
        self.changes.merged = merged
        self.changes.deleted = [(s.pk, s.version) for s in self.merged_away]
        ops = connection.ops
        with connection.cursor() as cursor:
            cursor.executemany(
                f"DELETE FROM {ops.quote_name(Person._meta.db_table)} WHERE {ops.quote_name('id')} = %s AND {ops.quote_name('version')} = %s",
                [(s.pk, s.version) for s in sorted(self.merged_away, key=lambda s: s.pk)],
            )
            if cursor.rowcount != len(self.merged_away):
                raise ConcurrentPersonChange()

    def _link_distinct_ids(self, new_links: dict[str, int]) -> None:
        ops = connection.ops
        ordered = sorted(new_links.items())
        with connection.cursor() as cursor:
            for start in range(0, len(ordered), LINK_CHUNK):
                links = ordered[start : start + LINK_CHUNK]
                cursor.execute(
                    f"INSERT INTO {ops.quote_name(PersonDistinctId._meta.db_table)} (team_id, distinct_id, person_id, version) "
                    f"VALUES {', '.join(['(%s, %s, %s, 0)'] * len(links))}",
                    [value for distinct_id, pk in links for value in (self.team_id, distinct_id, pk)],
                )


def _utc(value) -> datetime:
    """A stored timestamp as read (naive UTC text from `utc_text`, or SQLite's naive datetime)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt_timezone.utc)


def _uuid_text(value) -> str:
    """A person uuid as text: a UUID, or SQLite's 32 hex digits."""
    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(value))


def _update_persons(states: list[_PersonState]) -> None:
    """One statement sent with every person's values (a single round trip on PostgreSQL); each
    row is written only if it still has the version this request read."""
    ops = connection.ops
    column = {name: ops.quote_name(Person._meta.get_field(name).column) for name in ("id", "properties", "created_at", "is_identified", "version")}
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {ops.quote_name(Person._meta.db_table)} SET {column['properties']} = %s, {column['created_at']} = %s, "
            f"{column['is_identified']} = %s, {column['version']} = %s WHERE {column['id']} = %s AND {column['version']} = %s",
            [
                (json.dumps(s.properties), ops.adapt_datetimefield_value(s.created_at), s.is_identified, s.version + 1, s.pk, s.version)
                for s in sorted(states, key=lambda s: s.pk)
            ],
        )
        if cursor.rowcount != len(states):
            raise ConcurrentPersonChange()
