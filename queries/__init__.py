"""The query engine: query schema, runners, SQL per database, result cache, refresh modes, async jobs.

Public API (see queries.api): validate_query, execute_query, cancel_query, get_query_status,
resolve_refresh, ExecutionMode, apply_dashboard_filters, apply_dashboard_variables, UnsupportedQuery,
QueryTimeout. They are importable from `queries` directly; the import is lazy so that loading the app
does not load its models early.
"""
_PUBLIC = {
    "validate_query", "execute_query", "cancel_query", "get_query_status", "resolve_refresh", "ExecutionMode",
    "apply_dashboard_filters", "apply_dashboard_variables", "UnsupportedQuery", "QueryTimeout",
}


def __getattr__(name):
    if name in _PUBLIC:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'queries' has no attribute {name!r}")
