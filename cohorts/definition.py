"""The `filters` of a dynamic cohort (PostHog's format): an AND/OR tree of person, cohort and
behavioral leaves. Validation is strict, as PostHog's API is (unknown keys are refused), and the
engine compiles the validated tree (queries/sql/cohorts.py)."""
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from queries.schema import PropertyFilter, PropertyOperator

BEHAVIORAL_TYPES = (
    "performed_event", "performed_event_multiple", "performed_event_first_time", "performed_event_sequence",
    "performed_event_regularly", "stopped_performing_event", "restarted_performing_event",
)
TIME_INTERVALS = ("minute", "hour", "day", "week", "month", "year")
# Count comparisons of `performed_event_multiple` (None and exact mean equal).
COUNT_OPERATORS = ("gte", "lte", "gt", "lt", "eq", "exact")
PROPERTIES_MESSAGE = "Must contain a 'properties' key with type and values"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PersonLeaf(_Strict):
    type: Literal["person"]
    key: str
    operator: Optional[PropertyOperator] = None
    value: Optional[Union[str, int, float, bool, list[Union[str, int, float, bool, None]]]] = None
    negation: Optional[bool] = False
    label: Optional[str] = None

    @model_validator(mode="after")
    def _required(self):
        missing = []
        if self.value is None and self.operator not in (PropertyOperator.is_set, PropertyOperator.is_not_set):
            missing.append("value")
        if self.operator is None:
            missing.append("operator")
        if missing:
            raise ValueError(f"Missing required keys for person filter: {', '.join(missing)}")
        return self

    def property_filter(self) -> PropertyFilter:
        return PropertyFilter(type="person", key=self.key, operator=self.operator, value=self.value)


class CohortLeaf(_Strict):
    type: Literal["cohort"]
    key: Literal["id"] = "id"
    value: int = Field(ge=1, lt=2**63)
    negation: Optional[bool] = False
    operator: Optional[Literal["in", "not_in"]] = None
    label: Optional[str] = None
    cohort_name: Optional[str] = None


class BehavioralLeaf(_Strict):
    type: Literal["behavioral"]
    key: Union[str, int]
    value: Literal[BEHAVIORAL_TYPES]
    event_type: Literal["events", "actions"] = "events"
    time_value: Optional[int] = Field(default=None, ge=0, lt=2**31)
    time_interval: Optional[Literal[TIME_INTERVALS]] = None
    negation: Optional[bool] = False
    operator: Optional[str] = None
    operator_value: Optional[int] = Field(default=None, ge=0, lt=2**31)
    seq_time_interval: Optional[Literal[TIME_INTERVALS]] = None
    seq_time_value: Optional[int] = Field(default=None, ge=0, lt=2**31)
    seq_event: Optional[Union[str, int]] = None
    seq_event_type: Optional[Literal["events", "actions"]] = None
    total_periods: Optional[int] = Field(default=None, ge=0, lt=2**31)
    min_periods: Optional[int] = Field(default=None, ge=0, lt=2**31)
    event_filters: Optional[list[PropertyFilter]] = None
    explicit_datetime: Optional[str] = None
    label: Optional[str] = None

    @model_validator(mode="after")
    def _count_operator(self):
        if self.value == "performed_event_multiple" and self.operator not in (None, *COUNT_OPERATORS):
            raise ValueError("count_operator must be gte, lte, eq, or None")
        return self


def _kind(value: Any) -> Optional[str]:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "group" if kind in ("AND", "OR") else kind


class Group(_Strict):
    type: Literal["AND", "OR"]
    values: list[Annotated[
        Union[Annotated["Group", Tag("group")], Annotated[PersonLeaf, Tag("person")], Annotated[CohortLeaf, Tag("cohort")],
              Annotated[BehavioralLeaf, Tag("behavioral")]],
        Discriminator(_kind, custom_error_type="invalid_filter",
                      custom_error_message="Each value must be a group (type AND or OR) or a person, cohort or behavioral filter"),
    ]]


class CohortFilters(BaseModel):
    # Other top-level keys are kept (PostHog stores what the frontend sends next to `properties`).
    model_config = ConfigDict(extra="allow")
    properties: Group


def parse_filters(filters: Any) -> CohortFilters:
    """The validated tree; ValueError with PostHog's message when malformed."""
    if not isinstance(filters, dict) or not isinstance(filters.get("properties"), dict):
        raise ValueError(PROPERTIES_MESSAGE)
    properties = filters["properties"]
    if "type" not in properties or "values" not in properties:
        raise ValueError(PROPERTIES_MESSAGE)
    try:
        return CohortFilters.model_validate(filters)
    except ValidationError as error:
        raise ValueError(_message(error)) from None


def _message(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"{message} ({where})" if where else message


def leaves(group: Group):
    for value in group.values:
        if isinstance(value, Group):
            yield from leaves(value)
        else:
            yield value


def referenced_cohort_ids(filters: Optional[dict]) -> set[int]:
    """Ids of the cohorts a (raw) filters tree refers to; nothing when it is malformed."""
    try:
        tree = parse_filters(filters)
    except ValueError:
        return set()
    return {leaf.value for leaf in leaves(tree.properties) if isinstance(leaf, CohortLeaf)}


def has_behavioral(filters: Optional[dict]) -> bool:
    try:
        tree = parse_filters(filters)
    except ValueError:
        return False
    return any(isinstance(leaf, BehavioralLeaf) for leaf in leaves(tree.properties))


# --- Legacy `groups` ------------------------------------------------------------------------------

LEGACY_DEFAULT_DAYS = 365


def groups_to_filters(groups: Any) -> dict:
    """PostHog's conversion of the legacy `groups` format to a `filters` tree: the groups are OR'ed;
    a group's `properties` become an AND of person filters (legacy `event` filters count as person
    ones, a bare `{key: value}` dict as exact matches); a group's `action_id`/`event_id` becomes
    `performed_event` over the last `days` (365 by default) days, or `performed_event_multiple` when
    `count` > 0 (compared with `count_operator`). ValueError when a group is none of these."""
    if not isinstance(groups, list):
        raise ValueError("Must be a list.")
    converted = []
    for group in groups:
        if not isinstance(group, dict):
            raise ValueError("Each group must be an object with properties, action_id or event_id.")
        if group.get("properties"):
            converted.append({"type": "AND", "values": _legacy_person_filters(group["properties"])})
        elif group.get("action_id") or group.get("event_id"):
            converted.append({"type": "AND", "values": [_legacy_behavioral(group)]})
        else:
            raise ValueError("Each group must be an object with properties, action_id or event_id.")
    return {"properties": {"type": "OR", "values": converted}}


def _legacy_person_filters(properties: Any) -> list[dict]:
    if isinstance(properties, dict):
        properties = [{"key": key, "value": value} for key, value in properties.items()]
    if not isinstance(properties, list) or not all(isinstance(item, dict) for item in properties):
        raise ValueError("A group's properties must be a list of filters or an object of values.")
    leaves = []
    for item in properties:
        leaf = {key: value for key, value in item.items() if value is not None}
        if leaf.get("type", "person") in ("person", "event"):
            leaf["type"] = "person"
            leaf.setdefault("operator", "exact")
        leaves.append(leaf)
    return leaves


def _legacy_behavioral(group: dict) -> dict:
    try:
        count = max(0, int(group.get("count") or 0))
    except (TypeError, ValueError):
        count = 0
    is_action = bool(group.get("action_id"))
    leaf = {
        "type": "behavioral", "key": group["action_id"] if is_action else group["event_id"],
        "value": "performed_event_multiple" if count else "performed_event",
        "event_type": "actions" if is_action else "events",
        "time_interval": "day", "time_value": group.get("days") or LEGACY_DEFAULT_DAYS,
    }
    if count:
        leaf.update(operator=group.get("count_operator"), operator_value=count)
    return leaf
