"""What to draw for an insight: a neutral chart description built from its query and result.

The HTML page draws it as inline SVG (svg.py) or an HTML table, the `.png` with Pillow (png.py).
"""
import json
import math
from dataclasses import dataclass, field

WRAPPER_KINDS = {"InsightVizNode", "DataVisualizationNode", "DataTableNode"}
BAR_DISPLAYS = {"ActionsBar", "ActionsStackedBar", "ActionsUnstackedBar"}
TOTAL_VALUE_DISPLAYS = {"ActionsPie", "ActionsDonut", "ActionsBarValue", "WorldMap"}
MAX_SERIES = 20
MAX_TABLE_ROWS = 100


@dataclass
class Series:
    label: str
    values: list[float]


@dataclass
class Chart:
    """`kind` is one of: line, bar (both with `labels` and `series`), number, table, empty, unsupported."""

    kind: str
    labels: list[str] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)
    number: float | None = None
    number_label: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    value_suffix: str = ""

    @property
    def has_legend(self) -> bool:
        """Several series (a breakdown, multiple events) cannot be told apart without a legend."""
        return self.kind in ("line", "bar") and len(self.series) > 1


def source_of(query) -> dict:
    """The computed node of a stored query: wrapper nodes are unwrapped."""
    while isinstance(query, dict) and query.get("kind") in WRAPPER_KINDS and isinstance(query.get("source"), dict):
        query = query["source"]
    return query if isinstance(query, dict) else {}


def number(value) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return 0.0
    return result if math.isfinite(result) else 0.0


def text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return format_number(value)
    if isinstance(value, list) and all(not isinstance(item, (dict, list)) for item in value):
        return ", ".join(text(item) for item in value)
    return json.dumps(value, default=str)


def format_number(value: float) -> str:
    value = number(value)
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def build_chart(query, fields: dict) -> Chart:
    """The chart for a stored query and its result fields (`result`, `columns`: insights.results)."""
    results = fields.get("result")
    if not results:
        return Chart("empty")
    source = source_of(query)
    kind = source.get("kind")
    builder = {
        "TrendsQuery": _trends,
        "StickinessQuery": lambda s, r: _series_chart("line", r),
        "LifecycleQuery": lambda s, r: _series_chart("bar", r),
        "FunnelsQuery": _funnels,
        "RetentionQuery": _retention,
        "PathsQuery": _paths,
        "HogQLQuery": lambda s, r: _rows_table(r, fields.get("columns")),
        "EventsQuery": lambda s, r: _rows_table(r, fields.get("columns")),
    }.get(kind)
    if builder is None or not isinstance(results, (list, dict)):
        return Chart("unsupported")
    try:
        return builder(source, results)
    except (TypeError, KeyError, AttributeError, IndexError, ValueError):  # a result without the expected shape
        return Chart("unsupported")


def _series_label(item: dict) -> str:
    label = text(item.get("label")) or text((item.get("action") or {}).get("name")) or "Series"
    if item.get("compare_label"):
        label = f"{label} ({item['compare_label']})"
    return label


def _values(item: dict) -> list[float]:
    data = item.get("data") or []
    if not isinstance(data, list):
        raise TypeError("series data is not a list")
    return [number(value) for value in data]


def _series_chart(kind: str, results: list) -> Chart:
    items = [item for item in results if isinstance(item, dict)][:MAX_SERIES]
    if not items:
        return Chart("unsupported")
    labels = [text(label) for label in (items[0].get("labels") or items[0].get("days") or [])]
    series = [Series(_series_label(item), _values(item)) for item in items]
    return Chart(kind, labels=labels, series=series)


def _trends(source: dict, results: list) -> Chart:
    display = (source.get("trendsFilter") or {}).get("display") or "ActionsLineGraph"
    items = [item for item in results if isinstance(item, dict)]
    if not items:
        return Chart("unsupported")
    if display == "BoldNumber":
        first = items[0]
        value = first.get("aggregated_value", first.get("count"))
        return Chart("number", number=number(value), number_label=_series_label(first))
    if display in TOTAL_VALUE_DISPLAYS or display == "ActionsTable":
        items = items[:MAX_SERIES]
        values = [number(item.get("aggregated_value", item.get("count"))) for item in items]
        if display == "ActionsTable":
            return Chart("table", columns=["Series", "Total"], rows=[[_series_label(i), format_number(v)] for i, v in zip(items, values)])
        return Chart("bar", labels=[_series_label(item) for item in items], series=[Series("Total", values)])
    return _series_chart("bar" if display in BAR_DISPLAYS else "line", items)


def _funnel_step_label(step: dict) -> str:
    return text(step.get("custom_name")) or text(step.get("name")) or f"Step {number(step.get('order')) + 1:.0f}"


def _funnels(source: dict, results) -> Chart:
    if isinstance(results, dict) and "bins" in results:  # time to convert
        bins = results.get("bins") or []
        return Chart("bar", labels=[f"{format_number(start)} s" for start, _ in bins], series=[Series("Conversions", [number(c) for _, c in bins])])
    if results and isinstance(results[0], dict) and "order" not in results[0]:  # conversion trends
        chart = _series_chart("line", results)
        chart.value_suffix = "%"
        return chart
    groups = results if results and isinstance(results[0], list) else [results]
    steps = [step for step in groups[0] if isinstance(step, dict)]
    series = []
    for group in groups[:MAX_SERIES]:
        steps_of_group = [step for step in group if isinstance(step, dict)]
        label = text(steps_of_group[0].get("breakdown_value")) if steps_of_group and "breakdown_value" in steps_of_group[0] else "Count"
        series.append(Series(label or "None", [number(step.get("count")) for step in steps_of_group]))
    return Chart("bar", labels=[_funnel_step_label(step) for step in steps], series=series)


def _retention(source: dict, results: list) -> Chart:
    rows = [row for row in results if isinstance(row, dict)][:MAX_TABLE_ROWS]
    width = max((len(row.get("values") or []) for row in rows), default=0)
    first_values = (rows[0].get("values") or []) if rows else []
    columns = ["Cohort"] + [text(value.get("label")) or str(index) for index, value in enumerate(first_values[:width])]
    table = []
    for row in rows:
        values = row.get("values") or []
        base = number(values[0].get("count")) if values else 0
        cells = []
        for value in values:
            count = number(value.get("count"))
            share = f" ({count / base:.0%})" if base else ""
            cells.append(f"{format_number(count)}{share}")
        cohort = text(row.get("date"))[:10] or text(row.get("label"))
        table.append([cohort] + cells + [""] * (width - len(cells)))
    return Chart("table", columns=columns, rows=table)


def _paths(source: dict, results: list) -> Chart:
    links = [link for link in results if isinstance(link, dict)][:MAX_TABLE_ROWS]
    return Chart(
        "table", columns=["Source", "Target", "Count"], rows=[[text(l.get("source")), text(l.get("target")), format_number(l.get("value"))] for l in links]
    )


def _rows_table(results: list, columns: list | None) -> Chart:
    rows = [row for row in results if isinstance(row, (list, tuple))][:MAX_TABLE_ROWS]
    if not rows:
        return Chart("unsupported")
    width = max(len(row) for row in rows)
    names = [text(name) for name in (columns or [])][:width]
    names += [f"Column {index + 1}" for index in range(len(names), width)]
    return Chart("table", columns=names, rows=[[text(cell) for cell in row] + [""] * (width - len(row)) for row in rows])
