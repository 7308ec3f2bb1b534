"""Computing an alert's value from its insight and comparing it with the threshold.

Trends insights only. The value is read from the configured series (every series with a
breakdown) of the insight's query, recomputed for the last few intervals:
- absolute_value: the last completed interval (for total-value displays, the aggregated value
  over the insight's own date range). With `check_ongoing_interval`, the interval still in
  progress is checked first against the upper bound, since it can only grow.
- relative_increase / relative_decrease: the change from the interval before the last completed
  one to the last completed one (or from the last completed one to the ongoing one, with
  `check_ongoing_interval`, for increases); a percentage threshold compares the change as a
  fraction of the earlier value (0.2 = 20%).
A value breaches when it is strictly below `lower` or strictly above `upper`.
"""
import math
from dataclasses import dataclass

from rest_framework.exceptions import APIException

from .config import (
    ABSOLUTE_VALUE,
    RELATIVE_DECREASE,
    RELATIVE_INCREASE,
    InsightThreshold,
    ThresholdBounds,
    is_non_time_series,
    validate_alert_setup,
)

INTERVAL_LETTERS = {"day": "d", "week": "w", "month": "m"}  # any other interval reads back in hours


class EvaluationError(Exception):
    """The alert could not be evaluated; the message is recorded on the check."""


@dataclass(frozen=True)
class Evaluation:
    value: float | None
    breaches: tuple[str, ...]


def evaluate(alert) -> Evaluation:
    """The alert's current value and the bounds it breaks. Raises on any problem computing it."""
    setup = validate_alert_setup(
        alert.insight.query, alert.condition, alert.config, alert.threshold.configuration if alert.threshold else None
    )
    query, condition, config, threshold = setup.query, setup.condition, setup.config, setup.threshold
    non_time_series = is_non_time_series(query)
    check_ongoing = bool(config.check_ongoing_interval) and condition != RELATIVE_DECREASE

    intervals = None if non_time_series else (2 if condition == ABSOLUTE_VALUE else 3)
    results = _compute(alert.team, query, intervals)
    judge = _Judge(threshold, condition, None if non_time_series else query.get("interval") or "day")
    if not results:
        return judge.verdict(0.0, "empty result", current=False)
    if _has_breakdown(query):
        candidates = results
    else:
        if config.series_index >= len(results):
            raise EvaluationError(f"series_index {config.series_index} is out of range (results have {len(results)} series)")
        candidates = [results[config.series_index]]

    last = None
    for position, series in enumerate(candidates):
        label = str(series.get("label") or f"series {position}") if isinstance(series, dict) else f"series {position}"
        last = _evaluate_series(series, label, condition, judge, non_time_series, check_ongoing)
        if last.breaches:
            return last
    # With a breakdown no single value stands for the insight.
    return Evaluation(None, ()) if len(candidates) > 1 else last


def _evaluate_series(series, label, condition, judge, non_time_series, check_ongoing) -> Evaluation:
    if non_time_series:
        return judge.verdict(_number(series, "aggregated_value", label), label, current=True)
    data = series.get("data") if isinstance(series, dict) else None
    needed = 2 if condition == ABSOLUTE_VALUE else 3
    if not isinstance(data, list) or len(data) < needed:
        raise EvaluationError(f"The series {label} has too few intervals to evaluate the alert")
    ongoing, completed, before = _float(data[-1], label), _float(data[-2], label), _float(data[-3], label) if needed == 3 else None

    if condition == ABSOLUTE_VALUE:
        if check_ongoing:
            early = judge.verdict(ongoing, label, current=True, upper_only=True)
            if early.breaches:
                return early
        return judge.verdict(completed, label, current=False)
    if check_ongoing:  # relative increase only
        early = judge.verdict(judge.change(completed, ongoing), label, current=True, upper_only=True)
        if early.breaches:
            return early
    return judge.verdict(judge.change(before, completed), label, current=False)


class _Judge:
    def __init__(self, threshold: InsightThreshold | None, condition: str, interval: str | None):
        self.bounds = threshold.bounds if threshold and threshold.bounds else ThresholdBounds()
        self.percentage = bool(threshold and threshold.type == "percentage")
        self.condition = condition
        self.interval = interval or "interval"

    def change(self, earlier: float, later: float) -> float:
        difference = later - earlier if self.condition == RELATIVE_INCREASE else earlier - later
        if not self.percentage:
            return difference
        if earlier == 0:
            return 0.0 if later == 0 else math.inf
        return difference / earlier

    def _format(self, value: float) -> str:
        return f"{value:.2%}" if self.percentage else f"{value:g}"

    def verdict(self, value: float, label: str, *, current: bool, upper_only: bool = False) -> Evaluation:
        verb = {ABSOLUTE_VALUE: "is", RELATIVE_INCREASE: "increased by", RELATIVE_DECREASE: "decreased by"}[self.condition]
        period = f"{'current' if current else 'previous'} {self.interval}"
        lower, upper = self.bounds.lower, self.bounds.upper
        if lower is not None and not upper_only and value < lower:
            return Evaluation(value, (f"{label}: the value for the {period} {verb} {self._format(value)}, below the lower threshold of {self._format(lower)}",))
        if upper is not None and value > upper:
            return Evaluation(value, (f"{label}: the value for the {period} {verb} {self._format(value)}, above the upper threshold of {self._format(upper)}",))
        return Evaluation(value, ())


def _has_breakdown(query: dict) -> bool:
    breakdown_filter = query.get("breakdownFilter") or {}
    return bool(breakdown_filter.get("breakdown") not in (None, "", []) or breakdown_filter.get("breakdowns"))


def _number(series, key: str, label: str) -> float:
    if not isinstance(series, dict) or key not in series:
        raise EvaluationError(f"The series {label} has no {key}")
    return _float(series[key], label)


def _float(value, label: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EvaluationError(f"The series {label} has a non-numeric value: {value!r}")
    return float(value)


def _first_message(detail) -> str:
    while isinstance(detail, (list, dict)) and detail:
        detail = detail[0] if isinstance(detail, list) else next(iter(detail.values()))
    return str(detail)


def _compute(team, query: dict, intervals: int | None) -> list:
    """The trends series of `query`, read back `intervals` intervals up to now (None: its own range)."""
    try:
        from queries import execute_query
    except ImportError:
        raise EvaluationError("The query engine is not available") from None
    if intervals:
        letter = INTERVAL_LETTERS.get(query.get("interval") or "day", "h")
        query = {**query, "dateRange": {"date_from": f"-{intervals}{letter}"}}
    try:
        response = execute_query(team, query, refresh="force_blocking")
    except APIException as error:  # the engine refusing the query (invalid, unsupported, timed out)
        raise EvaluationError(_first_message(error.detail)) from None
    if not isinstance(response, dict):
        raise EvaluationError("The query engine returned no response")
    if response.get("error"):
        raise EvaluationError(str(response["error"]))
    results = response.get("results")
    if results is None:
        return []
    if not isinstance(results, list):
        raise EvaluationError("The query returned no series")
    return results
