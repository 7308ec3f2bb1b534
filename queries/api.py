"""The query engine's public API. Other apps call only these functions.

validate_query(query)
    Full validation of any supported query node (insights, SQL, event lists, wrappers).
    Raises rest_framework ParseError (400 `parse_error`) whose detail is the validation message.
    Unknown extra keys are allowed (callers store the query as sent).

execute_query(team, query, *, refresh="force_cache", user=None, insight_id=None,
              dashboard_id=None, client_query_id=None, timeout=None) -> dict
    Runs a query node, wrapper nodes included (InsightVizNode, DataVisualizationNode,
    DataTableNode: their `source` is computed), under one of the seven refresh modes
    (`refresh` may also be True/False or a client string: see resolve_refresh).
    Returns PostHog's response dicts:
      - computed or cached: the runner's body (`results`, `hasMore`, `hogql`, `modifiers`,
        `error`, `resolved_date_range`, ...) plus `is_cached`, `last_refresh`,
        `next_allowed_client_refresh`, `cache_target_age`, `cache_key`, `timezone`,
        `query_status` (the running async job for this query, or None);
      - cache miss without computing (force_cache, async, lazy_async):
        {"cache_key", "query_status"};
      - force_async: {"query_status"}.
    Keys a response lacks (e.g. `columns`, `types` for trends) mean null.
    Raises ParseError (invalid query) or ValidationError (unsupported kind/feature, bad
    formula, invalid regex...: 400 with a clear message), QueryTimeout (504) after `timeout`
    seconds when computing (default QUERY_TIMEOUT_SECONDS).

cancel_query(team, query_id) -> str
    Cancels the async job with that id (a client_query_id or a cache key); returns a message.

get_query_status(team, query_id) -> dict
    The async job's query_status; NotFound (404) when unknown.

resolve_refresh(value) -> ExecutionMode
    The one parser of a client's `refresh` (query string or body), as PostHog reads it:
    true/1/yes/'' -> force_blocking; a mode's exact name -> that mode; anything else,
    unknown values included, -> force_cache (never an error).

ExecutionMode
    The seven modes (a StrEnum whose values are the `refresh` strings).

apply_dashboard_filters(query, filters) -> dict
    The query (wrapper nodes included) with dashboard filters applied, as PostHog does for
    `filters_override` and dashboard tiles: `date_from`/`date_to` replace the date range,
    `properties` are ANDed to the query's own, `breakdown_filter` replaces its breakdown.

validate_dashboard_filters(filters) -> None
    ValidationError (400) when `filters` is not a dashboard filter object (dates as strings,
    `properties` a list of property filters, `breakdown_filter` a breakdown filter).

filters_to_query(filters) -> dict
    Legacy insight `filters` (no `query`) as the equivalent InsightVizNode (PostHog's
    `filter_to_query`). Raises UnconvertibleFilters (a 400 ValidationError) when they cannot be.

apply_dashboard_variables(query, variables) -> dict
    The query with `{variable id: {value, isNull}}` applied to the SQL variables it declares
    (`variables_override`; an entry under another id applies through its `code_name`); other
    kinds and undeclared variables are left alone. When computed, a SQL query's variables
    resolve through the team's saved insight variables (queries/variables.py).
"""
from typing import Any, Optional

from . import execution, jobs
from .execution import apply_dashboard_filters, apply_dashboard_variables, source_of, validate_dashboard_filters  # noqa: F401
from .legacy import QUERY_KINDS as LEGACY_INSIGHT_TO_QUERY_KIND, UnconvertibleFilters, filters_to_query  # noqa: F401
from .limit_context import LimitContext  # noqa: F401
from .modes import ExecutionMode, resolve_refresh  # noqa: F401
from .runners.base import QueryTimeout, UnsupportedQuery  # noqa: F401


def validate_query(query: Any) -> None:
    execution.parse_query(query)


def execute_query(team, query: dict, *, refresh: Any = ExecutionMode.FORCE_CACHE, user=None, insight_id=None, dashboard_id=None,
                  client_query_id=None, timeout: Optional[float] = None, limit_context: LimitContext = LimitContext.QUERY) -> dict:
    """`limit_context`: the row caps of SQL and events queries (queries.limit_context); EXPORT is
    computed blocking only (its jobs are the export's own, never the async query jobs)."""
    return execution.execute(team, query, resolve_refresh(refresh), user=user, query_id=client_query_id,
                             insight_id=insight_id, dashboard_id=dashboard_id, timeout=timeout, limit_context=limit_context)


def cancel_query(team, query_id: str) -> str:
    return jobs.cancel(team.id, query_id)


def get_query_status(team, query_id: str) -> dict:
    return jobs.get_status(team.id, query_id)
