"""Trends result objects: PostHog's per-series dictionaries, total values, and formula results."""
import copy
import math
from typing import Any


from ...dates import QueryDateRange
from ...schema import ChartDisplayType, EventsNode, TrendsFormulaNode
from .. import formula as formulas
from ..base import response_value
from .breakdown import BREAKDOWN_NULL, BREAKDOWN_OTHER, natural_key

TOTAL_VALUE_DISPLAYS = {
    ChartDisplayType.BoldNumber, ChartDisplayType.ActionsPie, ChartDisplayType.ActionsDonut,
    ChartDisplayType.ActionsBarValue, ChartDisplayType.ActionsTable, ChartDisplayType.WorldMap,
}
UNSUPPORTED_DISPLAYS = {ChartDisplayType.CalendarHeatmap, ChartDisplayType.TwoDimensionalHeatmap, ChartDisplayType.BoxPlot}


class TrendsDisplay:
    """Result shaping for TrendsQueryRunner (uses its query, date range and breakdowns)."""

    def _label(self, series: EventsNode) -> str:
        if series.kind == "ActionsNode":
            return self.actions.require(series.id).name
        return series.event if series.event is not None else "All events"

    def _action(self, series: EventsNode, index: int) -> dict:
        # For actions too, `id` is the label and `type` "events" (PostHog's HogQL-era result).
        return {
            "days": response_value(self.date_range.bucket_starts()),
            "id": self._label(series) if series.kind == "ActionsNode" else series.event,
            "type": "events",
            "order": index,
            "name": self._label(series),
            "custom_name": series.custom_name,
            "math": series.math,
            "math_property": series.math_property,
            "math_hogql": series.math_hogql,
            "math_group_type_index": series.math_group_type_index,
            "properties": {},
        }

    def _filter(self) -> dict:
        query = self.query
        properties = query.properties
        values = {
            "insight": "TRENDS",
            "properties": (properties.model_dump(mode="json", exclude_none=True) if hasattr(properties, "model_dump")
                           else [p.model_dump(mode="json", exclude_none=True) for p in properties] if properties is not None else None),
            "filter_test_accounts": query.filterTestAccounts,
            "date_to": response_value(self.date_range.date_to()),
            "date_from": response_value(self.date_range.date_from()),
            "entity_type": "events",
            "sampling_factor": query.samplingFactor,
            "aggregation_group_type_index": query.aggregation_group_type_index,
            "interval": query.interval.value if query.interval else None,
        }
        if query.trendsFilter is not None:
            values.update(query.trendsFilter.model_dump(mode="json"))
        if query.breakdownFilter is not None:
            values.update(query.breakdownFilter.model_dump(mode="json"))
        return {key: value for key, value in values.items() if value is not None}

    def _time_series_object(self, series: EventsNode, index: int, data: list, date_range: QueryDateRange) -> dict:
        smoothing = self.query.trendsFilter.smoothingIntervals if self.query.trendsFilter else None
        if smoothing and smoothing > 1:
            data = [math.floor(sum(data[max(0, i - smoothing + 1): i + 1]) / len(data[max(0, i - smoothing + 1): i + 1]))
                    for i in range(len(data))]
        if self.cumulative:
            running, cumulative = 0, []
            for value in data:
                running += value
                cumulative.append(running)
            data = cumulative
        starts = date_range.bucket_starts()
        return {
            "data": data,
            "labels": [date_range.label(start) for start in starts],
            "days": [date_range.day_string(start) for start in starts],
            "count": (data[-1] if data else 0) if self.cumulative else float(sum(data)),
            "label": self._label(series),
            "filter": self._filter(),
            "action": self._action(series, index),
        }

    def _total_value_object(self, series: EventsNode, index: int, value: Any) -> dict:
        return {
            "data": [],
            "days": [],
            "count": 0,
            "aggregated_value": value,
            "label": self._label(series),
            "filter": self._filter(),
            "action": self._action(series, index),
        }

    # --- Formulas ------------------------------------------------------------------------------

    def _formula_nodes(self) -> list[TrendsFormulaNode]:
        trends_filter = self.query.trendsFilter
        if not trends_filter:
            return []
        if trends_filter.formulaNodes:
            return list(trends_filter.formulaNodes)
        if trends_filter.formulas:
            return [TrendsFormulaNode(formula=f) for f in trends_filter.formulas if f and f.strip()]
        if trends_filter.formula and trends_filter.formula.strip():
            return [TrendsFormulaNode(formula=trends_filter.formula)]
        return []

    def _apply_formula(self, node: TrendsFormulaNode, tree, per_series: list[list[dict]]) -> list[dict]:
        if not any(per_series):
            return []
        if self.breakdowns or getattr(self, "cohort_breakdown", None):
            values = {self._key(item["breakdown_value"]) for results in per_series for item in results}
            computed = []
            for value in sorted(values, key=natural_key):
                matches = [next((item for item in results if self._key(item["breakdown_value"]) == value), None) for results in per_series]
                template = next(item for item in matches if item is not None)
                group = [copy.deepcopy(item) if item is not None else self._filler(template) for item in matches]
                computed.append(self._formula_result(node, tree, group))
            return sorted(computed, key=_formula_sort_key, reverse=True)
        group = [copy.deepcopy(results[0]) if results else None for results in per_series]
        template = next(item for item in group if item is not None)
        group = [item if item is not None else self._filler(template) for item in group]
        return [self._formula_result(node, tree, group)]

    @staticmethod
    def _key(value: Any):
        return tuple(value) if isinstance(value, list) else value

    @staticmethod
    def _filler(template: dict) -> dict:
        return {
            "label": f"filler for {template.get('breakdown_value')}",
            "data": [0] * len(template.get("data") or []),
            "count": 0,
            "aggregated_value": 0,
            "action": None,
            "breakdown_value": template.get("breakdown_value"),
            "compare_label": template.get("compare_label"),
            "days": template.get("days"),
        }

    def _formula_result(self, node: TrendsFormulaNode, tree, group: list[dict]) -> dict:
        result = group[0]
        result["label"] = node.custom_name or f"Formula ({node.formula})"
        result["action"] = None
        if self.total_value:
            values = formulas.evaluate(tree, [[item.get("aggregated_value") or 0] for item in group])
            result["aggregated_value"] = float(sum(values))
            result["data"] = None
            result["count"] = 0
        else:
            result["data"] = formulas.evaluate(tree, [item["data"] for item in group])
            result["count"] = float(sum(result["data"]))
        return result


def _formula_sort_key(item: dict):
    value = item.get("breakdown_value")
    values = value if isinstance(value, list) else [value]
    rank = -2 if BREAKDOWN_OTHER in values else -1 if BREAKDOWN_NULL in values else 0
    # As PostHog: a result built on a filler (missing first series) carries aggregated_value 0.
    total = item.get("aggregated_value", sum(item.get("data") or []))
    return rank, total, item.get("count"), item.get("data") or [], repr(value)
