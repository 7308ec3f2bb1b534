"""Insight variables (`/api/projects/:id/insight_variables/`): the values SQL insights reference."""
from rest_framework import viewsets

from core.mixins import TeamScopedViewSetMixin

from .models import InsightVariable
from .pagination import InsightVariablePagination
from .selectors import team_variables
from .serializers import InsightVariableSerializer
from .services import create_variable


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
