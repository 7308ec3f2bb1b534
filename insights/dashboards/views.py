"""Dashboards under /api/projects/:id/dashboards/."""
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from core.mixins import TeamScopedViewSetMixin

from ..models import Dashboard
from .serializers import DashboardSerializer
from .services import create_dashboard, update_dashboard


class DashboardViewSet(
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

    def get_queryset(self):
        queryset = self.filter_queryset_by_team(Dashboard.objects.all())
        data = self.request.data if self.action == "partial_update" else None
        if not (isinstance(data, dict) and data.get("deleted") is False):
            queryset = queryset.filter(deleted=False)
        return queryset.select_related("created_by").prefetch_related("tagged_items__tag").order_by("id")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        tags = data.pop("tags", None)
        serializer.instance = create_dashboard(team=self.team, user=self.request.user, data=data, tags=tags)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        tags = data.pop("tags", None)
        serializer.instance = update_dashboard(serializer.instance, data=data, tags=tags)

    @extend_schema(responses={405: OpenApiResponse(description="Dashboards cannot be deleted; PATCH `{\"deleted\": true}` instead.")})
    def destroy(self, request, *args, **kwargs):
        return Response(status=status.HTTP_405_METHOD_NOT_ALLOWED)
