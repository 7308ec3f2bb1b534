"""Groups in queries: `$group_<index>` of an event, group properties, and groups as actors.

Events keep the groups they belong to as `properties.$groups = {"<group type>": "<key>"}`; the
group key of type index N is resolved at query time through the project's GroupTypeMapping (one
lookup per query). Group properties are read by joining the groups table on that key
(queries.sql.joined_events). An index without a mapping resolves to no key: nothing matches.
"""
from typing import Optional

from rest_framework.exceptions import ValidationError
from sqlglot import exp

from groups.models import MAX_GROUP_TYPES_PER_PROJECT, GroupTypeMapping

from .context import EVENT_ALIAS, SQLContext
from .engine.base import cast

GROUP_COLUMN = "group_{}_properties"


def _valid_index(index) -> int:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_GROUP_TYPES_PER_PROJECT:
        raise ValidationError(f"Invalid group type index: {index!r} (0 to {MAX_GROUP_TYPES_PER_PROJECT - 1}).")
    return index


def group_type_names(context: SQLContext) -> dict[int, str]:
    """The project's group types by index, looked up once per team object (a request's, a job's)
    so that a query of many series or periods reads them once."""
    team = context.team
    names = getattr(team, "_group_type_names", None)
    if names is None:
        names = dict(GroupTypeMapping.objects.filter(project_id=team.project_id).values_list("group_type_index", "group_type"))
        team._group_type_names = names
    return names


def group_key(context: SQLContext, index: int, *, table: str = EVENT_ALIAS) -> exp.Expression:
    """`$group_<index>` of an event as text (NULL when the event is not in a group of that type)."""
    name = group_type_names(context).get(_valid_index(index))
    if name is None:
        return cast(exp.null(), "text")
    engine, params = context.engine, context.params
    properties = exp.column("properties", table=table)
    return exp.Nullif(this=engine.json_text(engine.json_object(properties, "$groups", params), name, params),
                      expression=exp.Literal.string(""))


def group_key_condition(context: SQLContext, index: int) -> exp.Expression:
    """The event belongs to a group of that type (PostHog excludes `$group_N = ''`)."""
    return exp.Not(this=exp.Is(this=group_key(context, index), expression=exp.null()))


# --- Groups as actors ------------------------------------------------------------------------------


def aggregate_by_group(context: SQLContext, index: Optional[int]) -> list[exp.Expression]:
    """Make the context count groups of `index` instead of persons; returns the events condition it needs."""
    if index is None:
        return []
    context.aggregation_group_type_index = _valid_index(index)
    return [group_key_condition(context, index)]


def group_actor_key(context: SQLContext) -> list[exp.Expression]:
    """[a constant person slot (the team), the group key]: the two-part actor key of person queries."""
    return [context.event_column("team"), group_key(context, context.aggregation_group_type_index)]


def count_groups(context: SQLContext) -> exp.Expression:
    return exp.Count(this=exp.Distinct(expressions=[group_key(context, context.aggregation_group_type_index)]))


# --- Group properties ---------------------------------------------------------------------------------


def group_properties(context: SQLContext, index: int) -> exp.Column:
    """The properties of the event's group of that type (NULL without one), from the joined events table
    (or, in SQL insights' {filters}, the sandbox's events table)."""
    return context.group_properties_column(_valid_index(index))


def group_property(context: SQLContext, index: int, key: str) -> exp.Expression:
    return context.engine.json_text(group_properties(context, index), key, context.params)


def group_join(context: SQLContext, index: int, alias: str, *, team: exp.Expression,
               events_table: str = EVENT_ALIAS) -> tuple[exp.Expression, exp.Expression]:
    """(groups table as `alias`, condition) joining each event of `events_table` to its group of that type."""
    condition = exp.and_(
        exp.EQ(this=exp.column("team_id", table=alias), expression=team),
        exp.EQ(this=exp.column("group_type_index", table=alias), expression=exp.Literal.number(index)),
        exp.EQ(this=exp.column("group_key", table=alias), expression=group_key(context, index, table=events_table)),
    )
    return context.engine.groups_source(context.team.id, alias), condition


def group_joins(context: SQLContext) -> list[tuple[exp.Expression, exp.Expression, exp.Expression]]:
    """(column, table, join condition) per group type whose properties are read."""
    joins = []
    for index in sorted(context.group_property_indexes):
        alias = f"g{index}"
        table, condition = group_join(context, index, alias, team=context.event_column("team"))
        joins.append((exp.alias_(exp.column("group_properties", table=alias), GROUP_COLUMN.format(index)), table, condition))
    return joins


def _index_of(value, what: str) -> int:
    if value is None:
        raise ValidationError(f"group_type_index missing from params ({what}).")
    return _valid_index(value)


class GroupPropertyField:
    """A `type: group` property filter's field: its text, number and timestamp forms."""

    def __init__(self, context: SQLContext, prop):
        self.context = context
        self.index = _index_of(getattr(prop, "group_type_index", None), "a group property filter needs group_type_index")
        self.key = prop.key
        self.text = group_property(context, self.index, prop.key)

    def number(self) -> exp.Expression:
        return self.context.engine.json_number(group_properties(self.context, self.index), self.key, self.context.params)

    def timestamp(self) -> exp.Expression:
        return self.context.engine.text_to_timestamp(self.text.copy(), self.context.params)


def group_breakdown_value(context: SQLContext, index, key: str) -> exp.Expression:
    return group_property(context, _index_of(index, "a group breakdown needs breakdown_group_type_index"), key)


# --- Related actors (the groups API's `related`) ------------------------------------------------------


def related_actors(team, *, group_type_index: Optional[int], person_id: Optional[int], group_key_value: Optional[str],
                   since, until) -> tuple[list[int], list[tuple[int, str]]]:
    """Actors sharing events with one actor in (since, until): ([person ids], [(group type index, group key)]).

    The actor is the group `group_key_value` of `group_type_index`, or (index None) the person `person_id`.
    Persons are returned for a group only, and groups of the project's other types only, as PostHog does.
    """
    from .engine import Params, get_engine

    engine = get_engine()
    context = SQLContext(engine, team, Params())
    timestamp = context.event_column("timestamp")
    conditions = [
        context.team_filter(),
        exp.GT(this=timestamp, expression=engine.timestamp(since, context.params)),
        exp.LT(this=timestamp.copy(), expression=engine.timestamp(until, context.params)),
    ]
    if group_type_index is not None:
        conditions.append(exp.EQ(this=group_key(context, group_type_index), expression=context.param(group_key_value)))
    else:
        conditions.append(exp.EQ(this=context.event_column("person"), expression=context.param(person_id)))
    where = exp.and_(*conditions)
    branches = []
    if group_type_index is not None:
        person = context.event_column("person")
        branches.append(exp.select(exp.alias_(exp.Literal.number(-1), "idx"), exp.alias_(engine.to_text(person), "actor"))
                        .from_(context.events_table()).where(exp.and_(where.copy(), exp.Not(this=exp.Is(this=person.copy(), expression=exp.null())))))
    for index in sorted(group_type_names(context)):
        if index == group_type_index:
            continue
        key = group_key(context, index)
        branches.append(exp.select(exp.alias_(exp.Literal.number(index), "idx"), exp.alias_(key, "actor"))
                        .from_(context.events_table()).where(exp.and_(where.copy(), exp.Not(this=exp.Is(this=key.copy(), expression=exp.null())))))
    if not branches:
        return [], []
    union = branches[0]
    for branch in branches[1:]:
        union = exp.union(union, branch, distinct=False)
    select = exp.select("idx", "actor").from_(exp.Subquery(this=union, alias=exp.TableAlias(this=exp.to_identifier("related")))).distinct()
    rows = engine.execute(select, context.params)
    persons = sorted(int(actor) for index, actor in rows if int(index) == -1)
    groups = sorted((int(index), str(actor)) for index, actor in rows if int(index) != -1)
    return persons, groups
