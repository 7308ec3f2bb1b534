"""The function table of SQL insights: aggregates and the HogQL functions mapped to SQL (a mixin of the expression compiler)."""
from datetime import datetime, timedelta
from typing import Optional

from sqlglot import exp

from ...dates import start_of_interval
from ..engine import case
from ..hogql import BOOL, DATETIME, FUNCTIONS, NUMBER, STRING
from . import native
from .native import element_of
from .parsing import _describe
from .time_sql import DATE_TIME_PARTS, INTERVAL_UNITS, TRUNC_FUNCTIONS, TRUNC_UNITS
from .values import DATE, INTEGER, INTERVAL, JSON, _NO_CONST, NUMERIC, SandboxError, Value, _cast, _string

AGGREGATES = {"count", "countif", "uniq", "uniqexact", "sum", "avg", "min", "max", "any", "sumif", "avgif", "minif", "maxif",
              "median", "quantile"}
INTERVAL_FUNCTIONS = {f"tointerval{unit}": unit for unit in TRUNC_UNITS}
SHIFT_FUNCTIONS = {
    **{f"add{unit}s": (unit, 1) for unit in TRUNC_UNITS},
    **{f"subtract{unit}s": (unit, -1) for unit in TRUNC_UNITS},
}


def _finite(number: exp.Expression) -> exp.Expression:
    """NaN and infinities (log(0), pow overflow, a sample variance of one value) as NULL: JSON has no such numbers."""
    return exp.Anonymous(this="if", expressions=[exp.Anonymous(this="isFinite", expressions=[number]), number.copy(), exp.null()])


class FunctionCompiler:
    """Calls: `_call` dispatches to aggregates and functions. A mixin of ExprCompiler, whose
    conversions (`_text`, `_number`...) and `compile` it uses."""

    def _call(self, node, truth) -> Value:
        lowered = self._display_name(node).lower()
        if isinstance(node, exp.ParameterizedAgg):
            if lowered != "quantile" or len(node.expressions) != 1 or len(node.args.get("params") or []) != 1:
                raise SandboxError(f"{_describe(node)} is not supported; use quantile(level)(expression).")
            return self.aggregate("quantile", node.args["params"], node, level=node.expressions[0])
        if lowered in AGGREGATES:
            return self.aggregate(lowered, node.expressions, node)
        native_value = self._native(lowered, node)
        if native_value is not None:
            return native_value
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

    # --- ClickHouse functions run natively on ClickHouse (see .native) ---

    def _native(self, name: str, node) -> Optional[Value]:
        if not self.engine.runs_clickhouse_functions:
            return None
        if name in native.AGGREGATES:
            return self._native_aggregate(name, node)
        spec = native.FUNCTIONS.get(name)
        if spec is None:
            return None
        function_name, kinds, result = spec
        raw = list(node.expressions)
        if any(isinstance(arg, exp.Distinct) for arg in raw):
            raise SandboxError(f"DISTINCT is only allowed in count() and uniq(): {_describe(node)}")
        values = [None if isinstance(arg, exp.Lambda) else self.compile(arg) for arg in raw]
        arrays = [value for value in values if value is not None and element_of(value.type)]
        if name in native.ARRAY_ONLY and not arrays:
            return None  # the function of text every engine has
        if kinds == ("*n",):
            if not raw:
                raise SandboxError(f"Function {name} takes at least one argument.")
            kinds = ("n",) * len(raw)
        self._arity(name, raw, len(kinds))
        element = element_of(arrays[0].type) if arrays else None
        produces_array = result.startswith("@") or element_of(result) is not None
        sql, lambda_kind = [], None
        for kind, arg, value in zip(kinds, raw, values):
            if kind == "f":
                if not isinstance(arg, exp.Lambda) or len(arg.expressions) != 1 or element is None:
                    raise SandboxError(f"{_describe(node)}: {function_name} takes a one-argument lambda (x -> ...) and an array.")
                lambda_sql, lambda_kind = self._lambda(arg, element, condition=name != "arraymap")
                sql.append(lambda_sql)
                continue
            if value is None:
                raise SandboxError(f"{_describe(node)}: a lambda is only allowed as the first argument of array functions.")
            if kind == "a":
                if element_of(value.type) is None:
                    raise SandboxError(f"{_describe(node)}: {function_name} needs an array, got a {value.type}.")
                sql.append(value.sql)
            elif kind == "e":
                sql.append(self.convert(value, element))
            elif kind == "s":
                text = self._text(value)
                # Arrays cannot be NULL in ClickHouse: NULL text splits as ''.
                sql.append(exp.Coalesce(this=text, expressions=[_string("")]) if produces_array else text)
            elif kind == "n":
                sql.append(self._number(value))
            else:  # "i"
                sql.append(self.engine.truncate_to_integer(self._number(value)))
        kind = {"@": arrays[0].type if arrays else None, "@e": element,
                "@f": native.array_of(lambda_kind) if lambda_kind else None}.get(result, result)
        call = exp.Anonymous(this=function_name, expressions=sql)
        return Value(_finite(call) if kind == NUMBER else call, kind,
                     aggregate=any(value.aggregate for value in values if value is not None))

    def _lambda(self, node: exp.Lambda, element: str, *, condition: bool) -> tuple[exp.Expression, str]:
        """`x -> body` over an array's elements: `x` is bound to a generated name inside the body."""
        variables = self.__dict__.setdefault("lambda_variables", {})
        name = node.expressions[0].name
        generated = f"lv{len(variables)}"
        shadowed = variables.get(name)
        variables[name] = Value(exp.to_identifier(generated), element)
        allow_aggregates, self.allow_aggregates = self.allow_aggregates, False
        try:
            body = self.compile(node.this)
        finally:
            self.allow_aggregates = allow_aggregates
            if shadowed is None:
                del variables[name]
            else:
                variables[name] = shadowed
        if condition:
            sql, kind = self._condition(body), BOOL
        else:
            if body.type not in (STRING, NUMBER, INTEGER, BOOL):
                raise SandboxError(f"{_describe(node)}: a lambda must return text, a number or a boolean, not a {body.type}.")
            sql, kind = body.sql, body.type
        return exp.Lambda(this=sql, expressions=[exp.to_identifier(generated)]), kind

    def lambda_variable(self, name: str) -> Optional[Value]:
        return self.__dict__.get("lambda_variables", {}).get(name)

    def _native_aggregate(self, name: str, node) -> Value:
        function_name, count = native.AGGREGATES[name]
        if not self.allow_aggregates:
            raise SandboxError(f"Aggregate functions such as {name}() are not allowed in {self.clause}.")
        if self.in_aggregate:
            raise SandboxError(f"Aggregate functions cannot be nested: {_describe(node)}")
        if len(node.expressions) != count or any(isinstance(arg, (exp.Distinct, exp.Lambda)) for arg in node.expressions):
            raise SandboxError(f"Wrong number of arguments for {name}(): {_describe(node)}")
        self.in_aggregate = True
        try:
            args = [_cast(self._number(self.compile(arg)), "double") for arg in node.expressions]
        finally:
            self.in_aggregate = False
        return Value(_finite(exp.AnonymousAggFunc(this=function_name, expressions=args)), NUMBER, aggregate=True)

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
