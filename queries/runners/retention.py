"""RetentionQuery: of the actors who did the target event in an interval (a cohort), how many did
the returning event 1, 2, ... intervals later.

One SQL statement. Events are mapped to their interval (team timezone) by a CASE tree over
interval boundaries computed in Python; per actor and interval the statement records whether it
started a cohort and how many returning events it did, then joins cohort starts to later returns
of the same actor and counts actors per (cohort, intervals later). Python only lays the counted
cells out as PostHog's matrix and ranks breakdown values.
"""
from datetime import datetime
from typing import Callable, Optional

from rest_framework.exceptions import ValidationError
from sqlglot import exp

from ..dates import QueryDateRange, add_intervals, start_of_interval
from ..schema import RetentionEntity, RetentionQuery
from ..sql.actors import (
    ACTOR_COLUMNS, actor_key_aliased, entity_condition, events_select, group_by_actor, query_conditions,
    with_ctes,
)
from ..sql.actions import step_event_names
from ..sql.cohorts import CohortBreakdownValue, cohort_breakdown_values
from ..sql.context import SQLContext
from ..sql.properties import and_all, properties_condition
from ..sql.engine import Params, case
from ..sql.groups import aggregate_by_group, group_breakdown_value
from ..sql.intervals import interval_index
from .actor_insight import ActorInsightRunner, date_range_errors
from .base import register, response_value

DEFAULT_ENTITY = RetentionEntity(id="$pageview", type="events")
DEFAULT_TOTAL_INTERVALS = 7
BREAKDOWN_OTHER = "$$_posthog_breakdown_other_$$"
DEFAULT_BREAKDOWN_LIMIT = 25
# Rows x columns of the matrix; bigger answers are refused rather than computed.
MAX_CELLS = 250_000
RECURRING, FIRST_TIME, FIRST_EVER = "retention_recurring", "retention_first_time", "retention_first_ever_occurrence"


@register
class RetentionQueryRunner(ActorInsightRunner):
    kind = "RetentionQuery"
    query_model = RetentionQuery

    def __init__(self, query: RetentionQuery, team, **kwargs):
        super().__init__(query, team, **kwargs)
        self.query: RetentionQuery
        retention = query.retentionFilter
        self.interval_name = (retention.period or "Day").lower()
        self.total_intervals = retention.totalIntervals or DEFAULT_TOTAL_INTERVALS
        self.retention_type = retention.retentionType or RECURRING
        self.minimum_occurrences = retention.minimumOccurrences or 1
        self.target = retention.targetEntity or DEFAULT_ENTITY
        self.returning = retention.returningEntity or DEFAULT_ENTITY
        # A cohort breakdown computes the matrix once per cohort (its members' events only), as trends do.
        self.cohort_breakdown = cohort_breakdown_values(query.breakdownFilter, team)
        self._cohort: Optional[CohortBreakdownValue] = None  # the cohort of the statement being built
        self.breakdown = None if self.cohort_breakdown is not None else self._breakdown()
        self._validate()
        with date_range_errors():
            self.starts, self.end = self._intervals()

    # --- Setup ---------------------------------------------------------------------------------

    def _validate(self) -> None:
        retention = self.query.retentionFilter
        if self.total_intervals < 1:
            raise ValidationError("totalIntervals must be at least 1.")
        if self.total_intervals > MAX_CELLS:
            raise ValidationError(f"totalIntervals must be at most {MAX_CELLS}.")
        if self.minimum_occurrences < 1:
            raise ValidationError("minimumOccurrences must be at least 1.")
        if retention.timeWindowMode == "24_hour_windows":
            raise ValidationError("The 24_hour_windows time window mode is not supported.")
        for name, entity in (("targetEntity", self.target), ("returningEntity", self.returning)):
            if self._is_action(entity):
                if self.actions.get(entity.id) is None:
                    raise ValidationError(f"{name}: Action ID {entity.id} does not exist!")
                continue
            if entity.id is not None and not isinstance(entity.id, str):
                raise ValidationError(f"{name}: the id of an event entity must be an event name.")

    def _breakdown(self) -> Optional[tuple[str, str, Optional[int]]]:
        """(type, property, group type index) of the single supported breakdown, or None."""
        breakdown_filter = self.query.breakdownFilter
        if breakdown_filter is None:
            return None
        if breakdown_filter.breakdowns:
            # PostHog computes retention by the first breakdown only.
            first = breakdown_filter.breakdowns[0]
            spec = (first.type or "event", str(first.property), first.group_type_index)
        elif breakdown_filter.breakdown is not None:
            value = breakdown_filter.breakdown
            if isinstance(value, list):
                if len(value) != 1:
                    raise ValidationError("Retention supports a single breakdown property.")
                value = value[0]
            spec = (breakdown_filter.breakdown_type or "event", str(value), breakdown_filter.breakdown_group_type_index)
        else:
            return None
        if spec[0] not in ("event", "person", "group"):
            raise ValidationError(f"Retention breakdowns of type '{spec[0]}' are not supported.")
        return spec

    @staticmethod
    def _is_action(entity: RetentionEntity) -> bool:
        return entity.type == "actions" or entity.kind == "ActionsNode"

    @staticmethod
    def _event_name(entity: RetentionEntity) -> Optional[str]:
        return entity.id if isinstance(entity.id, str) else None

    def _earliest(self) -> Optional[datetime]:
        names: set = set()
        for entity in (self.target, self.returning):
            if self._is_action(entity):
                action = self.actions.get(entity.id)
                events = step_event_names(action) if action else set()
            else:
                events = {self._event_name(entity)}
            names |= {None} if events is None else events
        return self.earliest_event(names)

    def _intervals(self) -> tuple[list[datetime], datetime]:
        """Cohort interval starts (team timezone) and the exclusive end of the range.

        The end is the start of the interval after the requested date_to, so every interval is
        complete; without a date_from the range is the `totalIntervals` intervals before the end.
        """
        interval, week_start = self.interval_name, self.week_start_day
        requested = QueryDateRange(self.query.dateRange, tz=self.tz, interval=interval, now=self.now,
                                   week_start_day=week_start, earliest=self._earliest)
        end = start_of_interval(add_intervals(requested.date_to(), interval, 1), interval, week_start)
        if self.query.dateRange and self.query.dateRange.date_from:
            date_from = start_of_interval(requested.date_from(), interval, week_start)
        else:
            date_from = start_of_interval(add_intervals(end, interval, -self.total_intervals), interval, week_start)
        starts: list[datetime] = []
        current = date_from
        while current < end:
            starts.append(current)
            if len(starts) * self.total_intervals > MAX_CELLS:
                raise ValidationError(
                    f"The retention matrix would have more than {MAX_CELLS} cells. Use a shorter date range, a longer "
                    "period or fewer totalIntervals."
                )
            current = add_intervals(date_from, interval, len(starts))
        return starts, end

    # --- Freshness -----------------------------------------------------------------------------

    def range_start(self) -> datetime:
        return self.starts[0] if self.starts else self.end

    def range_end(self) -> datetime:
        return self.end

    # --- Calculation ---------------------------------------------------------------------------

    def calculate(self) -> dict:
        if self.cohort_breakdown is not None:
            results = []
            for cohort in self.cohort_breakdown:
                self._cohort = cohort
                try:
                    counts = self._counted()
                finally:
                    self._cohort = None
                results += [{**row, "breakdown_value": cohort.value} for row in self._rows(counts, ())]
        else:
            results = self._results(self._counted())
        return {
            "results": results,
            "hogql": ";\n\n".join(self.executed_sql),
            "modifiers": self.query.modifiers or {},
            "error": None,
            "resolved_date_range": response_value({"date_from": self.range_start(), "date_to": self.end}),
        }

    def _counted(self) -> dict[tuple, dict[int, int]]:
        """Actors per (breakdown value, cohort interval) and intervals later."""
        counts: dict[tuple, dict[int, int]] = {}
        if self.starts:
            context = SQLContext(self.engine, self.team, Params())
            aggregate_by_group(context, self.query.aggregation_group_type_index)  # groups as actors
            for row in self.run_sql(self._statement(context), context.params):
                *breakdown_value, cohort, offset, count = row
                cells = counts.setdefault((tuple(breakdown_value), int(cohort)), {})
                cells[int(offset)] = cells.get(int(offset), 0) + int(count)
        if self.query.retentionFilter.cumulative:
            counts = {key: self._cumulative(cells) for key, cells in counts.items()}
        return counts

    def _cumulative(self, cells: dict[int, int]) -> dict[int, int]:
        """Rows hold actors by the furthest interval they returned in; count them at every earlier one."""
        result = {0: cells.get(0, 0)}
        running = 0
        for offset in range(self.total_intervals - 1, 0, -1):
            running += cells.get(offset, 0)
            if running:
                result[offset] = running
        return result

    def _results(self, counts: dict[tuple, dict[int, int]]) -> list[dict]:
        if self.breakdown is None:
            return self._rows(counts, ())
        totals: dict[str, int] = {}
        for (breakdown_value, _cohort), cells in counts.items():
            totals[breakdown_value[0]] = totals.get(breakdown_value[0], 0) + cells.get(0, 0)
        ranked = sorted(totals, key=lambda value: (-totals[value], value))
        limit = (self.query.breakdownFilter.breakdown_limit or DEFAULT_BREAKDOWN_LIMIT)
        kept, others = ranked[:limit], set(ranked[limit:])
        if others:
            merged: dict[tuple, dict[int, int]] = {}
            for (breakdown_value, cohort), cells in counts.items():
                value = BREAKDOWN_OTHER if breakdown_value[0] in others else breakdown_value[0]
                target = merged.setdefault(((value,), cohort), {})
                for offset, count in cells.items():
                    target[offset] = target.get(offset, 0) + count
            counts = merged
            kept.append(BREAKDOWN_OTHER)
        results = []
        for value in kept:
            for row in self._rows(counts, (value,)):
                row["breakdown_value"] = value
                results.append(row)
        return results

    def _rows(self, counts: dict[tuple, dict[int, int]], breakdown_value: tuple) -> list[dict]:
        period = self.interval_name.title()
        rows = []
        for cohort, start in enumerate(self.starts):
            cells = counts.get((breakdown_value, cohort), {})
            rows.append({
                "values": [{"count": cells.get(offset, 0), "label": f"{period} {offset}"} for offset in range(self.total_intervals)],
                "label": f"{period} {cohort}",
                "date": response_value(start),
            })
        return rows

    # --- SQL -----------------------------------------------------------------------------------

    def _statement(self, context: SQLContext) -> exp.Select:
        """Rows (breakdown value?, cohort interval, intervals later, actors)."""
        boundaries = [*self.starts, self.end]
        if self.retention_type == RECURRING:  # (the first-time kinds read each actor's events of all time)
            context.events_time_range = (boundaries[0], boundaries[-1])  # bounds the sessions read (queries.sql.sessions)
        ts = context.event_column("timestamp")
        key = actor_key_aliased(context)
        if self.breakdown:
            key.append(exp.alias_(self._breakdown_value(context), "breakdown_value"))
        # GROUP BY the actor, then the breakdown value and the interval by position.
        group = [exp.Literal.number(i + 1) for i in range(len(ACTOR_COLUMNS), len(key) + 1)]
        names = [self._event_name(self.target), self._event_name(self.returning)]
        filters = query_conditions(self.query, self.team, context)
        if self._cohort is not None:
            filters.append(properties_condition(self._cohort.filters(), context))
        if None not in names:
            filters.append(exp.In(this=context.event_column("event"), expressions=[context.param(name) for name in sorted(set(names))]))
        in_range = [exp.GTE(this=ts, expression=context.engine.timestamp(boundaries[0], context.params)),
                    exp.LT(this=ts.copy(), expression=context.engine.timestamp(boundaries[-1], context.params))]
        index = exp.alias_(interval_index(ts.copy(), boundaries, context, checked=False), "idx")
        returning = self._entity_condition(self.returning, context)

        if self.retention_type == RECURRING and self._same_entities() and self.minimum_occurrences == 1:
            # Every active interval both starts a cohort and counts as a return.
            activity = group_by_actor(context, events_select(context, [*key, index], [*filters, *in_range, returning]), group)
            return with_ctes(self._counts(context, ("activity", None), ("activity", None)), [("activity", activity)])
        if self.retention_type == RECURRING:
            target = self._entity_condition(self.target, context)
            starting = exp.Max(this=case([(target, exp.Literal.number(1))], exp.Literal.number(0)))
            returns = exp.Sum(this=case([(returning, exp.Literal.number(1))], exp.Literal.number(0)))
            activity = group_by_actor(context, events_select(
                context, [*key, index, exp.alias_(starting, "is_start"), exp.alias_(returns, "return_count")],
                [*filters, *in_range, exp.or_(target.copy(), returning.copy())],
            ), group)
            minimum = context.param(self.minimum_occurrences)
            counts = self._counts(
                context,
                ("activity", lambda alias: exp.EQ(this=exp.column("is_start", table=alias), expression=exp.Literal.number(1))),
                ("activity", lambda alias: exp.GTE(this=exp.column("return_count", table=alias), expression=minimum.copy())),
            )
            return with_ctes(counts, [("activity", activity)])
        first_ts = exp.column("first_ts")
        first_in_range = exp.and_(
            exp.GTE(this=first_ts, expression=context.engine.timestamp(boundaries[0], context.params)),
            exp.LT(this=first_ts.copy(), expression=context.engine.timestamp(boundaries[-1], context.params)),
        )
        ctes = [
            ("firsts", self._firsts(context, key, group[:-1], filters)),
            ("cohort_starts", self._select_key("firsts", index=interval_index(first_ts.copy(), boundaries, context, checked=False))
             .where(first_in_range)),
            ("cohort_returns", group_by_actor(
                context, events_select(context, [*key, index.copy()], [*filters, *in_range, returning])
                .having(exp.GTE(this=exp.Count(this=exp.Star()), expression=context.param(self.minimum_occurrences))), group)),
        ]
        return with_ctes(self._counts(context, ("cohort_starts", None), ("cohort_returns", None)), ctes)

    def _same_entities(self) -> bool:
        def identity(entity: RetentionEntity):
            return self._is_action(entity), entity.id if self._is_action(entity) else self._event_name(entity), [prop.model_dump() for prop in entity.properties or []]

        return identity(self.target) == identity(self.returning)

    def _entity_condition(self, entity: RetentionEntity, context: SQLContext) -> exp.Expression:
        if self._is_action(entity):
            condition = and_all([self.actions.condition(entity.id, context), properties_condition(entity.properties, context)])
        else:
            condition = entity_condition(self._event_name(entity), entity.properties, context)
        return condition if condition is not None else exp.true()

    def _breakdown_value(self, context: SQLContext) -> exp.Expression:
        kind, name, group_index = self.breakdown
        if kind == "group":
            value = group_breakdown_value(context, group_index, name)
        else:
            value = context.person_property(name) if kind == "person" else context.event_property(name)
        return exp.Coalesce(this=value, expressions=[exp.Literal.string("")])

    def _key_names(self) -> list[str]:
        return [*ACTOR_COLUMNS, *(["breakdown_value"] if self.breakdown else [])]

    def _select_key(self, table: str, index: Optional[exp.Expression] = None) -> exp.Select:
        columns = [exp.column(name) for name in self._key_names()]
        columns.append(exp.alias_(index, "idx") if index is not None else exp.column("idx"))
        return exp.select(*columns).from_(table)

    def _firsts(self, context: SQLContext, key: list[exp.Expression], group: list[exp.Expression],
                filters: list[exp.Expression]) -> exp.Expression:
        """Per actor, the time of the first target event ever (no date range) that defines its cohort
        (`group`: the GROUP BY after the actor)."""
        ts = context.event_column("timestamp")
        target = self._entity_condition(self.target, context)
        if self.retention_type == FIRST_TIME:
            return group_by_actor(context, events_select(context, [*key, exp.alias_(exp.Min(this=ts), "first_ts")], [*filters, target]), group)
        # First ever occurrence: the first event of that name, counted only if it also matches the entity's filters.
        name_only = self._entity_condition(RetentionEntity(id=self.target.id, type=self.target.type, kind=self.target.kind), context)
        first_any = exp.Min(this=ts.copy())
        first_matching = exp.Min(this=case([(target, ts.copy())]))
        return group_by_actor(context, events_select(context, [*key, exp.alias_(first_any, "first_ts")], [*filters, name_only])
                              .having(exp.EQ(this=first_any.copy(), expression=first_matching)), group)

    def _counts(self, context: SQLContext, starts: tuple[str, Optional[Callable]], returns: tuple[str, Optional[Callable]]) -> exp.Select:
        """Cohort sizes (offset 0) and, per later interval, the cohort's actors who returned then.

        `starts` and `returns` are (table, condition on a table alias or None) of (actor key, idx) rows.
        """
        names = self._key_names()
        (starts_table, starts_where), (returns_table, returns_where) = starts, returns
        breakdown = [exp.column("breakdown_value")] if self.breakdown else []
        sizes = (exp.select(*([exp.column("breakdown_value", table="s")] if self.breakdown else []),
                            exp.alias_(exp.column("idx", table="s"), "cohort"),
                            exp.alias_(exp.Literal.number(0), "offset_k"), exp.alias_(exp.Count(this=exp.Star()), "actors"))
                 .from_(exp.to_table(starts_table).as_("s")))
        if starts_where:
            sizes = sizes.where(starts_where("s"))
        sizes = sizes.group_by(*[exp.Literal.number(i + 1) for i in range(len(breakdown) + 1)])
        # (actor key, breakdown value?, s_idx, r_idx): each cohort start with each later return in the window.
        pair_rows = context.engine.interval_pairs(
            (starts_table, starts_where("s") if starts_where else None),
            (returns_table, returns_where("r") if returns_where else None),
            names, context.param(self.total_intervals))
        offset = exp.Sub(this=exp.column("r_idx"), expression=exp.column("s_idx"))
        pairs = exp.select(*[c.copy() for c in breakdown], exp.alias_(exp.column("s_idx"), "cohort")).from_(
            exp.Subquery(this=pair_rows, alias=exp.TableAlias(this=exp.to_identifier("pairs"))))
        if self.query.retentionFilter.cumulative:
            # Each (actor, cohort) once, at the furthest interval it returned in.
            furthest = pairs.select(exp.alias_(exp.Max(this=offset), "offset_k")).group_by(
                *[exp.column(name) for name in names], exp.column("s_idx"))
            returned = (exp.select(*[exp.column(name) for name in (["breakdown_value"] if self.breakdown else [])], "cohort", "offset_k",
                                   exp.alias_(exp.Count(this=exp.Star()), "actors"))
                        .from_(exp.Subquery(this=furthest, alias=exp.TableAlias(this=exp.to_identifier("furthest")))))
            returned = returned.group_by(*[exp.Literal.number(i + 1) for i in range(len(breakdown) + 2)])
        else:
            returned = pairs.select(exp.alias_(offset, "offset_k"), exp.alias_(exp.Count(this=exp.Star()), "actors"))
            returned = returned.group_by(*[exp.Literal.number(i + 1) for i in range(len(breakdown) + 2)])
        return exp.union(sizes, returned, distinct=False)
