"""Plain-text analysis of an insight's cached result, computed without any external service.

`analyze_insight` reads the result the query engine has cached for the insight (it never starts a
computation, like PostHog) and states the facts a reader looks for: totals and direction, the
previous period, peak and low, anomalies and leading breakdown values for trends; conversion,
the biggest drop-off and conversion times for funnels; cohort sizes and retention for retention;
and similar for lifecycle, stickiness, paths and SQL. When an LLM is configured (insights/llm.py)
these facts, not the raw result, are what it is sent; any failure falls back to the facts.
"""
import logging
import math
from typing import Any, Optional

from rest_framework import serializers
from rest_framework.exceptions import APIException

from queries.api import execute_query
from queries.api import source_of

from . import llm
from .wording import direction, breakdown_text, change, duration, num, pct, series_sentences

logger = logging.getLogger(__name__)

NO_QUERY = "This insight has no query, so there is nothing to analyze."
NO_RESULTS = (
    "There is no cached result for this insight yet, so there is nothing to analyze. "
    "Load or refresh the insight first, then ask again."
)
NO_FACTS = "The cached result of this insight is empty: there is nothing to analyze."

MAX_SERIES = 5
MAX_BREAKDOWN_VALUES = 3
MAX_LISTED_GROUPS = 5

ADDITIVE_MATHS = {None, "total", "sum", "first_time_for_user", "first_matching_event_for_user"}
MATH_WORDS = {
    "total": "count",
    "dau": "unique users",
    "weekly_active": "weekly active users",
    "monthly_active": "monthly active users",
    "unique_session": "unique sessions",
    "first_time_for_user": "first-time users",
    "first_matching_event_for_user": "first-time users",
    "unique_group": "unique groups",
    "hogql": "custom aggregation",
}
PROPERTY_MATH_WORDS = {
    "avg": "average", "sum": "sum", "min": "minimum", "max": "maximum", "median": "median",
    "p75": "75th percentile", "p90": "90th percentile", "p95": "95th percentile", "p99": "99th percentile",
}
KIND_NAMES = {
    "TrendsQuery": "Trends",
    "FunnelsQuery": "Funnel",
    "RetentionQuery": "Retention",
    "LifecycleQuery": "Lifecycle",
    "StickinessQuery": "Stickiness",
    "PathsQuery": "Paths",
    "HogQLQuery": "SQL",
    "EventsQuery": "Events table",
}


class InsightAnalysisSerializer(serializers.Serializer):
    result = serializers.CharField(help_text="Plain-text analysis of the insight's cached result.")


# --- Entry points ---------------------------------------------------------------------------------


def cached_response(team, query: dict, *, user=None, insight_id=None) -> Optional[dict]:
    """The engine's cached response for `query`, or None on a cache miss. Never computes.

    Raises the engine's APIException (400) when the query cannot be run by this server.
    """
    response = execute_query(team, query, refresh="force_cache", user=user, insight_id=insight_id)
    return response if response.get("results") is not None else None


def facts_for(query: dict, response: dict) -> list[str]:
    """Short factual sentences about a computed response, per insight kind."""
    source = source_of(query)
    describe = DESCRIBERS.get(source.get("kind"), _describe_table)
    try:
        facts = describe(source, response)
    except (TypeError, KeyError, ValueError, IndexError, AttributeError, ZeroDivisionError):
        # A cached result of an unexpected shape: say so rather than fail the request.
        logger.warning("insight analysis could not read a cached %s result", source.get("kind"), exc_info=True)
        return []
    return [fact for fact in facts if fact]


def deterministic_analysis(query: Optional[dict], response: Optional[dict]) -> str:
    if not query:
        return NO_QUERY
    if response is None:
        return NO_RESULTS
    facts = facts_for(query, response)
    if not facts:
        return NO_FACTS
    return "\n".join([_headline(query, response), *facts])


def analyze_insight(insight, team, user) -> str:
    """The analysis text of the `analyze` endpoint (an LLM's when one is configured and allowed)."""
    llm.ensure_ai_allowed(team.organization)
    query = insight.query
    if not query:
        return NO_QUERY
    try:
        response = cached_response(team, query, user=user, insight_id=insight.id)
    except APIException as error:
        return f"This insight's query cannot be analyzed: {_detail_text(error)}"
    text = deterministic_analysis(query, response)
    if text in (NO_RESULTS, NO_FACTS) or not llm.is_configured():
        return text
    return llm.complete_or_none(analysis_messages(insight, query, text)) or text


def analysis_messages(insight, query: dict, facts: str) -> list[dict]:
    """The chat prompt: the insight's name and description and the computed facts (no raw rows)."""
    kind = KIND_NAMES.get(source_of(query).get("kind"), "Data")
    lines = [f"Insight type: {kind}"]
    if insight.name or insight.derived_name:
        lines.append(f"Name: {insight.name or insight.derived_name}")
    if insight.description:
        lines.append(f"Description: {insight.description}")
    lines += ["", "Facts computed from the insight's current result:", facts, "",
              "Write a short analysis in plain text (no markdown, at most six sentences): lead with the single most "
              "important finding, support it with the numbers above, and end with one concrete thing to check next. "
              "Use only the numbers given; do not invent data."]
    return [
        {"role": "system", "content": "You are a product analyst who explains analytics charts to product teams."},
        {"role": "user", "content": "\n".join(lines)},
    ]


def _detail_text(error: APIException) -> str:
    detail = error.detail
    if isinstance(detail, list) and detail:
        detail = detail[0]
    if isinstance(detail, dict) and detail:
        detail = next(iter(detail.values()))
        detail = detail[0] if isinstance(detail, list) and detail else detail
    return str(detail)


def _headline(query: dict, response: dict) -> str:
    source = source_of(query)
    kind = KIND_NAMES.get(source.get("kind"), "Data")
    parts = [f"{kind} insight"]
    date_range = response.get("resolved_date_range") or {}
    if isinstance(date_range, dict) and date_range.get("date_from") and date_range.get("date_to"):
        parts.append(f"from {str(date_range['date_from'])[:10]} to {str(date_range['date_to'])[:10]}")
    return " ".join(parts) + "."


# --- Trends ---------------------------------------------------------------------------------------


def _math_words(action: Optional[dict]) -> str:
    if not action:
        return ""
    math_type = action.get("math") or "total"
    if math_type in PROPERTY_MATH_WORDS:
        return f"{PROPERTY_MATH_WORDS[math_type]} of {action.get('math_property')}"
    if math_type.endswith("_count_per_actor"):
        return f"{PROPERTY_MATH_WORDS.get(math_type.removesuffix('_count_per_actor'), 'average')} events per user"
    return MATH_WORDS.get(math_type, math_type)


def _series_name(item: dict) -> str:
    action = item.get("action")
    if not action:
        return str(item.get("label") or "Formula")
    name = action.get("custom_name") or action.get("name") or "All events"
    return f"{name} ({_math_words(action)})"


def _series_key(item: dict):
    action = item.get("action")
    return ("series", action.get("order")) if action else ("formula", item.get("label"))


def _is_additive(item: dict) -> bool:
    action = item.get("action")
    return bool(action) and action.get("math") in ADDITIVE_MATHS


def _value_of(item: dict, additive: bool) -> float:
    if "aggregated_value" in item:
        return float(item.get("aggregated_value") or 0)
    data = [float(value or 0) for value in item.get("data") or []]
    if not data:
        return 0.0
    return sum(data) if additive else sum(data) / len(data)


def _describe_trends(source: dict, response: dict) -> list[str]:
    results = response["results"]
    if not results:
        return ["No series in the result."]
    interval = None if _is_total_value(results) else (source.get("interval") or "day")
    current = [item for item in results if item.get("compare_label") != "previous"]
    previous = [item for item in results if item.get("compare_label") == "previous"]
    groups: dict = {}
    for item in current:
        groups.setdefault(_series_key(item), []).append(item)
    previous_groups: dict = {}
    for item in previous:
        previous_groups.setdefault(_series_key(item), []).append(item)

    facts = []
    for key, items in list(groups.items())[:MAX_SERIES]:
        facts.append(_trend_group(source, items, previous_groups.get(key), interval))
    if len(groups) > MAX_SERIES:
        facts.append(f"{len(groups) - MAX_SERIES} more series not described.")
    return facts


def _is_total_value(results: list) -> bool:
    return all("aggregated_value" in item for item in results)


def _trend_group(source: dict, items: list[dict], previous: Optional[list[dict]], interval: Optional[str]) -> str:
    first = items[0]
    additive = _is_additive(first)
    name = _series_name(first)
    sentences: list[str] = []
    breakdown = "breakdown_value" in first
    if "aggregated_value" in first:
        total = sum(_value_of(item, True) for item in items) if additive or not breakdown else None
        if total is not None:
            sentences.append(f"{num(total)} over the whole period.")
    elif not breakdown or additive:
        data = _summed_data(items) if breakdown else first.get("data") or []
        if (source.get("trendsFilter") or {}).get("display") == "ActionsLineGraphCumulative":
            data = [value - (data[i - 1] if i else 0) for i, value in enumerate(data)]
        sentences += series_sentences(data, first.get("labels") or first.get("days") or [], additive=additive, per=interval)
    if previous:
        sentences.append(_previous_period(items, previous, additive, interval))
    elif (source.get("compareFilter") or {}).get("compare"):
        sentences.append("No data in the previous period.")
    if breakdown:
        sentences.append(_breakdown_sentence(source, items, additive, interval))
    return f"{name}: " + " ".join(sentence for sentence in sentences if sentence)


def _summed_data(items: list[dict]) -> list[float]:
    width = max(len(item.get("data") or []) for item in items)
    return [sum(float((item.get("data") or [0] * width)[i] or 0) for item in items) for i in range(width)]


def _previous_period(items: list[dict], previous: list[dict], additive: bool, interval: Optional[str]) -> str:
    if additive or "aggregated_value" in items[0]:
        now = sum(_value_of(item, additive) for item in items)
        before = sum(_value_of(item, additive) for item in previous)
        what = "in total"
    else:
        now, before = _value_of(items[0], False), _value_of(previous[0], False)
        what = f"per {interval} on average" if interval else "on average"
    if before == 0:
        return f"Previous period: 0, now {num(now)} {what}."
    return f"Previous period: {num(before)} {what}, now {num(now)} ({change(now, before)})."


def _breakdown_sentence(source: dict, items: list[dict], additive: bool, interval: Optional[str]) -> str:
    breakdown = source.get("breakdownFilter") or {}
    prop = breakdown.get("breakdown")
    if breakdown.get("breakdowns"):
        prop = ", ".join(str(item.get("property")) for item in breakdown["breakdowns"])
    ranked = sorted(items, key=lambda item: -_value_of(item, additive))
    total = sum(_value_of(item, additive) for item in ranked)
    shown = []
    for item in ranked[:MAX_BREAKDOWN_VALUES]:
        value = _value_of(item, additive)
        if additive and total > 0:
            shown.append(f"{breakdown_text(item.get('breakdown_value'))} {pct(value / total)} ({num(value)})")
        elif "aggregated_value" in item or not interval:
            shown.append(f"{breakdown_text(item.get('breakdown_value'))} ({num(value)})")
        else:
            shown.append(f"{breakdown_text(item.get('breakdown_value'))} ({num(value)} per {interval} on average)")
    rest = len(ranked) - len(shown)
    suffix = f"; {rest} more value{'s' if rest != 1 else ''}" if rest > 0 else ""
    return f"Leading values of {prop or 'the breakdown'}: " + ", ".join(shown) + suffix + "."


# --- Funnels --------------------------------------------------------------------------------------


def _step_name(step: dict) -> str:
    return str(step.get("custom_name") or step.get("name") or "any event")


def funnel_steps(results: Any) -> Optional[list[dict]]:
    """The steps of a steps-viz result; breakdown groups are summed into one funnel."""
    if not isinstance(results, list) or not results:
        return None
    if isinstance(results[0], dict):
        return results if "order" in results[0] else None
    groups = [group for group in results if isinstance(group, list) and group]
    if not groups:
        return None
    steps = [dict(step) for step in groups[0]]
    for index, step in enumerate(steps):
        step["count"] = sum(int(group[index].get("count") or 0) for group in groups if index < len(group))
        step["median_conversion_time"] = None if len(groups) > 1 else step.get("median_conversion_time")
    return steps


def biggest_drop_off(steps: list[dict]) -> Optional[int]:
    """Index of the step with the lowest conversion from the step before (ties: the earliest)."""
    best, worst_rate = None, None
    for index in range(1, len(steps)):
        before = steps[index - 1]["count"]
        if not before:
            continue
        rate = steps[index]["count"] / before
        if worst_rate is None or rate < worst_rate:
            best, worst_rate = index, rate
    return best


def _describe_funnel(source: dict, response: dict) -> list[str]:
    results = response["results"]
    viz = (source.get("funnelsFilter") or {}).get("funnelVizType") or "steps"
    if viz == "time_to_convert":
        return _describe_time_to_convert(results)
    if viz == "trends":
        return _describe_funnel_trends(source, results)
    steps = funnel_steps(results)
    if not steps:
        return ["No one entered the funnel in this period."]
    entered = steps[0]["count"]
    if not entered:
        return ["No one entered the funnel in this period."]
    last = steps[-1]["count"]
    facts = [f"{len(steps)}-step funnel: {num(entered)} entered with {_step_name(steps[0])}; "
             f"{num(last)} ({pct(last / entered)}) completed all steps."]
    if len(steps) > 1:
        conversions = [f"{_step_name(steps[i - 1])} → {_step_name(steps[i])} {pct(steps[i]['count'] / steps[i - 1]['count'])}"
                       for i in range(1, len(steps)) if steps[i - 1]["count"]]
        if conversions:
            facts.append("Step conversion: " + "; ".join(conversions) + ".")
        drop = biggest_drop_off(steps)
        if drop is not None:
            before, after = steps[drop - 1]["count"], steps[drop]["count"]
            facts.append(f"Biggest drop-off: {_step_name(steps[drop - 1])} → {_step_name(steps[drop])}, where "
                         f"{num(before - after)} of {num(before)} ({pct((before - after) / before)}) did not continue.")
        times = [f"{_step_name(steps[i - 1])} → {_step_name(steps[i])} {duration(steps[i].get('median_conversion_time'))}"
                 for i in range(1, len(steps)) if steps[i].get("median_conversion_time") is not None]
        if times:
            facts.append("Median time to convert: " + "; ".join(times) + ".")
    if results and isinstance(results[0], list):
        facts.append(_funnel_breakdown_sentence(source, results))
    return facts


def _funnel_breakdown_sentence(source: dict, groups: list) -> str:
    rows = []
    for group in groups:
        if not group or not group[0].get("count"):
            continue
        rows.append((breakdown_text(group[0].get("breakdown_value")), group[0]["count"], group[-1]["count"] / group[0]["count"]))
    if not rows:
        return ""
    rows.sort(key=lambda row: -row[1])
    listed = ", ".join(f"{value} {pct(rate)} of {num(entered)}" for value, entered, rate in rows[:MAX_LISTED_GROUPS])
    best, worst = max(rows, key=lambda row: row[2]), min(rows, key=lambda row: row[2])
    prop = (source.get("breakdownFilter") or {}).get("breakdown")
    sentence = f"Conversion by {prop if isinstance(prop, str) else 'breakdown'}: {listed}."
    if len(rows) > 1 and best[2] != worst[2]:
        sentence += f" Best {best[0]} ({pct(best[2])}), worst {worst[0]} ({pct(worst[2])})."
    return sentence


def _describe_time_to_convert(results: Any) -> list[str]:
    bins = [(float(start), int(count)) for start, count in (results or {}).get("bins") or []]
    conversions = sum(count for _, count in bins)
    if not conversions:
        return ["No conversions in this period."]
    facts = [f"{num(conversions)} conversion{'s' if conversions != 1 else ''}; "
             f"average time to convert {duration((results or {}).get('average_conversion_time'))}."]
    index = max(range(len(bins)), key=lambda i: bins[i][1])
    lower = duration(bins[index][0])
    upper = duration(bins[index + 1][0]) if index + 1 < len(bins) else None
    span = f"between {lower} and {upper}" if upper not in (None, lower) else f"about {lower}"
    facts.append(f"Most common: {span} ({num(bins[index][1])}, {pct(bins[index][1] / conversions)} of conversions).")
    return facts


def _describe_funnel_trends(source: dict, results: list) -> list[str]:
    facts = []
    interval = source.get("interval") or "day"
    for item in (results or [])[:MAX_SERIES]:
        prefix = f"{breakdown_text(item['breakdown_value'])}: " if "breakdown_value" in item else "Conversion rate: "
        sentences = series_sentences(item.get("data") or [], item.get("labels") or [], additive=False, per=interval, unit="%")
        facts.append(prefix + " ".join(sentences))
    return facts


# --- Retention ------------------------------------------------------------------------------------


def _describe_retention(source: dict, response: dict) -> list[str]:
    results = response["results"]
    if not results:
        return ["No cohorts in this period."]
    by_value: dict = {}
    for row in results:
        by_value.setdefault(breakdown_text(row["breakdown_value"]) if "breakdown_value" in row else None, []).append(row)
    if list(by_value) == [None]:
        return _retention_facts(results)
    facts = _retention_facts([row for rows in by_value.values() for row in rows], summary_only=True)
    ranked = sorted(by_value.items(), key=lambda item: -sum(row["values"][0]["count"] for row in item[1]))
    parts = []
    for value, rows in ranked[:MAX_LISTED_GROUPS]:
        rate = _weighted_retention(rows, 1)
        parts.append(f"{value} {pct(rate) if rate is not None else 'n/a'}")
    if parts and len(results[0]["values"]) > 1:
        facts.append(f"{results[0]['values'][1]['label']} retention by breakdown value: " + ", ".join(parts) + ".")
    return facts


def _observable(rows: list[dict], period: int) -> list[dict]:
    """Cohorts old enough for `period` to be over: a cohort's row index plus period within the rows."""
    return [row for index, row in enumerate(rows) if index + period <= len(rows) - 1 and row["values"][0]["count"]]


def _weighted_retention(rows: list[dict], period: int) -> Optional[float]:
    rows = [row for row in _observable(rows, period) if len(row["values"]) > period]
    size = sum(row["values"][0]["count"] for row in rows)
    if not size:
        return None
    return sum(row["values"][period]["count"] for row in rows) / size


def _retention_facts(rows: list[dict], summary_only: bool = False) -> list[str]:
    sizes = [row["values"][0]["count"] for row in rows]
    if not any(sizes):
        return ["No one entered a cohort in this period."]
    facts = [f"{len(rows)} cohorts of {num(min(sizes))} to {num(max(sizes))} people ({num(sum(sizes))} in total)."]
    if summary_only or len(rows[0]["values"]) < 2:
        return facts
    rate = _weighted_retention(rows, 1)
    if rate is not None:
        label = rows[0]["values"][1]["label"]
        sentence = f"{label} retention: {pct(rate)} (cohorts weighted by size)."
        rates = [(row, row["values"][1]["count"] / row["values"][0]["count"]) for row in _observable(rows, 1)]
        if len(rates) > 1:
            best, worst = max(rates, key=lambda item: item[1]), min(rates, key=lambda item: item[1])
            if best[1] != worst[1]:
                sentence += f" Best cohort {_cohort_date(best[0])} ({pct(best[1])}), worst {_cohort_date(worst[0])} ({pct(worst[1])})."
        facts.append(sentence)
    last = min(len(rows[0]["values"]), len(rows)) - 1
    if last > 1:
        rate = _weighted_retention(rows, last)
        if rate is not None:
            count = len(_observable(rows, last))
            facts.append(f"{rows[0]['values'][last]['label']} retention: {pct(rate)} "
                         f"({count} cohort{'s' if count != 1 else ''} old enough).")
    return facts


def _cohort_date(row: dict) -> str:
    date = str(row.get("date") or row.get("label") or "")
    return date[:16].replace("T", " ") if "T00:00" not in date else date[:10]


# --- Lifecycle ------------------------------------------------------------------------------------

LIFECYCLE_STATUSES = ("new", "returning", "resurrecting", "dormant")


def _describe_lifecycle(source: dict, response: dict) -> list[str]:
    by_status = {item.get("status"): item for item in response["results"] or []}
    if not by_status:
        return ["No activity in this period."]
    totals = {status: abs(sum(float(value or 0) for value in by_status[status].get("data") or []))
              for status in LIFECYCLE_STATUSES if status in by_status}
    if not any(totals.values()):
        return ["No activity in this period."]
    facts = ["Over the period: " + ", ".join(f"{num(totals[s])} {s}" for s in LIFECYCLE_STATUSES if s in totals) + "."]
    gained = totals.get("new", 0) + totals.get("resurrecting", 0)
    lost = totals.get("dormant", 0)
    if lost:
        ratio = gained / lost
        verdict = "more users gained than lost" if ratio > 1 else "more users lost than gained" if ratio < 1 else "as many gained as lost"
        facts.append(f"Quick ratio (new + resurrecting) / dormant: {num(round(ratio, 2))}, {verdict}.")
    elif gained:
        facts.append("No one became dormant.")
    first = next(iter(by_status.values()))
    labels = first.get("labels") or first.get("days") or []
    active = [sum(float((by_status[s].get("data") or [])[i] or 0) for s in ("new", "returning", "resurrecting") if s in by_status)
              for i in range(len(first.get("data") or []))]
    if len(active) > 1 and max(active) != min(active):
        facts.append("Active users (new, returning, resurrecting): " + direction(active, "", f" per {source.get('interval') or 'day'}"))
    if labels:
        last = ", ".join(f"{num(abs(float((by_status[s].get('data') or [0])[-1] or 0)))} {s}" for s in LIFECYCLE_STATUSES if s in by_status)
        facts.append(f"Last period ({labels[-1]}): {last}.")
    return facts


# --- Stickiness -----------------------------------------------------------------------------------


def _describe_stickiness(source: dict, response: dict) -> list[str]:
    results = response["results"]
    cumulative = ((source.get("stickinessFilter") or {}).get("computedAs")) == "cumulative"
    interval = source.get("interval") or "day"
    facts = []
    for item in [item for item in results or [] if item.get("compare_label") != "previous"][:MAX_SERIES]:
        data = [int(value or 0) for value in item.get("data") or []]
        if cumulative:
            data = [value - (data[i + 1] if i + 1 < len(data) else 0) for i, value in enumerate(data)]
        people = sum(data)
        name = (item.get("action") or {}).get("custom_name") or item.get("label") or "All events"
        if not people:
            facts.append(f"{name}: no one was active in this period.")
            continue
        days = item.get("days") or list(range(1, len(data) + 1))
        unit = interval if not source.get("intervalCount") else f"block of {source['intervalCount']} {interval}s"
        half = math.ceil(len(data) / 2)
        sticky = sum(data[half - 1:]) if half else 0
        average = sum(int(day) * count for day, count in zip(days, data)) / people
        facts.append(
            f"{name}: {num(people)} people; {pct(data[0] / people)} active in only 1 {unit} of {len(data)}, "
            f"{pct(sticky / people)} in {half} or more; {num(round(average, 2))} {unit}s on average."
        )
    return facts


# --- Paths ----------------------------------------------------------------------------------------


def _path_item(node: str) -> str:
    prefix, _, rest = str(node).partition("_")
    return rest if prefix.isdigit() and rest else str(node)


def _describe_paths(source: dict, response: dict) -> list[str]:
    edges = [edge for edge in response["results"] or [] if isinstance(edge, dict)]
    if not edges:
        return ["No paths in this period."]
    starts: dict[str, int] = {}
    for edge in edges:
        if str(edge.get("source", "")).startswith("1_"):
            starts[_path_item(edge["source"])] = starts.get(_path_item(edge["source"]), 0) + int(edge.get("value") or 0)
    facts = [f"{num(len(edges))} transitions between steps."]
    if starts:
        top = sorted(starts.items(), key=lambda item: -item[1])[:MAX_BREAKDOWN_VALUES]
        facts.append("Most paths start at " + ", ".join(f"{item} ({num(count)})" for item, count in top) + ".")
    ranked = sorted(edges, key=lambda edge: -int(edge.get("value") or 0))[:MAX_BREAKDOWN_VALUES]
    facts.append("Most frequent transitions: " + "; ".join(
        f"{_path_item(edge['source'])} → {_path_item(edge['target'])} ({num(edge.get('value'))}, "
        f"{duration((edge.get('average_conversion_time') or 0) / 1000)} on average)" for edge in ranked) + ".")
    return facts


# --- SQL and other tables -------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe_table(source: dict, response: dict) -> list[str]:
    """SQL insights and other tables: size, and each numeric column's average, peak, low and anomalies."""
    results = response["results"]
    if not isinstance(results, list):
        return []
    rows = [row for row in results if isinstance(row, (list, tuple))]
    if not rows:
        return ["The query returned no rows."]
    width = max(len(row) for row in rows)
    columns = [str(column) for column in response.get("columns") or []] or [f"column {i + 1}" for i in range(width)]
    if len(rows) == 1 and width == 1:
        return [f"The query returns a single value: {num(rows[0][0]) if _is_number(rows[0][0]) else rows[0][0]} ({columns[0]})."]
    facts = [f"{num(len(rows))} row{'s' if len(rows) != 1 else ''} × {width} column{'s' if width != 1 else ''}"
             + (" (more rows not loaded)" if response.get("hasMore") else "") + "."]
    numeric = [i for i in range(width) if all(_is_number(row[i]) or row[i] is None for row in rows if i < len(row))
               and any(_is_number(row[i]) for row in rows if i < len(row))]
    label_column = next((i for i in range(width) if i not in numeric), None)
    labels = [str(row[label_column]) if label_column is not None and label_column < len(row) else f"row {n + 1}"
              for n, row in enumerate(rows)]
    temporal = label_column is not None and _is_temporal(response, label_column)
    for index in numeric[:3]:
        values = [row[index] if index < len(row) and row[index] is not None else 0 for row in rows]
        name = columns[index] if index < len(columns) else f"column {index + 1}"
        facts.append(f"{name}: " + " ".join(series_sentences(values, labels, additive=False, per=None, ordered=temporal)))
    return facts


def _is_temporal(response: dict, index: int) -> bool:
    types = response.get("types") or []
    if index >= len(types):
        return False
    kind = types[index][1] if isinstance(types[index], (list, tuple)) and len(types[index]) > 1 else types[index]
    return "Date" in str(kind)


DESCRIBERS = {
    "TrendsQuery": _describe_trends,
    "FunnelsQuery": _describe_funnel,
    "RetentionQuery": _describe_retention,
    "LifecycleQuery": _describe_lifecycle,
    "StickinessQuery": _describe_stickiness,
    "PathsQuery": _describe_paths,
}
