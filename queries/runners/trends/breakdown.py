"""Trends breakdowns: what a breakdown filter asks for, and the SQL value each event is grouped by."""
import re
from dataclasses import dataclass
from typing import Any, Optional

from sqlglot import exp

from ...schema import TrendsQuery
from ...sql.context import EVENT_FIELDS, SQLContext
from ...sql.engine import case
from ...sql.groups import group_breakdown_value
from ...sql.hogql import STRING, compile_expression
from ...sql.sessions import session_text
from ..base import UnsupportedQuery
from .histogram import HistogramBins, histogram_value, validate_histogram

BREAKDOWN_OTHER = "$$_posthog_breakdown_other_$$"
BREAKDOWN_NULL = "$$_posthog_breakdown_null_$$"
DEFAULT_BREAKDOWN_LIMIT = 25
WORLD_MAP_BREAKDOWN_LIMIT = 250


@dataclass(frozen=True)
class BreakdownSpec:
    type: str
    property: str
    normalize_url: bool = False
    group_type_index: Optional[int] = None
    histogram_bin_count: Optional[int] = None


def breakdown_specs(query: TrendsQuery) -> list[BreakdownSpec]:
    """The breakdowns of a trends query (one per property), or UnsupportedQuery."""
    breakdown_filter = query.breakdownFilter
    if breakdown_filter is None:
        return []
    if breakdown_filter.breakdowns:
        specs = [BreakdownSpec(item.type or "event", str(item.property), bool(item.normalize_url),
                               group_type_index=getattr(item, "group_type_index", None), histogram_bin_count=item.histogram_bin_count)
                 for item in breakdown_filter.breakdowns]
    elif breakdown_filter.breakdown is not None:
        value = breakdown_filter.breakdown
        if isinstance(value, list):
            if len(value) != 1:
                raise UnsupportedQuery("A breakdown of several values needs `breakdowns` (one entry per property).")
            value = value[0]
        specs = [BreakdownSpec(breakdown_filter.breakdown_type or "event", str(value), bool(breakdown_filter.breakdown_normalize_url),
                               group_type_index=breakdown_filter.breakdown_group_type_index,
                               histogram_bin_count=breakdown_filter.breakdown_histogram_bin_count)]
    else:
        return []
    for spec in specs:
        if spec.type not in ("event", "person", "event_metadata", "hogql", "session", "group"):
            raise UnsupportedQuery(f"Breakdowns of type '{spec.type}' are not supported.")
        if spec.type == "event_metadata" and (spec.property not in EVENT_FIELDS or spec.property == "properties"):
            raise UnsupportedQuery(f"Unknown event metadata field: {spec.property!r}")
        validate_histogram(spec)
    return specs


def breakdown_value(spec: BreakdownSpec, context: SQLContext, bins: Optional[HistogramBins] = None) -> exp.Expression:
    """The value an event is grouped by: text, with missing and empty values as the null sentinel."""
    if spec.histogram_bin_count is not None:
        return histogram_value(spec, bins or HistogramBins([]), context, context.param(BREAKDOWN_NULL))
    if spec.type == "event":
        value = context.event_property(spec.property)
    elif spec.type == "person":
        value = context.person_property(spec.property)
    elif spec.type == "event_metadata":
        value = context.engine.to_text(context.event_column(EVENT_FIELDS[spec.property]))
    elif spec.type == "session":
        value = session_text(context, spec.property)
    elif spec.type == "group":
        value = group_breakdown_value(context, spec.group_type_index, spec.property)
    else:
        typed = compile_expression(spec.property, context)
        value = typed.sql if typed.type == STRING else context.engine.to_text(typed.sql)
    if spec.normalize_url:
        trimmed = exp.Nullif(this=exp.Anonymous(this="RTRIM", expressions=[value, exp.Literal.string("/?#")]), expression=exp.Literal.string(""))
        value = case([(exp.Is(this=value.copy(), expression=exp.null()), exp.null())], exp.Coalesce(this=trimmed, expressions=[exp.Literal.string("/")]))
    return exp.Coalesce(this=exp.Nullif(this=value, expression=exp.Literal.string("")), expressions=[context.param(BREAKDOWN_NULL)])


def natural_key(value: Any):
    text = "::".join(value) if isinstance(value, tuple) else str(value)
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", text)]
