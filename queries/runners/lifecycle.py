"""LifecycleQuery: per interval, how many persons were new, returning, resurrecting or dormant.

One SQL statement. Each person's active intervals (team timezone, one interval of history before
the range) come from a GROUP BY; window functions give each active interval its previous and next
one, which decide the status: new (first activity in the interval the person was created in),
returning (active in the interval before too), resurrecting (otherwise), and dormant in the
interval after an active one without activity. Python lays the counts out as PostHog's four series.
"""
from datetime import datetime
from typing import Optional

from sqlglot import exp

from ..dates import QueryDateRange, add_intervals
from ..schema import ActionsNode, LifecycleQuery, PropertyFilter, PropertyOperator
from ..sql.actions import earliest_names, series_condition, series_label
from ..sql.actors import events_select, events_series, query_conditions, with_ctes
from ..sql.context import SQLContext
from ..sql.engine import Params, case
from ..sql.groups import aggregate_by_group, group_key
from ..sql.intervals import interval_index
from ..sql.properties import properties_condition
from .actor_insight import ActorInsightRunner, date_range_errors
from .base import register, response_value

STATUSES = ("new", "returning", "resurrecting", "dormant")
# Personless events (`$process_person_profile: false`) have no person whose lifecycle could be told.
PERSON_PROFILE_FILTER = PropertyFilter(key="$process_person_profile", value="false", operator=PropertyOperator.is_not, type="event")


@register
class LifecycleQueryRunner(ActorInsightRunner):
    kind = "LifecycleQuery"
    query_model = LifecycleQuery

    def __init__(self, query: LifecycleQuery, team, **kwargs):
        super().__init__(query, team, **kwargs)
        self.query: LifecycleQuery
        self.series = events_series(query.series, "LifecycleQuery")
        for series in self.series:
            series_label(series, self.actions)  # a missing action is a 400, before any SQL
        self.interval_name = query.interval.value if query.interval else "day"
        # With `explicitDate` the range is used as given (QueryDateRange.explicit).
        self.date_range = QueryDateRange(query.dateRange, tz=self.tz, interval=self.interval_name, now=self.now,
                                         week_start_day=self.week_start_day, earliest=self._earliest)
        with date_range_errors():
            self.periods = self.date_range.bucket_starts()
            if self.date_range.explicit:
                # Exact ranges keep only the periods that start inside them.
                self.periods = [start for start in self.periods if self.date_range.date_from() <= start <= self.date_range.date_to()]
            # Events from one interval before the first period decide the first period's statuses.
            self.boundaries = ([add_intervals(self.periods[0], self.interval_name, -1), *self.periods,
                                add_intervals(self.periods[-1], self.interval_name, 1)] if self.periods else [])

    def _earliest(self) -> Optional[datetime]:
        return self.earliest_event(earliest_names(self.series, self.actions))

    def range_start(self) -> datetime:
        return self.date_range.date_from()

    def range_end(self) -> datetime:
        return self.date_range.date_to()

    # --- Calculation ---------------------------------------------------------------------------

    def calculate(self) -> dict:
        counts: dict[tuple[int, str], int] = {}
        if self.periods:
            context = SQLContext(self.engine, self.team, Params())
            for index, status, actors in self.run_sql(self._statement(context), context.params):
                counts[(int(index), status)] = int(actors)
        return {
            "results": [self._series_result(status, counts) for status in STATUSES],
            "hogql": ";\n\n".join(self.executed_sql),
            "modifiers": self.query.modifiers or {},
            "error": None,
            "resolved_date_range": response_value(self.date_range.resolved()),
        }

    def _series_result(self, status: str, counts: dict[tuple[int, str], int]) -> dict:
        sign = -1 if status == "dormant" else 1
        # SQL numbers the interval before the first period 0, so period k is index k + 1.
        data = [float(sign * counts.get((k + 1, status), 0)) for k in range(len(self.periods))]
        first = self.series[0]
        name = series_label(first, self.actions)
        if isinstance(first, ActionsNode):
            action = {"id": str(first.id), "name": name, "type": "actions", "order": 0, "math": "total"}
        else:
            action = {"id": first.event, "name": name, "type": "events", "order": 0, "math": "total"}
        if first.custom_name is not None:
            action["custom_name"] = first.custom_name
        return {
            "action": action,
            "data": data,
            "count": float(sum(data)),
            "labels": [self.date_range.label(start) for start in self.periods],
            "days": [self.date_range.day_string(start) for start in self.periods],
            "label": f"{name} - {status}",
            "status": status,
        }

    # --- SQL -----------------------------------------------------------------------------------

    def _statement(self, context: SQLContext) -> exp.Select:
        """Rows (interval index, status, persons); index 0 is the interval before the first period."""
        boundaries = self.boundaries
        context.events_time_range = (boundaries[0], boundaries[-1])  # bounds the sessions read (queries.sql.sessions)
        ts = context.event_column("timestamp")
        person = context.event_column("person")
        group_index = self.query.aggregation_group_type_index
        aggregate_by_group(context, group_index)  # groups as actors (their key), `$group_N = ''` left out
        conditions = query_conditions(self.query, self.team, context)
        conditions += [series_condition(series, context, self.actions) for series in self.series]
        conditions += [
            properties_condition([PERSON_PROFILE_FILTER], context),
            exp.Not(this=exp.Is(this=person, expression=exp.null())),
            exp.GTE(this=ts, expression=context.engine.timestamp(boundaries[0], context.params)),
            exp.LT(this=ts.copy(), expression=context.engine.timestamp(boundaries[-1], context.params)),
        ]
        actor = person.copy() if group_index is None else group_key(context, group_index)
        columns = [exp.alias_(actor, "actor"), exp.alias_(interval_index(ts.copy(), boundaries, context, checked=False), "idx")]
        if group_index is not None:
            # A group is "new" in the interval of the earliest created_at of the persons behind its events.
            columns.append(exp.alias_(exp.Min(this=context.person_column("created_at")), "created_at"))
        activity = events_select(context, columns, [condition for condition in conditions if condition is not None]).group_by(
            exp.Literal.number(1), exp.Literal.number(2))

        person_context = SQLContext(context.engine, context.team, context.params)
        ordering = {"partition_by": [exp.column("actor", table="a")], "order": exp.Order(expressions=[exp.Ordered(this=exp.column("idx", table="a"))])}
        if group_index is None:
            created_at = person_context.person_column("created_at")
            creators = (person_context.person_table(), exp.EQ(this=person_context.person_column("id"), expression=exp.column("actor", table="a")))
        else:
            created_at = exp.column("created_at", table="c")
            firsts = exp.select("actor", exp.alias_(exp.Min(this=exp.column("created_at")), "created_at")).from_("activity").group_by(
                exp.Literal.number(1))
            creators = (exp.Subquery(this=firsts, alias=exp.TableAlias(this=exp.to_identifier("c"))),
                        exp.EQ(this=exp.column("actor", table="c"), expression=exp.column("actor", table="a")))
        ordered = (
            exp.select(
                exp.column("actor", table="a"), exp.column("idx", table="a"),
                exp.alias_(interval_index(created_at, boundaries, person_context, checked=True), "created_idx"),
                exp.alias_(exp.Window(this=exp.Lag(this=exp.column("idx", table="a")), **ordering), "previous_idx"),
                exp.alias_(exp.Window(this=exp.Lead(this=exp.column("idx", table="a")), **_copy(ordering)),
                           "next_idx"),
            )
            .from_(exp.to_table("activity").as_("a"))
            .join(creators[0], on=creators[1], join_type="inner")
        )

        idx, previous_idx, next_idx = exp.column("idx"), exp.column("previous_idx"), exp.column("next_idx")
        one = exp.Literal.number(1)
        status = case(
            [
                (exp.Is(this=previous_idx, expression=exp.null()),
                 case([(exp.EQ(this=exp.column("created_idx"), expression=idx.copy()), exp.Literal.string("new"))],
                      exp.Literal.string("resurrecting"))),
                (exp.EQ(this=previous_idx.copy(), expression=exp.Sub(this=idx.copy(), expression=one.copy())), exp.Literal.string("returning")),
            ],
            exp.Literal.string("resurrecting"),
        )
        active = exp.select(exp.alias_(idx.copy(), "idx"), exp.alias_(status, "status")).from_("ordered")
        following = exp.Add(this=idx.copy(), expression=one.copy())
        dormant = (
            exp.select(exp.alias_(following, "idx"), exp.alias_(exp.Literal.string("dormant"), "status"))
            .from_("ordered")
            .where(exp.or_(exp.Is(this=next_idx, expression=exp.null()), exp.NEQ(this=next_idx.copy(), expression=following.copy())))
        )
        statuses = exp.union(active, dormant, distinct=False)
        counted = (
            exp.select("idx", "status", exp.alias_(exp.Count(this=exp.Star()), "actors"))
            .from_(exp.Subquery(this=statuses, alias=exp.TableAlias(this=exp.to_identifier("statuses"))))
            .where(exp.and_(exp.GTE(this=exp.column("idx"), expression=one.copy()),
                            exp.LTE(this=exp.column("idx"), expression=exp.Literal.number(len(self.periods)))))
            .group_by(exp.Literal.number(1), exp.Literal.number(2))
        )
        return with_ctes(counted, [("activity", activity), ("ordered", ordered)])


def _copy(ordering: dict) -> dict:
    return {key: ([item.copy() for item in value] if isinstance(value, list) else value.copy()) for key, value in ordering.items()}
