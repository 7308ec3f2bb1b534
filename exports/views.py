"""Exports (`/api/projects/:id/exports/`): create (runs at once), list your own, retrieve, download."""
from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser

from core.mixins import TeamScopedViewSetMixin
from queries import conf

from .filters import ExportedAssetFilter
from .models import ExportedAsset
from .selectors import live_assets
from .serializers import ExportedAssetSerializer
from .services import create_export

STUCK_MESSAGE = ("Export failed without throwing an exception. Please try to rerun this export and contact support if it fails "
                 "to complete multiple times.")


class ExportedAssetViewSet(TeamScopedViewSetMixin, mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                           viewsets.GenericViewSet):
    scope_object = "export"
    required_scopes: list[str] | None = None  # set per extra action
    serializer_class = ExportedAssetSerializer
    queryset = ExportedAsset.objects.none()
    parser_classes = [JSONParser]
    filterset_class = ExportedAssetFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        assets = live_assets(self.team)
        if self.action == "list":
            assets = assets.filter(created_by=self.request.user).order_by("-created_at", "-id")
        return assets

    def get_object(self):
        asset = super().get_object()
        stuck_after = timedelta(seconds=conf.async_timeout_seconds() + 30)
        if asset.content is None and not asset.exception and asset.created_at < timezone.now() - stuck_after:
            asset.exception = STUCK_MESSAGE
        return asset

    def perform_create(self, serializer):
        serializer.instance = create_export(team=self.team, user=self.request.user, data=dict(serializer.validated_data))

    @extend_schema(
        parameters=[OpenApiParameter("download", OpenApiTypes.BOOL, description="Send as an attachment with the export's filename.")],
        responses={(200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The exported file."),
                   404: OpenApiResponse(description="No such export, or its file is not ready.")},
    )
    @action(methods=["GET"], detail=True, required_scopes=["export:read"], filter_backends=[])
    def content(self, request, *args, **kwargs):
        """The exported file, as its `export_format`."""
        asset = self.get_object()
        if asset.content is None:
            raise exceptions.NotFound()
        response = HttpResponse(bytes(asset.content), content_type=asset.export_format)
        if request.query_params.get("download") in ("true", "1", "True"):
            response["Content-Disposition"] = f'attachment; filename="{asset.filename}"'
        if not settings.DEBUG:
            response["Cache-Control"] = "max-age=86400"
        return response
