"""How a HogQL query's `variables` resolve through the team's saved insight variables.

A query's `variables` is keyed by variable id: `{id: {variableId, code_name, value?, isNull?}}`.
An entry whose id is a saved variable of the team takes the saved variable's default when it
carries no value; entries that name no saved variable keep the value they carry.
"""
import re
import uuid
from typing import Optional

from insight_variables.models import InsightVariable

from . import clock
from .dates import parse_date

_RELATIVE_DATE = re.compile(r"^-?[0-9]*[hdwmqyHDWQYMs](Start|End)?$")


def _saved(team, ids) -> dict[str, InsightVariable]:
    valid = []
    for raw in ids:
        try:
            valid.append(uuid.UUID(str(raw)))
        except ValueError:
            continue
    if not valid:
        return {}
    return {str(variable.id): variable for variable in InsightVariable.objects.filter(team=team, id__in=valid)}


def _typed_value(variable: InsightVariable, value, team):
    if variable.type == InsightVariable.Type.LIST:
        if variable.is_multi:
            return value if isinstance(value, list) else [value]
        return value[0] if isinstance(value, list) and value else value
    if variable.type == InsightVariable.Type.DATE and isinstance(value, str) and _RELATIVE_DATE.match(value.strip()):
        resolved, _, _ = parse_date(value.strip(), clock.team_timezone(team), clock.now(), truncate=False)
        return resolved.strftime("%Y-%m-%d %H:%M:%S")
    return value


def resolve_query_variables(team, variables: Optional[dict]) -> Optional[dict]:
    """The query's variables with saved definitions applied: a missing value becomes the default,
    List values take the variable's single/multi shape, relative dates become absolute."""
    if not isinstance(variables, dict) or not variables:
        return variables
    saved = _saved(team, variables.keys())
    resolved = {}
    for variable_id, entry in variables.items():
        variable = saved.get(str(variable_id))
        if variable is not None and isinstance(entry, dict):
            is_null = bool(entry.get("isNull"))
            value = entry.get("value")
            if value is None and not is_null:
                value = variable.default_value
            if is_null:
                value = [] if variable.type == InsightVariable.Type.LIST and variable.is_multi else None
            elif value is not None:
                value = _typed_value(variable, value, team)
            entry = {**entry, "variableId": str(variable_id), "code_name": entry.get("code_name") or variable.code_name,
                     "value": value}
        resolved[variable_id] = entry
    return resolved
