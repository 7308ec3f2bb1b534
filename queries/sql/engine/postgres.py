"""PostgreSQL: native time zones, JSONB, percentiles and regexes (under `statement_timeout`)."""
import re
from datetime import timezone

import sqlglot
from django.db import transaction
from sqlglot import exp

from .base import MICROSECONDS, Engine, case, paren
from .base import cast as _cast, function as _fn, string as _string

_PARTS = {"year": "YEAR", "month": "MONTH", "day": "DAY", "hour": "HOUR", "minute": "MINUTE", "second": "SECOND",
          "dayofweek": "ISODOW"}
# ClickHouse replacement strings name the whole match \0; PostgreSQL names it \&.
_WHOLE_MATCH = re.compile(r"\\0")


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

    # --- JSON -----------------------------------------------------------------------------------

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

    def json_object(self, column, key, params):
        return exp.JSONExtract(this=column, expression=params.add(key))

    def text_as_json(self, value):
        return _cast(value, "jsonb")

    # --- Text, numbers -----------------------------------------------------------------------------

    def text_to_timestamp(self, value, params):
        pattern = params.add(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$")
        return case([(self.regex(value, pattern), exp.Cast(this=value, to=exp.DataType.build("timestamptz")))])

    def binary_order(self, value):
        return exp.Collate(this=value, expression=exp.Identifier(this="C", quoted=True))

    def distinct_texts_json(self, value):
        present = exp.Where(this=exp.Not(this=exp.Is(this=value.copy(), expression=exp.null())))
        aggregated = exp.Filter(this=exp.JSONArrayAgg(this=exp.Distinct(expressions=[value])), expression=present)
        empty = exp.Cast(this=exp.Literal.string("[]"), to=exp.DataType.build("json"))
        return exp.Cast(this=exp.Coalesce(this=aggregated, expressions=[empty]), to=exp.DataType.build("text"))

    def regex_any_group(self, value, extract, pattern, params):
        # regexp_matches with 'g' yields each non-overlapping match's groups, as extractAll does.
        tree = sqlglot.parse_one("EXISTS (SELECT 1 FROM regexp_matches(v, x, 'g') AS m(g) WHERE m.g[1] ~ y)", read="postgres")
        parts = {"v": value, "x": params.add(extract), "y": pattern}
        return paren(tree.transform(lambda node: parts[node.name].copy() if isinstance(node, exp.Column) and not node.table and node.name in parts else node))

    def regex_replace(self, value, pattern, replacement, params):
        template = _WHOLE_MATCH.sub(r"\\&", replacement)
        return _fn("regexp_replace", value, params.add(pattern), params.add(template), _string("g"))

    def natural_nulls_first(self, descending):
        return descending  # NULLs are the largest values

    def number_text(self, value):
        return _cast(_cast(value, "double"), "text")

    def modulo(self, this, divisor, *, integer):
        if not integer:
            this, divisor = _cast(this, "decimal"), _cast(divisor, "decimal")
        return exp.Mod(this=this, expression=divisor)

    def truncate_to_integer(self, value):
        return _cast(_fn("TRUNC", _cast(value, "double")), "bigint")

    def round(self, value, digits):
        # round(numeric) rounds halves away from zero; round(double) to even.
        return _cast(exp.Round(this=_cast(value, "decimal"), decimals=digits), "double")

    def quantile(self, level, value):
        return exp.WithinGroup(this=exp.PercentileCont(this=exp.Literal.number(level)),
                               expression=exp.Order(expressions=[exp.Ordered(this=value)]))

    # --- Time: local times are `timestamp without time zone` --------------------------------------

    def epoch_microseconds(self, instant):
        epoch = exp.Extract(this=exp.var("EPOCH"), expression=instant)
        return _cast(exp.Mul(this=epoch, expression=exp.Literal.number(MICROSECONDS)), "bigint")

    def epoch_seconds(self, instant):
        return _cast(exp.Extract(this=exp.var("EPOCH"), expression=instant), "double")

    def from_epoch_seconds(self, seconds):
        return _fn("TO_TIMESTAMP", seconds)

    def to_local_time(self, instant, tz, params):
        return exp.AtTimeZone(this=paren(instant), zone=params.add(str(tz)))

    def from_local_time(self, local, tz, params):
        return exp.AtTimeZone(this=paren(local), zone=params.add(str(tz)))

    def truncate_local_time(self, unit, local, week_start):
        if unit == "week" and week_start == 0:  # DATE_TRUNC weeks start on Monday
            shifted = exp.Add(this=local, expression=exp.Interval(this=_string("1 day")))
            return exp.Sub(this=_fn("DATE_TRUNC", _string("week"), shifted), expression=exp.Interval(this=_string("1 day")))
        return _fn("DATE_TRUNC", _string(unit), local)

    def local_date(self, local):
        return _cast(local, "date")

    def date_local_time(self, value):
        return _cast(value, "timestamp")

    def date_literal(self, value, params):
        return _cast(params.add(value.isoformat()), "date")

    def local_time_part(self, unit, local):
        extracted = exp.Extract(this=exp.var(_PARTS[unit]), expression=local)
        return _cast(_fn("FLOOR", extracted) if unit == "second" else extracted, "bigint")

    def date_part(self, unit, value):
        return _cast(exp.Extract(this=exp.var(_PARTS.get(unit, "ISODOW")), expression=value), "bigint")

    def local_epoch_seconds(self, local):
        return _cast(_fn("FLOOR", exp.Extract(this=exp.var("EPOCH"), expression=local)), "bigint")

    def floor_divide(self, value, divisor):
        return _fn("FLOOR", exp.Div(this=_cast(value, "double"), expression=exp.Literal.number(divisor)))

    def shift_time(self, value, amount, unit, *, is_date, tz, params):
        step = exp.Mul(this=amount, expression=exp.Interval(
            this=_string(f"{3 if unit == 'quarter' else 1} {'month' if unit == 'quarter' else unit}")))
        if is_date:
            return _cast(exp.Add(this=value, expression=step), "date")
        if unit in ("second", "minute", "hour"):
            return exp.Add(this=value, expression=step)
        return self.from_local_time(exp.Add(this=self.to_local_time(value, tz, params), expression=step), tz, params)

    def local_time_text(self, local):
        return _fn("TO_CHAR", local, _string("YYYY-MM-DD HH24:MI:SS"))

    # --- Execution ------------------------------------------------------------------------------

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

    def execute_write(self, tree, params, *, timeout=None):
        sql, values = self.render(tree, params)
        with transaction.atomic(using=self.connection.alias):
            with self.connection.cursor() as cursor:
                if timeout:
                    cursor.execute(f"SET LOCAL statement_timeout = {int(timeout * 1000)}")
                cursor.execute(sql, values)
                return cursor.rowcount

    def backend_id(self):
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]

    def cancel_backend(self, backend_id):
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_cancel_backend(%s)", [backend_id])
