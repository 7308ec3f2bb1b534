"""Validation of an insight's `query` node, with the engine's schema (`queries.schema`).

An insight stores a wrapper node, a bare HogQL query or a bare insight query. A query the
schema refuses answers like PostHog's parser, 400 `parse_error`, with a detail naming where
and what, e.g. `source.series: must be a list`; errors without such a short form keep the
schema's own report.
"""
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from rest_framework.exceptions import ParseError

from queries.schema import WRAPPER_KINDS, QuerySchemaRoot, SchemaModel

INSIGHT_QUERY_KINDS = frozenset(
    {"TrendsQuery", "FunnelsQuery", "RetentionQuery", "PathsQuery", "StickinessQuery", "LifecycleQuery"}
)
STORABLE_KINDS = frozenset({*WRAPPER_KINDS, "HogQLQuery", *INSIGHT_QUERY_KINDS})
_TYPE_ERRORS = {
    "list_type": "must be a list",
    "string_type": "must be a string",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
}


class QueryValidationError(ParseError):
    """Answered like PostHog's schema check: 400 `parse_error` with the reason as `detail`."""


def validate_query(query: dict) -> None:
    """Raise QueryValidationError unless `query` is a node an insight can be saved with."""
    kind = query.get("kind")
    if not isinstance(kind, str) or not kind:
        raise QueryValidationError("query.kind: field required")
    if kind not in STORABLE_KINDS:
        raise QueryValidationError(f"kind: unsupported query kind '{kind}'")
    try:
        QuerySchemaRoot.model_validate(query)
    except ValidationError as error:
        raise QueryValidationError(_describe(error)) from None


def wrap_for_saving(query: dict) -> dict:
    """MCP clients may send a bare HogQL or insight query; saved insights hold wrapper nodes."""
    kind = query.get("kind")
    if kind == "HogQLQuery":
        return {"kind": "DataVisualizationNode", "source": query}
    if kind in INSIGHT_QUERY_KINDS:
        return {"kind": "InsightVizNode", "source": query}
    return query


# -- the schema's first error, said briefly ----------------------------------------------------


def _node_models(base: type[BaseModel]) -> dict[str, type[BaseModel]]:
    models = {}
    for model in base.__subclasses__():
        kind = model.model_fields.get("kind")
        if kind is not None and isinstance(kind.default, str):
            models[kind.default] = model
        models.update(_node_models(model))
    return models


# Query node models by kind: a discriminated union puts the kind it chose into an error's location.
NODE_MODELS = _node_models(SchemaModel)


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    location, error_type = first["loc"], first["type"]
    fields = [str(part) for part in location if part not in NODE_MODELS]
    path = ".".join(fields)
    where = path if fields[:1] == ["source"] else f"query.{path}"
    if error_type == "union_tag_invalid" and fields[-1:] == ["source"]:
        wrapper = [part for part in location if part in NODE_MODELS][-1]
        return f"{where}: {wrapper} cannot wrap a {first['ctx']['tag']}"
    if error_type == "union_tag_invalid":
        what = "series" if "series" in fields else "query"
        return f"{where}.kind: unsupported {what} kind '{first['ctx']['tag']}'"
    if error_type == "union_tag_not_found":
        return f"{where}.kind: field required"
    if error_type == "missing":
        return f"{where}: {'field required' if fields[-1:] == ['source'] else _expectation(location)}"
    if error_type in _TYPE_ERRORS:
        return f"{where}: {_TYPE_ERRORS[error_type]}"
    return str(error)


def _expectation(location) -> str:
    """What the schema expects at `location` (a missing field), as the error's wording."""
    expected = _expected_type(location)
    if get_origin(expected) is list:
        return "must be a list"
    if expected is str:
        return "must be a string"
    if get_origin(expected) is dict or (isinstance(expected, type) and issubclass(expected, BaseModel)):
        return "must be an object"
    return "field required"


def _expected_type(location) -> Any:
    annotation: Any = None
    for part in location:
        if part in NODE_MODELS:
            annotation = NODE_MODELS[part]
            continue
        annotation = _unwrapped(annotation)
        if isinstance(part, int) and get_origin(annotation) is list:
            annotation = get_args(annotation)[0]
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel) and part in annotation.model_fields:
            annotation = annotation.model_fields[part].annotation
        else:
            return None
    return _unwrapped(annotation)


def _unwrapped(annotation: Any) -> Any:
    """`Optional[X]` and `Annotated[X, ...]` -> X."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            members = [member for member in get_args(annotation) if member is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
