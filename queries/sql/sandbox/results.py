"""Results: rows as PostHog returns them, and the ClickHouse type names of columns."""
import json
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Optional
from zoneinfo import ZoneInfo

from events.models import Person

from ...wire import response_value
from ..hogql import BOOL, DATETIME, NUMBER, STRING
from .native import element_of
from .values import DATE, INTEGER, JSON, PERSON, TEXT_ARRAY


def clickhouse_type(kind: str, tz: ZoneInfo) -> str:
    """The ClickHouse type name PostHog reports for a column of this type."""
    if element_of(kind) is not None:
        return f"Array({clickhouse_type(element_of(kind), tz)})"
    return {
        STRING: "String", NUMBER: "Float64", INTEGER: "Int64", BOOL: "Bool", DATETIME: f"DateTime64(6, '{tz}')",
        DATE: "Date", JSON: "String", PERSON: "UUID", TEXT_ARRAY: "Array(String)",
    }.get(kind, "Nullable(Nothing)")


def format_rows(rows: list[tuple], kinds: list[str], team, tz: ZoneInfo) -> list[list]:
    """Database values -> PostHog's JSON values, the same whatever the engine returned."""
    persons: dict[int, str] = {}
    person_columns = [index for index, kind in enumerate(kinds) if kind == PERSON]
    if person_columns:
        ids = {row[index] for row in rows for index in person_columns if row[index] is not None}
        if ids:
            persons = {pk: str(value) for pk, value in
                       Person.objects.filter(team_id=team.id, id__in=ids).values_list("id", "uuid")}
    return [[_format(value, kind, tz, persons) for value, kind in zip(row, kinds)] for row in rows]


def _utc_text(text: str) -> Optional[datetime]:
    """A timestamp an engine returned as text (naive UTC 'YYYY-MM-DD HH:MM:SS')."""
    try:
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _format(value: Any, kind: str, tz: ZoneInfo, persons: dict) -> Any:
    if value is None:
        return None
    if element_of(kind) is not None and isinstance(value, (list, tuple)):
        return [_format(item, element_of(kind), tz, persons) for item in value]
    if kind == DATETIME:
        moment = value if isinstance(value, datetime) else _utc_text(value) if isinstance(value, str) else None
        if moment is None:
            return str(value)
        return response_value((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(tz))
    if kind == DATE:
        return value.isoformat() if isinstance(value, (date, datetime)) else str(value)[:10]
    if kind == PERSON:
        return persons.get(value)
    if kind == BOOL:
        return bool(value)
    if kind == INTEGER:
        return int(value) if isinstance(value, (int, float, Decimal)) else value
    if kind == NUMBER:
        return float(value) if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) else value
    if kind == TEXT_ARRAY:  # the engines list distinct values in different orders
        return sorted(json.loads(value) if isinstance(value, str) else value)
    if kind == JSON:
        parsed = json.loads(value) if isinstance(value, str) else value
        return json.dumps(parsed, sort_keys=True)
    if kind == STRING:
        return value if isinstance(value, str) else str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
