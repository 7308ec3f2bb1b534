"""Lays a chart out as simple shapes (rectangles, lines, text), drawn by svg.py and png.py alike."""
import math
from dataclasses import dataclass

from .charts import Chart, format_number

PALETTE = ["#1d4aff", "#621da6", "#42827e", "#ce0e74", "#f14f58", "#7c440e", "#529a0a", "#0476fb", "#fe729e", "#35416b"]
INK = "#1f2328"
MUTED = "#6b7280"
GRID = "#e5e7eb"
BACKGROUND = "#ffffff"
FONT_SIZE = 12
CHAR_WIDTH = 0.6  # average glyph width per font size, to size labels without a font at hand


@dataclass
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str = ""


@dataclass
class Line:
    points: list[tuple[float, float]]
    stroke: str
    width: float = 1.0


@dataclass
class Dot:
    x: float
    y: float
    radius: float
    fill: str
    title: str = ""


@dataclass
class Text:
    x: float
    y: float  # baseline
    text: str
    size: float = FONT_SIZE
    anchor: str = "start"  # start | middle | end
    fill: str = INK
    bold: bool = False


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def text_width(value: str, size: float = FONT_SIZE) -> float:
    return len(value) * size * CHAR_WIDTH


def truncate(value: str, max_width: float, size: float = FONT_SIZE) -> str:
    limit = max(int(max_width / (size * CHAR_WIDTH)), 1)
    return value if len(value) <= limit else value[: max(limit - 1, 0)] + "…"


def compact(value: float) -> str:
    for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.1f}".rstrip("0").rstrip(".") + suffix
    return format_number(round(value, 2))


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (which includes 0)."""
    if high == low:
        high = low + 1
    raw_step = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw_step))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw_step)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def layout(chart: Chart, width: float, height: float, *, title: str = "", legend: bool = False) -> list:
    shapes: list = []
    top = 0.0
    if title:
        shapes.append(Text(16, 30, truncate(title, width - 32, 20), size=20, bold=True))
        top = 44.0
    box = (0.0, top, width, height - top)
    if chart.kind in ("line", "bar") and chart.series:
        shapes += _series_chart(chart, box, legend)
    elif chart.kind == "number":
        shapes += _number(chart, box)
    elif chart.kind == "table":
        shapes += _table(chart, box)
    else:
        message = "No results yet" if chart.kind == "empty" else "This insight cannot be drawn here"
        shapes.append(Text(width / 2, top + (height - top) / 2, message, size=16, anchor="middle", fill=MUTED))
    return shapes


def _legend_rows(series, width: float) -> list[list[tuple[int, str, float]]]:
    rows, row, used = [], [], 0.0
    for index, item in enumerate(series):
        label = truncate(item.label, 220)
        item_width = 18 + text_width(label) + 16
        if row and used + item_width > width:
            rows.append(row)
            row, used = [], 0.0
        row.append((index, label, item_width))
        used += item_width
    if row:
        rows.append(row)
    return rows


def _series_chart(chart: Chart, box, legend: bool) -> list:
    x0, y0, width, height = box
    shapes: list = []
    values = [value for item in chart.series for value in item.values] or [0.0]
    ticks = nice_ticks(min(0.0, min(values)), max(0.0, max(values)))
    tick_labels = [compact(tick) + chart.value_suffix for tick in ticks]
    legend_rows = _legend_rows(chart.series, width - 32) if legend else []

    left = x0 + 16 + max(text_width(label) for label in tick_labels) + 8
    right = x0 + width - 16
    top = y0 + 12
    bottom = y0 + height - 28 - 20 * len(legend_rows)
    low, high = ticks[0], ticks[-1]

    def y_of(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    for tick, label in zip(ticks, tick_labels):
        y = y_of(tick)
        shapes.append(Line([(left, y), (right, y)], GRID))
        shapes.append(Text(left - 8, y + 4, label, anchor="end", fill=MUTED))

    count = max(len(chart.labels), max(len(item.values) for item in chart.series))
    if chart.kind == "line" and chart.labels:
        # Line points sit on the plot's edges: leave room for the first and last labels.
        left = max(left, x0 + text_width(truncate(chart.labels[0], 140)) / 2 + 4)
        right = min(right, x0 + width - text_width(truncate(chart.labels[min(count, len(chart.labels)) - 1], 140)) / 2 - 4)
    plot_width = right - left
    band = plot_width / max(count, 1)
    every = max(1, math.ceil(count / max(1, int(plot_width // 80))))

    def x_center(index: int) -> float:
        if chart.kind == "line":
            return left + (plot_width / 2 if count == 1 else index * plot_width / (count - 1))
        return left + band * (index + 0.5)

    for index, label in enumerate(chart.labels[:count]):
        if index % every == 0:
            shapes.append(Text(x_center(index), bottom + 18, truncate(label, min(band * every - 4, 140)), anchor="middle", fill=MUTED))

    zero = y_of(0.0)
    if chart.kind == "bar":
        group = band * 0.8
        bar_width = group / len(chart.series)
        for s_index, item in enumerate(chart.series):
            for index, value in enumerate(item.values[:count]):
                x = left + band * index + band * 0.1 + bar_width * s_index
                y = min(y_of(value), zero)
                label = chart.labels[index] if index < len(chart.labels) else ""
                tip = f"{item.label} · {label}: {format_number(value)}{chart.value_suffix}"
                shapes.append(Rect(x, y, max(bar_width - 1, 1), max(abs(y_of(value) - zero), 1), color(s_index), tip))
    else:
        for s_index, item in enumerate(chart.series):
            points = [(x_center(index), y_of(value)) for index, value in enumerate(item.values[:count])]
            if len(points) > 1:
                shapes.append(Line(points, color(s_index), 2.5))
            for index, (x, y) in enumerate(points):
                label = chart.labels[index] if index < len(chart.labels) else ""
                tip = f"{item.label} · {label}: {format_number(item.values[index])}{chart.value_suffix}"
                shapes.append(Dot(x, y, 3.0 if count <= 60 else 1.5, color(s_index), tip))
    shapes.append(Line([(left, zero), (right, zero)], MUTED))

    y = bottom + 44
    for row in legend_rows:
        x = x0 + 16
        for s_index, label, item_width in row:
            shapes.append(Rect(x, y - 10, 12, 12, color(s_index)))
            shapes.append(Text(x + 18, y, label))
            x += item_width
        y += 20
    return shapes


def _number(chart: Chart, box) -> list:
    x0, y0, width, height = box
    value = format_number(chart.number) if chart.number is not None else "–"
    size = min(96.0, (width - 32) / max(len(value), 1) / CHAR_WIDTH)
    middle = y0 + height / 2
    return [
        Text(x0 + width / 2, middle + size / 3, value, size=size, anchor="middle", bold=True),
        Text(x0 + width / 2, middle + size / 3 + 36, truncate(chart.number_label, width - 32, 16), size=16, anchor="middle", fill=MUTED),
    ]


def _table(chart: Chart, box) -> list:
    x0, y0, width, height = box
    shapes: list = []
    row_height = 24.0
    columns = max(len(chart.columns), 1)
    column_width = (width - 32) / columns
    fits = max(int((height - 16) // row_height) - 1, 0)
    rows = chart.rows
    if len(rows) > fits:
        rows = rows[: max(fits - 1, 0)] + [[f"… {len(chart.rows) - fits + 1} more rows"]]
    y = y0 + 8
    shapes.append(Rect(x0 + 16, y, width - 32, row_height, "#f3f4f6"))
    for index, name in enumerate(chart.columns):
        shapes.append(Text(x0 + 24 + index * column_width, y + 16, truncate(name, column_width - 12), bold=True))
    for row in rows:
        y += row_height
        shapes.append(Line([(x0 + 16, y), (x0 + width - 16, y)], GRID))
        for index, cell in enumerate(row):
            shapes.append(Text(x0 + 24 + index * column_width, y + 16, truncate(cell, column_width - 12)))
    return shapes
