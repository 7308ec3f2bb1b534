"""Hand-made event fixtures: persons and events written directly (bulk) to the events store."""
from datetime import datetime, timezone
from typing import Optional

from events.models import Event, Person, PersonDistinctId
from tests.factories import PersonFactory


def ts(value: str) -> datetime:
    """'2020-01-09 10:00' (UTC) or an ISO string with an offset -> aware datetime."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def person(team, *distinct_ids: str, properties: Optional[dict] = None, created_at: str = "2019-12-01 00:00") -> Person:
    return PersonFactory(team=team, properties=properties or {}, created_at=ts(created_at), distinct_ids=distinct_ids)


def events(team, *rows: tuple, personless: tuple = ()) -> list[Event]:
    """Rows are (event, distinct_id, timestamp[, properties[, session_id]]).

    Each distinct id resolves to its person (created on first use unless listed in `personless`).
    """
    people: dict[str, Optional[Person]] = {
        link.distinct_id: link.person for link in PersonDistinctId.objects.filter(team=team).select_related("person")
    }
    objects = []
    for row in rows:
        name, distinct_id, when, *rest = row
        properties = rest[0] if rest else {}
        session_id = rest[1] if len(rest) > 1 else ""
        if distinct_id not in people and distinct_id not in personless:
            people[distinct_id] = person(team, distinct_id)
        objects.append(
            Event(team=team, event=name, distinct_id=distinct_id, properties=properties, timestamp=ts(when),
                  person=people.get(distinct_id), session_id=session_id)
        )
    return Event.objects.bulk_create(objects)
