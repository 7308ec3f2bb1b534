"""Insight variables (`/api/projects/:id/insight_variables/`): the values SQL insights reference."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets

from core.mixins import TeamScopedViewSetMixin

from .models import InsightVariable
from .pagination import InsightVariablePagination
from .selectors import team_variables
from .serializers import InsightVariableSerializer
from .services import create_variable

PROJECT_ID_PARAMETER = OpenApiParameter(
    "project_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="Project ID of the project you're trying to access. To find the ID of the project, make a call to /api/projects/.",
)


@extend_schema(parameters=[PROJECT_ID_PARAMETER])
class InsightVariableViewSet(TeamScopedViewSetMixin, viewsets.ModelViewSet):
    scope_object = "insight_variable"
    serializer_class = InsightVariableSerializer
    queryset = InsightVariable.objects.none()
    pagination_class = InsightVariablePagination
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return team_variables(self.team)

    def perform_create(self, serializer):
        serializer.instance = create_variable(team=self.team, user=self.request.user, data=serializer.validated_data)
