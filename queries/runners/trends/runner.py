"""TrendsQuery: one number per interval (or one per range) per series, computed in SQL.

Each series (and each compared period) is one SQL statement. Interval buckets are UTC boundaries
computed in Python for the team's timezone (DST, week start and `intervalCount` included), so the
SQL needs no timezone support: events are assigned to them by joining a `buckets(idx, lo, hi)`
table (SQLite) or with the engine's bucket function (PostgreSQL's width_bucket).
Breakdown values are ranked in SQL (top `breakdown_limit`, the rest summed into "other").
Python only zero-fills and shapes the (few) aggregated rows into PostHog's result objects.
"""
from datetime import datetime, timedelta
from typing import Any, Optional

from sqlglot import exp

from ...dates import QueryDateRange, compare_to_period, previous_period
from ...schema import ActionsNode, ChartDisplayType, EventsNode, TrendsQuery
from ...sql.actions import entity_event_names
from ...sql.cohorts import cohort_breakdown_values
from ...sql.context import SQLContext
from ...sql.engine import Params
from .. import formula as formulas
from ..base import QueryRunner, UnsupportedQuery, register, response_value
from .breakdown import BREAKDOWN_NULL, BREAKDOWN_OTHER, DEFAULT_BREAKDOWN_LIMIT, WORLD_MAP_BREAKDOWN_LIMIT, breakdown_specs
from .cohort_breakdown import cohort_series_results
from .display import TOTAL_VALUE_DISPLAYS, UNSUPPORTED_DISPLAYS, TrendsDisplay
from .histogram import histogram_bins
from .query_builder import ACTIVE_WINDOWS, INTEGER_MATHS, PROPERTY_MATHS, SeriesQueryBuilder

INTERVAL_ORDER = ["second", "minute", "hour", "day", "week", "month"]
EARLIEST_TIMESTAMP = datetime.fromisoformat("1980-01-01T00:00:00+00:00")


@register
class TrendsQueryRunner(TrendsDisplay, QueryRunner):
    kind = "TrendsQuery"
    query_model = TrendsQuery

    def __init__(self, query: TrendsQuery, team, **kwargs):
        super().__init__(self._convert_active_user_math(query), team, **kwargs)
        self.query: TrendsQuery
        trends_filter = self.query.trendsFilter
        self.display = (trends_filter.display if trends_filter and trends_filter.display else ChartDisplayType.ActionsLineGraph)
        self.total_value = self.display in TOTAL_VALUE_DISPLAYS
        self.cumulative = self.display == ChartDisplayType.ActionsLineGraphCumulative
        self.cohort_breakdown = cohort_breakdown_values(self.query.breakdownFilter, self.team)
        self.breakdowns = [] if self.cohort_breakdown is not None else breakdown_specs(self.query)
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

    def _validate(self) -> None:
        if self.display in UNSUPPORTED_DISPLAYS:
            raise UnsupportedQuery(f"The {self.display.value} display is not supported.")
        if not self.query.series:
            raise UnsupportedQuery("A TrendsQuery needs at least one series.")
        for series in self.query.series:
            if not isinstance(series, (EventsNode, ActionsNode)):
                raise UnsupportedQuery(f"{series.kind} series are not supported; use EventsNode or ActionsNode.")
            math_type = series.math or "total"
            if math_type in PROPERTY_MATHS:
                if not series.math_property:
                    raise UnsupportedQuery(f"Math '{math_type}' needs a math_property.")
            if math_type == "hogql" and not series.math_hogql:
                raise UnsupportedQuery("Math 'hogql' needs a math_hogql expression.")
            if math_type in ACTIVE_WINDOWS and not self.total_value:
                interval = self.query.interval.value if self.query.interval else "day"
                if interval not in ("day", "hour"):
                    raise UnsupportedQuery(f"Math '{math_type}' needs an hour or day interval.")
                if (self.query.intervalCount or 1) > 1:
                    raise UnsupportedQuery(f"Math '{math_type}' does not support intervalCount.")

    def _earliest_timestamp(self) -> Optional[datetime]:
        names: set = set()
        for series in self.query.series:
            events = entity_event_names(series, self.actions)
            names |= {None} if events is None else events
        return self.earliest_event(names, after=EARLIEST_TIMESTAMP)

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
        if isinstance(series, ActionsNode) and self.actions.get(series.id) is None:
            return []  # PostHog drops the series of a missing action
        if self.cohort_breakdown is not None:
            return cohort_series_results(self, series, index, date_range, compare_label)
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

    # --- SQL -----------------------------------------------------------------------------------

    def _series_tree(self, series: EventsNode, date_range: QueryDateRange, context: SQLContext) -> exp.Expression:
        builder = SeriesQueryBuilder(self, series, date_range, context)
        if any(spec.histogram_bin_count is not None for spec in self.breakdowns):
            bounds = SeriesQueryBuilder(self, series, date_range, SQLContext(self.engine, self.team, Params()))
            builder.histograms = histogram_bins(bounds, self.breakdowns)
        return builder.build()
