"""Database engines: the few SQL fragments that differ per database, and execution.

Runners build their SQL once, as sqlglot expression trees, and call an engine for the pieces no
standard SQL covers (JSON property access, safe numeric casts, regexes, binary collation). The
engine renders the tree in its sqlglot dialect with bound parameters and runs it on the Django
connection. Adding ClickHouse means adding one subclass here; runners do not change.
"""
import re
import time
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from django.db import connection as default_connection
from django.db import transaction
from sqlglot import exp

# A decimal number as text (what PostHog's toFloat accepts); exponents are bounded so that a
# cast can never overflow a double.
NUMERIC_TEXT_REGEX = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,2})?\s*$"


class Params:
    """Collects bound parameter values; each value becomes a named placeholder in the tree."""

    def __init__(self):
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> exp.Placeholder:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return exp.Placeholder(this=name)


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


class Engine:
    vendor = ""
    dialect = ""
    # How events are assigned to interval buckets: by joining a table of boundaries ("join"), or
    # with a per-row function over the sorted boundaries (`bucket_index`).
    bucket_by_join = True

    def __init__(self, connection=None):
        self.connection = connection or default_connection

    # --- Values -----------------------------------------------------------------------------

    def timestamp(self, value: datetime, params: Params) -> exp.Expression:
        return params.add(value.astimezone(timezone.utc))

    def adapt(self, value: Any) -> Any:
        return value

    # --- Expressions ------------------------------------------------------------------------

    def json_text(self, column: exp.Expression, key: str, params: Params) -> exp.Expression:
        """A JSON property as text, as HogQL reads it: strings unquoted, true/false as words, null -> NULL."""
        raise NotImplementedError

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

    def regex(self, value: exp.Expression, pattern: exp.Expression) -> exp.Expression:
        return exp.RegexpLike(this=value, expression=pattern)

    def binary_order(self, value: exp.Expression) -> exp.Expression:
        """Order text by code point, whatever the database collation (ClickHouse's order)."""
        return value

    def bucket_index(self, timestamp: exp.Expression, starts: list[datetime], params: Params) -> exp.Expression:
        """0-based index of the bucket containing `timestamp`, given the sorted bucket starts."""
        raise NotImplementedError

    # Actors: an event's person, or for personless events its distinct id (never equal to a person).

    def actor_key(self, person: exp.Expression, distinct_id: exp.Expression) -> list[exp.Expression]:
        """Expressions to GROUP BY to get one group per actor."""
        return [person, case([(exp.Is(this=person.copy(), expression=exp.null()), distinct_id)])]

    def count_actors(self, person: exp.Expression, distinct_id: exp.Expression) -> exp.Expression:
        personless = exp.Filter(
            this=exp.Count(this=exp.Distinct(expressions=[distinct_id])),
            expression=exp.Where(this=exp.Is(this=person.copy(), expression=exp.null())),
        )
        return exp.Add(this=exp.Count(this=exp.Distinct(expressions=[person])), expression=personless)

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

    def execute(
        self,
        tree: exp.Expression,
        params: Params,
        *,
        timeout: Optional[float] = None,
        cancel_check: Optional[Callable[[], bool]] = None,
    ) -> list[tuple]:
        sql, values = self.render(tree, params)
        # A savepoint keeps a failed statement from poisoning an enclosing transaction.
        with transaction.atomic(using=self.connection.alias):
            with self.connection.cursor() as cursor:
                with self._guard(cursor, timeout, cancel_check):
                    cursor.execute(sql, values)
                    return cursor.fetchall()

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


class SQLiteEngine(Engine):
    vendor = "sqlite"
    dialect = "sqlite"

    def adapt(self, value: Any) -> Any:
        # Django stores datetimes on SQLite as naive UTC text; compare in the same format.
        if isinstance(value, datetime):
            return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ")
        return value

    def actor_key(self, person, distinct_id):
        # One column: SQLite keeps the integer person id and the text distinct id apart.
        return [exp.Coalesce(this=person, expressions=[distinct_id])]

    def count_actors(self, person, distinct_id):
        return exp.Count(this=exp.Distinct(expressions=[exp.Coalesce(this=person, expressions=[distinct_id])]))

    @staticmethod
    def _path(key: str) -> str:
        return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def _extract(self, column, path) -> exp.Expression:
        return exp.Anonymous(this="json_extract", expressions=[column, path])

    def json_text(self, column, key, params):
        path = params.add(self._path(key))
        value = self._extract(column, path)
        kind = exp.Anonymous(this="json_type", expressions=[column.copy(), path.copy()])
        node = exp.Case(this=kind)
        for when, then in (("text", value), ("true", exp.Literal.string("true")), ("false", exp.Literal.string("false")), ("null", exp.null())):
            node = node.when(exp.Literal.string(when), then)
        return node.else_(self.to_text(value.copy()))

    def json_number(self, column, key, params):
        path = params.add(self._path(key))
        kind = exp.Anonymous(this="json_type", expressions=[column, path])
        value = self._extract(column, path)
        return case(
            [
                (exp.In(this=kind, expressions=[exp.Literal.string("integer"), exp.Literal.string("real")]),
                 exp.Cast(this=value, to=exp.DataType.build("double"))),
                (exp.EQ(this=kind, expression=exp.Literal.string("text")), self.text_to_number(value, params)),
            ]
        )

    def text_to_timestamp(self, value, params):
        # datetime() normalises ISO text (with 'T', 'Z' or an offset) to UTC 'YYYY-MM-DD HH:MM:SS', NULL if
        # invalid; the GLOB keeps bare numbers from being read as Julian day numbers.
        iso = exp.Glob(this=value, expression=params.add("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"))
        return case([(iso, exp.Anonymous(this="datetime", expressions=[value]))])

    def _guard(self, cursor, timeout, cancel_check):
        return _SQLiteInterrupt(self.connection, timeout, cancel_check)


class _SQLiteInterrupt:
    """Aborts a running SQLite statement on timeout or cancellation (progress handler)."""

    CHECK_EVERY_SECONDS = 0.25

    def __init__(self, connection, timeout, cancel_check):
        self.connection = connection
        self.deadline = time.monotonic() + timeout if timeout else None
        self.cancel_check = cancel_check
        self.next_check = 0.0

    def _handler(self):
        now = time.monotonic()
        if self.deadline and now > self.deadline:
            return 1
        if self.cancel_check and now >= self.next_check:
            self.next_check = now + self.CHECK_EVERY_SECONDS
            return 1 if self.cancel_check() else 0
        return 0

    def __enter__(self):
        if self.deadline or self.cancel_check:
            self.connection.connection.set_progress_handler(self._handler, 20_000)
        return self

    def __exit__(self, *exc):
        if self.deadline or self.cancel_check:
            self.connection.connection.set_progress_handler(None, 0)
        return False


class PostgresEngine(Engine):
    vendor = "postgresql"
    dialect = "postgres"
    bucket_by_join = False
    # JIT compilation costs seconds on these plans and never pays back for one analytical query.
    SESSION_SETTINGS = ("SET LOCAL jit = off",)

    def bucket_index(self, timestamp, starts, params):
        boundaries = exp.Cast(this=params.add([start.astimezone(timezone.utc) for start in starts]),
                              to=exp.DataType.build("timestamptz[]", dialect="postgres"))
        return exp.Sub(this=exp.Anonymous(this="width_bucket", expressions=[timestamp, boundaries]), expression=exp.Literal.number(1))

    def _escape_percent(self, sql: str) -> str:
        return re.sub(r"%(?!\(p\d+\)s)", "%%", sql)

    def _arrow(self, column, key, params, operator) -> exp.Expression:
        node = exp.JSONExtractScalar if operator == "->>" else exp.JSONExtract
        # Parenthesized: `->>` binds no tighter than `||`, so `event || properties ->> 'a'` would misparse.
        return paren(node(this=column, expression=params.add(key)))

    def json_text(self, column, key, params):
        return self._arrow(column, key, params, "->>")

    def json_number(self, column, key, params):
        kind = exp.Anonymous(this="jsonb_typeof", expressions=[self._arrow(column, key, params, "->")])
        text = self._arrow(column, key, params, "->>")
        return case(
            [
                (exp.EQ(this=kind, expression=exp.Literal.string("number")), exp.Cast(this=text, to=exp.DataType.build("double"))),
                (exp.EQ(this=kind, expression=exp.Literal.string("string")), self.text_to_number(text, params)),
            ]
        )

    def text_to_timestamp(self, value, params):
        pattern = params.add(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$")
        return case([(self.regex(value, pattern), exp.Cast(this=value, to=exp.DataType.build("timestamptz")))])

    def binary_order(self, value):
        return exp.Collate(this=value, expression=exp.Identifier(this="C", quoted=True))

    def execute(self, tree, params, *, timeout=None, cancel_check=None):
        sql, values = self.render(tree, params)
        with transaction.atomic(using=self.connection.alias):
            with self.connection.cursor() as cursor:
                for setting in self.SESSION_SETTINGS:
                    cursor.execute(setting)
                if timeout:
                    cursor.execute(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
                cursor.execute(sql, values)
                return cursor.fetchall()

    def backend_id(self):
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    def cancel_backend(self, backend_id):
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_cancel_backend(%s)", [backend_id])


_ENGINES = {"sqlite": SQLiteEngine, "postgresql": PostgresEngine}


def get_engine(connection=None) -> Engine:
    connection = connection or default_connection
    try:
        return _ENGINES[connection.vendor](connection)
    except KeyError:
        raise NotImplementedError(f"No query engine for database vendor {connection.vendor!r}") from None
