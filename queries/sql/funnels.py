"""SQL for FunnelsQuery: each actor's progress through the funnel, computed with window functions.

PostHog computes funnels per actor with a state machine over the actor's time-ordered events (its
`aggregate_funnel` UDF). For ordered and strict funnels that machine has a closed form that SQL
window functions evaluate, one pass per step:

* every event matching step 0 starts an attempt, whose start is the event's time;
* an event matching step k (k > 0) extends the attempt of the *last* event that took an attempt
  to step k-1 before it (that attempt started last, so it has the most conversion window left),
  when the event is within the conversion window of the attempt's start and no event since
  already extended that same attempt to step k (that earlier event is the one that counts);
* strict funnels also need every event between the two to match step k-1 (any other event of the
  actor breaks the attempt), so they read all of the actor's events, not only step events;
* an exclusion event between the two steps of a transition it covers blocks the attempt there.

Attempt times are running maxima over the events before a row, so they never decrease along an
actor's events: the first event at the furthest step holds the smallest of each time, and one
MIN per time gives the conversion times of the first attempt that got there. An actor is dropped
when every attempt at its furthest step was later excluded, or when a blocked attempt got further
than any clean one, as PostHog does. Only step 1's pass reads every event; later passes read the
events that reached step 1 or can serve a later step, which are few. On engines that gather rows
into arrays cheaply (ClickHouse: `Engine.funnel_on_arrays`), ordered funnels run the same passes
on each actor's events gathered into sorted arrays instead (one hash aggregation, no sort of all
the step events per pass: queries.sql.funnel_arrays); strict funnels keep the window form.

With optional steps (`optionalInFunnel`) that closed form does not hold: ordered and strict funnels
with optional steps run PostHog's state machine itself (queries.sql.funnel_optional).

Unordered funnels count, for each event taken as the start of a window of the conversion window's
length, how many steps have an event inside the window (windows cut by an exclusion are void).

Events are ordered by `pos = microseconds * 32 + slot`: the slot puts exclusions before step events
at the same instant and step events in step order (two events at the same time convert in funnel
order, as in PostHog's UDF). Frames are RANGE frames on `pos`, so events at the very same `pos`
never see each other, whatever order the database gives to ties.
"""
from dataclasses import dataclass, field
from typing import Optional

import sqlglot
from rest_framework.exceptions import ValidationError
from sqlglot import exp

from .context import SQLContext
from .funnel_arrays import array_per_actor
from .funnel_optional import OptionalStepsMachine
from .funnel_text import ORDER_SLOTS, Text, any_of, comma_list, flag

MICROSECONDS = 1_000_000
# Time to convert: automatic bin counts are ceil(cbrt(conversions)) clamped to [1, 60].
MAX_AUTO_BINS = 60
DEFAULT_BIN_WIDTH_SECONDS = 60
# Characters of SQL the optional-steps machine may take (a few seconds of parsing and planning).
MAX_OPTIONAL_MACHINE_SQL = 150_000


@dataclass
class Exclusion:
    condition: exp.Expression
    from_step: int
    to_step: int


@dataclass
class FunnelPlan:
    """What the SQL needs to know about a funnel, its filters already compiled to SQL conditions."""

    context: SQLContext
    where: exp.Expression
    actor: list[exp.Expression]  # one or two columns that together identify an actor (never NULL)
    steps: list[exp.Expression]
    window_us: int
    order: str = "ordered"
    exclusions: list[Exclusion] = field(default_factory=list)
    breakdown: list[exp.Expression] = field(default_factory=list)
    attribution: str = "first_touch"
    attribution_step: int = 0
    # Unordered funnels: steps with identical definitions share a group (each needs its own event).
    step_groups: list[int] = field(default_factory=list)
    # `where` already keeps only events that match a step or an exclusion (no second filter needed).
    where_selects_steps: bool = False
    # Optional steps (0-based; ordered and strict funnels): see queries.sql.funnel_optional.
    optional: list[int] = field(default_factory=list)


PRIOR = "RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
LATER = "RANGE BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING"
UP_TO_HERE = "RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
WHOLE = "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"


class FunnelSQL:
    """Builds the one statement of a funnel visualisation, as a chain of CTEs."""

    def __init__(self, plan: FunnelPlan, *, entrance_periods: Optional[list[tuple[int, int, int]]] = None,
                 with_breakdown: bool = True, with_times: bool = False):
        self.plan = plan
        # Also carry when the counted attempt reached each step (`at0`..): funnel paths need them.
        self.with_times = with_times and plan.order != "unordered"
        self.optional = sorted(set(plan.optional)) if plan.order != "unordered" else []
        self.recursive = False
        self.text = Text()
        self.ctes: list[tuple[str, str]] = []
        self.n = len(plan.steps)
        self.w = plan.window_us
        self.strict = plan.order == "strict"
        self.unordered = plan.order == "unordered"
        width = len(plan.breakdown) if with_breakdown else 0
        self.bv = [f"breakdown{i}" for i in range(width)]
        # Attempts run per actor, and per breakdown value when each value is a funnel of its own.
        self.split = bool(self.bv) and plan.attribution in ("all_events", "step")
        self.touch = bool(self.bv) and not self.split
        self.periods = entrance_periods
        self.actor = [f"actor{i}" for i in range(len(plan.actor))]
        self.keys = self.actor + (self.bv if self.split else []) + (["entrance_period"] if entrance_periods else [])
        # Transition k (step k-1 -> k) is covered by the exclusions with from_step < k <= to_step.
        covered = {k: [i for i, item in enumerate(plan.exclusions) if item.from_step < k <= item.to_step] for k in range(1, self.n)}
        self.excluded = {k: ids for k, ids in covered.items() if ids}

    # --- Statements --------------------------------------------------------------------------------

    def steps(self, breakdown_limit: Optional[int], other: bool) -> exp.Expression:
        """Rows (group..., step, actors, sum and count of conversion times > 0, median sum and count)."""
        self._actors()
        group = self._groups(breakdown_limit, other)
        n = self.n
        self._cte("step_numbers", "SELECT * FROM (VALUES " + comma_list([f"({k})" for k in range(n)]) + ") AS v", ["k"])
        delay = ("CASE s.k " + " ".join(f"WHEN {k} THEN a.d{k}" for k in range(1, n)) + " END") if n > 1 else "NULL"
        # With optional steps an actor counts at the steps its attempt passed (its bit field).
        counted = ("CASE s.k " + " ".join(f"WHEN {k} THEN (a.bits / {1 << k}) % 2" for k in range(n)) + " END") if self.optional else "1"
        self._cte("reached", f"""
            SELECT {comma_list([f'a.{c}' for c in group] + ['s.k'])}, {delay} AS d, {counted} AS counted
            FROM grouped AS a JOIN step_numbers AS s ON s.k <= a.r""")
        g = comma_list(group + ["k"])
        middles = self.plan.context.engine.middle_values(sqlglot.parse_one("CASE WHEN d > 0 THEN d END"))
        if middles:
            # The median's sum and count as below (the two middle values of an odd count are one value twice).
            low, high = (self.text.part(node) for node in middles)
            return self._statement(f"""
                SELECT {g}, SUM(counted) AS actors, SUM(CASE WHEN d > 0 THEN d END) AS dsum, COUNT(CASE WHEN d > 0 THEN 1 END) AS dcount,
                       {low} + {high} AS msum, 2 AS mcount
                FROM reached GROUP BY {g} ORDER BY {g}""")
        self._cte("delays", f"""
            SELECT {g}, d, ROW_NUMBER() OVER (PARTITION BY {g} ORDER BY d) - 1 AS dn, COUNT(*) OVER (PARTITION BY {g}) AS dc
            FROM reached WHERE d > 0""")
        # The median of an even count is the mean of the two middle values (ClickHouse's quantile).
        self._cte("medians", f"""
            SELECT {g}, SUM(d) AS msum, COUNT(*) AS mcount FROM delays WHERE dn = (dc - 1) / 2 OR dn = dc / 2 GROUP BY {g}""")
        same = " AND ".join(f"m.{c} = c.{c}" for c in group + ["k"])
        columns = [f"c.{c}" for c in group] + ["c.k", "c.actors", "c.dsum", "c.dcount", "m.msum", "m.mcount"]
        return self._statement(f"""
            SELECT {comma_list(columns)}
            FROM (SELECT {g}, SUM(counted) AS actors, SUM(CASE WHEN d > 0 THEN d END) AS dsum, COUNT(CASE WHEN d > 0 THEN 1 END) AS dcount
                  FROM reached GROUP BY {g}) AS c
            LEFT JOIN medians AS m ON {same}
            ORDER BY {comma_list([f'c.{c}' for c in group] + ['c.k'])}""")

    def time_to_convert(self, from_step: int, to_step: int, bin_count: Optional[int]) -> exp.Expression:
        """Rows: first (bin -1) bin count, lowest second, bin width, conversions, total; then (bin, actors)."""
        self._actors()
        total = " + ".join(f"d{k}" for k in range(from_step + 1, to_step + 1))
        self._cte("conversions", f"SELECT {total} AS tt FROM actors WHERE r >= {to_step}")
        if bin_count is None:
            self._cte("bin_sizes", "SELECT * FROM (VALUES " + comma_list([f"({b})" for b in range(1, MAX_AUTO_BINS + 1)]) + ") AS v", ["b"])
            bins = f"(SELECT COALESCE(MIN(b), {MAX_AUTO_BINS}) FROM bin_sizes WHERE b * b * b >= (SELECT COUNT(*) FROM conversions))"
        else:
            bins = str(bin_count)
        us = MICROSECONDS
        self._cte("stats", f"""
            SELECT {bins} AS bc, COALESCE(MIN(tt) / {us}, 0) AS lo, COALESCE((MAX(tt) + {us - 1}) / {us}, 0) AS hi,
                   COUNT(*) AS c, SUM(tt) AS total
            FROM conversions""")
        self._cte("binning", f"""
            SELECT bc, lo, c, total,
                   CASE WHEN (hi - lo + bc - 1) / bc > 0 THEN (hi - lo + bc - 1) / bc ELSE {DEFAULT_BIN_WIDTH_SECONDS} END AS width
            FROM stats""")
        bin_of = f"(v.tt - b.lo * {us}) / (b.width * {us})"
        return self._statement(f"""
            SELECT -1 AS bin, bc AS actors, lo, width, c, total FROM binning
            UNION ALL
            SELECT {bin_of} AS bin, COUNT(*) AS actors, NULL, NULL, NULL, NULL
            FROM conversions AS v CROSS JOIN binning AS b GROUP BY {bin_of}""")

    def trends(self, from_step: int, to_step: int) -> exp.Expression:
        """Rows (breakdown values..., entrance period, actors who reached from_step, actors who reached to_step)."""
        self._actors()
        out = comma_list(self.bv + ["entrance_period"])
        return self._statement(f"""
            SELECT {out}, SUM(CASE WHEN r >= {from_step} THEN 1 ELSE 0 END) AS reached_from,
                   SUM(CASE WHEN r >= {to_step} THEN 1 ELSE 0 END) AS reached_to
            FROM actors GROUP BY {out} ORDER BY {out}""")

    def step_times(self) -> exp.Expression:
        """Rows (actor..., r, at0..at(n-1)): each actor's furthest step (0-based) and the time (epoch
        microseconds) its counted attempt reached each step, NULL past r (with optional steps, also
        `bits`: the steps passed). Ordered and strict funnels."""
        assert self.with_times
        self._actors()
        bits = ["bits"] if self.optional else []
        return self._statement(f"SELECT {comma_list(self.actor + ['r'] + bits + [f'at{k}' for k in range(self.n)])} FROM actors")

    # --- Plumbing ----------------------------------------------------------------------------------

    def _cte(self, name: str, body: str, columns: Optional[list[str]] = None, *, inline: bool = False) -> None:
        """`inline`: read twice, but cheaper to compute twice than to store (and store unsorted)."""
        head = f"{name}({comma_list(columns)})" if columns else name
        self.ctes.append((head + (" AS NOT MATERIALIZED" if inline else " AS"), body))

    def _statement(self, body: str) -> exp.Expression:
        with_clause = (("WITH RECURSIVE " if self.recursive else "WITH ") + ",\n".join(f"{head} ({sql})" for head, sql in self.ctes) + "\n") if self.ctes else ""
        return self.text.tree(with_clause + body)

    def _over(self, frame: str) -> str:
        return f"OVER (PARTITION BY {comma_list(self.keys)} ORDER BY pos {frame})"

    # --- Events ------------------------------------------------------------------------------------

    def _events(self) -> str:
        """`step_events`: one row per event: actor, time, pos, step and exclusion flags, breakdown values."""
        plan, part = self.plan, self.text.part
        context = plan.context
        exclusions = len(plan.exclusions)
        columns = [f"{part(value)} AS {name}" for name, value in zip(self.actor, plan.actor)]
        columns.append(f"{part(context.engine.epoch_microseconds(context.event_column('timestamp')))} AS t")
        columns += [f"{flag(part(step))} AS s{k}" for k, step in enumerate(plan.steps)]
        columns += [f"{flag(part(item.condition))} AS xe{i}" for i, item in enumerate(plan.exclusions)]
        columns += [f"{part(value)} AS breakdown{i}" for i, value in enumerate(plan.breakdown[: len(self.bv)])]
        source = part(context.events_table())
        if context.uses_person:
            source += f" LEFT JOIN {part(context.person_table())} ON {part(context.person_join_condition())}"
        self._cte("matched_events", f"SELECT {comma_list(columns)} FROM {source} WHERE {part(plan.where)}")

        # Only what the later passes read is carried on, so that sorts move narrow rows.
        self.carried = self.actor + ["t", "pos"] + [f"s{k}" for k in range(self.n)] + [f"x{k}" for k in self.excluded] + self.bv
        slots = " ".join(f"WHEN s{k} = 1 THEN {k + 1}" for k in range(self.n))
        any_exclusion = any_of([f"xe{i} = 1" for i in range(exclusions)])
        computed = {
            "pos": f"t * {ORDER_SLOTS} + CASE {slots} WHEN {any_exclusion} THEN 0 ELSE {self.n + 1} END",
            **{f"x{k}": flag(any_of([f"xe{i} = 1" for i in ids])) for k, ids in self.excluded.items()},
        }
        relevant = any_of([f"s{k} = 1" for k in range(self.n)] + [f"xe{i} = 1" for i in range(exclusions)])
        self._cte("step_events", f"""
            SELECT {comma_list([f"{computed[c]} AS {c}" if c in computed else c for c in self.carried])}
            FROM matched_events{'' if self.strict or plan.where_selects_steps else f' WHERE {relevant}'}""", inline=True)
        source = "step_events"
        if self.touch:
            source = self._touch_values(source)
        if self.split:
            source = self._split_by_value(source)
        if self.periods:
            source = self._split_by_entrance(source)
        return source

    def _project(self, source: str, overrides: dict[str, str], extra: list[str], joins: str) -> str:
        columns = [f"{overrides[c]} AS {c}" if c in overrides else f"e.{c}" for c in self.carried]
        return f"SELECT {comma_list(columns + extra)} FROM {source} AS e {joins}"

    def _touch_values(self, source: str) -> str:
        """First/last touch: the actor's value is the one of its first/last event that has one."""
        has_value = any_of([f"{c} <> ''" for c in self.bv])
        direction = "" if self.plan.attribution == "first_touch" else " DESC"
        window = f"OVER (PARTITION BY {comma_list(self.actor)} ORDER BY CASE WHEN {has_value} THEN 0 ELSE 1 END, pos{direction} {WHOLE})"
        # The actor's value replaces each event's own from here on.
        self.carried = [c for c in self.carried if c not in self.bv]
        touched = [f"FIRST_VALUE({c}) {window} AS t{c}" for c in self.bv]
        self._cte("events_with_touch_value", f"SELECT {comma_list(self.carried + touched)} FROM {source}")
        self.carried += [f"t{c}" for c in self.bv]
        return "events_with_touch_value"

    def _split_by_value(self, source: str) -> str:
        """A funnel per value: all_events keeps only that value's events; step attribution needs the
        attribution step (unordered: the window's first event) to carry the value."""
        same = " AND ".join(f"e.{c} = v.{c}" for c in self.bv)
        if self.plan.attribution == "all_events":
            self._cte("events_per_value", f"SELECT *, 1 AS matches_value FROM {source}")
        else:
            step = self.plan.attribution_step
            seen = any_of([f"s{k} = 1" for k in range(self.n)]) if self.unordered else f"(s{step} = 1)"
            self._cte("step_values", f"SELECT DISTINCT {comma_list(self.actor + self.bv)} FROM {source} WHERE {seen}")
            overrides = {c: f"v.{c}" for c in self.bv}
            if not self.unordered:
                overrides[f"s{step}"] = flag(f"e.s{step} = 1 AND {same}")
            join = "JOIN step_values AS v ON " + " AND ".join(f"v.{c} = e.{c}" for c in self.actor)
            self._cte("events_per_value", self._project(source, overrides, [f"{flag(same)} AS matches_value"], join))
        self.carried.append("matches_value")
        return "events_per_value"

    def _split_by_entrance(self, source: str) -> str:
        """Funnel trends: a funnel per actor and entrance period (the period of its step-0 event).

        An event belongs to the funnel of each period whose attempts it can serve: a step-0 event to
        its own period's, any other step or exclusion event to every earlier period's within the
        conversion window. Strict funnels also need the events that break attempts: all of them."""
        rows = comma_list([f"({idx}, {lo}, {hi})" for idx, lo, hi in self.periods])
        self._cte("periods", f"SELECT * FROM (VALUES {rows}) AS v", ["idx", "lo", "hi"])
        split = self.bv if self.split else []
        keys = comma_list([f"e.{c}" for c in self.actor + split])
        first, last = self.periods[0], self.periods[-1]
        self._cte("events_with_entrance", f"""
            SELECT *, CASE WHEN s0 = 1 AND t >= {first[1]} AND t < {last[2]} THEN {self._period_of(0, len(self.periods) - 1)} END AS own_period
            FROM {source}""")
        self._cte("entrances", f"""
            SELECT DISTINCT {keys}, p.idx AS entrance_period, p.lo AS lo, p.hi AS hi
            FROM events_with_entrance AS e JOIN periods AS p ON p.idx = e.own_period""")
        same = " AND ".join(f"n.{c} = e.{c}" for c in self.actor + split)
        window = f"e.t >= n.lo AND e.t <= n.hi + {self.w}"
        if self.strict:
            self._cte("events_per_period", self._project(
                "events_with_entrance", {"s0": flag("e.s0 = 1 AND e.own_period = n.entrance_period")},
                ["n.entrance_period AS entrance_period"], f"JOIN entrances AS n ON {same} AND {window}"))
            return "events_per_period"
        others = any_of([f"e.s{k} = 1" for k in range(1, self.n)] + [f"e.x{k} = 1" for k in self.excluded])
        own = self._project("events_with_entrance", {}, ["e.own_period AS entrance_period"], "WHERE e.own_period IS NOT NULL")
        later = self._project("events_with_entrance", {"s0": "0"}, ["n.entrance_period AS entrance_period"],
                              f"JOIN entrances AS n ON {same} AND {window} WHERE {others}"
                              " AND (e.own_period IS NULL OR e.own_period <> n.entrance_period)")
        self._cte("events_per_period", f"{own} UNION ALL {later}")
        return "events_per_period"

    def _period_of(self, low: int, high: int) -> str:
        """The index of the period holding `t`: a binary search over the (contiguous) periods."""
        if low == high:
            return str(self.periods[low][0])
        middle = (low + high + 1) // 2
        return f"CASE WHEN t < {self.periods[middle][1]} THEN {self._period_of(low, middle - 1)} ELSE {self._period_of(middle, high)} END"

    # --- Per actor ---------------------------------------------------------------------------------

    def _actors(self) -> None:
        """`actors`: keys, breakdown values, furthest step `r` (0-based) and conversion times d1..d(n-1)."""
        source = self._events()
        if self.unordered:
            self._unordered_actors(source)
        elif self.optional:
            self._optional_actors(source)
        else:
            self._ordered_actors(source)

    def _optional_actors(self, source: str) -> None:
        machine = OptionalStepsMachine(steps=self.n, window_us=self.w, optional=self.optional, excluded=sorted(self.excluded),
                                       strict=self.strict, keys=self.keys, carried=[f"t{c}" for c in self.bv] if self.touch else [])
        self.recursive = True
        ctes = machine.ctes(source)
        if sum(len(body) for _, body in ctes) > MAX_OPTIONAL_MACHINE_SQL:
            # The state machine's SQL grows fast with steps, optional steps and exclusions.
            raise ValidationError("This funnel is too complex to compute with optional steps: "
                                  "use fewer steps, optional steps or exclusions.")
        for name, body in ctes:
            self._cte(name, body)
        if self.touch:
            self._cte("optional_touched", f"SELECT *, {comma_list([f't{c} AS {c}' for c in self.bv])} FROM optional_actors")
            source = "optional_touched"
        else:
            source = "optional_actors"
        extra = ["bits"] + ([f"mt{j} AS at{j}" for j in range(self.n)] if self.with_times else [])
        self._finish(source, "r", machine.delays() + extra)

    # Per step k >= 1, a pass over the actor's events in order finds the last event before each row
    # that reached step k-1. Non-strict funnels fold "and no step-k event since" into the same
    # aggregate: c{k} is 2 * pos + 1 for the last event that reached step k-1 and 2 * pos for a later
    # step-k event, so c{k} is odd exactly when the row extends a fresh attempt (then pos = c{k} / 2,
    # and time = pos / 32 = c{k} / 64). Strict funnels keep the positions apart (l, m, nn).

    def _last(self, k: int) -> str:
        """pos of the last event before this row that reached step k-1."""
        return f"l{k}" if self.strict else f"(c{k} / 2)"

    def _candidate(self, k: int) -> str:
        """A step-k event that extends the attempt of the last event at step k-1 before it."""
        if not self.strict:
            return f"(s{k} = 1 AND c{k} % 2 = 1 AND t - {self._start(k)} <= {self.w})"
        # Every event between the two must match step k-1; a step-k event right after an earlier
        # one (no other event between) means the attempt already reached step k.
        return (f"(s{k} = 1 AND l{k} IS NOT NULL AND t - st{k} <= {self.w} AND (nn{k - 1} IS NULL OR nn{k - 1} < l{k})"
                f" AND NOT (m{k} IS NOT NULL AND m{k} > l{k} AND (nn{k} IS NULL OR nn{k} < m{k})))")

    def _reached(self, k: int) -> str:
        """This event took an attempt (not excluded) to step k."""
        if k == 0:
            return "(s0 = 1)"
        if k in self.excluded:
            return f"({self._candidate(k)} AND (xl{k} IS NULL OR xl{k} <= {self._last(k)}))"
        return self._candidate(k)

    def _blocked(self, k: int) -> str:
        return f"({self._candidate(k)} AND xl{k} > {self._last(k)})"

    def _start(self, k: int) -> str:
        """When the attempt of a row at step k started."""
        if k == 0:
            return "t"
        return f"(c{k} / {2 * ORDER_SLOTS})" if k == 1 and not self.strict else f"st{k}"

    def _path(self, k: int, j: int) -> str:
        """When the attempt of a row at step k reached step j (j <= k)."""
        if j == k:
            return "t"
        if j == 0:
            return self._start(k)
        return f"(c{k} / {2 * ORDER_SLOTS})" if j == k - 1 and not self.strict else f"p{k}_{j}"

    def _ordered_actors(self, source: str) -> None:
        n = self.n
        reached = {0: "s0 = 1", **{k: f"e{k} = 1" for k in range(1, n)}}
        # An attempt at its furthest step is excluded by an exclusion after it, within its window.
        ok = {k: (f"({reached[k]} AND NOT (next_exclusion{k} IS NOT NULL AND next_exclusion{k} - {self._start(k)} <= {self.w}))"
                  if k + 1 in self.excluded else f"({reached[k]})") for k in range(n)}

        def row_columns(levels: range, blocked: list[int], touch: bool) -> list[tuple[str, str, str]]:
            """(aggregate, expression, name) per input of the per-actor grouping; typed NULL for what
            this row set does not know."""
            cases = " ".join(f"WHEN {reached[k]} THEN {k}" for k in reversed(levels))
            columns = [("MAX", f"CASE {cases} ELSE -1 END", "furthest")]
            if self.excluded:
                cases = " ".join(f"WHEN b{k} = 1 THEN {k}" for k in reversed(blocked))
                columns.append(("MAX", f"CASE {cases} ELSE -1 END" if blocked else "-1", "blocked_at"))
                columns += [("MAX", flag(ok[k]) if k in levels else "0", f"ok{k}") for k in range(n)]
            for k in range(1, n):
                columns += [("MIN", f"CASE WHEN {ok[k]} THEN {self._path(k, j)} END" if k in levels else "CAST(NULL AS BIGINT)",
                             f"q{k}_{j}") for j in range(k + 1)]
            if self.touch:
                columns += [("MAX", f"t{c}" if touch else "CAST(NULL AS TEXT)", f"t{c}") for c in self.bv]
            if self.with_times:
                # The first (clean) entry, for actors who got no further than step 0.
                columns.append(("MIN", f"CASE WHEN {ok[0]} THEN t END" if 0 in levels else "CAST(NULL AS BIGINT)", "q0_0"))
            return columns

        def plain(columns) -> str:
            return comma_list([f"{expression} AS {name}" for _, expression, name in columns])

        def grouped(columns) -> str:
            return comma_list([f"{aggregate}({expression}) AS {name}" for aggregate, expression, name in columns])

        blocked = sorted(self.excluded)
        keys = comma_list(self.keys)
        columns = row_columns(range(n), blocked, True)
        renamed = {"furthest": "r", "blocked_at": "b", **{f"t{c}": c for c in self.bv}}
        if self.plan.context.engine.funnel_on_arrays and not self.strict:
            array_per_actor(self, source, columns, renamed)
        else:
            everything, first_source, source = self._window_passes(source)
            if everything:
                # Without an exclusion on step 0 -> 1, the actors at step 0 come straight from the events;
                # either way they are aggregated first, so the final grouping reads one row per actor.
                start = everything if 1 in self.excluded else f"{first_source} WHERE s0 = 1"
                first = f"SELECT {keys}, {grouped(row_columns(range(1), blocked[:1] if 1 in self.excluded else [], True))} FROM {start} GROUP BY {keys}"
                rest = f"SELECT {keys}, {plain(row_columns(range(1, n), [k for k in blocked if k >= 2], False))} FROM {source}"
                self._cte("actor_rows", f"{first} UNION ALL {rest}")
            else:
                self._cte("actor_rows", f"SELECT {keys}, {plain(row_columns(range(n), blocked, True))} FROM {source}")
            aggregates = [f"{aggregate}({name}) AS {renamed.get(name, name)}" for aggregate, _, name in columns]
            self._cte("per_actor", f"SELECT {keys}, {comma_list(aggregates)} FROM actor_rows GROUP BY {keys}")

        furthest = "r"
        if self.excluded:
            at_r = " ".join(f"WHEN {k} THEN ok{k}" for k in range(n))
            furthest = f"CASE WHEN (CASE r {at_r} END) = 0 OR b > r THEN -1 ELSE r END"
        delays = [f"CASE r {' '.join(f'WHEN {k} THEN q{k}_{i} - q{k}_{i - 1}' for k in range(i, n))} END AS d{i}" for i in range(1, n)]
        if self.with_times:
            delays += [f"CASE r {' '.join(f'WHEN {k} THEN q{k}_{j}' for k in range(j, n))} END AS at{j}" for j in range(n)]
        self._finish("per_actor", furthest, delays)

    def _window_passes(self, source: str) -> tuple[Optional[str], str, str]:
        """The per-step window passes: (all events after step 1's pass or None, the events, the last pass)."""
        n, prior = self.n, self._over(PRIOR)
        # After step 1, only the events that can take an attempt further matter (not for strict
        # funnels, where every event can break an attempt): the later passes read far fewer rows.
        reduce = not self.strict and n > 1
        everything, first_source = None, source
        for k in range(1, n):
            reached = "(s0 = 1)" if k == 1 else f"(e{k - 1} = 1)"
            columns = ["*"]
            if self.strict:
                columns.append(f"MAX(CASE WHEN {reached} THEN pos END) {prior} AS l{k}")
                columns.append(f"MAX(CASE WHEN s{k} = 1 THEN pos END) {prior} AS m{k}")
                if k == 1:
                    columns.append(f"MAX(CASE WHEN s0 = 0 THEN pos END) {prior} AS nn0")
                columns.append(f"MAX(CASE WHEN s{k} = 0 THEN pos END) {prior} AS nn{k}")
            else:
                columns.append(f"MAX(CASE WHEN {reached} THEN 2 * pos + 1 WHEN s{k} = 1 THEN 2 * pos END) {prior} AS c{k}")
            if self.strict or k > 1:
                columns.append(f"MAX(CASE WHEN {reached} THEN {self._start(k - 1)} END) {prior} AS st{k}")
            last_stored = k if self.strict else k - 1
            columns += [f"MAX(CASE WHEN {reached} THEN {self._path(k - 1, j)} END) {prior} AS p{k}_{j}" for j in range(1, last_stored)]
            if k in self.excluded:
                columns.append(f"MAX(CASE WHEN x{k} = 1 THEN pos END) {prior} AS xl{k}")
                columns.append(f"MIN(CASE WHEN x{k} = 1 THEN t END) {self._over(LATER)} AS next_exclusion{k - 1}")
            self._cte(f"step{k}_windows", f"SELECT {comma_list(columns)} FROM {source}")
            flags = [f"{flag(self._reached(k))} AS e{k}"]
            if k in self.excluded:
                flags.append(f"{flag(self._blocked(k))} AS b{k}")
            self._cte(f"step{k}_flags", f"SELECT {comma_list(['*'] + flags)} FROM step{k}_windows")
            source = f"step{k}_flags"
            if k == 1 and reduce:
                everything = source
                later = [f"s{j} = 1" for j in range(2, n)] + [f"x{j} = 1" for j in self.excluded if j >= 2]
                self._cte("onward", f"SELECT * FROM {source} WHERE {any_of(['e1 = 1'] + later)}")
                source = "onward"
        return everything, first_source, source

    def _finish(self, source: str, furthest: str, delays: list[str]) -> None:
        values = [] if self.split else self.bv
        self._cte("actors", f"SELECT * FROM (SELECT {comma_list(self.keys + values + [f'{furthest} AS r'] + delays)} FROM {source}) AS a WHERE r >= 0")

    # --- Unordered ---------------------------------------------------------------------------------

    def _unordered_actors(self, source: str) -> None:
        n = self.n
        members: dict[int, list[int]] = {}
        for k, g in enumerate(self.plan.step_groups or range(n)):
            members.setdefault(g, []).append(k)
        excluded = bool(self.plan.exclusions)
        columns = ["*"]
        if excluded:
            # An exclusion ends a segment: windows never reach across it.
            flag = f"x{n - 1}"
            columns.append(f"SUM(CASE WHEN {flag} = 1 THEN 1 ELSE 0 END) {self._over(UP_TO_HERE)} AS segment")
            columns.append(f"MIN(CASE WHEN {flag} = 1 THEN t END) {self._over(LATER)} AS next_exclusion")
        else:
            columns.append("0 AS segment")
        for g, steps in members.items():
            # Identical steps need distinct events: the j-th next event of the group after a row.
            for j in range(1, len(steps)):
                columns.append(f"LEAD(t, {j}) OVER (PARTITION BY {comma_list(self.keys)}, s{steps[0]} ORDER BY pos) AS g{g}_{j}")
        self._cte("unordered_segments", f"SELECT {comma_list(columns)} FROM {source}")

        window = f"OVER (PARTITION BY {comma_list(self.keys)}, segment ORDER BY t RANGE BETWEEN CURRENT ROW AND {self.w} FOLLOWING)"
        columns, covered = ["*"], []
        for g, steps in members.items():
            first = steps[0]
            columns.append(f"COUNT(CASE WHEN s{first} = 1 THEN 1 END) {window} AS c{g}")
            covered.append(f"(CASE WHEN c{g} > {len(steps)} THEN {len(steps)} ELSE c{g} END)")
            columns.append(f"MIN(CASE WHEN s{first} = 1 THEN t END) {window} AS f{first}")
            columns += [f"MIN(CASE WHEN s{first} = 1 THEN g{g}_{j} END) {window} AS f{k}" for j, k in enumerate(steps[1:], start=1)]
        self._cte("unordered_windows", f"SELECT {comma_list(columns)} FROM unordered_segments")

        total = " + ".join(covered)
        anchor = any_of([f"s{k} = 1" for k in range(n)])
        if self.split and self.plan.attribution == "step":
            anchor = f"({anchor} AND matches_value = 1)"
        valid = f" AND (({total}) = {n} OR next_exclusion IS NULL OR next_exclusion > t + {self.w})" if excluded else ""
        inside = [f"CASE WHEN f{k} IS NOT NULL AND f{k} <= t + {self.w} THEN f{k} END AS in_window{k}" for k in range(n)]
        self._cte("unordered_coverage", f"""
            SELECT *, CASE WHEN {anchor}{valid} THEN {total} ELSE 0 END AS steps_covered, {comma_list(inside)} FROM unordered_windows""")
        self._cte("unordered_best_window", f"""
            SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {comma_list(self.keys)} ORDER BY steps_covered DESC, pos) AS best
                           FROM unordered_coverage) AS u
            WHERE best = 1""")
        # Conversion times are the gaps between the covered steps' first events, in time order.
        ranks = []
        for k in range(n):
            earlier = " + ".join(
                f"CASE WHEN in_window{j} IS NOT NULL AND (in_window{j} < in_window{k} OR (in_window{j} = in_window{k} AND {j} < {k}))"
                " THEN 1 ELSE 0 END"
                for j in range(n) if j != k) or "0"
            ranks.append(f"CASE WHEN in_window{k} IS NOT NULL THEN {earlier} END AS step_rank{k}")
        self._cte("unordered_step_ranks", f"SELECT *, {comma_list(ranks)} FROM unordered_best_window")
        ordered = [" + ".join(f"CASE WHEN step_rank{k} = {i} THEN in_window{k} ELSE 0 END" for k in range(n)) + f" AS nth_time{i}" for i in range(n)]
        values = [f"t{c} AS {c}" for c in self.bv] if self.touch else []
        self._cte("unordered_actors", f"SELECT {comma_list(self.keys + values + ['steps_covered - 1 AS r'] + ordered)} FROM unordered_step_ranks")
        self._finish("unordered_actors", "r", [f"CASE WHEN r >= {i} THEN nth_time{i} - nth_time{i - 1} END AS d{i}" for i in range(1, n)])

    # --- Groups: breakdown values, the top N and "other" -------------------------------------------

    def _groups(self, limit: Optional[int], other: bool) -> list[str]:
        """`grouped`: actors with their output group (a breakdown value, or the "other" bucket)."""
        delays = [f"a.d{k}" for k in range(1, self.n)]
        if not self.bv:
            self._cte("grouped", "SELECT * FROM actors")
            return []
        bv = comma_list(self.bv)
        if self.optional:
            counts = comma_list([f"SUM((bits / {1 << k}) % 2) AS c{k}" for k in range(self.n)])
        else:
            counts = comma_list([f"SUM(CASE WHEN r >= {k} THEN 1 ELSE 0 END) AS c{k}" for k in range(self.n)])
        self._cte("value_counts", f"SELECT {bv}, {counts} FROM actors GROUP BY {bv}")
        order = comma_list([f"c{k} DESC" for k in reversed(range(self.n))] + [f"{self._binary(c)}" for c in self.bv])
        self._cte("value_ranks", f"SELECT {bv}, ROW_NUMBER() OVER (ORDER BY {order}) AS rnk FROM value_counts")
        same = " AND ".join(f"v.{c} = a.{c}" for c in self.bv)
        kept = f"v.rnk <= {limit}" if limit else "1 = 1"
        if other:
            values = [f"CASE WHEN {kept} THEN a.{c} ELSE '' END AS {c}" for c in self.bv] + [f"CASE WHEN {kept} THEN 0 ELSE 1 END AS is_other"]
            where = ""
        else:
            values = [f"a.{c} AS {c}" for c in self.bv] + ["0 AS is_other"]
            where = f" WHERE {kept}"
        bits = ["a.bits AS bits"] if self.optional else []
        self._cte("grouped", f"SELECT {comma_list(values + ['a.r AS r'] + bits + delays)} FROM actors AS a JOIN value_ranks AS v ON {same}{where}")
        return self.bv + ["is_other"]

    def _binary(self, column: str) -> str:
        """Order text by code point on every engine (ClickHouse's order)."""
        return self.text.part(self.plan.context.engine.binary_order(exp.column(column)))
