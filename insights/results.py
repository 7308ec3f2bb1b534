"""The one seam between saved insights and the query engine.

`insight_results` returns every result-related field of the insight serializer for a whole page
of insights at once. It does not compute anything yet: each insight reads as a cache miss until
the query engine is wired in here.
"""
from collections.abc import Iterable
from dataclasses import dataclass

from rest_framework.exceptions import ValidationError

EXECUTION_MODES = (
    "async",
    "async_except_on_cache_miss",
    "blocking",
    "force_async",
    "force_blocking",
    "force_cache",
    "lazy_async",
)
DEFAULT_EXECUTION_MODE = "force_cache"
_TRUE = {"true", "1", "yes", ""}
_FALSE = {"false", "0", "no"}

RESULT_FIELDS = (
    "result",
    "hasMore",
    "columns",
    "last_refresh",
    "cache_target_age",
    "next_allowed_client_refresh",
    "is_cached",
    "query_status",
    "hogql",
    "types",
    "resolved_date_range",
    "timezone",
    "filters_hash",
)


@dataclass(frozen=True)
class Refresh:
    """The client's `refresh` request: `requested` is false when absent or falsy."""

    mode: str = DEFAULT_EXECUTION_MODE
    requested: bool = False


@dataclass(frozen=True)
class DashboardContext:
    """Retrieve with `from_dashboard`: the tile's dashboard and the client's overrides."""

    dashboard: object = None
    filters_override: dict | None = None
    variables_override: dict | None = None


def parse_refresh(value) -> Refresh:
    """`refresh` from the query string (or body): booleans, or one of the execution modes."""
    if value is None or value is False:
        return Refresh()
    if value is True:
        return Refresh("force_blocking", True)
    text = str(value)
    if text.lower() in _TRUE:
        return Refresh("force_blocking", True)
    if text.lower() in _FALSE:
        return Refresh()
    if text in EXECUTION_MODES:
        return Refresh(text, True)
    raise ValidationError(
        {"refresh": [f"'{text}' is not a valid refresh value. Use true, false or one of: {', '.join(EXECUTION_MODES)}."]}
    )


def insight_results(insights: Iterable, team, refresh: Refresh, user, dashboard: DashboardContext | None = None) -> dict:
    """{insight id: {result field: value}} for a page of insights, in one call."""
    return {insight.id: {**dict.fromkeys(RESULT_FIELDS), "is_cached": False} for insight in insights}
