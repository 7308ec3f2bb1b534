"""Writes to cohorts with their side effects: membership (calculation or static import) and the
activity log."""
from typing import Optional

from django.db import DatabaseError, transaction
from django.utils import timezone
from rest_framework.exceptions import NotFound, ValidationError

from activity.services import changes_between, log_activity, snapshot
from events.models import Person
from queries.runners.base import database_error
from queries.sql.cohorts import add_query_members, add_static_members, copy_members, parse_uuid

from .calculation import enqueue_calculation
from .csv_import import read_ids
from events.clickhouse import is_enabled as clickhouse_enabled
from events.clickhouse.mirror import mirror_cohort_generation

from .models import Cohort, CohortPeople

SCOPE = "Cohort"
ACTIVITY_EXCLUDE = frozenset({"version", "pending_version", "count", "is_calculating", "calculation_started_at", "last_calculation",
                              "errors_calculating", "last_error_at", "last_error"})


def create_cohort(*, team, user, data: dict, csv_file=None, person_ids: Optional[list] = None) -> Cohort:
    with transaction.atomic():
        cohort = Cohort.objects.create(team=team, created_by=user if user and user.is_authenticated else None, **data)
        if cohort.is_static:
            cohort.version = 0
            cohort.save(update_fields=["version"])
            _import_static(cohort, csv_file=csv_file, person_ids=person_ids, query=cohort.query)
        else:
            enqueue_calculation(cohort)
        log_activity(team=team, user=user, scope=SCOPE, item_id=cohort.id, activity="created", name=cohort.name)
    return cohort


def update_cohort(*, cohort: Cohort, user, data: dict, csv_file=None) -> Cohort:
    with transaction.atomic():
        before = snapshot(cohort, ACTIVITY_EXCLUDE)
        for field, value in data.items():
            setattr(cohort, field, value)
        if cohort.is_static and cohort.version is None:
            cohort.version = 0
        cohort.save()
        if not cohort.deleted:
            if cohort.is_static:
                if csv_file is not None or data.get("query"):
                    _import_static(cohort, csv_file=csv_file, query=data.get("query"))
            elif {"filters", "is_static", "groups", "deleted"} & set(data):
                enqueue_calculation(cohort)
        activity = "deleted" if data.get("deleted") and not before["deleted"] else "updated"
        log_activity(team=cohort.team, user=user, scope=SCOPE, item_id=cohort.id, activity=activity, name=cohort.name,
                     changes=changes_between(SCOPE, before, snapshot(cohort, ACTIVITY_EXCLUDE)))
    return cohort


def _import_static(cohort: Cohort, *, csv_file=None, person_ids: Optional[list] = None, query=None) -> None:
    """Members from a CSV and/or person UUIDs, else (PostHog's order) from the cohort's query."""
    if csv_file is not None:
        key, values = read_ids(csv_file)
        add_static_members(cohort, key=key, values=values)
    if person_ids:
        add_static_members(cohort, key="uuid", values=person_ids)
    if query and csv_file is None and not person_ids:
        try:
            add_query_members(cohort, query)
        except DatabaseError as error:  # a timeout, or SQL the database refused
            raise database_error(error) from error
    _recount(cohort)


def _recount(cohort: Cohort) -> None:
    cohort.count = CohortPeople.objects.filter(cohort_id=cohort.id, version=cohort.version or 0).count()
    cohort.is_calculating = False
    cohort.last_calculation = timezone.now()  # as PostHog after a static import; query cache keys read it
    Cohort.objects.filter(id=cohort.id).update(count=cohort.count, is_calculating=False, last_calculation=cohort.last_calculation)


def add_persons_to_static_cohort(*, cohort: Cohort, user, person_ids: list) -> None:
    if not cohort.is_static:
        raise ValidationError("Can only add users to static cohorts")
    valid = [value for value in person_ids if parse_uuid(value) is not None]
    if not Person.objects.filter(team_id=cohort.team_id, uuid__in=valid).exists():
        raise ValidationError("No valid users to add to cohort")
    with transaction.atomic():
        add_static_members(cohort, key="uuid", values=valid)
        _recount(cohort)


def remove_person_from_static_cohort(*, cohort: Cohort, user, person_id) -> None:
    if not cohort.is_static:
        raise ValidationError("Can only remove users from static cohorts")
    parsed = parse_uuid(person_id)
    person = Person.objects.filter(team_id=cohort.team_id, uuid=parsed).first() if parsed else None
    if person is None:
        raise NotFound("Person not found.")
    with transaction.atomic():
        deleted, _ = CohortPeople.objects.filter(cohort_id=cohort.id, version=cohort.version or 0, person_id=person.id).delete()
        if not deleted:
            raise NotFound("Person is not part of the cohort")
        _recount(cohort)
        if clickhouse_enabled():
            mirror_cohort_generation(cohort.id, cohort.version or 0)


def duplicate_as_static(*, cohort: Cohort, user) -> Cohort:
    """A static copy holding the cohort's current members."""
    if cohort.is_static:
        raise ValidationError("Cannot duplicate a static cohort as a static cohort.")
    with transaction.atomic():
        copy = Cohort.objects.create(team=cohort.team, created_by=user if user and user.is_authenticated else None,
                                     name=f"{cohort.name} (static copy)", description=cohort.description, is_static=True,
                                     version=0)
        copy_members(cohort, copy)
        _recount(copy)
        log_activity(team=copy.team, user=user, scope=SCOPE, item_id=copy.id, activity="created", name=copy.name)
    return copy


# The demo's example: a behavioral cohort, and the insight comparing it with all users.
COHORT_EXAMPLE = ("Purchasers (last 30 days)", "Weekly active users: purchasers vs all users")
EXAMPLE_FILTERS = {"properties": {"type": "OR", "values": [{"type": "AND", "values": [
    {"type": "behavioral", "key": "purchase", "value": "performed_event", "event_type": "events", "time_value": 30, "time_interval": "day"},
]}]}}


def example_cohort(*, team, user) -> Cohort:
    """The demo cohort (made once), calculated now so the example insight shows numbers at once."""
    from .calculation import calculate_cohort

    cohort = Cohort.objects.filter(team=team, name=COHORT_EXAMPLE[0], deleted=False).first()
    if cohort is None:
        cohort = Cohort.objects.create(team=team, created_by=user, name=COHORT_EXAMPLE[0], filters=EXAMPLE_FILTERS,
                                       description="Persons who purchased in the last 30 days.")
    calculate_cohort(cohort.id)
    return cohort
