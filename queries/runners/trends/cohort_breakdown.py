"""Cohort breakdowns of trends (`breakdown_type: "cohort"`, `breakdown: [ids | "all"]`).

As PostHog does, each listed cohort is its own statement per series: the series filtered by
membership of the cohort (`"all"`: unfiltered, every user). The value is the cohort id (or
"all") and the label the cohort's name (or "all users"); no "other" bucketing applies.
"""
from typing import TYPE_CHECKING, Optional

from ...dates import QueryDateRange
from ...schema import EventsNode, PropertyFilter, PropertyGroupFilter, PropertyGroupFilterValue
from ...sql.cohorts import ALL_USERS
from ...sql.context import SQLContext
from ...sql.engine import Params
from .query_builder import INTEGER_MATHS

if TYPE_CHECKING:
    from .runner import TrendsQueryRunner


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
