"""Writes into ClickHouse: events, and mirrors of the persons and distinct ids the Django
database owns. One insert per table per call (never a row at a time)."""
import json
from typing import Iterable, Sequence

from events.models import Person, PersonDistinctId

from .client import ClickHouseClient, get_client, json_text
from .schema import COHORT_PEOPLE, EVENTS, GROUPS, PERSON_DISTINCT_ID_OVERRIDES, PERSON_DISTINCT_IDS, PERSONS

EVENT_COLUMNS = ("uuid", "team_id", "event", "distinct_id", "properties", "timestamp", "person_id", "session_id", "created_at")
PERSON_COLUMNS = ("id", "uuid", "team_id", "created_at", "properties", "is_identified", "version", "is_deleted")
DISTINCT_ID_COLUMNS = ("team_id", "distinct_id", "person_id", "version", "is_deleted")
OVERRIDE_COLUMNS = ("team_id", "distinct_id", "person_id", "version")
GROUP_COLUMNS = ("team_id", "group_type_index", "group_key", "group_properties", "created_at", "version", "is_deleted")


def insert_events(rows: Sequence[Sequence], client: ClickHouseClient | None = None) -> None:
    """Rows in EVENT_COLUMNS order; `properties` as JSON text."""
    (client or get_client()).insert(EVENTS, rows, EVENT_COLUMNS)


def mirror_persons(person_ids: Iterable[int], client: ClickHouseClient | None = None) -> None:
    """Copy these persons and their distinct ids, as the Django database has them now."""
    persons, links = person_rows(person_ids)
    if not persons and not links:
        return
    client = client or get_client()
    client.insert(PERSONS, persons, PERSON_COLUMNS)
    client.insert(PERSON_DISTINCT_IDS, links, DISTINCT_ID_COLUMNS)


def person_rows(person_ids: Iterable[int], *, with_links: bool = True) -> tuple[list[tuple], list[tuple]]:
    """(PERSON_COLUMNS rows, DISTINCT_ID_COLUMNS rows) of these persons, read from the Django
    database (in the caller's transaction: its own uncommitted writes included)."""
    person_ids = list(person_ids)
    if not person_ids:
        return [], []
    persons = Person.objects.filter(id__in=person_ids).values_list(
        "id", "uuid", "team_id", "created_at", "properties", "is_identified", "version")
    links = PersonDistinctId.objects.filter(person_id__in=person_ids).values_list("team_id", "distinct_id", "person_id", "version") if with_links else []
    return [(*_json_properties(row, 4), 0) for row in persons], [(*row, 0) for row in links]


def rows_of_persons(persons: Iterable[tuple]) -> list[tuple]:
    """PERSON_COLUMNS rows of (id, uuid, team_id, created_at, properties dict, is_identified, version)."""
    return [(*_json_properties(row, 4), 0) for row in persons]


def deleted_person_rows(team_id: int, deleted: Iterable[tuple[int, int]]) -> list[tuple]:
    return [(pk, "00000000-0000-0000-0000-000000000000", team_id, 0, "{}", False, version + 1, 1) for pk, version in deleted]


def override_rows(team_id: int, overrides: Iterable[tuple[str, int, int]]) -> list[tuple]:
    return [(team_id, distinct_id, person_id, version) for distinct_id, person_id, version in overrides]


def mirror_deleted_persons(team_id: int, deleted: Iterable[tuple[int, int]], client: ClickHouseClient | None = None) -> None:
    """Mark persons deleted in the Django database (pairs of id and the version they were deleted at)."""
    rows = deleted_person_rows(team_id, deleted)
    if rows:
        (client or get_client()).insert(PERSONS, rows, PERSON_COLUMNS)


def write_overrides(team_id: int, overrides: Iterable[tuple[str, int, int]], client: ClickHouseClient | None = None) -> None:
    """Distinct ids whose events now belong to another person: (distinct_id, person_id, version)."""
    rows = override_rows(team_id, overrides)
    if rows:
        (client or get_client()).insert(PERSON_DISTINCT_ID_OVERRIDES, rows, OVERRIDE_COLUMNS)


def mirror_groups(groups: Iterable, *, deleted: bool = False, client: ClickHouseClient | None = None) -> None:
    """Copy these `groups.Group` rows as they are now (or mark them deleted: a newer version)."""
    rows = [(g.team_id, g.group_type_index, g.group_key, json.dumps(g.group_properties), g.created_at,
             g.version + (1 if deleted else 0), 1 if deleted else 0) for g in groups]
    if rows:
        (client or get_client()).insert(GROUPS, rows, GROUP_COLUMNS)


COHORT_PEOPLE_COLUMNS = ("cohort_id", "person_id", "version")


def insert_cohort_people(rows: Sequence[Sequence], client: ClickHouseClient | None = None) -> None:
    """Rows of (cohort_id, person_id, version), as the Django `CohortPeople` table has them."""
    if rows:
        (client or get_client()).insert(COHORT_PEOPLE, rows, COHORT_PEOPLE_COLUMNS)


def mirror_cohort_generation(cohort_id: int, version: int, client: ClickHouseClient | None = None) -> None:
    """Replace one generation of a cohort's members with the Django database's (static cohorts edit version 0)."""
    from cohorts.models import CohortPeople

    client = client or get_client()
    client.command(f"DELETE FROM {COHORT_PEOPLE} WHERE cohort_id = {int(cohort_id)} AND version = {int(version)}",
                   settings={"mutations_sync": 1})
    insert_cohort_people(list(CohortPeople.objects.filter(cohort_id=cohort_id, version=version)
                              .values_list("cohort_id", "person_id", "version")), client)


def _json_properties(row: tuple, index: int) -> tuple:
    return (*row[:index], json_text(row[index]), *row[index + 1 :])
