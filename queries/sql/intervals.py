"""Which interval a timestamp falls in, as SQL, for intervals computed in Python.

Interval boundaries (local midnights, week starts, month starts... in the team's timezone) are
resolved by `queries.dates` and passed to the database as UTC parameters. A balanced CASE tree
maps a timestamp to its interval number with log2(n) comparisons, so neither database needs
timezone or calendar support, and any number of intervals stays cheap.
"""
from datetime import datetime

from sqlglot import exp

from .context import SQLContext
from .engine import case


def interval_index(value: exp.Expression, boundaries: list[datetime], context: SQLContext, *, checked: bool) -> exp.Expression:
    """Number k of the interval [boundaries[k], boundaries[k + 1]) holding `value`.

    `checked=False` when the query's WHERE clause already keeps `value` within
    [boundaries[0], boundaries[-1]); with `checked=True`, values outside (and NULL) give NULL.
    """
    if len(boundaries) < 2:
        raise ValueError("interval_index needs at least one interval")
    if not checked and not context.engine.bucket_by_join:
        # The engine has a native function for it (PostgreSQL's width_bucket).
        return context.engine.bucket_index(value, boundaries[:-1], context.params)
    params = [context.engine.timestamp(boundary, context.params) for boundary in boundaries]

    def node(low: int, high: int) -> exp.Expression:
        if low == high:
            return exp.Literal.number(low)
        middle = (low + high + 1) // 2
        return case([(exp.LT(this=value.copy(), expression=params[middle].copy()), node(low, middle - 1))], node(middle, high))

    tree = node(0, len(boundaries) - 2)
    if not checked:
        return tree
    outside = exp.or_(
        exp.Is(this=value.copy(), expression=exp.null()),
        exp.LT(this=value.copy(), expression=params[0]),
        exp.GTE(this=value.copy(), expression=params[-1]),
    )
    return case([(outside, exp.null())], tree)
