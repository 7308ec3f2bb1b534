"""The engine interface: every SQL fragment that differs per database, and execution.

Runners and the SQL-insight compiler build their SQL once, as sqlglot expression trees, and ask
the engine for each piece no standard SQL covers (JSON access, time zones and truncation,
interval arithmetic, regexes, UUID and JSON values, percentiles, NULL ordering) by what it means.
The engine renders the tree in its sqlglot dialect with bound parameters and runs it under a
timeout that can be cancelled. An engine is one subclass of `Engine` (this package's `sqlite`
and `postgres` modules); nothing outside this package tests which database it runs on.
"""
import uuid
from datetime import date, datetime, timezone
from typing import Any, Callable, Optional
from zoneinfo import ZoneInfo

from django.db import DatabaseError, transaction
from django.db import connection as default_connection
from sqlglot import exp

# A decimal number as text (what PostHog's toFloat accepts); exponents are bounded so that a
# cast can never overflow a double.
NUMERIC_TEXT_REGEX = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,2})?\s*$"


class EngineTimeout(DatabaseError):
    """The database stopped a statement at the query timeout (engines whose timeout error has no
    recognisable message raise this)."""


class Params:
    """Collects bound parameter values; each value becomes a named placeholder in the tree."""

    def __init__(self):
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> exp.Placeholder:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return exp.Placeholder(this=name)


MICROSECONDS = 1_000_000


def function(name: str, *args: exp.Expression) -> exp.Anonymous:
    """A call of a database function by name."""
    return exp.Anonymous(this=name, expressions=list(args))


def cast(value: exp.Expression, to: str) -> exp.Cast:
    return exp.Cast(this=value, to=exp.DataType.build(to))


def string(text: str) -> exp.Literal:
    return exp.Literal.string(text)


def paren(node: exp.Expression) -> exp.Paren:
    return exp.Paren(this=node)


def is_true(condition: exp.Expression) -> exp.Expression:
    """NULL-safe truth: NULL counts as false (HogQL's `ifNull(cond, 0)`)."""
    return paren(exp.Is(this=paren(condition), expression=exp.true()))


def is_not_false(condition: exp.Expression) -> exp.Expression:
    """NULL counts as true (HogQL's `ifNull(cond, 1)` for negative comparisons)."""
    return paren(exp.Not(this=exp.Is(this=paren(condition), expression=exp.false())))


def case(whens: list[tuple[exp.Expression, exp.Expression]], default: Optional[exp.Expression] = None) -> exp.Case:
    node = exp.Case()
    for condition, value in whens:
        node = node.when(condition, value)
    return node.else_(default) if default is not None else node


def window(call: exp.Expression, partition: list[exp.Expression], order: Optional[list[exp.Ordered]], *,
           running: bool = False) -> exp.Window:
    """`call OVER (PARTITION BY partition ORDER BY order)`; `running`: over the rows up to the current one."""
    node = exp.Window(this=call, partition_by=[c.copy() for c in partition],
                      order=exp.Order(expressions=[o.copy() for o in order]) if order else None)
    if running:
        node.set("spec", exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING"))
    return node


class Engine:
    """Base class: subclasses implement the methods that raise NotImplementedError, and may
    override the others (standard SQL) where their database differs."""

    vendor = ""
    dialect = ""
    # How events are assigned to interval buckets: by joining a table of boundaries ("join"), or
    # with a per-row function over the sorted boundaries (`bucket_index`).
    bucket_by_join = True
    # SQL insights may call the database's own ClickHouse functions (queries.sql.sandbox.native).
    runs_clickhouse_functions = False
    # Ordered funnels run their passes on per-actor arrays (queries.sql.funnel_arrays).
    funnel_on_arrays = False

    def __init__(self, connection=None):
        self.connection = connection or default_connection

    # --- Sources: the tables queries read, as FROM items under `alias` ---------------------------

    def events_source(self, team_id: int, alias: str) -> exp.Expression:
        """The events (columns named as `events_event`'s), `person_id` being the event's current person."""
        from events.models import Event

        return exp.to_table(Event._meta.db_table).as_(alias)

    def persons_source(self, team_id: int, alias: str) -> exp.Expression:
        """The persons (columns named as `events_person`'s)."""
        from events.models import Person

        return exp.to_table(Person._meta.db_table).as_(alias)

    def distinct_ids_source(self, team_id: int, alias: str) -> exp.Expression:
        """The distinct ids of persons (columns named as `events_persondistinctid`'s)."""
        from events.models import PersonDistinctId

        return exp.to_table(PersonDistinctId._meta.db_table).as_(alias)

    def groups_source(self, team_id: int, alias: str) -> exp.Expression:
        """The identified groups (columns named as `groups_group`'s: team_id, group_type_index,
        group_key, group_properties as JSON text, created_at), one row per (type index, key)."""
        from groups.models import Group

        return exp.to_table(Group._meta.db_table).as_(alias)

    def cohort_people_source(self, alias: str) -> exp.Expression:
        """Cohort members (columns named as `cohorts_cohortpeople`'s: cohort_id, person_id, version)."""
        from cohorts.models import CohortPeople

        return exp.to_table(CohortPeople._meta.db_table).as_(alias)

    # --- Values -----------------------------------------------------------------------------

    def timestamp(self, value: datetime, params: Params) -> exp.Expression:
        return params.add(value.astimezone(timezone.utc))

    def adapt(self, value: Any) -> Any:
        return value

    # --- Expressions ------------------------------------------------------------------------

    def json_text(self, column: exp.Expression, key: str, params: Params) -> exp.Expression:
        """A JSON property as text, as HogQL reads it: strings unquoted, true/false as words, null -> NULL."""
        raise NotImplementedError

    def has_materialized_property(self, key: str) -> bool:
        """Whether event property `key` is stored as its own column, which `json_text` of the
        events' `properties` column (marked by queries.sql.context) reads instead."""
        return False

    def json_number(self, column: exp.Expression, key: str, params: Params) -> exp.Expression:
        """A JSON property as a double: numbers, and strings holding a number; anything else -> NULL."""
        raise NotImplementedError

    def text_to_number(self, value: exp.Expression, params: Params) -> exp.Expression:
        """toFloat(text): the number a text holds, else NULL (never an error)."""
        return case(
            [(self.regex(value, params.add(NUMERIC_TEXT_REGEX)), exp.Cast(this=value, to=exp.DataType.build("double")))]
        )

    def to_text(self, value: exp.Expression) -> exp.Expression:
        return exp.Cast(this=value, to=exp.DataType.build("text"))

    def text_to_timestamp(self, value: exp.Expression, params: Params) -> exp.Expression:
        """An ISO-8601 text as a timestamp comparable with `timestamp()` values, else NULL."""
        raise NotImplementedError

    def icontains(self, value: exp.Expression, pattern: exp.Expression) -> exp.Expression:
        """Case-insensitive LIKE with backslash escapes (the pattern is a bound parameter)."""
        return exp.Like(
            this=exp.Lower(this=value), expression=exp.Escape(this=exp.Lower(this=pattern), expression=exp.Literal.string("\\"))
        )

    def like(self, value: exp.Expression, pattern: exp.Expression, literal: Optional[str], params: Params) -> exp.Expression:
        """Case-sensitive LIKE with backslash escapes; `literal` is the pattern's text when it is a constant."""
        return exp.Like(this=value, expression=pattern)

    def regex(self, value: exp.Expression, pattern: exp.Expression) -> exp.Expression:
        """`value` matches the regular expression `pattern` (checked with queries.sql.regex first)."""
        return exp.RegexpLike(this=value, expression=pattern)

    def regex_replace(self, value: exp.Expression, pattern: str, replacement: str, params: Params) -> exp.Expression:
        """Every match of `pattern` replaced (ClickHouse's replaceRegexpAll: `\\0` whole match, `\\1`.. groups)."""
        raise NotImplementedError

    def regex_any_group(self, value: exp.Expression, extract: str, pattern: exp.Expression, params: Params) -> exp.Expression:
        """Some match of the regex `extract` in `value` has a first group matching the regex `pattern`
        (ClickHouse: `arrayExists(x -> match(x, pattern), extractAll(value, extract))`); NULL `value` -> false.

        `extract` is a constant pattern with exactly one group, matched left to right without
        overlaps; `pattern` a user regex checked with queries.sql.regex first."""
        raise NotImplementedError

    def distinct_texts_json(self, value: exp.Expression) -> exp.Expression:
        """Aggregate: the distinct non-NULL texts of `value` as a JSON array text (any order; `[]` when none).
        ClickHouse: `toJSONString(groupUniqArray(value))`."""
        raise NotImplementedError

    def binary_order(self, value: exp.Expression) -> exp.Expression:
        """Order text by code point, whatever the database collation (ClickHouse's order)."""
        return value

    def bucket_index(self, timestamp: exp.Expression, starts: list[datetime], params: Params) -> exp.Expression:
        """0-based index of the bucket containing `timestamp`, given the sorted bucket starts."""
        raise NotImplementedError

    def natural_nulls_first(self, descending: bool) -> bool:
        """Whether the database's own ordering puts NULLs first (what an index scan yields)."""
        raise NotImplementedError

    # --- Values of the compiled SQL-insight language -----------------------------------------

    def number_text(self, value: exp.Expression) -> exp.Expression:
        """A double as text, whole numbers without a fraction ('3', '2.5')."""
        raise NotImplementedError

    def stored_text(self, value: exp.Expression) -> exp.Expression:
        """A DATE or JSON value as its text form."""
        return self.to_text(value)

    def text_as_json(self, value: exp.Expression) -> exp.Expression:
        """JSON text as the engine's JSON value."""
        return value

    def json_object(self, column: exp.Expression, key: str, params: Params) -> exp.Expression:
        """The JSON object under `key`, else NULL (so a deeper key of a non-object reads as NULL)."""
        raise NotImplementedError

    def uuid_text(self, column: exp.Expression) -> exp.Expression:
        """A stored UUID column as canonical lower-case text with dashes."""
        return self.to_text(column)

    def uuid_value(self, value: uuid.UUID) -> Any:
        """A UUID as the value to bind for comparison with a stored UUID column."""
        return str(value)

    def modulo(self, this: exp.Expression, divisor: exp.Expression, *, integer: bool) -> exp.Expression:
        """`this % divisor` (the divisor already NULL when zero), for whole or fractional numbers."""
        return exp.Mod(this=this, expression=divisor)

    def truncate_to_integer(self, value: exp.Expression) -> exp.Expression:
        """A number truncated toward zero, as a 64-bit integer."""
        return exp.Cast(this=value, to=exp.DataType.build("bigint"))

    def round(self, value: exp.Expression, digits: exp.Expression) -> exp.Expression:
        """A double rounded to `digits` decimals, halves away from zero."""
        return exp.Round(this=value, decimals=digits)

    def quantile(self, level: float, value: exp.Expression) -> exp.Expression:
        """The aggregate `level` quantile of `value`, interpolated linearly."""
        raise NotImplementedError

    def middle_values(self, value: exp.Expression) -> Optional[tuple[exp.Expression, exp.Expression]]:
        """Aggregates giving the lower and the upper middle of the non-NULL `value`s (the same value
        for an odd count; NULL for none), or None where the engine has no such aggregate (callers
        then number the values with a window)."""
        return None

    # --- Time ---------------------------------------------------------------------------------
    # Instants are UTC timestamps as stored. A local time is the wall-clock time in a time zone,
    # in whatever form the engine computes with; `tz` and `params` let an engine bind the zone.

    def epoch_microseconds(self, instant: exp.Expression) -> exp.Expression:
        """A stored timestamp as whole microseconds since 1970 (exact, so differences are exact)."""
        raise NotImplementedError

    def epoch_seconds(self, instant: exp.Expression) -> exp.Expression:
        """Seconds since 1970, with fractions, as a double."""
        raise NotImplementedError

    def from_epoch_seconds(self, seconds: exp.Expression) -> exp.Expression:
        """The instant `seconds` after 1970."""
        raise NotImplementedError

    def to_local_time(self, instant: exp.Expression, tz: ZoneInfo, params: Params) -> exp.Expression:
        raise NotImplementedError

    def from_local_time(self, local: exp.Expression, tz: ZoneInfo, params: Params) -> exp.Expression:
        raise NotImplementedError

    def truncate_local_time(self, unit: str, local: exp.Expression, week_start: int) -> exp.Expression:
        """The local time at the start of its `unit` (second ... year); weeks start on Monday (1) or Sunday (0)."""
        raise NotImplementedError

    def local_date(self, local: exp.Expression) -> exp.Expression:
        """The date of a local time."""
        raise NotImplementedError

    def date_local_time(self, value: exp.Expression) -> exp.Expression:
        """Midnight of a date, as a local time."""
        raise NotImplementedError

    def date_literal(self, value: date, params: Params) -> exp.Expression:
        raise NotImplementedError

    def local_time_part(self, unit: str, local: exp.Expression) -> exp.Expression:
        """year, month, day, hour, minute, second or dayofweek (Monday 1 ... Sunday 7) as an integer."""
        raise NotImplementedError

    def date_part(self, unit: str, value: exp.Expression) -> exp.Expression:
        """year, month, day or dayofweek of a date, as an integer."""
        raise NotImplementedError

    def local_epoch_seconds(self, local: exp.Expression) -> exp.Expression:
        """Whole seconds from 1970 to a local time, on its own wall clock (an integer)."""
        raise NotImplementedError

    def floor_divide(self, value: exp.Expression, divisor: int) -> exp.Expression:
        """An integer divided by a positive constant, rounded toward minus infinity."""
        raise NotImplementedError

    def shift_time(self, value: exp.Expression, amount: exp.Expression, unit: str, *, is_date: bool,
                   tz: ZoneInfo, params: Params) -> exp.Expression:
        """`value + amount unit`: sub-day units in absolute time, longer ones on the wall clock of `tz`."""
        raise NotImplementedError

    def local_time_text(self, local: exp.Expression) -> exp.Expression:
        """A local time as 'YYYY-MM-DD HH:MM:SS'."""
        raise NotImplementedError

    # Actors: an event's person, or for personless events its distinct id (never equal to a person).

    def actor_key(self, person: exp.Expression, distinct_id: exp.Expression) -> list[exp.Expression]:
        """Expressions to GROUP BY to get one group per actor."""
        return [person, case([(exp.Is(this=person.copy(), expression=exp.null()), distinct_id)])]

    def without_trailing_slash(self, value: exp.Expression) -> exp.Expression:
        """`value` without one trailing '/', unless it is just '/' (paths' URLs)."""
        length = exp.Length(this=value.copy())
        trailing = exp.EQ(this=exp.Substring(this=value.copy(), start=length.copy()), expression=exp.Literal.string("/"))
        trimmed = exp.Substring(this=value.copy(), start=exp.Literal.number(1), length=exp.Sub(this=length.copy(), expression=exp.Literal.number(1)))
        return case([(exp.and_(exp.GT(this=length, expression=exp.Literal.number(1)), trailing), trimmed)], value)

    def group_by_actor(self, select: exp.Select, key: list[exp.Expression], group: list[exp.Expression]) -> exp.Expression:
        """`select` GROUP BY the actor key `key` ([person column, CASE WHEN person IS NULL THEN
        distinct id END]), then `group`."""
        return select.group_by(*key, *group)

    def actor_columns(self, person: exp.Expression, distinct_id: exp.Expression) -> list[exp.Expression]:
        """Never-NULL columns that together identify an actor (for keys compared across rows)."""
        missing = exp.Is(this=person.copy(), expression=exp.null())
        return [exp.Coalesce(this=person, expressions=[exp.Literal.number(0)]), case([(missing, distinct_id)], exp.Literal.string(""))]

    def count_actors(self, person: exp.Expression, distinct_id: exp.Expression) -> exp.Expression:
        personless = exp.Filter(
            this=exp.Count(this=exp.Distinct(expressions=[distinct_id])),
            expression=exp.Where(this=exp.Is(this=person.copy(), expression=exp.null())),
        )
        return exp.Add(this=exp.Count(this=exp.Distinct(expressions=[person])), expression=personless)

    # Retention: each actor's start intervals paired with its later return intervals.

    def interval_pairs(self, starts: tuple[str, Optional[exp.Expression]], returns: tuple[str, Optional[exp.Expression]],
                       key: list[str], window: exp.Expression) -> exp.Select:
        """Rows (key..., s_idx, r_idx): for each row of table `starts` (alias `s`, kept by its condition)
        each row of table `returns` (alias `r`, likewise) with the same key whose `idx` is later, by
        less than `window`. Both tables have the columns `key` and `idx`. A self-join here."""
        (starts_table, starts_where), (returns_table, returns_where) = starts, returns
        s_idx, r_idx = exp.column("idx", table="s"), exp.column("idx", table="r")
        on = exp.and_(
            *[exp.EQ(this=exp.column(name, table="s"), expression=exp.column(name, table="r")) for name in key],
            exp.GT(this=r_idx, expression=s_idx),
            exp.LT(this=exp.Sub(this=r_idx.copy(), expression=s_idx.copy()), expression=window),
        )
        pairs = (exp.select(*[exp.column(name, table="s") for name in key], exp.alias_(s_idx.copy(), "s_idx"),
                            exp.alias_(r_idx.copy(), "r_idx"))
                 .from_(exp.to_table(starts_table).as_("s"))
                 .join(exp.to_table(returns_table).as_("r"), on=on, join_type="inner"))
        conditions = [where for where in (starts_where, returns_where) if where is not None]
        return pairs.where(exp.and_(*conditions)) if conditions else pairs

    # Paths: each actor's items numbered within its sessions.

    def session_steps(self, source: str, key: list[str], gap: int, max_steps: Optional[int] = None) -> list[tuple[str, exp.Expression]]:
        """CTEs ending in `numbered` (key..., session_index, t_us, path_item, p, previous_item,
        previous_t_us) over table `source`
        (key..., event_order, t_us, path_item): each key's rows in (t_us, event_order) order, split
        into sessions where `gap` microseconds or more pass between two rows (`session_index`
        numbers them), of repeated consecutive items the last kept (an empty item last in its
        session is dropped too), then numbered `p` = 1, 2, ... within the session; `previous_item`
        and `previous_t_us` are those of step p - 1 (for p = 1: NULL here, or any value). Steps
        past `max_steps` (when given) may be left out.

        Window functions over the key here (all share one ordering, so the rows are sorted once
        for the sessions and once for the numbering)."""
        actor = [exp.column(name) for name in key]
        by_time = [exp.Ordered(this=exp.column("t_us")), exp.Ordered(this=exp.column("event_order"))]
        previous_t = window(exp.Lag(this=exp.column("t_us")), actor, by_time)
        gaps = exp.select(*key, "event_order", "t_us", "path_item", exp.alias_(
            case([(exp.Is(this=previous_t, expression=exp.null()), exp.Literal.number(1)),
                  (exp.GTE(this=exp.Sub(this=exp.column("t_us"), expression=previous_t.copy()), expression=exp.Literal.number(gap)),
                   exp.Literal.number(1))],
                 exp.Literal.number(0)), "new_session")).from_(source)
        sessions = exp.select(*key, "event_order", "t_us", "path_item", exp.alias_(
            window(exp.Sum(this=exp.column("new_session")), actor, by_time, running=True), "session_index")).from_("gaps")
        # The next item of the session: the actor's next event when it is in the same session (the
        # same window as the sessions' own, so the rows are not sorted again).
        same_session = exp.EQ(this=window(exp.Lead(this=exp.column("session_index")), actor, by_time), expression=exp.column("session_index"))
        next_item = case([(same_session, exp.Coalesce(this=window(exp.Lead(this=exp.column("path_item")), actor, by_time),
                                                      expressions=[exp.Literal.string("")]))], exp.Literal.string(""))
        compact = (exp.select(*key, "session_index", "event_order", "t_us", "path_item", exp.alias_(next_item, "next_item"))
                   .from_("sessions"))
        in_session = [*actor, exp.column("session_index")]
        numbered = (exp.select(*key, "session_index", "t_us", "path_item",
                               exp.alias_(window(exp.RowNumber(), in_session, by_time), "p"),
                               exp.alias_(window(exp.Lag(this=exp.column("path_item")), in_session, by_time), "previous_item"),
                               exp.alias_(window(exp.Lag(this=exp.column("t_us")), in_session, by_time), "previous_t_us"))
                    .from_("compact").where(exp.NEQ(this=exp.column("next_item"), expression=exp.column("path_item"))))
        return [("gaps", gaps), ("sessions", sessions), ("compact", compact), ("numbered", numbered)]

    # --- Rendering and execution -------------------------------------------------------------

    def render(self, tree: exp.Expression, params: Params) -> tuple[str, dict]:
        sql = tree.sql(dialect=self.dialect)
        return self._escape_percent(sql), {name: self.adapt(value) for name, value in params.values.items()}

    def _escape_percent(self, sql: str) -> str:
        return sql.replace("%", "%%")

    READABLE_LIST_ITEMS = 6

    def readable(self, tree: exp.Expression, params: Params) -> str:
        """The query with its parameters inlined, pretty-printed (the `hogql` field of responses).

        Long lists (bucket boundaries of minute intervals...) keep their first and last items
        around a comment saying how many were left out, so responses stay small.
        """
        keep = self.READABLE_LIST_ITEMS // 2

        def inline(node):
            if isinstance(node, exp.Placeholder) and node.name in params.values:
                return self._literal(params.values[node.name])
            return node

        def shorten(node):
            if isinstance(node, (exp.Values, exp.Array)) and len(node.expressions) > self.READABLE_LIST_ITEMS:
                items = node.expressions
                head = [item.copy() for item in items[:keep]]
                head[-1].add_comments([f"... {len(items) - 2 * keep} more ..."])
                shortened = node.copy()
                shortened.set("expressions", head + [item.copy() for item in items[-keep:]])
                return shortened
            return node

        return tree.transform(inline).transform(shorten).sql(dialect=self.dialect, pretty=True)

    def _literal(self, value: Any) -> exp.Expression:
        if value is None:
            return exp.null()
        if isinstance(value, bool):
            return exp.true() if value else exp.false()
        if isinstance(value, (int, float)):
            return exp.Literal.number(value)
        if isinstance(value, datetime):
            return exp.Literal.string(self.adapt(value) if isinstance(self.adapt(value), str) else value.isoformat())
        if isinstance(value, (list, tuple)):
            return exp.Array(expressions=[self._literal(item) for item in value])
        return exp.Literal.string(str(value))

    def prepare(self) -> None:
        """Make the connection ready for generated SQL (functions the engine's SQL relies on)."""

    def execute(
        self,
        tree: exp.Expression,
        params: Params,
        *,
        timeout: Optional[float] = None,
        cancel_check: Optional[Callable[[], bool]] = None,
    ) -> list[tuple]:
        self.prepare()
        sql, values = self.render(tree, params)
        # A savepoint keeps a failed statement from poisoning an enclosing transaction.
        with transaction.atomic(using=self.connection.alias):
            with self.connection.cursor() as cursor:
                with self._guard(cursor, timeout, cancel_check):
                    cursor.execute(sql, values)
                    return cursor.fetchall()

    def execute_write(self, tree: exp.Expression, params: Params, *, timeout: Optional[float] = None) -> int:
        """Run a statement that writes rows of the Django database (an INSERT ... SELECT into a
        membership table, a DELETE) under the same timeout as `execute`; how many rows it wrote."""
        self.prepare()
        sql, values = self.render(tree, params)
        with transaction.atomic(using=self.connection.alias):
            with self.connection.cursor() as cursor:
                with self._guard(cursor, timeout, None):
                    cursor.execute(sql, values)
                    return cursor.rowcount

    def _guard(self, cursor, timeout, cancel_check):
        return _NullGuard()

    def backend_id(self) -> Optional[int]:
        """An id another process can use to cancel this connection's running statement."""
        return None

    def cancel_backend(self, backend_id: int) -> None:
        return None


class _NullGuard:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
