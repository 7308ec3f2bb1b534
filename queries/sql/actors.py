"""Pieces shared by the actor-based insights (retention, lifecycle, stickiness, paths).

An actor is the event's person; a personless event (no person row) counts as the actor of its
distinct id, as PostHog gives such events a person id derived from the distinct id. Queries GROUP
BY the raw key (`actor_key`: the person id first, so PostgreSQL can read events in its index
order) and select it as two never-NULL columns (`actor_key_aliased`), so that joins on it stay
plain equalities (hash or merge joins on PostgreSQL, automatic indexes on SQLite).
"""
from typing import Any, Optional

from rest_framework.exceptions import ValidationError
from sqlglot import exp

from ..schema import ActionsNode, EventsNode
from .context import SQLContext
from .groups import group_key_condition
from .properties import and_all, properties_condition, test_account_filters

ACTOR_COLUMNS = ("actor_person", "actor_distinct_id")


def actor_key(context: SQLContext) -> list[exp.Expression]:
    """[person id, the distinct id of a personless event]: one NULL in each row, for GROUP BY
    ([the team, the group key] when the context aggregates by group)."""
    if context.aggregation_group_type_index is not None:
        return context.actor_key()
    person = context.event_column("person")
    return [person, exp.Case().when(exp.Is(this=person.copy(), expression=exp.null()), context.event_column("distinct_id"))]


def group_by_actor(context: SQLContext, select: exp.Select, group: list[exp.Expression]) -> exp.Expression:
    """`select` (of `events_select`) GROUP BY the raw actor key, then `group`; an engine may split
    the rows of persons from the personless ones (queries.sql.engine.Engine.group_by_actor)."""
    if context.aggregation_group_type_index is not None:
        return select.group_by(*actor_key(context), *group)
    return context.engine.group_by_actor(select, actor_key(context), group)


def actor_key_aliased(context: SQLContext) -> list[exp.Expression]:
    """The actor key as never-NULL columns `actor_person` (0 when personless) and `actor_distinct_id` ('' for persons)."""
    person, distinct_id = actor_key(context)
    return [exp.alias_(exp.Coalesce(this=person, expressions=[exp.Literal.number(0)]), ACTOR_COLUMNS[0]),
            exp.alias_(exp.Coalesce(this=distinct_id, expressions=[exp.Literal.string("")]), ACTOR_COLUMNS[1])]


def actor_join(left: str, right: str) -> exp.Expression:
    """Equality of the actor key columns of two tables (by alias)."""
    return exp.and_(*[exp.EQ(this=exp.column(name, table=left), expression=exp.column(name, table=right)) for name in ACTOR_COLUMNS])


def query_conditions(query, team, context: SQLContext) -> list[exp.Expression]:
    """Team scope, the query's `properties` and, with `filterTestAccounts`, the team's test-account filters."""
    conditions = [context.team_filter(), properties_condition(query.properties, context)]
    if context.aggregation_group_type_index is not None:
        conditions.append(group_key_condition(context, context.aggregation_group_type_index))
    if query.filterTestAccounts:
        conditions.append(properties_condition(test_account_filters(team), context))
    return [condition for condition in conditions if condition is not None]


def entity_condition(event: Optional[str], properties: Any, context: SQLContext) -> Optional[exp.Expression]:
    """Event name (None: all events) AND the entity's own property filters."""
    parts = []
    if event is not None:
        parts.append(exp.EQ(this=context.event_column("event"), expression=context.param(event)))
    parts.append(properties_condition(properties, context))
    return and_all([part for part in parts if part is not None])


def events_select(context: SQLContext, columns: list[exp.Expression], conditions: list[exp.Expression]) -> exp.Select:
    """SELECT columns FROM events [LEFT JOIN persons when a person field is used] WHERE conditions.

    Build `columns` and `conditions` first: compiling them is what tells whether persons are needed.
    """
    select = exp.select(*columns).from_(context.events_table())
    if context.uses_person:
        select = select.join(context.person_table(), on=context.person_join_condition(), join_type="left")
    condition = and_all(conditions)
    return select.where(condition) if condition is not None else select


def with_ctes(select: exp.Select, ctes: list[tuple[str, exp.Expression]]) -> exp.Select:
    if ctes:
        select.set("with_", exp.With(expressions=[exp.CTE(this=body, alias=exp.TableAlias(this=exp.to_identifier(name)))
                                                   for name, body in ctes]))
    return select


def events_series(series: list, kind: str) -> list[EventsNode]:
    """The query's series, EventsNode or ActionsNode (data warehouse tables have no store here)."""
    if not series:
        raise ValidationError(f"A {kind} needs at least one series.")
    for node in series:
        if not isinstance(node, (EventsNode, ActionsNode)):
            raise ValidationError(f"{node.kind} series are not supported; use EventsNode or ActionsNode.")
    return list(series)


def reject_group_aggregation(query) -> None:
    """Paths follow persons: PostHog's paths runner ignores the field, so there is no group path to compute."""
    if getattr(query, "aggregation_group_type_index", None) is not None:
        raise ValidationError("Paths cannot be aggregated by groups (aggregation_group_type_index): paths follow persons.")
