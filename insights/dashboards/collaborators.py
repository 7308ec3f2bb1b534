"""Collaborators of a restricted dashboard: /api/projects/:id/dashboards/:dashboard_id/collaborators/.

Listed by any member of the project; added and removed by those who may edit the dashboard, and
only while the dashboard is restricted (PostHog's rules and messages).
"""
import uuid
from functools import cached_property

from django.db import IntegrityError, transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.parsers import JSONParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from accounts.models import OrganizationMembership, User
from accounts.serializers import UserBasicSerializer
from core.mixins import TeamScopedViewSetMixin

from ..access import ONLY_COLLABORATORS, Access
from ..models import Dashboard, DashboardPrivilege

LOWEST_LEVEL_ADD = "Cannot add collaborators to a dashboard on the lowest restriction level."
LOWEST_LEVEL_REMOVE = "Cannot remove collaborators from a dashboard on the lowest restriction level."


class DashboardCollaboratorSerializer(serializers.ModelSerializer):
    dashboard_id = serializers.IntegerField(read_only=True)
    user = UserBasicSerializer(read_only=True)
    user_uuid = serializers.UUIDField(write_only=True, help_text="The user to invite; a member of the project's organization.")

    class Meta:
        model = DashboardPrivilege
        fields = ["id", "dashboard_id", "user", "level", "added_at", "updated_at", "user_uuid"]
        read_only_fields = ["id", "dashboard_id", "user", "added_at", "updated_at"]

    def validate(self, attrs):
        if self.context["dashboard"].restriction_level < ONLY_COLLABORATORS:
            raise serializers.ValidationError(LOWEST_LEVEL_ADD)
        if attrs.get("level") != Dashboard.PrivilegeLevel.CAN_EDIT:
            raise serializers.ValidationError("Only edit access can be explicitly specified currently.")
        return attrs


DASHBOARD_ID = OpenApiParameter("dashboard_id", OpenApiTypes.INT, OpenApiParameter.PATH)
USER_UUID = OpenApiParameter("user__uuid", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The collaborator's user uuid.")


@extend_schema(parameters=[DASHBOARD_ID], tags=["dashboards"])
@extend_schema_view(destroy=extend_schema(parameters=[USER_UUID], responses={204: None}))
class DashboardCollaboratorViewSet(TeamScopedViewSetMixin, mixins.ListModelMixin, mixins.CreateModelMixin,
                                   mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Users invited to edit a dashboard restricted to its collaborators (not paginated)."""

    scope_object = "dashboard"
    serializer_class = DashboardCollaboratorSerializer
    queryset = DashboardPrivilege.objects.none()
    pagination_class = None
    parser_classes = [JSONParser]
    filter_backends: list = []
    lookup_field = "user__uuid"

    @cached_property
    def dashboard(self) -> Dashboard:
        raw = self.kwargs.get("dashboard_id", "")
        dashboard_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
        dashboard = (Dashboard.objects.filter(id=dashboard_id, team__project_id=self.team.project_id, deleted=False).first()
                     if dashboard_id is not None else None)
        if dashboard is None:
            raise exceptions.NotFound("Dashboard not found.")
        return dashboard

    @cached_property
    def access(self) -> Access:
        return Access(self.request.user, self.team)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method not in SAFE_METHODS and not self.access.can_edit_dashboard(self.dashboard):
            raise exceptions.PermissionDenied("You don't have edit permissions for this dashboard.")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return DashboardPrivilege.objects.none()
        return (DashboardPrivilege.objects.filter(dashboard=self.dashboard, user__is_active=True)
                .select_related("user").order_by("added_at", "id"))

    def get_object(self):
        try:
            user_uuid = uuid.UUID(self.kwargs["user__uuid"])
        except ValueError:
            raise exceptions.NotFound() from None
        privilege = self.get_queryset().filter(user__uuid=user_uuid).first()
        if privilege is None:
            raise exceptions.NotFound()
        return privilege

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["dashboard"] = self.dashboard
        return context

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = User.objects.filter(is_active=True, uuid=data["user_uuid"]).first()
        if user is None:
            raise exceptions.ValidationError("User does not exist.")
        invited = Access(user, self.team)
        if not OrganizationMembership.objects.filter(organization_id=self.team.organization_id, user=user).exists():
            raise exceptions.ValidationError("Cannot add collaborators that have no access to the project.")
        if invited.can_restrict(self.dashboard):
            raise exceptions.ValidationError(
                "Cannot add collaborators that already have inherent access (the dashboard owner or a project admins)."
            )
        try:
            with transaction.atomic():
                privilege = DashboardPrivilege.objects.create(dashboard=self.dashboard, user=user, level=data["level"])
        except IntegrityError:
            raise exceptions.ValidationError("User already is a collaborator.") from None
        return Response(self.get_serializer(privilege).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        privilege = self.get_object()
        if self.dashboard.restriction_level < ONLY_COLLABORATORS:
            raise exceptions.ValidationError(LOWEST_LEVEL_REMOVE)
        privilege.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
