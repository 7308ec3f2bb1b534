"""Insights and dashboards endpoints under /api/projects/:id/ and /api/environments/:id/."""
import json
from functools import cached_property

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework_csv.renderers import CSVRenderer

from activity.serializers import ActivityPageSerializer
from activity.views import activity_page_response
from accounts.authentication import PersonalAPIKeyAuthentication
from core.coalescing import QueryCoalescingMixin
from core.mixins import TeamScopedViewSetMixin
from core.openapi import AutoSchema
from core.throttling import AI_THROTTLES
from queries.api import ExecutionMode, cancel_query, resolve_refresh, validate_dashboard_filters

from . import openapi  # noqa: F401  (registers the serializer schema extension)
from . import signals
from .access import CAN_EDIT, Access, require_tile_changes
from .analysis import InsightAnalysisSerializer, analyze_insight
from .bulk_tags import BulkUpdateTagsRequestSerializer, BulkUpdateTagsResponseSerializer
from .filters import MAX_DATABASE_ID, InsightFilterBackend, InsightFilterSet, str_to_bool
from .llm import ensure_ai_allowed
from .metadata import GenerateMetadataRequestSerializer, InsightMetadataSerializer, generate_metadata, validated_query
from .models import DashboardTile, Insight
from .results import DashboardContext, insight_results, shown_query
from .selectors import insight_dashboards, my_last_viewed, trending_insights, with_last_viewed_at, with_relations
from .serializers import (
    MAX_TRENDING_DAYS,
    InsightBasicSerializer,
    InsightCancelSerializer,
    InsightSerializer,
    InsightViewedSerializer,
    TrendingInsightSerializer,
    TrendingPageSerializer,
    TrendingParamsSerializer,
)
from .services import (
    INSIGHT_SCOPE,
    bulk_update_insight_tags,
    create_insight,
    record_insight_views,
    update_insight,
)

from .suggestions import InsightSuggestionSerializer, SuggestionsRequestSerializer, suggest_for_insight

REFRESH_PARAMETER = OpenApiParameter(
    "refresh",
    enum=[mode.value for mode in ExecutionMode],
    default=ExecutionMode.FORCE_CACHE.value,
    description=(
        "Whether to refresh the insight results, how aggressively, and if sync or async: `force_cache` returns "
        "cached data or a cache miss and never calculates; `blocking` calculates synchronously unless there are very "
        "fresh results in the cache; `async` starts a background calculation unless there are very fresh results; "
        "`lazy_async` starts a background calculation unless there are somewhat fresh results; `force_blocking` "
        "calculates synchronously even if fresh results are cached; `force_async` starts a background calculation "
        "even if fresh results are cached. `true`/`1`/`yes` mean `force_blocking`; `false`/`0`/`no` and any other "
        "value mean the default."
    ),
)
ID_PARAMETER = OpenApiParameter(
    "id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="Numeric primary key or 8-character `short_id` (for example `AaVQ8Ijw`) identifying the insight.",
)
FORMAT_PARAMETER = OpenApiParameter("format", enum=["csv", "json"])
# Besides these, the list documents the filter parameters of InsightFilterSet.
LIST_PARAMETERS = [
    REFRESH_PARAMETER,
    FORMAT_PARAMETER,
    OpenApiParameter("basic", OpenApiTypes.BOOL, description="Return basic insight metadata only (no results, faster)."),
]
ACTIVITY_PARAMETERS = [
    OpenApiParameter("limit", OpenApiTypes.INT, description="Page size. Defaults to 10."),
    OpenApiParameter("page", OpenApiTypes.INT, description="1-indexed page number. Defaults to 1."),
]


class InsightSchema(AutoSchema):
    def get_operation_id(self):
        operation_id = super().get_operation_id()
        action = getattr(self.view, "action", None)
        # PostHog's published ids: the two `activity` routes are told apart by a suffix, and
        # my_last_viewed (a plain array, not a paginated list) is a "retrieve".
        if action == "activity":
            return f"{operation_id}_2"
        if action == "my_last_viewed":
            return operation_id.removesuffix("_list") + "_retrieve"
        return operation_id


def _json_object_param(params, key: str) -> dict | None:
    raw = params.get(key)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise exceptions.ValidationError({key: [f"Invalid JSON passed in {key} parameter"]})
    return value


@extend_schema_view(
    list=extend_schema(parameters=LIST_PARAMETERS),
    create=extend_schema(parameters=[FORMAT_PARAMETER]),
    retrieve=extend_schema(
        parameters=[
            ID_PARAMETER,
            REFRESH_PARAMETER,
            FORMAT_PARAMETER,
            OpenApiParameter(
                "from_dashboard",
                OpenApiTypes.INT,
                description="Only if loading an insight in the context of a dashboard: the dashboard's id. "
                "Its filters apply and the tile's `color` and `layouts` are added to the response.",
            ),
            OpenApiParameter("filters_override", OpenApiTypes.STR, description="JSON object of dashboard filters to apply."),
            OpenApiParameter("variables_override", OpenApiTypes.STR, description="JSON object of dashboard variable values to apply."),
            OpenApiParameter("basic", OpenApiTypes.BOOL, description="Return basic insight metadata only."),
        ]
    ),
    update=extend_schema(parameters=[ID_PARAMETER, FORMAT_PARAMETER]),
    partial_update=extend_schema(parameters=[ID_PARAMETER, FORMAT_PARAMETER]),
    destroy=extend_schema(
        parameters=[ID_PARAMETER, FORMAT_PARAMETER],
        responses={405: OpenApiResponse(description="Insights cannot be deleted; PATCH `{\"deleted\": true}` instead.")},
    ),
)
class InsightViewSet(QueryCoalescingMixin, TeamScopedViewSetMixin, viewsets.ModelViewSet):
    """Saved insights of a project. Soft delete with `PATCH {"deleted": true}`; `DELETE` is refused.

    Viewers of a shared insight read it (list and retrieve only) with its share token.
    """

    scope_object = "insight"
    required_scopes: list[str] | None = None  # set per extra action
    project_wide = True
    serializer_class = InsightSerializer
    queryset = Insight.objects_including_soft_deleted.all()
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CSVRenderer]
    parser_classes = [JSONParser]
    filter_backends = [InsightFilterBackend]
    filterset_class = InsightFilterSet
    schema = InsightSchema()

    sharing_enabled_actions = ["list", "retrieve"]

    def get_authenticators(self):
        # Share tokens first, as in PostHog, so a share JWT is never mistaken for a personal key.
        return [cls() for cls in signals.shared_access.authentication_classes] + super().get_authenticators()

    def get_authenticate_header(self, request):
        # Missing or bad credentials stay a 401 with a Bearer challenge (PostHog answers 403 here).
        return PersonalAPIKeyAuthentication().authenticate_header(request)

    def get_permissions(self):
        if signals.shared_access.is_sharing_request(self.request):
            return [signals.shared_access.permission()]  # instead of key scopes and team membership
        return super().get_permissions()

    def _is_basic(self) -> bool:
        return self.action in ("list", "retrieve") and str_to_bool(self.request.query_params.get("basic", "0"))

    def get_serializer_class(self):
        return InsightBasicSerializer if self._is_basic() else InsightSerializer

    def get_queryset(self):
        queryset = self.filter_queryset_by_team(Insight.objects_including_soft_deleted.all())
        data = self.request.data if self.action == "partial_update" else None
        # PATCH {"deleted": false} must reach a soft-deleted insight to restore it.
        if not (isinstance(data, dict) and data.get("deleted") is False):
            queryset = queryset.filter(deleted=False)
        shared_ids = signals.shared_access.insight_ids(self.request)
        if shared_ids is not None:
            queryset = queryset.filter(id__in=shared_ids)
        return with_last_viewed_at(with_relations(queryset, basic=self._is_basic()))

    def get_object(self):
        """By numeric id first, then by short_id."""
        queryset, lookup = self.get_queryset(), self.kwargs["pk"]
        insight = None
        if lookup.isdigit() and int(lookup) <= MAX_DATABASE_ID:
            insight = queryset.filter(pk=int(lookup)).first()
        if insight is None:
            insight = queryset.filter(short_id=lookup).first()
        if insight is None:
            raise exceptions.NotFound()
        self.check_object_permissions(self.request, insight)
        return insight

    def _refresh(self) -> ExecutionMode:
        value = self.request.query_params.get("refresh")
        if value is None and isinstance(self.request.data, dict):
            value = self.request.data.get("refresh")
        mode = resolve_refresh(value)
        if signals.shared_access.is_sharing_request(self.request):  # a viewer of a share never forces a recomputation
            return signals.shared_access.execution_mode(mode)
        return mode

    @cached_property
    def _access(self) -> Access:
        return Access(self.request.user, self.team)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["access"] = self._access
        context["is_mcp"] = self.request.headers.get("X-PostHog-Client") == "mcp"
        if signals.shared_access.is_sharing_request(self.request):
            context["is_shared"] = True
        return context

    def _render(self, insight: Insight, refresh: ExecutionMode) -> dict:
        """The insight as written, re-read with the relations the serializer needs."""
        fresh = with_last_viewed_at(with_relations(Insight.objects_including_soft_deleted.filter(pk=insight.pk))).get()
        return InsightSerializer(fresh, context={**self.get_serializer_context(), "refresh": refresh}).data

    def list(self, request, *args, **kwargs):
        refresh = self._refresh()
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        context = {**self.get_serializer_context(), "refresh": refresh}
        if not self._is_basic():
            context["results"] = insight_results(page, self.team, refresh, request.user)
        return self.get_paginated_response(self.get_serializer_class()(page, many=True, context=context).data)

    def retrieve(self, request, *args, **kwargs):
        refresh = self._refresh()
        insight = self.get_object()
        # Dashboard context and overrides are the editor's tools; share viewers see the insight as saved.
        params = {} if signals.shared_access.is_sharing_request(request) else request.query_params
        tile = None
        if "from_dashboard" in params:
            dashboard_id = params["from_dashboard"]
            if not dashboard_id.isdigit() or int(dashboard_id) > MAX_DATABASE_ID:
                raise exceptions.ValidationError({"from_dashboard": ["A valid integer is required."]})
            tile = DashboardTile.objects.filter(dashboard_id=int(dashboard_id), insight=insight).select_related("dashboard").first()
        filters_override = _json_object_param(params, "filters_override")
        if filters_override:
            try:
                validate_dashboard_filters(filters_override)
            except exceptions.ValidationError as error:
                raise exceptions.ValidationError({"filters_override": error.detail}) from None
        variables_override = _json_object_param(params, "variables_override")
        context = {**self.get_serializer_context(), "refresh": refresh}
        dashboard = None
        if tile is not None or filters_override is not None or variables_override is not None:
            dashboard = context["dashboard_context"] = DashboardContext(
                tile.dashboard if tile else None, filters_override, variables_override,
                tile_filters=tile.filters_overrides if tile else None,
            )
        data = self.get_serializer_class()(insight, context=context).data
        if dashboard is not None and "query" in data:
            data["query"] = dashboard.returned_query(shown_query(insight))
        if tile is not None:
            data["color"] = tile.color
            # Layouts migrated from older versions may still be stored as a JSON string.
            data["layouts"] = json.loads(tile.layouts) if isinstance(tile.layouts, str) else tile.layouts
        return Response(data)

    def create(self, request, *args, **kwargs):
        refresh = self._refresh()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if data.get("dashboards"):
            requested = [dashboard for dashboard in data["dashboards"] if not dashboard.deleted]
            require_tile_changes(self._access, requested, [])
        insight = create_insight(
            team=self.team, user=request.user, data=data, dashboards=data.pop("dashboards", None), tags=data.pop("tags", None)
        )
        return Response(self._render(insight, refresh), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        refresh = self._refresh()
        insight = self.get_object()
        current = insight_dashboards(insight)
        self._access.require_insight_edit(current)
        serializer = self.get_serializer(insight, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if data.get("dashboards") is not None and not data.get("deleted"):
            require_tile_changes(self._access, [dashboard for dashboard in data["dashboards"] if not dashboard.deleted], current)
        update_insight(
            insight, team=self.team, user=request.user, data=data, dashboards=data.pop("dashboards", None), tags=data.pop("tags", None)
        )
        return Response(self._render(insight, refresh))

    def destroy(self, request, *args, **kwargs):
        # Insights are soft deleted with PATCH {"deleted": true}; the object is not even looked up.
        return Response(status=status.HTTP_405_METHOD_NOT_ALLOWED)

    @extend_schema(parameters=[ID_PARAMETER, *ACTIVITY_PARAMETERS], responses={200: ActivityPageSerializer})
    @action(methods=["GET"], detail=True, required_scopes=["activity_log:read"])
    def activity(self, request, *args, **kwargs):
        """The change history of one insight, newest first."""
        insight = self.get_object()
        return activity_page_response(request, scope=INSIGHT_SCOPE, team_id=self.team.id, item_ids=[str(insight.id)])

    @extend_schema(parameters=ACTIVITY_PARAMETERS, responses={200: ActivityPageSerializer})
    @action(methods=["GET"], detail=False, url_path="activity", required_scopes=["activity_log:read"])
    def all_activity(self, request, *args, **kwargs):
        """The change history of every insight of this environment, newest first."""
        return activity_page_response(request, scope=INSIGHT_SCOPE, team_id=self.team.id)

    @extend_schema(request=InsightViewedSerializer, responses={201: OpenApiResponse(description="Views recorded.")})
    @action(methods=["POST"], detail=False, required_scopes=["insight:read"])
    def viewed(self, request, *args, **kwargs):
        """Record that the current user has just viewed these insights. Ids of other projects or of
        deleted insights are silently dropped."""
        serializer = InsightViewedSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        record_insight_views(team=self.team, user=request.user, insight_ids=serializer.validated_data["insight_ids"])
        return Response(status=status.HTTP_201_CREATED)

    @extend_schema(request=InsightCancelSerializer, responses={201: OpenApiResponse(description="Query cancelled.")})
    @action(methods=["POST"], detail=False)
    def cancel(self, request, *args, **kwargs):
        """Cancel the running calculation started with this `client_query_id`."""
        serializer = InsightCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        cancel_query(self.team, serializer.validated_data["client_query_id"])
        return Response(status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: InsightBasicSerializer(many=True)}, filters=False)
    @action(methods=["GET"], detail=False, pagination_class=None)
    def my_last_viewed(self, request, *args, **kwargs):
        """The last 5 insights this user viewed in this environment, most recent first."""
        insights = my_last_viewed(team=self.team, user=request.user)
        return Response(InsightBasicSerializer(insights, many=True, context=self.get_serializer_context()).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("days", OpenApiTypes.INT, description=f"Window in days over which views are counted. Defaults to 7, at most {MAX_TRENDING_DAYS}."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="Maximum number of insights. Defaults to 10, at most 100."),
            OpenApiParameter("offset", OpenApiTypes.INT, description="Number of ranked insights to skip. Defaults to 0."),
        ],
        responses={200: TrendingPageSerializer},
    )
    @action(methods=["GET"], detail=False, required_scopes=["insight:read"])
    def trending(self, request, *args, **kwargs):
        """Insights ranked by how many people viewed them in the last `days` days, then by last
        modification. Each comes with its `view_count` and up to 3 most recent `viewers`."""
        params = TrendingParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        insights = trending_insights(team=self.team, **params.validated_data)
        results = TrendingInsightSerializer(insights, many=True, context=self.get_serializer_context()).data
        return Response({"count": len(results), "next": None, "previous": None, "results": results})

    @extend_schema(parameters=[ID_PARAMETER], responses={200: InsightAnalysisSerializer})
    @action(methods=["GET"], detail=True, throttle_classes=AI_THROTTLES)
    def analyze(self, request, *args, **kwargs):
        """A short plain-text analysis of the insight's cached result (never computes it). Written by the
        configured LLM when there is one, which the organization must approve; else computed on the server."""
        ensure_ai_allowed(self.team.organization)
        return Response({"result": analyze_insight(self.get_object(), self.team, request.user)})

    @extend_schema(methods=["GET"], parameters=[ID_PARAMETER], responses={200: InsightSuggestionSerializer(many=True)}, filters=False)
    @extend_schema(methods=["POST"], parameters=[ID_PARAMETER], request=SuggestionsRequestSerializer,
                   responses={200: InsightSuggestionSerializer(many=True)}, filters=False)
    @action(methods=["GET", "POST"], detail=True, throttle_classes=AI_THROTTLES, pagination_class=None)
    def suggestions(self, request, *args, **kwargs):
        """Follow-up insights, each with a runnable `targetQuery`. POST `{"context": "<previous analysis>"}`
        to steer the configured LLM's extra suggestions."""
        ensure_ai_allowed(self.team.organization)
        context = None
        if request.method == "POST":
            body = SuggestionsRequestSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            context = body.validated_data.get("context")
        return Response(suggest_for_insight(self.get_object(), self.team, request.user, context=context))

    @extend_schema(request=BulkUpdateTagsRequestSerializer, responses={200: BulkUpdateTagsResponseSerializer})
    @action(methods=["POST"], detail=False, required_scopes=["insight:write"], pagination_class=None)
    def bulk_update_tags(self, request, *args, **kwargs):
        """Add, remove or set tags on up to 500 insights at once. Ids that are not insights of this
        project are reported in `skipped`."""
        body = BulkUpdateTagsRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ids = list(dict.fromkeys(body.validated_data["ids"]))
        found = {insight.id: insight for insight in with_relations(self.filter_queryset_by_team(Insight.objects.filter(deleted=False, id__in=ids)))}
        # Each insight needs editor access: one on a dashboard the user may not edit is skipped.
        denied = {i for i, insight in found.items() if self._access.insight_privilege(insight_dashboards(insight)) < CAN_EDIT}
        editable = [found[i] for i in ids if i in found and i not in denied]
        tags = bulk_update_insight_tags(team=self.team, user=request.user, insights=editable,
                                        action=body.validated_data["action"], names=body.validated_data["tags"])
        return Response({
            "updated": [{"id": insight.id, "tags": tags[insight.id]} for insight in editable],
            "skipped": [{"id": insight_id, "reason": "Not found" if insight_id not in found else "Permission denied"}
                        for insight_id in ids if insight_id not in found or insight_id in denied],
        })

    @extend_schema(request=GenerateMetadataRequestSerializer, responses={200: InsightMetadataSerializer})
    @action(methods=["POST"], detail=False, required_scopes=["insight:write"], throttle_classes=AI_THROTTLES)
    def generate_metadata(self, request, *args, **kwargs):
        """A name and a description for an insight's query (an InsightVizNode, or an ActorsQuery,
        EventsQuery or GroupsQuery)."""
        ensure_ai_allowed(self.team.organization)
        return Response(generate_metadata(validated_query(request.data)))

    @extend_schema(exclude=True)
    @action(methods=["POST"], detail=False)
    def timing(self, request, *args, **kwargs):
        """Time-to-see-data reports of PostHog's frontend: accepted and not stored."""
        return Response(status=status.HTTP_201_CREATED)

