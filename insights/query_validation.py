"""Structural validation of an insight's `query` node.

The one entry point, `validate_query`, checks the node kinds an insight may store and the
fields each kind cannot do without. It is the place to plug in the query engine's full schema.
"""
from rest_framework.exceptions import ParseError

from queries import api as queries_api

INSIGHT_QUERY_KINDS = frozenset(
    {"TrendsQuery", "FunnelsQuery", "RetentionQuery", "PathsQuery", "StickinessQuery", "LifecycleQuery"}
)
SERIES_NODE_KINDS = frozenset({"EventsNode", "ActionsNode", "DataWarehouseNode"})
DATA_TABLE_SOURCE_KINDS = frozenset({"EventsQuery", "HogQLQuery", "ActorsQuery", "GroupsQuery"}) | INSIGHT_QUERY_KINDS
# Insight queries whose filter object is required by the schema.
REQUIRED_FILTERS = {"RetentionQuery": "retentionFilter", "PathsQuery": "pathsFilter"}
SERIES_QUERY_KINDS = frozenset({"TrendsQuery", "FunnelsQuery", "StickinessQuery", "LifecycleQuery"})


class QueryValidationError(ParseError):
    """Answered like PostHog's schema check: 400 `parse_error` with the reason as `detail`."""


def validate_query(query: dict) -> None:
    """Raise QueryValidationError unless `query` is a node an insight can be saved with."""
    kind = _kind(query, "query")
    if kind == "InsightVizNode":
        source = _source(query)
        if _kind(source, "source") not in INSIGHT_QUERY_KINDS:
            raise QueryValidationError(f"source: InsightVizNode cannot wrap a {source['kind']}")
        _validate_insight_query(source, "source")
    elif kind == "DataVisualizationNode":
        source = _source(query)
        if _kind(source, "source") != "HogQLQuery":
            raise QueryValidationError(f"source: DataVisualizationNode cannot wrap a {source['kind']}")
        _validate_hogql_query(source, "source")
    elif kind == "DataTableNode":
        source = _source(query)
        source_kind = _kind(source, "source")
        if source_kind not in DATA_TABLE_SOURCE_KINDS:
            raise QueryValidationError(f"source: DataTableNode cannot wrap a {source_kind}")
        _validate_data_node(source, "source")
    elif kind == "HogQLQuery":
        _validate_hogql_query(query, "query")
    elif kind in INSIGHT_QUERY_KINDS:
        _validate_insight_query(query, "query")
    else:
        raise QueryValidationError(f"kind: unsupported query kind '{kind}'")
    # The full schema of the query engine (field types, enums, nested filters).
    queries_api.validate_query(query)


def wrap_for_saving(query: dict) -> dict:
    """MCP clients may send a bare HogQL or insight query; saved insights hold wrapper nodes."""
    kind = query.get("kind")
    if kind == "HogQLQuery":
        return {"kind": "DataVisualizationNode", "source": query}
    if kind in INSIGHT_QUERY_KINDS:
        return {"kind": "InsightVizNode", "source": query}
    return query


def _kind(node, path: str) -> str:
    if not isinstance(node, dict):
        raise QueryValidationError(f"{path}: must be an object")
    kind = node.get("kind")
    if not isinstance(kind, str) or not kind:
        raise QueryValidationError(f"{path}.kind: field required")
    return kind


def _source(wrapper: dict) -> dict:
    if "source" not in wrapper:
        raise QueryValidationError("source: field required")
    return wrapper["source"]


def _validate_data_node(node: dict, path: str) -> None:
    kind = node["kind"]
    if kind == "HogQLQuery":
        _validate_hogql_query(node, path)
    elif kind in INSIGHT_QUERY_KINDS:
        _validate_insight_query(node, path)
    elif kind == "EventsQuery":
        select = node.get("select")
        if not isinstance(select, list) or not all(isinstance(item, str) for item in select):
            raise QueryValidationError(f"{path}.select: must be a list of strings")


def _validate_hogql_query(node: dict, path: str) -> None:
    if not isinstance(node.get("query"), str):
        raise QueryValidationError(f"{path}.query: must be a string")
    _optional_object(node, "filters", path)
    _optional_object(node, "variables", path)


def _validate_insight_query(node: dict, path: str) -> None:
    kind = node["kind"]
    if kind in SERIES_QUERY_KINDS:
        series = node.get("series")
        if not isinstance(series, list):
            raise QueryValidationError(f"{path}.series: must be a list")
        for index, entity in enumerate(series):
            entity_kind = _kind(entity, f"{path}.series.{index}")
            if entity_kind not in SERIES_NODE_KINDS:
                raise QueryValidationError(f"{path}.series.{index}.kind: unsupported series kind '{entity_kind}'")
    required_filter = REQUIRED_FILTERS.get(kind)
    if required_filter and not isinstance(node.get(required_filter), dict):
        raise QueryValidationError(f"{path}.{required_filter}: must be an object")
    _optional_object(node, "dateRange", path)
    for key in ("trendsFilter", "funnelsFilter", "stickinessFilter", "lifecycleFilter", "breakdownFilter"):
        _optional_object(node, key, path)
    properties = node.get("properties")
    if properties is not None and not isinstance(properties, (list, dict)):
        raise QueryValidationError(f"{path}.properties: must be a list or an object")


def _optional_object(node: dict, key: str, path: str) -> None:
    value = node.get(key)
    if value is not None and not isinstance(value, dict):
        raise QueryValidationError(f"{path}.{key}: must be an object")
