"""Bounds on user expressions, checked before and while parsing, so that no input can exhaust the
parser's recursion or build a number the database cannot hold: a 400, never a 500.

Applied to HogQL expressions (breakdowns, `hogql` property filters, math and aggregation
expressions), trends formulas, EventsQuery `select`/`where`/`orderBy` items and SQL insights.
"""
import math
from typing import Any, Callable, Iterable, Optional

MAX_EXPRESSION_LENGTH = 10_000
# Brackets nested, or operators chained, deeper than this are refused. Real expressions stay far
# below; the recursive parsers and compilers stay far from Python's recursion limit.
MAX_EXPRESSION_DEPTH = 64
MAX_INTEGER = 2**63 - 1
_QUOTES = "'\"`"


class ExpressionTooComplex(ValueError):
    """An expression over a limit; the message says which, for a 400."""


def shorten(text: str, limit: int = 40) -> str:
    """Text for an error message: long input is not echoed back in full."""
    return text if len(text) <= limit else text[:limit] + "..."


def bracket_depth(text: str) -> int:
    """The deepest nesting of (), [] and {} outside quoted strings and names."""
    depth = deepest = 0
    quote: Optional[str] = None
    escaped = False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in _QUOTES:
            quote = char
        elif char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth = max(depth - 1, 0)
    return deepest


def check_text(text: str, what: str, *, max_length: int = MAX_EXPRESSION_LENGTH) -> None:
    """`what` ("The HogQL expression"...) within the length and bracket-depth limits."""
    if len(text) > max_length:
        raise ExpressionTooComplex(f"{what} is too long (more than {max_length} characters).")
    if bracket_depth(text) > MAX_EXPRESSION_DEPTH:
        raise ExpressionTooComplex(f"{what} is nested too deeply (more than {MAX_EXPRESSION_DEPTH} levels).")


def check_tree_depth(root: Any, children: Callable[[Any], Iterable[Any]], what: str) -> None:
    """A parsed tree no deeper than the limit (chained operators nest without brackets). Iterative."""
    pending = [(root, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_EXPRESSION_DEPTH:
            raise ExpressionTooComplex(f"{what} is nested too deeply (more than {MAX_EXPRESSION_DEPTH} levels).")
        pending.extend((child, depth + 1) for child in children(node))


def check_number(value: Any, text: str) -> None:
    """A literal the databases can hold: integers within 64 bits, finite doubles."""
    if isinstance(value, int) and abs(value) > MAX_INTEGER or isinstance(value, float) and not math.isfinite(value):
        raise ExpressionTooComplex(f"The number {shorten(text)} is out of range.")


def parse_number(text: str) -> float | int:
    """A numeric literal's value, or ExpressionTooComplex when no database can hold it."""
    try:
        value: float | int = float(text) if any(char in text for char in ".eE") else int(text)
    except (ValueError, OverflowError):
        raise ExpressionTooComplex(f"The number {shorten(text)} is out of range.") from None
    check_number(value, text)
    return value
