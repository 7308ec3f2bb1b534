"""The insight list's query parameters (PostHog's `_filter_request` and `order_queryset`).

Where PostHog answers malformed values with a 500 (bad JSON, unknown `order` field) or silently
treats them as "now" (unparseable dates), these answer 400 with `attr` naming the parameter.
"""
import calendar
import json
import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from .models import DashboardTile, TaggedItem
from .query_validation import INSIGHT_QUERY_KINDS, WRAPPER_NODE_KINDS
from .selectors import apply_search

MAX_SEARCH_LENGTH = 200
LEGACY_INSIGHT_TO_QUERY_KIND = {
    "TRENDS": "TrendsQuery",
    "FUNNELS": "FunnelsQuery",
    "RETENTION": "RetentionQuery",
    "PATHS": "PathsQuery",
    "STICKINESS": "StickinessQuery",
    "LIFECYCLE": "LifecycleQuery",
}
INSIGHT_TYPE_CHOICES = [*LEGACY_INSIGHT_TO_QUERY_KIND, "JSON", "SQL"]
ORDERABLE_FIELDS = frozenset(
    {
        "id", "short_id", "name", "derived_name", "description", "order", "deleted", "saved", "favorited", "is_sample",
        "created_at", "last_modified_at", "updated_at", "created_by", "last_modified_by", "last_viewed_at",
    }
)
ORDERABLE_USER_FIELDS = frozenset({"id", "email", "first_name", "last_name"})
_TRUTHY = {"y", "yes", "t", "true", "on", "1"}
_RELATIVE_DATE = re.compile(r"^-?(?P<number>\d+)?(?P<kind>[hHdDwWmMqQyYs])(?P<position>Start|End)?$")
_UNPADDED_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")


def str_to_bool(value) -> bool:
    return str(value).strip().lower() in _TRUTHY


def filter_insights(queryset: QuerySet, params, *, team, user) -> tuple[QuerySet, bool]:
    """Apply every list filter present in `params`. Returns the queryset and whether it was searched."""
    search = None
    tz = team_timezone(team)
    for key in params:
        value = params[key]
        if key == "short_id":
            queryset = queryset.filter(short_id=value)
        elif key == "saved":
            if str_to_bool(value):
                on_listed_dashboard = DashboardTile.objects.filter(insight=OuterRef("pk")).exclude(dashboard__creation_mode="unlisted")
                queryset = queryset.filter(Q(saved=True) | Exists(on_listed_dashboard))
            else:
                queryset = queryset.filter(saved=False)
        elif key == "user":
            # A share viewer is nobody: "my insights" is empty for them.
            queryset = queryset.filter(created_by=user) if user.is_authenticated else queryset.none()
        elif key == "favorited":
            queryset = queryset.filter(favorited=True)
        elif key == "created_by":
            ids = json_list_param(params, key, int, "user ids")
            if ids:
                queryset = queryset.filter(created_by_id__in=ids)
        elif key == "tags":
            names = json_list_param(params, key, str, "tag names")
            if names:
                queryset = queryset.filter(id__in=TaggedItem.objects.filter(tag__name__in=names).values("insight_id"))
        elif key == "dashboards":
            for dashboard_id in json_list_param(params, key, int, "dashboard ids"):
                # One condition per dashboard: the insight must be on all of them.
                queryset = queryset.filter(id__in=DashboardTile.objects.filter(dashboard_id=dashboard_id).values("insight_id"))
        elif key in DATE_FILTERS:
            field, lookup = DATE_FILTERS[key]
            queryset = queryset.filter(**{f"{field}__{lookup}": parse_date_param(value, tz, key)})
        elif key == "insight":
            queryset = queryset.filter(insight_type_q(value))
        elif key == "search":
            if len(value) > MAX_SEARCH_LENGTH:
                raise ValidationError({"search": [f"Search query must be {MAX_SEARCH_LENGTH} characters or fewer."]})
            search = value
    if search is not None:
        return apply_search(queryset, search)
    return queryset, False


DATE_FILTERS = {
    "date_from": ("last_modified_at", "gt"),
    "date_to": ("last_modified_at", "lt"),
    "created_date_from": ("created_at", "gt"),
    "created_date_to": ("created_at", "lt"),
    "last_viewed_date_from": ("last_viewed_at", "gt"),
    "last_viewed_date_to": ("last_viewed_at", "lt"),
}


def insight_type_q(value: str) -> Q:
    """PostHog's `insight=` type filter (query-engine spec §8)."""
    legacy = Q(query__isnull=True, filters__insight=value)
    wrapper = Q(query__kind__in=WRAPPER_NODE_KINDS)
    if value == "SQL":
        return Q(query__isnull=False) & wrapper & Q(query__source__kind="HogQLQuery")
    if value == "JSON":
        # Anything but the wrapped SQL and wrapped insight queries above.
        wrapped_known = wrapper & Q(query__source__kind__in=["HogQLQuery", *sorted(INSIGHT_QUERY_KINDS)])
        return Q(query__isnull=False) & ~wrapped_known
    if value in LEGACY_INSIGHT_TO_QUERY_KIND:
        return legacy | Q(query__isnull=False, query__kind="InsightVizNode", query__source__kind=LEGACY_INSIGHT_TO_QUERY_KIND[value])
    return legacy


def order_insights(queryset: QuerySet, params, searched: bool) -> QuerySet:
    """`order` wins; otherwise search relevance when searching, else PostHog's `order` column.

    NULLs sort as PostgreSQL sorts them (last ascending, first descending) on every database.
    """
    order = params.get("order")
    if not order:
        if searched:
            return queryset.order_by("-_is_exact", "-_search_score", F("name").asc(nulls_last=True), "id")
        return queryset.order_by(F("order").asc(nulls_last=True), "id")
    descending = order.startswith("-")
    field = order.removeprefix("-")
    if not _orderable(field):
        raise ValidationError({"order": [f"Cannot order by '{order}'."]})
    if field == "last_viewed_at":
        # Never-viewed insights go last when newest first, first when oldest first.
        expression = F(field).desc(nulls_last=True) if descending else F(field).asc(nulls_first=True)
    else:
        expression = F(field).desc(nulls_first=True) if descending else F(field).asc(nulls_last=True)
    return queryset.order_by(expression, "-id" if descending else "id")


def _orderable(field: str) -> bool:
    if field in ORDERABLE_FIELDS:
        return True
    relation, _, user_field = field.partition("__")
    return relation in ("created_by", "last_modified_by") and user_field in ORDERABLE_USER_FIELDS


def json_list_param(params, key: str, item_type: type, what: str) -> list:
    """A JSON array parameter such as `created_by=[1,42]`; an empty value means no filter."""
    raw = params[key]
    if raw.strip() == "":
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        raise ValidationError({key: [f"Must be a JSON array of {what}, e.g. {_EXAMPLES[item_type]}."]})
    if isinstance(value, item_type) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or any(not isinstance(item, item_type) or isinstance(item, bool) for item in value):
        raise ValidationError({key: [f"Must be a JSON array of {what}, e.g. {_EXAMPLES[item_type]}."]})
    return value


_EXAMPLES = {int: "[1, 42]", str: '["marketing", "growth"]'}


# -- dates ---------------------------------------------------------------------------------------


def team_timezone(team) -> ZoneInfo:
    try:
        return ZoneInfo(team.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def parse_date_param(value: str, tz: ZoneInfo, key: str) -> datetime:
    """An absolute date/datetime (naive values are in the team timezone) or a relative one:
    `-7d`, `-1m`, `-24h`, `-2w`, `-1q`, `-1y`, `-30M` (minutes), `-10s`, with an optional
    `Start`/`End` suffix (`-1dStart` = start of yesterday, `mStart` = first day of this month)."""
    text = value.strip()
    parsed = _parse_absolute(text, tz)
    if parsed is not None:
        return parsed
    match = _RELATIVE_DATE.match(text)
    if match is None:
        raise ValidationError({key: [f"'{value}' is not a date. Use an ISO date such as 2025-04-23 or a relative date such as -7d."]})
    return _relative(timezone.now().astimezone(tz), int(match["number"] or 0), match["kind"], match["position"])


def _parse_absolute(text: str, tz: ZoneInfo) -> datetime | None:
    unpadded = _UNPADDED_DATE.match(text)
    try:
        if unpadded:
            return datetime.combine(date(*map(int, unpadded.groups())), time.min, tzinfo=tz)
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1)) if "-" in text[:5] else None
    except ValueError:
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _relative(now: datetime, number: int, kind: str, position: str | None) -> datetime:
    if kind in "hH":
        result = now - timedelta(hours=number)
        if position:
            result = result.replace(minute=0, second=0, microsecond=0) if position == "Start" else result.replace(minute=59, second=59, microsecond=999999)
        return result
    if kind == "M":
        return now - timedelta(minutes=number)
    if kind == "s":
        return now - timedelta(seconds=number)
    if kind in "dD":
        result = now - timedelta(days=number)
    elif kind in "wW":
        result = now - timedelta(weeks=number)
    elif kind in "qQ":
        result = now - timedelta(weeks=13 * number)
    elif kind == "m":
        result = _months_before(now, number)
        if position:
            return _clamped(result, result.month, 1 if position == "Start" else 31)
    else:  # years
        result = _months_before(now, 12 * number)
        if position:
            return _clamped(result, 1, 1) if position == "Start" else _clamped(result, 12, 31)
    if position == "Start":
        return result.replace(hour=0, minute=0, second=0, microsecond=0)
    if position == "End":
        return result.replace(hour=23, minute=59, second=59, microsecond=999999)
    return result


def _months_before(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 - months
    return _clamped(moment.replace(year=index // 12, month=1, day=1), index % 12 + 1, moment.day)


def _clamped(moment: datetime, month: int, day: int) -> datetime:
    return moment.replace(month=month, day=min(day, calendar.monthrange(moment.year, month)[1]))
