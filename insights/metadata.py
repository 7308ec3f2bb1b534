"""A name and a description for an insight's query (`generate_metadata`), computed without any
external service; a configured LLM (insights/llm.py) may phrase them instead, from the same facts."""
import json
import re
from typing import Any, Optional

from rest_framework import serializers
from rest_framework.exceptions import APIException, ParseError, ValidationError

from queries.api import validate_query

from . import llm
from .analysis import KIND_NAMES, _math_words, source_of

TABLE_KINDS = ("ActorsQuery", "EventsQuery", "GroupsQuery")
MAX_NAME_CHARS = 400
MAX_LISTED_SERIES = 3


class GenerateMetadataRequestSerializer(serializers.Serializer):
    query = serializers.JSONField(help_text="The insight's query: an InsightVizNode, or an ActorsQuery, EventsQuery or GroupsQuery.")


class InsightMetadataSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()


class MetadataFailed(APIException):
    status_code = 500
    default_detail = "Failed to generate insight metadata. Please try again."
    default_code = "error"


def validated_query(data: Any) -> dict:
    """The request's `query`, or PostHog's 400s for a missing or invalid one."""
    if not isinstance(data, dict) or "query" not in data or data["query"] is None:
        raise ValidationError("Missing 'query' field in request body")
    query = data["query"]
    if not isinstance(query, dict) or (query.get("kind") not in TABLE_KINDS and query.get("kind") != "InsightVizNode"):
        raise ValidationError("Invalid query format")
    try:
        validate_query(query)
    except ParseError:
        raise ValidationError("Invalid query format") from None
    return query


# --- Deterministic texts ------------------------------------------------------------------------------


def _entity(node: dict) -> str:
    if not isinstance(node, dict):
        return "events"
    if node.get("custom_name"):
        return str(node["custom_name"])
    if node.get("kind") == "ActionsNode":
        return str(node.get("name") or f"action {node.get('id')}")
    if node.get("kind") == "DataWarehouseNode":
        return str(node.get("table_name") or "warehouse rows")
    return str(node.get("event") or node.get("name") or "all events")


def _measured(node: dict) -> str:
    words = _math_words(node)
    return f"{_entity(node)} ({words})" if words and words != "count" else f"{_entity(node)} count"


def _joined(items: list[str], word: str = "and") -> str:
    shown = items[:MAX_LISTED_SERIES]
    extra = len(items) - len(shown)
    if extra:
        shown.append(f"{extra} more")
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + f" {word} " + shown[-1]


def _period(source: dict) -> str:
    date_range = source.get("dateRange") or {}
    date_from, date_to = date_range.get("date_from") or "-7d", date_range.get("date_to")
    match = re.fullmatch(r"-([0-9]+)([hdwmy])", str(date_from))
    if match and not date_to:
        units = {"h": "hour", "d": "day", "w": "week", "m": "month", "y": "year"}
        number, unit = int(match[1]), units[match[2]]
        return f"over the last {number} {unit}{'s' if number != 1 else ''}"
    if date_from == "all":
        return "over all time"
    return f"from {date_from} to {date_to or 'now'}"


def _breakdown(source: dict) -> Optional[str]:
    breakdown = (source.get("breakdownFilter") or {})
    if breakdown.get("breakdowns"):
        return _joined([str(item.get("property")) for item in breakdown["breakdowns"] if isinstance(item, dict)])
    value = breakdown.get("breakdown")
    if isinstance(value, list):
        return _joined([str(item) for item in value]) if value else None
    return str(value) if value not in (None, "") else None


def _filters_sentence(source: dict) -> str:
    properties = source.get("properties")
    count = len(properties.get("values") or []) if isinstance(properties, dict) else len(properties or [])
    parts = []
    if count:
        parts.append(f"{count} property filter{'s' if count != 1 else ''}")
    if source.get("filterTestAccounts"):
        parts.append("internal and test users excluded")
    return f" With {' and '.join(parts)}." if parts else ""


def deterministic_metadata(query: dict) -> dict:
    source = source_of(query)
    kind = source.get("kind")
    series = [node for node in source.get("series") or [] if isinstance(node, dict)]
    breakdown = _breakdown(source)
    by = f" by {breakdown}" if breakdown else ""
    period = _period(source)
    if kind == "TrendsQuery":
        measured = [_measured(node) for node in series] or ["events count"]
        interval = source.get("interval") or "day"
        name = _joined(measured) + by
        description = f"Trend of {_joined(measured)} {period}, per {interval}{', broken down by ' + breakdown if breakdown else ''}."
    elif kind == "FunnelsQuery":
        steps = [_entity(node) for node in series]
        name = " → ".join(steps[:5]) + (" …" if len(steps) > 5 else "") + " funnel" + by
        description = (f"Conversion through {len(steps)} step{'s' if len(steps) != 1 else ''} ({' → '.join(steps)}) {period}"
                       f"{', broken down by ' + breakdown if breakdown else ''}.")
    elif kind == "RetentionQuery":
        retention = source.get("retentionFilter") or {}
        start, back = _entity(retention.get("targetEntity") or {}), _entity(retention.get("returningEntity") or {})
        period_name = str(retention.get("period") or "Day").lower()
        name = f"Retention: {start} then {back}"
        description = f"Share of users who did {start} and came back to do {back}, per {period_name} {period}."
    elif kind == "LifecycleQuery":
        name = f"Lifecycle of {_entity(series[0] if series else {})}"
        description = f"New, returning, resurrecting and dormant users of {_entity(series[0] if series else {})} {period}."
    elif kind == "StickinessQuery":
        measured = [_entity(node) for node in series] or ["events"]
        name = f"Stickiness of {_joined(measured)}"
        description = f"How many {source.get('interval') or 'day'}s users performed {_joined(measured)} {period}."
    elif kind == "PathsQuery":
        paths = source.get("pathsFilter") or {}
        start, end = paths.get("startPoint"), paths.get("endPoint")
        name = "User paths" + (f" from {start}" if start else "") + (f" to {end}" if end else "")
        description = f"The most common sequences of steps users took{' from ' + start if start else ''}{' to ' + end if end else ''} {period}."
    elif kind == "EventsQuery":
        event = source.get("event")
        name = f"{event} events" if event else "Events table"
        description = f"A table of {'`' + event + '` ' if event else ''}events with the columns {', '.join(map(str, (source.get('select') or [])[:5])) or 'chosen'}."
    elif kind in ("ActorsQuery", "GroupsQuery"):
        name = "Persons" if kind == "ActorsQuery" else "Groups"
        description = f"A table of {name.lower()}{' matching ' + repr(source['search']) if source.get('search') else ''}."
    else:
        name = f"{KIND_NAMES.get(kind, 'Data')} insight"
        description = f"{name} {period}."
    return {"name": name[:MAX_NAME_CHARS], "description": description + _filters_sentence(source)}


# --- Entry point ------------------------------------------------------------------------------


def generate_metadata(query: dict) -> dict:
    """`{"name", "description"}` for the query: the configured LLM's when there is one (a failure of
    the provider is PostHog's 500), else computed here."""
    facts = deterministic_metadata(query)
    if not llm.is_configured():
        return facts
    answer = llm.complete_or_none(_messages(query, facts))
    parsed = _parsed(answer)
    if parsed is None:
        raise MetadataFailed()
    return parsed


def _messages(query: dict, facts: dict) -> list[dict]:
    source = source_of(query)
    return [
        {"role": "system", "content": "You name analytics insights. Answer with a JSON object {\"name\": ..., \"description\": ...} only."},
        {"role": "user", "content": "\n".join([
            f"Insight type: {KIND_NAMES.get(source.get('kind'), 'Data')}",
            f"Query: {json.dumps(source, sort_keys=True)[:4000]}",
            f"A plain name would be: {facts['name']}",
            f"A plain description would be: {facts['description']}",
            "Give a short, specific name (at most 60 characters) and a one-sentence description.",
        ])},
    ]


def _parsed(answer: Optional[str]) -> Optional[dict]:
    if not answer:
        return None
    text = answer.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not isinstance(data.get("description"), str):
        return None
    return {"name": data["name"].strip()[:MAX_NAME_CHARS], "description": data["description"].strip()}
