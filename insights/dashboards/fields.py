"""Validated dashboard `filters`, `variables` and tile `filters_overrides`."""
from drf_spectacular.utils import extend_schema_field
from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from rest_framework import serializers

from queries.api import validate_dashboard_filters
from queries.schema import HogQLVariable

from ..serializers import FiltersField

_VARIABLES = TypeAdapter(dict[str, HogQLVariable])


def _flat_properties(properties):
    """A flat property list, as dashboards store them: AND groups are flattened; OR groups are refused."""
    if not isinstance(properties, dict):
        return properties
    flat, pending = [], [properties]
    while pending:  # iterative: a deeply nested body must not exhaust the stack
        item = pending.pop()
        if not (isinstance(item, dict) and "values" in item):
            flat.append(item)
            continue
        if item.get("type") == "OR":
            raise serializers.ValidationError("Dashboard filters cannot use OR property groups; use a flat list of properties.")
        if not isinstance(item["values"], list):
            raise serializers.ValidationError("Invalid dashboard filters: properties: a property group's values must be a list.")
        pending.extend(reversed(item["values"]))
    return flat


@extend_schema_field({
    "type": "object",
    "additionalProperties": True,
    "description": "Dashboard filters applied to every tile: `date_from`, `date_to`, `explicitDate`, `properties` "
                   "(a list of property filters; an AND group is flattened), `breakdown_filter`.",
})
class DashboardFiltersField(FiltersField):
    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if isinstance(data.get("properties"), dict):
            data = {**data, "properties": _flat_properties(data["properties"])}
        validate_dashboard_filters(data)
        return data


@extend_schema_field({
    "type": "object",
    "additionalProperties": {"type": "object", "additionalProperties": True},
    "description": "SQL variable values by variable id: `{<id>: {variableId, code_name, value, isNull}}`.",
})
class DashboardVariablesField(FiltersField):
    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        try:
            _VARIABLES.validate_python(data)
        except PydanticValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise serializers.ValidationError(f"Invalid dashboard variables: {where}: {problem['msg']}") from None
        return data
