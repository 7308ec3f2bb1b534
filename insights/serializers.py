"""Insight and dashboard serializers, in PostHog's field order."""
from functools import cached_property
from operator import attrgetter
from typing import Callable

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from accounts.serializers import UserBasicSerializer
from queries.api import ExecutionMode
from queries.wire import response_value

from .filters import MAX_DATABASE_ID
from .models import Dashboard, DashboardTile, Insight
from .query_validation import validate_query, wrap_for_saving
from . import signals
from .results import insight_results, shown_query
from .access import access_level_name, request_access
from .selectors import insight_dashboards, live_tiles, tag_names

RESTRICTION_EVERYONE_CAN_EDIT = 21
RESTRICTION_ONLY_COLLABORATORS_CAN_EDIT = 37
PRIVILEGE_CAN_VIEW = 21
PRIVILEGE_CAN_EDIT = 37
RESTRICTION_LEVELS = [(21, "Everyone in the project can edit"), (37, "Only those invited to this dashboard can edit")]
PRIVILEGE_LEVELS = [(21, "Can view dashboard"), (37, "Can edit dashboard")]
MAX_VIEWED_IDS = 2500
MAX_TRENDING_LIMIT = 100
MAX_TRENDING_DAYS = 36500


def wire_datetime(value, tz=None) -> str | None:
    """The engine's wire format for datetimes, in the current timezone (or `tz`)."""
    return None if value is None else response_value(value.astimezone(tz or timezone.get_current_timezone()))


class DashboardTileBasicSerializer(serializers.ModelSerializer):
    dashboard_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = DashboardTile
        fields = ["id", "dashboard_id", "deleted"]
        read_only_fields = fields


@extend_schema_field({"type": "object", "nullable": True, "additionalProperties": True})
class QueryField(serializers.Field):
    """A query node (object) or null. Schema problems answer like PostHog's parser: 400 parse_error."""

    def to_internal_value(self, data):
        if data is not None and not isinstance(data, dict):
            raise serializers.ValidationError("Query must be a valid JSON object")
        if data:
            validate_query(data)
        return data

    def to_representation(self, value):
        return value


class FiltersField(serializers.JSONField):
    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("Filters must be a valid JSON object")
        return data


class TagsField(serializers.ListField):
    """Tag names, read from the prefetched tagged items."""

    child = serializers.CharField(max_length=255)

    def get_attribute(self, instance):
        return tag_names(instance)


@extend_schema_field(OpenApiTypes.INT)
class DashboardIdsField(serializers.PrimaryKeyRelatedField):
    """Dashboard ids to put the insight on (read back from its live tiles)."""

    def get_queryset(self):
        team = self.context.get("team")
        if team is None:
            return Dashboard.objects.none()
        # Dashboards of every environment of the project; other environments are refused later.
        return Dashboard.objects.filter(team__project_id=team.project_id)


@extend_schema_serializer(exclude_fields=["filters", "saved"])
class InsightBasicSerializer(serializers.ModelSerializer):
    """Simplified serializer to speed response times when loading large amounts of objects."""

    filters = serializers.JSONField(read_only=True)
    query = QueryField(read_only=True)
    dashboards = serializers.SerializerMethodField()
    dashboard_tiles = serializers.SerializerMethodField()
    last_refresh = serializers.SerializerMethodField()
    tags = TagsField(read_only=True)
    created_by = UserBasicSerializer(read_only=True)
    user_access_level = serializers.SerializerMethodField(help_text="The effective access level the user has for this object")
    last_viewed_at = serializers.SerializerMethodField()
    search_match_type = serializers.SerializerMethodField()

    class Meta:
        model = Insight
        fields = [
            "id",
            "short_id",
            "name",
            "derived_name",
            "filters",
            "query",
            "dashboards",
            "dashboard_tiles",
            "description",
            "last_refresh",
            "refreshing",
            "saved",
            "tags",
            "updated_at",
            "created_by",
            "created_at",
            "last_modified_at",
            "favorited",
            "user_access_level",
            "last_viewed_at",
            "search_match_type",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_dashboards(self, insight) -> list[int]:
        return [tile.dashboard_id for tile in live_tiles(insight)]

    @extend_schema_field(
        DashboardTileBasicSerializer(
            many=True,
            help_text="A dashboard tile ID and dashboard_id for each of the dashboards that this insight is displayed on.",
        )
    )
    def get_dashboard_tiles(self, insight) -> list[dict]:
        return [{"id": tile.id, "dashboard_id": tile.dashboard_id, "deleted": tile.deleted} for tile in live_tiles(insight)]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_last_refresh(self, insight):
        # Deprecated: results (and their refresh time) only come with the full serializer.
        return None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_user_access_level(self, insight) -> str | None:
        if self.context.get("is_shared"):
            return None
        return access_level_name(request_access(self.context).insight_privilege(insight_dashboards(insight)))

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_last_viewed_at(self, insight):
        return wire_datetime(getattr(insight, "last_viewed_at", None))

    @extend_schema_field(serializers.ChoiceField(choices=["exact", "similar"], allow_null=True))
    def get_search_match_type(self, insight) -> str | None:
        is_exact = getattr(insight, "_is_exact", None)
        return None if is_exact is None else ("exact" if is_exact else "similar")

    def get_filters(self, insight) -> dict:
        # Legacy filters that convert to a query show that query instead (filters `{}`), as PostHog.
        return {} if shown_query(insight) is not None else insight.filters

    @extend_schema_field(QueryField(allow_null=True))
    def get_query(self, insight) -> dict | None:
        return shown_query(insight)

    def get_tags(self, insight) -> list[str]:
        return tag_names(insight)

    # -- output: Meta.fields is the one list of keys -------------------------------------------
    # Lists of insights are the hot path, and DRF's per-field machinery (and even building a
    # ModelSerializer's fields) costs more than their queries. So the readable fields are read
    # once per serializer class into a plan of plain getters: the serializer's `get_<field>`
    # method when it has one, a cached user representation for nested users, the wire format
    # for datetimes, the model value for plain columns, else the field's own representation.

    def _plan(self) -> list[tuple[str, str, str]]:
        plan = _OUTPUT_PLANS.get(type(self))
        if plan is None:
            plan = _OUTPUT_PLANS[type(self)] = [(field.field_name, *self._recipe(field)) for field in self._readable_fields]
        return plan

    def _recipe(self, field) -> tuple[str, str]:
        if isinstance(field, serializers.SerializerMethodField):
            return "method", field.method_name
        # A plain field may have its output overridden by a `get_<field>` method (not one of DRF's own).
        name = f"get_{field.field_name}"
        if hasattr(self, name) and not hasattr(serializers.ModelSerializer, name):
            return "method", name
        if isinstance(field, UserBasicSerializer):
            return "user", field.source
        if isinstance(field, serializers.ListSerializer) and isinstance(field.child, UserBasicSerializer):
            return "users", field.source
        if isinstance(field, serializers.DateTimeField):
            return "datetime", field.source
        if isinstance(field, (serializers.CharField, serializers.IntegerField, serializers.BooleanField, QueryField)):
            return "column", field.source  # model columns already hold what these fields would output
        return "field", field.field_name

    @cached_property
    def _getters(self) -> list[tuple[str, Callable]]:
        return [(name, self._getter(kind, argument)) for name, kind, argument in self._plan()]

    def _getter(self, kind: str, argument: str) -> Callable:
        if kind == "method":
            return getattr(self, argument)
        if kind == "field":
            return lambda instance: _represent(self.fields[argument], instance)
        value = attrgetter(argument)
        if kind == "user":
            return lambda instance: self._user(value(instance))
        if kind == "users":
            return lambda instance: [self._user(user) for user in value(instance)]
        if kind == "datetime":
            tz = timezone.get_current_timezone()
            return lambda instance: wire_datetime(value(instance), tz)
        return value

    def to_representation(self, insight):
        data = {name: getter(insight) for name, getter in self._getters}
        if data.get("search_match_type", "") is None:
            del data["search_match_type"]  # the key exists only in search results
        return data

    def _user(self, user) -> dict | None:
        if user is None:
            return None
        # One representation per user, shared by every insight of the response.
        users = self.context.setdefault("serialized_users", {})
        if user.id not in users:
            serializer = self.context.setdefault("user_serializer", UserBasicSerializer())
            users[user.id] = serializer.to_representation(user)
        return users[user.id]


_OUTPUT_PLANS: dict[type, list[tuple[str, str, str]]] = {}


def _represent(field, instance):
    attribute = field.get_attribute(instance)
    return None if attribute is None else field.to_representation(attribute)


class InsightViewedSerializer(serializers.Serializer):
    insight_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_DATABASE_ID),
        allow_empty=False,
        max_length=MAX_VIEWED_IDS,
        help_text=f"Ids of insights the current user has just viewed. At most {MAX_VIEWED_IDS} per request.",
    )


class InsightCancelSerializer(serializers.Serializer):
    client_query_id = serializers.CharField(max_length=200, help_text="The id the client gave the query it wants cancelled.")


class TrendingParamsSerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=MAX_TRENDING_DAYS, default=7)
    limit = serializers.IntegerField(min_value=1, default=10)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_DATABASE_ID, default=0)

    def validate_limit(self, value: int) -> int:
        return min(value, MAX_TRENDING_LIMIT)


class TrendingInsightSerializer(InsightBasicSerializer):
    view_count = serializers.IntegerField(read_only=True, help_text="Number of distinct viewers in the time window.")
    viewers = UserBasicSerializer(many=True, read_only=True, help_text="Up to 3 of the most recent viewers in the time window.")
    last_modified_by = UserBasicSerializer(read_only=True, allow_null=True)

    class Meta(InsightBasicSerializer.Meta):
        fields = [*InsightBasicSerializer.Meta.fields, "view_count", "viewers", "last_modified_by"]
        read_only_fields = fields


@extend_schema_serializer(exclude_fields=["filters", "saved"])
class InsightSerializer(InsightBasicSerializer):
    filters = FiltersField(required=False)
    query = QueryField(required=False, allow_null=True)
    dashboards = DashboardIdsField(
        many=True,
        required=False,
        help_text="DEPRECATED. Will be removed in a future release. Use dashboard_tiles instead. "
        "A dashboard ID for each of the dashboards that this insight is displayed on.",
    )
    last_refresh = serializers.SerializerMethodField(
        help_text="The datetime this insight's results were generated. If added to one or more dashboards the "
        "insight can be refreshed separately on each. Returns the appropriate last_refresh datetime for the context "
        "the insight is viewed in (see from_dashboard query parameter)."
    )
    cache_target_age = serializers.SerializerMethodField(help_text="The target age of the cached results for this insight.")
    next_allowed_client_refresh = serializers.SerializerMethodField(
        help_text="The earliest possible datetime at which we'll allow the cached results for this insight to be "
        "refreshed by querying the database."
    )
    result = serializers.SerializerMethodField()
    hasMore = serializers.SerializerMethodField()
    columns = serializers.SerializerMethodField()
    order = serializers.IntegerField(required=False, allow_null=True, min_value=-2147483648, max_value=2147483647)
    tags = TagsField(required=False)
    last_modified_by = UserBasicSerializer(read_only=True)
    effective_restriction_level = serializers.SerializerMethodField()
    effective_privilege_level = serializers.SerializerMethodField()
    timezone = serializers.SerializerMethodField(help_text="The timezone this chart is displayed in.")
    is_cached = serializers.SerializerMethodField()
    query_status = serializers.SerializerMethodField()
    hogql = serializers.SerializerMethodField()
    types = serializers.SerializerMethodField()
    resolved_date_range = serializers.SerializerMethodField()
    _create_in_folder = serializers.CharField(required=False, allow_blank=True, write_only=True)
    alerts = serializers.SerializerMethodField()

    class Meta:
        model = Insight
        fields = [
            "id",
            "short_id",
            "name",
            "derived_name",
            "filters",
            "query",
            "order",
            "deleted",
            "dashboards",
            "dashboard_tiles",
            "last_refresh",
            "cache_target_age",
            "next_allowed_client_refresh",
            "result",
            "hasMore",
            "columns",
            "created_at",
            "created_by",
            "description",
            "updated_at",
            "tags",
            "favorited",
            "saved",
            "last_modified_at",
            "last_modified_by",
            "is_sample",
            "effective_restriction_level",
            "effective_privilege_level",
            "user_access_level",
            "timezone",
            "is_cached",
            "query_status",
            "hogql",
            "types",
            "resolved_date_range",
            "_create_in_folder",
            "alerts",
            "last_viewed_at",
            "search_match_type",
        ]
        read_only_fields = ["id", "short_id", "created_at", "created_by", "last_modified_at", "last_modified_by", "updated_at", "is_sample"]

    def validate(self, attrs):
        if self.context.get("is_mcp"):
            # PostHog's MCP tools: a query is required to create, and bare queries get wrapped.
            if self.instance is None and "query" not in attrs:
                raise serializers.ValidationError({"query": ["This field is required."]}, code="required")
            if attrs.get("query"):
                attrs["query"] = wrap_for_saving(attrs["query"])
        return attrs

    # -- results: one computation per page, shared through the context ------------------------

    def _results(self, insight) -> dict:
        results = self.context.setdefault("results", {})
        if insight.id not in results:
            results.update(
                insight_results(
                    [insight],
                    self.context.get("team"),
                    self.context.get("refresh", ExecutionMode.FORCE_CACHE),
                    getattr(self.context.get("request"), "user", None),
                    self.context.get("dashboard_context"),
                )
            )
        return results[insight.id]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_last_refresh(self, insight):
        return self._results(insight)["last_refresh"]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_cache_target_age(self, insight):
        return self._results(insight)["cache_target_age"]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_next_allowed_client_refresh(self, insight):
        return self._results(insight)["next_allowed_client_refresh"]

    @extend_schema_field(OpenApiTypes.ANY)
    def get_result(self, insight):
        return self._results(insight)["result"]

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_hasMore(self, insight):
        return self._results(insight)["hasMore"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField(), allow_null=True))
    def get_columns(self, insight):
        return self._results(insight)["columns"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_timezone(self, insight):
        return self._results(insight)["timezone"]

    @extend_schema_field(serializers.BooleanField())
    def get_is_cached(self, insight) -> bool:
        return self._results(insight)["is_cached"]

    @extend_schema_field(OpenApiTypes.ANY)
    def get_query_status(self, insight):
        return self._results(insight)["query_status"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_hogql(self, insight):
        return self._results(insight)["hogql"]

    @extend_schema_field(serializers.ListField(allow_null=True))
    def get_types(self, insight):
        return self._results(insight)["types"]

    @extend_schema_field(
        {
            "type": "object",
            "nullable": True,
            "properties": {
                "date_from": {"type": "string", "format": "date-time"},
                "date_to": {"type": "string", "format": "date-time"},
            },
        }
    )
    def get_resolved_date_range(self, insight):
        return self._results(insight)["resolved_date_range"]

    # -- access levels: the restrictions of the dashboards the insight is on, for this user -----

    @extend_schema_field(serializers.ChoiceField(choices=RESTRICTION_LEVELS))
    def get_effective_restriction_level(self, insight) -> int:
        if self.context.get("is_shared"):
            return RESTRICTION_ONLY_COLLABORATORS_CAN_EDIT
        return request_access(self.context).insight_restriction(insight_dashboards(insight))

    @extend_schema_field(serializers.ChoiceField(choices=PRIVILEGE_LEVELS))
    def get_effective_privilege_level(self, insight) -> int:
        if self.context.get("is_shared"):
            return PRIVILEGE_CAN_VIEW
        return request_access(self.context).insight_privilege(insight_dashboards(insight))

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_alerts(self, insight) -> list:
        alerts = self.context.get("alerts")
        if alerts is None or insight.id not in alerts:
            # One lookup for the whole page: the list view's instances share this context.
            instances = self.parent.instance if self.parent is not None and self.parent.instance is not None else [insight]
            ids = [i.id for i in instances] + [insight.id]
            alerts = self.context["alerts"] = {**dict.fromkeys(ids, []), **signals.alerts_for(ids)}
        return alerts.get(insight.id, [])

    def get_filters(self, insight) -> dict:
        filters = super().get_filters(insight)
        if shown_query(insight) is None and "insight" not in filters:
            return {**filters, "insight": "TRENDS"}  # legacy insights without a type are trends
        return filters

    def to_representation(self, insight):
        data = super().to_representation(insight)
        data["filters_hash"] = self._results(insight)["filters_hash"]  # sent, as PostHog does, though not in its schema
        if self.context.get("hide_extra_details"):
            for key in ("created_by", "last_modified_by", "created_at", "last_modified_at"):
                data.pop(key)
        return data


class TrendingPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = TrendingInsightSerializer(many=True)

