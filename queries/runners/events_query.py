"""EventsQuery (the `DataTableNode` event list): HogQL columns over the events table.

The query is assembled as a HogQL SELECT and compiled by the SQL insights sandbox, so it is
team-scoped and checked like any SQL insight. Two select items are special, as in PostHog:
`*` is the whole event as an object and `person` the event's person as an object. With an
aggregation among the columns, the other columns are grouped on; `where` items holding an
aggregation become HAVING conditions. Without `after`, only the last 24 hours are listed.
"""
import json
from datetime import datetime, timezone
from typing import Any, Optional

from rest_framework.exceptions import ValidationError
from sqlglot import exp

from ..dates import parse_date
from ..limit_context import LimitContext
from ..schema import EventsQuery, HogQLFilters
from ..sql.actions import action_condition
from ..sql.sandbox import AGGREGATES, SandboxError, clickhouse_type, compile_query, parse_expression
from .base import QueryRunner, register
from .hogql_query import run_sandboxed

DEFAULT_LIMIT = 100
DEFAULT_AFTER = "-24h"
# The columns behind the `*` and `person` select items, and the keys of the objects they become.
STAR_FIELDS = ["uuid", "event", "properties", "timestamp", "distinct_id", "created_at"]
PERSON_FIELDS = ["distinct_id", "person_id", "person.created_at", "person.properties"]
STAR_TYPE = "Tuple(UUID, String, String, DateTime64(6, 'UTC'), Int64, String, String, DateTime64(6, 'UTC'))"
PERSON_TYPE = "Tuple(String, UUID, DateTime64(6, 'UTC'), String)"


def has_aggregation(node: exp.Expression) -> bool:
    for item in node.walk():
        if isinstance(item, (exp.AnonymousAggFunc, exp.CombinedAggFunc, exp.ParameterizedAgg)):
            return True
        if isinstance(item, exp.Anonymous) and item.name.lower() in AGGREGATES:
            return True
    return False


def _parse_order(text: str) -> exp.Ordered:
    if not isinstance(text, str) or not text.strip():
        raise SandboxError("An empty orderBy item is not allowed.")
    descending = False
    stripped = text.strip()
    for suffix, desc in ((" DESC", True), (" ASC", False)):
        if stripped.upper().endswith(suffix):
            stripped, descending = stripped[: -len(suffix)], desc
            break
    return exp.Ordered(this=parse_expression(stripped), desc=descending, nulls_first=False)


@register
class EventsQueryRunner(QueryRunner):
    kind = "EventsQuery"
    query_model = EventsQuery

    def calculate(self) -> dict:
        query: EventsQuery = self.query
        if not query.select:
            raise ValidationError("An EventsQuery needs at least one column in `select`.")
        if query.limit is not None and query.limit < 0 or query.offset is not None and query.offset < 0:
            raise ValidationError("limit and offset must be 0 or more.")
        select, layout = self._select_items()
        node = self._select(select)
        compiled = compile_query(
            node, self.team, self.engine, now=self.now, tz=self.tz, filters=self._filters(),
            default_limit=self.limit_context.default_rows if self.limit_context is not LimitContext.QUERY else DEFAULT_LIMIT,
            limit=min(query.limit, self.limit_context.max_rows) if query.limit is not None else None,
            offset=query.offset or 0, max_limit=self.limit_context.max_rows, event_conditions=self._event_conditions(),
            events_time_range=self._time_range(),
        )
        body = run_sandboxed(self, compiled)
        kinds = compiled.value_types
        body["results"] = [[self._cell(row, kind, indexes) for kind, indexes in layout] for row in body["results"]]
        body["columns"] = list(query.select)
        body["types"] = [STAR_TYPE if kind == "*" else PERSON_TYPE if kind == "person" else clickhouse_type(kinds[indexes[0]], self.tz)
                         for kind, indexes in layout]
        return body

    # --- The HogQL query ---

    def _select_items(self) -> tuple[list[exp.Expression], list[tuple[str, list[int]]]]:
        items: list[exp.Expression] = []
        layout: list[tuple[str, list[int]]] = []
        for text in self.query.select:
            stripped = text.strip() if isinstance(text, str) else text
            if stripped in ("*", "person"):
                fields = STAR_FIELDS if stripped == "*" else PERSON_FIELDS
                layout.append((stripped, list(range(len(items), len(items) + len(fields)))))
                items.extend(parse_expression(name) for name in fields)
            else:
                layout.append(("column", [len(items)]))
                items.append(parse_expression(text))
        return items, layout

    def _select(self, items: list[exp.Expression]) -> exp.Select:
        query: EventsQuery = self.query
        node = exp.select(*items).from_("events")
        where, having = [], []
        for text in query.where or []:
            condition = parse_expression(text)
            (having if has_aggregation(condition) else where).append(condition)
        if query.properties or query.fixedProperties or query.filterTestAccounts or query.actionId is not None:
            where.append(exp.Placeholder(this="filters"))
        if query.event:
            where.append(exp.EQ(this=exp.column("event"), expression=exp.Literal.string(query.event)))
        if query.personId:
            where.append(exp.EQ(this=exp.column("person_id"), expression=exp.Literal.string(str(query.personId))))
        lower, upper = self._time_range()
        if lower is not None:
            where.append(exp.GT(this=exp.column("timestamp"), expression=exp.Literal.string(lower.isoformat())))
        if upper is not None:
            where.append(exp.LT(this=exp.column("timestamp"), expression=exp.Literal.string(upper.isoformat())))
        if where:
            node = node.where(*where)
        aggregated = [has_aggregation(item) for item in items]
        if any(aggregated):
            groups = [item.copy() for item, aggregate in zip(items, aggregated) if not aggregate]
            if groups:
                node = node.group_by(*(group.this if isinstance(group, exp.Alias) else group for group in groups))
        if having:
            node = node.having(*having)
        order = [_parse_order(text) for text in query.orderBy] if query.orderBy else self._default_order(items, aggregated)
        if order:
            node.set("order", exp.Order(expressions=order))
        return node

    def _default_order(self, items: list[exp.Expression], aggregated: list[bool]) -> list[exp.Ordered]:
        """PostHog's default: the first aggregation, else the newest events first (at the same
        timestamp, the last stored first: every engine's `created_at` follows the stored order)."""
        for item, aggregate in zip(items, aggregated):
            if aggregate:
                return [exp.Ordered(this=(item.this if isinstance(item, exp.Alias) else item).copy(), desc=True, nulls_first=False)]
        return [exp.Ordered(this=exp.column(name), desc=True, nulls_first=False) for name in ("timestamp", "created_at")]

    def _time_range(self) -> tuple[Optional[datetime], Optional[datetime]]:
        """(`after`, `before`) as absolute times, None when open (`after` defaults to the last 24 hours)."""
        after = self.query.after or DEFAULT_AFTER
        return (self._moment(after) if after != "all" else None, self._moment(self.query.before) if self.query.before else None)

    def _moment(self, value: str) -> datetime:
        """`after`/`before`: an ISO date or a relative one (-24h, -7d), as an absolute time."""
        moment, _relative, _hours = parse_date(str(value), self.tz, self.now, truncate=False)
        return moment

    def _event_conditions(self) -> list:
        """`actionId`: only the events the action matches (looked up across the project, as PostHog)."""
        if self.query.actionId is None:
            return []
        action = self.actions.get(self.query.actionId)
        if action is None:
            raise ValidationError("Action does not exist")
        if not action.steps:
            raise ValidationError("Action does not have any match groups")
        return [lambda context: action_condition(action, context)]

    def _filters(self) -> Optional[HogQLFilters]:
        query: EventsQuery = self.query
        properties = [*(query.properties or []), *(query.fixedProperties or [])]
        if not properties and not query.filterTestAccounts:
            return None
        return HogQLFilters(properties=properties, filterTestAccounts=query.filterTestAccounts)

    # --- Results ---

    def _cell(self, row: list, kind: str, indexes: list[int]) -> Any:
        if kind == "column":
            return row[indexes[0]]
        values = dict(zip(STAR_FIELDS if kind == "*" else PERSON_FIELDS, (row[index] for index in indexes)))
        if kind == "*":
            return {
                "uuid": values["uuid"],
                "event": values["event"],
                "properties": _json(values["properties"]),
                "timestamp": _utc(values["timestamp"]),
                "team_id": self.team.id,
                "distinct_id": values["distinct_id"],
                "elements_chain": "",
                "created_at": _utc(values["created_at"]),
            }
        properties = _json(values["person.properties"]) or {}
        return {
            "uuid": values["person_id"],
            "created_at": values["person.created_at"],
            "properties": {key: properties[key] for key in ("name", "email") if key in properties},
            "distinct_id": values["distinct_id"],
        }


def _json(text: Optional[str]) -> Any:
    return json.loads(text) if isinstance(text, str) else text


def _utc(text: Optional[str]) -> Optional[str]:
    """The event's own timestamps are reported in UTC (PostHog converts them for `*`)."""
    if text is None:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).isoformat()
    return value[:-6] + "Z"
