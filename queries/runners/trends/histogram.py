"""Histogram breakdowns: a numeric property bucketed into N equal bins between its min and max.

As PostHog: the bounds come from the smallest and largest value among the series' matching events
in the period; bin x is `[step * x + min, step * (x + 1) + min)` with `step = (max - min) / N`, the
last bin's upper bound raised by 0.01 so that the maximum falls inside it. An event's value is the
label of the first bin holding it (`"[low,high]"`, numbers as ClickHouse prints them), and the null
sentinel when it is missing, not a number, or in no bin.

Two statements per series: one aggregate for min and max (in SQL), then the series statement, whose
CASE assigns each event to its bin (in SQL). The bounds are computed in Python with the same double
arithmetic as PostHog's, so that a value on a bound falls in the same bin and the labels match.
"""
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from sqlglot import exp

from ...sql.context import SQLContext
from ...sql.engine import case
from ..base import UnsupportedQuery

if TYPE_CHECKING:
    from .breakdown import BreakdownSpec
    from .query_builder import SeriesQueryBuilder

# Each bin is one CASE branch per event: keep the statement small (PostHog's UI offers far fewer).
MAX_HISTOGRAM_BINS = 100
HISTOGRAM_TYPES = ("event", "person")
LAST_BIN_MARGIN = 0.01


@dataclass(frozen=True)
class HistogramBins:
    bounds: list[tuple[float, float]]  # [low, high) per bin, in order; empty when there is no value

    @property
    def labels(self) -> list[str]:
        return [f"[{format_number(low)},{format_number(high)}]" for low, high in self.bounds]


def validate_histogram(spec: "BreakdownSpec") -> None:
    count = spec.histogram_bin_count
    if count is None:
        return
    if spec.type not in HISTOGRAM_TYPES:
        raise UnsupportedQuery(f"Histogram breakdowns of type '{spec.type}' are not supported; use an event or person property.")
    if not 1 <= count <= MAX_HISTOGRAM_BINS:
        raise UnsupportedQuery(f"The histogram bin count must be between 1 and {MAX_HISTOGRAM_BINS}.")


def numeric_value(spec: "BreakdownSpec", context: SQLContext) -> exp.Expression:
    """The property as a double (NULL when missing or not a number), as PostHog reads numeric properties."""
    if spec.type == "person":
        return context.person_property_number(spec.property)
    return context.event_property_number(spec.property)


def make_bins(low: Optional[float], high: Optional[float], count: int) -> HistogramBins:
    if low is None or high is None:
        return HistogramBins([])
    low, high = float(low), float(high)
    step = (high - low) / count
    bounds = []
    for x in range(count):
        upper = step * (x + 1) + low
        if x + 1 == count:
            upper = upper + LAST_BIN_MARGIN
        bounds.append((step * x + low, upper))
    return HistogramBins(bounds)


def histogram_bins(builder: "SeriesQueryBuilder", specs: list["BreakdownSpec"]) -> dict[int, HistogramBins]:
    """Bins per histogram breakdown (by position), from one MIN/MAX statement over the series' events."""
    positions = [i for i, spec in enumerate(specs) if spec.histogram_bin_count is not None]
    if not positions:
        return {}
    columns = []
    for i in positions:
        value = numeric_value(specs[i], builder.context)
        columns += [exp.alias_(exp.Min(this=value), f"low{i}"), exp.alias_(exp.Max(this=value.copy()), f"high{i}")]
    statement = builder.bounds_select(columns)
    row = builder.runner.run_sql(statement, builder.context.params)
    values = row[0] if row else (None,) * len(columns)
    return {i: make_bins(values[2 * n], values[2 * n + 1], specs[i].histogram_bin_count) for n, i in enumerate(positions)}


def histogram_value(spec: "BreakdownSpec", bins: HistogramBins, context: SQLContext, null_label: exp.Expression) -> exp.Expression:
    """The label of the first bin holding the event's value, else the null sentinel."""
    if not bins.bounds:
        return null_label
    value = numeric_value(spec, context)
    branches = []
    for (low, high), label in zip(bins.bounds, bins.labels):
        inside = exp.and_(exp.GTE(this=value.copy(), expression=context.param(low)),
                          exp.LT(this=value.copy(), expression=context.param(high)))
        branches.append((inside, context.param(label)))
    return case(branches, null_label)


def format_number(value: float) -> str:
    """A double as ClickHouse's toString prints it: shortest round-trip digits, whole numbers bare."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e16:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{'-' if exponent.startswith('-') else ''}{exponent.lstrip('+-').lstrip('0') or '0'}"
    return text
