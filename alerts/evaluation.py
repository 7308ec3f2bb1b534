"""Computing an alert's value from its insight and comparing it with the threshold.

Trends (TrendsAlertConfig): the value is read from the configured series (every series with a
breakdown) of the insight's query, recomputed for the last few intervals:
- absolute_value: the last completed interval (for total-value displays, the aggregated value
  over the insight's own date range). With `check_ongoing_interval`, the interval still in
  progress is checked first against the upper bound, since it can only grow.
- relative_increase / relative_decrease: the change from the interval before the last completed
  one to the last completed one (or from the last completed one to the ongoing one, with
  `check_ongoing_interval`, for increases); a percentage threshold compares the change as a
  fraction of the earlier value (0.2 = 20%).
Funnels (FunnelsAlertConfig): for a steps funnel, the conversion rate (0-100) of `funnel_step` (the
last step by default) from the first step or from the previous one, per breakdown value; for a
trends funnel, the whole funnel's rate in the last completed period (the ongoing one with
`check_ongoing_interval`), or its change from the period before for relative conditions.
SQL (HogQLAlertConfig): a numeric column of the result, read in the last row, the first row (with
the row before it for relative conditions) or in every row (`any_row`, labelled by `label_column`).
With several values (breakdowns, rows) the alert fires when any breaches; the check records which.
A value breaches when it is strictly below `lower` or strictly above `upper`.
"""
import math
from dataclasses import dataclass
from decimal import Decimal

from rest_framework.exceptions import APIException

from .config import (
    ABSOLUTE_VALUE,
    RELATIVE_DECREASE,
    RELATIVE_INCREASE,
    FunnelsAlertConfig,
    HogQLAlertConfig,
    InsightThreshold,
    ThresholdBounds,
    funnel_viz,
    is_non_time_series,
    validate_alert_setup,
)

INTERVAL_LETTERS = {"day": "d", "week": "w", "month": "m"}  # any other interval reads back in hours
# any_row checks every row: past this many, a LIMIT or an aggregate is asked for rather than a truncation
# that could hide the breaching row (PostHog's limit).
ANY_ROW_MAX_ROWS = 50


class EvaluationError(Exception):
    """The alert could not be evaluated; the message is recorded on the check."""


@dataclass(frozen=True)
class Evaluation:
    value: float | None
    breaches: tuple[str, ...]
    # Which value breached when there are several: {"series_index", "breakdown_value"} for trends,
    # {"funnel_step", "breakdown_value"} for funnels, {"column", "row", "label"} for SQL.
    triggered_metadata: dict | None = None


def evaluate(alert) -> Evaluation:
    """The alert's current value and the bounds it breaks. Raises on any problem computing it."""
    setup = validate_alert_setup(
        alert.insight.query, alert.condition, alert.config, alert.threshold.configuration if alert.threshold else None
    )
    if isinstance(setup.config, FunnelsAlertConfig):
        return _evaluate_funnel(alert.team, setup)
    if isinstance(setup.config, HogQLAlertConfig):
        return _evaluate_sql(alert.team, setup)
    return _evaluate_trends(alert.team, setup)


def _evaluate_trends(team, setup) -> Evaluation:
    query, condition, config, threshold = setup.query, setup.condition, setup.config, setup.threshold
    non_time_series = is_non_time_series(query)
    check_ongoing = bool(config.check_ongoing_interval) and condition != RELATIVE_DECREASE

    intervals = None if non_time_series else (2 if condition == ABSOLUTE_VALUE else 3)
    results = _compute(team, query, intervals)
    judge = _Judge(threshold, condition, None if non_time_series else query.get("interval") or "day")
    if not results:
        return judge.verdict(0.0, "empty result", current=False)
    if _has_breakdown(query):
        # One row per series and breakdown value: the watched series' rows, when rows say their series.
        ordered = [row for row in results if isinstance(row, dict) and isinstance(row.get("action"), dict) and "order" in row["action"]]
        candidates = [row for row in ordered if row["action"]["order"] == config.series_index] if len(ordered) == len(results) else results
        if not candidates:
            return judge.verdict(0.0, "empty result", current=False)
    else:
        if config.series_index >= len(results):
            raise EvaluationError(f"series_index {config.series_index} is out of range (results have {len(results)} series)")
        candidates = [results[config.series_index]]

    last = None
    for position, series in enumerate(candidates):
        label = str(series.get("label") or f"series {position}") if isinstance(series, dict) else f"series {position}"
        last = _evaluate_series(series, label, condition, judge, non_time_series, check_ongoing)
        if last.breaches:
            if len(candidates) == 1:
                return last
            breakdown_value = series.get("breakdown_value") if isinstance(series, dict) else None
            return Evaluation(last.value, last.breaches, {"series_index": config.series_index, "breakdown_value": breakdown_value})
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


def _first_breach(values: list[tuple[float, str, dict]], judge: "_Judge", *, current: bool) -> Evaluation:
    """The first of (value, label, metadata) that breaches; else the only value's verdict (None when several)."""
    for value, label, metadata in values:
        verdict = judge.verdict(value, label, current=current)
        if verdict.breaches:
            return Evaluation(verdict.value, verdict.breaches, metadata if len(values) > 1 else None)
    return Evaluation(values[0][0], ()) if len(values) == 1 else Evaluation(None, ())


def _evaluate_funnel(team, setup) -> Evaluation:
    config: FunnelsAlertConfig = setup.config
    if funnel_viz(setup.query) == "trends":
        return _evaluate_funnel_trends(team, setup)
    results = _compute(team, setup.query, None)
    if not results:
        raise EvaluationError("Funnel alert query returned no steps.")
    per_breakdown = results if isinstance(results[0], list) else [results]
    judge = _Judge(setup.threshold, setup.condition, None)
    values = []
    for steps in per_breakdown:
        if not isinstance(steps, list) or not steps:
            raise EvaluationError("Funnel alert query returned no steps.")
        breakdown_value = steps[0].get("breakdown_value") if isinstance(steps[0], dict) else None
        step = config.funnel_step if config.funnel_step is not None else len(steps) - 1
        label = "conversion" if breakdown_value is None else (
            ", ".join(str(part) for part in breakdown_value) if isinstance(breakdown_value, list) else str(breakdown_value))
        values.append((_conversion_rate(steps, step, config.metric), label, {"funnel_step": step, "breakdown_value": breakdown_value}))
    return _first_breach(values, judge, current=True)


def _evaluate_funnel_trends(team, setup) -> Evaluation:
    """A trends funnel: the whole funnel's conversion rate (0-100) per period, per breakdown value.
    The last completed period is checked (the ongoing one with `check_ongoing_interval`); relative
    conditions compare it with the period before."""
    results = [row for row in _compute(team, setup.query, None)
               if not isinstance(row, dict) or row.get("compare_label") in (None, "current")]
    if not results:
        raise EvaluationError("Funnel trends alert query returned no data.")
    ongoing = bool(setup.config.check_ongoing_interval)
    judge = _Judge(setup.threshold, setup.condition, setup.query.get("interval") or "day")
    values = []
    for row in results:
        if not isinstance(row, dict):
            raise EvaluationError("Funnel trends series is malformed.")
        breakdown_value = row.get("breakdown_value")
        label = "conversion" if breakdown_value is None else (
            ", ".join(str(part) for part in breakdown_value) if isinstance(breakdown_value, list) else str(breakdown_value))
        data = row.get("data") if isinstance(row.get("data"), list) else []
        anchor = max(len(data) - (1 if ongoing else 2), 0)
        current = _rate(data, anchor)
        if current is None:
            continue  # no rate for that period: nothing to judge
        if setup.condition != ABSOLUTE_VALUE:
            before = _rate(data, anchor - 1)
            if before is None:
                continue
            current = judge.change(before, current)
        values.append((current, label, {"breakdown_value": breakdown_value}))
    if not values:
        return Evaluation(None, ())
    return _first_breach(values, judge, current=ongoing)


def _rate(data: list, index: int) -> float | None:
    if not 0 <= index < len(data):
        return None
    value = data[index]
    return None if isinstance(value, bool) or not isinstance(value, (int, float)) else float(value)


def _conversion_rate(steps: list, step: int, metric: str) -> float:
    """The step's conversion in percent (0-100) of the first step, or of the previous one."""
    if step >= len(steps):
        raise EvaluationError(f"funnel_step {step} is out of range (funnel has {len(steps)} steps).")
    base_step = step - 1 if metric == "conversion_from_previous" else 0
    if base_step < 0:
        raise EvaluationError("conversion_from_previous is undefined at the first step (there is no prior step); "
                              "use conversion_from_start instead.")
    base, count = _step_count(steps, base_step), _step_count(steps, step)
    return 0.0 if base == 0 else count / base * 100


def _step_count(steps: list, index: int) -> float:
    if not isinstance(steps[index], dict):
        raise EvaluationError(f"Funnel step {index} is malformed.")
    return _float(steps[index].get("count"), f"step {index}")


def _evaluate_sql(team, setup) -> Evaluation:
    config: HogQLAlertConfig = setup.config
    rows, columns = _compute_table(team, setup.query)
    judge = _Judge(setup.threshold, setup.condition, None)
    if not rows:  # no rows: the metric is 0 this time, so a lower bound can still breach
        return judge.verdict(0.0, "result", current=True)
    if any(not isinstance(row, (list, tuple)) for row in rows):
        raise EvaluationError("SQL alert query must return rows as lists")
    index = sql_value_column(config.column, columns, rows)
    column = columns[index] if columns and index < len(columns) else "result"
    if config.evaluation == "any_row":
        if len(rows) > ANY_ROW_MAX_ROWS:
            raise EvaluationError(f"Any-row SQL alerts evaluate at most {ANY_ROW_MAX_ROWS} rows, but the query returned "
                                  f"{len(rows)} — add a LIMIT or aggregate the query.")
        label_index = _label_column(config.label_column, columns, index, rows)
        values = []
        for number, row in enumerate(rows, start=1):
            cell = row[label_index] if label_index is not None and label_index < len(row) else None
            label = str(cell) if cell is not None else f"row {number}"
            values.append((_cell(row, index, f"row {number}"), label, {"column": column, "row": number, "label": label}))
        return _first_breach(values, judge, current=True)
    # The current value and the one before it: the last rows of an oldest-first result, or the
    # first rows of a newest-first one.
    ordered = rows[-2:] if config.evaluation == "last_row" else list(reversed(rows[:2]))
    values = [_cell(row, index, "row") for row in ordered]
    if setup.condition == ABSOLUTE_VALUE:
        return judge.verdict(values[-1], column, current=True)
    if len(values) < 2:
        raise EvaluationError("Relative alerts on SQL insights need at least two rows (current and previous).")
    return judge.verdict(judge.change(values[0], values[1]), column, current=True)


def check_sql_column(team, query: dict, column: str) -> None:
    """EvaluationError unless `column` is a numeric column of the SQL query's result (cached, else
    computed). A query that fails now is not the configuration's fault: its checks will say so."""
    try:
        rows, columns = _compute_table(team, query, refresh="blocking")
    except Exception:  # noqa: BLE001
        return
    sql_value_column(column, columns, [row for row in rows if isinstance(row, (list, tuple))])


def sql_value_column(configured: str | None, columns: list | None, rows: list) -> int:
    """The index of the column an SQL alert reads: the configured one (which must be numeric), else
    the only column, else the only numeric column. EvaluationError names the problem."""
    names = [str(name) for name in columns or []]
    if configured is not None:
        if configured not in names:
            raise EvaluationError(f"SQL alert column '{configured}' is not in the result columns ({', '.join(names)}).")
        index = names.index(configured)
        if rows and not _is_numeric_column(rows, index):
            raise EvaluationError(f"SQL alert column '{configured}' is not numeric.")
        return index
    width = len(rows[-1]) if rows else len(names)
    if width == 1:
        return 0
    numeric = [index for index in range(width) if _is_numeric_column(rows, index)]
    if len(numeric) == 1:
        return numeric[0]
    described = f" ({', '.join(names)})" if names else ""
    raise EvaluationError(
        f"SQL alert query returns {width} columns{described} and {'none' if not numeric else 'more than one'} "
        "of them is numeric — pick the column to evaluate in the alert settings."
    )


def _is_numeric_column(rows: list, index: int) -> bool:
    """Judged by the column's latest non-null value."""
    for row in reversed(rows):
        cell = row[index] if isinstance(row, (list, tuple)) and index < len(row) else None
        if cell is not None:
            return not isinstance(cell, bool) and isinstance(cell, (int, float, Decimal))
    return False


def _label_column(configured: str | None, columns: list | None, value_index: int, rows: list) -> int | None:
    names = [str(name) for name in columns or []]
    if configured is not None:
        if configured not in names:
            raise EvaluationError(f"SQL alert label column '{configured}' is not in the result columns ({', '.join(names)}).")
        return names.index(configured)
    return next((index for index in range(len(rows[-1])) if index != value_index), None)


def _cell(row, index: int, position: str) -> float:
    if index >= len(row):
        raise EvaluationError(f"SQL alert query returned a {position} with too few columns.")
    value = row[index]
    if isinstance(value, Decimal):
        value = float(value)
    number = _float(value, position)
    if not math.isfinite(number):
        raise EvaluationError(f"SQL alert query must return a finite numeric value (got {value} for the {position}).")
    return number


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
    """The results of `query` (trends: read back `intervals` intervals up to now; None: its own range)."""
    if intervals:
        letter = INTERVAL_LETTERS.get(query.get("interval") or "day", "h")
        query = {**query, "dateRange": {"date_from": f"-{intervals}{letter}"}}
    response = _execute(team, query)
    results = response.get("results")
    if results is None:
        return []
    if not isinstance(results, list):
        raise EvaluationError("The query returned no series")
    return results


def _compute_table(team, query: dict, refresh: str = "force_blocking") -> tuple[list, list | None]:
    """The rows and column names of an SQL query."""
    response = _execute(team, query, refresh)
    rows, columns = response.get("results"), response.get("columns")
    if rows is None:
        raise EvaluationError("The SQL query returned no result")
    if not isinstance(rows, list):
        raise EvaluationError("SQL alert query returned an unexpected result shape")
    return rows, columns if isinstance(columns, list) else None


def _execute(team, query: dict, refresh: str = "force_blocking") -> dict:
    try:
        from queries import execute_query
    except ImportError:
        raise EvaluationError("The query engine is not available") from None
    try:
        response = execute_query(team, query, refresh=refresh)
    except APIException as error:  # the engine refusing the query (invalid, unsupported, timed out)
        raise EvaluationError(_first_message(error.detail)) from None
    if not isinstance(response, dict):
        raise EvaluationError("The query engine returned no response")
    if response.get("error"):
        raise EvaluationError(str(response["error"]))
    return response
