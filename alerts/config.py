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


def parse_trends_config(config) -> TrendsAlertConfig:
    if not isinstance(config, dict) or config.get("type") != "TrendsAlertConfig":
        raise AlertConfigError(f"Unsupported alert config type: {config}")
    try:
        return TrendsAlertConfig.model_validate(config)
    except ValidationError as error:
        raise AlertConfigError(f"Alert has invalid TrendsAlertConfig: {describe_errors(error)}") from None


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
    query: dict  # the TrendsQuery node
    condition: str
    config: TrendsAlertConfig
    threshold: InsightThreshold | None


def validate_alert_setup(query, condition, config, threshold_configuration) -> AlertSetup:
    """Check that condition, config and threshold fit together and fit the insight's query.

    Raises AlertConfigError with a client-facing message.
    """
    parsed_condition = parse_condition(condition)
    parsed_config = parse_trends_config(config)
    node = innermost_query(query)
    kind = node.get("kind") if node else None
    if kind != "TrendsQuery":
        raise AlertConfigError(f"Alert's insight query kind '{kind}' is not supported (only TrendsQuery)")
    if parsed_condition.type != ABSOLUTE_VALUE and is_non_time_series(node):
        raise AlertConfigError(
            f"Relative alert condition '{parsed_condition.type}' is not compatible with non time series trends"
        )
    result_count = trends_result_count(node)
    if parsed_config.series_index >= result_count:
        raise AlertConfigError(
            f"series_index {parsed_config.series_index} is out of range (query has {result_count} series)"
        )
    if threshold_configuration is None:
        return AlertSetup(node, parsed_condition.type, parsed_config, None)
    threshold = parse_threshold(threshold_configuration)
    if parsed_condition.type == ABSOLUTE_VALUE and threshold.type != "absolute":
        raise AlertConfigError("Absolute value alerts require an absolute threshold, but a percentage threshold was configured")
    # The ongoing interval is still filling up, so only "went above" can be decided early.
    if parsed_config.check_ongoing_interval and parsed_condition.type in (ABSOLUTE_VALUE, RELATIVE_INCREASE):
        if not threshold.bounds or threshold.bounds.upper is None:
            raise AlertConfigError(
                f"check_ongoing_interval is only supported for alert condition {parsed_condition.type} "
                "when upper threshold is specified"
            )
    return AlertSetup(node, parsed_condition.type, parsed_config, threshold)
