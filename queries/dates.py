"""Date ranges, intervals, buckets and labels, resolved in the team's timezone (PostHog's rules).

Everything here is pure Python: the runners turn the buckets into SQL (UTC boundaries), so the
database needs no timezone support and DST is handled by `zoneinfo`.
"""
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import cached_property
from typing import Callable, Optional
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from rest_framework.exceptions import ValidationError

DEFAULT_DATE_FROM_DAYS = 7
MAX_BUCKETS = 10_000
ONE_MICROSECOND = timedelta(microseconds=1)

_RELATIVE = re.compile(r"-?(?P<number>[0-9]+)?(?P<kind>[a-zA-Z])(?P<position>Start|End)?")
_LOOSE_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")


def parse_absolute(value: str, tz: ZoneInfo) -> Optional[datetime]:
    """ISO-8601 date or datetime (optionally with an offset; naive means team time), or None."""
    text = value.strip()
    match = _LOOSE_DATE.match(text)
    try:
        if match:
            parsed = datetime(int(match[1]), int(match[2]), int(match[3]))
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed.astimezone(tz)


def relative_delta(value: str) -> Optional[tuple[relativedelta, bool]]:
    """The delta of a relative date string (`-7d`, `-1mStart`, `yStart`...) and whether it is in hours."""
    match = _RELATIVE.search(value)
    if not match:
        return None
    number = int(match["number"]) if match["number"] else None
    kind, position = match["kind"], match["position"]
    fields: dict = {}
    hours = False
    if kind in "dD":
        if number:
            fields["days"] = number
        if position == "Start":
            fields.update(hour=0, minute=0, second=0, microsecond=0)
        elif position == "End":
            fields.update(hour=23, minute=59, second=59, microsecond=999999)
    elif kind in "hH":
        hours = True
        if number:
            fields["hours"] = number
        if position == "Start":
            fields.update(minute=0, second=0, microsecond=0)
        elif position == "End":
            fields.update(minute=59, second=59, microsecond=999999)
    elif kind in "wW":
        if number:
            fields["weeks"] = number
    elif kind == "m":
        if number:
            fields["months"] = number
        if position == "Start":
            fields["day"] = 1
        elif position == "End":
            fields["day"] = 31
    elif kind in "qQ":
        if number:
            fields["weeks"] = 13 * number
    elif kind in "yY":
        if number:
            fields["years"] = number
        if position == "Start":
            fields.update(month=1, day=1)
        elif position == "End":
            fields.update(month=12, day=31)
    elif kind == "M":
        if number:
            fields["minutes"] = number
    elif kind == "s":
        if number:
            fields["seconds"] = number
    return relativedelta(**fields), hours


def parse_date(value: str, tz: ZoneInfo, now: datetime, *, truncate: bool) -> tuple[datetime, bool, bool]:
    """(datetime in `tz`, is_relative, delta_in_hours). Unparseable strings resolve to now, as in PostHog."""
    absolute = parse_absolute(value, tz)
    if absolute is not None:
        return absolute, False, False
    local_now = now.astimezone(tz)
    parsed = relative_delta(value)
    if parsed is None:
        return local_now, True, False
    delta, hours = parsed
    result = _wall(local_now.replace(tzinfo=None) - delta, tz)
    if truncate:
        result = _wall(result.replace(tzinfo=None, minute=0, second=0, microsecond=0) if hours
                       else result.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0), tz)
    return result, True, hours


def _wall(naive: datetime, tz: ZoneInfo) -> datetime:
    """A local wall-clock time as an aware datetime (first occurrence when ambiguous)."""
    return naive.replace(tzinfo=tz)


def to_utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


def start_of_interval(value: datetime, interval: str, week_start_day: int) -> datetime:
    """Start of the interval containing `value`, in its own (team) timezone."""
    tz = value.tzinfo
    naive = value.replace(tzinfo=None)
    if interval == "second":
        naive = naive.replace(microsecond=0)
    elif interval == "minute":
        naive = naive.replace(second=0, microsecond=0)
    elif interval == "hour":
        naive = naive.replace(minute=0, second=0, microsecond=0)
    else:
        naive = naive.replace(hour=0, minute=0, second=0, microsecond=0)
        if interval == "week":
            # week_start_day: 0 = Sunday (PostHog's default), 1 = Monday
            shift = naive.weekday() if week_start_day == 1 else (naive.weekday() + 1) % 7
            naive -= timedelta(days=shift)
        elif interval == "month":
            naive = naive.replace(day=1)
    return naive.replace(tzinfo=tz)


def add_intervals(value: datetime, interval: str, count: int) -> datetime:
    """Step `count` intervals: sub-day intervals in absolute time, days and longer on the wall clock."""
    if interval in ("second", "minute", "hour"):
        step = timedelta(**{f"{interval}s": count})
        return (to_utc(value) + step).astimezone(value.tzinfo)
    tz = value.tzinfo
    step = relativedelta(**{f"{interval}s": count})
    return (value.replace(tzinfo=None) + step).replace(tzinfo=tz)


def shift_datetime(value: datetime, amount: int, unit: str, tz: ZoneInfo) -> datetime:
    """`value + INTERVAL amount unit`: sub-day units in absolute time, longer ones on the wall clock of `tz`."""
    if unit in ("second", "minute", "hour"):
        return value + timedelta(**{f"{unit}s": amount})
    local = value.astimezone(tz).replace(tzinfo=None)
    delta = relativedelta(months=3 * amount) if unit == "quarter" else relativedelta(**{f"{unit}s": amount})
    return (local + delta).replace(tzinfo=tz).astimezone(timezone.utc)


def shift_date(value: date, amount: int, unit: str) -> date:
    """`value + INTERVAL amount unit` for a date; ValueError for sub-day units."""
    if unit not in ("day", "week", "month", "quarter", "year"):
        raise ValueError(f"Cannot add {unit}s to a Date.")
    delta = relativedelta(months=3 * amount) if unit == "quarter" else relativedelta(**{f"{unit}s": amount})
    return value + delta


@dataclass(frozen=True)
class Bucket:
    start: datetime  # team-local interval start (for labels and `days`)
    lo: datetime  # UTC, inclusive
    hi: datetime  # UTC, exclusive


class QueryDateRange:
    """`dateRange` + interval resolved against `now` in the team timezone (PostHog's QueryDateRange)."""

    def __init__(
        self,
        date_range,
        *,
        tz: ZoneInfo,
        interval: str,
        now: datetime,
        week_start_day: int = 0,
        interval_count: int = 1,
        earliest: Optional[Callable[[], Optional[datetime]]] = None,
    ):
        self.date_range = date_range
        self.tz = tz
        self.interval = interval or "day"
        self.now = now
        self.week_start_day = week_start_day
        self.interval_count = interval_count or 1
        self._earliest = earliest

    @property
    def explicit(self) -> bool:
        return bool(self.date_range and self.date_range.explicitDate)

    @cached_property
    def _date_from_parsed(self) -> tuple[datetime, bool]:
        """(date_from, delta in hours)."""
        raw = self.date_range.date_from if self.date_range else None
        local_now = self.now.astimezone(self.tz)
        if not raw:
            start = local_now.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
            return _wall(start - timedelta(days=DEFAULT_DATE_FROM_DAYS), self.tz), False
        if raw == "all":
            earliest = self._earliest() if self._earliest else None
            if earliest is None:
                earliest = start_of_interval(local_now, "day", self.week_start_day)
            return earliest.astimezone(self.tz), False
        truncate = self.interval != "minute" and not self.explicit
        value, _relative, hours = parse_date(raw, self.tz, self.now, truncate=truncate)
        return value, hours

    def date_from(self) -> datetime:
        return self._date_from_parsed[0]

    @cached_property
    def _date_to(self) -> datetime:
        raw = self.date_range.date_to if self.date_range else None
        if raw:
            value, relative, _hours = parse_date(raw, self.tz, self.now, truncate=True)
        else:
            value, relative = self.now.astimezone(self.tz), True
        if self.explicit:
            return value
        naive = value.replace(tzinfo=None)
        if self.interval not in ("hour", "minute", "second"):
            naive = naive.replace(hour=23, minute=59, second=59, microsecond=999999)
        elif relative and self.interval == "hour":
            naive = naive.replace(minute=59, second=59, microsecond=999999)
        elif relative and self.interval == "minute":
            naive = naive.replace(second=59, microsecond=999999)
        return _wall(naive, self.tz)

    def date_to(self) -> datetime:
        return self._date_to

    def filter_from(self) -> datetime:
        """Lower bound of the event time filter (PostHog's `date_from_with_adjusted_start_of_interval`)."""
        date_from = self.date_from()
        if self.explicit or self.interval in ("second", "minute", "hour"):
            return date_from
        if self.interval == "day" and self._date_from_parsed[1]:
            return date_from
        if self.interval == "week":
            return start_of_interval(date_from, "day", self.week_start_day)
        return start_of_interval(date_from, self.interval, self.week_start_day)

    def filter_to(self) -> datetime:
        return self.date_to()

    @cached_property
    def buckets(self) -> list[Bucket]:
        starts: list[datetime] = []
        current = start_of_interval(self.date_from(), self.interval, self.week_start_day)
        end = self.date_to()
        while current <= end:
            starts.append(current)
            if len(starts) > MAX_BUCKETS:
                raise ValidationError(
                    f"The date range has more than {MAX_BUCKETS} {self.interval} intervals. "
                    "Use a shorter date range or a longer interval."
                )
            current = add_intervals(current, self.interval, self.interval_count)
        lower, upper = to_utc(self.filter_from()), to_utc(self.filter_to()) + ONE_MICROSECOND
        buckets = []
        for index, start in enumerate(starts):
            nxt = to_utc(starts[index + 1]) if index + 1 < len(starts) else upper
            buckets.append(Bucket(start=start, lo=max(to_utc(start), lower), hi=min(nxt, upper)))
        return buckets

    def bucket_starts(self) -> list[datetime]:
        return [bucket.start for bucket in self.buckets]

    # --- Presentation ---

    def day_string(self, value: datetime) -> str:
        if self.interval in ("hour", "minute", "second"):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return value.strftime("%Y-%m-%d")

    def label(self, value: datetime) -> str:
        if self.interval in ("hour", "minute", "second"):
            return f"{value.day}-{value.strftime('%b %H:%M')}"
        if self.interval == "month":
            return value.strftime("%b %Y")
        if self.interval == "week":
            return self._week_label(value.date())
        return f"{value.day}-{value.strftime('%b-%Y')}"

    def _week_label(self, start: date) -> str:
        end = start + timedelta(days=6 * self.interval_count + (self.interval_count - 1))
        start = max(start, self.date_from().date())
        end = max(min(end, self.date_to().date()), start)
        if start == end:
            return f"{start.day}-{start.strftime('%b-%Y')}"
        if start.year != end.year:
            return f"{start.day}-{start.strftime('%b-%Y')} – {end.day}-{end.strftime('%b-%Y')}"
        if start.month != end.month:
            return f"{start.day}-{start.strftime('%b')} – {end.day}-{end.strftime('%b')}"
        return f"{start.day}–{end.day} {end.strftime('%b')}"

    def resolved(self) -> dict:
        return {"date_from": self.date_from(), "date_to": self.date_to()}


class ShiftedDateRange(QueryDateRange):
    """A fixed (date_from, date_to) pair with the interval rules of the range it derives from."""

    def __init__(self, base: QueryDateRange, date_from: datetime, date_to: datetime):
        super().__init__(
            base.date_range, tz=base.tz, interval=base.interval, now=base.now, week_start_day=base.week_start_day,
            interval_count=base.interval_count,
        )
        self._from, self._to = date_from, date_to
        self._base = base

    @cached_property
    def _date_from_parsed(self) -> tuple[datetime, bool]:
        return self._from, self._base._date_from_parsed[1]

    @cached_property
    def _date_to(self) -> datetime:
        return self._to


def previous_period(current: QueryDateRange) -> QueryDateRange:
    """The period of the same length immediately before `current`."""
    date_from, date_to = current.date_from(), current.date_to()
    end_exclusive = date_to + ONE_MICROSECOND if date_to.microsecond == 999999 else date_to
    length = end_exclusive - date_from
    return ShiftedDateRange(current, (date_from - length).astimezone(current.tz), date_from - ONE_MICROSECOND)


def compare_to_period(current: QueryDateRange, compare_to: str) -> QueryDateRange:
    """`current` shifted back by a relative amount such as `-1w`, `-14d` or `-1y`."""
    parsed = relative_delta(compare_to)
    if parsed is None or not re.fullmatch(r"-?[0-9]*[a-zA-Z]", compare_to.strip()):
        raise ValidationError(f"Invalid compare_to value: {compare_to!r}. Use a relative date such as -1w or -1m.")
    delta = parsed[0]
    tz = current.tz

    def shift(value: datetime) -> datetime:
        return _wall(value.replace(tzinfo=None) - delta, tz)

    return ShiftedDateRange(current, shift(current.date_from()), shift(current.date_to()))
