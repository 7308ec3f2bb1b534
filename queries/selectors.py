"""Reads of stored events for callers outside the engine, so that no product app queries them itself."""
import json
from types import SimpleNamespace
from typing import Optional

from sqlglot import exp

from .sql.context import SQLContext
from .sql.engine import get_engine


def recent_event_properties(team_id: int, *, event: Optional[str] = None, limit: int) -> list:
    """The `properties` of the team's `limit` most recent events (of `event` when given), newest first."""
    # Through the engine: on ClickHouse the events are not in the Django database.
    engine = get_engine()
    context = SQLContext(engine, SimpleNamespace(id=team_id))
    conditions = [context.team_filter()]
    if event is not None:
        conditions.append(exp.EQ(this=context.event_column("event"), expression=context.param(event)))
    select = (exp.select(context.event_column("properties")).from_(context.events_table()).where(exp.and_(*conditions))
              .order_by(exp.Ordered(this=context.event_column("timestamp"), desc=True)).limit(int(limit)))
    return [json.loads(value) if isinstance(value, str) else value for (value,) in engine.execute(select, context.params)]
