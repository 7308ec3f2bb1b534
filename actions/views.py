"""Actions (`/api/projects/:id/actions/`, `/api/environments/:id/actions/`): definitions insights count."""
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.response import Response

from core.mixins import TeamScopedViewSetMixin

from .models import Action
from .selectors import listed_actions, team_actions
from .serializers import ActionListResponseSerializer, ActionSerializer
from .services import create_action, update_action


class ActionViewSet(TeamScopedViewSetMixin, viewsets.ModelViewSet):
    scope_object = "action"
    serializer_class = ActionSerializer
    queryset = Action.objects.none()
    pagination_class = None
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return team_actions(self.team)

    @extend_schema(responses=ActionListResponseSerializer)
    def list(self, request, *args, **kwargs):
        # Not paginated: PostHog answers every live action at once.
        serializer = self.get_serializer(listed_actions(self.team), many=True)
        return Response({"results": serializer.data})

    def perform_create(self, serializer):
        serializer.instance = create_action(team=self.team, user=self.request.user, data=dict(serializer.validated_data))

    def perform_update(self, serializer):
        serializer.instance = update_action(serializer.instance, team=self.team, user=self.request.user,
                                            data=dict(serializer.validated_data))

    @extend_schema(responses={405: OpenApiResponse(description="Actions cannot be deleted; PATCH `{\"deleted\": true}` instead.")})
    def destroy(self, request, *args, **kwargs):
        return Response(status=status.HTTP_405_METHOD_NOT_ALLOWED)
