"""The one seam between saved insights and the query engine.

`insight_results` returns every result-related field of the insight serializer for a whole page
of insights at once, through `queries.api.execute_query` under the client's refresh mode.
"""
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rest_framework.exceptions import APIException

from queries import api as queries_api
from queries.api import ExecutionMode

logger = logging.getLogger(__name__)

# Messages of failures that are not the engine's verdict on the query: the exception's own text
# (SQL, parameters, paths) is logged, never sent.
NESTED_TOO_DEEPLY = "The query is nested too deeply to be computed."
CALCULATION_FAILED = "Computing this insight failed. The error has been logged."

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
class DashboardContext:
    """Retrieve with `from_dashboard` and/or overrides: the tile's dashboard and the client's overrides."""

    dashboard: object = None
    filters_override: dict | None = None
    variables_override: dict | None = None
    tile_filters: dict | None = None  # the tile's `filters_overrides`, layered over the dashboard's

    @property
    def filters(self) -> dict:
        """The dashboard's filters with `filters_override` merged over them, key by key (as PostHog),
        then the tile's own filters on top."""
        base = {**(getattr(self.dashboard, "filters", None) or {}), **(self.filters_override or {})}
        return layered_filters(base, self.tile_filters) if self.tile_filters else base

    @property
    def variables(self) -> dict:
        return {**(getattr(self.dashboard, "variables", None) or {}), **(self.variables_override or {})}

    @property
    def dashboard_id(self):
        return getattr(self.dashboard, "id", None)

    def apply(self, query: dict | None) -> dict | None:
        """The query as computed and returned in this context: filters, then variables, applied."""
        if not query:
            return query
        return queries_api.apply_dashboard_variables(queries_api.apply_dashboard_filters(query, self.filters), self.variables)

    def returned_query(self, query: dict | None) -> dict | None:
        """The `query` a retrieve returns: as computed, or as saved when the dashboard's own stored
        filters cannot be applied (the result then carries that error in `query_status`)."""
        try:
            return self.apply(query)
        except APIException:
            return query


DATE_RANGE_KEYS = ("date_from", "date_to", "explicitDate")


def layered_filters(base: dict, tile: dict) -> dict:
    """Tile filters over dashboard filters, by priority (PostHog's newest): the tile's date range
    replaces the dashboard's as one unit, property lists stack, any other key set by the tile wins."""
    merged = dict(base)
    if tile.get("date_from") is not None or tile.get("date_to") is not None:
        merged = {key: value for key, value in merged.items() if key not in DATE_RANGE_KEYS}
        merged.update({key: tile[key] for key in DATE_RANGE_KEYS if key in tile})
    for key, value in tile.items():
        if key == "properties":
            merged["properties"] = [*(base.get("properties") or []), *(value or [])]
        elif key not in DATE_RANGE_KEYS and value is not None:
            merged[key] = value
    return merged


def insight_results(insights: Iterable, team, refresh: ExecutionMode, user, dashboard: DashboardContext | None = None,
                    contexts: Mapping[int, DashboardContext] | None = None) -> dict:
    """{insight id: {result field: value}} for a page of insights, in one call; `contexts` gives
    insights their own dashboard context (a dashboard's tiles), `dashboard` is everyone else's.

    Computing one insight never fails the call: whatever goes wrong becomes that insight's
    `query_status.error` (PostHog's newest behaviour), and the failure is logged with its id.
    """
    contexts = contexts or {}
    return {insight.id: _insight_result(insight, team, refresh, user, contexts.get(insight.id, dashboard)) for insight in insights}


def _insight_result(insight, team, refresh: ExecutionMode, user, dashboard: DashboardContext | None) -> dict:
    fields = {**dict.fromkeys(RESULT_FIELDS), "is_cached": False}
    if not has_definition(insight):
        return fields
    dashboard_id = dashboard.dashboard_id if dashboard else None
    try:
        query = computed_query(insight)
        query = dashboard.apply(query) if dashboard else query
        response = queries_api.execute_query(team, query, refresh=refresh, user=user, insight_id=insight.id, dashboard_id=dashboard_id)
    except APIException as error:  # the engine refused the query: its reason is the client's to read
        logger.info("Insight %s: query refused: %s", insight.id, error.detail)
        fields["query_status"] = _failed(team, insight, dashboard_id, _message(error.detail), getattr(error, "default_code", "error"))
        return fields
    except RecursionError:
        logger.warning("Insight %s: query nested too deeply", insight.id)
        fields["query_status"] = _failed(team, insight, dashboard_id, NESTED_TOO_DEEPLY, "query_too_complex")
        return fields
    except Exception:  # noqa: BLE001  (any engine failure stays this insight's, never the page's)
        logger.exception("Insight %s: computing its results failed", insight.id)
        fields["query_status"] = _failed(team, insight, dashboard_id, CALCULATION_FAILED, "calculation_error")
        return fields
    fields.update({key: response.get(key) for key in ("hasMore", "columns", "types", "hogql", "last_refresh", "cache_target_age",
                                                       "next_allowed_client_refresh", "query_status", "resolved_date_range", "timezone")})
    fields["result"] = response.get("results")
    fields["is_cached"] = bool(response.get("is_cached"))
    fields["filters_hash"] = response.get("cache_key")
    return fields


def has_definition(insight) -> bool:
    """Whether the insight has anything to compute: a query, or legacy filters."""
    return bool(insight.query or insight.filters)


def shown_query(insight) -> dict | None:
    """The `query` an insight shows: its own, or the one its legacy `filters` convert to (as
    PostHog's `query_from_filters`); None when it has neither or the filters cannot be converted."""
    if insight.query is not None or not insight.filters:
        return insight.query
    cached = getattr(insight, "_shown_query", False)
    if cached is False:
        try:
            cached = queries_api.filters_to_query(insight.filters)
        except APIException:
            cached = None
        insight._shown_query = cached  # the serializer asks for both `filters` and `query`
    return cached


def computed_query(insight) -> dict:
    """The query an insight computes: its own, or the one its legacy `filters` convert to (the
    stored `filters` stay as they are). UnconvertibleFilters (400) when they cannot be converted."""
    return insight.query or queries_api.filters_to_query(insight.filters)


def _failed(team, insight, dashboard_id, message: str, code: str) -> dict:
    return {
        "id": None,
        "team_id": team.id,
        "insight_id": insight.id,
        "dashboard_id": dashboard_id,
        "complete": True,
        "error": True,
        "error_message": message,
        "error_code": code,
    }


def _message(detail) -> str:
    while isinstance(detail, (list, dict)) and detail:
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    return str(detail)
