"""The one seam between saved insights and the query engine.

`insight_results` returns every result-related field of the insight serializer for a whole page
of insights at once, through `queries.api.execute_query` under the client's refresh mode.
"""
from collections.abc import Iterable
from dataclasses import dataclass

from rest_framework.exceptions import APIException, ValidationError

from queries import api as queries_api

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
    dashboard_id = getattr(dashboard.dashboard, "id", None) if dashboard else None
    return {insight.id: _insight_result(insight, team, refresh, user, dashboard_id) for insight in insights}


def _insight_result(insight, team, refresh: Refresh, user, dashboard_id) -> dict:
    fields = {**dict.fromkeys(RESULT_FIELDS), "is_cached": False}
    if not insight.query:
        return fields  # legacy filters-only insights are not computed
    try:
        response = queries_api.execute_query(
            team, insight.query, refresh=refresh.mode, user=user, insight_id=insight.id, dashboard_id=dashboard_id
        )
    except APIException as error:
        # A query the engine refuses degrades to 200 with the reason in query_status (PostHog's newest behaviour).
        fields["query_status"] = {
            "id": None,
            "team_id": team.id,
            "insight_id": insight.id,
            "dashboard_id": dashboard_id,
            "complete": True,
            "error": True,
            "error_message": _message(error.detail),
            "error_code": getattr(error, "default_code", "error"),
        }
        return fields
    fields.update({key: response.get(key) for key in ("hasMore", "columns", "types", "hogql", "last_refresh", "cache_target_age",
                                                       "next_allowed_client_refresh", "query_status", "resolved_date_range", "timezone")})
    fields["result"] = response.get("results")
    fields["is_cached"] = bool(response.get("is_cached"))
    fields["filters_hash"] = response.get("cache_key")
    return fields


def _message(detail) -> str:
    while isinstance(detail, (list, dict)) and detail:
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    return str(detail)
