"""The one place that resolves the URL's team for every team-nested viewset (and for /api/projects/<id>/)."""
from functools import cached_property

from rest_framework import exceptions
from rest_framework.permissions import IsAuthenticated

from accounts.models import Team
from accounts.permissions import APIScopePermission, TeamMemberAccessPermission

from .throttling import BurstRateThrottle, SustainedRateThrottle

TEAM_URL_KWARG = "project_id"


class TeamLookupMixin:
    """The team named by the URL: a team (environment) id or `@current` in `team_url_kwarg`.

    An unknown or malformed id is a 404 "Project not found."
    """

    team_url_kwarg = TEAM_URL_KWARG

    @cached_property
    def team(self) -> Team:
        raw = self.kwargs.get(self.team_url_kwarg)
        if raw == "@current":
            team_id = getattr(self.request.user, "current_team_id", None)
        else:
            try:
                team_id = int(raw)
            except (TypeError, ValueError):
                team_id = None
        team = Team.objects.select_related("organization", "project").filter(id=team_id).first() if team_id else None
        if team is None:
            raise exceptions.NotFound("Project not found.")
        return team


class TeamScopedViewSetMixin(TeamLookupMixin):
    """For viewsets under /api/projects/<project_id>/ and /api/environments/<project_id>/.

    `<project_id>` is a team (environment) id or `@current`. Set `scope_object` for the scope
    permission, and `project_wide = True` when objects of every environment of the project are
    visible through any of its environment ids (as insights are).
    """

    is_team_scoped = True
    scope_object: str | None = None
    project_wide = False
    team_field = "team"
    permission_classes = [IsAuthenticated, APIScopePermission, TeamMemberAccessPermission]
    throttle_classes = [BurstRateThrottle, SustainedRateThrottle]

    @property
    def team_id(self) -> int:
        return self.team.id

    def filter_queryset_by_team(self, queryset):
        if self.project_wide:
            return queryset.filter(**{f"{self.team_field}__project_id": self.team.project_id})
        return queryset.filter(**{f"{self.team_field}_id": self.team.id})

    def get_queryset(self):
        return self.filter_queryset_by_team(super().get_queryset())

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self, "swagger_fake_view", False):
            return context
        context["team"] = self.team
        return context
