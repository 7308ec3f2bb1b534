"""The events table with the session and group columns a query reads, as one derived table.

`SQLContext.events_table()` returns this when session fields or group properties were used, so every
runner that reads events gets them without a join of its own. The derived table keeps the events
alias and every events column (`e.*`), adding `session_<column>` and `group_<index>_properties`:

    (SELECT e.*, s.duration AS session_duration, g0.group_properties AS group_0_properties
     FROM events AS e LEFT JOIN (<sessions>) AS s ON s.session_id = e.session_id
     LEFT JOIN groups AS g0 ON g0.team_id = e.team_id AND g0.group_type_index = 0 AND g0.group_key = <$group_0>) AS e

Both databases flatten it into the outer query, so the outer filters still use the events indexes.
"""
from sqlglot import exp

from .context import EVENT_ALIAS, SQLContext
from .groups import group_joins
from .sessions import SESSIONS_ALIAS, session_columns, session_join_condition, sessions_select, used_columns


def joined_events_table(context: SQLContext) -> exp.Subquery:
    select = exp.select(exp.Column(this=exp.Star(), table=exp.to_identifier(EVENT_ALIAS))).from_(
        context.engine.events_source(context.team.id, EVENT_ALIAS))
    if context.session_fields:
        sessions = exp.Subquery(this=sessions_select(context, used_columns(context)), alias=exp.TableAlias(this=exp.to_identifier(SESSIONS_ALIAS)))
        select = select.select(*session_columns(context)).join(sessions, on=session_join_condition(context), join_type="left")
    for column, table, condition in group_joins(context):
        select = select.select(column).join(table, on=condition, join_type="left")
    return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(EVENT_ALIAS)))
