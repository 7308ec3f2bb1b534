"""The sharing configuration of an insight: `.../insights/<insight_id>/sharing/`."""
from functools import cached_property

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from core.mixins import TeamScopedViewSetMixin
from insights.access import CAN_EDIT, Access
from insights.models import Insight
from insights.selectors import insight_dashboards

from . import services
from .models import SharingConfiguration
from .serializers import (
    SharePasswordCreatedSerializer,
    SharePasswordCreateSerializer,
    SharingConfigurationSerializer,
    created_by_email,
)

WRITE_SCOPES = ["sharing_configuration:write"]
ERROR_BODY = inline_serializer("SharingErrorResponse", {"error": serializers.CharField()})
# Creating a password answers the legacy `{"error"}` when protection is off, else the API's error body.
PASSWORD_ERROR_BODY = PolymorphicProxySerializer(
    component_name="SharePasswordErrorResponse",
    serializers=[
        ERROR_BODY,
        inline_serializer(
            "SharePasswordValidationError",
            {"type": serializers.CharField(), "code": serializers.CharField(), "detail": serializers.CharField(),
             "attr": serializers.CharField(allow_null=True)},
        ),
    ],
    resource_type_field_name=None,
)
INSIGHT_ID = OpenApiParameter("insight_id", OpenApiTypes.INT, OpenApiParameter.PATH)
PROJECT_ID = OpenApiParameter(
    "project_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="Project ID of the project you're trying to access. To find the ID of the project, make a call to /api/projects/.",
)


def _parse_id(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


@extend_schema(parameters=[PROJECT_ID, INSIGHT_ID], tags=["insights"])
class SharingConfigurationViewSet(TeamScopedViewSetMixin, viewsets.GenericViewSet):
    """One configuration per insight, read and edited at the collection URL (no list, no ids)."""

    scope_object = "sharing_configuration"
    required_scopes: list[str] | None = None  # set per extra action
    serializer_class = SharingConfigurationSerializer
    queryset = SharingConfiguration.objects.none()
    pagination_class = None

    @cached_property
    def insight(self) -> Insight:
        insight_id = _parse_id(self.kwargs.get("insight_id", ""))
        insight = (
            Insight.objects.select_related("team__organization").filter(id=insight_id, team__project_id=self.team.project_id).first()
            if insight_id is not None
            else None
        )
        if insight is None:
            raise NotFound("Insight not found.")
        return insight

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Writes need edit rights on the insight: one on a restricted dashboard may be view-only.
        if request.method not in SAFE_METHODS and Access(request.user, self.team).insight_privilege(insight_dashboards(self.insight)) < CAN_EDIT:
            raise PermissionDenied("You don't have edit permissions for this insight.")

    @extend_schema(
        summary="The insight's sharing configuration",
        description="A single object. The configuration is stored on first read, so its access token is stable.",
    )
    def list(self, request, *args, **kwargs):
        configuration = services.current_configuration(self.insight)
        return Response(self.get_serializer(configuration).data)

    @extend_schema(
        summary="Enable or disable sharing, change its settings or password protection",
        responses={200: SharingConfigurationSerializer, 403: OpenApiResponse(description="Public sharing is disabled for this organization.")},
    )
    def partial_update(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        configuration = services.update_configuration(self.insight, request.user, serializer.validated_data)
        return Response(self.get_serializer(configuration).data)

    @extend_schema(
        request=None,
        summary="Rotate the access token",
        description="A new token replaces the current one, which keeps working for 5 minutes. Settings and passwords carry over.",
    )
    @action(methods=["post"], detail=False, required_scopes=WRITE_SCOPES)
    def refresh(self, request, *args, **kwargs):
        configuration = services.rotate_access_token(self.insight, request.user)
        return Response(self.get_serializer(configuration).data)

    @extend_schema(
        request=SharePasswordCreateSerializer,
        responses={201: SharePasswordCreatedSerializer, 400: PASSWORD_ERROR_BODY},
        summary="Create a password for the share",
        description="Requires password protection to be enabled. The raw password is returned this once.",
    )
    @action(methods=["post"], detail=False, url_path="passwords", required_scopes=WRITE_SCOPES)
    def create_password(self, request, *args, **kwargs):
        configuration = services.current_configuration(self.insight)
        if not configuration.password_required:
            return Response({"error": "Password protection must be enabled before creating passwords"}, status=status.HTTP_400_BAD_REQUEST)
        serializer = SharePasswordCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        password, raw_password = services.create_password(
            configuration, request.user, serializer.validated_data.get("raw_password"), serializer.validated_data["note"]
        )
        body = {
            "id": password.id,
            "password": raw_password,
            "note": password.note,
            "created_at": password.created_at,
            "created_by_email": created_by_email(password),
        }
        return Response(SharePasswordCreatedSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("password_id", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={204: None},
        summary="Deactivate a password of the share",
    )
    @action(methods=["delete"], detail=False, url_path=r"passwords/(?P<password_id>[^/.]+)", required_scopes=WRITE_SCOPES)
    def delete_password(self, request, password_id, *args, **kwargs):
        configuration = services.current_configuration(self.insight)
        if not services.deactivate_password(configuration, password_id):
            raise NotFound("Password not found")
        return Response(status=status.HTTP_204_NO_CONTENT)
