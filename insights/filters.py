"""The insight list's query parameters (PostHog's `_filter_request` and `order_queryset`) as one FilterSet.

Where PostHog answers malformed values with a 500 (bad JSON, unknown `order` field, dates out of
range) or silently treats them as "now" (unparseable dates), these answer 400 with `attr` naming
the parameter. The OpenAPI parameters of the list operation are generated from the filters below.
"""
import calendar
import json
import re
from datetime import date, datetime, time, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import django_filters
from django import forms
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ErrorDetail, ValidationError

from queries.api import LEGACY_INSIGHT_TO_QUERY_KIND
from queries.clock import team_timezone
from queries.schema import WRAPPER_KINDS

from .models import DashboardTile, Insight, TaggedItem
from .query_validation import INSIGHT_QUERY_KINDS
from .selectors import apply_search

MAX_SEARCH_LENGTH = 200
MAX_DATABASE_ID = 2**63 - 1
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
_EXAMPLES = {int: "[1, 42]", str: '["marketing", "growth"]'}
DATE_HELP = "An ISO date (`2025-04-23`, team timezone) or a relative one (`-7d`, `-1m`, `-24h`)."


def str_to_bool(value) -> bool:
    return str(value).strip().lower() in _TRUTHY


# -- form fields: parse and bound each parameter ----------------------------------------------


class FlagField(forms.Field):
    """A query flag: None when absent, else whether its value is truthy."""

    def to_python(self, value):
        return None if value is None else str_to_bool(value)


class PresenceField(forms.Field):
    """True when the parameter is present, whatever its value (PostHog's `user` and `favorited`)."""

    def to_python(self, value):
        return None if value is None else True


class JSONListField(forms.CharField):
    """A JSON array such as `[1, 42]` or a bare item (`5`); an empty value means no filter.

    Ids must fit a 64-bit primary key and names must not contain NUL bytes, which no database compares.
    """

    def __init__(self, *, item_type: type, what: str, **kwargs):
        self.item_type, self.what = item_type, what
        super().__init__(**kwargs)

    def to_python(self, value):
        text = super().to_python(value)
        if text.strip() == "":
            return []
        message = f"Must be a JSON array of {self.what}, e.g. {_EXAMPLES[self.item_type]}."
        try:
            items = json.loads(text)
        except ValueError:
            raise forms.ValidationError(message, code="invalid")
        if self._is_item(items):
            items = [items]
        if not isinstance(items, list) or not all(self._is_item(item) for item in items):
            raise forms.ValidationError(message, code="invalid")
        if self.item_type is int and any(not 0 <= item <= MAX_DATABASE_ID for item in items):
            raise forms.ValidationError(f"Ids must be between 0 and {MAX_DATABASE_ID}.", code="invalid")
        if self.item_type is str and any("\x00" in item for item in items):
            raise forms.ValidationError("Null characters are not allowed.", code="null_characters_not_allowed")
        return items

    def _is_item(self, value) -> bool:
        return isinstance(value, self.item_type) and not isinstance(value, bool)


class SearchField(forms.CharField):
    """Free text; NUL bytes are dropped rather than refused (search never matches them)."""

    def to_python(self, value):
        return super().to_python(value).replace("\x00", "")


def validate_search(value: str) -> None:
    if len(value) > MAX_SEARCH_LENGTH:
        raise forms.ValidationError(f"Search query must be {MAX_SEARCH_LENGTH} characters or fewer.", code="invalid")


def validate_order(value: str) -> None:
    if not _orderable(value.removeprefix("-")):
        raise forms.ValidationError(f"Cannot order by '{value}'.", code="invalid")


def _orderable(field: str) -> bool:
    if field in ORDERABLE_FIELDS:
        return True
    relation, _, user_field = field.partition("__")
    return relation in ("created_by", "last_modified_by") and user_field in ORDERABLE_USER_FIELDS


class FlagFilter(django_filters.BooleanFilter):
    field_class = FlagField


class PresenceFilter(django_filters.BooleanFilter):
    field_class = PresenceField


class JSONListFilter(django_filters.CharFilter):
    field_class = JSONListField


class SearchFilter(django_filters.CharFilter):
    field_class = SearchField


# Date parameters: (field, lookup). Naive and relative values are in the team timezone.
DATE_FILTERS = {
    "date_from": ("last_modified_at", "gt"),
    "date_to": ("last_modified_at", "lt"),
    "created_date_from": ("created_at", "gt"),
    "created_date_to": ("created_at", "lt"),
    "last_viewed_date_from": ("last_viewed_at", "gt"),
    "last_viewed_date_to": ("last_viewed_at", "lt"),
}


def _date_filter(name: str) -> django_filters.CharFilter:
    field, lookup = DATE_FILTERS[name]
    comparison = ">" if lookup == "gt" else "<"
    return django_filters.CharFilter(method="filter_date", strip=False, help_text=f"`{field} {comparison} value`. {DATE_HELP}")


# -- the filterset -----------------------------------------------------------------------------


class InsightFilterSet(django_filters.FilterSet):
    """Every list parameter. `team` gives naive and relative dates their timezone."""

    short_id = django_filters.CharFilter(help_text="Only the insight with this short id.")
    search = SearchFilter(
        method="filter_search",
        strip=False,
        validators=[validate_search],
        help_text=f"Search term (at most {MAX_SEARCH_LENGTH} characters) matched across name, derived_name, description "
        "and tag names. Case-insensitive substring matches (`exact`) and fuzzy trigram matches (`similar`) are returned "
        "together, exact first; each result then has a `search_match_type`.",
    )
    created_by = extend_schema_field(
        {"type": "integer", "description": "A user id (`5`) or a JSON array of user ids (`[1,42]`): insights created by any of them."}
    )(JSONListFilter(field_name="created_by_id", lookup_expr="in", item_type=int, what="user ids"))
    user = PresenceFilter(method="filter_user", help_text="Present (any value): only insights created by the authenticated user.")
    favorited = PresenceFilter(field_name="favorited", help_text="Present (any value): only favorited insights.")
    saved = FlagFilter(method="filter_saved", help_text="Truthy: insights that are saved or on a listed dashboard. Falsy: only unsaved insights.")
    insight = extend_schema_field(
        {
            "type": "string",
            "enum": INSIGHT_TYPE_CHOICES,
            "description": "Insight type. `SQL` matches wrapped HogQL queries; `JSON` other query-based insights.",
        }
    )(django_filters.CharFilter(method="filter_insight_type"))
    tags = JSONListFilter(
        method="filter_tags", item_type=str, what="tag names", help_text='JSON array of tag names, e.g. `["growth"]`: insights with any of them.'
    )
    dashboards = JSONListFilter(
        method="filter_dashboards", item_type=int, what="dashboard ids", help_text="JSON array of dashboard ids: insights on every one of them."
    )
    date_from = _date_filter("date_from")
    date_to = _date_filter("date_to")
    created_date_from = _date_filter("created_date_from")
    created_date_to = _date_filter("created_date_to")
    last_viewed_date_from = _date_filter("last_viewed_date_from")
    last_viewed_date_to = _date_filter("last_viewed_date_to")
    order = django_filters.CharFilter(
        method="filter_order",
        validators=[validate_order],
        help_text="Field to order by, `-` for descending, e.g. `-last_modified_at`, `name`, `-last_viewed_at`.",
    )

    class Meta:
        model = Insight
        fields: list[str] = []

    def __init__(self, *args, team=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.team = team
        self.searched = False

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        if self.form.cleaned_data.get("order"):
            return queryset
        # No `order`: search relevance when searching, else PostHog's `order` column.
        if self.searched:
            return queryset.order_by("-_is_exact", "-_search_score", F("name").asc(nulls_last=True), "id")
        return queryset.order_by(F("order").asc(nulls_last=True), "id")

    def filter_search(self, queryset, name, value):
        queryset, self.searched = apply_search(queryset, value)
        return queryset

    def filter_user(self, queryset, name, value):
        # A share viewer is nobody: "my insights" is empty for them.
        user = self.request.user
        return queryset.filter(created_by=user) if user.is_authenticated else queryset.none()

    def filter_saved(self, queryset, name, value):
        if value:
            on_listed_dashboard = DashboardTile.objects.filter(insight=OuterRef("pk")).exclude(dashboard__creation_mode="unlisted")
            return queryset.filter(Q(saved=True) | Exists(on_listed_dashboard))
        return queryset.filter(saved=False)

    def filter_insight_type(self, queryset, name, value):
        return queryset.filter(insight_type_q(value))

    def filter_tags(self, queryset, name, value):
        return queryset.filter(id__in=TaggedItem.objects.filter(tag__name__in=value).values("insight_id"))

    def filter_dashboards(self, queryset, name, value):
        for dashboard_id in value:
            # One condition per dashboard: the insight must be on all of them.
            queryset = queryset.filter(id__in=DashboardTile.objects.filter(dashboard_id=dashboard_id).values("insight_id"))
        return queryset

    def filter_date(self, queryset, name, value):
        field, lookup = DATE_FILTERS[name]
        return queryset.filter(**{f"{field}__{lookup}": parse_date_param(value, team_timezone(self.team), name)})

    def filter_order(self, queryset, name, value):
        """NULLs sort as PostgreSQL sorts them (last ascending, first descending) on every database."""
        descending = value.startswith("-")
        field = value.removeprefix("-")
        if field == "last_viewed_at":
            # Never-viewed insights go last when newest first, first when oldest first.
            expression = F(field).desc(nulls_last=True) if descending else F(field).asc(nulls_first=True)
        else:
            expression = F(field).desc(nulls_first=True) if descending else F(field).asc(nulls_last=True)
        return queryset.order_by(expression, "-id" if descending else "id")


class InsightFilterBackend(DjangoFilterBackend):
    """django-filter's backend, handing the view's team to the filterset."""

    def get_filterset_kwargs(self, request, queryset, view):
        return {**super().get_filterset_kwargs(request, queryset, view), "team": view.team}

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise ValidationError(
                {field: [_error_detail(error) for error in errors] for field, errors in filterset.errors.as_data().items()}
            )
        return filterset.qs


def _error_detail(error) -> ErrorDetail:
    # django-filter formats `message % ()` even without params, which a `%` echoed from the
    # client's value turns into a TypeError; format only when there is something to format.
    return ErrorDetail(error.message % error.params if error.params else error.message, code=error.code)


def insight_type_q(value: str) -> Q:
    """PostHog's `insight=` type filter (query-engine spec §8)."""
    legacy = Q(query__isnull=True, filters__insight=value)
    wrapper = Q(query__kind__in=WRAPPER_KINDS)
    if value == "SQL":
        return Q(query__isnull=False) & wrapper & Q(query__source__kind="HogQLQuery")
    if value == "JSON":
        # Anything but the wrapped SQL and wrapped insight queries above.
        wrapped_known = wrapper & Q(query__source__kind__in=["HogQLQuery", *sorted(INSIGHT_QUERY_KINDS)])
        return Q(query__isnull=False) & ~wrapped_known
    if value in LEGACY_INSIGHT_TO_QUERY_KIND:
        return legacy | Q(query__isnull=False, query__kind="InsightVizNode", query__source__kind=LEGACY_INSIGHT_TO_QUERY_KIND[value])
    return legacy


# -- dates ---------------------------------------------------------------------------------------


def parse_date_param(value: str, tz: ZoneInfo, key: str) -> datetime:
    """An absolute date/datetime (naive values are in the team timezone) or a relative one:
    `-7d`, `-1m`, `-24h`, `-2w`, `-1q`, `-1y`, `-30M` (minutes), `-10s`, with an optional
    `Start`/`End` suffix (`-1dStart` = start of yesterday, `mStart` = first day of this month)."""
    text = value.strip()
    parsed = _parse_absolute(text, tz)
    if parsed is not None:
        try:
            return _in_range(parsed)
        except (OverflowError, ValueError):
            raise ValidationError({key: [f"'{value}' is out of range: dates must fall between the years 1 and 9999."]})
    match = _RELATIVE_DATE.match(text)
    if match is None:
        raise ValidationError({key: [f"'{value}' is not a date. Use an ISO date such as 2025-04-23 or a relative date such as -7d."]})
    try:
        return _in_range(_relative(timezone.now().astimezone(tz), int(match["number"] or 0), match["kind"], match["position"]))
    except (OverflowError, ValueError):
        raise ValidationError({key: [f"'{value}' is out of range: dates must fall between the years 1 and 9999."]})


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


def _in_range(moment: datetime) -> datetime:
    """The moment, if databases can store it in UTC (OverflowError or ValueError otherwise)."""
    moment.astimezone(dt_timezone.utc)
    return moment


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
