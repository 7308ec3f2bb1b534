"""Time: timezone-aware date functions, the same on every engine (built from the engine's time methods)."""
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlglot import exp

from ..engine import Engine, Params, paren
from .values import _cast, _idiv

TRUNC_UNITS = ("second", "minute", "hour", "day", "week", "month", "quarter", "year")
INTERVAL_UNITS = {unit: unit for unit in TRUNC_UNITS} | {f"{unit}s": unit for unit in TRUNC_UNITS}

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
