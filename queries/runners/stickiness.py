"""StickinessQuery: how many actors were active in exactly 1, 2, ... N intervals of the range.

One SQL statement per series (and compared period): actors' active intervals (team timezone)
from a GROUP BY, counted per actor, then actors counted per number of intervals. Python fills in
the intervals nobody reached and shapes PostHog's series objects.
"""
from datetime import datetime
from typing import Optional

from rest_framework.exceptions import ValidationError
from sqlglot import exp

from ..dates import ONE_MICROSECOND, QueryDateRange, add_intervals, compare_to_period, previous_period, to_utc
from ..schema import ActionsNode, EventsNode, StickinessQuery
from ..sql.actions import series_condition, series_label
from ..sql.actors import actor_key, events_select, events_series, query_conditions
from ..sql.context import SQLContext
from ..sql.groups import aggregate_by_group
from ..sql.engine import Params
from ..sql.hogql import compile_expression
from ..sql.intervals import interval_index
from .actor_insight import ActorInsightRunner, date_range_errors
from .base import register, response_value

MAX_INTERVAL_COUNT = 365
CRITERIA_OPERATORS = {"gte": exp.GTE, "lte": exp.LTE, "exact": exp.EQ}


@register
class StickinessQueryRunner(ActorInsightRunner):
    kind = "StickinessQuery"
    query_model = StickinessQuery

    def __init__(self, query: StickinessQuery, team, **kwargs):
        super().__init__(query, team, **kwargs)
        self.query: StickinessQuery
        self.series = events_series(query.series, "StickinessQuery")
        for series in self.series:
            series_label(series, self.actions)  # a missing action is a 400, before any SQL
        self._validate()
        self.interval_name = query.interval.value if query.interval else "day"
        self.date_range = QueryDateRange(query.dateRange, tz=self.tz, interval=self.interval_name, now=self.now,
                                         week_start_day=self.week_start_day)
        with date_range_errors():
            self.periods = self._periods()
        stickiness_filter = query.stickinessFilter
        self.cumulative = bool(stickiness_filter and stickiness_filter.computedAs == "cumulative")
        self.criteria = stickiness_filter.stickinessCriteria if stickiness_filter else None

    def _validate(self) -> None:
        query = self.query
        for series in self.series:
            if series.math == "hogql" and not series.math_hogql:
                raise ValidationError("Math 'hogql' needs a math_hogql expression.")
        criteria = query.stickinessFilter.stickinessCriteria if query.stickinessFilter else None
        if criteria is not None:
            if criteria.value < 0:
                raise ValidationError("Stickiness criteria value must be non-negative.", code="stickiness_criteria_negative")
            if criteria.value == 0 and criteria.operator in ("exact", "lte"):
                raise ValidationError("Stickiness criteria with operator exact or lte must use a value greater than 0.",
                                      code="stickiness_criteria_zero_incompatible")
        if query.intervalCount is not None:
            if query.intervalCount <= 0:
                raise ValidationError("intervalCount must be a positive integer.", code="stickiness_interval_count_non_positive")
            if query.intervalCount > MAX_INTERVAL_COUNT:
                raise ValidationError(f"intervalCount cannot exceed {MAX_INTERVAL_COUNT}.", code="stickiness_interval_count_too_large")

    def range_start(self) -> datetime:
        return self.date_range.date_from()

    def range_end(self) -> datetime:
        return self.date_range.date_to()

    # --- Calculation ---------------------------------------------------------------------------

    def _periods(self) -> list[tuple[QueryDateRange, Optional[str], list[datetime]]]:
        """(date range, compare label, interval starts) of the current and, when comparing, previous period."""
        periods: list[tuple[QueryDateRange, Optional[str]]] = [(self.date_range, None)]
        compare = self.query.compareFilter
        if compare and compare.compare:
            previous = compare_to_period(self.date_range, compare.compare_to) if compare.compare_to else previous_period(self.date_range)
            periods = [(self.date_range, "current"), (previous, "previous")]
        return [(date_range, label, date_range.bucket_starts()) for date_range, label in periods]

    def calculate(self) -> dict:
        results = []
        for index, series in enumerate(self.series):
            for date_range, compare_label, starts in self.periods:
                results.append(self._series_result(series, index, date_range, compare_label, starts))
        return {
            "results": results,
            "hogql": ";\n\n".join(self.executed_sql),
            "modifiers": self.query.modifiers or {},
            "error": None,
            "resolved_date_range": response_value(self.date_range.resolved()),
        }

    def _series_result(self, series: EventsNode, index: int, date_range: QueryDateRange, compare_label: Optional[str],
                       starts: list[datetime]) -> dict:
        count = len(starts)
        if self.query.intervalCount:
            count = -(-count // self.query.intervalCount)
        counts: dict[int, int] = {}
        if count:
            context = SQLContext(self.engine, self.team, Params())
            if series.math == "unique_group":  # groups of that type are the actors
                aggregate_by_group(context, series.math_group_type_index)
            with date_range_errors():
                statement = self._statement(series, date_range, starts, context)
            rows = self.run_sql(statement, context.params)
            counts = {int(intervals): int(actors) for intervals, actors in rows}
        days = list(range(1, max([count, *counts]) + 1))
        data = [counts.get(day, 0) for day in days]
        total = sum(data)
        if self.cumulative:
            data = [sum(data[position:]) for position in range(len(data))]
        suffix = " or more" if self.cumulative else ""
        result = {
            "count": total,
            "data": data,
            "days": days,
            "label": series_label(series, self.actions),
            "labels": [f"{day} {self.interval_name}{'' if day == 1 else 's'}{suffix}" for day in days],
            # For actions too, `id` is the label and `type` "events" (as in trends).
            "action": {"order": index, "type": "events", "name": series_label(series, self.actions),
                       "id": series_label(series, self.actions) if isinstance(series, ActionsNode) else series.event,
                       "custom_name": series.custom_name},
        }
        if compare_label:
            result["compare"] = True
            result["compare_label"] = compare_label
        return result

    # --- SQL -----------------------------------------------------------------------------------

    def _boundaries(self, date_range: QueryDateRange, starts: list[datetime]) -> list[datetime]:
        """Interval boundaries covering the event filter [filter_from, date_to].

        Calendar intervals by default; with `intervalCount` k, blocks of k intervals counted back
        from date_to (PostHog numbers them by age relative to date_to).
        """
        interval = self.interval_name
        if not self.query.intervalCount:
            return [*starts, add_intervals(starts[-1], interval, 1)]
        date_to, lower = date_range.date_to(), date_range.filter_from()
        boundaries = [date_to + ONE_MICROSECOND]
        while len(boundaries) < 2 or boundaries[0] > lower:
            boundaries.insert(0, add_intervals(date_to, interval, -len(boundaries) * self.query.intervalCount) + ONE_MICROSECOND)
        return boundaries

    def _statement(self, series: EventsNode, date_range: QueryDateRange, starts: list[datetime], context: SQLContext) -> exp.Select:
        """Rows (number of active intervals, actors)."""
        # Bounds the sessions read (queries.sql.sessions).
        context.events_time_range = (to_utc(date_range.filter_from()), to_utc(date_range.date_to()) + ONE_MICROSECOND)
        ts = context.event_column("timestamp")
        conditions = query_conditions(self.query, self.team, context)
        conditions.append(series_condition(series, context, self.actions))
        conditions += [
            exp.GTE(this=ts, expression=context.engine.timestamp(to_utc(date_range.filter_from()), context.params)),
            exp.LTE(this=ts.copy(), expression=context.engine.timestamp(to_utc(date_range.date_to()), context.params)),
        ]
        actor = [compile_expression(series.math_hogql, context).sql] if series.math == "hogql" else actor_key(context)
        keys = [exp.alias_(column, f"actor_{position}") for position, column in enumerate(actor)]
        index = exp.alias_(interval_index(ts.copy(), self._boundaries(date_range, starts), context, checked=False), "idx")
        active = events_select(context, [*keys, index], [c for c in conditions if c is not None])
        active = active.group_by(*[exp.Literal.number(position + 1) for position in range(len(keys) + 1)])
        if self.criteria is not None:
            operator = CRITERIA_OPERATORS[self.criteria.operator]
            active = active.having(operator(this=exp.Count(this=exp.Star()), expression=context.param(self.criteria.value)))
        per_actor = (
            exp.select(exp.alias_(exp.Count(this=exp.Star()), "intervals"))
            .from_(exp.Subquery(this=active, alias=exp.TableAlias(this=exp.to_identifier("active_intervals"))))
            .group_by(*[exp.column(f"actor_{position}") for position in range(len(keys))])
        )
        return (
            exp.select("intervals", exp.alias_(exp.Count(this=exp.Star()), "actors"))
            .from_(exp.Subquery(this=per_actor, alias=exp.TableAlias(this=exp.to_identifier("per_actor"))))
            .group_by(exp.Literal.number(1))
        )
