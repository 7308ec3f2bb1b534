"""Computing what an export holds: SQL and events queries with the export's row caps."""
from queries.api import ExecutionMode, LimitContext, QueryTimeout, execute_query

TABLE_KINDS = ("HogQLQuery", "EventsQuery")  # kinds whose rows are capped by the limit context


class StillComputing(Exception):
    """The result is not ready within the request: finish the export in the background."""


def error_message(detail) -> str:
    """The first message of an API error's detail (a string, list or dict)."""
    while isinstance(detail, (list, dict)) and detail:
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    return str(detail)


def export_fields(team, query: dict, user, *, timeout=None, insight_id=None, dashboard_id=None) -> dict:
    """`result` and `columns` of a query computed for an export: SQL and events queries get the
    export's row caps (queries.limit_context). StillComputing past the timeout."""
    try:
        response = execute_query(team, query, refresh=ExecutionMode.BLOCKING, user=user, timeout=timeout, insight_id=insight_id,
                                 dashboard_id=dashboard_id, limit_context=LimitContext.EXPORT)
    except QueryTimeout:
        raise StillComputing() from None
    return {"result": response.get("results"), "columns": response.get("columns")}
