from django.db.models import Prefetch
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from core.mixins import TeamLookupMixin, TeamScopedViewSetMixin
from core.throttling import BurstRateThrottle, SustainedRateThrottle

from .authentication import is_personal_api_key_request
from .models import OrganizationMembership, PersonalAPIKey, Project, Team, User
from .permissions import APIScopePermission, check_key_covers
from .serializers import MeSerializer, PersonalAPIKeySerializer, ProjectSerializer, TeamSerializer
from .services import create_personal_api_key, roll_personal_api_key

ACCOUNT_PERMISSIONS = [IsAuthenticated, APIScopePermission]
ACCOUNT_THROTTLES = [BurstRateThrottle, SustainedRateThrottle]


class UserViewSet(viewsets.GenericViewSet):
    """Only `@me` is served: the authenticated user with organization and current team."""

    scope_object = "user"
    serializer_class = MeSerializer
    permission_classes = ACCOUNT_PERMISSIONS
    throttle_classes = ACCOUNT_THROTTLES
    queryset = User.objects.none()
    lookup_value_regex = "@me"

    def retrieve(self, request, pk=None):
        user = User.objects.select_related("current_organization", "current_team").get(pk=request.user.pk)
        memberships = OrganizationMembership.objects.filter(user=user).select_related("organization")
        context = {
            **self.get_serializer_context(),
            "organizations": [m.organization for m in memberships],
            "membership_levels": {m.organization_id: m.level for m in memberships},
        }
        return Response(MeSerializer(user, context=context).data)


class PersonalAPIKeyViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    scope_object = "personal_api_key"
    required_scopes: list[str] | None = None  # set per extra action
    serializer_class = PersonalAPIKeySerializer
    permission_classes = ACCOUNT_PERMISSIONS
    throttle_classes = ACCOUNT_THROTTLES
    pagination_class = None
    queryset = PersonalAPIKey.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return PersonalAPIKey.objects.filter(user=self.request.user).order_by("-created_at")

    def get_permissions(self):
        # Any valid key may describe itself (PostHog's MCP tools read their scopes this way).
        if self.kwargs.get("pk") == "@current" and self.action == "retrieve":
            return [IsAuthenticated()]
        return super().get_permissions()

    def _check_actor_covers(self, verb: str, *, scopes, scoped_teams, scoped_organizations) -> None:
        actor = self.request.auth if is_personal_api_key_request(self.request) else None
        check_key_covers(actor, verb=verb, scopes=scopes, scoped_teams=scoped_teams, scoped_organizations=scoped_organizations)

    def get_object(self):
        if self.kwargs.get("pk") == "@current":
            if not is_personal_api_key_request(self.request):
                raise exceptions.ValidationError("This endpoint is only available when authenticated with a personal API key.")
            return self.request.auth
        return super().get_object()

    def perform_create(self, serializer):
        data = serializer.validated_data
        self._check_actor_covers(
            "create", scopes=data.get("scopes"), scoped_teams=data.get("scoped_teams"), scoped_organizations=data.get("scoped_organizations")
        )
        key, raw = create_personal_api_key(
            self.request.user,
            label=data["label"],
            scopes=data.get("scopes"),
            scoped_teams=data.get("scoped_teams"),
            scoped_organizations=data.get("scoped_organizations"),
        )
        key.raw_value = raw
        serializer.instance = key

    def perform_destroy(self, instance):
        self._check_actor_covers(
            "delete", scopes=instance.scopes, scoped_teams=instance.scoped_teams, scoped_organizations=instance.scoped_organizations
        )
        instance.delete()

    @extend_schema(request=None, responses={200: PersonalAPIKeySerializer})
    @action(methods=["POST"], detail=True, required_scopes=["personal_api_key:write"])
    def roll(self, request, *args, **kwargs):
        """Replace the key's value with a new one, returned once in `value`; the old value stops working."""
        key = self.get_object()
        self._check_actor_covers("roll", scopes=key.scopes, scoped_teams=key.scoped_teams, scoped_organizations=key.scoped_organizations)
        key.raw_value = roll_personal_api_key(key)
        return Response(self.get_serializer(key).data)


class ProjectViewSet(TeamLookupMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Projects of the user's organizations. The id in the URL may also be `@current`."""

    team_url_kwarg = "pk"

    scope_object = "project"
    serializer_class = ProjectSerializer
    permission_classes = ACCOUNT_PERMISSIONS
    throttle_classes = ACCOUNT_THROTTLES
    lookup_value_regex = "[^/.]+"
    queryset = Project.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        queryset = Project.objects.filter(organization__memberships__user=self.request.user).prefetch_related(
            Prefetch("teams", queryset=Team.objects.order_by("id"))
        )
        key = self.request.auth if is_personal_api_key_request(self.request) else None
        if key and key.scoped_teams:
            queryset = queryset.filter(teams__id__in=key.scoped_teams)
        if key and key.scoped_organizations:
            queryset = queryset.filter(organization_id__in=key.scoped_organizations)
        return queryset.distinct().order_by("id")

    def get_object(self):
        # The URL id is a team (environment) id, as everywhere under /api/projects/<id>/.
        project = self.get_queryset().filter(id=self.team.project_id).first()
        if project is None:
            raise exceptions.NotFound("Project not found.")
        return project


class EnvironmentViewSet(TeamScopedViewSetMixin, viewsets.GenericViewSet):
    """`GET /api/environments/<id>/`: the team itself."""

    scope_object = "project"
    serializer_class = TeamSerializer
    queryset = Team.objects.none()

    @extend_schema(operation_id="environments_retrieve")
    def retrieve(self, request, *args, **kwargs):
        return Response(TeamSerializer(self.team).data, status=status.HTTP_200_OK)
