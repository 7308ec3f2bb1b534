"""Dashboards under /api/projects/:id/dashboards/."""
from functools import cached_property

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from core.coalescing import QueryCoalescingMixin
from core.mixins import TeamScopedViewSetMixin
from queries.api import ExecutionMode, resolve_refresh

from ..access import RESTRICT_DENIED, Access
from ..models import Dashboard
from ..views import REFRESH_PARAMETER
from .serializers import DashboardBasicSerializer, DashboardSerializer
from .services import create_dashboard, update_dashboard
from .tiles import render_tiles


@extend_schema_view(retrieve=extend_schema(parameters=[REFRESH_PARAMETER]))
class DashboardViewSet(
    QueryCoalescingMixin,
    TeamScopedViewSetMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Dashboards to put insights on. Soft delete with `PATCH {"deleted": true}`."""

    scope_object = "dashboard"
    project_wide = True
    serializer_class = DashboardSerializer
    queryset = Dashboard.objects.all()
    parser_classes = [JSONParser]
    filter_backends: list = []

    @cached_property
    def _access(self) -> Access:
        return Access(self.request.user, self.team)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["access"] = self._access
        return context

    def get_serializer_class(self):
        return DashboardBasicSerializer if self.action == "list" else DashboardSerializer

    def get_queryset(self):
        queryset = self._with_relations()
        data = self.request.data if self.action == "partial_update" else None
        if not (isinstance(data, dict) and data.get("deleted") is False):
            queryset = queryset.filter(deleted=False)
        return queryset

    def _with_relations(self):
        """This team's dashboards, deleted ones included, with what the serializer reads."""
        queryset = self.filter_queryset_by_team(Dashboard.objects.all())
        return queryset.select_related("created_by").prefetch_related("tagged_items__tag").order_by("id")

    def _render(self, dashboard: Dashboard, refresh: ExecutionMode = ExecutionMode.FORCE_CACHE) -> dict:
        context = self.get_serializer_context()
        context["tiles"] = render_tiles(dashboard, refresh=refresh, context=context)
        return DashboardSerializer(dashboard, context=context).data

    def retrieve(self, request, *args, **kwargs):
        return Response(self._render(self.get_object(), resolve_refresh(request.query_params.get("refresh"))))

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        tags = data.pop("tags", None)
        data.pop("tiles", None)
        source, duplicate_tiles = data.pop("use_dashboard", None), data.pop("duplicate_tiles", False)
        dashboard = create_dashboard(team=self.team, user=request.user, data=data, tags=tags, source=source, duplicate_tiles=duplicate_tiles)
        # Read back whatever was written (a dashboard may be created already deleted).
        return Response(self._render(self._with_relations().get(pk=dashboard.pk)), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        dashboard = self.get_object()
        self._access.require_dashboard_edit(dashboard)
        serializer = self.get_serializer(dashboard, data=request.data, partial=kwargs.pop("partial", False))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "restriction_level" in data and not self._access.can_restrict(dashboard):
            raise PermissionDenied(RESTRICT_DENIED)
        tags = data.pop("tags", None)
        tiles = data.pop("tiles", None)
        data.pop("use_dashboard", None), data.pop("duplicate_tiles", None)  # duplicating is for create only
        dashboard = update_dashboard(serializer.instance, data=data, tags=tags, tiles=tiles, user=request.user)
        return Response(self._render(self._with_relations().get(pk=dashboard.pk)))

    @extend_schema(responses={405: OpenApiResponse(description="Dashboards cannot be deleted; PATCH `{\"deleted\": true}` instead.")})
    def destroy(self, request, *args, **kwargs):
        return Response(status=status.HTTP_405_METHOD_NOT_ALLOWED)
