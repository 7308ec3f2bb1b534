"""Property filters (PostHog's `properties` arrays and groups) as SQL conditions.

Semantics follow HogQL: properties are compared in their text form, `gt/lt/...` on numbers,
a missing property never matches a positive operator (`exact`, `icontains`, `gt`...) and always
matches a negative one (`is_not`, `not_icontains`, `not_regex`, `not_in`).
"""
import re
from datetime import datetime
from typing import Any, Optional

from pydantic import ValidationError as PydanticValidationError
from rest_framework.exceptions import ValidationError
from sqlglot import exp

from .. import clock
from ..clock import team_timezone
from ..dates import parse_date
from ..schema import PropertyFilter, PropertyGroupFilter, PropertyGroupFilterValue, PropertyOperator
from .context import EVENT_FIELDS, SQLContext
from .engine import is_not_false, is_true, paren
from .groups import GroupPropertyField
from .hogql import compile_condition
from .regex import regex_problem
from .sessions import SessionPropertyField

UNSUPPORTED_TYPES_MESSAGE = "Property filters of type '{}' are not supported."
NEGATIVE_OPERATORS = {PropertyOperator.is_not, PropertyOperator.not_icontains, PropertyOperator.not_regex, PropertyOperator.not_in}


def and_all(conditions: list[exp.Expression]) -> Optional[exp.Expression]:
    conditions = [c for c in conditions if c is not None]
    if not conditions:
        return None
    return exp.and_(*conditions) if len(conditions) > 1 else conditions[0]


def properties_condition(properties: Any, context: SQLContext) -> Optional[exp.Expression]:
    """A list (AND of all) or a group ({type: AND|OR, values}) of filters; None when it filters nothing."""
    if properties is None:
        return None
    if isinstance(properties, (PropertyGroupFilter, PropertyGroupFilterValue)):
        parts = [properties_condition(value if isinstance(value, (PropertyGroupFilterValue, PropertyGroupFilter)) else [value], context)
                 for value in properties.values]
        parts = [part for part in parts if part is not None]
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return paren(exp.and_(*parts) if properties.type == "AND" else exp.or_(*parts))
    return and_all([property_condition(item, context) for item in properties])


def test_account_filters(team) -> list[PropertyFilter]:
    try:
        return [PropertyFilter.model_validate(item) for item in (team.test_account_filters or [])]
    except PydanticValidationError as error:
        raise ValidationError(f"The project's test account filters are invalid: {error}") from None


def _text_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _number_value(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class _Field:
    """The filtered value in its text form, and lazily its number and timestamp forms."""

    def __init__(self, context: SQLContext, prop: PropertyFilter):
        self.context = context
        self.prop = prop
        self.column: Optional[str] = None
        if prop.type == "event":
            self.text = context.event_property(prop.key)
        elif prop.type == "person":
            self.text = context.person_property(prop.key)
        elif prop.type == "event_metadata":
            if prop.key not in EVENT_FIELDS or prop.key == "properties":
                raise ValidationError(f"Unknown event metadata field: {prop.key!r}")
            self.column = EVENT_FIELDS[prop.key]
            self.text = context.event_column(self.column)
            if self.column in ("timestamp", "created_at", "person"):
                self.text = context.engine.to_text(self.text)
        else:
            raise ValidationError(UNSUPPORTED_TYPES_MESSAGE.format(prop.type))

    def number(self) -> exp.Expression:
        if self.prop.type == "event":
            return self.context.event_property_number(self.prop.key)
        if self.prop.type == "person":
            return self.context.person_property_number(self.prop.key)
        if self.column == "person":
            return self.context.event_column("person")
        return self.context.engine.text_to_number(self.text, self.context.params)

    def timestamp(self) -> exp.Expression:
        if self.column in ("timestamp", "created_at"):
            return self.context.event_column(self.column)
        return self.context.engine.text_to_timestamp(self.text, self.context.params)


class _TextField:
    """A computed text compared by a filter (an element's href, the elements chain)."""

    def __init__(self, context: SQLContext, text: exp.Expression):
        self.context = context
        self.text = text

    def number(self) -> exp.Expression:
        return self.context.engine.text_to_number(self.text.copy(), self.context.params)

    def timestamp(self) -> exp.Expression:
        return self.context.engine.text_to_timestamp(self.text.copy(), self.context.params)


def property_condition(prop: PropertyFilter, context: SQLContext) -> Optional[exp.Expression]:
    if prop.type == "hogql":
        return compile_condition(prop.key, context)
    if prop.type in ("cohort", "static-cohort", "precalculated-cohort"):
        from .cohorts import cohort_property_condition  # cohorts compiles person filters through this module

        return cohort_property_condition(prop, context)
    if prop.type == "element" and prop.key in ("selector", "tag_name", "text"):
        from .actions import element_condition  # actions compiles step properties through this module

        return element_condition(prop, context)
    operator = prop.operator or PropertyOperator.exact
    if operator == PropertyOperator.flag_evaluates_to:
        raise ValidationError("The flag_evaluates_to operator is not supported.")
    field = _joined_field(context, prop) or _Field(context, prop)
    value = prop.value

    if operator in (PropertyOperator.is_set, PropertyOperator.is_not_set):
        missing = exp.Is(this=field.text, expression=exp.null())
        return paren(missing if operator == PropertyOperator.is_not_set else exp.Not(this=missing))

    if operator in (PropertyOperator.between, PropertyOperator.not_between):
        bounds = value if isinstance(value, list) else []
        numbers = [_number_value(v) for v in bounds]
        if len(numbers) != 2 or None in numbers:
            raise ValidationError(f"The {operator.value} operator needs a list of two numbers, got {value!r}.")
        low, high = (context.param(n) for n in numbers)
        number = field.number()
        if operator == PropertyOperator.between:
            return paren(exp.and_(is_true(exp.GTE(this=number, expression=low)), is_true(exp.LTE(this=number, expression=high))))
        return paren(exp.or_(is_true(exp.LT(this=number, expression=low)), is_true(exp.GT(this=number, expression=high.copy()))))

    if isinstance(value, list):
        if not value:
            return None
        if len(value) == 1:
            value = value[0]
        elif operator in (PropertyOperator.exact, PropertyOperator.in_, PropertyOperator.is_not, PropertyOperator.not_in):
            condition = exp.In(this=field.text, expressions=[context.param(_text_value(v)) for v in value])
            if operator in (PropertyOperator.is_not, PropertyOperator.not_in):
                return is_not_false(exp.Not(this=condition))
            return is_true(condition)
        else:
            parts = [_scalar_condition(field, operator, item, context) for item in value]
            return paren(exp.and_(*parts) if operator in NEGATIVE_OPERATORS else exp.or_(*parts))
    return _scalar_condition(field, operator, value, context)


def _joined_field(context: SQLContext, prop: PropertyFilter):
    """Fields of the event's session or group (queries.sql.sessions / queries.sql.groups), else None."""
    if prop.type == "session":
        return SessionPropertyField(context, prop.key)
    if prop.type == "group":
        return GroupPropertyField(context, prop)
    if prop.type == "element":
        from .actions import element_field

        return _TextField(context, element_field(context, prop.key))
    return None


def _scalar_condition(field: _Field, operator: PropertyOperator, value: Any, context: SQLContext) -> exp.Expression:
    if value is None and operator not in (PropertyOperator.exact, PropertyOperator.is_not):
        raise ValidationError(f"The {operator.value} operator needs a value.")
    text = field.text
    if operator in (PropertyOperator.exact, PropertyOperator.in_, PropertyOperator.is_date_exact, PropertyOperator.is_cleaned_path_exact):
        if value is None:
            return paren(exp.Is(this=text, expression=exp.null()))
        return is_true(exp.EQ(this=text, expression=context.param(_text_value(value))))
    if operator in (PropertyOperator.is_not, PropertyOperator.not_in):
        if value is None:
            return paren(exp.Not(this=exp.Is(this=text, expression=exp.null())))
        return is_not_false(exp.NEQ(this=text, expression=context.param(_text_value(value))))
    if operator in (PropertyOperator.icontains, PropertyOperator.not_icontains):
        escaped = re.sub(r"([\\%_])", r"\\\1", _text_value(value))
        condition = context.engine.icontains(text, context.param(f"%{escaped}%"))
        return is_true(condition) if operator == PropertyOperator.icontains else is_not_false(exp.Not(this=condition))
    if operator in (PropertyOperator.regex, PropertyOperator.not_regex):
        pattern = _text_value(value)
        problem = regex_problem(pattern)
        if problem:
            raise ValidationError(f"Invalid regular expression {pattern!r}: {problem}")
        condition = context.engine.regex(text, context.param(pattern))
        return is_true(condition) if operator == PropertyOperator.regex else is_not_false(exp.Not(this=condition))
    if operator in (PropertyOperator.is_date_before, PropertyOperator.is_date_after):
        moment = _date_value(value, context)
        cls = exp.LT if operator == PropertyOperator.is_date_before else exp.GT
        return is_true(cls(this=field.timestamp(), expression=context.engine.timestamp(moment, context.params)))
    cls = {
        PropertyOperator.gt: exp.GT, PropertyOperator.gte: exp.GTE, PropertyOperator.min: exp.GTE,
        PropertyOperator.lt: exp.LT, PropertyOperator.lte: exp.LTE, PropertyOperator.max: exp.LTE,
    }.get(operator)
    if cls is None:
        raise ValidationError(f"Unsupported property operator: {operator.value}")
    number = _number_value(value)
    if number is None:
        return is_true(cls(this=text, expression=context.param(_text_value(value))))
    return is_true(cls(this=field.number(), expression=context.param(number)))


def _date_value(value: Any, context: SQLContext) -> datetime:
    parsed, _relative, _hours = parse_date(str(value), team_timezone(context.team), clock.now(), truncate=False)
    return parsed
