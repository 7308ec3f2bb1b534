"""Behavioral leaves of a dynamic cohort in SQL: each leaf is `person IN (SELECT person_id FROM
events ...)`, the subquery reading the person's matching events (an event name or an action, AND
the leaf's `event_filters`) relative to the calculation's "now", as PostHog's cohort query does:

* performed_event: a matching event in (now - time_value, now) (or since explicit_datetime);
* performed_event_multiple: the count of those compared with `operator`/`operator_value`;
* performed_event_first_time: the first matching event ever falls in the window;
* performed_event_sequence: an event, then `seq_event` strictly later and at most
  seq_time_value seq_time_intervals after it, both in the window;
* performed_event_regularly: in at least `min_periods` of the last `total_periods` periods of
  time_value time_intervals, the event's count per period compares with `operator_value`;
* stopped_performing_event: did it in (now - time_value, now - seq_time_value], not since;
* restarted_performing_event: did it before now - time_value, not in (now - time_value,
  now - seq_time_value], and again since.
"""
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional

from dateutil.relativedelta import relativedelta
from rest_framework.exceptions import ValidationError
from sqlglot import exp

from cohorts.definition import BehavioralLeaf

from ..clock import team_timezone
from ..dates import parse_date
from .actions import ActionCatalog
from .context import SQLContext
from .engine import is_not_false, is_true
from .intervals import interval_index

COUNT_COMPARISONS = {None: exp.EQ, "eq": exp.EQ, "exact": exp.EQ, "gte": exp.GTE, "lte": exp.LTE, "gt": exp.GT, "lt": exp.LT}
PYTHON_COMPARISONS = {exp.EQ: int.__eq__, exp.GTE: int.__ge__, exp.LTE: int.__le__, exp.GT: int.__gt__, exp.LT: int.__lt__}
# Periods of `performed_event_regularly` (one CASE bound each in SQL).
MAX_PERIODS = 1000
# Periods are (start, end]; interval_index buckets [start, end): shifting every bound by the
# timestamps' resolution turns one into the other.
RESOLUTION = timedelta(microseconds=1)


def behavioral_condition(leaf: BehavioralLeaf, person: exp.Expression, context) -> exp.Expression:
    """`person` (the persons table's id) satisfies the leaf; `context` is the persons context (team, params, now)."""
    events = _Events(context)
    select = BUILDERS[leaf.value](leaf, events)
    condition = exp.In(this=person.copy(), query=exp.Subquery(this=select))
    return is_not_false(exp.Not(this=condition)) if leaf.negation else is_true(condition)


class _Events:
    """The events of the team's persons, as one leaf reads them."""

    def __init__(self, persons_context):
        self.now: datetime = persons_context.now
        self.team = persons_context.team
        self.sql = SQLContext(persons_context.engine, persons_context.team, persons_context.params)
        self.params = self.sql.params
        self.person = self.sql.event_column("person")

    @property
    def ts(self) -> exp.Expression:
        return self.sql.event_column("timestamp")

    def at(self, moment: datetime) -> exp.Expression:
        return self.sql.engine.timestamp(moment, self.params)

    def after(self, moment: datetime) -> exp.Expression:
        return exp.GT(this=self.ts, expression=self.at(moment))

    def until(self, moment: datetime) -> exp.Expression:
        return exp.LTE(this=self.ts, expression=self.at(moment))

    def matches(self, event_type: Optional[str], key, event_filters=None) -> exp.Expression:
        """The event is `key` (an event name, or an action's id when event_type is "actions")."""
        if event_type in (None, "events"):
            condition = exp.EQ(this=self.sql.event_column("event"), expression=self.params.add(str(key)))
        elif event_type == "actions":
            try:
                action_id = int(key)
            except (TypeError, ValueError):
                raise ValidationError(f"Action ID {key} does not exist!") from None
            catalog = ActionCatalog(self.team, [action_id])
            catalog.require(action_id)
            condition = catalog.condition(action_id, self.sql)
        else:
            raise ValidationError("Event type must be 'events' or 'actions'")
        from .properties import properties_condition  # properties dispatches cohort filters back here

        filters = properties_condition(event_filters or [], self.sql)
        return exp.and_(condition, filters) if filters is not None else condition

    def select(self, *conditions: exp.Expression, columns: Optional[list] = None) -> exp.Select:
        """SELECT person_id (or `columns`) FROM the team's events of persons WHERE `conditions`.
        Person properties in event filters are the event's person's: persons are joined inside."""
        where = [self.sql.team_filter(), exp.Not(this=exp.Is(this=self.person.copy(), expression=exp.null())), *conditions]
        select = exp.select(*(columns or [self.person.copy()])).from_(self.sql.events_table())
        if self.sql.uses_person:
            select = select.join(self.sql.person_table(), on=self.sql.person_join_condition(), join_type="left")
        return select.where(exp.and_(*where))

    def count_if(self, condition: exp.Expression) -> exp.Expression:
        return exp.Sum(this=exp.Case(ifs=[exp.If(this=condition, true=exp.Literal.number(1))], default=exp.Literal.number(0)))


def _ago(leaf: BehavioralLeaf, events: _Events, value: Optional[int], interval: Optional[str], what: str) -> datetime:
    if value is None or interval is None:
        raise ValidationError(f"Behavioral filters ({leaf.value}) need {what}_value and {what}_interval.")
    try:
        return events.now - relativedelta(**{f"{interval}s": value})
    except (OverflowError, ValueError):
        raise ValidationError(f"The time window of {value} {interval}s is too long.") from None


def _window_start(leaf: BehavioralLeaf, events: _Events) -> datetime:
    if leaf.explicit_datetime:
        moment, _relative, _hours = parse_date(leaf.explicit_datetime, team_timezone(events.team), events.now, truncate=False)
        return moment
    if leaf.time_value is None or leaf.time_interval is None:
        raise ValidationError(f"Behavioral filters ({leaf.value}) need time_value and time_interval, or explicit_datetime.")
    return _ago(leaf, events, leaf.time_value, leaf.time_interval, "time")


def _recent_start(leaf: BehavioralLeaf, events: _Events) -> tuple[datetime, datetime]:
    """(now - time_value, now - seq_time_value) of stopped/restarted; the second must be the more recent."""
    start = _ago(leaf, events, leaf.time_value, leaf.time_interval, "time")
    recent = _ago(leaf, events, leaf.seq_time_value, leaf.seq_time_interval, "seq_time")
    if recent <= start:
        raise ValidationError("seq_time_value must be more recent than time_value.")
    return start, recent


def _performed(leaf: BehavioralLeaf, events: _Events) -> exp.Select:
    start = _window_start(leaf, events)
    return events.select(events.matches(leaf.event_type, leaf.key, leaf.event_filters), events.after(start),
                         exp.LT(this=events.ts, expression=events.at(events.now)))


def _performed_multiple(leaf: BehavioralLeaf, events: _Events) -> exp.Select:
    comparison = COUNT_COMPARISONS.get(leaf.operator, exp.GTE)
    return _performed(leaf, events).group_by(events.person.copy()).having(
        comparison(this=exp.Count(this=exp.Star()), expression=events.params.add(leaf.operator_value or 0)))


def _performed_first_time(leaf: BehavioralLeaf, events: _Events) -> exp.Select:
    start = _window_start(leaf, events)
    first = exp.Min(this=events.ts)
    return events.select(events.matches(leaf.event_type, leaf.key, leaf.event_filters)).group_by(events.person.copy()).having(
        exp.and_(exp.GT(this=first, expression=events.at(start)), exp.LT(this=first.copy(), expression=events.at(events.now))))


def _sequence(leaf: BehavioralLeaf, events: _Events) -> exp.Select:
    if leaf.seq_event is None:
        raise ValidationError("Behavioral filters (performed_event_sequence) need seq_event.")
    if leaf.seq_time_value is None or leaf.seq_time_interval is None:
        raise ValidationError("Behavioral filters (performed_event_sequence) need seq_time_value and seq_time_interval.")
    start = _window_start(leaf, events)
    first = events.matches(leaf.event_type, leaf.key, leaf.event_filters)
    then = events.matches(leaf.seq_event_type or "events", leaf.seq_event)
    same = (leaf.event_type or "events", str(leaf.key)) == (leaf.seq_event_type or "events", str(leaf.seq_event))

    def when(condition: exp.Expression) -> exp.Case:
        return exp.Case(ifs=[exp.If(this=condition, true=events.ts)])

    # The earliest seq_event at or after each event (strictly after it when both are the same event).
    frame = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING",
                           **({"end": exp.Literal.number(1), "end_side": "PRECEDING"} if same else {"end": "CURRENT ROW"}))
    next_seq = exp.Window(this=exp.Min(this=when(then)), partition_by=[events.person.copy()],
                          order=exp.Order(expressions=[exp.Ordered(this=events.ts, desc=True)]), spec=frame)
    inner = events.select(exp.or_(first, then.copy()), events.after(start), events.until(events.now), columns=[
        exp.alias_(events.person.copy(), "person_id"), exp.alias_(when(first.copy()), "step_0"), exp.alias_(next_seq, "step_1")])
    step_0, step_1 = exp.column("step_0", table="s"), exp.column("step_1", table="s")
    deadline = events.sql.engine.shift_time(step_0.copy(), exp.Literal.number(leaf.seq_time_value), leaf.seq_time_interval,
                                            is_date=False, tz=timezone.utc, params=events.params)
    return exp.select(exp.column("person_id", table="s")).from_(exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier("s")))).where(
        exp.and_(exp.LT(this=step_0, expression=step_1), exp.LTE(this=step_1.copy(), expression=deadline)))


def _regularly(leaf: BehavioralLeaf, events: _Events) -> exp.Select:
    if leaf.time_value is None or leaf.time_interval is None or leaf.min_periods is None or leaf.total_periods is None:
        raise ValidationError("Behavioral filters (performed_event_regularly) need time_value, time_interval, min_periods and total_periods.")
    if leaf.min_periods > leaf.total_periods:
        raise ValidationError(f"min_periods ({leaf.min_periods}) cannot be greater than total_periods ({leaf.total_periods})")
    if leaf.total_periods > MAX_PERIODS:
        raise ValidationError(f"total_periods can be at most {MAX_PERIODS}.")
    # Period k (0 = the latest) is (now - (k+1)*time_value, now - k*time_value]; oldest first here.
    ends = [_ago(leaf, events, leaf.time_value * k, leaf.time_interval, "time") for k in range(leaf.total_periods, -1, -1)]
    bounds = [end + RESOLUTION for end in ends]
    comparison = COUNT_COMPARISONS.get(leaf.operator, exp.GTE)
    value = leaf.operator_value or 0
    period = interval_index(events.ts, bounds, events.sql, checked=False)
    per_period = events.select(
        events.matches(leaf.event_type, leaf.key, leaf.event_filters),
        exp.GTE(this=events.ts, expression=events.at(bounds[0])), exp.LT(this=events.ts, expression=events.at(bounds[-1])),
        columns=[exp.alias_(events.person.copy(), "person_id"), exp.alias_(exp.Count(this=exp.Star()), "n")],
    ).group_by(events.person.copy(), period)
    # Periods without the event count too when 0 satisfies the comparison (PostHog's countIf per period).
    n = exp.column("n", table="r")
    satisfied = exp.Sum(this=exp.Case(ifs=[exp.If(this=comparison(this=n, expression=events.params.add(value)), true=exp.Literal.number(1))],
                                      default=exp.Literal.number(0)))
    if PYTHON_COMPARISONS[comparison](0, value):
        satisfied = exp.Add(this=satisfied, expression=exp.Sub(this=exp.Literal.number(leaf.total_periods), expression=exp.Count(this=exp.Star())))
    return (exp.select(exp.column("person_id", table="r")).from_(exp.Subquery(this=per_period, alias=exp.TableAlias(this=exp.to_identifier("r"))))
            .group_by(exp.column("person_id", table="r")).having(exp.GTE(this=satisfied, expression=events.params.add(leaf.min_periods))))


def _stopped(leaf: BehavioralLeaf, events: _Events) -> exp.Select:
    start, recent = _recent_start(leaf, events)
    return events.select(events.matches(leaf.event_type, leaf.key, leaf.event_filters), events.after(start), events.until(events.now)) \
        .group_by(events.person.copy()).having(exp.and_(
            exp.GT(this=events.count_if(events.until(recent)), expression=exp.Literal.number(0)),
            exp.EQ(this=events.count_if(events.after(recent)), expression=exp.Literal.number(0))))


def _restarted(leaf: BehavioralLeaf, events: _Events) -> exp.Select:
    start, recent = _recent_start(leaf, events)
    return events.select(events.matches(leaf.event_type, leaf.key, leaf.event_filters), events.until(events.now)) \
        .group_by(events.person.copy()).having(exp.and_(
            exp.GT(this=events.count_if(events.until(start)), expression=exp.Literal.number(0)),
            exp.EQ(this=events.count_if(exp.and_(events.after(start), events.until(recent))), expression=exp.Literal.number(0)),
            exp.GT(this=events.count_if(events.after(recent)), expression=exp.Literal.number(0))))


BUILDERS: dict[str, Callable[[BehavioralLeaf, _Events], exp.Select]] = {
    "performed_event": _performed,
    "performed_event_multiple": _performed_multiple,
    "performed_event_first_time": _performed_first_time,
    "performed_event_sequence": _sequence,
    "performed_event_regularly": _regularly,
    "stopped_performing_event": _stopped,
    "restarted_performing_event": _restarted,
}
