"""Funnel paths (`PathsQuery.funnelPathsFilter`): the paths of a funnel's actors around one of its steps.

As PostHog: the actors are those of the funnel source at `funnelStep` (1-based: reached step N;
negative: reached step |N|-1 but not step |N|), with the times their counted attempt reached its
steps; a path only reads each actor's events
- `funnel_path_after_step`: at or after the target step's time (for a drop-off, one conversion
  window after the last step they reached),
- `funnel_path_before_step`: at or before the target step's time,
- `funnel_path_between_steps`: between the times of the step before the target and the target.
The target step is N-1 (0-based), or |N|-2 for a drop-off. The funnel's per-actor computation is
the funnels runner's own SQL (queries.sql.funnels), joined into the paths statement as a subquery.
"""
from datetime import timedelta

from rest_framework.exceptions import ValidationError
from sqlglot import exp

from ..schema import FunnelPathsFilter
from ..sql.context import SQLContext
from ..sql.funnels import FunnelSQL
from .funnels import WINDOW_UNITS, FunnelsQueryRunner

AFTER, BEFORE, BETWEEN = "funnel_path_after_step", "funnel_path_before_step", "funnel_path_between_steps"
ALIAS = "funnel_actors"


class FunnelPaths:
    """Validates a funnelPathsFilter and restricts the paths' events to the funnel actors' time bounds."""

    def __init__(self, funnel_paths: FunnelPathsFilter, team, *, now, engine):
        self.path_type = funnel_paths.funnelPathType
        if self.path_type is None:
            raise ValidationError("funnelPathsFilter needs a funnelPathType.")
        self.step = funnel_paths.funnelStep
        self.funnel = FunnelsQueryRunner(funnel_paths.funnelSource, team, now=now, engine=engine)
        source = self.funnel
        if source.order == "unordered":
            raise ValidationError("Funnel paths are not supported for unordered funnels.")
        if source.filter.funnelAggregateByHogQL and source.filter.funnelAggregateByHogQL.strip() not in ("person_id", "person.id"):
            raise ValidationError("Funnel paths need a funnel of persons (no funnelAggregateByHogQL).")
        steps = len(source.query.series)
        if self.step is None:
            raise ValidationError("funnelPathsFilter needs a funnelStep.")
        if self.step == 0:
            raise ValidationError("Funnel steps are 1-indexed, so step 0 doesn't exist")
        if self.step == -1:
            raise ValidationError("The first valid drop-off argument for funnelStep is -2. -2 refers to persons who "
                                  "performed the first step but never made it to the second.")
        if abs(self.step) > steps:
            raise ValidationError(f"funnelStep is out of bounds: the funnel has {steps} steps.")
        # The 0-based step whose time bounds the paths.
        self.target = self.step - 1 if self.step > 0 else abs(self.step) - 2
        if self.path_type == BETWEEN and self.target == 0:
            raise ValidationError("Cannot request preceding step timestamp if target funnel step is the first step")

    def restrict(self, select: exp.Select, context: SQLContext) -> exp.Select:
        """`select` (FROM events e ...) joined to the funnel's actors and cut to their time bounds."""
        funnel_sql = FunnelSQL(self.funnel._plan(context), with_breakdown=False, with_times=True)
        actors = funnel_sql.step_times()
        reached = self._reached(funnel_sql)
        actors = exp.select("*").from_(exp.Subquery(this=actors, alias=exp.TableAlias(this=exp.to_identifier("funnel_steps")))).where(reached)
        names = funnel_sql.actor
        event_actor = context.engine.actor_columns(context.event_column("person"), context.event_column("distinct_id"))
        on = exp.and_(*[exp.EQ(this=value, expression=exp.column(name, table=ALIAS)) for value, name in zip(event_actor, names)])
        select = select.join(exp.Subquery(this=actors, alias=exp.TableAlias(this=exp.to_identifier(ALIAS))), on=on, join_type="inner")
        return select.where(self._time_bounds(context))

    def _reached(self, funnel_sql: FunnelSQL) -> exp.Expression:
        """Converted at step N: reached it; dropped off at N: reached step N-1 but not N. With optional
        steps (as PostHog): passed step N; passed the last required step before N but not N."""
        if not funnel_sql.optional:
            r = exp.column("r")
            if self.step > 0:
                return exp.GTE(this=r, expression=exp.Literal.number(self.target))
            return exp.EQ(this=r, expression=exp.Literal.number(self.target))

        def passed(step: int) -> exp.Expression:
            bit = exp.Mod(this=exp.IntDiv(this=exp.column("bits"), expression=exp.Literal.number(1 << step)), expression=exp.Literal.number(2))
            return exp.EQ(this=bit, expression=exp.Literal.number(1))

        if self.step > 0:
            return passed(self.target)
        dropped_at = abs(self.step) - 1
        required = max(k for k in range(dropped_at) if k not in funnel_sql.optional)
        return exp.and_(passed(required), exp.Not(this=passed(dropped_at)))

    def _time_bounds(self, context: SQLContext) -> exp.Expression:
        t = context.engine.epoch_microseconds(context.event_column("timestamp"))
        at = exp.column(f"at{self.target}", table=ALIAS)
        if self.path_type == BETWEEN:
            before = exp.column(f"at{self.target - 1}", table=ALIAS)
            return exp.and_(exp.GTE(this=t, expression=before), exp.LTE(this=t.copy(), expression=at))
        if self.path_type == BEFORE:
            return exp.LTE(this=t, expression=at)
        bound: exp.Expression = at
        if self.step < 0:
            bound = exp.Add(this=at, expression=exp.Literal.number(self._window_us()))
        return exp.GTE(this=t, expression=bound)

    def _window_us(self) -> int:
        ff = self.funnel.filter
        window = (ff.funnelWindowInterval or 14) * WINDOW_UNITS[ff.funnelWindowIntervalUnit or "day"]
        return window // timedelta(microseconds=1)

