"""The SQL of one trends series in one period: rows of ([bucket idx], breakdown values..., value)."""
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Optional

from rest_framework.exceptions import ValidationError
from sqlglot import exp

from ...dates import ONE_MICROSECOND, QueryDateRange, to_utc
from ...schema import EventsNode
from ...sql.actions import entity_condition
from ...sql.context import SQLContext
from ...sql.engine import case, paren
from ...sql.hogql import compile_expression
from ...sql.groups import aggregate_by_group
from ...sql.properties import and_all, properties_condition, test_account_filters
from ...sql.sessions import is_session_duration, session_value
from ..base import UnsupportedQuery
from .breakdown import BREAKDOWN_NULL, BREAKDOWN_OTHER, breakdown_value

if TYPE_CHECKING:
    from .runner import TrendsQueryRunner

PERCENTILES = {"median": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99}
PROPERTY_MATHS = {"sum", "avg", "min", "max", *PERCENTILES}
INTEGER_MATHS = {
    "total", "dau", "weekly_active", "monthly_active", "unique_session", "unique_group", "first_time_for_user",
    "first_matching_event_for_user", "min_count_per_actor", "max_count_per_actor",
}
ACTIVE_WINDOWS = {"weekly_active": 7, "monthly_active": 30}
# Maths that count groups instead of persons when the series names a math_group_type_index.
GROUP_MATHS = {"unique_group", "dau", "weekly_active", "monthly_active"}
BUCKETS = "buckets"


class SeriesQueryBuilder:
    """Builds the statement of one series in one period: rows of ([bucket idx], breakdown values..., value)."""

    def __init__(self, runner: "TrendsQueryRunner", series: EventsNode, date_range: QueryDateRange, context: SQLContext):
        self.runner = runner
        self.series = series
        self.date_range = date_range
        self.context = context
        self.math = series.math or "total"
        self.time_series = not runner.total_value
        self.ctes: list[exp.CTE] = []
        self.breakdown_count = len(runner.breakdowns)
        # unique_group is dau over groups (cumulative and windows included); without an index, a count.
        group_index = series.math_group_type_index if self.math in GROUP_MATHS else None
        if self.math == "unique_group":
            self.math = "dau" if group_index is not None else "total"
        self.group_conditions = aggregate_by_group(context, group_index)
        self.histograms: dict = {}  # histogram bins per breakdown position (see histogram.py)

    # Pieces

    def build(self) -> exp.Expression:
        breakdown_exprs = [breakdown_value(spec, self.context, self.histograms.get(i)) for i, spec in enumerate(self.runner.breakdowns)]
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

    def _conditions(self, *, filters: bool = True, scope: bool = True) -> list[exp.Expression]:
        """Team and event (`scope`), then the series, query and test-account property filters."""
        context, runner = self.context, self.runner
        conditions = [context.team_filter()] if scope else []
        if scope:
            conditions.append(entity_condition(self.series, context, runner.actions))
            conditions += [condition.copy() for condition in self.group_conditions]
        if filters:
            conditions.append(properties_condition(self.series.properties, context))
            conditions.append(properties_condition(runner.query.properties, context))
            if runner.query.filterTestAccounts:
                conditions.append(properties_condition(test_account_filters(runner.team), context))
        return [c for c in conditions if c is not None]

    def _time_conditions(self, lower: datetime, upper_exclusive: datetime) -> list[exp.Expression]:
        ts, engine, params = self.context.event_column("timestamp"), self.context.engine, self.context.params
        self.context.events_time_range = (lower, upper_exclusive)  # bounds the sessions read (queries.sql.sessions)
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

    def bounds_select(self, columns: list[exp.Expression]) -> exp.Select:
        """Aggregates (no grouping) over the series' matching events in the period, e.g. a property's min and max."""
        conditions = self._conditions()
        if self.time_series:
            rows = self._bucket_rows()
            conditions += self._time_conditions(rows[0][1], rows[-1][2])
        else:
            conditions += self._range_conditions()
        select = exp.select(*columns).from_(self.context.events_table())
        if self.context.uses_person:
            select = select.join(self.context.person_table(), on=self.context.person_join_condition(), join_type="left")
        return select.where(and_all(conditions))

    def _events_select(self, columns: list[exp.Expression], conditions: list[exp.Expression], *, source=None) -> exp.Select:
        # The time conditions first: the events table depends on them when it joins sessions.
        if self.time_series and self.context.engine.bucket_by_join:
            conditions = conditions + self._bucket_conditions()
        elif self.time_series:
            rows = self._bucket_rows()
            conditions = conditions + self._time_conditions(rows[0][1], rows[-1][2])
        else:
            conditions = conditions + self._range_conditions()
        events = source if source is not None else self.context.events_table()
        if self.time_series and self.context.engine.bucket_by_join:
            select = exp.select(*columns).from_(exp.to_table(BUCKETS).as_("b")).join(events, join_type="cross")
        else:
            select = exp.select(*columns).from_(events)
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
        if math_type in PROPERTY_MATHS and is_session_duration(self.series):
            return self._session_duration_select(breakdown_exprs)
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

    def _session_duration_select(self, breakdown_exprs) -> exp.Select:
        """Property math over sessions: each session counts once per bucket (and breakdown value) it
        has matching events in, with the whole session's duration (PostHog's per-session wrapper)."""
        keys = self._key_columns(breakdown_exprs)
        duration = exp.Max(this=session_value(self.context, "$session_duration"))
        if self.series.math_multiplier is not None:
            duration = exp.Mul(this=duration, expression=self.context.param(float(self.series.math_multiplier)))
        per_session = self._events_select([*keys, exp.alias_(duration, "value")], self._conditions())
        per_session = per_session.group_by(*self._group_positions(len(keys)), self.context.event_column("session_id")).having(
            exp.Not(this=exp.Is(this=duration.copy(), expression=exp.null())))
        source = self._cte("session_durations", per_session)
        names = self._key_names()
        if self.math in PERCENTILES:
            return self._percentile_of(source, PERCENTILES[self.math], names)
        cls = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max}[self.math]
        value = exp.Coalesce(this=cls(this=exp.Cast(this=exp.column("value"), to=exp.DataType.build("double"))),
                             expressions=[exp.Literal.number(0)])
        select = exp.select(*[exp.column(n) for n in names], exp.alias_(value, "value")).from_(source)
        return select.group_by(*self._group_positions(len(names))) if names else select

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
        outer_conditions = [] if matching else self._conditions(scope=False)
        # Session and group columns read outside (filters, breakdowns) come through the inner table.
        inner_context.session_fields |= outer_context.session_fields
        inner_context.group_property_indexes |= outer_context.group_property_indexes
        order = exp.Order(expressions=[exp.Ordered(this=inner_context.event_column("timestamp")), exp.Ordered(this=inner_context.event_column("uuid"))])
        rank = exp.Window(this=exp.RowNumber(), partition_by=inner_context.actor_key(), order=order)
        all_columns = exp.Column(this=exp.Star(), table=exp.to_identifier("e"))
        inner = exp.select(all_columns, exp.alias_(rank, "first_rank")).from_(inner_context.events_table())
        if inner_context.uses_person:
            inner = inner.join(inner_context.person_table(), on=inner_context.person_join_condition(), join_type="left")
        inner = inner.where(and_all(inner_conditions))
        source = exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("e")))
        conditions = [exp.EQ(this=exp.column("first_rank", table="e"), expression=exp.Literal.number(1))]
        conditions += outer_conditions
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
