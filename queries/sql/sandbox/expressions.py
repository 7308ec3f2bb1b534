"""The expression compiler: one clause of one SELECT, compiled node by node into typed SQL."""
import re
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Optional

from sqlglot import exp

from ...dates import parse_absolute, shift_date, shift_datetime
from ..engine import case, is_not_false, is_true, paren
from ..hogql import BOOL, DATETIME, NUMBER, STRING, UNKNOWN
from ..limits import shorten
from ..regex import regex_problem
from .functions import FunctionCompiler
from .native import array_of
from .parsing import HogQLDialect, InCohort, _describe
from .tables import _quoted
from .time_sql import INTERVAL_UNITS
from .values import DATE, INTEGER, INTERVAL, JSON, NUMERIC, PERSON, SandboxError, Value, _cast, _string

if TYPE_CHECKING:
    from .statements import QueryCompiler, Scope

COMPARISONS = {exp.EQ: "=", exp.NEQ: "!=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}
ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)
CAST_TYPES = {
    "TEXT": "tostring", "VARCHAR": "tostring", "CHAR": "tostring", "NCHAR": "tostring", "NVARCHAR": "tostring",
    "FIXEDSTRING": "tostring", "BIGINT": "toint", "INT": "toint", "SMALLINT": "toint", "TINYINT": "toint",
    "UBIGINT": "toint", "UINT": "toint", "USMALLINT": "toint", "UTINYINT": "toint", "INT128": "toint", "INT256": "toint",
    "UINT128": "toint", "UINT256": "toint", "DOUBLE": "tofloat", "FLOAT": "tofloat", "DECIMAL": "tofloat",
    "DATE": "todate", "DATE32": "todate", "DATETIME": "todatetime", "DATETIME64": "todatetime", "TIMESTAMP": "todatetime",
}
MAX_INTEGER = 2**63 - 1


class ExprCompiler(FunctionCompiler):
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
        if len(chain) == 1 and self.lambda_variable(chain[0]) is not None:
            return self.lambda_variable(chain[0])
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

    def _in_cohort(self, node: InCohort, truth) -> Value:
        from ..cohorts import cohort_by_reference, members_select

        left = self.compile(node.this)
        if left.type != PERSON:
            raise SandboxError(f"{_describe(node)}: IN COHORT needs a person id (person_id, person.id or persons.id).")
        reference = node.expression
        if not isinstance(reference, exp.Literal):
            raise SandboxError(f"{_describe(node)}: IN COHORT takes a cohort id or a cohort name in quotes.")
        cohort = cohort_by_reference(int(reference.this) if not reference.is_string and reference.this.isdigit() else reference.this,
                                     self.context.team, by_name=reference.is_string)
        members = members_select(cohort, self.query.params)
        if members is None:
            return self.const(False)
        condition = exp.In(this=left.sql, query=exp.Subquery(this=members))
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

    def _identifier(self, node: exp.Identifier, truth) -> Value:
        """A bare name: a lambda's argument (`x` in `x -> x + 1`)."""
        value = self.lambda_variable(node.name)
        if value is None:
            raise SandboxError(f"Unknown name {_describe(node)}.")
        return value

    def _array(self, node: exp.Array, truth) -> Value:
        """`[a, b, ...]`: an array of text or numbers (engines that run ClickHouse functions only)."""
        if not self.engine.runs_clickhouse_functions:
            raise SandboxError(f"{_describe(node)}: arrays are supported on the ClickHouse engine only.")
        values = [self.compile(item) for item in node.expressions]
        kind = self.common_type(values) if values else STRING
        if kind == UNKNOWN:
            kind = STRING
        if kind not in (STRING, NUMBER, INTEGER, BOOL):
            raise SandboxError(f"{_describe(node)}: arrays hold text or numbers.")
        return Value(exp.Array(expressions=[self.convert(value, kind) for value in values]), array_of(kind),
                     aggregate=any(value.aggregate for value in values))

    def _window(self, node, truth) -> Value:
        raise SandboxError("Window functions (OVER ...) are not supported in SQL insights.")

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
    InCohort: ExprCompiler._in_cohort,
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
    exp.Identifier: ExprCompiler._identifier,
    exp.Array: ExprCompiler._array,
    exp.Anonymous: ExprCompiler._call,
    exp.AnonymousAggFunc: ExprCompiler._call,
    exp.CombinedAggFunc: ExprCompiler._call,
    exp.ParameterizedAgg: ExprCompiler._call,
}
