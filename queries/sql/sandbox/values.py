"""Sandbox values: typed SQL fragments, shared parameters, errors and the limits of the sandbox."""
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Optional

from sqlglot import exp

from ..engine import Params
from ..hogql import NUMBER, HogQLError, Typed

DEFAULT_LIMIT = 100
MAX_LIMIT = 50_000

INTEGER, DATE, JSON, PERSON, INTERVAL = "integer", "date", "json", "person", "interval"
TEXT_ARRAY = "text array"  # a JSON array of texts in SQL (the sessions' `$urls`), a list in results
NUMERIC = (NUMBER, INTEGER)


class SandboxError(HogQLError):
    """A query the sandbox refuses or cannot compile (400)."""


# --- Values -------------------------------------------------------------------------------------

_NO_CONST = object()


@dataclass
class Value(Typed):
    """A compiled expression: SQL, type, and its Python value when it is a constant."""

    const: Any = _NO_CONST
    number: Optional[exp.Expression] = None  # a cheaper numeric form (JSON numbers)
    aggregate: bool = False
    not_null: bool = False  # a NOT NULL column: its NULLS FIRST/LAST is free, so ORDER BY can follow an index

    @property
    def is_const(self) -> bool:
        return self.const is not _NO_CONST


class SharedParams(Params):
    """Bound parameters where equal values share one placeholder.

    `GROUP BY properties.$browser` then renders exactly like the SELECT item, which PostgreSQL
    needs to match the two expressions.
    """

    def __init__(self):
        super().__init__()
        self._names: dict[tuple, str] = {}

    def add(self, value: Any) -> exp.Placeholder:
        key = (type(value), value) if isinstance(value, (str, int, float, bool, datetime, date)) else None
        if key is not None and key in self._names:
            return exp.Placeholder(this=self._names[key])
        placeholder = super().add(value)
        if key is not None:
            self._names[key] = placeholder.name
        return placeholder


# --- SQL building helpers ---------------------------------------------------------------------


def _fn(name: str, *args: exp.Expression) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _idiv(this: exp.Expression, expression: exp.Expression) -> exp.Div:
    """Integer division of integers (truncating), rendered as a plain `/` on every engine."""
    return exp.Div(this=this, expression=expression, typed=True)


def _string(text: str) -> exp.Literal:
    """A fixed string of the compiler's own (format strings, units): never user text."""
    return exp.Literal.string(text)


def _cast(value: exp.Expression, to: str) -> exp.Cast:
    return exp.Cast(this=value, to=exp.DataType.build(to))
