"""Hand-made event fixtures: persons and events written directly (bulk) to the events store.

On ClickHouse (the `events_engine` fixture's "clickhouse" run) persons are still created in the
Django database and mirrored; events go to ClickHouse only, as ingestion writes them there.
"""
import json
from datetime import datetime, timezone
from typing import Optional

from events.clickhouse import is_enabled as clickhouse_enabled
from events.models import Event, Person, PersonDistinctId
from tests.factories import PersonFactory


def ts(value: str) -> datetime:
    """'2020-01-09 10:00' (UTC) or an ISO string with an offset -> aware datetime."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def person(team, *distinct_ids: str, properties: Optional[dict] = None, created_at: str = "2019-12-01 00:00",
           mirror: bool = True) -> Person:
    created = PersonFactory(team=team, properties=properties or {}, created_at=ts(created_at), distinct_ids=distinct_ids)
    if mirror and clickhouse_enabled():
        from events.clickhouse.mirror import mirror_persons

        mirror_persons([created.id])
    return created


def events(team, *rows: tuple, personless: tuple = ()) -> list[Event]:
    """Rows are (event, distinct_id, timestamp[, properties[, session_id]]).

    Each distinct id resolves to its person (created on first use unless listed in `personless`).
    """
    people: dict[str, Optional[Person]] = {
        link.distinct_id: link.person for link in PersonDistinctId.objects.filter(team=team).select_related("person")
    }
    objects, created = [], []
    for row in rows:
        name, distinct_id, when, *rest = row
        properties = rest[0] if rest else {}
        session_id = rest[1] if len(rest) > 1 else ""
        if distinct_id not in people and distinct_id not in personless:
            people[distinct_id] = person(team, distinct_id, mirror=False)
            created.append(people[distinct_id].id)
        objects.append(
            Event(team=team, event=name, distinct_id=distinct_id, properties=properties, timestamp=ts(when),
                  person=people.get(distinct_id), session_id=session_id)
        )
    if not clickhouse_enabled():
        return Event.objects.bulk_create(objects)
    from events.clickhouse.mirror import EVENT_COLUMNS, insert_events, mirror_persons

    mirror_persons(created)
    insert_events([_clickhouse_row(event) for event in objects])
    assert EVENT_COLUMNS == ("uuid", "team_id", "event", "distinct_id", "properties", "timestamp", "person_id",
                             "session_id", "created_at")
    return objects


def _clickhouse_row(event: Event) -> tuple:
    return (event.uuid, event.team_id, event.event, event.distinct_id, json.dumps(event.properties), event.timestamp,
            event.person_id, event.session_id, event.created_at)
