"""SQL insights: a HogQL SELECT parsed, checked and compiled into safe SQL for our engines.

Security model: allow-list by construction. The user's SQL is parsed (sqlglot, a ClickHouse
dialect extended with HogQL's `properties.$key` identifiers, `=~` operators and `{placeholders}`)
and then *compiled*: every node of the output tree is built here from a known node of the input,
and any input node, clause, table or function without a handler is refused with a 400 that names
it. So the output can only contain:
  - the events store tables, each wrapped in a derived table filtered on the team
    (`(SELECT ... FROM events_event WHERE team_id = <team>) AS t3`), at every reference: FROM,
    JOIN, subqueries, CTEs and UNION branches alike;
  - identifiers generated here (t0, c0, w0...), never the user's own names;
  - the user's strings only as bound parameters, and numbers re-rendered from Python values;
  - the functions mapped below.
Comments, extra statements, DDL/DML, other tables (pg_*, sqlite_*, information_schema, system.*)
and table functions (url(), file()...) cannot pass. Runtime is bounded by the engine's timeout and
the returned rows by LIMIT (default 100, max 50 000).
"""
import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Optional
from zoneinfo import ZoneInfo

import sqlglot
from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.errors import SqlglotError
from sqlglot.generators.clickhouse import ClickHouseGenerator
from sqlglot.parsers.clickhouse import ClickHouseParser
from sqlglot.tokens import TokenType

from events.models import Event, Person, PersonDistinctId

from ..dates import QueryDateRange, parse_absolute, shift_date, shift_datetime, start_of_interval
from .context import SQLContext
from .engine import Engine, Params, case, is_not_false, is_true, paren
from .hogql import BOOL, DATETIME, FUNCTIONS, NUMBER, STRING, UNKNOWN, HogQLError, Typed
from .limits import MAX_EXPRESSION_DEPTH, ExpressionTooComplex, bracket_depth, check_text, shorten
from .properties import and_all, properties_condition, test_account_filters
from .regex import regex_problem

DEFAULT_LIMIT = 100
MAX_LIMIT = 50_000

INTEGER, DATE, JSON, PERSON, INTERVAL = "integer", "date", "json", "person", "interval"
NUMERIC = (NUMBER, INTEGER)


class SandboxError(HogQLError):
    """A query the sandbox refuses or cannot compile (400)."""


# --- Dialect and parsing ------------------------------------------------------------------------


class HogQLDialect(ClickHouse):
    """ClickHouse as HogQL writes it: `$` in identifiers, `=~`/`!~` regex operators, `{placeholders}`.

    Function names are not normalised (every call parses to an anonymous function) so that the
    compiler sees the name the user wrote and maps it through its own table.
    """

    class Tokenizer(ClickHouse.Tokenizer):
        HEREDOC_STRINGS: list = []
        SINGLE_TOKENS = {key: value for key, value in ClickHouse.Tokenizer.SINGLE_TOKENS.items() if key != "$"}
        VAR_SINGLE_TOKENS = {"$"}
        # GLOB and SIMILAR TO do not exist in HogQL: their token types carry `!~` and `!~*`.
        KEYWORDS = {
            **{key: value for key, value in ClickHouse.Tokenizer.KEYWORDS.items()
               if value not in (TokenType.GLOB, TokenType.SIMILAR_TO)},
            "=~": TokenType.RLIKE,
            "=~*": TokenType.IRLIKE,
            "!~": TokenType.GLOB,
            "!~*": TokenType.SIMILAR_TO,
        }

    class Parser(ClickHouseParser):
        FUNCTIONS: dict = {}
        FUNCTION_PARSERS = {key: value for key, value in ClickHouseParser.FUNCTION_PARSERS.items() if key == "CAST"}
        NO_PAREN_FUNCTIONS: dict = {}
        RANGE_PARSERS = {
            **ClickHouseParser.RANGE_PARSERS,
            TokenType.GLOB: lambda self, this: self.expression(
                exp.Not(this=self.expression(exp.RegexpLike(this=this, expression=self._parse_bitwise())))
            ),
            TokenType.SIMILAR_TO: lambda self, this: self.expression(
                exp.Not(this=self.expression(exp.RegexpILike(this=this, expression=self._parse_bitwise())))
            ),
        }

        def _parse_query_parameter(self):
            """`{filters}`, `{variables.name}`, `{name}`: HogQL placeholders."""
            index = self._index
            parts = [self._parse_id_var(any_token=False)]
            while parts[-1] is not None and self._match(TokenType.DOT):
                parts.append(self._parse_id_var(any_token=True))
            if all(part is not None for part in parts) and self._match(TokenType.R_BRACE):
                return self.expression(exp.Placeholder(this=".".join(part.name for part in parts)))
            self._retreat(index)
            return super()._parse_query_parameter()

    class Generator(ClickHouseGenerator):
        def placeholder_sql(self, expression):
            if not expression.args.get("kind"):
                return "{" + expression.name + "}"
            return super().placeholder_sql(expression)

        def if_sql(self, expression):
            args = [expression.this, expression.args.get("true"), expression.args.get("false")]
            return self.func("if", *[arg for arg in args if arg is not None])


def parse_select(sql: Any) -> exp.Expression:
    """The one SELECT (or UNION of SELECTs) of a HogQL query, or SandboxError."""
    if not isinstance(sql, str) or not sql.strip():
        raise SandboxError("The query is empty.")
    if bracket_depth(sql) > MAX_EXPRESSION_DEPTH:
        raise SandboxError("The query is nested too deeply.")
    try:
        statements = [statement for statement in sqlglot.parse(sql, dialect=HogQLDialect) if statement is not None]
    except SqlglotError as error:
        raise SandboxError(f"Syntax error in SQL query: {_first_line(error)}") from None
    if len(statements) != 1:
        raise SandboxError("Only one statement is allowed: a single SELECT query." if statements else "The query is empty.")
    statement = statements[0]
    if isinstance(statement, exp.Subquery) and not statement.args.get("alias"):
        statement = statement.this
    if not isinstance(statement, (exp.Select, exp.SetOperation)):
        raise SandboxError(f"Only SELECT queries are allowed, not {_describe(statement)}.")
    return statement


def parse_expression(sql: str) -> exp.Expression:
    """One HogQL expression (EventsQuery `select`, `where` and `orderBy` items)."""
    if not isinstance(sql, str) or not sql.strip():
        raise SandboxError("An empty expression is not allowed.")
    try:
        check_text(sql, f"The expression {shorten(sql)!r}")
        expressions = [node for node in sqlglot.parse(f"SELECT {sql}", dialect=HogQLDialect) if node is not None]
    except ExpressionTooComplex as error:
        raise SandboxError(str(error)) from None
    except SqlglotError as error:
        raise SandboxError(f"Syntax error in expression {sql!r}: {_first_line(error)}") from None
    except RecursionError:
        raise SandboxError(f"The expression {shorten(sql)!r} is nested too deeply.") from None
    select = expressions[0] if len(expressions) == 1 else None
    if not isinstance(select, exp.Select) or len(select.expressions) != 1 or set(_set_args(select)) != {"expressions"}:
        raise SandboxError(f"Not a single expression: {sql!r}")
    return select.expressions[0]


def to_hogql(node: exp.Expression) -> str:
    return node.sql(dialect=HogQLDialect, comments=False)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _set_args(node: exp.Expression) -> list[str]:
    return [key for key, value in node.args.items() if value not in (None, False, [], "")]


def _describe(node: exp.Expression) -> str:
    text = node.sql(dialect=HogQLDialect, comments=False)
    text = re.sub(r"\s+", " ", text)
    return f"`{text[:80]}{'...' if len(text) > 80 else ''}`"


# --- Values -------------------------------------------------------------------------------------

_NO_CONST = object()


@dataclass
class Value(Typed):
    """A compiled expression: SQL, type, and its Python value when it is a constant."""

    const: Any = _NO_CONST
    number: Optional[exp.Expression] = None  # a cheaper numeric form (JSON numbers)
    aggregate: bool = False
    not_null: bool = False  # a NOT NULL column: its NULLS FIRST/LAST is free, so ORDER BY can follow an index

    @property
    def is_const(self) -> bool:
        return self.const is not _NO_CONST


class SharedParams(Params):
    """Bound parameters where equal values share one placeholder.

    `GROUP BY properties.$browser` then renders exactly like the SELECT item, which PostgreSQL
    needs to match the two expressions.
    """

    def __init__(self):
        super().__init__()
        self._names: dict[tuple, str] = {}

    def add(self, value: Any) -> exp.Placeholder:
        key = (type(value), value) if isinstance(value, (str, int, float, bool, datetime, date)) else None
        if key is not None and key in self._names:
            return exp.Placeholder(this=self._names[key])
        placeholder = super().add(value)
        if key is not None:
            self._names[key] = placeholder.name
        return placeholder


# --- Sources: what a FROM or JOIN item reads ----------------------------------------------------


def _quoted(name: str, table: Optional[str] = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _db_column(model, field_name: str, table: str) -> exp.Column:
    return _quoted(model._meta.get_field(field_name).column, table)


@dataclass
class OutputColumn:
    name: str  # as the user sees it
    sql_name: str  # the generated alias in SQL
    value: Value


class Source:
    """A FROM/JOIN item: a virtual table or a derived table, under a generated alias."""

    def __init__(self, compiler: "QueryCompiler", sql_alias: str):
        self.compiler = compiler
        self.sql_alias = sql_alias

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def star(self) -> list[str]:
        raise NotImplementedError

    def resolve(self, chain: list[str], node: exp.Expression) -> Value:
        raise NotImplementedError

    def table_expression(self) -> exp.Expression:
        raise NotImplementedError


class _VirtualTable(Source):
    """A table of the events store, read through a team-filtered derived table of the columns used."""

    model: Any
    team_field = "team"

    def __init__(self, compiler, sql_alias):
        super().__init__(compiler, sql_alias)
        self.used: dict[str, Callable[[], exp.Expression]] = {}

    def column(self, name: str, build: Callable[[], exp.Expression]) -> exp.Column:
        self.used.setdefault(name, build)
        return _quoted(name, self.sql_alias)

    def base(self, field_name: str) -> exp.Column:
        return _db_column(self.model, field_name, "s")

    def team_condition(self, table: str) -> exp.Expression:
        return exp.EQ(this=_db_column(self.model, self.team_field, table), expression=exp.Literal.number(self.compiler.team.id))

    def joins(self) -> list[exp.Join]:
        return []

    def table_expression(self) -> exp.Expression:
        columns = [build().as_(name, quoted=True) for name, build in self.used.items()] or [exp.Literal.number(1).as_("f_one")]
        select = exp.select(*columns).from_(exp.to_table(self.model._meta.db_table).as_("s"))
        for join in self.joins():
            select = select.join(join)
        select = select.where(self.team_condition("s"))
        return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(self.sql_alias)))

    def _property(self, column: exp.Expression, chain: list[str], node: exp.Expression) -> Value:
        return self.compiler.json_property(column, chain)


EVENT_STAR = ["uuid", "event", "properties", "timestamp", "distinct_id", "created_at", "$session_id", "person_id"]


class EventsTable(_VirtualTable):
    model = Event
    FIELDS = {*EVENT_STAR, "person", "$window_id"}

    def has(self, name: str) -> bool:
        return name in self.FIELDS

    def star(self) -> list[str]:
        return list(EVENT_STAR)

    def joins(self) -> list[exp.Join]:
        if not any(name.startswith("f_person_") for name in self.used):
            return []
        condition = exp.and_(
            exp.EQ(this=_db_column(Person, "id", "sp"), expression=self.base("person")),
            exp.EQ(this=_db_column(Person, "team", "sp"), expression=exp.Literal.number(self.compiler.team.id)),
        )
        return [exp.Join(this=exp.to_table(Person._meta.db_table).as_("sp"), side="LEFT", on=condition)]

    def field(self, name: str) -> exp.Column:
        """An events column by Django field name (also the person's: `person__properties`)."""
        if name.startswith("person__"):
            person_field = name[len("person__"):]
            return self.column(f"f_person_{person_field}", lambda: _db_column(Person, person_field, "sp"))
        if name == "uuid":
            return self.column("f_uuid", lambda: self.compiler.uuid_text(self.base("uuid")))
        return self.column(f"f_{name}", lambda: self.base(name))

    def resolve(self, chain, node):
        head, rest = chain[0], chain[1:]
        simple = {"uuid": STRING, "event": STRING, "distinct_id": STRING, "timestamp": DATETIME, "created_at": DATETIME}
        if head in simple and not rest:
            return Value(self.field(head), simple[head], not_null=True)
        if head == "$session_id" and not rest:
            return Value(self.field("session_id"), STRING, not_null=True)
        if head == "$window_id" and not rest:
            return self._property(self.field("properties"), ["$window_id"], node)
        if head == "person_id" and not rest:
            return Value(self.field("person"), PERSON)
        if head == "properties":
            return self._property(self.field("properties"), rest, node) if rest else Value(self.field("properties"), JSON)
        if head == "person" and rest:
            if rest[0] == "id" and len(rest) == 1:
                return Value(self.field("person"), PERSON)
            if rest[0] == "created_at" and len(rest) == 1:
                return Value(self.field("person__created_at"), DATETIME)
            if rest[0] == "properties":
                column = self.field("person__properties")
                return self._property(column, rest[1:], node) if rest[1:] else Value(column, JSON)
        raise SandboxError(f"Unknown field {_describe(node)} on the events table.")


class PersonsTable(_VirtualTable):
    model = Person
    FIELDS = ["id", "created_at", "properties", "is_identified"]

    def has(self, name):
        return name in self.FIELDS

    def star(self):
        return list(self.FIELDS)

    def resolve(self, chain, node):
        head, rest = chain[0], chain[1:]
        if head == "id" and not rest:
            return Value(self.column("f_id", lambda: self.base("id")), PERSON, not_null=True)
        if head == "created_at" and not rest:
            return Value(self.column("f_created_at", lambda: self.base("created_at")), DATETIME, not_null=True)
        if head == "is_identified" and not rest:
            return Value(self.column("f_is_identified", lambda: self.base("is_identified")), BOOL, not_null=True)
        if head == "properties":
            column = self.column("f_properties", lambda: self.base("properties"))
            return self._property(column, rest, node) if rest else Value(column, JSON)
        raise SandboxError(f"Unknown field {_describe(node)} on the persons table.")


class DistinctIdsTable(_VirtualTable):
    model = PersonDistinctId
    FIELDS = ["distinct_id", "person_id"]

    def has(self, name):
        return name in self.FIELDS

    def star(self):
        return list(self.FIELDS)

    def resolve(self, chain, node):
        if chain == ["distinct_id"]:
            return Value(self.column("f_distinct_id", lambda: self.base("distinct_id")), STRING)
        if chain == ["person_id"]:
            return Value(self.column("f_person", lambda: self.base("person")), PERSON)
        raise SandboxError(f"Unknown field {_describe(node)} on the person_distinct_ids table.")


VIRTUAL_TABLES = {"events": EventsTable, "persons": PersonsTable, "person_distinct_ids": DistinctIdsTable}


class DerivedTable(Source):
    """A subquery or CTE in FROM/JOIN: its output columns, by the names the user sees."""

    def __init__(self, compiler, sql_alias, columns: list[OutputColumn], table: exp.Expression):
        super().__init__(compiler, sql_alias)
        self.columns = columns
        self.table = table

    def _find(self, name: str) -> Optional[OutputColumn]:
        return next((column for column in self.columns if column.name == name), None)

    def has(self, name):
        return self._find(name) is not None

    def star(self):
        return [column.name for column in self.columns]

    def resolve(self, chain, node):
        column = self._find(chain[0])
        if column is None:
            raise SandboxError(f"Unknown field {_describe(node)}.")
        sql = _quoted(column.sql_name, self.sql_alias)
        if len(chain) == 1:
            return Value(sql, column.value.type, not_null=column.value.not_null)
        if column.value.type == JSON:
            return self.compiler.json_property(sql, chain[1:])
        raise SandboxError(f"Unknown field {_describe(node)}.")

    def table_expression(self):
        return self.table


@dataclass
class CTEDefinition:
    sql_name: str
    columns: list[OutputColumn]


@dataclass
class Compiled:
    """A compiled query (SELECT or set operation) and its output columns."""

    tree: exp.Expression
    columns: list[OutputColumn]


# --- Time: timezone-aware date functions, the same on every engine -------------------------------

TRUNC_UNITS = ("second", "minute", "hour", "day", "week", "month", "quarter", "year")
INTERVAL_UNITS = {unit: unit for unit in TRUNC_UNITS} | {f"{unit}s": unit for unit in TRUNC_UNITS}


def _fn(name: str, *args: exp.Expression) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _idiv(this: exp.Expression, expression: exp.Expression) -> exp.Div:
    """Integer division of integers (truncating), rendered as a plain `/` on every engine."""
    return exp.Div(this=this, expression=expression, typed=True)


def _string(text: str) -> exp.Literal:
    """A fixed string of the compiler's own (format strings, units): never user text."""
    return exp.Literal.string(text)


def _cast(value: exp.Expression, to: str) -> exp.Cast:
    return exp.Cast(this=value, to=exp.DataType.build(to))


DATE_TIME_PARTS = {
    "toyear": "year", "tomonth": "month", "todayofmonth": "day", "tohour": "hour", "tominute": "minute",
    "tosecond": "second", "todayofweek": "dayofweek", "toquarter": "quarter",
}
TRUNC_FUNCTIONS = {
    "tostartofsecond": "second", "tostartofminute": "minute", "tostartofhour": "hour", "tostartofday": "day",
    "tostartofweek": "week", "tomonday": "week", "tostartofmonth": "month", "tostartofquarter": "quarter",
    "tostartofyear": "year",
}


class TimeSQL:
    """Date/time expressions in the team's timezone (UTC instants in, UTC instants out), built from
    the engine's time methods."""

    def __init__(self, engine: Engine, params: Params, tz: ZoneInfo):
        self.engine = engine
        self.params = params
        self.tz = tz

    def local(self, instant: exp.Expression) -> exp.Expression:
        """The wall-clock time in the team timezone."""
        return self.engine.to_local_time(instant, self.tz, self.params)

    def instant(self, local: exp.Expression) -> exp.Expression:
        return self.engine.from_local_time(local, self.tz, self.params)

    def constant(self, value: datetime) -> exp.Expression:
        return self.engine.timestamp(value, self.params)

    def date_constant(self, value: date) -> exp.Expression:
        return self.engine.date_literal(value, self.params)

    def trunc(self, unit: str, instant: exp.Expression, week_start: int) -> exp.Expression:
        return self.instant(self.engine.truncate_local_time(unit, self.local(instant), week_start))

    def to_date(self, instant: exp.Expression) -> exp.Expression:
        return self.engine.local_date(self.local(instant))

    def date_to_instant(self, value: exp.Expression) -> exp.Expression:
        return self.instant(self.engine.date_local_time(value))

    def part(self, unit: str, instant: exp.Expression) -> exp.Expression:
        if unit == "quarter":
            month = self.part("month", instant)
            return exp.Add(this=_idiv(this=paren(exp.Sub(this=month, expression=exp.Literal.number(1))),
                                      expression=exp.Literal.number(3)), expression=exp.Literal.number(1))
        return self.engine.local_time_part(unit, self.local(instant))

    def date_part(self, unit: str, value: exp.Expression) -> exp.Expression:
        """year/month/day... of a DATE value."""
        return self.engine.date_part(unit, value)

    def epoch(self, instant: exp.Expression) -> exp.Expression:
        """Seconds since 1970 (with fractions)."""
        return self.engine.epoch_seconds(instant)

    def date_diff(self, unit: str, start: exp.Expression, end: exp.Expression) -> exp.Expression:
        """ClickHouse dateDiff: the number of `unit` boundaries crossed from start to end."""
        floor_div = self.engine.floor_divide

        def index(instant):
            seconds = self.engine.local_epoch_seconds(self.local(instant))
            if unit == "second":
                return seconds
            if unit in ("minute", "hour", "day"):
                return floor_div(seconds, {"minute": 60, "hour": 3600, "day": 86400}[unit])
            if unit == "week":  # weeks start on Monday; 1970-01-01 was a Thursday
                return floor_div(exp.Add(this=seconds, expression=exp.Literal.number(3 * 86400)), 7 * 86400)
            year, month = self.part("year", instant), self.part("month", instant)
            if unit == "year":
                return year
            if unit == "quarter":
                return exp.Add(this=exp.Mul(this=year, expression=exp.Literal.number(4)),
                               expression=_idiv(this=paren(exp.Sub(this=month, expression=exp.Literal.number(1))),
                                                expression=exp.Literal.number(3)))
            return exp.Add(this=exp.Mul(this=year, expression=exp.Literal.number(12)), expression=month)

        return _cast(paren(exp.Sub(this=paren(index(end)), expression=paren(index(start)))), "bigint")

    def shift(self, value: exp.Expression, amount: exp.Expression, unit: str, is_date: bool) -> exp.Expression:
        return self.engine.shift_time(value, amount, unit, is_date=is_date, tz=self.tz, params=self.params)

    def text(self, instant: exp.Expression) -> exp.Expression:
        """'YYYY-MM-DD HH:MM:SS' on the team's wall clock (ClickHouse toString of a DateTime)."""
        return self.engine.local_time_text(self.local(instant))


# --- Expressions --------------------------------------------------------------------------------

AGGREGATES = {"count", "countif", "uniq", "uniqexact", "sum", "avg", "min", "max", "any", "sumif", "avgif", "minif", "maxif",
              "median", "quantile"}
COMPARISONS = {exp.EQ: "=", exp.NEQ: "!=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}
ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)
INTERVAL_FUNCTIONS = {f"tointerval{unit}": unit for unit in TRUNC_UNITS}
SHIFT_FUNCTIONS = {
    **{f"add{unit}s": (unit, 1) for unit in TRUNC_UNITS},
    **{f"subtract{unit}s": (unit, -1) for unit in TRUNC_UNITS},
}
CAST_TYPES = {
    "TEXT": "tostring", "VARCHAR": "tostring", "CHAR": "tostring", "NCHAR": "tostring", "NVARCHAR": "tostring",
    "FIXEDSTRING": "tostring", "BIGINT": "toint", "INT": "toint", "SMALLINT": "toint", "TINYINT": "toint",
    "UBIGINT": "toint", "UINT": "toint", "USMALLINT": "toint", "UTINYINT": "toint", "INT128": "toint", "INT256": "toint",
    "UINT128": "toint", "UINT256": "toint", "DOUBLE": "tofloat", "FLOAT": "tofloat", "DECIMAL": "tofloat",
    "DATE": "todate", "DATE32": "todate", "DATETIME": "todatetime", "DATETIME64": "todatetime", "TIMESTAMP": "todatetime",
}
MAX_INTEGER = 2**63 - 1


class ExprCompiler:
    """Compiles the expressions of one clause of one SELECT (its scope) into typed SQL."""

    def __init__(self, query: "QueryCompiler", scope: "Scope", *, clause: str, aggregates: bool):
        self.query = query
        self.scope = scope
        self.engine = query.engine
        self.context = query.context
        self.time = query.time
        self.clause = clause
        self.allow_aggregates = aggregates
        self.in_aggregate = False
        self.expanding: set[str] = set()

    def param(self, value: Any) -> exp.Expression:
        return self.query.params.add(value)

    # --- Entry points ---

    def compile(self, node: exp.Expression, truth: bool = False) -> Value:
        if node is None:
            raise SandboxError("Syntax error in SQL query: an expression is missing.")
        handler = self.HANDLERS.get(type(node))
        if handler is None:
            raise SandboxError(f"{_describe(node)} is not supported in SQL insights.")
        return handler(self, node, truth)

    def condition(self, node: exp.Expression) -> exp.Expression:
        """A WHERE/HAVING/ON condition: NULL and false are the same here, so comparisons stay plain (indexable)."""
        return self._condition(self.compile(node, truth=True))

    def alias(self, name: str, node: exp.Expression) -> Value:
        self.expanding.add(name)
        try:
            return self.compile(node)
        finally:
            self.expanding.discard(name)

    # --- Conversions (also used by the HogQL expression functions of queries.sql.hogql) ---

    def _text(self, value: Value) -> exp.Expression:
        kind, sql = value.type, value.sql
        if kind == STRING:
            return sql
        if kind == INTEGER:
            return _cast(sql, "text")
        if kind == NUMBER:
            return self.engine.number_text(sql)
        if kind == BOOL:
            return case([(sql, _string("true"))], _string("false"))
        if kind == DATETIME:
            return self.time.text(sql)
        if kind == DATE or kind == JSON:
            return self.engine.stored_text(sql)
        if kind == PERSON:
            return self.query.person_uuid_text(sql)
        if kind == UNKNOWN:
            return _cast(sql, "text")
        raise SandboxError(f"A {kind} cannot be used as text.")

    def _number(self, value: Value) -> exp.Expression:
        kind = value.type
        if kind in NUMERIC or kind == UNKNOWN:
            return value.sql
        if kind == STRING:
            return value.number if value.number is not None else self.engine.text_to_number(value.sql, self.query.params)
        if kind == BOOL:
            return case([(value.sql, exp.Literal.number(1))], exp.Literal.number(0))
        if kind == DATETIME:
            return self.time.epoch(value.sql)
        raise SandboxError(f"A {'person id' if kind == PERSON else kind} cannot be used as a number.")

    def _condition(self, value: Value) -> exp.Expression:
        if value.type == BOOL:
            return value.sql
        if value.type in NUMERIC:
            return is_true(exp.NEQ(this=value.sql, expression=exp.Literal.number(0)))
        if value.type == UNKNOWN and value.is_const and value.const is None:
            return exp.false()
        raise SandboxError("A condition must be a comparison or a boolean expression.")

    def _datetime(self, value: Value, what: str = "a DateTime") -> exp.Expression:
        if value.type == DATETIME:
            return value.sql
        if value.type == DATE:
            return self.time.date_to_instant(value.sql)
        if value.type == STRING:
            if value.is_const:
                return self.time.constant(self._parse_datetime(value.const))
            return self.engine.text_to_timestamp(value.sql, self.query.params)
        if value.type == UNKNOWN:
            return value.sql
        raise SandboxError(f"Expected {what}, got a {value.type}.")

    def _parse_datetime(self, text: str) -> datetime:
        parsed = parse_absolute(text, self.query.tz)
        if parsed is None:
            raise SandboxError(f"Cannot parse {text!r} as a DateTime (use 'YYYY-MM-DD' or 'YYYY-MM-DD hh:mm:ss').")
        return parsed

    def _comparable(self, left: Value, right: Value) -> tuple[exp.Expression, exp.Expression]:
        kinds = {left.type, right.type}
        if UNKNOWN in kinds or (left.type == right.type and left.type != JSON):
            return left.sql, right.sql
        if kinds & set(NUMERIC) and (kinds <= {NUMBER, INTEGER, STRING, BOOL} or kinds <= {NUMBER, INTEGER, DATETIME}):
            return self._number(left), self._number(right)
        if DATETIME in kinds and kinds <= {DATETIME, DATE, STRING}:
            return self._datetime(left), self._datetime(right)
        if DATE in kinds and kinds == {DATE, STRING}:
            return tuple(self._date_value(v) for v in (left, right))
        if kinds == {PERSON, STRING}:
            person, text = (left, right) if left.type == PERSON else (right, left)
            if text.is_const:
                pair = (person.sql, self.query.person_by_uuid(text.const))
                return pair if left.type == PERSON else pair[::-1]
        return self._text(left), self._text(right)

    def _date_value(self, value: Value) -> exp.Expression:
        if value.type == STRING and value.is_const:
            parsed = self._parse_datetime(value.const)
            return self.time.date_constant(parsed.date())
        return value.sql if value.type == DATE else self._text(value)

    # --- Literals and fields ---

    def _literal(self, node: exp.Literal, truth) -> Value:
        if node.is_string:
            return self.const(node.this)
        text = str(node.this).replace("_", "")
        try:
            number = int(text) if re.fullmatch(r"[0-9]+", text) else float(text)
        except ValueError:
            raise SandboxError(f"Invalid number: {shorten(str(node.this))}") from None
        return self.const(number)

    def const(self, value: Any) -> Value:
        """A constant from the query text, `values` or variables: strings become bound parameters."""
        if value is None:
            return Value(exp.null(), UNKNOWN, const=None)
        if isinstance(value, bool):
            return Value(exp.true() if value else exp.false(), BOOL, const=value)
        if isinstance(value, int):
            if abs(value) > MAX_INTEGER:
                raise SandboxError(f"Integer out of range: {shorten(str(value))}")
            return Value(exp.Literal.number(value), INTEGER, const=value)
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise SandboxError("Numbers must be finite.")
            return Value(exp.Literal.number(value), NUMBER, const=value)
        if isinstance(value, str):
            if "\x00" in value:
                raise SandboxError("Strings cannot contain NUL characters.")
            return Value(self.param(value), STRING, const=value)
        if isinstance(value, (list, tuple)):
            return Value(exp.null(), "list", const=[self.const(item) for item in value])
        raise SandboxError(f"Unsupported constant value: {value!r}")

    def _boolean(self, node, truth) -> Value:
        return self.const(bool(node.this))

    def _null(self, node, truth) -> Value:
        return self.const(None)

    def _paren(self, node, truth) -> Value:
        return self.compile(node.this, truth)

    def _neg(self, node, truth) -> Value:
        inner = self.compile(node.this)
        if inner.is_const and inner.type in NUMERIC:
            return self.const(-inner.const)
        number = self._number(inner)
        return Value(paren(exp.Neg(this=number)), INTEGER if inner.type == INTEGER else NUMBER, aggregate=inner.aggregate)

    @staticmethod
    def chain(node: exp.Expression) -> Optional[list[str]]:
        """`a.b.c`, `properties.$key`, `properties['key']` as a list of names, else None."""
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                return None
            parts = [node.args.get(key) for key in ("catalog", "db", "table")] + [node.this]
            return [part.name for part in parts if part is not None]
        if isinstance(node, exp.Dot):
            head = ExprCompiler.chain(node.this)
            if head is None or not isinstance(node.expression, exp.Identifier):
                return None
            return head + [node.expression.name]
        if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
            key = node.expressions[0]
            head = ExprCompiler.chain(node.this)
            if head is None or not (isinstance(key, exp.Literal) and key.is_string):
                return None
            return head + [key.this]
        return None

    def _field(self, node, truth) -> Value:
        chain = self.chain(node)
        if chain is None:
            raise SandboxError(f"{_describe(node)} is not supported: only fields (a.b.c) and properties['key'] can be accessed.")
        if len(chain) == 1 and chain[0] in self.scope.aliases and chain[0] not in self.expanding:
            return self.alias(chain[0], self.scope.aliases[chain[0]])
        return self.scope.lookup(chain, node)

    def _placeholder(self, node: exp.Placeholder, truth) -> Value:
        name = node.name
        if node.args.get("kind"):
            raise SandboxError(f"Typed query parameters {_describe(node)} are not supported; use {{name}} placeholders.")
        if name == "filters":
            return Value(self.scope.filters_condition(), BOOL)
        return self.const(self.query.placeholder_value(name))

    # --- Operators ---

    def _logic(self, node, truth) -> Value:
        cls = type(node)
        left, right = self.compile(node.this, truth), self.compile(node.expression, truth)
        return Value(paren(cls(this=self._condition(left), expression=self._condition(right))), BOOL,
                     aggregate=left.aggregate or right.aggregate)

    def _not(self, node, truth) -> Value:
        inner = self.compile(node.this)
        return Value(paren(exp.Not(this=self._condition(inner))), BOOL, aggregate=inner.aggregate)

    def _compare(self, node, truth) -> Value:
        return self.comparison(type(node), self.compile(node.this), self.compile(node.expression), truth)

    def comparison(self, cls, left: Value, right: Value, truth: bool) -> Value:
        if "list" in (left.type, right.type) or INTERVAL in (left.type, right.type):
            raise SandboxError("Lists and intervals cannot be compared; use IN (...) or date arithmetic.")
        a, b = self._comparable(left, right)
        node = cls(this=a, expression=b)
        aggregate = left.aggregate or right.aggregate
        if cls is exp.NEQ:
            return Value(is_not_false(node), BOOL, aggregate=aggregate)
        return Value(node if truth else is_true(node), BOOL, aggregate=aggregate)

    def _between(self, node, truth) -> Value:
        if node.args.get("symmetric"):
            raise SandboxError("BETWEEN SYMMETRIC is not supported.")
        value = self.compile(node.this)
        low = self.comparison(exp.GTE, value, self.compile(node.args["low"]), truth)
        high = self.comparison(exp.LTE, value, self.compile(node.args["high"]), truth)
        return Value(paren(exp.and_(low.sql, high.sql)), BOOL, aggregate=low.aggregate or high.aggregate)

    def _arithmetic(self, node, truth) -> Value:
        left, right = self.compile(node.this), self.compile(node.expression)
        cls = type(node)
        if INTERVAL in (left.type, right.type):
            if cls is exp.Add and left.type == INTERVAL:
                left, right = right, left
            if cls not in (exp.Add, exp.Sub) or left.type == INTERVAL or right.type != INTERVAL:
                raise SandboxError("Intervals can only be added to or subtracted from a Date or DateTime.")
            amount, unit = right.const
            return self.shift(left, self._negate(amount) if cls is exp.Sub else amount, unit)
        a, b = self._number(left), self._number(right)
        integer = left.type in (INTEGER, BOOL) and right.type in (INTEGER, BOOL)
        aggregate = left.aggregate or right.aggregate
        if cls is exp.Div:
            divided = exp.Div(this=_cast(a, "double"), expression=exp.Nullif(this=b, expression=exp.Literal.number(0)), typed=True)
            return Value(paren(divided), NUMBER, aggregate=aggregate)
        if cls is exp.Mod:
            remainder = self.engine.modulo(a, exp.Nullif(this=b, expression=exp.Literal.number(0)), integer=integer)
            return Value(paren(remainder),
                         INTEGER if integer else NUMBER, aggregate=aggregate)
        return Value(paren(cls(this=a, expression=b)), INTEGER if integer else NUMBER, aggregate=aggregate)

    def _negate(self, amount: Any) -> Any:
        """-amount, for an interval amount: a whole number or a numeric Value."""
        if isinstance(amount, Value):
            if amount.is_const and isinstance(amount.const, int):
                return self.const(-amount.const)
            return Value(paren(exp.Neg(this=self._number(amount))), INTEGER)
        return -amount

    def shift(self, value: Value, amount: Any, unit: str) -> Value:
        """value + INTERVAL amount unit (amount: a whole number, or a numeric Value computed per row)."""
        if isinstance(amount, Value) and amount.is_const:
            amount = amount.const
        if not isinstance(amount, Value) and (not isinstance(amount, int) or isinstance(amount, bool)):
            raise SandboxError("Interval amounts must be whole numbers.")
        amount_sql = _cast(self._number(amount), "bigint") if isinstance(amount, Value) else exp.Literal.number(amount)
        if value.type == DATE and unit in ("second", "minute", "hour"):
            value = Value(self.time.date_to_instant(value.sql), DATETIME)
        try:
            if value.type == DATE:
                if value.is_const and isinstance(amount, int):
                    return self.date_const(shift_date(value.const, amount, unit))
                return Value(self.time.shift(value.sql, amount_sql, unit, True), DATE)
            if value.type == STRING and value.is_const:
                value = self.datetime_const(self._parse_datetime(value.const))
            if value.type == DATETIME and value.is_const and isinstance(amount, int):
                return self.datetime_const(shift_datetime(value.const, amount, unit, self.query.tz))
        except (OverflowError, ValueError):
            raise SandboxError("The date is out of range.") from None
        return Value(self.time.shift(self._datetime(value), amount_sql, unit, False), DATETIME)

    def datetime_const(self, value: datetime) -> Value:
        return Value(self.time.constant(value), DATETIME, const=value)

    def date_const(self, value: date) -> Value:
        return Value(self.time.date_constant(value), DATE, const=value)

    def _dpipe(self, node, truth) -> Value:
        left, right = self.compile(node.this), self.compile(node.expression)
        return Value(paren(exp.DPipe(this=self._text(left), expression=self._text(right))), STRING,
                     aggregate=left.aggregate or right.aggregate)

    def _concat(self, node, truth) -> Value:
        values = [self.compile(item) for item in node.expressions]
        return self._concat_values(values)

    def _concat_values(self, values: list[Value]) -> Value:
        if not values:
            return self.const("")
        sql = self._text(values[0])
        for value in values[1:]:
            sql = exp.DPipe(this=sql, expression=self._text(value))
        return Value(paren(sql), STRING, aggregate=any(value.aggregate for value in values))

    def _like(self, node, truth) -> Value:
        if isinstance(node.expression, exp.Escape):
            raise SandboxError("LIKE ... ESCAPE is not supported; escape with a backslash.")
        value, pattern = self.compile(node.this), self.compile(node.expression)
        text, pattern_text = self._text(value), self._text(pattern)
        if isinstance(node, exp.ILike):
            condition = self.engine.icontains(text, pattern_text)
        else:
            literal = pattern.const if pattern.is_const and isinstance(pattern.const, str) else None
            condition = self.engine.like(text, pattern_text, literal, self.query.params)
        return self._match_result(condition, bool(node.args.get("negate")), truth, value.aggregate)

    def _match_result(self, condition, negate: bool, truth: bool, aggregate: bool) -> Value:
        if negate:
            return Value(is_not_false(exp.Not(this=condition)), BOOL, aggregate=aggregate)
        return Value(condition if truth else is_true(condition), BOOL, aggregate=aggregate)

    def _regex(self, node, truth) -> Value:
        value, pattern = self.compile(node.this), self.compile(node.expression)
        return self.regex(value, pattern, isinstance(node, exp.RegexpILike), truth)

    def regex(self, value: Value, pattern: Value, insensitive: bool, truth: bool) -> Value:
        if pattern.is_const:
            text = str(pattern.const)
            problem = regex_problem(text)
            if problem:
                raise SandboxError(f"Invalid regular expression {text!r}: {problem}")
            pattern_sql = self.param(f"(?i){text}" if insensitive else text)
        else:
            pattern_sql = self._text(pattern)
            if insensitive:
                pattern_sql = exp.DPipe(this=_string("(?i)"), expression=pattern_sql)
        condition = self.engine.regex(self._text(value), pattern_sql)
        return self._match_result(condition, False, truth, value.aggregate)

    def _in(self, node: exp.In, truth) -> Value:
        for key in ("unnest", "is_global"):
            if node.args.get(key):
                raise SandboxError(f"{_describe(node)} is not supported.")
        field = node.args.get("field")
        if field is not None and not isinstance(field, exp.Placeholder):
            raise SandboxError(f"{_describe(node)} is not supported: use IN (a, b, ...), IN (SELECT ...) or IN {{placeholder}}.")
        left = self.compile(node.this)
        query = node.args.get("query")
        if query is not None:
            inner = self.query.subquery(query.this if isinstance(query, exp.Subquery) else query, self.scope.ctes)
            if len(inner.columns) != 1:
                raise SandboxError("A subquery after IN must select exactly one column.")
            column = inner.columns[0]
            inner_value = Value(_quoted(column.sql_name), column.value.type)
            a, b = self._comparable(left, inner_value)
            tree = inner.tree if b is inner_value.sql else self.query.project(inner, [b])
            condition = exp.In(this=a, query=exp.Subquery(this=tree))
        else:
            items = []
            for item in node.expressions or [field]:
                value = self.compile(item)
                items.extend(value.const if value.type == "list" else [value])
            if not items:
                return self.const(False)
            values = [self._comparable(left, item) for item in items]
            condition = exp.In(this=values[0][0], expressions=[pair[1] for pair in values])
        return Value(condition if truth else is_true(condition), BOOL, aggregate=left.aggregate)

    def _is(self, node, truth) -> Value:
        if not isinstance(node.expression, exp.Null):
            raise SandboxError(f"{_describe(node)} is not supported: only IS [NOT] NULL.")
        value = self.compile(node.this)
        return Value(paren(exp.Is(this=value.sql, expression=exp.null())), BOOL, aggregate=value.aggregate)

    def _case(self, node: exp.Case, truth) -> Value:
        operand = self.compile(node.this) if node.this is not None else None
        whens, results = [], []
        for branch in node.args.get("ifs") or []:
            if operand is not None:
                condition = self.comparison(exp.EQ, operand, self.compile(branch.this), False).sql
            else:
                condition = self._condition(self.compile(branch.this))
            whens.append(condition)
            results.append(self.compile(branch.args["true"]))
        default = self.compile(node.args["default"]) if node.args.get("default") is not None else None
        return self._branches(whens, results, default)

    def _if(self, node: exp.If, truth) -> Value:
        false = node.args.get("false")
        return self._branches([self._condition(self.compile(node.this))], [self.compile(node.args["true"])],
                              self.compile(false) if false is not None else None)

    def _branches(self, whens, results: list[Value], default: Optional[Value]) -> Value:
        values = results + ([default] if default is not None else [])
        kind = self.common_type(values)
        converted = [self.convert(value, kind) for value in values]
        sql = case(list(zip(whens, converted[:len(whens)])), converted[-1] if default is not None else None)
        return Value(sql, kind, aggregate=any(value.aggregate for value in values))

    def common_type(self, values: list[Value]) -> str:
        kinds = {value.type for value in values} - {UNKNOWN}
        if not kinds:
            return UNKNOWN
        if len(kinds) == 1:
            return kinds.pop()
        if kinds <= {NUMBER, INTEGER, BOOL}:
            return NUMBER if NUMBER in kinds else INTEGER
        return STRING

    def convert(self, value: Value, kind: str) -> exp.Expression:
        if value.type == kind or value.type == UNKNOWN:
            return value.sql
        if kind in NUMERIC:
            return self._number(value)
        return self._text(value)

    def _cast(self, node: exp.Cast, truth) -> Value:
        target = node.args["to"]
        name = target.this.name if hasattr(target.this, "name") else str(target.this)
        function = CAST_TYPES.get(name)
        if function is None or target.expressions:
            raise SandboxError(f"CAST to {target.sql(dialect=HogQLDialect)} is not supported.")
        return self.function(function, [self.compile(node.this)], node)

    def _interval(self, node: exp.Interval, truth) -> Value:
        """INTERVAL 7 DAY, INTERVAL '7' DAY, INTERVAL '7 day'."""
        amount, unit = node.this, node.args.get("unit")
        if unit is None and isinstance(amount, exp.Literal) and amount.is_string and len(amount.this.split()) == 2:
            number, unit_text = amount.this.split()
            amount, unit = exp.Literal.string(number), exp.var(unit_text)
        unit_name = INTERVAL_UNITS.get(unit.name.lower()) if unit is not None else None
        if unit_name is None:
            raise SandboxError(f"Unsupported interval {_describe(node)}: use INTERVAL <n> SECOND|MINUTE|HOUR|DAY|WEEK|MONTH|QUARTER|YEAR.")
        if isinstance(amount, exp.Literal) and re.fullmatch(r"-?[0-9]+", str(amount.this)):
            return self.interval(self.const(int(amount.this)), unit_name)
        return self.interval(self.compile(amount), unit_name)

    def interval(self, amount: Value, unit: str) -> Value:
        if not amount.is_const and amount.type in NUMERIC:
            return Value(exp.null(), INTERVAL, const=(amount, unit))
        if not (amount.is_const and isinstance(amount.const, int) and not isinstance(amount.const, bool)):
            raise SandboxError("Interval amounts must be whole numbers.")
        return Value(exp.null(), INTERVAL, const=(amount.const, unit))

    def _subquery(self, node: exp.Subquery, truth) -> Value:
        if node.args.get("alias"):
            raise SandboxError(f"{_describe(node)}: a subquery in an expression cannot have an alias.")
        inner = self.query.subquery(node.this, self.scope.ctes)
        if len(inner.columns) != 1:
            raise SandboxError("A subquery used as a value must select exactly one column.")
        return Value(exp.Subquery(this=inner.tree), inner.columns[0].value.type)

    def _exists(self, node: exp.Exists, truth) -> Value:
        inner = self.query.subquery(node.this.this if isinstance(node.this, exp.Subquery) else node.this, self.scope.ctes)
        return Value(exp.Exists(this=inner.tree), BOOL)

    def _alias_node(self, node, truth) -> Value:
        raise SandboxError(f"Aliases are only allowed on SELECT columns: {_describe(node)}")

    def _star(self, node, truth) -> Value:
        raise SandboxError("* is only allowed as a SELECT column or in count(*).")

    def _window(self, node, truth) -> Value:
        raise SandboxError("Window functions (OVER ...) are not supported in SQL insights.")

    # --- Functions ---

    def _call(self, node, truth) -> Value:
        lowered = self._display_name(node).lower()
        if isinstance(node, exp.ParameterizedAgg):
            if lowered != "quantile" or len(node.expressions) != 1 or len(node.args.get("params") or []) != 1:
                raise SandboxError(f"{_describe(node)} is not supported; use quantile(level)(expression).")
            return self.aggregate("quantile", node.args["params"], node, level=node.expressions[0])
        if lowered in AGGREGATES:
            return self.aggregate(lowered, node.expressions, node)
        if any(isinstance(arg, exp.Distinct) for arg in node.expressions):
            raise SandboxError(f"DISTINCT is only allowed in count() and uniq(): {_describe(node)}")
        if lowered == "match" and len(node.expressions) == 2:
            return self.regex(self.compile(node.expressions[0]), self.compile(node.expressions[1]), False, truth)
        return self.function(lowered, [self.compile(arg) for arg in node.expressions], node)

    @staticmethod
    def _display_name(node) -> str:
        return node.name if isinstance(node, exp.Anonymous) else str(node.this)

    def aggregate(self, name: str, arguments: list, node, level=None) -> Value:
        if not self.allow_aggregates:
            raise SandboxError(f"Aggregate functions such as {name}() are not allowed in {self.clause}.")
        if self.in_aggregate:
            raise SandboxError(f"Aggregate functions cannot be nested: {_describe(node)}")
        distinct = bool(arguments) and isinstance(arguments[0], exp.Distinct)
        if distinct:
            if name not in ("count", "uniq", "uniqexact") or len(arguments) != 1 or len(arguments[0].expressions) != 1:
                raise SandboxError(f"{_describe(node)}: DISTINCT takes one expression, in count() or uniq().")
            arguments = arguments[0].expressions
        self.in_aggregate = True
        try:
            star = len(arguments) == 1 and isinstance(arguments[0], exp.Star)
            args = [] if star else [self.compile(arg) for arg in arguments]
        finally:
            self.in_aggregate = False
        expected = {"count": (0, 1), "countif": (1,), "sumif": (2,), "avgif": (2,), "minif": (2,), "maxif": (2,)}.get(name, (1,))
        if len(args) not in expected or (star and name != "count"):
            raise SandboxError(f"Wrong number of arguments for {name}(): {_describe(node)}")
        if name == "count":
            if not args:
                return Value(exp.Count(this=exp.Star()), INTEGER, aggregate=True)
            inner = args[0].sql
            return Value(exp.Count(this=exp.Distinct(expressions=[inner]) if distinct else inner), INTEGER, aggregate=True)
        if name in ("uniq", "uniqexact"):
            return Value(exp.Count(this=exp.Distinct(expressions=[args[0].sql])), INTEGER, aggregate=True)
        if name == "countif":
            return Value(exp.Count(this=case([(self._condition(args[0]), exp.Literal.number(1))])), INTEGER, aggregate=True)
        if name in ("sumif", "avgif", "minif", "maxif"):
            value = args[0]
            inner = self._number(value) if name in ("sumif", "avgif") else value.sql
            args = [Value(case([(self._condition(args[1]), inner)]), value.type if name in ("minif", "maxif") else
                          (INTEGER if value.type in (INTEGER, BOOL) else NUMBER))]
            name = name[:-2]
        value = args[0]
        if name in ("median", "quantile"):
            level_value = 0.5 if level is None else self.compile(level).const
            if isinstance(level_value, bool) or not isinstance(level_value, (int, float)) or not 0 <= level_value <= 1:
                raise SandboxError("The quantile level must be a number between 0 and 1.")
            return Value(self.query.quantile(float(level_value), self._number(value)), NUMBER, aggregate=True)
        if name == "sum":
            return Value(exp.Sum(this=self._number(value)), INTEGER if value.type in (INTEGER, BOOL) else NUMBER, aggregate=True)
        if name == "avg":
            return Value(exp.Avg(this=_cast(self._number(value), "double")), NUMBER, aggregate=True)
        if value.type == JSON:
            raise SandboxError(f"{name}() of a JSON value is not supported: {_describe(node)}")
        # any() picks the smallest value: one of the group's values, and the same on every engine.
        inner = self.engine.binary_order(value.sql) if value.type == STRING else value.sql
        return Value((exp.Max if name == "max" else exp.Min)(this=inner), value.type, aggregate=True)

    def function(self, name: str, args: list[Value], node) -> Value:
        aggregate = any(arg.aggregate for arg in args)
        value = self._function(name, args, node)
        if aggregate:
            value.aggregate = True
        return value

    def _arity(self, name: str, args: list, *counts: int) -> None:
        if len(args) not in counts:
            raise SandboxError(f"Function {name} takes {' or '.join(map(str, counts))} argument(s), got {len(args)}.")

    def _unit(self, value: Value, node) -> str:
        unit = INTERVAL_UNITS.get(str(value.const).lower()) if value.is_const and isinstance(value.const, str) else None
        if unit is None:
            raise SandboxError(f"{_describe(node)}: the unit must be one of {', '.join(TRUNC_UNITS)}.")
        return unit

    def _function(self, name: str, args: list[Value], node) -> Value:
        time, tz = self.time, self.query.tz
        if name in ("now", "today", "yesterday"):
            self._arity(name, args, 0)
            if name == "now":
                return self.datetime_const(self.query.now)
            today = self.query.now.astimezone(tz).date()
            return self.date_const(today - timedelta(days=1) if name == "yesterday" else today)
        if name == "todate":
            self._arity(name, args, 1)
            value = args[0]
            if value.type == DATE:
                return value
            if value.is_const and value.type == STRING:
                return self.date_const(self._parse_datetime(value.const).date())
            if value.is_const and value.type == DATETIME:
                return self.date_const(value.const.astimezone(tz).date())
            return Value(time.to_date(self._datetime(value)), DATE)
        if name == "todatetime":
            self._arity(name, args, 1)
            value = args[0]
            if value.is_const and value.type == STRING:
                return self.datetime_const(self._parse_datetime(value.const))
            if value.is_const and value.type == DATE:
                return self.datetime_const(datetime.combine(value.const, datetime.min.time(), tz))
            if value.type in NUMERIC:
                seconds = self._number(value)
                return Value(self.engine.from_epoch_seconds(seconds), DATETIME)
            return Value(self._datetime(value), DATETIME, const=value.const if value.type == DATETIME else _NO_CONST)
        if name in TRUNC_FUNCTIONS:
            unit = TRUNC_FUNCTIONS[name]
            self._arity(name, args, *((1, 2) if name == "tostartofweek" else (1,)))
            week_start = 1 if name == "tomonday" else 0
            if len(args) == 2:
                mode = args[1].const if args[1].is_const else None
                if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 9:
                    raise SandboxError("toStartOfWeek's mode must be a number from 0 to 9 (0: weeks start on Sunday, 1: Monday).")
                week_start = mode % 2
            returns_date = unit in ("week", "month", "quarter", "year")
            value = args[0]
            if value.is_const and value.type in (STRING, DATETIME, DATE):
                moment = (value.const if value.type == DATETIME else
                          datetime.combine(value.const, datetime.min.time(), tz) if value.type == DATE else
                          self._parse_datetime(value.const))
                start = start_of_interval(moment.astimezone(tz), "day" if unit == "day" else unit if unit != "quarter" else "month",
                                          week_start)
                if unit == "quarter":
                    start = start.replace(month=(start.month - 1) // 3 * 3 + 1)
                if unit == "year":
                    start = start.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
                return self.date_const(start.date()) if returns_date else self.datetime_const(start.replace(tzinfo=tz))
            truncated = time.trunc(unit, self._datetime(value), week_start)
            return Value(time.to_date(truncated), DATE) if returns_date else Value(truncated, DATETIME)
        if name in DATE_TIME_PARTS:
            self._arity(name, args, 1)
            unit, value = DATE_TIME_PARTS[name], args[0]
            if value.type == DATE and unit in ("year", "month", "day", "dayofweek"):
                return Value(time.date_part(unit, value.sql), INTEGER)
            return Value(time.part(unit, self._datetime(value)), INTEGER)
        if name in ("datediff", "date_diff"):
            self._arity(name, args, 3)
            unit = self._unit(args[0], node)
            return Value(time.date_diff(unit, self._datetime(args[1]), self._datetime(args[2])), INTEGER)
        if name in ("dateadd", "date_add", "datesub", "date_sub"):
            self._arity(name, args, 3)
            unit = self._unit(args[0], node)
            amount = self._negate(args[1]) if name in ("datesub", "date_sub") else args[1]
            return self.shift(args[2], amount, unit)
        if name in SHIFT_FUNCTIONS:
            self._arity(name, args, 2)
            unit, sign = SHIFT_FUNCTIONS[name]
            return self.shift(args[0], self._negate(args[1]) if sign < 0 else args[1], unit)
        if name in INTERVAL_FUNCTIONS:
            self._arity(name, args, 1)
            return self.interval(args[0], INTERVAL_FUNCTIONS[name])
        if name in ("toint", "toint64", "toint32", "touint64", "touint32", "tointornull"):
            self._arity(name, args, 1)
            return Value(self.engine.truncate_to_integer(self._number(args[0])), INTEGER)
        if name == "length":
            self._arity(name, args, 1)
            return Value(exp.Length(this=self._text(args[0])), INTEGER)
        if name in ("jsonextractstring", "jsonextractfloat", "jsonextractint", "jsonextractraw"):
            self._arity(name, args, 2)
            source, key = args
            if source.type not in (JSON, STRING) or not (key.is_const and isinstance(key.const, str)):
                raise SandboxError(f"{_describe(node)}: the first argument must be a JSON field and the key a string.")
            column = source.sql if source.type == JSON else self.query.text_as_json(source.sql)
            if name == "jsonextractstring" or name == "jsonextractraw":
                return Value(self.engine.json_text(column, key.const, self.query.params), STRING)
            number = self.engine.json_number(column, key.const, self.query.params)
            if name == "jsonextractint":
                return Value(self.engine.truncate_to_integer(number), INTEGER)
            return Value(number, NUMBER)
        if name == "concat":
            return self._concat_values(args)
        if name in FUNCTIONS:
            handler, arity = FUNCTIONS[name]
            if arity is not None:
                self._arity(name, args, *(arity if isinstance(arity, tuple) else (arity,)))
            if any(arg.type in ("list", INTERVAL) for arg in args):
                raise SandboxError(f"{_describe(node)}: lists and intervals are not valid arguments here.")
            typed = handler(self, args)
            return Value(typed.sql, typed.type)
        raise SandboxError(f"Unsupported function: {self._display_name(node)}(). SQL insights support a subset of HogQL functions "
                           "(count, sum, avg, quantile, if, coalesce, toString, toDate, toStartOfDay, dateDiff...).")

    HANDLERS: dict = {}


ExprCompiler.HANDLERS = {
    exp.Literal: ExprCompiler._literal,
    exp.Boolean: ExprCompiler._boolean,
    exp.Null: ExprCompiler._null,
    exp.Paren: ExprCompiler._paren,
    exp.Neg: ExprCompiler._neg,
    exp.Column: ExprCompiler._field,
    exp.Dot: ExprCompiler._field,
    exp.Bracket: ExprCompiler._field,
    exp.Placeholder: ExprCompiler._placeholder,
    exp.And: ExprCompiler._logic,
    exp.Or: ExprCompiler._logic,
    exp.Not: ExprCompiler._not,
    **{cls: ExprCompiler._compare for cls in COMPARISONS},
    exp.Between: ExprCompiler._between,
    **{cls: ExprCompiler._arithmetic for cls in ARITHMETIC},
    exp.DPipe: ExprCompiler._dpipe,
    exp.Concat: ExprCompiler._concat,
    exp.Like: ExprCompiler._like,
    exp.ILike: ExprCompiler._like,
    exp.RegexpLike: ExprCompiler._regex,
    exp.RegexpILike: ExprCompiler._regex,
    exp.In: ExprCompiler._in,
    exp.Is: ExprCompiler._is,
    exp.Case: ExprCompiler._case,
    exp.If: ExprCompiler._if,
    exp.Cast: ExprCompiler._cast,
    exp.Interval: ExprCompiler._interval,
    exp.Subquery: ExprCompiler._subquery,
    exp.Exists: ExprCompiler._exists,
    exp.Alias: ExprCompiler._alias_node,
    exp.Star: ExprCompiler._star,
    exp.Window: ExprCompiler._window,
    exp.Anonymous: ExprCompiler._call,
    exp.AnonymousAggFunc: ExprCompiler._call,
    exp.CombinedAggFunc: ExprCompiler._call,
    exp.ParameterizedAgg: ExprCompiler._call,
}



# --- Queries ------------------------------------------------------------------------------------

MAX_QUERY_LENGTH = 100_000
MAX_NESTING = 32
SELECT_CLAUSES = {"expressions", "distinct", "from_", "joins", "where", "group", "having", "order", "limit", "offset", "with_"}
SET_OPERATION_CLAUSES = {"this", "expression", "distinct", "with_", "order", "limit", "offset"}
CLAUSE_NAMES = {
    "prewhere": "PREWHERE", "settings": "SETTINGS", "format": "FORMAT", "windows": "WINDOW", "qualify": "QUALIFY",
    "sample": "SAMPLE", "final": "FINAL", "into": "INTO", "locks": "FOR UPDATE", "laterals": "LATERAL",
    "kind": "SELECT AS STRUCT/VALUE", "hint": "hints", "connect": "CONNECT BY", "options": "OPTION",
}
TABLES_HELP = "You can query the tables: events, persons, person_distinct_ids."


class ScopeContext(SQLContext):
    """queries.sql.properties' view of one events table of a sandboxed query (for {filters})."""

    def __init__(self, compiler: "QueryCompiler", source: EventsTable):
        super().__init__(compiler.engine, compiler.team, compiler.params)
        self.source = source

    def event_column(self, field: str) -> exp.Column:
        return self.source.field(field)

    def person_column(self, field: str) -> exp.Column:
        self.uses_person = True
        return self.source.field(f"person__{field}")


class Scope:
    """The FROM/JOIN items, CTEs and SELECT aliases one SELECT's expressions can see."""

    def __init__(self, query: "QueryCompiler", ctes: dict[str, CTEDefinition]):
        self.query = query
        self.ctes = ctes
        self.sources: list[tuple[Optional[str], Source]] = []
        self.aliases: dict[str, exp.Expression] = {}

    def add(self, node: exp.Expression) -> Source:
        query = self.query
        sql_alias = query.name("t")
        if isinstance(node, exp.Table):
            if not isinstance(node.this, exp.Identifier):
                raise SandboxError(f"Table functions such as {_describe(node.this)} are not allowed. {TABLES_HELP}")
            parts = [node.args.get(key) for key in ("catalog", "db", "this")]
            name = ".".join(part.name for part in parts if part is not None)
            if name not in self.ctes and name not in VIRTUAL_TABLES:
                raise SandboxError(f"Table `{name}` is not allowed. {TABLES_HELP}")
            alias = self._alias(node)
            query.check(node, {"this", "alias"})
            if name in self.ctes:
                cte = self.ctes[name]
                columns = [OutputColumn(column.name, column.sql_name, column.value) for column in cte.columns]
                source = DerivedTable(query, sql_alias, columns, exp.to_table(cte.sql_name).as_(sql_alias))
            else:
                source = VIRTUAL_TABLES[name](query, sql_alias)
            user_name = alias or name
        elif isinstance(node, exp.Subquery):
            query.check(node, {"this", "alias"})
            alias = self._alias(node)
            compiled = query.query(node.this, self.ctes)
            table = exp.Subquery(this=compiled.tree, alias=exp.TableAlias(this=exp.to_identifier(sql_alias)))
            source = DerivedTable(query, sql_alias, compiled.columns, table)
            user_name = alias
        else:
            raise SandboxError(f"{_describe(node)} is not allowed in FROM. {TABLES_HELP}")
        if user_name is not None and any(name == user_name for name, _ in self.sources):
            raise SandboxError(f"The table alias {user_name!r} is used twice in one FROM clause.")
        self.sources.append((user_name, source))
        return source

    def _alias(self, node: exp.Expression) -> Optional[str]:
        alias = node.args.get("alias")
        if alias is None:
            return None
        self.query.check(alias, {"this"})
        return alias.name

    def source_named(self, name: str, node: exp.Expression) -> Source:
        for user_name, source in self.sources:
            if user_name == name:
                return source
        raise SandboxError(f"Unknown table {name!r} in {_describe(node)}.")

    def lookup(self, chain: list[str], node: exp.Expression) -> Value:
        if len(chain) > 1:
            for user_name, source in self.sources:
                if user_name == chain[0]:
                    return source.resolve(chain[1:], node)
        candidates = [source for _, source in self.sources if source.has(chain[0])]
        if len(candidates) == 1:
            return candidates[0].resolve(chain, node)
        if candidates:
            raise SandboxError(f"Field {_describe(node)} is ambiguous: prefix it with a table alias.")
        if not self.sources:
            raise SandboxError(f"Unknown field {_describe(node)}: the query has no FROM clause.")
        raise SandboxError(f"Unknown field {_describe(node)}.")

    def filters_condition(self) -> exp.Expression:
        events = [source for _, source in self.sources if isinstance(source, EventsTable)]
        if len(events) != 1:
            raise SandboxError("{filters} needs exactly one events table in the FROM clause of its SELECT.")
        query, source = self.query, events[0]
        filters = query.filters
        conditions: list[exp.Expression] = []
        if filters is not None:
            date_range = filters.dateRange
            if date_range is not None and (date_range.date_from or date_range.date_to):
                resolved = QueryDateRange(date_range, tz=query.tz, interval="day", now=query.now)
                if date_range.date_from and date_range.date_from != "all":
                    conditions.append(exp.GTE(this=source.field("timestamp"), expression=query.time.constant(resolved.date_from())))
                if date_range.date_to:
                    conditions.append(exp.LTE(this=source.field("timestamp"), expression=query.time.constant(resolved.date_to())))
            context = ScopeContext(query, source)
            conditions.append(properties_condition(filters.properties, context))
            if filters.filterTestAccounts:
                conditions.append(properties_condition(test_account_filters(query.team), context))
        condition = and_all(conditions)
        return paren(condition) if condition is not None else exp.true()


@dataclass
class SandboxQuery:
    """A compiled HogQL query, ready to run, and what the response needs to describe it."""

    tree: exp.Expression
    params: SharedParams
    columns: list[str]
    value_types: list[str]
    hogql: str
    paginated: bool
    limit: Optional[int]
    offset: int


class QueryCompiler:
    def __init__(self, engine: Engine, team, *, now: datetime, tz: ZoneInfo, filters=None, variables=None, values=None):
        self.engine = engine
        self.team = team
        self.now = now
        self.tz = tz
        self.params = SharedParams()
        self.context = SQLContext(engine, team, self.params)
        self.time = TimeSQL(engine, self.params, tz)
        self.filters = filters
        self.variables = variables or {}
        self.values = values or {}
        self._counter = 0
        self._depth = 0

    def name(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def check(self, node: exp.Expression, allowed: set[str]) -> None:
        for key in _set_args(node):
            if key not in allowed:
                clause = CLAUSE_NAMES.get(key, key.rstrip("_").upper())
                raise SandboxError(f"{clause} is not supported in SQL insights: {_describe(node)}")

    # --- Top level ---

    def compile(self, node: exp.Expression, *, default_limit: int = DEFAULT_LIMIT, max_limit: int = MAX_LIMIT,
                limit: Optional[int] = None, offset: Optional[int] = None) -> SandboxQuery:
        """The whole query; without a LIMIT of its own it gets `limit` (default 100) + 1 rows to detect more."""
        user_limit = node.args.get("limit")
        compiled = self.query(node, {})
        tree = compiled.tree
        printed = node.copy()
        if user_limit is not None:
            capped = min(self.integer(user_limit.expression, "LIMIT"), max_limit)
            printed.set("limit", exp.Limit(expression=exp.Literal.number(capped)))
            paginated, page_offset = False, self.integer(node.args["offset"].expression, "OFFSET") if node.args.get("offset") else 0
        else:
            capped = min(limit if limit is not None else default_limit, max_limit)
            user_offset = node.args.get("offset")
            page_offset = offset if offset is not None else self.integer(user_offset.expression, "OFFSET") if user_offset else 0
            tree.set("limit", exp.Limit(expression=exp.Literal.number(capped + 1)))
            if page_offset:
                tree.set("offset", exp.Offset(expression=exp.Literal.number(page_offset)))
                printed.set("offset", exp.Offset(expression=exp.Literal.number(page_offset)))
            printed.set("limit", exp.Limit(expression=exp.Literal.number(capped)))
            paginated = True
        return SandboxQuery(
            tree=tree,
            params=self.params,
            columns=[column.name for column in compiled.columns],
            value_types=[column.value.type for column in compiled.columns],
            hogql=to_hogql(printed),
            paginated=paginated,
            limit=capped,
            offset=page_offset,
        )

    def integer(self, node: exp.Expression, clause: str) -> int:
        value = ExprCompiler(self, Scope(self, {}), clause=clause, aggregates=False).compile(node)
        if not (value.is_const and isinstance(value.const, int) and not isinstance(value.const, bool) and value.const >= 0):
            raise SandboxError(f"{clause} must be a whole number of 0 or more.")
        return value.const

    # --- Queries ---

    def query(self, node: exp.Expression, ctes: dict[str, CTEDefinition]) -> "Compiled":
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                raise SandboxError(f"The query nests subqueries more than {MAX_NESTING} levels deep.")
            if isinstance(node, exp.Subquery) and node.args.get("alias") is None:
                self.check(node, {"this"})
                return self.query(node.this, ctes)
            if isinstance(node, exp.Select):
                return self.select(node, ctes)
            if isinstance(node, (exp.Union, exp.Except, exp.Intersect)):
                return self.set_operation(node, ctes)
            raise SandboxError(f"Expected a SELECT query, got {_describe(node)}.")
        finally:
            self._depth -= 1

    subquery = query

    def _ctes(self, node: Optional[exp.With], ctes: dict) -> tuple[dict, list[exp.CTE]]:
        if node is None:
            return ctes, []
        if node.args.get("recursive"):
            raise SandboxError("WITH RECURSIVE is not allowed in SQL insights.")
        self.check(node, {"expressions"})
        ctes, out = dict(ctes), []
        for cte in node.expressions:
            if cte.args.get("scalar") or not isinstance(cte.this, (exp.Select, exp.SetOperation, exp.Subquery)):
                raise SandboxError("Only WITH name AS (SELECT ...) is supported.")
            self.check(cte, {"this", "alias"})
            self.check(cte.args["alias"], {"this"})
            compiled = self.query(cte.this, ctes)
            sql_name = self.name("w")
            ctes[cte.alias] = CTEDefinition(sql_name, compiled.columns)
            out.append(exp.CTE(this=compiled.tree, alias=exp.TableAlias(this=exp.to_identifier(sql_name))))
        return ctes, out

    @staticmethod
    def column_name(item: exp.Expression) -> str:
        chain = ExprCompiler.chain(item)
        return chain[-1] if chain else to_hogql(item)

    def _select_items(self, item: exp.Expression, scope: Scope, compiler: ExprCompiler) -> list[tuple[str, Value]]:
        if isinstance(item, exp.Star):
            self.check(item, set())
            if not scope.sources:
                raise SandboxError("SELECT * needs a FROM clause.")
            return [(name, source.resolve([name], item)) for _, source in scope.sources for name in source.star()]
        if isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
            self.check(item.this, set())
            source = scope.source_named(item.args["table"].name, item)
            return [(name, source.resolve([name], item)) for name in source.star()]
        if isinstance(item, exp.Alias):
            self.check(item, {"this", "alias"})
            return [(item.alias, compiler.alias(item.alias, item.this))]
        return [(self.column_name(item), compiler.compile(item))]

    def select(self, node: exp.Select, ctes: dict) -> "Compiled":
        self.check(node, SELECT_CLAUSES)
        if not node.expressions:
            raise SandboxError("A SELECT needs at least one column.")
        ctes, with_ = self._ctes(node.args.get("with_"), ctes)
        scope = Scope(self, ctes)
        from_ = node.args.get("from_")
        if from_ is not None:
            self.check(from_, {"this"})
            scope.add(from_.this)
        joins = []
        for join in node.args.get("joins") or []:
            self.check(join, {"this", "on", "side", "kind"})
            side, kind = (join.side or "").upper(), (join.kind or "").upper()
            if side not in ("", "LEFT", "RIGHT", "FULL") or kind not in ("", "INNER", "OUTER", "CROSS"):
                raise SandboxError(f"{' '.join(filter(None, [side, kind]))} JOIN is not supported in SQL insights.")
            if join.args.get("on") is None and (side or kind not in ("", "CROSS")):
                raise SandboxError(f"{side or kind} JOIN needs an ON condition.")
            if join.args.get("on") is not None and kind == "CROSS":
                raise SandboxError("CROSS JOIN takes no ON condition.")
            joins.append((join, scope.add(join.this), side, kind))
        distinct = node.args.get("distinct")
        if distinct is not None:
            self.check(distinct, set())

        for item in node.expressions:
            if isinstance(item, exp.Alias):
                if item.alias in scope.aliases:
                    raise SandboxError(f"The alias {item.alias!r} is used twice.")
                scope.aliases[item.alias] = item.this

        select_compiler = ExprCompiler(self, scope, clause="SELECT", aggregates=True)
        outputs: list[tuple[str, Value]] = []
        for item in node.expressions:
            outputs.extend(self._select_items(item, scope, select_compiler))
        for _name, value in outputs:
            if value.type in ("list", INTERVAL):
                raise SandboxError("Lists and intervals cannot be selected.")

        join_conditions = [ExprCompiler(self, scope, clause="JOIN ON", aggregates=False).condition(join.args["on"])
                           if join.args.get("on") is not None else None for join, *_ in joins]
        where = node.args.get("where")
        where_sql = ExprCompiler(self, scope, clause="WHERE", aggregates=False).condition(where.this) if where is not None else None

        group_sql = []
        group = node.args.get("group")
        if group is not None:
            self.check(group, {"expressions"})
            if not group.expressions:
                raise SandboxError("GROUP BY needs at least one expression.")
            compiler = ExprCompiler(self, scope, clause="GROUP BY", aggregates=False)
            for item in group.expressions:
                value = self._positional(item, outputs) or compiler.compile(item)
                if value.aggregate:
                    raise SandboxError("Aggregate functions are not allowed in GROUP BY.")
                group_sql.append(value.sql.copy())
        having = node.args.get("having")
        having_sql = ExprCompiler(self, scope, clause="HAVING", aggregates=True).condition(having.this) if having is not None else None

        order_sql = []
        order = node.args.get("order")
        if order is not None:
            self.check(order, {"expressions"})
            compiler = ExprCompiler(self, scope, clause="ORDER BY", aggregates=True)
            for item in order.expressions:
                self.check(item, {"this", "desc", "nulls_first"})
                value = self._positional(item.this, outputs) or compiler.compile(item.this)
                sql = self.engine.binary_order(value.sql.copy()) if value.type == STRING else value.sql.copy()
                desc = bool(item.args.get("desc"))
                nulls_first = self._natural_nulls_first(desc) if value.not_null else bool(item.args.get("nulls_first"))
                order_sql.append(exp.Ordered(this=sql, desc=desc, nulls_first=nulls_first))

        if group_sql or having_sql is not None or any(value.aggregate for _name, value in outputs):
            self._check_grouped(outputs, group_sql, order_sql, having_sql)
        distinct_order = []
        if distinct is not None and order_sql:
            # PostgreSQL cannot ORDER BY `x COLLATE "C"` under DISTINCT: the distinct rows are ordered outside.
            selected = [value.sql.sql() for _name, value in outputs]
            for item in order_sql:
                inner = item.this.this if isinstance(item.this, exp.Collate) else item.this
                if inner.sql() not in selected:
                    raise SandboxError("With SELECT DISTINCT, ORDER BY can only use the selected columns.")
                index = selected.index(inner.sql())
                column = _quoted(f"c{index}")
                distinct_order.append(exp.Ordered(this=self.engine.binary_order(column) if outputs[index][1].type == STRING else column,
                                                  desc=item.args.get("desc"), nulls_first=item.args.get("nulls_first")))

        tree = exp.Select(expressions=[exp.Alias(this=value.sql, alias=exp.to_identifier(f"c{index}", quoted=True))
                                       for index, (_name, value) in enumerate(outputs)])
        if distinct is not None:
            tree.set("distinct", exp.Distinct())
        if scope.sources:
            tree.set("from_", exp.From(this=scope.sources[0][1].table_expression()))
        if joins:
            tree.set("joins", [
                exp.Join(this=source.table_expression(), on=condition, side=side or None, kind=kind or None)
                for (_join, source, side, kind), condition in zip(joins, join_conditions)
            ])
        if where_sql is not None:
            tree.set("where", exp.Where(this=where_sql))
        if group_sql:
            tree.set("group", exp.Group(expressions=group_sql))
        if having_sql is not None:
            tree.set("having", exp.Having(this=having_sql))
        columns = [OutputColumn(name, f"c{index}", Value(None, value.type, not_null=value.not_null))
                   for index, (name, value) in enumerate(outputs)]
        if distinct_order:
            tree = self.project(Compiled(tree, columns), [_quoted(column.sql_name) for column in columns])
            tree.set("order", exp.Order(expressions=distinct_order))
        elif order_sql:
            tree.set("order", exp.Order(expressions=order_sql))
        self._set_limit(tree, node)
        if with_:
            tree.set("with_", exp.With(expressions=with_))
        return Compiled(tree, columns)

    def _natural_nulls_first(self, desc: bool) -> bool:
        """The engine's own NULL placement, which an index scan yields (PostgreSQL: NULLs largest; SQLite: smallest)."""
        return self.engine.natural_nulls_first(desc)

    def _check_grouped(self, outputs, group_sql, order_sql, having_sql) -> None:
        """In an aggregating SELECT, columns outside aggregate functions must be grouped on.

        PostgreSQL enforces this and SQLite does not; checking here gives the same answer on both.
        """
        groups = {sql.sql() for sql in group_sql}

        def grouped(node: exp.Expression) -> bool:
            if (groups and node.sql() in groups) or isinstance(node, (exp.AggFunc, exp.WithinGroup, exp.Subquery, exp.Exists)):
                return True
            if isinstance(node, exp.Anonymous) and node.name == "hogql_quantile":
                return True
            if isinstance(node, exp.Column):
                return False
            return all(grouped(child) for child in node.iter_expressions())

        for name, value in outputs:
            if not grouped(value.sql):
                raise SandboxError(f"Column {name!r} must be in GROUP BY or inside an aggregate function such as count() or any().")
        for item in order_sql:
            if not grouped(item.this.this if isinstance(item.this, exp.Collate) else item.this):
                raise SandboxError("ORDER BY of an aggregating query must use grouped columns or aggregate functions.")
        if having_sql is not None and not grouped(having_sql):
            raise SandboxError("HAVING must use grouped columns or aggregate functions.")

    def _positional(self, node: exp.Expression, outputs: list[tuple[str, Value]]) -> Optional[Value]:
        """`GROUP BY 1`, `ORDER BY 2`: the SELECT column at that position."""
        if isinstance(node, exp.Literal) and not node.is_string and re.fullmatch(r"[0-9]+", str(node.this)):
            position = int(node.this)
            if not 1 <= position <= len(outputs):
                raise SandboxError(f"Column position {position} is out of range (1 to {len(outputs)}).")
            return outputs[position - 1][1]
        return None

    def _set_limit(self, tree: exp.Expression, node: exp.Expression) -> None:
        limit, offset = node.args.get("limit"), node.args.get("offset")
        if limit is not None:
            self.check(limit, {"expression"})
            tree.set("limit", exp.Limit(expression=exp.Literal.number(min(self.integer(limit.expression, "LIMIT"), MAX_LIMIT))))
        if offset is not None:
            self.check(offset, {"expression"})
            tree.set("offset", exp.Offset(expression=exp.Literal.number(self.integer(offset.expression, "OFFSET"))))

    def set_operation(self, node: exp.Expression, ctes: dict) -> "Compiled":
        self.check(node, SET_OPERATION_CLAUSES)
        ctes, with_ = self._ctes(node.args.get("with_"), ctes)
        left, right = self._operand(node.this, ctes), self._operand(node.expression, ctes)
        if len(left.columns) != len(right.columns):
            raise SandboxError(f"Both sides of {node.key.upper()} must select the same number of columns "
                               f"({len(left.columns)} and {len(right.columns)}).")
        converter = ExprCompiler(self, Scope(self, {}), clause=node.key.upper(), aggregates=False)
        kinds, left_sql, right_sql = [], [], []
        for a, b in zip(left.columns, right.columns):
            kind = converter.common_type([a.value, b.value])
            kinds.append(kind)
            left_sql.append(converter.convert(Value(_quoted(a.sql_name), a.value.type), kind))
            right_sql.append(converter.convert(Value(_quoted(b.sql_name), b.value.type), kind))
        left_tree = left.tree if all(isinstance(sql, exp.Column) for sql in left_sql) else self.project(left, left_sql)
        right_tree = right.tree if all(isinstance(sql, exp.Column) for sql in right_sql) else self.project(right, right_sql)
        # EXCEPT and INTERSECT are always DISTINCT (SQLite has no EXCEPT ALL); bare UNION is UNION DISTINCT.
        distinct = node.args.get("distinct") is not False or not isinstance(node, exp.Union)
        tree: exp.Expression = type(node)(this=left_tree, expression=right_tree, distinct=distinct)
        columns = [OutputColumn(a.name, a.sql_name, Value(None, kind)) for a, kind in zip(left.columns, kinds)]
        if node.args.get("order") is not None or node.args.get("limit") is not None or node.args.get("offset") is not None:
            tree = self._wrap_set_operation(Compiled(tree, columns), node)
        if with_:
            tree.set("with_", exp.With(expressions=with_))
        return Compiled(tree, columns)

    def _operand(self, node: exp.Expression, ctes: dict) -> "Compiled":
        compiled = self.query(node, ctes)
        plain = isinstance(compiled.tree, exp.Select) and not any(
            compiled.tree.args.get(key) is not None for key in ("order", "limit", "offset", "with_"))
        if plain:
            return compiled
        # Compound members with ORDER BY/LIMIT or nested set operations run as derived tables (SQLite needs it).
        return Compiled(self.project(compiled, [_quoted(column.sql_name) for column in compiled.columns]), compiled.columns)

    def project(self, compiled: "Compiled", expressions: list[exp.Expression]) -> exp.Select:
        """SELECT <expressions> AS c0, c1... FROM (<compiled>) AS tN (expressions name its columns unqualified)."""
        alias = self.name("t")
        selected = [exp.Alias(this=sql, alias=exp.to_identifier(column.sql_name, quoted=True))
                    for sql, column in zip(expressions, compiled.columns)]
        return exp.select(*selected).from_(exp.Subquery(this=compiled.tree, alias=exp.TableAlias(this=exp.to_identifier(alias))))

    def _wrap_set_operation(self, compiled: "Compiled", node: exp.Expression) -> exp.Select:
        """ORDER BY / LIMIT of a whole set operation: applied to it as a derived table."""
        wrapper = self.project(compiled, [_quoted(column.sql_name) for column in compiled.columns])
        order = node.args.get("order")
        if order is not None:
            self.check(order, {"expressions"})
            ordered = []
            for item in order.expressions:
                self.check(item, {"this", "desc", "nulls_first"})
                target = item.this
                chain = ExprCompiler.chain(target)
                if isinstance(target, exp.Literal) and not target.is_string and re.fullmatch(r"[0-9]+", str(target.this)):
                    index = int(target.this) - 1
                elif chain is not None and len(chain) == 1:
                    index = next((i for i, column in enumerate(compiled.columns) if column.name == chain[0]), -1)
                else:
                    index = -1
                if not 0 <= index < len(compiled.columns):
                    raise SandboxError(f"ORDER BY of a {node.key.upper()} must name one of its columns: {_describe(target)}")
                column = compiled.columns[index]
                sql = _quoted(column.sql_name)
                ordered.append(exp.Ordered(this=self.engine.binary_order(sql) if column.value.type == STRING else sql,
                                           desc=bool(item.args.get("desc")), nulls_first=bool(item.args.get("nulls_first"))))
            wrapper.set("order", exp.Order(expressions=ordered))
        self._set_limit(wrapper, node)
        return wrapper

    # --- Helpers for expressions ---

    def placeholder_value(self, name: str) -> Any:
        if name.startswith("variables."):
            code_name = name[len("variables."):]
            for variable in self.variables.values():
                if variable.code_name == code_name:
                    return None if variable.isNull else variable.value
            raise SandboxError(f"The variable {code_name!r} is not defined in the query's `variables`.")
        if name in self.values:
            return self.values[name]
        raise SandboxError(f"Unknown placeholder {{{name}}}: use {{filters}}, {{variables.<code_name>}} or a key of `values`.")

    def uuid_text(self, column: exp.Expression) -> exp.Expression:
        """A UUID column as canonical text (SQLite stores Django UUIDs as 32 hex digits)."""
        return self.engine.uuid_text(column)

    def _person_lookup(self, selected, condition_for) -> exp.Subquery:
        alias = self.name("u")
        table = exp.to_table(Person._meta.db_table).as_(alias)
        team = exp.EQ(this=_db_column(Person, "team", alias), expression=exp.Literal.number(self.team.id))
        return exp.Subquery(this=exp.select(selected(alias)).from_(table).where(exp.and_(condition_for(alias), team)))

    def person_uuid_text(self, reference: exp.Expression) -> exp.Expression:
        """A person reference (the person's row id) as its UUID text."""
        return self._person_lookup(lambda alias: self.uuid_text(_db_column(Person, "uuid", alias)),
                                   lambda alias: exp.EQ(this=_db_column(Person, "id", alias), expression=reference))

    def person_by_uuid(self, text: Any) -> exp.Expression:
        """The row id of the team's person with that UUID (NULL when there is none)."""
        try:
            value = uuid.UUID(str(text))
        except ValueError:
            return exp.null()
        param = self.params.add(self.engine.uuid_value(value))
        return self._person_lookup(lambda alias: _db_column(Person, "id", alias),
                                   lambda alias: exp.EQ(this=_db_column(Person, "uuid", alias), expression=param))

    def quantile(self, level: float, number: exp.Expression) -> exp.Expression:
        return self.engine.quantile(level, number)

    def json_property(self, column: exp.Expression, keys: list[str]) -> Value:
        """`properties.a` or, nested, `properties.a.b`: a value inside a JSON object, as text (and as a number)."""
        for key in keys[:-1]:
            column = self._json_object(column, key)
        return Value(self.engine.json_text(column, keys[-1], self.params), STRING,
                     number=self.engine.json_number(column.copy(), keys[-1], self.params))

    def _json_object(self, column: exp.Expression, key: str) -> exp.Expression:
        """The JSON object under `key`, else NULL (so that a deeper key of a non-object reads as NULL)."""
        return self.engine.json_object(column, key, self.params)

    def text_as_json(self, sql: exp.Expression) -> exp.Expression:
        return self.engine.text_as_json(sql)


def compile_query(source: Any, team, engine: Engine, *, now: datetime, tz: ZoneInfo, filters=None, variables=None,
                  values=None, default_limit: int = DEFAULT_LIMIT, limit: Optional[int] = None,
                  offset: Optional[int] = None) -> SandboxQuery:
    """HogQL text (or an already parsed SELECT) -> a safe query for `engine`, scoped to `team`."""
    if isinstance(source, str) and len(source) > MAX_QUERY_LENGTH:
        raise SandboxError(f"The query is too long (more than {MAX_QUERY_LENGTH} characters).")
    compiler = QueryCompiler(engine, team, now=now, tz=tz, filters=filters, variables=variables, values=values)
    try:
        node = parse_select(source) if isinstance(source, str) else source
        return compiler.compile(node, default_limit=default_limit, limit=limit, offset=offset)
    except RecursionError:
        raise SandboxError("The query is nested too deeply.") from None


# --- Results ------------------------------------------------------------------------------------


def clickhouse_type(kind: str, tz: ZoneInfo) -> str:
    """The ClickHouse type name PostHog reports for a column of this type."""
    return {
        STRING: "String", NUMBER: "Float64", INTEGER: "Int64", BOOL: "Bool", DATETIME: f"DateTime64(6, '{tz}')",
        DATE: "Date", JSON: "String", PERSON: "UUID",
    }.get(kind, "Nullable(Nothing)")


def format_rows(rows: list[tuple], kinds: list[str], team, tz: ZoneInfo) -> list[list]:
    """Database values -> PostHog's JSON values, the same whatever the engine returned."""
    persons: dict[int, str] = {}
    person_columns = [index for index, kind in enumerate(kinds) if kind == PERSON]
    if person_columns:
        ids = {row[index] for row in rows for index in person_columns if row[index] is not None}
        if ids:
            persons = {pk: str(value) for pk, value in
                       Person.objects.filter(team_id=team.id, id__in=ids).values_list("id", "uuid")}
    return [[_format(value, kind, tz, persons) for value, kind in zip(row, kinds)] for row in rows]


def _utc_text(text: str) -> Optional[datetime]:
    """A timestamp an engine returned as text (naive UTC 'YYYY-MM-DD HH:MM:SS')."""
    try:
        return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _format(value: Any, kind: str, tz: ZoneInfo, persons: dict) -> Any:
    if value is None:
        return None
    if kind == DATETIME:
        moment = value if isinstance(value, datetime) else _utc_text(value) if isinstance(value, str) else None
        if moment is None:
            return str(value)
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(tz)
        text = moment.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if kind == DATE:
        return value.isoformat() if isinstance(value, (date, datetime)) else str(value)[:10]
    if kind == PERSON:
        return persons.get(value)
    if kind == BOOL:
        return bool(value)
    if kind == INTEGER:
        return int(value) if isinstance(value, (int, float, Decimal)) else value
    if kind == NUMBER:
        return float(value) if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) else value
    if kind == JSON:
        parsed = json.loads(value) if isinstance(value, str) else value
        return json.dumps(parsed, sort_keys=True)
    if kind == STRING:
        return value if isinstance(value, str) else str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
