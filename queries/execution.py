"""The seven execution modes (queries.modes.ExecutionMode) over any runner, the cache and async jobs."""
import copy
from typing import Any, Optional

from pydantic import ValidationError as PydanticValidationError
from rest_framework.exceptions import ParseError, ValidationError

from . import cache, clock, jobs
from .limit_context import LimitContext
from .modes import ExecutionMode
from .runners import RUNNERS
from .runners.base import QueryRunner, UnsupportedQuery, response_value
from .schema import WRAPPER_KINDS, DashboardFilter, QuerySchemaRoot
from .variables import resolve_query_variables

def parse_query(query: Any):
    """The validated node (pydantic), or ParseError with the validation message."""
    try:
        return QuerySchemaRoot.model_validate(query).root
    except PydanticValidationError as error:
        raise ParseError(str(error)) from None


def source_of(query: Any) -> dict:
    """The node a runner computes: wrapper nodes (InsightVizNode, DataVisualizationNode...) hold it in `source`.

    Tolerant of what clients store: nested wrappers are unwrapped, and anything but an object is `{}`.
    """
    while isinstance(query, dict) and query.get("kind") in WRAPPER_KINDS and isinstance(query.get("source"), dict):
        query = query["source"]
    return query if isinstance(query, dict) else {}


def validate_dashboard_filters(filters: Any) -> None:
    """ValidationError (400) naming the problem when `filters` is not a dashboard filter object."""
    try:
        DashboardFilter.model_validate(filters)
    except PydanticValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise ValidationError(f"Invalid dashboard filters: {where + ': ' if where else ''}{problem['msg']}") from None


def apply_dashboard_filters(query: dict, filters: Optional[dict]) -> dict:
    """The query with dashboard filters applied (PostHog's `filters_override`): the date range
    replaces the query's, properties are ANDed to its own, a breakdown filter replaces its own.
    ValidationError when `filters` is not a dashboard filter object."""
    if not filters:
        return query
    validate_dashboard_filters(filters)
    if query.get("kind") in WRAPPER_KINDS and isinstance(query.get("source"), dict):
        return {**query, "source": apply_dashboard_filters(query["source"], filters)}
    query = copy.deepcopy(query)
    target = query.setdefault("filters", {}) if query.get("kind") == "HogQLQuery" else query
    properties = filters.get("properties")
    if properties:
        own = target.get("properties")
        if query.get("kind") == "HogQLQuery":
            target["properties"] = [*(own or []), *properties]
        elif own:
            own_group = own if isinstance(own, dict) else {"type": "AND", "values": own}
            target["properties"] = {"type": "AND", "values": [own_group, {"type": "AND", "values": properties}]}
        else:
            target["properties"] = properties
    if filters.get("date_from") or filters.get("date_to"):
        target["dateRange"] = {**(target.get("dateRange") or {}), "date_from": filters.get("date_from"), "date_to": filters.get("date_to")}
        if filters.get("date_from") == "all" and isinstance(query.get("compareFilter"), dict):
            query["compareFilter"]["compare"] = False
    if filters.get("breakdown_filter") and "series" in query:
        query["breakdownFilter"] = filters["breakdown_filter"]
    return query


def apply_dashboard_variables(query: dict, variables: Optional[dict]) -> dict:
    """The query with dashboard variable values applied (PostHog's `variables_override`): SQL queries
    only, and only variables the query already declares; an entry takes the value (and `isNull`)
    given for its id and keeps its own code name. An override saved under an older id of a variable
    (recreated since) still applies through its `code_name`."""
    if not variables or not isinstance(query, dict):
        return query
    if query.get("kind") in WRAPPER_KINDS and isinstance(query.get("source"), dict):
        return {**query, "source": apply_dashboard_variables(query["source"], variables)}
    own = query.get("variables")
    if query.get("kind") != "HogQLQuery" or not isinstance(own, dict):
        return query
    by_code_name = {override["code_name"]: override for override in variables.values()
                    if isinstance(override, dict) and isinstance(override.get("code_name"), str)}
    applied = {}
    for variable_id, entry in own.items():
        override = variables.get(variable_id)
        if override is None and isinstance(entry, dict):
            override = by_code_name.get(entry.get("code_name"))
        if isinstance(entry, dict) and isinstance(override, dict):
            entry = {"variableId": variable_id, "code_name": entry.get("code_name"), "value": override.get("value"),
                     "isNull": override.get("isNull")}
        applied[variable_id] = entry
    return {**query, "variables": applied}


def with_saved_variables(team, query):
    """The query with its SQL `variables` resolved through the team's saved insight variables."""
    if not isinstance(query, dict):
        return query
    if query.get("kind") in WRAPPER_KINDS and isinstance(query.get("source"), dict):
        return {**query, "source": with_saved_variables(team, query["source"])}
    if query.get("kind") != "HogQLQuery" or not isinstance(query.get("variables"), dict):
        return query
    return {**query, "variables": resolve_query_variables(team, query["variables"])}


def build_runner(team, query: dict) -> QueryRunner:
    node = parse_query(with_saved_variables(team, query))
    if node.kind in WRAPPER_KINDS:
        node = node.source
    runner_class = RUNNERS.get(node.kind)
    if runner_class is None:
        raise UnsupportedQuery(f"Queries of kind {node.kind} are not supported yet.")
    return runner_class(node, team)


def compute_response(runner: QueryRunner, cache_key: str) -> dict:
    last_refresh = clock.now()
    body = runner.calculate()
    response = {
        **body,
        "is_cached": False,
        "last_refresh": response_value(last_refresh),
        "next_allowed_client_refresh": response_value(last_refresh + runner.refresh_frequency()),
        "cache_target_age": response_value(cache.target_age(runner.staleness_interval(), last_refresh)),
        "cache_key": cache_key,
        "timezone": runner.team.timezone,
        "query_status": None,
    }
    if not body.get("error"):
        cache.store(cache_key, response)
    return response


def compute(team, query: dict, *, cancel_check=None, timeout: Optional[float] = None, insight_id=None, dashboard_id=None) -> dict:
    """Compute now and refresh the cache (the async worker's entry point)."""
    runner = build_runner(team, query)
    runner.cancel_check = cancel_check
    if timeout:
        runner.timeout = timeout
    return compute_response(runner, runner.cache_key())


def execute(team, query: dict, mode: ExecutionMode, **kwargs) -> dict:
    try:
        return _execute(team, query, mode, **kwargs)
    except (OverflowError, ValueError) as error:
        # Date arithmetic past year 1 or 9999 (e.g. "-10000000d") is the client's input, not our bug.
        if isinstance(error, ValueError) and "out of range" not in str(error):
            raise
        raise ValidationError("The date range is outside the supported range of dates (years 1 to 9999).") from error


def _execute(team, query: dict, mode: ExecutionMode, *, user=None, query_id=None, insight_id=None, dashboard_id=None,
             timeout: Optional[float] = None, limit_context: LimitContext = LimitContext.QUERY) -> dict:
    runner = build_runner(team, query)
    runner.limit_context = limit_context
    if timeout:
        runner.timeout = timeout
    cache_key = runner.cache_key()
    job_id = query_id or cache_key
    source = source_of(query)

    def enqueue(refresh_requested: bool) -> dict:
        running = jobs.running_status(team.id, job_id)
        if running is not None:
            return running
        return jobs.enqueue(team, source, job_id, refresh_requested=refresh_requested, user_id=getattr(user, "id", None),
                            insight_id=insight_id, dashboard_id=dashboard_id)

    if mode == ExecutionMode.FORCE_ASYNC:
        return {"query_status": enqueue(True)}

    if mode != ExecutionMode.FORCE_BLOCKING:
        cached = cache.get(cache_key)
        if cached is not None:
            cached = {**cached, "is_cached": True}
            last_refresh = cache.last_refresh_of(cached)
            interval, date_to = runner.staleness_interval(), runner.staleness_date_to()
            if not cache.is_stale(interval, date_to, last_refresh) or mode == ExecutionMode.FORCE_CACHE:
                cached["query_status"] = jobs.running_status(team.id, job_id)
                return cached
            if mode in (ExecutionMode.ASYNC, ExecutionMode.ASYNC_EXCEPT_ON_CACHE_MISS):
                cached["query_status"] = enqueue(True)
                return cached
            if mode == ExecutionMode.LAZY_ASYNC:
                if cache.is_stale(interval, date_to, last_refresh, lazy=True):
                    enqueue(False)
                cached["query_status"] = jobs.running_status(team.id, job_id)
                return cached
        elif mode == ExecutionMode.FORCE_CACHE:
            return {"cache_key": cache_key, "query_status": jobs.running_status(team.id, job_id)}
        elif mode in (ExecutionMode.ASYNC, ExecutionMode.LAZY_ASYNC):
            return {"cache_key": cache_key, "query_status": enqueue(False)}

    return compute_response(runner, cache_key)
