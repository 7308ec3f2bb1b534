"""How the analysis words numbers: rounding, percentages, changes, durations, breakdown values,
and the series statistics (direction, anomalies) its sentences are built from."""
import math
from decimal import ROUND_HALF_UP, Decimal
from statistics import median
from typing import Any, Optional

BREAKDOWN_OTHER = "$$_posthog_breakdown_other_$$"
BREAKDOWN_NULL = "$$_posthog_breakdown_null_$$"
# Robust z-score above which a point is called unusual (Iglewicz and Hoaglin's cut-off).
ANOMALY_Z = 3.5
MIN_POINTS_FOR_ANOMALIES = 5
MAX_ANOMALIES = 3
# Relative change between the two halves of a series below which it is called stable.
STABLE_CHANGE = 0.05


# --- Number formatting ----------------------------------------------------------------------------


def _rounded(value: float, digits: int) -> Decimal:
    """Half away from zero (12.5 -> 13), not Python's half to even."""
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def num(value: Any) -> str:
    """Numbers rounded for reading: 1,234 / 56.7 / 8.25 / 0.0042."""
    if value is None:
        return "n/a"
    number = float(value)
    if not math.isfinite(number):
        return str(number)
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    size = abs(number)
    if size >= 100:
        return f"{_rounded(number, 0):,}"
    if size >= 0.01:
        text = f"{_rounded(number, 1 if size >= 10 else 2):,}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{number:.2g}"


def pct(ratio: float) -> str:
    value = ratio * 100
    return f"{_rounded(value, 0 if abs(value) >= 10 else 1).normalize():f}%"


def change(new: float, old: float) -> str:
    """Signed relative change, e.g. +45% or -12%."""
    ratio = (new - old) / abs(old)
    return ("+" if ratio >= 0 else "") + pct(ratio)


def duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "n/a"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            amount = seconds / size
            return f"{num(round(amount, 1))} {unit}{'' if round(amount, 1) == 1 else 's'}"
    amount = round(seconds, 1)
    return f"{num(amount)} second{'' if amount == 1 else 's'}"


def breakdown_text(value: Any) -> str:
    if isinstance(value, list):
        return " / ".join(breakdown_text(item) for item in value)
    if value == BREAKDOWN_OTHER or value == "Other":
        return "Other"
    if value in (BREAKDOWN_NULL, "", None):
        return "(none)"
    return str(value)


# --- Series statistics ----------------------------------------------------------------------------


def robust_anomalies(values: list[float]) -> list[tuple[int, float]]:
    """(index, robust z-score) of unusual points, most extreme first.

    The z-score is measured from the median in units of the scaled median absolute deviation;
    when more than half the points are equal (MAD = 0) the scaled mean absolute deviation is used.
    """
    if len(values) < MIN_POINTS_FOR_ANOMALIES:
        return []
    center = median(values)
    deviations = [abs(value - center) for value in values]
    mad = median(deviations)
    if mad > 0:
        scale = 1.4826 * mad
    else:
        mean_deviation = sum(deviations) / len(deviations)
        if mean_deviation == 0:
            return []
        scale = 1.2533 * mean_deviation
    scored = [(index, (value - center) / scale) for index, value in enumerate(values)]
    unusual = [item for item in scored if abs(item[1]) > ANOMALY_Z]
    return sorted(unusual, key=lambda item: -abs(item[1]))[:MAX_ANOMALIES]


def series_sentences(data: list, labels: list, *, additive: bool, per: Optional[str], unit: str = "",
                     ordered: bool = True) -> list[str]:
    """Total or average, direction (first vs second half), peak and low, anomalies."""
    values = [float(value or 0) for value in data]
    if not values:
        return []
    labels = [str(label) for label in labels] if len(labels) == len(values) else [f"point {i + 1}" for i in range(len(values))]
    per_text = f" per {per}" if per else ""
    average = sum(values) / len(values)
    sentences = []
    if additive:
        if not any(values):
            return ["None in this period."]
        sentences.append(f"{num(sum(values))}{unit} in total, {num(average)}{unit}{per_text} on average.")
    else:
        sentences.append(f"{num(average)}{unit}{per_text} on average.")
    if len(values) == 1:
        return sentences
    if max(values) == min(values):
        sentences.append(f"Flat: {num(values[0])}{unit} in every {per or 'point'}.")
        return sentences
    if ordered:
        sentences.append(direction(values, unit, per_text))
    high, low = values.index(max(values)), values.index(min(values))
    sentences.append(f"Peak {num(values[high])}{unit} on {labels[high]}; low {num(values[low])}{unit} on {labels[low]}.")
    anomalies = robust_anomalies(values)
    if anomalies:
        described = [f"{num(values[index])}{unit} on {labels[index]} ({'spike' if z > 0 else 'dip'}, robust z-score {num(round(z, 1))})"
                     for index, z in anomalies]
        sentences.append("Unusual: " + "; ".join(described) + ".")
    return sentences


def direction(values: list[float], unit: str, per_text: str) -> str:
    half = len(values) // 2
    first, second = values[:half], values[len(values) - half:]
    before, after = sum(first) / len(first), sum(second) / len(second)
    if before == 0:
        return f"Rising from 0 in the first half to {num(after)}{unit}{per_text} on average in the second half."
    relative = (after - before) / abs(before)
    if abs(relative) < STABLE_CHANGE:
        return f"Stable: both halves average about {num(after)}{unit}{per_text}."
    word = "Rising" if relative > 0 else "Falling"
    return (f"{word}: the second half averages {num(after)}{unit}{per_text}, "
            f"{change(after, before)} on the first half ({num(before)}{unit}).")
