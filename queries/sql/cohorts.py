"""Cohorts in SQL: the membership of a dynamic cohort computed from its filters into the
membership table, static members added from distinct ids / person UUIDs / emails, and the
`IN COHORT` condition every insight uses (cohort property filters, cohort breakdowns).

Members are `CohortPeople` rows of the cohort's current `version`; a calculation inserts the
rows of a new version with one INSERT ... SELECT over persons (behavioral leaves read the
events of the person in their window) and then switches `version`, so readers never see a
half-written generation.
"""
import re
import uuid
from datetime import datetime
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Union

from rest_framework.exceptions import ValidationError
from sqlglot import exp

from cohorts.definition import CohortLeaf, Group, PersonLeaf, parse_filters
from cohorts.models import Cohort, CohortPeople
from django.db import connection
from events.clickhouse import is_enabled as clickhouse_enabled
from events.clickhouse.mirror import mirror_cohort_generation
from events.models import Event, Person, PersonDistinctId

from .. import clock, conf
from ..schema import PropertyFilter
from .behavioral import behavioral_condition
from .context import SQLContext
from .engine import Engine, Params, is_not_false, is_true, paren

MEMBERS_ALIAS = "cp"
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


# --- Cohort breakdowns --------------------------------------------------------------------------

ALL_USERS = "all"


@dataclass(frozen=True)
class CohortBreakdownValue:
    value: Union[int, str]  # cohort id, or "all"
    label: str

    def filters(self) -> list[PropertyFilter]:
        """The property filter restricting a query to the cohort (none for all users)."""
        return [] if self.value == ALL_USERS else [PropertyFilter(type="cohort", key="id", value=self.value, operator="in")]


def cohort_breakdown_values(breakdown_filter, team) -> Optional[list[CohortBreakdownValue]]:
    """The cohorts a query (trends, funnels, retention) is broken down by, in the order given; None
    without a cohort breakdown. `"all"` (or 0) is every user, labelled "all users"."""
    if breakdown_filter is None or breakdown_filter.breakdown_type != "cohort" or breakdown_filter.breakdowns:
        return None
    raw = breakdown_filter.breakdown
    items = raw if isinstance(raw, list) else [raw]
    if raw is None or not items:
        return None  # no cohort chosen yet: no breakdown
    values = []
    for item in items:
        if item in (ALL_USERS, 0, "0"):
            values.append(CohortBreakdownValue(ALL_USERS, "all users"))
            continue
        cohort = find_cohort(item, team)
        values.append(CohortBreakdownValue(cohort.id, cohort.name or f"Cohort {cohort.id}"))
    return values


# --- What a query references (for its cache key) ------------------------------------------------

COHORT_FILTER_TYPES = ("cohort", "static-cohort", "precalculated-cohort")
IN_COHORT = re.compile(r"\bIN\s+COHORT\b", re.IGNORECASE)


def query_cohort_ids(node: Any) -> tuple[set[int], bool]:
    """Ids of the cohorts a query (a model or its JSON) filters or breaks down by, and whether its
    SQL says `IN COHORT` (which may name a cohort: then any of the project's cohorts counts)."""
    found: set[int] = set()
    sql_in_cohort = False

    def add(value):
        if isinstance(value, bool):
            return
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            if 0 < int(value) < MAX_ID:
                found.add(int(value))

    def walk(value):
        nonlocal sql_in_cohort
        if isinstance(value, dict):
            if value.get("type") in COHORT_FILTER_TYPES and value.get("key", "id") == "id":
                add(value.get("value"))
            if value.get("breakdown_type") == "cohort":
                breakdown = value.get("breakdown")
                for item in breakdown if isinstance(breakdown, list) else [breakdown]:
                    add(item)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and IN_COHORT.search(value):
            sql_in_cohort = True

    walk(node.model_dump(mode="json") if hasattr(node, "model_dump") else node)
    return found, sql_in_cohort


def cohort_versions(team, query: Any) -> dict[str, str]:
    """What a query's cache key needs of its cohorts: each one's membership generation and last
    calculation (a static cohort keeps version 0 and changes its last calculation)."""
    ids, sql_in_cohort = query_cohort_ids(query)
    if not ids and not sql_in_cohort:
        return {}
    cohorts = Cohort.objects.filter(team__project_id=team.project_id)
    if not sql_in_cohort:
        cohorts = cohorts.filter(id__in=ids)
    return {str(pk): f"{version}@{last.isoformat() if last else None}"
            for pk, version, last in cohorts.order_by("id").values_list("id", "version", "last_calculation")}


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
    return behavioral_condition(leaf, person, context)


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


# --- Static members from a query ------------------------------------------------------------------

QUERY_MESSAGE = ("Static cohorts from a query take a HogQLQuery whose first column is a person id "
                 "(e.g. `select person_id from events where ...`).")


def _compiled_query(query: Any, team, engine: Engine):
    """The cohort's query compiled for `engine`, every row (no page limit); 400 when it is not a
    HogQLQuery selecting person ids first."""
    from .sandbox.statements import compile_query
    from .sandbox.values import MAX_LIMIT

    if not isinstance(query, dict) or query.get("kind") != "HogQLQuery" or not isinstance(query.get("query"), str):
        raise ValidationError(QUERY_MESSAGE)
    compiled = compile_query(query["query"], team, engine, now=clock.now(), tz=clock.team_timezone(team), default_limit=MAX_LIMIT)
    if not compiled.value_types or compiled.value_types[0] != "person":
        raise ValidationError(QUERY_MESSAGE)
    if compiled.paginated:
        compiled.tree.set("limit", None)  # the query's own LIMIT is kept; none means every row
    return compiled


def check_query(query: Any, team) -> None:
    """Compile a static cohort's query without running it: 400 for what cannot be imported."""
    _compiled_query(query, team, _engine())


def query_members_insert(cohort: Cohort, query: Any, engine: Engine) -> tuple[exp.Insert, Params]:
    """INSERT the persons of the query's first column that are not members yet, in one statement."""
    compiled = _compiled_query(query, cohort.team, engine)
    params = compiled.params
    person = exp.column(compiled.tree.named_selects[0], table="q")
    conditions = [exp.Not(this=exp.Is(this=person.copy(), expression=exp.null()))]
    members = members_select(cohort, params)
    if members is not None:
        conditions.append(exp.Not(this=exp.In(this=person.copy(), query=exp.Subquery(this=members))))
    select = (
        exp.select(exp.alias_(params.add(cohort.id), "cohort_id"), exp.alias_(person, "person_id"),
                   exp.alias_(params.add(cohort.version or 0), "version"))
        .from_(exp.Subquery(this=compiled.tree, alias=exp.TableAlias(this=exp.to_identifier("q"))))
        .where(exp.and_(*conditions))
    )
    select.set("distinct", exp.Distinct())
    return _insert(select), params


def add_query_members(cohort: Cohort, query: Any) -> int:
    """Add the persons a HogQL query selects to a static cohort (on ClickHouse the engine writes both
    databases); how many were new."""
    engine = _engine()
    statement, params = query_members_insert(cohort, query, engine)
    return engine.execute_write(statement, params, timeout=conf.query_timeout_seconds())  # inside the request
