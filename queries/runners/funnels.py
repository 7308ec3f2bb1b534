"""FunnelsQuery: how many actors reach each step, in order, within the conversion window.

Three visualisations share one per-actor computation (queries.sql.funnels): `steps` (step counts and
conversion times, optionally per breakdown value), `time_to_convert` (a histogram of conversion
times between two steps) and `trends` (conversion rate per entrance period). Everything is computed
by one SQL statement; Python only shapes the aggregated rows into PostHog's result objects.
"""
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from rest_framework.exceptions import ValidationError
from sqlglot import exp

from ..dates import QueryDateRange, to_utc
from ..schema import (
    ActionsNode,
    BreakdownFilter,
    DataWarehouseNode,
    EventsNode,
    FunnelExclusionEventsNode,
    FunnelsFilter,
    FunnelsQuery,
)
from ..sql.actions import entity_condition, entity_event_names
from ..sql.context import EVENT_FIELDS, SQLContext
from ..sql.engine import Params, case, paren
from ..sql.funnels import MICROSECONDS, Exclusion, FunnelPlan, FunnelSQL
from ..sql.groups import aggregate_by_group, group_breakdown_value, group_key
from ..sql.sessions import session_text
from ..sql.hogql import BOOL, STRING, compile_expression
from ..sql.properties import and_all, properties_condition, test_account_filters
from .base import QueryRunner, register, response_value

MAX_FUNNEL_STEPS = 20
DEFAULT_BREAKDOWN_LIMIT = 25
# Breakdown types without an "other" bucket return at most this many groups (PostHog's default row limit).
UNGROUPED_BREAKDOWN_ROWS = 100
OTHER = "Other"
WINDOW_UNITS = {
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=31),
}
BOXED_BREAKDOWN_TYPES = ("event", "person", "event_metadata", "hogql", "session", "group")
OTHER_BREAKDOWN_TYPES = ("event", "person", "group")
MAX_CUSTOM_BINS = 90
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _epoch_us(value: datetime) -> int:
    return (to_utc(value) - EPOCH) // timedelta(microseconds=1)


@register
class FunnelsQueryRunner(QueryRunner):
    kind = "FunnelsQuery"
    query_model = FunnelsQuery

    def __init__(self, query: FunnelsQuery, team, **kwargs):
        super().__init__(query, team, **kwargs)
        self.query: FunnelsQuery
        self.filter = query.funnelsFilter or FunnelsFilter()
        self.order = self.filter.funnelOrderType or "ordered"
        self.viz = self.filter.funnelVizType or "steps"
        self.breakdown_filter = query.breakdownFilter or BreakdownFilter()
        self.breakdowns = self._breakdowns()
        self._validate()
        self.date_range = QueryDateRange(
            query.dateRange, tz=self.tz, interval=query.interval.value if query.interval else "day", now=self.now,
            week_start_day=self.week_start_day, earliest=self.earliest_event,
        )

    # --- Validation ----------------------------------------------------------------------------

    def _breakdowns(self) -> list[tuple[str, str, bool, Optional[int]]]:
        """(type, property, normalize_url, group type index) per breakdown; a string breakdown counts as a list of one."""
        bf = self.breakdown_filter
        if bf.breakdowns:
            items = [(item.type or "event", item.property, bool(item.normalize_url), item.group_type_index) for item in bf.breakdowns]
        elif bf.breakdown is None or bf.breakdown == []:
            return []
        else:
            kind = bf.breakdown_type or "event"
            values = bf.breakdown if isinstance(bf.breakdown, list) else [bf.breakdown]
            items = [(kind, value, bool(bf.breakdown_normalize_url), bf.breakdown_group_type_index) for value in values]
        for kind, prop, _, _ in items:
            if kind not in BOXED_BREAKDOWN_TYPES:
                raise ValidationError(f"Breakdowns of type '{kind}' are not supported in funnels.")
            if not isinstance(prop, str) or not prop:
                raise ValidationError(f"Invalid breakdown property: {prop!r}")
            if kind == "event_metadata" and (prop not in EVENT_FIELDS or prop == "properties"):
                raise ValidationError(f"Unknown event metadata field: {prop!r}")
        return items

    def _validate(self) -> None:
        query, ff = self.query, self.filter
        steps = query.series
        if not steps:
            raise ValidationError("A funnel needs at least one step.")
        if len(steps) > MAX_FUNNEL_STEPS:
            raise ValidationError(f"A funnel can have at most {MAX_FUNNEL_STEPS} steps.")
        for step in steps:
            if isinstance(step, DataWarehouseNode):
                raise ValidationError("Data warehouse tables are not supported in funnels just yet. "
                                      "For now, please try this funnel without the data warehouse-based step.")
            if not isinstance(step, (EventsNode, ActionsNode)):
                raise ValidationError(f"{step.kind} steps are not supported; use EventsNode or ActionsNode.")
            if step.math in ("first_time_for_user", "first_matching_event_for_user"):
                raise ValidationError(f"Math '{step.math}' is not supported in funnels.")
        self._validate_optional_steps()
        last = len(steps) - 1
        if ff.funnelFromStep is not None and not 0 <= ff.funnelFromStep <= last - 1:
            raise ValidationError(f"funnelFromStep is out of bounds. It must be between 0 and {last - 1}.")
        if ff.funnelToStep is not None:
            if not 1 <= ff.funnelToStep <= last:
                raise ValidationError(f"funnelToStep is out of bounds. It must be between 1 and {last}.")
            if ff.funnelFromStep is not None and ff.funnelFromStep >= ff.funnelToStep:
                raise ValidationError("Funnel step range is invalid. funnelToStep should be greater than funnelFromStep.")
        for node in [*steps, *(ff.exclusions or [])]:
            if isinstance(node, ActionsNode):
                self.actions.require(node.id)  # PostHog: "Action ID <id> does not exist!"
        for exclusion in ff.exclusions or []:
            if exclusion.funnelFromStep >= exclusion.funnelToStep:
                raise ValidationError("Exclusion event range is invalid. End of range should be greater than start.")
            if exclusion.funnelFromStep >= last:
                raise ValidationError("Exclusion event range is invalid. Start of range is greater than number of steps.")
            if exclusion.funnelToStep > last:
                raise ValidationError("Exclusion event range is invalid. End of range is greater than number of steps.")
            for step in steps[exclusion.funnelFromStep: exclusion.funnelToStep + 1]:
                if _matches_all_of(exclusion, step):
                    raise ValidationError("Exclusion steps cannot contain an event that's part of funnel steps.")
            if self.order == "unordered" and (exclusion.funnelFromStep != 0 or exclusion.funnelToStep != last):
                raise ValidationError("Partial Exclusions not allowed in unordered funnels")
        if self.breakdowns and ff.breakdownAttributionType == "step":
            value = ff.breakdownAttributionValue or 0
            if self.order == "unordered" and value != 0:
                raise ValidationError("Only the first step can be used for breakdown attribution in unordered funnels")
            if not 0 <= value <= last:
                raise ValidationError(f"breakdownAttributionValue must be between 0 and {last}.")
        if self.viz == "trends" and self.order == "unordered":
            raise ValidationError("Funnel trends are not supported for unordered funnels.")
        if self.viz == "time_to_convert":
            to_step = ff.funnelToStep if ff.funnelToStep is not None else last
            if not 0 < to_step <= last:
                raise ValidationError(f"Filter parameter funnel_to_step can only be one of "
                                      f"{', '.join(map(str, range(1, len(steps))))} for time to convert!")
        if ff.funnelWindowInterval is not None and ff.funnelWindowInterval < 0:
            raise ValidationError("funnelWindowInterval must not be negative.")

    def _validate_optional_steps(self) -> None:
        steps = self.query.series
        if not any(step.optionalInFunnel for step in steps):
            return
        if self.viz != "steps" or self.order == "unordered":
            raise ValidationError('Optional funnel steps are only supported in funnels with step order Sequential or Strict '
                                  'and the graph type "Conversion Steps".')
        if steps[0].optionalInFunnel:
            raise ValidationError("The first step of a funnel cannot be optional.")
        for step, following in zip(steps, steps[1:]):
            # The next required step matches every event of the optional one: the optional step would never convert.
            if step.optionalInFunnel and not following.optionalInFunnel and _matches_all_of(following, step):
                raise ValidationError("An optional step cannot be the same as the following required step.")

    # --- Freshness -----------------------------------------------------------------------------

    def covered_range(self) -> Optional[tuple[datetime, datetime, str]]:
        return self.date_range.date_from(), self.date_range.date_to(), self.date_range.interval

    # --- Calculation ---------------------------------------------------------------------------

    @property
    def from_step(self) -> int:
        return self.filter.funnelFromStep or 0

    @property
    def to_step(self) -> int:
        return self.filter.funnelToStep if self.filter.funnelToStep is not None else len(self.query.series) - 1

    def calculate(self) -> dict:
        if self.viz == "time_to_convert":
            results = self._time_to_convert()
        elif self.viz == "trends":
            results = self._trends()
        else:
            results = self._steps()
        return {
            "results": results,
            "hogql": ";\n\n".join(self.executed_sql),
            "modifiers": self.query.modifiers or {},
            "error": None,
            "resolved_date_range": response_value(self.date_range.resolved()),
        }

    def _run(self, build) -> list[tuple]:
        context = SQLContext(self.engine, self.team, Params())
        tree = build(self._plan(context))
        return self.run_sql(tree, context.params)

    def _steps(self) -> Any:
        breakdown_types = {kind for kind, _, _, _ in self.breakdowns}
        other = bool(self.breakdowns) and breakdown_types <= set(OTHER_BREAKDOWN_TYPES)
        limit = (self.breakdown_filter.breakdown_limit or DEFAULT_BREAKDOWN_LIMIT) if other else UNGROUPED_BREAKDOWN_ROWS
        rows = self._run(lambda plan: FunnelSQL(plan).steps(limit if self.breakdowns else None, other))
        width = len(self.breakdowns) + 1 if self.breakdowns else 0
        groups: dict[tuple, dict[int, tuple]] = {}
        for row in rows:
            groups.setdefault(tuple(row[:width]), {})[int(row[width])] = row[width + 1:]
        if not self.breakdowns:
            return self._step_objects(groups.get((), {}), None) if groups else []

        def rank(item):
            key, steps = item
            counts = [-int(steps[k][0]) if k in steps else 0 for k in reversed(range(len(self.query.series)))]
            return counts, int(key[-1]), [str(v).encode() for v in key[:-1]]

        results = []
        for key, steps in sorted(groups.items(), key=rank):
            value = [OTHER] if key[-1] else [str(v) for v in key[:-1]]
            results.append(self._step_objects(steps, value))
        return results

    def _step_objects(self, steps: dict[int, tuple], breakdown_value: Optional[list]) -> list[dict]:
        objects = []
        for index, series in enumerate(self.query.series):
            actors, delay_sum, delay_count, median_sum, median_count = steps.get(index, (0, None, 0, None, 0))
            is_action = isinstance(series, ActionsNode)
            if self.order == "unordered":
                item = {"action_id": None, "name": f"Completed {index + 1} step{'s' if index else ''}", "custom_name": None}
            elif is_action:
                item = {"action_id": series.id, "name": self.actions.require(series.id).name, "custom_name": series.custom_name}
            else:
                item = {"action_id": series.event, "name": series.event, "custom_name": series.custom_name}
            item.update({"order": index, "people": [], "count": int(actors or 0), "type": "actions" if is_action else "events"})
            if index == 0:
                item.update({"average_conversion_time": None, "median_conversion_time": None})
            else:
                item["average_conversion_time"] = _seconds(delay_sum, delay_count)
                item["median_conversion_time"] = _seconds(median_sum, median_count)
            if breakdown_value is not None:
                item["breakdown"] = breakdown_value
                item["breakdown_value"] = breakdown_value
            objects.append(item)
        return objects

    def _time_to_convert(self) -> dict:
        bin_count = self.filter.binCount
        if bin_count is not None:
            bin_count = min(max(bin_count, 1), MAX_CUSTOM_BINS)
        rows = self._run(lambda plan: FunnelSQL(plan, with_breakdown=False).time_to_convert(self.from_step, self.to_step, bin_count))
        stats = next(row for row in rows if row[0] == -1)
        bins, lowest, width, conversions, total = (int(stats[1]), int(stats[2]), int(stats[3]), int(stats[4]), stats[5])
        counts = {int(row[0]): int(row[1]) for row in rows if row[0] != -1}
        return {
            "average_conversion_time": _seconds(total, conversions),
            "bins": [[lowest + index * width, counts.get(index, 0)] for index in range(bins + 1)],
        }

    def _trends(self) -> list[dict]:
        buckets = self.date_range.buckets
        periods = [(index, _epoch_us(bucket.lo), _epoch_us(bucket.hi)) for index, bucket in enumerate(buckets)]
        rows = self._run(lambda plan: FunnelSQL(plan, entrance_periods=periods).trends(self.from_step, self.to_step))
        width = len(self.breakdowns)
        series: dict[tuple, dict[int, tuple[int, int]]] = {}
        for row in rows:
            series.setdefault(tuple(str(v) for v in row[:width]), {})[int(row[width])] = (int(row[width + 1]), int(row[width + 2]))
        if not self.breakdowns:
            return [self._trend_object(series.get((), {}))]
        limit = self.breakdown_filter.breakdown_limit or DEFAULT_BREAKDOWN_LIMIT
        # The top values by people who entered (ties: greater value first), shown in value order.
        top = sorted(series.items(), key=lambda item: ([v.encode() for v in item[0]]), reverse=True)
        top = sorted(top, key=lambda item: -sum(entered for entered, _ in item[1].values()))[:limit]
        return [{**self._trend_object(data), "breakdown_value": list(key)} for key, data in sorted(top, key=lambda item: list(item[0]))]

    def _trend_object(self, data: dict[int, tuple[int, int]]) -> dict:
        rates, days, labels = [], [], []
        hourly = self.date_range.interval == "hour"
        for index, bucket in enumerate(self.date_range.buckets):
            entered, converted = data.get(index, (0, 0))
            rates.append(round(converted / entered * 100, 2) if entered else 0)
            days.append(bucket.start.strftime("%Y-%m-%d %H:%M:%S" if hourly else "%Y-%m-%d"))
            labels.append(self.date_range.label(bucket.start))
        return {"count": len(rates), "data": rates, "days": days, "labels": labels}

    # --- SQL plan ------------------------------------------------------------------------------

    def _plan(self, context: SQLContext) -> FunnelPlan:
        query, ff = self.query, self.filter
        engine, params = context.engine, context.params
        timestamp = context.event_column("timestamp")
        exclusions = list(ff.exclusions or [])
        context.events_time_range = (self.date_range.date_from(), self.date_range.date_to())
        where = [
            context.team_filter(),
            exp.GTE(this=timestamp, expression=engine.timestamp(self.date_range.date_from(), params)),
            exp.LTE(this=timestamp.copy(), expression=engine.timestamp(self.date_range.date_to(), params)),
        ]
        names: set = set()
        for node in [*query.series, *exclusions]:
            events = entity_event_names(node, self.actions)
            names |= {None} if events is None else events
        if self.order != "strict" and None not in names:
            where.append(exp.In(this=context.event_column("event"), expressions=[context.param(name) for name in sorted(names)]))
        # Without per-step filters, the event names alone select the funnel's events (better estimates).
        selects_steps = self.order != "strict" and not any(
            node.properties or isinstance(node, ActionsNode) for node in [*query.series, *exclusions])
        where.append(properties_condition(query.properties, context))
        if query.filterTestAccounts:
            where.append(properties_condition(test_account_filters(self.team), context))
        actor = self._actor(context, where)
        unit = WINDOW_UNITS[ff.funnelWindowIntervalUnit or "day"]
        window = (ff.funnelWindowInterval if ff.funnelWindowInterval is not None else 14) * unit
        attribution = ff.breakdownAttributionType or "first_touch"
        return FunnelPlan(
            context=context,
            where=and_all(where),
            actor=actor,
            steps=[self._entity(node, context) for node in query.series],
            window_us=window // timedelta(microseconds=1),
            order=self.order,
            exclusions=[Exclusion(self._entity(node, context), node.funnelFromStep, node.funnelToStep) for node in exclusions],
            breakdown=[self._breakdown(item, context) for item in self.breakdowns],
            attribution=attribution,
            attribution_step=ff.breakdownAttributionValue or 0,
            step_groups=self._step_groups(),
            where_selects_steps=selects_steps,
            optional=[index for index, node in enumerate(query.series) if node.optionalInFunnel],
        )

    def _actor(self, context: SQLContext, where: list) -> list[exp.Expression]:
        """The actor: the person, or for personless events the distinct id; or a HogQL value."""
        if self.query.aggregation_group_type_index is not None:
            # Groups as actors: events outside a group of that type are left out.
            where.extend(aggregate_by_group(context, self.query.aggregation_group_type_index))
            return [group_key(context, self.query.aggregation_group_type_index)]
        expression = self.filter.funnelAggregateByHogQL
        if expression and expression.strip() not in ("person_id", "person.id"):
            value = _as_text(compile_expression(expression, context), context)
            where.append(exp.Not(this=exp.Is(this=value.copy(), expression=exp.null())))
            where.append(exp.NEQ(this=value.copy(), expression=exp.Literal.string("")))
            return [value]
        person, distinct_id = context.event_column("person"), context.event_column("distinct_id")
        return context.engine.actor_columns(person, distinct_id)

    def _entity(self, node: EventsNode, context: SQLContext) -> exp.Expression:
        conditions = [entity_condition(node, context, self.actions)]
        conditions.append(properties_condition(node.properties, context))
        return and_all(conditions) or exp.true()

    @staticmethod
    def _breakdown(item: tuple[str, str, bool, Optional[int]], context: SQLContext) -> exp.Expression:
        """The breakdown value as text, '' when missing (PostHog's ifNull(toString(value), ''))."""
        kind, prop, normalize, group_index = item
        if kind == "event":
            value = context.event_property(prop)
        elif kind == "person":
            value = context.person_property(prop)
        elif kind == "event_metadata":
            value = context.engine.to_text(context.event_column(EVENT_FIELDS[prop]))
        elif kind == "session":
            value = session_text(context, prop)
        elif kind == "group":
            value = group_breakdown_value(context, group_index, prop)
        else:
            value = _as_text(compile_expression(prop, context), context)
        value = exp.Coalesce(this=value, expressions=[exp.Literal.string("")])
        if normalize and kind == "event":
            trimmed = exp.Anonymous(this="RTRIM", expressions=[value, exp.Literal.string("/?#")])
            value = exp.Coalesce(this=exp.Nullif(this=trimmed, expression=exp.Literal.string("")), expressions=[exp.Literal.string("/")])
        return value

    def _step_groups(self) -> list[int]:
        """Unordered funnels: identical steps (same event and filters) form one group."""
        seen: dict[str, int] = {}
        groups = []
        for node in self.query.series:
            key = repr((node.kind, getattr(node, "event", None), getattr(node, "id", None), [p.model_dump(mode="json") for p in node.properties or []]))
            groups.append(seen.setdefault(key, len(seen)))
        return groups


def _matches_all_of(exclusion: FunnelExclusionEventsNode, step: EventsNode) -> bool:
    """The exclusion matches every event of the step (same event, no filter the step lacks)."""
    if step.kind != exclusion.kind or getattr(step, "event", None) != getattr(exclusion, "event", None) \
            or getattr(step, "id", None) != getattr(exclusion, "id", None):
        return False
    step_filters = [p.model_dump(mode="json", exclude_none=True) for p in step.properties or []]
    return all(p.model_dump(mode="json", exclude_none=True) in step_filters for p in exclusion.properties or [])


def _as_text(typed, context: SQLContext) -> exp.Expression:
    """A HogQL value as ClickHouse's toString shows it (booleans as 'true'/'false')."""
    if typed.type == STRING:
        return typed.sql
    if typed.type == BOOL:
        return case([(paren(typed.sql), exp.Literal.string("true")), (exp.Not(this=paren(typed.sql.copy())), exp.Literal.string("false"))])
    return context.engine.to_text(typed.sql)


def _seconds(total: Any, count: Any) -> Optional[float]:
    if not count or total is None:
        return None
    return float(total) / float(count) / MICROSECONDS
