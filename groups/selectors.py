"""Reads of group types and groups."""
import uuid
from datetime import timedelta

from django.db import connection
from django.db.models import Prefetch, Q, QuerySet

from core.database import for_connection

from events.models import Person, PersonDistinctId
from queries import clock
from queries.sql.groups import related_actors

from .models import Group, GroupTypeMapping

PROPERTY_VALUES_LIMIT = 20
RELATED_DAYS = 90


def project_group_types(team) -> QuerySet:
    """Group types are per project: every environment of it sees the same mapping."""
    return GroupTypeMapping.objects.filter(project_id=team.project_id).order_by("group_type_index")


def team_groups(team, *, group_type_index: int, search: str | None = None, group_key: str | None = None) -> QuerySet:
    """Groups of one type; `search` matches the properties' text or the exact key (case-insensitive),
    `group_key` is a case-insensitive substring of the key."""
    groups = Group.objects.filter(team=team, group_type_index=group_type_index)
    if search:
        groups = groups.filter(Q(group_properties__icontains=search) | Q(group_key__iexact=search))
    if group_key:
        groups = groups.filter(group_key__icontains=group_key)
    return groups


# --- Group properties: one row per (group, top-level property), in the database's JSON functions ----------


def _property_rows() -> tuple[str, str, str]:
    """(FROM clause yielding g.* and j.key / j.value per top-level property, the value as PostHog prints
    it: strings unquoted, anything else as JSON text, binary order of a text column)."""
    database = for_connection(connection)
    table = connection.ops.quote_name(Group._meta.db_table)
    entries, value = database.json_object_entries(f"g.{connection.ops.quote_name(Group._meta.get_field('group_properties').column)}")
    return f"{table} g{entries}", value, database.binary_collation


def group_property_definitions(team) -> dict[str, list[dict]]:
    """The property keys of the team's groups per type index ("0": [{name, count}]), most used first."""
    source, _, binary = _property_rows()
    team_column = connection.ops.quote_name(Group._meta.get_field("team").column)
    sql = (f"SELECT g.group_type_index, j.key, COUNT(*) AS n FROM {source} WHERE g.{team_column} = %s "
           f"GROUP BY g.group_type_index, j.key ORDER BY g.group_type_index, n DESC, j.key{binary}")
    with connection.cursor() as cursor:
        cursor.execute(sql, [team.id])
        rows = cursor.fetchall()
    definitions: dict[str, list[dict]] = {}
    for index, key, count in rows:
        definitions.setdefault(str(index), []).append({"name": key, "count": count})
    return definitions


def group_property_values(team, *, group_type_index: int, key: str, value: str | None = None) -> list[dict]:
    """The 20 most common values of one property among a type's groups ([{name, count}]); `value`
    keeps those containing it (case-insensitive)."""
    source, text, binary = _property_rows()
    team_column = connection.ops.quote_name(Group._meta.get_field("team").column)
    params: list = [team.id, group_type_index, key]
    where = f"g.{team_column} = %s AND g.group_type_index = %s AND j.key = %s"
    if value:
        where += f" AND {text} {for_connection(connection).case_insensitive_like} %s"
        params.append(f"%{value}%")
    sql = (f"SELECT property_value, n FROM (SELECT {text} AS property_value, COUNT(*) AS n FROM {source} WHERE {where} "
           f"GROUP BY 1) counted ORDER BY n DESC, property_value{binary} LIMIT {PROPERTY_VALUES_LIMIT}")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [{"name": name, "count": count} for name, count in cursor.fetchall()]


def related(team, *, group_type_index: int | None, actor_id: str) -> tuple[list[Person], list[Group]]:
    """Persons and groups that shared events with a group (or, without an index, a person by uuid) in
    the last 90 days: persons newest first (a group's only), then groups by type index and key."""
    person_id = None
    if group_type_index is None:
        person_id = Person.objects.filter(team=team, uuid=actor_id).values_list("id", flat=True).first() if _is_uuid(actor_id) else None
        if person_id is None:
            return [], []
    until = clock.now()
    person_ids, group_keys = related_actors(team, group_type_index=group_type_index, person_id=person_id,
                                            group_key_value=actor_id, since=until - timedelta(days=RELATED_DAYS), until=until)
    persons = list(Person.objects.filter(team=team, id__in=person_ids).order_by("-created_at", "uuid")
                   .prefetch_related(Prefetch("distinct_ids", queryset=PersonDistinctId.objects.order_by("id"))))
    groups: list[Group] = []
    for index in sorted({index for index, _ in group_keys}):
        keys = [key for other, key in group_keys if other == index]
        groups.extend(Group.objects.filter(team=team, group_type_index=index, group_key__in=keys).order_by("group_key"))
    return persons, groups


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
