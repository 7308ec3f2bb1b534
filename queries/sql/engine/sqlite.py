"""SQLite: the embedded default. Django stores datetimes as naive UTC text and UUIDs as 32 hex
digits; time zones, percentiles and regexes come from functions registered on the connection."""
import sqlite3
import time
from datetime import date, datetime, timezone
from typing import Any, Optional
from zoneinfo import ZoneInfo

from sqlglot import exp

from ...dates import shift_date, shift_datetime
from ..regex import compile_regex, regex_replace, regex_search
from .base import MICROSECONDS, Engine, case, paren
from .base import cast as _cast, function as _fn, string as _string

_TRUNCATE_FORMATS = {
    "second": "%Y-%m-%d %H:%M:%S", "minute": "%Y-%m-%d %H:%M:00", "hour": "%Y-%m-%d %H:00:00", "day": "%Y-%m-%d 00:00:00",
}
_PART_FORMATS = {"year": "%Y", "month": "%m", "day": "%d", "hour": "%H", "minute": "%M", "second": "%S"}


def _like_to_glob(pattern: str) -> str:
    """A LIKE pattern (backslash escapes) as a GLOB pattern: SQLite's only case-sensitive matcher."""
    out, escaped = [], False
    for char in pattern:
        if escaped:
            out.append(f"[{char}]" if char in "*?[" else char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        elif char in "*?[":
            out.append(f"[{char}]")
        else:
            out.append(char)
    return "".join(out)


# --- Functions registered on the connection -------------------------------------------------------

def _parse_instant(text: Optional[str]) -> Optional[datetime]:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(str(text)).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _instant_text(value: datetime) -> str:
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ")


def _to_local(text, tz_name):
    value = _parse_instant(text)
    return None if value is None else value.astimezone(ZoneInfo(tz_name)).replace(tzinfo=None).isoformat(" ")


def _from_local(text, tz_name):
    if text is None:
        return None
    try:
        local = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return _instant_text(local.replace(tzinfo=ZoneInfo(tz_name)))


def _shift(text, amount, unit, tz_name, is_date):
    if text is None or amount is None:
        return None
    try:
        if is_date:
            return shift_date(date.fromisoformat(str(text)[:10]), int(amount), unit).isoformat()
        value = _parse_instant(text)
        return None if value is None else _instant_text(shift_datetime(value, int(amount), unit, ZoneInfo(tz_name)))
    except (ValueError, OverflowError):
        return None


class _Quantile:
    """quantile(p)(x): linear interpolation, as PostgreSQL's percentile_cont."""

    def __init__(self):
        self.values: list[float] = []
        self.level: Optional[float] = None

    def step(self, level, value):
        self.level = level
        if value is not None:
            try:
                self.values.append(float(value))
            except (TypeError, ValueError):
                pass

    def finalize(self):
        if not self.values or self.level is None:
            return None
        self.values.sort()
        position = self.level * (len(self.values) - 1)
        lower = int(position)
        upper = min(lower + 1, len(self.values) - 1)
        return self.values[lower] + (self.values[upper] - self.values[lower]) * (position - lower)


def _regexp(pattern, value):
    return regex_search(pattern, value)


def _regex_any_group(value, extract, pattern):
    if value is None or extract is None or pattern is None:
        return None
    matcher = compile_regex(pattern)
    return any(matcher.search(group or "") is not None for group in compile_regex(extract).findall(str(value)))


class SQLiteEngine(Engine):
    vendor = "sqlite"
    dialect = "sqlite"

    def adapt(self, value: Any) -> Any:
        # Django stores datetimes on SQLite as naive UTC text; compare in the same format.
        if isinstance(value, datetime):
            return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ")
        return value

    def prepare(self) -> None:
        # REGEXP replaces Django's (Python's backtracking `re`) with RE2: linear time, and the
        # progress handler's timeout cannot interrupt a Python function.
        self.connection.ensure_connection()
        raw = self.connection.connection
        raw.create_function("REGEXP", 2, _regexp, deterministic=True)
        raw.create_function("hogql_regexp_replace", 3, regex_replace, deterministic=True)
        raw.create_function("hogql_regex_any_group", 3, _regex_any_group, deterministic=True)
        raw.create_function("hogql_to_local", 2, _to_local, deterministic=True)
        raw.create_function("hogql_from_local", 2, _from_local, deterministic=True)
        raw.create_function("hogql_shift", 5, _shift, deterministic=True)
        raw.create_aggregate("hogql_quantile", 2, _Quantile)

    # --- Actors ---------------------------------------------------------------------------------

    def actor_key(self, person, distinct_id):
        # One column: SQLite keeps the integer person id and the text distinct id apart.
        return [exp.Coalesce(this=person, expressions=[distinct_id])]

    def actor_columns(self, person, distinct_id):
        return self.actor_key(person, distinct_id)

    def count_actors(self, person, distinct_id):
        return exp.Count(this=exp.Distinct(expressions=[exp.Coalesce(this=person, expressions=[distinct_id])]))

    # --- JSON -----------------------------------------------------------------------------------

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

    def json_object(self, column, key, params):
        path = params.add(self._path(key))
        is_object = exp.EQ(this=_fn("json_type", column, path), expression=_string("object"))
        return case([(is_object, _fn("json_extract", column.copy(), path.copy()))])

    def stored_text(self, value):
        return value  # dates and JSON are stored as text

    # --- Text, numbers, UUIDs ---------------------------------------------------------------------

    def text_to_timestamp(self, value, params):
        # datetime() normalises ISO text (with 'T', 'Z' or an offset) to UTC 'YYYY-MM-DD HH:MM:SS', NULL if
        # invalid; the GLOB keeps bare numbers from being read as Julian day numbers.
        iso = exp.Glob(this=value, expression=params.add("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"))
        return case([(iso, exp.Anonymous(this="datetime", expressions=[value]))])

    def like(self, value, pattern, literal, params):
        # SQLite's LIKE ignores ASCII case; GLOB is case-sensitive like LIKE elsewhere.
        if literal is not None:
            return exp.Glob(this=value, expression=params.add(_like_to_glob(literal)))
        return exp.Like(this=value, expression=exp.Escape(this=pattern, expression=_string("\\")))

    def distinct_texts_json(self, value):
        present = exp.Where(this=exp.Not(this=exp.Is(this=value.copy(), expression=exp.null())))
        return exp.Filter(this=exp.JSONArrayAgg(this=exp.Distinct(expressions=[value])), expression=present)

    def regex_any_group(self, value, extract, pattern, params):
        return _fn("hogql_regex_any_group", value, params.add(extract), pattern)

    def regex_replace(self, value, pattern, replacement, params):
        # RE2's Python templates name the whole match \g<0>.
        template = replacement.replace("\\0", "\\g<0>")
        return _fn("hogql_regexp_replace", value, params.add(pattern), params.add(template))

    def natural_nulls_first(self, descending):
        return not descending  # NULLs are the smallest values

    def number_text(self, value):
        integral = exp.EQ(this=value, expression=_cast(value.copy(), "integer"))
        return case([(integral, _cast(_cast(value.copy(), "integer"), "text"))], _cast(value.copy(), "text"))

    def uuid_text(self, column):
        parts = [exp.Substring(this=column.copy(), start=exp.Literal.number(start), length=exp.Literal.number(length))
                 for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))]
        text = parts[0]
        for part in parts[1:]:
            text = exp.DPipe(this=exp.DPipe(this=text, expression=_string("-")), expression=part)
        return exp.Lower(this=text)

    def uuid_value(self, value):
        return value.hex

    def quantile(self, level, value):
        return _fn("hogql_quantile", exp.Literal.number(level), value)

    # --- Time: local times are ISO text ------------------------------------------------------------

    def epoch_microseconds(self, instant):
        # Stored as UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
        bigint = exp.DataType.build("bigint")
        if sqlite3.sqlite_version_info >= (3, 38):
            seconds = _fn("UNIXEPOCH", instant)
        else:
            seconds = exp.Cast(this=_fn("STRFTIME", _string("%s"), instant), to=bigint)
        fraction = _fn("SUBSTR", instant.copy(), exp.Literal.number(21), exp.Literal.number(6))
        return exp.Add(this=exp.Mul(this=seconds, expression=exp.Literal.number(MICROSECONDS)),
                       expression=exp.Cast(this=fraction, to=bigint))

    def epoch_seconds(self, instant):
        return exp.Mul(this=paren(exp.Sub(this=_fn("julianday", instant), expression=exp.Literal.number(2440587.5))),
                       expression=exp.Literal.number(86400.0))

    def from_epoch_seconds(self, seconds):
        return _fn("datetime", seconds, _string("unixepoch"))

    @staticmethod
    def _is_utc(tz: ZoneInfo) -> bool:
        return str(tz) in ("UTC", "Etc/UTC")

    def to_local_time(self, instant, tz, params):
        return instant if self._is_utc(tz) else _fn("hogql_to_local", instant, params.add(str(tz)))

    def from_local_time(self, local, tz, params):
        return local if self._is_utc(tz) else _fn("hogql_from_local", local, params.add(str(tz)))

    def truncate_local_time(self, unit, local, week_start):
        if unit in _TRUNCATE_FORMATS:
            return _fn("strftime", _string(_TRUNCATE_FORMATS[unit]), local)
        if unit == "week":
            # The last <week start day> on or before the date: step back 6 days, then forward to that weekday.
            day = _fn("date", local, _string("-6 days"), _string(f"weekday {1 if week_start == 1 else 0}"))
            return exp.DPipe(this=day, expression=_string(" 00:00:00"))
        if unit == "month":
            return _fn("datetime", local, _string("start of month"))
        if unit == "year":
            return _fn("datetime", local, _string("start of year"))
        # quarter
        months_back = exp.Mod(this=paren(exp.Sub(this=_cast(_fn("strftime", _string("%m"), local), "integer"),
                                                 expression=exp.Literal.number(1))), expression=exp.Literal.number(3))
        modifier = exp.DPipe(this=_string("-"), expression=exp.DPipe(this=_cast(months_back, "text"), expression=_string(" months")))
        return _fn("datetime", local, _string("start of month"), modifier)

    def local_date(self, local):
        return _fn("date", local)

    def date_local_time(self, value):
        return exp.DPipe(this=value, expression=_string(" 00:00:00"))

    def date_literal(self, value, params):
        return params.add(value.isoformat())

    def local_time_part(self, unit, local):
        if unit == "dayofweek":  # strftime's %w: Sunday = 0
            weekday = _cast(_fn("strftime", _string("%w"), local), "integer")
            return exp.Add(this=paren(exp.Mod(this=paren(exp.Add(this=weekday, expression=exp.Literal.number(6))),
                                              expression=exp.Literal.number(7))), expression=exp.Literal.number(1))
        return _cast(_fn("strftime", _string(_PART_FORMATS[unit]), local), "integer")

    def date_part(self, unit, value):
        return self.local_time_part(unit, value)

    def local_epoch_seconds(self, local):
        return _cast(_fn("strftime", _string("%s"), local), "integer")

    def floor_divide(self, value, divisor):
        # Integer division truncates toward zero; shift negatives to floor.
        shifted = exp.Sub(this=value, expression=case(
            [(exp.LT(this=value.copy(), expression=exp.Literal.number(0)), exp.Literal.number(divisor - 1))], exp.Literal.number(0)))
        return exp.Div(this=paren(shifted), expression=exp.Literal.number(divisor), typed=True)

    def shift_time(self, value, amount, unit, *, is_date, tz, params):
        return _fn("hogql_shift", value, amount, _string(unit), params.add(str(tz)), exp.Literal.number(1 if is_date else 0))

    def local_time_text(self, local):
        return _fn("strftime", _string("%Y-%m-%d %H:%M:%S"), local)

    # --- Execution ------------------------------------------------------------------------------

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
