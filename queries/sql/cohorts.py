"""Cohorts in SQL: the membership of a dynamic cohort computed from its filters into the
membership table, static members added from distinct ids / person UUIDs / emails, and the
`IN COHORT` condition every insight uses (cohort property filters, cohort breakdowns).

Members are `CohortPeople` rows of the cohort's current `version`; a calculation inserts the
rows of a new version with one INSERT ... SELECT over persons (behavioral leaves read the
events of the person in their window) and then switches `version`, so readers never see a
half-written generation.
"""
import uuid
from datetime import datetime
from typing import Iterable, Optional

from dateutil.relativedelta import relativedelta
from rest_framework.exceptions import ValidationError
from sqlglot import exp

from cohorts.definition import BehavioralLeaf, CohortLeaf, Group, PersonLeaf, SUPPORTED_BEHAVIORAL_TYPES, parse_filters
from cohorts.models import Cohort, CohortPeople
from django.db import connection
from events.clickhouse import is_enabled as clickhouse_enabled
from events.clickhouse.mirror import mirror_cohort_generation
from events.models import Event, Person, PersonDistinctId

from .. import clock
from ..clock import team_timezone
from ..dates import parse_date
from ..schema import PropertyFilter
from .context import SQLContext
from .engine import Engine, Params, is_not_false, is_true, paren

MEMBERS_ALIAS = "cp"
COUNT_COMPARISONS = {None: exp.EQ, "eq": exp.EQ, "exact": exp.EQ, "gte": exp.GTE, "lte": exp.LTE, "gt": exp.GT, "lt": exp.LT}
# Bound parameters per statement when adding static members (SQLite allows 32766).
STATIC_CHUNK = 1000
MAX_ID = 2**63


def _column(model, field: str, table: Optional[str] = None) -> exp.Column:
    return exp.column(model._meta.get_field(field).column, table=table)


def _table(model, alias: Optional[str] = None) -> exp.Table:
    table = exp.to_table(model._meta.db_table)
    return table.as_(alias) if alias else table


# --- Reading membership -------------------------------------------------------------------------


def find_cohort(value, team) -> Cohort:
    """A live cohort of the team's project by id (PostHog's lookup), else 400."""
    try:
        cohort_id = int(value)
    except (TypeError, ValueError):
        cohort_id = None
    if cohort_id is None or not 0 < cohort_id < MAX_ID:
        raise ValidationError(f"Could not find cohort with ID {value}")
    cohort = Cohort.objects.filter(id=cohort_id, team__project_id=team.project_id, deleted=False).only("id", "version", "name").first()
    if cohort is None:
        raise ValidationError(f"Could not find cohort with ID {value}")
    return cohort


def cohort_by_reference(reference, team, *, by_name: bool):
    """The cohort of `IN COHORT <id>` or `IN COHORT 'name'` (a name must be unique), else SandboxError."""
    from .sandbox.values import SandboxError

    if not by_name:
        try:
            return find_cohort(reference, team)
        except ValidationError:
            raise SandboxError(f"Could not find cohort with ID {reference}") from None
    found = list(Cohort.objects.filter(name=reference, team__project_id=team.project_id, deleted=False).only("id", "version", "name")[:2])
    if not found:
        raise SandboxError(f"Could not find a cohort with the name {reference!r}")
    if len(found) > 1:
        raise SandboxError(f"Found multiple cohorts with name {reference!r}")
    return found[0]


def members_select(cohort: Cohort, params: Params) -> Optional[exp.Select]:
    """SELECT person_id of the cohort's current members; None before its first calculation."""
    if cohort.version is None:
        return None
    return (
        exp.select(_column(CohortPeople, "person", MEMBERS_ALIAS))
        .from_(_engine().cohort_people_source(MEMBERS_ALIAS))
        .where(exp.and_(
            exp.EQ(this=_column(CohortPeople, "cohort", MEMBERS_ALIAS), expression=params.add(cohort.id)),
            exp.EQ(this=_column(CohortPeople, "version", MEMBERS_ALIAS), expression=params.add(cohort.version)),
        ))
    )


def in_cohort(person: exp.Expression, cohort: Cohort, params: Params, *, negated: bool = False) -> exp.Expression:
    """`person IN COHORT` (NULL-safe): a personless event is in no cohort, so it passes `not_in`."""
    members = members_select(cohort, params)
    if members is None:
        return exp.true() if negated else exp.false()
    condition = exp.In(this=person, query=exp.Subquery(this=members))
    if negated:
        return is_not_false(exp.Not(this=condition))
    # Members are never NULL, so this is never NULL either; unlike `(... IN ...) IS TRUE`, the
    # databases can drive it from the cohort's members through the events' (team, person) index.
    return paren(exp.and_(exp.Not(this=exp.Is(this=person.copy(), expression=exp.null())), condition))


def cohort_property_condition(prop: PropertyFilter, context: SQLContext) -> exp.Expression:
    """A `{"type": "cohort", "key": "id", "value": <id>, "operator": "in"|"not_in"}` filter on events."""
    cohort = find_cohort(prop.value, context.team)
    operator = prop.operator.value if prop.operator is not None else "in"
    negated = operator == "not_in" or bool(getattr(prop, "negation", False))
    if operator not in ("in", "not_in", "exact"):
        raise ValidationError(f"Cohort filters take the operator 'in' or 'not_in', not {operator!r}.")
    return in_cohort(context.event_column("person"), cohort, context.params, negated=negated)


# --- Computing a dynamic cohort ---------------------------------------------------------------


class _PersonsContext(SQLContext):
    """Compiles a cohort's filters over the persons table (`p`); leaves referring to events use
    subqueries on `e` correlated by nothing but the person id."""

    def __init__(self, engine: Engine, team, params: Params, *, now: datetime, seen: frozenset = frozenset()):
        super().__init__(engine, team, params)
        self.now = now
        self.seen = seen


def filters_condition(filters: dict, context: _PersonsContext) -> Optional[exp.Expression]:
    """The condition on `p` (persons) of a cohort's filters; 400 when they are malformed."""
    try:
        tree = parse_filters(filters)
    except ValueError as error:
        raise ValidationError(str(error)) from None
    return _group_condition(tree.properties, context)


def _group_condition(group: Group, context: _PersonsContext) -> Optional[exp.Expression]:
    parts = []
    for value in group.values:
        part = _group_condition(value, context) if isinstance(value, Group) else _leaf_condition(value, context)
        if part is not None:
            parts.append(part)
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return paren(exp.and_(*parts) if group.type == "AND" else exp.or_(*parts))


def _leaf_condition(leaf, context: _PersonsContext) -> Optional[exp.Expression]:
    from .properties import property_condition  # properties dispatches cohort filters here

    person = context.person_column("id")
    if isinstance(leaf, PersonLeaf):
        condition = property_condition(leaf.property_filter(), context)
        if condition is None:
            return None
        return paren(exp.Not(this=condition)) if leaf.negation else condition
    if isinstance(leaf, CohortLeaf):
        if leaf.value in context.seen:
            raise ValidationError("Cohorts cannot reference other cohorts in a loop.")
        referenced = Cohort.objects.filter(id=leaf.value, team__project_id=context.team.project_id, deleted=False).first()
        if referenced is None:
            raise ValidationError("Invalid Cohort ID in filter")
        negated = bool(leaf.negation) or leaf.operator == "not_in"
        return in_cohort(person, referenced, context.params, negated=negated)
    return _behavioral_condition(leaf, person, context)


def _window_start(leaf: BehavioralLeaf, context: _PersonsContext) -> datetime:
    if leaf.explicit_datetime:
        moment, _relative, _hours = parse_date(leaf.explicit_datetime, team_timezone(context.team), context.now, truncate=False)
        return moment
    if leaf.time_value is None or leaf.time_interval is None:
        raise ValidationError(f"Behavioral filters ({leaf.value}) need time_value and time_interval, or explicit_datetime.")
    try:
        return context.now - relativedelta(**{f"{leaf.time_interval}s": leaf.time_value})
    except (OverflowError, ValueError):
        raise ValidationError(f"The time window of {leaf.time_value} {leaf.time_interval}s is too long.") from None


def _behavioral_condition(leaf: BehavioralLeaf, person: exp.Expression, context: _PersonsContext) -> exp.Expression:
    if leaf.value not in SUPPORTED_BEHAVIORAL_TYPES:
        raise ValidationError(f"Behavioral filters of type '{leaf.value}' are not supported.")
    if leaf.event_type != "events":
        raise ValidationError("Behavioral filters on actions are not supported; use an event.")
    from .properties import properties_condition

    params, engine = context.params, context.engine
    events = SQLContext(engine, context.team, params)
    ts = events.event_column("timestamp")
    event_person = events.event_column("person")
    start, now = _window_start(leaf, context), context.now
    conditions = [
        events.team_filter(),
        exp.EQ(this=events.event_column("event"), expression=params.add(str(leaf.key))),
        exp.Not(this=exp.Is(this=event_person, expression=exp.null())),
    ]
    in_window = [exp.GT(this=ts.copy(), expression=engine.timestamp(start, params)),
                 exp.LT(this=ts.copy(), expression=engine.timestamp(now, params))]
    if leaf.value != "performed_event_first_time":
        conditions += in_window
    # Person properties in event_filters are the event's person's, as PostHog reads them: persons are
    # joined inside the subquery (the same rows as the outer `p` for the persons IN keeps, and no
    # correlated subquery, which ClickHouse cannot run).
    filters = properties_condition(leaf.event_filters or [], events)
    if filters is not None:
        conditions.append(filters)
    select = exp.select(event_person.copy()).from_(events.events_table())
    if events.uses_person:
        select = select.join(events.person_table(), on=events.person_join_condition(), join_type="left")
    select = select.where(exp.and_(*conditions))
    if leaf.value == "performed_event_multiple":
        comparison = COUNT_COMPARISONS.get(leaf.operator, exp.GTE)
        select = select.group_by(event_person.copy()).having(
            comparison(this=exp.Count(this=exp.Star()), expression=params.add(leaf.operator_value or 0)))
    elif leaf.value == "performed_event_first_time":
        first = exp.Min(this=ts.copy())
        select = select.group_by(event_person.copy()).having(exp.and_(
            exp.GT(this=first, expression=engine.timestamp(start, params)),
            exp.LT(this=first.copy(), expression=engine.timestamp(now, params))))
    condition = exp.In(this=person.copy(), query=exp.Subquery(this=select))
    return is_not_false(exp.Not(this=condition)) if leaf.negation else is_true(condition)


def dynamic_members_insert(cohort: Cohort, version: int, engine: Engine, params: Params) -> exp.Insert:
    """INSERT INTO the membership table the persons matching the cohort's filters, as `version`."""
    context = _PersonsContext(engine, cohort.team, params, now=clock.now(), seen=frozenset({cohort.id}))
    condition = filters_condition(cohort.filters or {}, context)
    team_condition = exp.EQ(this=context.person_column("team"), expression=params.add(cohort.team_id))
    select = (
        exp.select(exp.alias_(params.add(cohort.id), "cohort_id"), exp.alias_(context.person_column("id"), "person_id"),
                   exp.alias_(params.add(version), "version"))
        .from_(context.person_table())
        .where(exp.and_(team_condition, condition) if condition is not None else team_condition)
    )
    return _insert(select)


def _insert(select: exp.Select) -> exp.Insert:
    columns = [_column(CohortPeople, name).name for name in ("cohort", "person", "version")]
    return exp.insert(select, CohortPeople._meta.db_table, columns=columns)


def check_filters(filters: dict, team, *, cohort_id: Optional[int] = None) -> None:
    """Compile a cohort's filters without running them: 400 for what the engine cannot compute."""
    context = _PersonsContext(_engine(), team, Params(), now=clock.now(), seen=frozenset({cohort_id}) if cohort_id else frozenset())
    filters_condition(filters, context)


def _engine() -> Engine:
    from .engine import get_engine

    return get_engine()


# --- Static members -----------------------------------------------------------------------------


def static_members_insert(cohort: Cohort, *, key: str, values: list, params: Params) -> exp.Insert:
    """INSERT the persons of the team whose `key` (distinct_id | uuid | email) is in `values` and
    who are not members yet (version 0 is a static cohort's only generation)."""
    if key == "distinct_id":
        source = _table(PersonDistinctId, "pd")
        person = _column(PersonDistinctId, "person", "pd")
        team = _column(PersonDistinctId, "team", "pd")
        matched = _column(PersonDistinctId, "distinct_id", "pd")
    else:
        source = _table(Person, "p")
        person = _column(Person, "id", "p")
        team = _column(Person, "team", "p")
        if key == "uuid":
            matched = _column(Person, "uuid", "p")
        else:
            matched = _engine().json_text(_column(Person, "properties", "p"), "email", params)
    existing = (
        exp.select(exp.Literal.number(1)).from_(_table(CohortPeople, MEMBERS_ALIAS))
        .where(exp.and_(
            exp.EQ(this=_column(CohortPeople, "cohort", MEMBERS_ALIAS), expression=params.add(cohort.id)),
            exp.EQ(this=_column(CohortPeople, "version", MEMBERS_ALIAS), expression=params.add(cohort.version or 0)),
            exp.EQ(this=_column(CohortPeople, "person", MEMBERS_ALIAS), expression=person.copy()),
        ))
    )
    select = (
        exp.select(exp.alias_(params.add(cohort.id), "cohort_id"), exp.alias_(person, "person_id"),
                   exp.alias_(params.add(cohort.version or 0), "version"))
        .from_(source)
        .where(exp.and_(
            exp.EQ(this=team, expression=params.add(cohort.team_id)),
            exp.In(this=matched, expressions=[params.add(value) for value in values]),
            exp.Not(this=exp.Exists(this=existing)),
        ))
    )
    select.set("distinct", exp.Distinct())
    return _insert(select)


def add_static_members(cohort: Cohort, *, key: str, values: Iterable) -> int:
    """Add the team's persons matched by `key` to a static cohort; how many were new."""
    from .engine import get_engine

    engine = get_engine(connection)  # persons and distinct ids are the Django database's
    values = list(dict.fromkeys(str(value) for value in values if value not in (None, "")))
    if key == "uuid":
        values = [engine.uuid_value(parsed) for parsed in map(parse_uuid, values) if parsed is not None]
    added = 0
    for start in range(0, len(values), STATIC_CHUNK):
        params = Params()
        added += engine.execute_write(static_members_insert(cohort, key=key, values=values[start:start + STATIC_CHUNK], params=params),
                                      params)
    if added and clickhouse_enabled():
        mirror_cohort_generation(cohort.id, cohort.version or 0)
    return added


def copy_members(source: Cohort, target: Cohort) -> int:
    """Insert the current members of `source` as members of the static cohort `target`."""
    params = Params()
    members = members_select(source, params)
    if members is None:
        return 0
    members.set("expressions", [exp.alias_(params.add(target.id), "cohort_id"), _column(CohortPeople, "person", MEMBERS_ALIAS),
                                exp.alias_(params.add(target.version or 0), "version")])
    return _engine().execute_write(_insert(members), params)


def parse_uuid(value) -> Optional[uuid.UUID]:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
