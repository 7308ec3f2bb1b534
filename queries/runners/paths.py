"""PathsQuery: the most common steps actors take, as weighted edges between numbered steps.

One SQL statement over the actors' events: each event becomes a path item (URL for pageviews,
screen name for screens, else the event name or a HogQL expression; then the path cleaning rules
and groupings), events are split into sessions at 30-minute gaps, repeated items collapse and the
steps are numbered (the engine's `session_steps`: window functions, or on ClickHouse one sorted
array per actor), paths are cut at the start/end point and to `stepLimit` steps, and consecutive
steps are counted as edges `{n}_{item} -> {n+1}_{item}` with their average time. Python drops
edges unreachable from a first step (as PostHog does) and converts times to milliseconds.
"""
import re
from collections import defaultdict
from datetime import datetime
from typing import Optional

from rest_framework.exceptions import ValidationError
from sqlglot import exp

from ..dates import QueryDateRange, start_of_interval, to_utc
from ..schema import PathsFilter, PathsQuery
from ..sql.actors import ACTOR_COLUMNS, actor_key_aliased, events_select, query_conditions, reject_group_aggregation, with_ctes
from ..sql.context import SQLContext
from ..sql.engine import Params, case, paren, window
from ..sql.hogql import STRING, compile_expression
from ..sql.regex import regex_problem
from .actor_insight import ActorInsightRunner, date_range_errors
from .funnel_paths import FunnelPaths
from .base import register, response_value

DEFAULT_STEP_LIMIT = 5
DEFAULT_EDGE_LIMIT = 50
SESSION_GAP_MICROSECONDS = 30 * 60 * 1_000_000
PAGEVIEW, SCREEN, CUSTOM_EVENT, HOGQL = "$pageview", "$screen", "custom_event", "hogql"
ELLIPSIS = "..."


@register
class PathsQueryRunner(ActorInsightRunner):
    kind = "PathsQuery"
    query_model = PathsQuery

    def __init__(self, query: PathsQuery, team, **kwargs):
        super().__init__(query, team, **kwargs)
        self.query: PathsQuery
        self.paths_filter: PathsFilter = query.pathsFilter
        reject_group_aggregation(query)
        self.funnel_paths = (FunnelPaths(query.funnelPathsFilter, team, now=self.now, engine=self._engine)
                             if query.funnelPathsFilter is not None else None)
        self.step_limit = self.paths_filter.stepLimit or DEFAULT_STEP_LIMIT
        if self.step_limit < 1:
            raise ValidationError("stepLimit must be at least 1.")
        self.edge_limit = self.paths_filter.edgeLimit or DEFAULT_EDGE_LIMIT
        if self.edge_limit < 1:
            raise ValidationError("edgeLimit must be at least 1.")
        self.cleaning = [(rule.regex or "", rule.alias or "") for rule in self.paths_filter.localPathCleaningFilters or []]
        for pattern, _alias in self.cleaning:
            _check_regex(pattern, "path cleaning rule")
        # Wildcard groupings: '*' matches anything, the rest literally; the first match names the item.
        self.groupings = [(grouping, re.escape(grouping).replace("\\*", ".*")) for grouping in self.paths_filter.pathGroupings or []]
        self.date_range = QueryDateRange(query.dateRange, tz=self.tz, interval="day", now=self.now, week_start_day=self.week_start_day)
        with date_range_errors():
            # Events from the start of date_from's day up to date_to.
            self.start = start_of_interval(self.date_range.date_from(), "day", self.week_start_day)
            self.end = self.date_range.date_to()

    def range_start(self) -> datetime:
        return self.date_range.date_from()

    def range_end(self) -> datetime:
        return self.end

    # --- Calculation ---------------------------------------------------------------------------

    def calculate(self) -> dict:
        context = SQLContext(self.engine, self.team, Params())
        rows = self.run_sql(self._statement(context), context.params)
        results = [
            {"source": source, "target": target, "value": int(value), "average_conversion_time": float(total) / int(value) / 1000.0}
            for source, target, value, total in _reachable(rows)
        ]
        return {
            "results": results,
            "hogql": ";\n\n".join(self.executed_sql),
            "modifiers": self.query.modifiers or {},
            "error": None,
            "resolved_date_range": response_value(self.date_range.resolved()),
        }

    # --- Path items ----------------------------------------------------------------------------

    def _queried(self, event_type: str) -> bool:
        """Whether pageviews/screens/hogql items are shaped specially (PostHog's `_should_query_event`)."""
        include = self.paths_filter.includeEventTypes
        if not include:
            return event_type not in (self.paths_filter.excludeEvents or [])
        return event_type in include

    def _raw_columns(self, context: SQLContext) -> list[exp.Expression]:
        """The event fields a path item is made of, read once per event."""
        columns = [exp.alias_(context.event_column("event"), "event_name")]
        if self._queried(PAGEVIEW):
            url = exp.Coalesce(this=context.event_property("$current_url"), expressions=[exp.Literal.string("")])
            columns.append(exp.alias_(url, "current_url"))
        if self._queried(SCREEN):
            columns.append(exp.alias_(context.event_property("$screen_name"), "screen_name"))
        if self._queried(HOGQL) and self.paths_filter.pathsHogQLExpression:
            typed = compile_expression(self.paths_filter.pathsHogQLExpression, context)
            columns.append(exp.alias_(typed.sql if typed.type == STRING else context.engine.to_text(typed.sql), "custom_item"))
        return columns

    def _item(self, context: SQLContext) -> exp.Expression:
        """The path item of a row of `raw_events`, cleaned by the path cleaning rules."""
        event = exp.column("event_name")
        item: exp.Expression = exp.column("custom_item") if self._queried(HOGQL) and self.paths_filter.pathsHogQLExpression else event
        if self._queried(PAGEVIEW):
            item = case([(exp.EQ(this=event.copy(), expression=context.param(PAGEVIEW)), context.engine.without_trailing_slash(exp.column("current_url")))], item)
        if self._queried(SCREEN):
            item = case([(exp.EQ(this=event.copy(), expression=context.param(SCREEN)), exp.column("screen_name"))], item)
        item = exp.Coalesce(this=item, expressions=[exp.Literal.string("")])
        for pattern, alias in self.cleaning:
            item = context.engine.regex_replace(item, pattern, alias, context.params)
        return item

    def _grouped(self, context: SQLContext) -> exp.Expression:
        """`cleaned_item` replaced by the first path grouping it matches."""
        item = exp.column("cleaned_item")
        if not self.groupings:
            return item
        return case([(context.engine.regex(item.copy(), context.param(regex)), context.param(grouping)) for grouping, regex in self.groupings],
                    item)

    def _event_type_condition(self, context: SQLContext) -> Optional[exp.Expression]:
        include = self.paths_filter.includeEventTypes or []
        event = context.event_column("event")
        parts = []
        if PAGEVIEW in include:
            parts.append(exp.EQ(this=event, expression=context.param(PAGEVIEW)))
        if SCREEN in include:
            parts.append(exp.EQ(this=event.copy(), expression=context.param(SCREEN)))
        if CUSTOM_EVENT in include:
            first = exp.Substring(this=event.copy(), start=exp.Literal.number(1), length=exp.Literal.number(1))
            parts.append(exp.NEQ(this=first, expression=exp.Literal.string("$")))
        return exp.or_(*parts) if parts else None

    # --- SQL -----------------------------------------------------------------------------------

    def _statement(self, context: SQLContext) -> exp.Select:
        """Rows (source, target, paths with the edge, summed microseconds between the two steps)."""
        ts = context.event_column("timestamp")
        start = to_utc(self.start)
        context.events_time_range = (start, to_utc(self.end))  # bounds the sessions read (queries.sql.sessions)
        conditions = query_conditions(self.query, self.team, context)
        conditions += [exp.GTE(this=ts, expression=context.engine.timestamp(start, context.params)),
                       exp.LTE(this=ts.copy(), expression=context.engine.timestamp(to_utc(self.end), context.params))]
        event_types = self._event_type_condition(context)
        if event_types is not None:
            conditions.append(event_types)
        columns = [
            *actor_key_aliased(context),
            exp.alias_(context.event_column("id"), "event_order"),
            exp.alias_(context.engine.epoch_microseconds(ts.copy()), "t_us"),
            *self._raw_columns(context),
        ]
        raw_events = events_select(context, columns, conditions)
        if self.funnel_paths:
            raw_events = self.funnel_paths.restrict(raw_events, context)
        kept = [*ACTOR_COLUMNS, "event_order", "t_us"]
        cleaned_events = exp.select(*kept, exp.alias_(self._item(context), "cleaned_item")).from_("raw_events")
        path_events = exp.select(*kept, exp.alias_(self._grouped(context), "path_item")).from_("cleaned_events")
        excluded = self.paths_filter.excludeEvents if self.paths_filter.includeEventTypes else None
        if excluded:
            # PostHog applies excludeEvents as a filter only together with includeEventTypes.
            path_events = (exp.select("*").from_(exp.Subquery(this=path_events, alias=exp.TableAlias(this=exp.to_identifier("items"))))
                           .where(exp.Not(this=exp.In(this=exp.column("path_item"), expressions=[context.param(e) for e in excluded]))))

        in_session = [*(exp.column(name) for name in ACTOR_COLUMNS), exp.column("session_index")]
        # Uncut paths keep their first stepLimit steps only; a start or end point is looked for in the whole path.
        max_steps = None if self.paths_filter.startPoint or self.paths_filter.endPoint else self.step_limit
        ctes = [("raw_events", raw_events), ("cleaned_events", cleaned_events), ("path_events", path_events),
                *context.engine.session_steps("path_events", list(ACTOR_COLUMNS), SESSION_GAP_MICROSECONDS, max_steps)]
        ctes += self._limited(context, in_session)
        return with_ctes(self._edges(context), ctes)

    def _limited(self, context: SQLContext, in_session: list[exp.Expression]) -> list[tuple[str, exp.Expression]]:
        """CTEs ending in `limited` (actor, session, pos, t_us, path_item, previous_item, previous_t_us):
        each path cut to its steps, with the item and time of the step before (at pos - 1).

        Cut at most at one point, a path keeps consecutive numbered steps, so the step before is
        the numbered one before (which `numbered` carries); around a '...' step it is not."""
        start_point, end_point = self.paths_filter.startPoint, self.paths_filter.endPoint
        limit = self.step_limit
        p, item = exp.column("p"), exp.column("path_item")
        base = [*ACTOR_COLUMNS, "session_index", "t_us"]
        previous = ["previous_item", "previous_t_us"]

        def first_position(value: str, extra: Optional[exp.Expression] = None) -> exp.Expression:
            matches = exp.EQ(this=item.copy(), expression=context.param(value))
            if extra is not None:
                matches = exp.and_(matches, extra)
            return window(exp.Min(this=case([(matches, p.copy())])), [c.copy() for c in in_session], None)

        if start_point and end_point:
            starts = exp.select("*", exp.alias_(first_position(start_point), "s")).from_("numbered")
            ends = exp.select("*", exp.alias_(first_position(end_point, exp.GTE(this=p.copy(), expression=exp.column("s"))), "t")).from_("starts")
            s, t = exp.column("s"), exp.column("t")
            r = paren(exp.Add(this=exp.Sub(this=p.copy(), expression=s.copy()), expression=exp.Literal.number(1)))
            n = paren(exp.Add(this=exp.Sub(this=t.copy(), expression=s.copy()), expression=exp.Literal.number(1)))
            half = limit // 2
            tail_from = paren(exp.Sub(this=n.copy(), expression=exp.Literal.number(half)))
            # Paths longer than the limit keep their first and last limit/2 steps around a '...' step.
            long_path = exp.GT(this=n.copy(), expression=exp.Literal.number(limit))
            pos = case([(exp.and_(long_path, exp.GT(this=r.copy(), expression=tail_from)),
                         exp.Add(this=exp.Sub(this=r.copy(), expression=tail_from.copy()), expression=exp.Literal.number(half + 1)))],
                       r.copy())
            shown = case([(exp.and_(long_path.copy(), exp.EQ(this=r.copy(), expression=exp.Literal.number(half + 1))),
                           exp.Literal.string(ELLIPSIS))], item.copy())
            keep = exp.and_(
                exp.Not(this=exp.Is(this=t.copy(), expression=exp.null())),
                exp.GTE(this=p.copy(), expression=s.copy()), exp.LTE(this=p.copy(), expression=t.copy()),
                exp.or_(exp.Not(this=long_path.copy()), exp.LTE(this=r.copy(), expression=exp.Literal.number(half + 1)),
                        exp.GT(this=r.copy(), expression=tail_from.copy())),
            )
            cut = exp.select(*base, exp.alias_(pos, "pos"), exp.alias_(shown, "path_item")).from_("ends").where(keep)
            by_pos = [exp.Ordered(this=exp.column("pos"))]
            limited = exp.select(*base, "pos", "path_item", *(
                exp.alias_(window(exp.Lag(this=exp.column(column)), in_session, by_pos), name)
                for column, name in (("path_item", "previous_item"), ("t_us", "previous_t_us")))).from_("cut")
            return [("starts", starts), ("ends", ends), ("cut", cut), ("limited", limited)]

        target = _without_trailing_slash_text(end_point or start_point) if (end_point or start_point) else None
        if target is None:
            select = exp.select(*base, exp.alias_(p.copy(), "pos"), "path_item", *previous).from_("numbered").where(
                exp.LTE(this=p.copy(), expression=exp.Literal.number(limit)))
            return [("limited", select)]
        targeted = exp.select("*", exp.alias_(first_position(target), "t")).from_("numbered")
        t = exp.column("t")
        found = exp.Not(this=exp.Is(this=t.copy(), expression=exp.null()))
        if start_point:
            pos = exp.Add(this=exp.Sub(this=p.copy(), expression=t.copy()), expression=exp.Literal.number(1))
            keep = exp.and_(found, exp.GTE(this=p.copy(), expression=t.copy()), exp.LTE(this=pos.copy(), expression=exp.Literal.number(limit)))
        else:
            skipped = case([(exp.GT(this=t.copy(), expression=exp.Literal.number(limit)),
                             exp.Sub(this=t.copy(), expression=exp.Literal.number(limit)))], exp.Literal.number(0))
            pos = exp.Sub(this=p.copy(), expression=skipped)
            keep = exp.and_(found, exp.LTE(this=p.copy(), expression=t.copy()),
                            exp.GT(this=p.copy(), expression=exp.Sub(this=t.copy(), expression=exp.Literal.number(limit))))
        select = exp.select(*base, exp.alias_(pos, "pos"), "path_item", *previous).from_("targeted").where(keep)
        return [("targeted", targeted), ("limited", select)]

    def _edges(self, context: SQLContext) -> exp.Select:
        steps = exp.select("pos", "path_item", "previous_item",
                           exp.alias_(exp.Sub(this=exp.column("t_us"), expression=exp.column("previous_t_us")), "elapsed_us")).from_("limited")

        def key(position: exp.Expression, value: exp.Expression) -> exp.Expression:
            return exp.DPipe(this=exp.DPipe(this=context.engine.to_text(position), expression=exp.Literal.string("_")), expression=value)

        source = key(exp.Sub(this=exp.column("pos"), expression=exp.Literal.number(1)), exp.column("previous_item"))
        edges = (exp.select(exp.alias_(source, "source"), exp.alias_(key(exp.column("pos"), exp.column("path_item")), "target"),
                            exp.alias_(exp.Count(this=exp.Star()), "edge_value"), exp.alias_(exp.Sum(this=exp.column("elapsed_us")), "elapsed_us"))
                 .from_(exp.Subquery(this=steps, alias=exp.TableAlias(this=exp.to_identifier("steps"))))
                 .where(exp.GT(this=exp.column("pos"), expression=exp.Literal.number(1)))
                 .group_by(exp.Literal.number(1), exp.Literal.number(2)))
        weights = []
        if self.paths_filter.minEdgeWeight:
            weights.append(exp.GTE(this=exp.Count(this=exp.Star()), expression=context.param(self.paths_filter.minEdgeWeight)))
        if self.paths_filter.maxEdgeWeight:
            weights.append(exp.LTE(this=exp.Count(this=exp.Star()), expression=context.param(self.paths_filter.maxEdgeWeight)))
        if weights:
            edges = edges.having(exp.and_(*weights))
        order = [exp.Ordered(this=exp.column("edge_value"), desc=True),
                 exp.Ordered(this=context.engine.binary_order(exp.column("source"))),
                 exp.Ordered(this=context.engine.binary_order(exp.column("target")))]
        return (exp.select("source", "target", "edge_value", "elapsed_us")
                .from_(exp.Subquery(this=edges, alias=exp.TableAlias(this=exp.to_identifier("edges"))))
                .order_by(*order).limit(context.param(self.edge_limit)))


def _without_trailing_slash_text(value: str) -> str:
    return value[:-1] if len(value) > 1 and value.endswith("/") else value


def _check_regex(pattern: str, what: str) -> None:
    problem = regex_problem(pattern)
    if problem:
        raise ValidationError(f"Invalid regular expression in {what} {pattern!r}: {problem}")


def _reachable(rows: list[tuple]) -> list[tuple]:
    """Edges whose source can be reached from a first step ("1_..."), in their original order."""
    targets = defaultdict(list)
    pending = []
    for source, target, *_rest in rows:
        targets[source].append(target)
        if source.startswith("1_"):
            pending.append(source)
    seen = set()
    while pending:
        node = pending.pop()
        seen.add(node)
        pending.extend(child for child in targets[node] if child not in seen)
    return [row for row in rows if row[0] in seen]
