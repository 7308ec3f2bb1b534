"""TrendsQuery: one number per interval (or one per range) per series, computed in SQL.

Each series (and each compared period) is one SQL statement. Interval buckets are UTC boundaries
computed in Python for the team's timezone (DST, week start and `intervalCount` included), so the
SQL needs no timezone support: events are assigned to them by joining a `buckets(idx, lo, hi)`
table (SQLite) or with the engine's bucket function (PostgreSQL's width_bucket).
Breakdown values are ranked in SQL (top `breakdown_limit`, the rest summed into "other").
Python only zero-fills and shapes the (few) aggregated rows into PostHog's result objects.
"""
import copy
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

from rest_framework.exceptions import ValidationError
from sqlglot import exp

from ..dates import ONE_MICROSECOND, QueryDateRange, compare_to_period, previous_period, to_utc
from ..schema import ChartDisplayType, EventsNode, TrendsFormulaNode, TrendsQuery
from ..sql.context import EVENT_FIELDS, SQLContext
from ..sql.engine import Params, case, paren
from ..sql.hogql import STRING, compile_expression
from ..sql.properties import and_all, properties_condition, test_account_filters
from . import formula as formulas
from .base import QueryRunner, UnsupportedQuery, register, response_value

BREAKDOWN_OTHER = "$$_posthog_breakdown_other_$$"
BREAKDOWN_NULL = "$$_posthog_breakdown_null_$$"
DEFAULT_BREAKDOWN_LIMIT = 25
WORLD_MAP_BREAKDOWN_LIMIT = 250
TOTAL_VALUE_DISPLAYS = {
    ChartDisplayType.BoldNumber, ChartDisplayType.ActionsPie, ChartDisplayType.ActionsDonut,
    ChartDisplayType.ActionsBarValue, ChartDisplayType.ActionsTable, ChartDisplayType.WorldMap,
}
UNSUPPORTED_DISPLAYS = {ChartDisplayType.CalendarHeatmap, ChartDisplayType.TwoDimensionalHeatmap, ChartDisplayType.BoxPlot}
PERCENTILES = {"median": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99}
PROPERTY_MATHS = {"sum", "avg", "min", "max", *PERCENTILES}
INTEGER_MATHS = {
    "total", "dau", "weekly_active", "monthly_active", "unique_session", "first_time_for_user",
    "first_matching_event_for_user", "min_count_per_actor", "max_count_per_actor",
}
ACTIVE_WINDOWS = {"weekly_active": 7, "monthly_active": 30}
INTERVAL_ORDER = ["second", "minute", "hour", "day", "week", "month"]
BUCKETS = "buckets"
EARLIEST_TIMESTAMP = datetime.fromisoformat("1980-01-01T00:00:00+00:00")


@dataclass(frozen=True)
class BreakdownSpec:
    type: str
    property: str
    normalize_url: bool = False


@register
class TrendsQueryRunner(QueryRunner):
    kind = "TrendsQuery"
    query_model = TrendsQuery

    def __init__(self, query: TrendsQuery, team, **kwargs):
        super().__init__(self._convert_active_user_math(query), team, **kwargs)
        self.query: TrendsQuery
        trends_filter = self.query.trendsFilter
        self.display = (trends_filter.display if trends_filter and trends_filter.display else ChartDisplayType.ActionsLineGraph)
        self.total_value = self.display in TOTAL_VALUE_DISPLAYS
        self.cumulative = self.display == ChartDisplayType.ActionsLineGraphCumulative
        self.breakdowns = self._breakdown_specs()
        self._validate()
        self.date_range = QueryDateRange(
            self.query.dateRange,
            tz=self.tz,
            interval="day" if self.total_value else (self.query.interval.value if self.query.interval else "day"),
            now=self.now,
            week_start_day=self.week_start_day,
            interval_count=1 if self.total_value else (self.query.intervalCount or 1),
            earliest=self._earliest_timestamp,
        )

    # --- Setup ---------------------------------------------------------------------------------

    @staticmethod
    def _convert_active_user_math(query: TrendsQuery) -> TrendsQuery:
        """weekly_active is dau at week or month interval, monthly_active is dau at month interval."""
        interval = query.interval.value if query.interval else "day"
        rank = INTERVAL_ORDER.index(interval)
        query = query.model_copy(deep=True)
        for series in query.series:
            if (series.math == "weekly_active" and rank >= INTERVAL_ORDER.index("week")) or (
                series.math == "monthly_active" and rank >= INTERVAL_ORDER.index("month")
            ):
                series.math = "dau"
        return query

    def _breakdown_specs(self) -> list[BreakdownSpec]:
        breakdown_filter = self.query.breakdownFilter
        if breakdown_filter is None:
            return []
        if breakdown_filter.breakdown_histogram_bin_count is not None:
            raise UnsupportedQuery("Histogram breakdowns are not supported.")
        if breakdown_filter.breakdowns:
            specs = []
            for item in breakdown_filter.breakdowns:
                if item.histogram_bin_count is not None:
                    raise UnsupportedQuery("Histogram breakdowns are not supported.")
                specs.append(BreakdownSpec(item.type or "event", str(item.property), bool(item.normalize_url)))
        elif breakdown_filter.breakdown is not None:
            value = breakdown_filter.breakdown
            if isinstance(value, list):
                if len(value) != 1:
                    raise UnsupportedQuery("A breakdown of several values needs `breakdowns` (one entry per property).")
                value = value[0]
            specs = [BreakdownSpec(breakdown_filter.breakdown_type or "event", str(value), bool(breakdown_filter.breakdown_normalize_url))]
        else:
            return []
        for spec in specs:
            if spec.type not in ("event", "person", "event_metadata", "hogql"):
                raise UnsupportedQuery(f"Breakdowns of type '{spec.type}' are not supported.")
            if spec.type == "event_metadata" and (spec.property not in EVENT_FIELDS or spec.property == "properties"):
                raise UnsupportedQuery(f"Unknown event metadata field: {spec.property!r}")
        return specs

    def _validate(self) -> None:
        if self.display in UNSUPPORTED_DISPLAYS:
            raise UnsupportedQuery(f"The {self.display.value} display is not supported.")
        if self.query.aggregation_group_type_index is not None:
            raise UnsupportedQuery("Group aggregation (aggregation_group_type_index) is not supported.")
        if not self.query.series:
            raise UnsupportedQuery("A TrendsQuery needs at least one series.")
        for series in self.query.series:
            if not isinstance(series, EventsNode):
                raise UnsupportedQuery(f"{series.kind} series are not supported; use EventsNode.")
            math_type = series.math or "total"
            if math_type == "unique_group" or series.math_group_type_index is not None:
                raise UnsupportedQuery("Group math (unique_group) is not supported.")
            if math_type in PROPERTY_MATHS:
                if not series.math_property:
                    raise UnsupportedQuery(f"Math '{math_type}' needs a math_property.")
                if series.math_property == "$session_duration":
                    raise UnsupportedQuery("Math on $session_duration is not supported.")
            if math_type == "hogql" and not series.math_hogql:
                raise UnsupportedQuery("Math 'hogql' needs a math_hogql expression.")
            if math_type in ACTIVE_WINDOWS and not self.total_value:
                interval = self.query.interval.value if self.query.interval else "day"
                if interval not in ("day", "hour"):
                    raise UnsupportedQuery(f"Math '{math_type}' needs an hour or day interval.")
                if (self.query.intervalCount or 1) > 1:
                    raise UnsupportedQuery(f"Math '{math_type}' does not support intervalCount.")

    def _earliest_timestamp(self) -> Optional[datetime]:
        return self.earliest_event([series.event for series in self.query.series], after=EARLIEST_TIMESTAMP)

    @property
    def breakdown_limit(self) -> int:
        limit = self.query.breakdownFilter.breakdown_limit if self.query.breakdownFilter else None
        if limit:
            return limit
        return WORLD_MAP_BREAKDOWN_LIMIT if self.display == ChartDisplayType.WorldMap else DEFAULT_BREAKDOWN_LIMIT

    @property
    def comparing(self) -> bool:
        return bool(self.query.compareFilter and self.query.compareFilter.compare)

    # --- Freshness -----------------------------------------------------------------------------

    def covered_range(self) -> Optional[tuple[datetime, datetime, str]]:
        return self.date_range.date_from(), self.date_range.date_to(), self.date_range.interval

    def refresh_frequency(self) -> timedelta:
        if self.date_range.interval == "minute":
            return timedelta(minutes=1)
        return super().refresh_frequency()

    # --- Calculation ---------------------------------------------------------------------------

    def calculate(self) -> dict:
        periods: list[tuple[QueryDateRange, Optional[str]]] = [(self.date_range, "current" if self.comparing else None)]
        if self.comparing:
            compare_to = self.query.compareFilter.compare_to
            previous = compare_to_period(self.date_range, compare_to) if compare_to else previous_period(self.date_range)
            periods.append((previous, "previous"))

        by_period: list[list[list[dict]]] = []
        for date_range, compare_label in periods:
            by_period.append([
                self._series_results(series, index, date_range, compare_label)
                for index, series in enumerate(self.query.series)
            ])

        formula_nodes = self._formula_nodes()
        if formula_nodes:
            results = []
            for node in formula_nodes:
                tree = formulas.parse_formula(node.formula, len(self.query.series))
                for per_series in by_period:
                    results.extend(self._apply_formula(node, tree, per_series))
        else:
            results = [item for per_series in by_period for series_results in per_series for item in series_results]

        has_more = False
        if self.breakdowns and any(self._is_other(item.get("breakdown_value")) for item in results):
            has_more = True
            if self.query.breakdownFilter.breakdown_hide_other_aggregation:
                results = [item for item in results if not self._is_other(item.get("breakdown_value"))]

        return {
            "results": results,
            "hasMore": has_more,
            "hogql": ";\n\n".join(self.executed_sql),
            "modifiers": self.query.modifiers or {},
            "error": None,
            "resolved_date_range": response_value(self.date_range.resolved()),
        }

    @staticmethod
    def _is_other(value: Any) -> bool:
        return value == BREAKDOWN_OTHER or (isinstance(value, list) and BREAKDOWN_OTHER in value)

    # --- One series in one period --------------------------------------------------------------

    def _series_results(self, series: EventsNode, index: int, date_range: QueryDateRange, compare_label: Optional[str]) -> list[dict]:
        context = SQLContext(self.engine, self.team, Params())
        tree = self._series_tree(series, date_range, context)
        rows = self.run_sql(tree, context.params)
        integer = (series.math or "total") in INTEGER_MATHS
        grouped = self._group_rows(rows, date_range, integer)

        objects = []
        for breakdown_value, value in grouped:
            item = (self._total_value_object(series, index, value) if self.total_value
                    else self._time_series_object(series, index, value, date_range))
            if compare_label:
                item["compare"] = True
                item["compare_label"] = compare_label
            if self.breakdowns:
                formatted = "::".join(breakdown_value) if len(self.breakdowns) > 1 else breakdown_value[0]
                item["label"] = f"{item['label']} - {formatted}" if len(self.query.series) > 1 else formatted
                item["breakdown_value"] = list(breakdown_value) if len(self.breakdowns) > 1 else breakdown_value[0]
            objects.append(item)
        if self.breakdowns:
            objects.sort(key=self._breakdown_sort_key)
        return objects

    def _group_rows(self, rows: list[tuple], date_range: QueryDateRange, integer: bool) -> list[tuple[tuple, Any]]:
        """Rows -> [(breakdown values, data list or aggregated value)], zero-filled."""
        width = len(self.breakdowns)
        convert = (lambda v: int(v or 0)) if integer else (lambda v: float(v or 0))
        if self.total_value:
            if not width:
                return [((), convert(rows[0][-1]) if rows else convert(0))]
            return [(tuple(row[:width]), convert(row[-1])) for row in rows]
        size = len(date_range.buckets)
        groups: dict[tuple, list] = {}
        if not width:
            groups[()] = [convert(0)] * size
        for row in rows:
            key = tuple(row[1:1 + width])
            data = groups.setdefault(key, [convert(0)] * size)
            data[int(row[0])] = convert(row[-1])
        return list(groups.items())

    def _breakdown_sort_key(self, item: dict):
        value = item["breakdown_value"]
        values = value if isinstance(value, list) else [value]
        rank = 2 if BREAKDOWN_OTHER in values else 1 if BREAKDOWN_NULL in values else 0
        total = item["aggregated_value"] if self.total_value else sum(item["data"])
        return rank, -total, values

    # --- Result objects ------------------------------------------------------------------------

    def _label(self, series: EventsNode) -> str:
        return series.event if series.event is not None else "All events"

    def _action(self, series: EventsNode, index: int) -> dict:
        return {
            "days": response_value(self.date_range.bucket_starts()),
            "id": series.event,
            "type": "events",
            "order": index,
            "name": self._label(series),
            "custom_name": series.custom_name,
            "math": series.math,
            "math_property": series.math_property,
            "math_hogql": series.math_hogql,
            "math_group_type_index": series.math_group_type_index,
            "properties": {},
        }

    def _filter(self) -> dict:
        query = self.query
        properties = query.properties
        values = {
            "insight": "TRENDS",
            "properties": (properties.model_dump(mode="json", exclude_none=True) if hasattr(properties, "model_dump")
                           else [p.model_dump(mode="json", exclude_none=True) for p in properties] if properties is not None else None),
            "filter_test_accounts": query.filterTestAccounts,
            "date_to": response_value(self.date_range.date_to()),
            "date_from": response_value(self.date_range.date_from()),
            "entity_type": "events",
            "sampling_factor": query.samplingFactor,
            "aggregation_group_type_index": query.aggregation_group_type_index,
            "interval": query.interval.value if query.interval else None,
        }
        if query.trendsFilter is not None:
            values.update(query.trendsFilter.model_dump(mode="json"))
        if query.breakdownFilter is not None:
            values.update(query.breakdownFilter.model_dump(mode="json"))
        return {key: value for key, value in values.items() if value is not None}

    def _time_series_object(self, series: EventsNode, index: int, data: list, date_range: QueryDateRange) -> dict:
        smoothing = self.query.trendsFilter.smoothingIntervals if self.query.trendsFilter else None
        if smoothing and smoothing > 1:
            data = [math.floor(sum(data[max(0, i - smoothing + 1): i + 1]) / len(data[max(0, i - smoothing + 1): i + 1]))
                    for i in range(len(data))]
        if self.cumulative:
            running, cumulative = 0, []
            for value in data:
                running += value
                cumulative.append(running)
            data = cumulative
        starts = date_range.bucket_starts()
        return {
            "data": data,
            "labels": [date_range.label(start) for start in starts],
            "days": [date_range.day_string(start) for start in starts],
            "count": (data[-1] if data else 0) if self.cumulative else float(sum(data)),
            "label": self._label(series),
            "filter": self._filter(),
            "action": self._action(series, index),
        }

    def _total_value_object(self, series: EventsNode, index: int, value: Any) -> dict:
        return {
            "data": [],
            "days": [],
            "count": 0,
            "aggregated_value": value,
            "label": self._label(series),
            "filter": self._filter(),
            "action": self._action(series, index),
        }

    # --- Formulas ------------------------------------------------------------------------------

    def _formula_nodes(self) -> list[TrendsFormulaNode]:
        trends_filter = self.query.trendsFilter
        if not trends_filter:
            return []
        if trends_filter.formulaNodes:
            return list(trends_filter.formulaNodes)
        if trends_filter.formulas:
            return [TrendsFormulaNode(formula=f) for f in trends_filter.formulas if f and f.strip()]
        if trends_filter.formula and trends_filter.formula.strip():
            return [TrendsFormulaNode(formula=trends_filter.formula)]
        return []

    def _apply_formula(self, node: TrendsFormulaNode, tree, per_series: list[list[dict]]) -> list[dict]:
        if not any(per_series):
            return []
        if self.breakdowns:
            values = {self._key(item["breakdown_value"]) for results in per_series for item in results}
            computed = []
            for value in sorted(values, key=_natural_key):
                matches = [next((item for item in results if self._key(item["breakdown_value"]) == value), None) for results in per_series]
                template = next(item for item in matches if item is not None)
                group = [copy.deepcopy(item) if item is not None else self._filler(template) for item in matches]
                computed.append(self._formula_result(node, tree, group))
            return sorted(computed, key=_formula_sort_key, reverse=True)
        group = [copy.deepcopy(results[0]) if results else None for results in per_series]
        template = next(item for item in group if item is not None)
        group = [item if item is not None else self._filler(template) for item in group]
        return [self._formula_result(node, tree, group)]

    @staticmethod
    def _key(value: Any):
        return tuple(value) if isinstance(value, list) else value

    @staticmethod
    def _filler(template: dict) -> dict:
        return {
            "label": f"filler for {template.get('breakdown_value')}",
            "data": [0] * len(template.get("data") or []),
            "count": 0,
            "aggregated_value": 0,
            "action": None,
            "breakdown_value": template.get("breakdown_value"),
            "compare_label": template.get("compare_label"),
            "days": template.get("days"),
        }

    def _formula_result(self, node: TrendsFormulaNode, tree, group: list[dict]) -> dict:
        result = group[0]
        result["label"] = node.custom_name or f"Formula ({node.formula})"
        result["action"] = None
        if self.total_value:
            values = formulas.evaluate(tree, [[item.get("aggregated_value") or 0] for item in group])
            result["aggregated_value"] = float(sum(values))
            result["data"] = None
            result["count"] = 0
        else:
            result["data"] = formulas.evaluate(tree, [item["data"] for item in group])
            result["count"] = float(sum(result["data"]))
        return result

    # --- SQL -----------------------------------------------------------------------------------

    def _series_tree(self, series: EventsNode, date_range: QueryDateRange, context: SQLContext) -> exp.Expression:
        builder = _SeriesSQL(self, series, date_range, context)
        return builder.build()


def _natural_key(value: Any):
    text = "::".join(value) if isinstance(value, tuple) else str(value)
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", text)]


def _formula_sort_key(item: dict):
    value = item.get("breakdown_value")
    values = value if isinstance(value, list) else [value]
    rank = -2 if BREAKDOWN_OTHER in values else -1 if BREAKDOWN_NULL in values else 0
    # As PostHog: a result built on a filler (missing first series) carries aggregated_value 0.
    total = item.get("aggregated_value", sum(item.get("data") or []))
    return rank, total, item.get("count"), item.get("data") or [], repr(value)


class _SeriesSQL:
    """Builds the statement of one series in one period: rows of ([bucket idx], breakdown values..., value)."""

    def __init__(self, runner: TrendsQueryRunner, series: EventsNode, date_range: QueryDateRange, context: SQLContext):
        self.runner = runner
        self.series = series
        self.date_range = date_range
        self.context = context
        self.math = series.math or "total"
        self.time_series = not runner.total_value
        self.ctes: list[exp.CTE] = []
        self.breakdown_count = len(runner.breakdowns)

    # Pieces

    def build(self) -> exp.Expression:
        breakdown_exprs = [self._breakdown_expr(spec) for spec in self.runner.breakdowns]
        values = self._values_select(breakdown_exprs)
        if self.breakdown_count:
            values = self._ranked(values)
        return self._with(values)

    def _with(self, select: exp.Select) -> exp.Expression:
        ctes = list(self.ctes)
        if self._uses_buckets:
            ctes.insert(0, self._buckets_cte())
        if ctes:
            select.set("with_", exp.With(expressions=ctes))
        return select

    @property
    def _uses_buckets(self) -> bool:
        """The buckets table is joined (join engines) or is the output of a weekly/monthly active window."""
        return self.time_series and (self.context.engine.bucket_by_join or self.math in ACTIVE_WINDOWS)

    def _bucket_index(self) -> exp.Expression:
        if self.context.engine.bucket_by_join:
            return exp.column("idx", table="b")
        rows = self._bucket_rows()
        index = self.context.engine.bucket_index(self.context.event_column("timestamp"), [lo for _, lo, _ in rows], self.context.params)
        offset = rows[0][0]  # weekly/monthly actives number the look-back buckets from -N
        return exp.Add(this=index, expression=exp.Literal.number(offset)) if offset else index

    def _cte(self, name: str, select: exp.Expression, columns: Optional[list[str]] = None) -> exp.Table:
        alias = exp.TableAlias(this=exp.to_identifier(name), columns=[exp.to_identifier(c) for c in columns or []] or None)
        self.ctes.append(exp.CTE(this=select, alias=alias))
        return exp.to_table(name)

    def _bucket_rows(self) -> list:
        buckets = self.date_range.buckets
        window = ACTIVE_WINDOWS.get(self.math)
        if not window:
            return [(index, bucket.lo, bucket.hi) for index, bucket in enumerate(buckets)]
        # Weekly/monthly actives look back: prepend the periods of the window before the first bucket.
        steps = window * (24 if self.date_range.interval == "hour" else 1)
        step = timedelta(hours=1) if self.date_range.interval == "hour" else None
        rows = []
        first = buckets[0]
        for back in range(steps, 0, -1):
            if step:
                lo, hi = first.lo - step * back, first.lo - step * (back - 1)
            else:
                lo = to_utc(_local_days_before(first.start, back))
                hi = to_utc(_local_days_before(first.start, back - 1)) if back > 1 else first.lo
            rows.append((-back, lo, hi))
        rows.extend((index, bucket.lo, bucket.hi) for index, bucket in enumerate(buckets))
        return rows

    def _buckets_cte(self) -> exp.CTE:
        engine, params = self.context.engine, self.context.params
        tuples = [exp.Tuple(expressions=[exp.Literal.number(index), engine.timestamp(lo, params), engine.timestamp(hi, params)])
                  for index, lo, hi in self._bucket_rows()]
        select = exp.select(exp.Star()).from_(exp.Values(expressions=tuples, alias=exp.TableAlias(this=exp.to_identifier("bucket_values"))))
        alias = exp.TableAlias(this=exp.to_identifier(BUCKETS), columns=[exp.to_identifier(c) for c in ("idx", "lo", "hi")])
        return exp.CTE(this=select, alias=alias)

    def _breakdown_expr(self, spec: BreakdownSpec) -> exp.Expression:
        context = self.context
        if spec.type == "event":
            value = context.event_property(spec.property)
        elif spec.type == "person":
            value = context.person_property(spec.property)
        elif spec.type == "event_metadata":
            value = context.engine.to_text(context.event_column(EVENT_FIELDS[spec.property]))
        else:
            typed = compile_expression(spec.property, context)
            value = typed.sql if typed.type == STRING else context.engine.to_text(typed.sql)
        if spec.normalize_url:
            trimmed = exp.Nullif(this=exp.Anonymous(this="RTRIM", expressions=[value, exp.Literal.string("/?#")]), expression=exp.Literal.string(""))
            value = case([(exp.Is(this=value.copy(), expression=exp.null()), exp.null())], exp.Coalesce(this=trimmed, expressions=[exp.Literal.string("/")]))
        return exp.Coalesce(this=exp.Nullif(this=value, expression=exp.Literal.string("")), expressions=[context.param(BREAKDOWN_NULL)])

    def _conditions(self, *, filters: bool = True, scope: bool = True) -> list[exp.Expression]:
        """Team and event (`scope`), then the series, query and test-account property filters."""
        context, runner = self.context, self.runner
        conditions = [context.team_filter()] if scope else []
        if scope and self.series.event is not None:
            conditions.append(exp.EQ(this=context.event_column("event"), expression=context.param(self.series.event)))
        if filters:
            conditions.append(properties_condition(self.series.properties, context))
            conditions.append(properties_condition(runner.query.properties, context))
            if runner.query.filterTestAccounts:
                conditions.append(properties_condition(test_account_filters(runner.team), context))
        return [c for c in conditions if c is not None]

    def _time_conditions(self, lower: datetime, upper_exclusive: datetime) -> list[exp.Expression]:
        ts, engine, params = self.context.event_column("timestamp"), self.context.engine, self.context.params
        return [exp.GTE(this=ts, expression=engine.timestamp(lower, params)),
                exp.LT(this=ts.copy(), expression=engine.timestamp(upper_exclusive, params))]

    def _bucket_conditions(self) -> list[exp.Expression]:
        rows = self._bucket_rows()
        ts = self.context.event_column("timestamp")
        return [
            exp.GTE(this=ts, expression=exp.column("lo", table="b")),
            exp.LT(this=ts.copy(), expression=exp.column("hi", table="b")),
            *self._time_conditions(rows[0][1], rows[-1][2]),
        ]

    def _range_conditions(self) -> list[exp.Expression]:
        """Time filter of a total-value series."""
        if self.math in ACTIVE_WINDOWS:
            date_to = self.date_range.date_to()
            return self._time_conditions(date_to - timedelta(days=ACTIVE_WINDOWS[self.math]), date_to + ONE_MICROSECOND)
        return self._time_conditions(to_utc(self.date_range.filter_from()), to_utc(self.date_range.filter_to()) + ONE_MICROSECOND)

    def _events_select(self, columns: list[exp.Expression], conditions: list[exp.Expression], *, source=None) -> exp.Select:
        events = source if source is not None else self.context.events_table()
        if self.time_series and self.context.engine.bucket_by_join:
            select = exp.select(*columns).from_(exp.to_table(BUCKETS).as_("b")).join(events, join_type="cross")
            conditions = conditions + self._bucket_conditions()
        elif self.time_series:
            rows = self._bucket_rows()
            select = exp.select(*columns).from_(events)
            conditions = conditions + self._time_conditions(rows[0][1], rows[-1][2])
        else:
            select = exp.select(*columns).from_(events)
            conditions = conditions + self._range_conditions()
        if self.context.uses_person:
            select = select.join(self.context.person_table(), on=self.context.person_join_condition(), join_type="left")
        return select.where(and_all(conditions))

    def _key_columns(self, breakdown_exprs: list[exp.Expression]) -> list[exp.Expression]:
        columns = [exp.alias_(self._bucket_index(), "idx")] if self.time_series else []
        columns += [exp.alias_(expr, f"bv{i}") for i, expr in enumerate(breakdown_exprs)]
        return columns

    def _key_names(self) -> list[str]:
        return (["idx"] if self.time_series else []) + [f"bv{i}" for i in range(self.breakdown_count)]

    @staticmethod
    def _group_positions(count: int) -> list[exp.Expression]:
        return [exp.Literal.number(i + 1) for i in range(count)]

    # Values per (bucket, breakdown)

    def _values_select(self, breakdown_exprs: list[exp.Expression]) -> exp.Select:
        math_type = self.math
        if math_type in PERCENTILES:
            return self._percentile_select(breakdown_exprs, self._property_value(), PERCENTILES[math_type])
        if math_type.endswith("_count_per_actor"):
            return self._count_per_actor_select(breakdown_exprs)
        if math_type in ACTIVE_WINDOWS and self.time_series:
            return self._active_users_select(breakdown_exprs)
        if math_type == "dau" and self.time_series and self.runner.cumulative:
            return self._first_appearance_select(breakdown_exprs)
        if math_type in ("first_time_for_user", "first_matching_event_for_user"):
            return self._first_time_select(breakdown_exprs)
        aggregate = self._aggregate()
        keys = self._key_columns(breakdown_exprs)
        select = self._events_select([*keys, exp.alias_(aggregate, "value")], self._conditions())
        return select.group_by(*self._group_positions(len(keys))) if keys else select

    def _aggregate(self) -> exp.Expression:
        math_type = self.math
        context = self.context
        if math_type in ("total",):
            return exp.Count(this=exp.Star())
        if math_type in ("dau", "weekly_active", "monthly_active"):
            return context.count_actors()
        if math_type == "unique_session":
            return exp.Count(this=exp.Distinct(expressions=[context.event_column("session_id")]))
        if math_type in ("sum", "avg", "min", "max"):
            cls = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}[math_type]
            return exp.Coalesce(this=cls(this=self._property_value()), expressions=[exp.Literal.number(0)])
        if math_type == "hogql":
            typed = compile_expression(self.series.math_hogql, context, allow_aggregates=True)
            if not typed.sql.find(exp.AggFunc):
                raise ValidationError("math_hogql must be an aggregation, such as count() or sum(toFloat(properties.price)).")
            return typed.sql
        raise UnsupportedQuery(f"Math '{math_type}' is not supported.")

    def _property_value(self) -> exp.Expression:
        series, context = self.series, self.context
        if series.math_property_type == "person_properties":
            value = context.person_property_number(series.math_property)
        else:
            value = context.event_property_number(series.math_property)
        if series.math_multiplier is not None:
            value = exp.Mul(this=paren(value), expression=context.param(float(series.math_multiplier)))
        return value

    def _percentile_of(self, source: exp.Table, quantile: float, partition: list[str]) -> exp.Select:
        """Linear-interpolated quantile of `value` per key (ClickHouse `quantile` on small sets)."""
        partition_by = [exp.column(name) for name in partition]
        order = exp.Order(expressions=[exp.Ordered(this=exp.column("value"))])
        row_number = exp.Sub(this=exp.Window(this=exp.RowNumber(), partition_by=partition_by or None, order=order),
                             expression=exp.Literal.number(1))
        count = exp.Window(this=exp.Count(this=exp.Star()), partition_by=[c.copy() for c in partition_by] or None)
        ranked = exp.select(*[exp.column(name) for name in partition], "value", exp.alias_(row_number, "rn"), exp.alias_(count, "n")).from_(source)
        ranked_table = self._cte("ranked_values", ranked)
        position = exp.Mul(this=exp.Literal.number(quantile), expression=paren(exp.Sub(this=exp.column("n"), expression=exp.Literal.number(1))))
        low, high = exp.Min(this=exp.column("value")), exp.Max(this=exp.column("value"))
        fraction = exp.Sub(
            this=exp.Mul(this=exp.Literal.number(quantile), expression=paren(exp.Sub(this=exp.Max(this=exp.column("n")), expression=exp.Literal.number(1)))),
            expression=exp.Min(this=exp.column("rn")),
        )
        value = exp.Add(this=low, expression=exp.Mul(this=paren(exp.Sub(this=high, expression=low.copy())), expression=paren(fraction)))
        select = exp.select(*[exp.column(name) for name in partition], exp.alias_(value, "value")).from_(ranked_table).where(
            exp.and_(exp.GT(this=exp.column("rn"), expression=exp.Sub(this=position, expression=exp.Literal.number(1))),
                     exp.LT(this=exp.column("rn"), expression=exp.Add(this=position.copy(), expression=exp.Literal.number(1))))
        )
        return select.group_by(*self._group_positions(len(partition))) if partition else select

    def _percentile_select(self, breakdown_exprs, value: exp.Expression, quantile: float) -> exp.Select:
        keys = self._key_columns(breakdown_exprs)
        conditions = self._conditions() + [exp.Not(this=exp.Is(this=value.copy(), expression=exp.null()))]
        source = self._cte("property_values", self._events_select([*keys, exp.alias_(value, "value")], conditions))
        return self._percentile_of(source, quantile, self._key_names())

    def _count_per_actor_select(self, breakdown_exprs) -> exp.Select:
        keys = self._key_columns(breakdown_exprs)
        per_actor = self._events_select([*keys, exp.alias_(exp.Count(this=exp.Star()), "value")], self._conditions())
        per_actor = per_actor.group_by(*self._group_positions(len(keys)), *self.context.actor_key())
        source = self._cte("actor_counts", per_actor)
        names = self._key_names()
        aggregate = self.math.removesuffix("_count_per_actor")
        if aggregate in PERCENTILES:
            return self._percentile_of(source, PERCENTILES[aggregate], names)
        cls = {"avg": exp.Avg, "min": exp.Min, "max": exp.Max}[aggregate]
        value = cls(this=exp.column("value"))
        if aggregate == "avg":
            value = cls(this=exp.Cast(this=exp.column("value"), to=exp.DataType.build("double")))
        select = exp.select(*[exp.column(n) for n in names], exp.alias_(value, "value")).from_(source)
        return select.group_by(*self._group_positions(len(names))) if names else select

    def _active_users_select(self, breakdown_exprs) -> exp.Select:
        """Actors active in the window (d - N days, d] for each bucket d (N = 7 or 30)."""
        actor = self.context.actor_key()
        actor_names = [f"actor{i}" for i in range(len(actor))]
        keys = self._key_columns(breakdown_exprs)
        activity = self._events_select([*keys, *[exp.alias_(a, n) for a, n in zip(actor, actor_names)]], self._conditions())
        activity.set("distinct", exp.Distinct())
        activity_table = self._cte("activity", activity)
        steps = ACTIVE_WINDOWS[self.math] * (24 if self.date_range.interval == "hour" else 1)
        breakdown_names = [f"bv{i}" for i in range(self.breakdown_count)]
        in_window = exp.and_(
            exp.GT(this=exp.column("idx", table="a"), expression=exp.Sub(this=exp.column("idx", table="o"), expression=exp.Literal.number(steps))),
            exp.LTE(this=exp.column("idx", table="a"), expression=exp.column("idx", table="o")),
        )
        pairs = (
            exp.select(exp.alias_(exp.column("idx", table="o"), "idx"), *[exp.column(n, table="a") for n in breakdown_names + actor_names])
            .from_(exp.to_table(BUCKETS).as_("o"))
            .join(activity_table.as_("a"), on=in_window, join_type="inner")
            .where(exp.GTE(this=exp.column("idx", table="o"), expression=exp.Literal.number(0)))
        )
        pairs.set("distinct", exp.Distinct())
        pairs_table = self._cte("window_actors", pairs)
        names = ["idx", *breakdown_names]
        return exp.select(*[exp.column(n) for n in names], exp.alias_(exp.Count(this=exp.Star()), "value")).from_(pairs_table).group_by(
            *self._group_positions(len(names)))

    def _first_appearance_select(self, breakdown_exprs) -> exp.Select:
        """Cumulative unique users: each actor counts once, in the first bucket they appear in."""
        breakdown_columns = [exp.alias_(expr, f"bv{i}") for i, expr in enumerate(breakdown_exprs)]
        firsts = self._events_select([*breakdown_columns, exp.alias_(exp.Min(this=self._bucket_index()), "idx")], self._conditions())
        firsts = firsts.group_by(*self._group_positions(len(breakdown_columns)), *self.context.actor_key())
        table = self._cte("first_buckets", firsts)
        names = self._key_names()
        return exp.select(*[exp.column(n) for n in names], exp.alias_(exp.Count(this=exp.Star()), "value")).from_(table).group_by(
            *self._group_positions(len(names)))

    def _first_time_select(self, breakdown_exprs) -> exp.Select:
        """Actors whose first matching event (ever) falls in the range / bucket."""
        inner_context = SQLContext(self.context.engine, self.context.team, self.context.params)
        outer_context = self.context
        self.context = inner_context
        matching = self.math == "first_matching_event_for_user"
        inner_conditions = self._conditions(filters=matching)
        self.context = outer_context
        order = exp.Order(expressions=[exp.Ordered(this=inner_context.event_column("timestamp")), exp.Ordered(this=inner_context.event_column("uuid"))])
        rank = exp.Window(this=exp.RowNumber(), partition_by=inner_context.actor_key(), order=order)
        all_columns = exp.Column(this=exp.Star(), table=exp.to_identifier("e"))
        inner = exp.select(all_columns, exp.alias_(rank, "first_rank")).from_(inner_context.events_table())
        if inner_context.uses_person:
            inner = inner.join(inner_context.person_table(), on=inner_context.person_join_condition(), join_type="left")
        inner = inner.where(and_all(inner_conditions))
        source = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("e")))
        conditions = [exp.EQ(this=exp.column("first_rank", table="e"), expression=exp.Literal.number(1))]
        if not matching:
            conditions += self._conditions(scope=False)
        keys = self._key_columns(breakdown_exprs)
        select = self._events_select([*keys, exp.alias_(exp.Count(this=exp.Star()), "value")], conditions, source=source)
        return select.group_by(*self._group_positions(len(keys))) if keys else select

    # Breakdown ranking

    def _ranked(self, values: exp.Select) -> exp.Select:
        """Keep the top `breakdown_limit` values; the rest are summed into the "other" value."""
        context, engine = self.context, self.context.engine
        series_values = self._cte("series_values", values)
        names = [f"bv{i}" for i in range(self.breakdown_count)]
        null_sentinel = context.param(BREAKDOWN_NULL)
        is_null = exp.or_(*[exp.EQ(this=exp.column(n), expression=null_sentinel.copy()) for n in names])
        order = exp.Order(expressions=[
            exp.Ordered(this=case([(is_null, exp.Literal.number(1))], exp.Literal.number(0))),
            exp.Ordered(this=exp.Sum(this=exp.column("value")), desc=True),
            *[exp.Ordered(this=engine.binary_order(exp.column(n))) for n in names],
        ])
        ranking = exp.select(*[exp.column(n) for n in names], exp.alias_(exp.Window(this=exp.RowNumber(), order=order), "rn"))
        ranking = ranking.from_(series_values).group_by(*self._group_positions(len(names)))
        ranked = self._cte("ranked_breakdowns", ranking)
        kept = exp.LTE(this=exp.column("rn", table="r"), expression=context.param(self.runner.breakdown_limit))
        other = context.param(BREAKDOWN_OTHER)
        columns = [exp.alias_(exp.column("idx", table="s"), "idx")] if self.time_series else []
        columns += [exp.alias_(case([(kept.copy(), exp.column(n, table="s"))], other.copy()), n) for n in names]
        columns.append(exp.alias_(exp.Sum(this=exp.column("value", table="s")), "value"))
        join_on = exp.and_(*[exp.EQ(this=exp.column(n, table="r"), expression=exp.column(n, table="s")) for n in names])
        select = exp.select(*columns).from_(series_values.as_("s")).join(ranked.as_("r"), on=join_on, join_type="inner")
        return select.group_by(*self._group_positions(len(columns) - 1))


def _local_days_before(start: datetime, days: int) -> datetime:
    return (start.replace(tzinfo=None) - timedelta(days=days)).replace(tzinfo=start.tzinfo)
