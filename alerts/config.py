"""The JSON documents an alert stores (condition, config, threshold configuration) and the rules
that tie them to the insight's query. Pure functions: no database access."""
import math
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ALERTABLE_QUERY_KINDS = frozenset({"TrendsQuery", "FunnelsQuery", "HogQLQuery", "MetricsQuery"})
# Trends displays that produce one aggregated number per series instead of a time series.
NON_TIME_SERIES_DISPLAYS = frozenset({"BoldNumber", "ActionsPie", "ActionsBarValue", "ActionsTable", "WorldMap", "ActionsDonut"})

ABSOLUTE_VALUE = "absolute_value"
RELATIVE_INCREASE = "relative_increase"
RELATIVE_DECREASE = "relative_decrease"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ThresholdBounds(_Strict):
    lower: float | None = None
    upper: float | None = None


class InsightThreshold(_Strict):
    type: Literal["absolute", "percentage"]
    bounds: ThresholdBounds | None = None


class AlertCondition(_Strict):
    type: Literal["absolute_value", "relative_increase", "relative_decrease"]


class TrendsAlertConfig(_Strict):
    type: Literal["TrendsAlertConfig"]
    series_index: int = Field(ge=0)
    check_ongoing_interval: bool | None = None


class FunnelsAlertConfig(_Strict):
    type: Literal["FunnelsAlertConfig"]
    metric: Literal["conversion_from_start", "conversion_from_previous"]
    funnel_step: int | None = Field(default=None, ge=0)  # None: the last step (overall conversion)
    check_ongoing_interval: bool | None = None


class HogQLAlertConfig(_Strict):
    type: Literal["HogQLAlertConfig"]
    evaluation: Literal["last_row", "first_row", "any_row"]
    column: str | None = None  # None: the single numeric column
    label_column: str | None = None


AlertConfig = TrendsAlertConfig | FunnelsAlertConfig | HogQLAlertConfig
CONFIG_MODELS = {"TrendsAlertConfig": TrendsAlertConfig, "FunnelsAlertConfig": FunnelsAlertConfig, "HogQLAlertConfig": HogQLAlertConfig}


class AlertConfigError(ValueError):
    """A configuration that can never be evaluated; the message is shown to the API client."""


def describe_errors(error: ValidationError) -> str:
    """Pydantic's errors as one short line: `bounds.lower: Input should be a valid number; ...`."""
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"])
        parts.append(f"{location}: {item['msg']}" if location else item["msg"])
    return "; ".join(parts)


def parse_threshold(configuration) -> InsightThreshold:
    try:
        threshold = InsightThreshold.model_validate(configuration)
    except ValidationError as error:
        raise AlertConfigError(f"Invalid threshold configuration: {describe_errors(error)}") from None
    bounds = threshold.bounds
    for value in (bounds.lower, bounds.upper) if bounds else ():
        if value is not None and not math.isfinite(value):
            raise AlertConfigError("Invalid threshold configuration: bounds must be finite numbers")
    if bounds and bounds.lower is not None and bounds.upper is not None and bounds.lower > bounds.upper:
        raise AlertConfigError("Lower threshold must be less than upper threshold")
    return threshold


def parse_condition(condition) -> AlertCondition:
    try:
        return AlertCondition.model_validate(condition)
    except ValidationError:
        raise AlertConfigError(f"Alert has invalid condition: {condition}") from None


def parse_config(config) -> AlertConfig:
    model = CONFIG_MODELS.get(config.get("type")) if isinstance(config, dict) else None
    if model is None:
        raise AlertConfigError(f"Unsupported alert config type: {config}")
    try:
        return model.model_validate(config)
    except ValidationError as error:
        raise AlertConfigError(f"Alert has invalid {model.__name__}: {describe_errors(error)}") from None


def innermost_query(query) -> dict | None:
    """Unwraps `source` nodes (InsightVizNode, DataTableNode, DataVisualizationNode) to the computed node."""
    while isinstance(query, dict) and isinstance(query.get("source"), dict):
        query = query["source"]
    return query if isinstance(query, dict) else None


def alertable_query_kind(query) -> str | None:
    """The innermost query kind when alerts can watch it, else None (PostHog's `alertable_query_kind`)."""
    node = innermost_query(query)
    kind = node.get("kind") if node else None
    return kind if kind in ALERTABLE_QUERY_KINDS else None


def is_non_time_series(trends_query: dict) -> bool:
    trends_filter = trends_query.get("trendsFilter") or {}
    return isinstance(trends_filter, dict) and trends_filter.get("display") in NON_TIME_SERIES_DISPLAYS


def trends_result_count(trends_query: dict) -> int:
    """How many result series the query yields without breakdowns: one per formula, else one per series."""
    trends_filter = trends_query.get("trendsFilter") or {}
    for key in ("formulaNodes", "formulas"):
        if isinstance(trends_filter.get(key), list) and trends_filter[key]:
            return len(trends_filter[key])
    if trends_filter.get("formula"):
        return 1
    series = trends_query.get("series")
    return len(series) if isinstance(series, list) else 0


@dataclass(frozen=True)
class AlertSetup:
    query: dict  # the computed node (TrendsQuery, FunnelsQuery or HogQLQuery)
    condition: str
    config: AlertConfig
    threshold: InsightThreshold | None


def validate_alert_setup(query, condition, config, threshold_configuration) -> AlertSetup:
    """Check that condition, config and threshold fit together and fit the insight's query.

    Raises AlertConfigError with a client-facing message.
    """
    parsed_condition = parse_condition(condition)
    parsed_config = parse_config(config)
    node = innermost_query(query)
    kind = node.get("kind") if node else None
    {
        "TrendsAlertConfig": _check_trends,
        "FunnelsAlertConfig": _check_funnels,
        "HogQLAlertConfig": _check_hogql,
    }[parsed_config.type](node, kind, parsed_condition.type, parsed_config)
    threshold = parse_threshold(threshold_configuration) if threshold_configuration is not None else None
    if threshold and parsed_condition.type == ABSOLUTE_VALUE and threshold.type != "absolute":
        raise AlertConfigError("Absolute value alerts require an absolute threshold, but a percentage threshold was configured")
    # The ongoing interval is still filling up, so only "went above" can be decided early.
    if (threshold and isinstance(parsed_config, TrendsAlertConfig) and parsed_config.check_ongoing_interval
            and parsed_condition.type in (ABSOLUTE_VALUE, RELATIVE_INCREASE)):
        if not threshold.bounds or threshold.bounds.upper is None:
            raise AlertConfigError(
                f"check_ongoing_interval is only supported for alert condition {parsed_condition.type} "
                "when upper threshold is specified"
            )
    return AlertSetup(node, parsed_condition.type, parsed_config, threshold)


def _check_trends(node, kind, condition: str, config: TrendsAlertConfig) -> None:
    if kind != "TrendsQuery":
        raise AlertConfigError(f"Alert's insight query kind '{kind}' is not supported (only TrendsQuery)")
    if condition != ABSOLUTE_VALUE and is_non_time_series(node):
        raise AlertConfigError(f"Relative alert condition '{condition}' is not compatible with non time series trends")
    result_count = trends_result_count(node)
    if config.series_index >= result_count:
        raise AlertConfigError(f"series_index {config.series_index} is out of range (query has {result_count} series)")


def funnel_viz(funnels_query: dict) -> str | None:
    funnels_filter = funnels_query.get("funnelsFilter") or {}
    return funnels_filter.get("funnelVizType") if isinstance(funnels_filter, dict) else None


def _check_funnels(node, kind, condition: str, config: FunnelsAlertConfig) -> None:
    if kind != "FunnelsQuery":
        raise AlertConfigError(f"Funnel alert config requires a FunnelsQuery insight, got '{kind}'")
    viz = funnel_viz(node)
    # Steps and trends funnels have a conversion rate; time to convert (a duration) has none.
    if viz not in (None, "steps", "trends"):
        raise AlertConfigError(f"Funnel alerts aren't supported for the '{viz}' visualization.")
    if viz == "trends":
        return  # the whole funnel's rate per period: funnel_step and metric do not apply
    # A steps funnel has one conversion rate and no earlier period to compare it with.
    if condition != ABSOLUTE_VALUE:
        raise AlertConfigError("This funnel only supports absolute value conditions")
    steps = len(node.get("series") or [])
    step = config.funnel_step if config.funnel_step is not None else steps - 1
    if step >= steps:
        raise AlertConfigError(f"funnel_step {step} is out of range (funnel has {steps} steps).")
    if config.metric == "conversion_from_previous" and step == 0:
        raise AlertConfigError(
            "conversion_from_previous is undefined at the first step (there is no prior step); "
            "use conversion_from_start instead."
        )


def _check_hogql(node, kind, condition: str, config: HogQLAlertConfig) -> None:
    if kind != "HogQLQuery":
        raise AlertConfigError(f"SQL alert config requires a HogQLQuery insight, got '{kind}'")
    # Rows are entities in any_row mode, not a time axis: a relative change means nothing there.
    if config.evaluation == "any_row" and condition != ABSOLUTE_VALUE:
        raise AlertConfigError("Any-row SQL alerts only support absolute value conditions")


# --- schedule restriction (quiet hours) --------------------------------------------------------------

MAX_BLOCKED_WINDOWS = 5
MIN_BLOCKED_MINUTES = 30
DAY_MINUTES = 24 * 60


class BlockedWindow(_Strict):
    start: str
    end: str


class ScheduleRestriction(_Strict):
    blocked_windows: list[BlockedWindow]


def _minutes(value: str) -> int:
    hours, _, minutes = value.partition(":")
    if len(value) != 5 or not (hours.isdigit() and minutes.isdigit()) or int(hours) > 23 or int(minutes) > 59:
        raise AlertConfigError(f"Invalid schedule_restriction: '{value}' is not a time of day as HH:MM")
    return int(hours) * 60 + int(minutes)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def blocked_spans(restriction: dict | None) -> list[tuple[int, int]]:
    """The blocked [start, end) minutes of the local day, a window past midnight split in two."""
    spans = []
    for window in (restriction or {}).get("blocked_windows") or []:
        start, end = _minutes(window["start"]), _minutes(window["end"])
        spans += [(start, end)] if start < end else [(start, DAY_MINUTES), (0, end)]
    return [span for span in spans if span[0] < span[1]]


def normalize_schedule_restriction(value) -> dict | None:
    """`{"blocked_windows": [{start, end}]}` with overlapping windows merged and sorted; None clears it.

    Each window is half-open [start, end) in the project's timezone, spans at least 30 minutes and
    may run past midnight (end before start). AlertConfigError names the problem.
    """
    if value is None:
        return None
    try:
        parsed = ScheduleRestriction.model_validate(value)
    except ValidationError as error:
        raise AlertConfigError(f"Invalid schedule_restriction: {describe_errors(error)}") from None
    if len(parsed.blocked_windows) > MAX_BLOCKED_WINDOWS:
        raise AlertConfigError(f"Invalid schedule_restriction: at most {MAX_BLOCKED_WINDOWS} blocked windows are allowed")
    for window in parsed.blocked_windows:
        if (_minutes(window.end) - _minutes(window.start)) % DAY_MINUTES < MIN_BLOCKED_MINUTES:
            raise AlertConfigError(
                f"Invalid schedule_restriction: the window {window.start}-{window.end} must span at least {MIN_BLOCKED_MINUTES} minutes"
            )
    merged: list[list[int]] = []
    for start, end in sorted(blocked_spans(parsed.model_dump())):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return {"blocked_windows": [{"start": _hhmm(start), "end": _hhmm(end)} for start, end in merged]}


def blocked_until(restriction: dict | None, local_minute: int) -> int | None:
    """The local minute of the day (possibly past midnight, i.e. >= 1440) when the blocked window
    containing `local_minute` ends, or None when checks may run now."""
    spans = blocked_spans(restriction)
    for start, end in spans:
        if start <= local_minute < end:
            if end == DAY_MINUTES:  # runs on past midnight when another window starts at 00:00
                continuation = next((later for begin, later in spans if begin == 0), 0)
                return DAY_MINUTES + continuation
            return end
    return None
