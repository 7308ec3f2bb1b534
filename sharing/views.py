"""Sharing configurations: `.../insights/<insight_id>/sharing/` and `.../dashboards/<dashboard_id>/sharing/`."""
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
from insights.models import Dashboard, Insight
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
DASHBOARD_ID = OpenApiParameter("dashboard_id", OpenApiTypes.INT, OpenApiParameter.PATH)
PROJECT_ID = OpenApiParameter(
    "project_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="Project ID of the project you're trying to access. To find the ID of the project, make a call to /api/projects/.",
)


def _parse_id(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


class BaseSharingViewSet(TeamScopedViewSetMixin, viewsets.GenericViewSet):
    """One configuration per shared object, read and edited at the collection URL (no list, no ids).
    Subclasses name the object (`target`) and who may change its sharing (`require_edit`)."""

    scope_object = "sharing_configuration"
    required_scopes: list[str] | None = None  # set per extra action
    serializer_class = SharingConfigurationSerializer
    queryset = SharingConfiguration.objects.none()
    pagination_class = None

    @cached_property
    def target(self):
        raise NotImplementedError

    def require_edit(self, access: Access) -> None:
        raise NotImplementedError

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Writes need edit rights on what is shared: restricted dashboards (and their insights) may be view-only.
        if request.method not in SAFE_METHODS:
            self.require_edit(Access(request.user, self.team))

    @extend_schema(
        summary="The sharing configuration",
        description="A single object. The configuration is stored on first read, so its access token is stable.",
    )
    def list(self, request, *args, **kwargs):
        configuration = services.current_configuration(self.target)
        return Response(self.get_serializer(configuration).data)

    @extend_schema(
        summary="Enable or disable sharing, change its settings or password protection",
        responses={200: SharingConfigurationSerializer, 403: OpenApiResponse(description="Public sharing is disabled for this organization.")},
    )
    def partial_update(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        configuration = services.update_configuration(self.target, request.user, serializer.validated_data)
        return Response(self.get_serializer(configuration).data)

    @extend_schema(
        request=None,
        summary="Rotate the access token",
        description="A new token replaces the current one, which keeps working for 5 minutes. Settings and passwords carry over.",
    )
    @action(methods=["post"], detail=False, required_scopes=WRITE_SCOPES)
    def refresh(self, request, *args, **kwargs):
        configuration = services.rotate_access_token(self.target, request.user)
        return Response(self.get_serializer(configuration).data)

    @extend_schema(
        request=SharePasswordCreateSerializer,
        responses={201: SharePasswordCreatedSerializer, 400: PASSWORD_ERROR_BODY},
        summary="Create a password for the share",
        description="Requires password protection to be enabled. The raw password is returned this once.",
    )
    @action(methods=["post"], detail=False, url_path="passwords", required_scopes=WRITE_SCOPES)
    def create_password(self, request, *args, **kwargs):
        configuration = services.current_configuration(self.target)
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
        configuration = services.current_configuration(self.target)
        if not services.deactivate_password(configuration, password_id):
            raise NotFound("Password not found")
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(parameters=[PROJECT_ID, INSIGHT_ID], tags=["insights"])
class SharingConfigurationViewSet(BaseSharingViewSet):
    """The sharing configuration of an insight."""

    @cached_property
    def target(self) -> Insight:
        insight_id = _parse_id(self.kwargs.get("insight_id", ""))
        insight = (
            Insight.objects.select_related("team__organization").filter(id=insight_id, team__project_id=self.team.project_id).first()
            if insight_id is not None
            else None
        )
        if insight is None:
            raise NotFound("Insight not found.")
        return insight

    def require_edit(self, access: Access) -> None:
        if access.insight_privilege(insight_dashboards(self.target)) < CAN_EDIT:
            raise PermissionDenied("You don't have edit permissions for this insight.")


@extend_schema(parameters=[PROJECT_ID, DASHBOARD_ID], tags=["dashboards"])
class DashboardSharingViewSet(BaseSharingViewSet):
    """The sharing configuration of a whole dashboard: its public page shows every tile."""

    @cached_property
    def target(self) -> Dashboard:
        dashboard_id = _parse_id(self.kwargs.get("dashboard_id", ""))
        dashboard = (
            Dashboard.objects.select_related("team__organization")
            .filter(id=dashboard_id, team__project_id=self.team.project_id, deleted=False).first()
            if dashboard_id is not None
            else None
        )
        if dashboard is None:
            raise NotFound("Dashboard not found.")
        return dashboard

    def require_edit(self, access: Access) -> None:
        access.require_dashboard_edit(self.target)
