"""Legacy insight `filters` (the pre-query format) as the equivalent query node.

The mapping is PostHog's `filter_to_query`: the `insight` kind picks the query kind, events and
actions become series, and each legacy key lands on its query field (`date_from` ->
`dateRange.date_from`, `breakdown` -> `breakdownFilter.breakdown`, `funnel_window_days` ->
`funnelsFilter.funnelWindowInterval`, retention's `target_entity` -> `retentionFilter.targetEntity`...).
Keys the query format has no place for are dropped, as PostHog drops them.
"""
import copy
import json
from typing import Any

from rest_framework.exceptions import ParseError, ValidationError

from .execution import parse_query
from .schema import ChartDisplayType

QUERY_KINDS = {
    "TRENDS": "TrendsQuery",
    "FUNNELS": "FunnelsQuery",
    "RETENTION": "RetentionQuery",
    "PATHS": "PathsQuery",
    "STICKINESS": "StickinessQuery",
    "LIFECYCLE": "LifecycleQuery",
}
# Stickiness counts actors: any other math falls back to `dau` (as PostHog's conversion does).
ACTORS_ONLY_MATH = {"dau", "weekly_active", "monthly_active", "unique_group", "hogql"}
DISPLAYS = {display.value for display in ChartDisplayType}
TRUE_STRINGS = {"true", "1", "yes"}


class UnconvertibleFilters(ValidationError):
    default_detail = "This insight's legacy filters cannot be converted to a query."
    default_code = "unconvertible_filters"


def filters_to_query(filters: dict) -> dict:
    """`{"kind": "InsightVizNode", "source": <query>, "full": true}` for legacy `filters`.

    UnconvertibleFilters (a 400 ValidationError) names what cannot be converted.
    """
    if not isinstance(filters, dict):
        raise UnconvertibleFilters("Legacy filters must be an object.")
    try:
        source = _source(copy.deepcopy(filters))
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise UnconvertibleFilters(f"This insight's legacy filters cannot be converted to a query: {error}") from None
    query = {"kind": "InsightVizNode", "source": source, "full": True}
    try:
        parse_query(query)
    except ParseError as error:
        raise UnconvertibleFilters(f"This insight's legacy filters cannot be converted to a query: {error.detail}") from None
    return query


def _source(filters: dict) -> dict:
    insight = _insight(filters)
    parts = (
        _date_range, _interval, _series, _sampling_factor, _filter_test_accounts, _properties, _breakdown_filter,
        _compare_filter, _aggregation_group, _insight_filter,
    )
    source = {"kind": QUERY_KINDS[insight]}
    for part in parts:
        source.update(part(filters, insight))
    return source


def _insight(filters: dict) -> str:
    insight = filters.get("insight") or "TRENDS"
    if insight == "SESSIONS":  # sessions insights were trends of session math
        return "TRENDS"
    if insight not in QUERY_KINDS:
        raise ValueError(f"unknown insight type {insight!r}")
    return insight


# --- helpers --------------------------------------------------------------------------------------


def _compact(values: dict) -> dict:
    return {key: value for key, value in values.items() if value is not None}


def _bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    return str(value).lower() in TRUE_STRINGS


def _json(value: Any) -> Any:
    """Older clients stored some lists and entities as JSON strings."""
    return json.loads(value) if isinstance(value, str) else value


def _display(value: Any) -> str | None:
    return value if value in DISPLAYS else None


# --- properties (PostHog's property cleaning) -------------------------------------------------------


def _is_old_style(properties: Any) -> bool:
    """`{"$browser": "Chrome"}` or `{"$browser__icontains": "Chr"}`: a single key -> value filter."""
    return isinstance(properties, dict) and len(properties) == 1 and properties.get("type") not in ("AND", "OR")


def _from_old_style(properties: dict) -> list[dict]:
    key, value = next(iter(properties.items()))
    name, _, operator = key.partition("__")
    return [{"key": name, "value": value, "operator": operator or "exact", "type": "event"}]


def _clean_property(prop: dict) -> dict:
    if not isinstance(prop, dict):
        raise ValueError(f"a property filter must be an object, not {prop!r}")
    prop = dict(prop)
    if prop.get("type") == "events":
        prop["type"] = "event"
    if prop.get("values") is not None and prop.get("value") is None:
        prop["value"] = prop.pop("values")
    if prop.get("type") in ("precalculated-cohort", "static-cohort"):
        prop["type"] = "cohort"
    if prop.get("type") == "cohort":
        prop["key"] = "id"
    takes_operator = prop.get("type") not in ("cohort", "hogql")
    if takes_operator and prop.get("operator") is None:
        prop["operator"] = "exact"
    if not takes_operator:
        prop.pop("operator", None)
    return _compact(prop)


def _clean_group(value: dict) -> dict:
    if value.get("type") in ("AND", "OR"):
        return {"type": value["type"], "values": [_clean_group(item) for item in value.get("values") or []]}
    return _clean_property(value)


def _entity_properties(properties: Any) -> list[dict] | None:
    properties = _json(properties)
    if not properties:
        return None
    if _is_old_style(properties):
        return _from_old_style(properties)
    if isinstance(properties, list):
        return [_clean_property(prop) for prop in properties]
    if isinstance(properties, dict) and properties.get("type") in ("AND", "OR"):
        return [_clean_property(prop) for prop in properties.get("values") or []]
    raise ValueError("unexpected format of entity properties")


def _properties(filters: dict, insight: str) -> dict:
    properties = _json(filters.get("properties"))
    if not properties:
        return {}
    if _is_old_style(properties):
        properties = _from_old_style(properties)
    if isinstance(properties, list):
        properties = {"type": "AND", "values": [{"type": "AND", "values": properties}]}
    if not isinstance(properties, dict):
        raise ValueError("unexpected format of properties")
    return {"properties": _clean_group(properties)}


# --- series -----------------------------------------------------------------------------------------


def _entities(filters: dict) -> list[dict]:
    entities = []
    for key, entity_type in (("actions", "actions"), ("events", "events")):
        # templates gone wrong left bare strings among the entities: skipped, as PostHog does
        entities += [{**entity, "type": entity_type} for entity in _json(filters.get(key)) or [] if not isinstance(entity, str)]
    entities.sort(key=lambda entity: entity.get("order") or -1)
    return entities


def _series_node(entity: dict, insight: str) -> dict:
    if entity["type"] == "events" and not entity.get("name"):
        entity["name"] = "All events" if entity.get("id") is None else str(entity["id"])
    node = {"name": entity.get("name"), "custom_name": entity.get("custom_name")}
    if insight != "LIFECYCLE":
        node["properties"] = _entity_properties(entity.get("properties"))
    if insight == "STICKINESS" and entity.get("math") is not None and entity["math"] not in ACTORS_ONLY_MATH:
        node["math"] = "dau"
    elif insight in ("TRENDS", "STICKINESS"):
        node.update({key: entity.get(key) for key in ("math", "math_property", "math_hogql", "math_group_type_index")})
    if entity["type"] == "actions":
        return _compact({"kind": "ActionsNode", "id": int(entity["id"]), **node})
    return _compact({"kind": "EventsNode", "event": entity.get("id"), **node})


def _series(filters: dict, insight: str) -> dict:
    if insight in ("RETENTION", "PATHS"):
        return {}
    return {"series": [_series_node(entity, insight) for entity in _entities(filters)]}


# --- query-level fields -----------------------------------------------------------------------------


def _date_range(filters: dict, insight: str) -> dict:
    date_range = _compact({"date_from": filters.get("date_from"), "date_to": filters.get("date_to"),
                           "explicitDate": _bool(filters.get("explicit_date"))})
    return {"dateRange": date_range} if date_range else {}


def _interval(filters: dict, insight: str) -> dict:
    if insight in ("RETENTION", "PATHS") or filters.get("interval") is None:
        return {}
    return {"interval": filters["interval"]}


def _sampling_factor(filters: dict, insight: str) -> dict:
    factor = filters.get("sampling_factor")
    return {"samplingFactor": float(factor)} if factor not in (None, "") else {}


def _filter_test_accounts(filters: dict, insight: str) -> dict:
    value = _bool(filters.get("filter_test_accounts"))
    return {"filterTestAccounts": value} if value is not None else {}


def _aggregation_group(filters: dict, insight: str) -> dict:
    if insight in ("STICKINESS", "LIFECYCLE") or filters.get("aggregation_group_type_index") is None:
        return {}
    return {"aggregation_group_type_index": int(filters["aggregation_group_type_index"])}


def _breakdown_filter(filters: dict, insight: str) -> dict:
    if insight not in ("TRENDS", "FUNNELS"):
        return {}
    breakdown_type, breakdown = filters.get("breakdown_type"), filters.get("breakdown")
    if breakdown_type == "undefined":  # a broken client value: a string breakdown was an event property
        if not isinstance(breakdown, str):
            return {}
        breakdown_type = "event"
    breakdown_filter = {
        "breakdown_type": breakdown_type,
        "breakdown_normalize_url": _bool(filters.get("breakdown_normalize_url")),
        "breakdown_group_type_index": filters.get("breakdown_group_type_index"),
        "breakdown_histogram_bin_count": filters.get("breakdown_histogram_bin_count") if insight == "TRENDS" else None,
        "breakdown_limit": filters.get("breakdown_limit"),
        "breakdown_hide_other_aggregation": _bool(filters.get("breakdown_hide_other_aggregation")),
    }
    breakdown = _json(breakdown) if isinstance(breakdown, str) and breakdown.startswith("[") else breakdown
    if isinstance(breakdown, list) and breakdown_type != "cohort":
        if len(breakdown) > 1:  # a multi-property breakdown: one entry per property
            breakdown_filter["breakdowns"] = [_compact({"type": breakdown_type, "property": item}) for item in breakdown]
            breakdown = None
        else:
            breakdown = breakdown[0] if breakdown else None
    breakdown_filter["breakdown"] = breakdown
    breakdown_filter = _compact(breakdown_filter)
    if "breakdown" not in breakdown_filter and "breakdowns" not in breakdown_filter:
        return {}
    return {"breakdownFilter": breakdown_filter}


def _compare_filter(filters: dict, insight: str) -> dict:
    if insight not in ("TRENDS", "STICKINESS"):
        return {}
    compare = _compact({"compare": _bool(filters.get("compare")), "compare_to": filters.get("compare_to")})
    return {"compareFilter": compare} if compare else {}


# --- per-kind filter objects -------------------------------------------------------------------------


def _insight_filter(filters: dict, insight: str) -> dict:
    key, values = {
        "TRENDS": ("trendsFilter", _trends_filter),
        "FUNNELS": ("funnelsFilter", _funnels_filter),
        "RETENTION": ("retentionFilter", _retention_filter),
        "PATHS": ("pathsFilter", _paths_filter),
        "LIFECYCLE": ("lifecycleFilter", _lifecycle_filter),
        "STICKINESS": ("stickinessFilter", _stickiness_filter),
    }[insight]
    values = _compact(values(filters))
    if insight == "RETENTION":  # a retention query always carries its filter
        return {key: values}
    if insight == "PATHS":
        funnel_paths = _funnel_paths_filter(filters)
        return {key: values, **({"funnelPathsFilter": funnel_paths} if funnel_paths else {})}
    return {key: values} if values else {}


def _trends_filter(filters: dict) -> dict:
    return {
        "smoothingIntervals": filters.get("smoothing_intervals"),
        "showLegend": _bool(filters.get("show_legend")),
        "hiddenLegendIndexes": filters.get("hidden_legend_indexes"),
        "aggregationAxisFormat": filters.get("aggregation_axis_format"),
        "aggregationAxisPrefix": filters.get("aggregation_axis_prefix"),
        "aggregationAxisPostfix": filters.get("aggregation_axis_postfix"),
        "decimalPlaces": filters.get("decimal_places"),
        "formula": filters.get("formula") or None,
        "display": _display(filters.get("display")),
        "showValuesOnSeries": _bool(filters.get("show_values_on_series")),
        "showPercentStackView": _bool(filters.get("show_percent_stack_view")),
        "showLabelsOnSeries": _bool(filters.get("show_labels_on_series")),
    }


def _exclusion(entity: dict) -> dict:
    node = {"name": entity.get("name"), "custom_name": entity.get("custom_name"),
            "funnelFromStep": entity.get("funnel_from_step"), "funnelToStep": entity.get("funnel_to_step")}
    if entity.get("type") == "actions":
        return _compact({"kind": "ActionsNode", "id": int(entity["id"]), **node})
    return _compact({"kind": "EventsNode", "event": entity.get("id"), **node})


def _funnels_filter(filters: dict) -> dict:
    window_interval, window_unit = filters.get("funnel_window_interval"), filters.get("funnel_window_interval_unit")
    if filters.get("funnel_window_days") is not None and window_interval is None:  # the oldest window setting
        window_interval, window_unit = filters["funnel_window_days"], "day"
    return {
        "funnelVizType": filters.get("funnel_viz_type"),
        "funnelOrderType": filters.get("funnel_order_type"),
        "funnelFromStep": filters.get("funnel_from_step"),
        "funnelToStep": filters.get("funnel_to_step"),
        "funnelWindowIntervalUnit": window_unit,
        "funnelWindowInterval": int(window_interval) if window_interval is not None else None,
        "breakdownAttributionType": filters.get("breakdown_attribution_type"),
        "breakdownAttributionValue": filters.get("breakdown_attribution_value"),
        "binCount": filters.get("bin_count"),
        "exclusions": [_exclusion(entity) for entity in _json(filters.get("exclusions")) or []] or None,
        "layout": filters.get("layout"),
        "funnelStepReference": filters.get("funnel_step_reference"),
        "funnelAggregateByHogQL": filters.get("funnel_aggregate_by_hogql"),
    }


def _retention_entity(entity: Any) -> dict | None:
    entity = _json(entity)
    if entity is None:
        return None
    return _compact({key: entity.get(key) for key in ("type", "id", "name", "custom_name", "order")})


def _retention_filter(filters: dict) -> dict:
    return {
        "retentionType": filters.get("retention_type"),
        "retentionReference": filters.get("retention_reference"),
        "totalIntervals": int(filters["total_intervals"]) if filters.get("total_intervals") is not None else None,
        "returningEntity": _retention_entity(filters.get("returning_entity")),
        "targetEntity": _retention_entity(filters.get("target_entity")),
        "period": filters.get("period"),
        "cumulative": _bool(filters.get("cumulative")),
    }


def _paths_filter(filters: dict) -> dict:
    return {
        "pathReplacements": _bool(filters.get("path_replacements")),
        "localPathCleaningFilters": filters.get("local_path_cleaning_filters"),
        "edgeLimit": filters.get("edge_limit"),
        "minEdgeWeight": filters.get("min_edge_weight"),
        "maxEdgeWeight": filters.get("max_edge_weight"),
        "startPoint": filters.get("start_point"),
        "endPoint": filters.get("end_point"),
        "stepLimit": filters.get("step_limit"),
        "includeEventTypes": filters.get("include_event_types"),
        "excludeEvents": filters.get("exclude_events"),
        "pathGroupings": filters.get("path_groupings"),
        "pathStartKey": filters.get("path_start_key"),
        "pathEndKey": filters.get("path_end_key"),
        "pathDropoffKey": filters.get("path_dropoff_key"),
    }


def _funnel_paths_filter(filters: dict) -> dict | None:
    funnel_paths, funnel_filter = filters.get("funnel_paths"), _json(filters.get("funnel_filter"))
    if funnel_paths is None or not isinstance(funnel_filter, dict):
        return None
    return _compact({"funnelPathType": funnel_paths, "funnelSource": filters_to_query(funnel_filter)["source"],
                     "funnelStep": funnel_filter.get("funnel_step")})


def _lifecycle_filter(filters: dict) -> dict:
    return {
        "showValuesOnSeries": _bool(filters.get("show_values_on_series")),
        "toggledLifecycles": filters.get("toggledLifecycles"),
        "showLegend": _bool(filters.get("show_legend")),
    }


def _stickiness_filter(filters: dict) -> dict:
    return {
        "display": _display(filters.get("display")),
        "showLegend": _bool(filters.get("show_legend")),
        "showValuesOnSeries": _bool(filters.get("show_values_on_series")),
        "hiddenLegendIndexes": filters.get("hidden_legend_indexes"),
    }
