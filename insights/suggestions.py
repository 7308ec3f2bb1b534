"""Follow-up insights for an insight: `[{title, description, targetQuery}]`.

Deterministic suggestions come first, per kind of the insight's InsightVizNode source:
- retention: stickiness and lifecycle of the returning entity (as PostHog);
- trends: a breakdown by an event property with real variety in recent events, unique users
  instead of totals, a comparison with the previous period, a funnel through the series events;
- funnels: the step pair with the biggest drop-off (from the cached result) broken down by a
  varied property, and its conversion rate over time;
- lifecycle and stickiness: the other two views of the same event (stickiness or lifecycle, and
  retention).
When an LLM is configured and the insight has a cached result, up to three of its suggestions
follow. Every targetQuery is checked with the query engine (without computing it) before it is
returned, so a client can always run it.
"""
import copy
import json
import logging
import math
from collections import Counter
from typing import Any, Optional

from rest_framework import serializers
from rest_framework.exceptions import APIException

from queries.api import execute_query
from queries.selectors import recent_event_properties

from . import llm
from .analysis import biggest_drop_off, cached_response, deterministic_analysis, funnel_steps
from .wording import pct

logger = logging.getLogger(__name__)

MAX_LLM_SUGGESTIONS = 3
MAX_FUNNEL_STEPS = 5
# Recent events read to find a property worth breaking down by (split across the series events).
PROPERTY_SAMPLE_SIZE = 500
MAX_SAMPLED_EVENTS = 5
MAX_BREAKDOWN_VALUES = 25  # the engine's default breakdown limit: more values land in "Other"
MIN_COVERAGE = 0.5
MAX_CONTEXT_CHARS = 4000
# Identifiers, timestamps and SDK internals: never a useful breakdown.
IGNORED_PROPERTIES = {
    "$session_id", "$window_id", "$insert_id", "$device_id", "$anon_distinct_id", "distinct_id", "token", "$token",
    "$time", "$timestamp", "$sent_at", "$lib", "$lib_version", "$lib_version_major", "$uuid", "uuid",
    "$process_person_profile", "$geoip_disable", "$ip", "$pageview_id", "$prev_pageview_id", "$user_id", "$set",
    "$set_once", "$unset", "$groups", "$group_set", "$configured_session_timeout_ms", "$is_identified",
}
IGNORED_PREFIXES = ("$feature_flag_", "$set", "$unset", "$group_", "$sdk_debug")
RETENTION_TO_INTERVAL = {"Hour": "hour", "Day": "day", "Week": "day", "Month": "week"}
INTERVAL_TO_RETENTION = {"hour": "Hour", "day": "Day", "week": "Week", "month": "Month"}
INTERVAL_WORDS = {"hour": "hours per day", "day": "days per week", "week": "weeks per month"}


class InsightSuggestionSerializer(serializers.Serializer):
    title = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    targetQuery = serializers.JSONField(help_text="An InsightVizNode query, runnable as is (e.g. with POST /query/).")


class SuggestionsRequestSerializer(serializers.Serializer):
    context = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=20000,
        help_text="Optional text, typically the previous analysis of this insight, to focus the LLM's suggestions.",
    )


# --- Entry point ----------------------------------------------------------------------------------


def suggest_for_insight(insight, team, user, context: Optional[str] = None) -> list[dict]:
    llm.ensure_ai_allowed(team.organization)
    query = insight.query
    if not isinstance(query, dict) or query.get("kind") != "InsightVizNode" or not isinstance(query.get("source"), dict):
        return []
    try:
        response = cached_response(team, query, user=user, insight_id=insight.id)
    except APIException:  # not a query this server can run: nothing to build on
        return []
    source = query["source"]
    builder = BUILDERS.get(source.get("kind"))
    candidates = builder(team, source, response) if builder else []
    suggestions = [item for item in candidates if runnable(team, item["targetQuery"])]
    if response is not None and llm.is_configured():
        suggestions += _llm_suggestions(team, insight, query, response, context, suggestions)
    return suggestions


def runnable(team, query: dict) -> bool:
    """Whether the engine accepts the query. force_cache builds and validates the runner but never computes."""
    try:
        execute_query(team, query, refresh="force_cache")
    except APIException as error:
        logger.info("dropping a suggestion the engine refuses: %s", error.detail)
        return False
    return True


def _suggestion(title: str, description: Optional[str], source: dict) -> dict:
    return {"title": title, "description": description, "targetQuery": {"kind": "InsightVizNode", "source": source}}


def _common(source: dict) -> dict:
    """The filters every suggestion keeps from the insight."""
    return {key: copy.deepcopy(source[key]) for key in ("dateRange", "properties", "filterTestAccounts") if source.get(key) is not None}


def _event_node(event: Optional[str], *, properties=None, name=None, custom_name=None) -> dict:
    node: dict[str, Any] = {"kind": "EventsNode", "event": event, "name": name or event or "All events"}
    if custom_name:
        node["custom_name"] = custom_name
    if properties:
        node["properties"] = copy.deepcopy(properties)
    return node


def _display(node: dict) -> str:
    return str(node.get("custom_name") or node.get("name") or node.get("event") or "all events")


# --- A property with real variety -----------------------------------------------------------------


def varied_property(team, events: list[Optional[str]], exclude: set[str] = frozenset()) -> Optional[tuple[str, int]]:
    """(key, distinct values) of the event property that best splits recent events of `events`.

    Reads at most PROPERTY_SAMPLE_SIZE recent events (one index-ordered query per event name). A
    candidate is present on at least half of them and has 2 to 25 distinct values that are not
    nearly all different (identifiers); the one with the most even spread (entropy) wins.
    """
    names = list(dict.fromkeys(events))[:MAX_SAMPLED_EVENTS]
    if not names:
        return None
    per_event = PROPERTY_SAMPLE_SIZE // len(names)
    samples: list = []
    for name in ([None] if None in names else names):
        samples += recent_event_properties(team.id, event=name, limit=PROPERTY_SAMPLE_SIZE if name is None else per_event)
    values: dict[str, Counter] = {}
    for properties in samples:
        if not isinstance(properties, dict):
            continue
        for key, value in properties.items():
            if key in exclude or key in IGNORED_PROPERTIES or key.startswith(IGNORED_PREFIXES):
                continue
            if value is None or value == "" or isinstance(value, (dict, list)):
                continue
            values.setdefault(key, Counter())[str(value)] += 1
    best, best_score = None, 0.0
    for key in sorted(values):
        counts = values[key]
        present, distinct = sum(counts.values()), len(counts)
        if not 2 <= distinct <= MAX_BREAKDOWN_VALUES or present < MIN_COVERAGE * len(samples) or distinct > 0.9 * present:
            continue
        entropy = -sum(c / present * math.log2(c / present) for c in counts.values())
        score = entropy * present / len(samples)
        if score > best_score:
            best, best_score = (key, distinct), score
    return best


def _breakdown_keys(source: dict) -> set[str]:
    breakdown = source.get("breakdownFilter") or {}
    keys = {str(item.get("property")) for item in breakdown.get("breakdowns") or [] if isinstance(item, dict)}
    value = breakdown.get("breakdown")
    keys.update(str(v) for v in (value if isinstance(value, list) else [value]) if v is not None)
    return keys


def _has_breakdown(source: dict) -> bool:
    breakdown = source.get("breakdownFilter") or {}
    return bool(breakdown.get("breakdown") not in (None, [], "") or breakdown.get("breakdowns"))


# --- Per kind -------------------------------------------------------------------------------------


def _trends(team, source: dict, response: Optional[dict]) -> list[dict]:
    series = [node for node in source.get("series") or [] if isinstance(node, dict)]
    if not series:
        return []
    suggestions = []
    events = [node.get("event") for node in series if node.get("kind") == "EventsNode"]
    if not _has_breakdown(source) and events:
        found = varied_property(team, events)
        if found:
            key, distinct = found
            target = {**copy.deepcopy(source), "breakdownFilter": {"breakdown": key, "breakdown_type": "event"}}
            suggestions.append(_suggestion(
                f"{', '.join(_display(node) for node in series[:3])} by {key}",
                f"{key} takes {distinct} different values on recent events: see which ones drive the numbers.",
                target,
            ))
    if any((node.get("math") or "total") == "total" for node in series):
        target = copy.deepcopy(source)
        for node in target["series"]:
            if isinstance(node, dict) and (node.get("math") or "total") == "total":
                node["math"] = "dau"
        interval = source.get("interval") or "day"
        suggestions.append(_suggestion(
            "Unique users instead of total count",
            f"Count each person once per {interval}: is a change due to more people, or to more events per person?",
            target,
        ))
    compare = source.get("compareFilter") or {}
    if not compare.get("compare") and ((source.get("dateRange") or {}).get("date_from") != "all"):
        suggestions.append(_suggestion(
            "Compare to the previous period",
            "The same series next to the period just before, to tell a real change from the usual level.",
            {**copy.deepcopy(source), "compareFilter": {"compare": True}},
        ))
    steps, seen = [], set()
    for node in series:
        if node.get("kind") == "EventsNode" and node.get("event") and node["event"] not in seen:
            seen.add(node["event"])
            steps.append(node)
    steps = steps[:MAX_FUNNEL_STEPS]
    if len(steps) >= 2:
        funnel_series = [_event_node(node["event"], properties=node.get("properties"), custom_name=node.get("custom_name"))
                         for node in steps]
        funnel = {"kind": "FunnelsQuery", "series": funnel_series, **_common(source)}
        suggestions.append(_suggestion(
            "Funnel: " + " → ".join(_display(node) for node in steps),
            "How many people go on from one of these events to the next, and how long it takes them.",
            funnel,
        ))
    return suggestions


def _funnels(team, source: dict, response: Optional[dict]) -> list[dict]:
    series = [node for node in source.get("series") or [] if isinstance(node, dict)]
    if len(series) < 2:
        return []
    funnels_filter = {key: value for key, value in (source.get("funnelsFilter") or {}).items()
                      if key in ("funnelOrderType", "funnelWindowInterval", "funnelWindowIntervalUnit")}
    viz = (source.get("funnelsFilter") or {}).get("funnelVizType") or "steps"
    steps = funnel_steps(response["results"]) if response is not None and viz == "steps" else None
    drop = biggest_drop_off(steps) if steps and len(steps) == len(series) else None
    if drop is not None:
        pair = series[drop - 1: drop + 1]
        lost = pct((steps[drop - 1]["count"] - steps[drop]["count"]) / steps[drop - 1]["count"])
        scope, why = " → ".join(_display(node) for node in pair), f"the biggest drop-off ({lost} did not continue)"
    else:
        pair, scope, why = series, "Funnel", "the funnel"
    base = {**{key: copy.deepcopy(value) for key, value in source.items() if key not in ("series", "funnelsFilter", "breakdownFilter")},
            "series": copy.deepcopy(pair)}
    suggestions = []
    found = varied_property(team, [node.get("event") for node in pair], exclude=_breakdown_keys(source))
    if found:
        key, distinct = found
        suggestions.append(_suggestion(
            f"{scope} by {key}",
            f"Break down {why} by {key} ({distinct} values on recent events) to see which segments convert worst.",
            {**copy.deepcopy(base), "funnelsFilter": dict(funnels_filter),
             "breakdownFilter": {"breakdown": key, "breakdown_type": "event"}},
        ))
    if viz != "trends":
        suggestions.append(_suggestion(
            f"Conversion over time: {' → '.join(_display(node) for node in pair)}",
            f"The conversion rate of {why} per {source.get('interval') or 'day'}, to see when it changed.",
            {**copy.deepcopy(base), "funnelsFilter": {**funnels_filter, "funnelVizType": "trends"}},
        ))
    return suggestions


def _retention(team, source: dict, response: Optional[dict]) -> list[dict]:
    retention = source.get("retentionFilter") or {}
    entity = retention.get("returningEntity") or {"id": "$pageview", "type": "events"}
    if entity.get("type") == "actions" or entity.get("kind") == "ActionsNode":
        return []  # the engine computes events only
    event = entity.get("id") if isinstance(entity.get("id"), str) else entity.get("name")
    node = _event_node(event, properties=entity.get("properties"), name=entity.get("name"), custom_name=entity.get("custom_name"))
    interval = RETENTION_TO_INTERVAL.get(retention.get("period") or "Day", "day")
    return _stickiness_suggestion(source, node, interval) + _lifecycle_suggestion(source, node, interval)


def _lifecycle(team, source: dict, response: Optional[dict]) -> list[dict]:
    node = _first_event_node(source)
    if node is None:
        return []
    interval = source.get("interval") or "day"
    return _stickiness_suggestion(source, node, interval) + _retention_suggestion(source, node, interval)


def _stickiness(team, source: dict, response: Optional[dict]) -> list[dict]:
    node = _first_event_node(source)
    if node is None:
        return []
    interval = source.get("interval") or "day"
    return _lifecycle_suggestion(source, node, interval) + _retention_suggestion(source, node, interval)


def _first_event_node(source: dict) -> Optional[dict]:
    node = next((node for node in source.get("series") or [] if isinstance(node, dict)), None)
    if node is None or node.get("kind") != "EventsNode":
        return None
    return _event_node(node.get("event"), properties=node.get("properties"), name=node.get("name"), custom_name=node.get("custom_name"))


def _stickiness_suggestion(source: dict, node: dict, interval: str) -> list[dict]:
    return [_suggestion(
        f"How often people do {_display(node)}",
        f"Stickiness: how many {INTERVAL_WORDS.get(interval, interval + 's')} people perform this event.",
        {"kind": "StickinessQuery", "series": [copy.deepcopy(node)], "interval": interval, "stickinessFilter": {}, **_common(source)},
    )]


def _lifecycle_suggestion(source: dict, node: dict, interval: str) -> list[dict]:
    return [_suggestion(
        f"New, returning, resurrecting and dormant users of {_display(node)}",
        "Lifecycle: whether the people doing this event are new, come back, or drop off.",
        {"kind": "LifecycleQuery", "series": [copy.deepcopy(node)], "interval": interval, "lifecycleFilter": {}, **_common(source)},
    )]


def _retention_suggestion(source: dict, node: dict, interval: str) -> list[dict]:
    period = INTERVAL_TO_RETENTION.get(interval)
    if period is None or node.get("event") is None:
        return []
    entity = {"id": node["event"], "name": node.get("name") or node["event"], "type": "events"}
    return [_suggestion(
        f"Retention of {_display(node)}",
        f"Of the people who do this event in a {interval}, how many do it again in the following {interval}s.",
        {"kind": "RetentionQuery", "retentionFilter": {"targetEntity": entity, "returningEntity": dict(entity), "period": period,
                                                       "totalIntervals": 8}, **_common(source)},
    )]


BUILDERS = {
    "TrendsQuery": _trends,
    "FunnelsQuery": _funnels,
    "RetentionQuery": _retention,
    "LifecycleQuery": _lifecycle,
    "StickinessQuery": _stickiness,
}


# --- LLM suggestions ------------------------------------------------------------------------------


def _llm_suggestions(team, insight, query: dict, response: dict, context: Optional[str], existing: list[dict]) -> list[dict]:
    answer = llm.complete_or_none(suggestion_messages(insight, query, deterministic_analysis(query, response), context))
    if answer is None:
        return []
    items = parse_json_array(answer)
    if items is None:
        logger.warning("LLM suggestions are not a JSON array; ignored")
        return []
    seen = [item["targetQuery"] for item in existing]
    suggestions = []
    for item in items:
        if len(suggestions) == MAX_LLM_SUGGESTIONS:
            break
        if not isinstance(item, dict) or not isinstance(item.get("title"), str) or not item["title"].strip():
            continue
        target = item.get("targetQuery")
        if not isinstance(target, dict) or target.get("kind") != "InsightVizNode" or target in seen:
            continue
        if not runnable(team, target):
            continue
        description = item.get("description") if isinstance(item.get("description"), str) else None
        seen.append(target)
        suggestions.append({"title": item["title"].strip()[:400], "description": description, "targetQuery": target})
    return suggestions


def suggestion_messages(insight, query: dict, facts: str, context: Optional[str]) -> list[dict]:
    """The prompt: the query's shape without property filter values, the computed facts, the user's context."""
    lines = [
        f"Insight: {insight.name or insight.derived_name or 'untitled'}",
        f"Current query: {json.dumps(_without_filter_values(query), sort_keys=True)}",
        "",
        "Facts computed from its current result:",
        facts,
    ]
    if context:
        lines += ["", "Previous analysis:", context[:MAX_CONTEXT_CHARS]]
    lines += [
        "",
        "Suggest up to 3 follow-up insights that explain these results or look at a related metric. Answer with "
        "only a JSON array of objects with the keys title (short), description (one sentence) and targetQuery: "
        '{"kind": "InsightVizNode", "source": <a TrendsQuery, FunnelsQuery, RetentionQuery, StickinessQuery, '
        'LifecycleQuery or PathsQuery>}. Series are {"kind": "EventsNode", "event": <name>} using only event names '
        'from the current query; breakdowns go in "breakdownFilter": {"breakdown": <property>, "breakdown_type": '
        '"event"}; the chart type goes in "trendsFilter": {"display": ...}.',
    ]
    return [
        {"role": "system", "content": "You design product analytics queries and answer with JSON only."},
        {"role": "user", "content": "\n".join(lines)},
    ]


def _without_filter_values(node: Any) -> Any:
    """Property filter values can be personal data (an email, a name): the provider gets the keys only."""
    if isinstance(node, list):
        return [_without_filter_values(item) for item in node]
    if isinstance(node, dict):
        is_filter = "key" in node and ("operator" in node or "type" in node)
        return {key: _without_filter_values(value) for key, value in node.items() if not (is_filter and key == "value")}
    return node


def parse_json_array(text: str) -> Optional[list]:
    """A JSON array from a model's answer, tolerating a Markdown code fence or prose around it."""
    cleaned = text.strip()
    if cleaned.startswith("```"):
        cleaned = cleaned.split("\n", 1)[1] if "\n" in cleaned else ""
        cleaned = cleaned.rsplit("```", 1)[0]
    for candidate in (cleaned, cleaned[cleaned.find("["): cleaned.rfind("]") + 1] if "[" in cleaned else ""):
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, list):
            return value
    return None
