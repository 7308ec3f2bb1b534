"""Cohort breakdowns of trends (`breakdown_type: "cohort"`, `breakdown: [ids | "all"]`).

As PostHog does, each listed cohort is its own statement per series: the series filtered by
membership of the cohort (`"all"`: unfiltered, every user). The value is the cohort id (or
"all") and the label the cohort's name (or "all users"); no "other" bucketing applies.
"""
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Union

from ...dates import QueryDateRange
from ...schema import EventsNode, PropertyFilter, PropertyGroupFilter, PropertyGroupFilterValue, TrendsQuery
from ...sql.cohorts import find_cohort
from ...sql.context import SQLContext
from ...sql.engine import Params
from .query_builder import INTEGER_MATHS

if TYPE_CHECKING:
    from .runner import TrendsQueryRunner

ALL_USERS = "all"


@dataclass(frozen=True)
class CohortBreakdownValue:
    value: Union[int, str]  # cohort id, or "all"
    label: str


def cohort_breakdown_values(query: TrendsQuery, team) -> Optional[list[CohortBreakdownValue]]:
    """The cohorts a trends query is broken down by, in the order given; None without a cohort breakdown."""
    breakdown_filter = query.breakdownFilter
    if breakdown_filter is None or breakdown_filter.breakdown_type != "cohort" or breakdown_filter.breakdowns:
        return None
    raw = breakdown_filter.breakdown
    items = raw if isinstance(raw, list) else [raw]
    if raw is None or not items:
        return None  # no cohort chosen yet: no breakdown
    values = []
    for item in items:
        if item in (ALL_USERS, 0, "0"):
            values.append(CohortBreakdownValue(ALL_USERS, "all users"))
            continue
        cohort = find_cohort(item, team)
        values.append(CohortBreakdownValue(cohort.id, cohort.name or f"Cohort {cohort.id}"))
    return values


def _with_cohort(properties, cohort_id: int):
    """`properties` (a list or a group) AND membership of the cohort."""
    membership = PropertyGroupFilterValue(type="AND", values=[PropertyFilter(type="cohort", key="id", value=cohort_id, operator="in")])
    if not properties:
        return PropertyGroupFilter(type="AND", values=[membership])
    if isinstance(properties, PropertyGroupFilter):
        existing = PropertyGroupFilterValue(type=properties.type, values=list(properties.values))
    else:
        existing = PropertyGroupFilterValue(type="AND", values=list(properties))
    return PropertyGroupFilter(type="AND", values=[membership, existing])


def cohort_series_results(runner: "TrendsQueryRunner", series: EventsNode, index: int, date_range: QueryDateRange,
                          compare_label: Optional[str]) -> list[dict]:
    objects = []
    integer = (series.math or "total") in INTEGER_MATHS
    for breakdown in runner.cohort_breakdown:
        filtered = series
        if breakdown.value != ALL_USERS:
            filtered = series.model_copy(update={"properties": _with_cohort(series.properties, breakdown.value)})
        context = SQLContext(runner.engine, runner.team, Params())
        rows = runner.run_sql(runner._series_tree(filtered, date_range, context), context.params)
        ((_, value),) = runner._group_rows(rows, date_range, integer)
        item = (runner._total_value_object(series, index, value) if runner.total_value
                else runner._time_series_object(series, index, value, date_range))
        if compare_label:
            item["compare"] = True
            item["compare_label"] = compare_label
        item["label"] = f"{item['label']} - {breakdown.label}" if len(runner.query.series) > 1 else breakdown.label
        item["breakdown_value"] = breakdown.value
        objects.append(item)
    return objects
