"""Group types (`/api/projects/:id/groups_types/`) and groups (`/api/projects/:id/groups/`)."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from core.mixins import TeamScopedViewSetMixin

from .models import Group, GroupTypeMapping
from .pagination import GroupCursorPagination
from .selectors import project_group_types, team_groups
from .serializers import FoundGroupSerializer, GroupSerializer, GroupTypeMetadataSerializer, GroupTypeSerializer
from .services import create_group, delete_group_type, update_group_type_metadata

PROJECT_ID_PARAMETER = OpenApiParameter(
    "project_id", OpenApiTypes.STR, OpenApiParameter.PATH,
    description="Project ID of the project you're trying to access. To find the ID of the project, make a call to /api/projects/.",
)
GROUP_TYPE_INDEX_PARAMETER = OpenApiParameter("group_type_index", OpenApiTypes.INT, required=True,
                                              description="Specify the group type to list")
MISSING_INDEX = ("You must pass ?group_type_index= in this URL. To get a list of valid group types, "
                 "call /api/:project_id/groups_types/.")


def _group_type_index(request) -> int:
    raw = request.query_params.get("group_type_index")
    if not raw:
        raise ValidationError({"group_type_index": [MISSING_INDEX]})
    try:
        return int(raw)
    except ValueError:
        raise ValidationError({"group_type_index": ["A valid integer is required."]}) from None


@extend_schema(parameters=[PROJECT_ID_PARAMETER])
class GroupTypeViewSet(TeamScopedViewSetMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    scope_object = "group"
    required_scopes: list[str] | None = None  # set per extra action
    serializer_class = GroupTypeSerializer
    queryset = GroupTypeMapping.objects.none()
    pagination_class = None
    filter_backends: list = []
    lookup_field = "group_type_index"
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return project_group_types(self.team)

    def list(self, request, *args, **kwargs):
        """The project's group types, ordered by index (not paginated)."""
        return super().list(request, *args, **kwargs)

    @extend_schema(request=GroupTypeMetadataSerializer(many=True), responses=GroupTypeSerializer(many=True))
    @action(detail=False, methods=["patch"], required_scopes=["group:write"])
    def update_metadata(self, request, **kwargs):
        """Set the singular and plural names of group types; answers the updated list."""
        items = GroupTypeMetadataSerializer(data=request.data, many=True)
        items.is_valid(raise_exception=True)
        update_group_type_metadata(team=self.team, items=items.validated_data)
        return Response(GroupTypeSerializer(self.get_queryset(), many=True).data)

    @extend_schema(parameters=[OpenApiParameter("group_type_index", OpenApiTypes.INT, OpenApiParameter.PATH)],
                   responses={204: OpenApiResponse(description="Deleted")})
    def destroy(self, request, **kwargs):
        """Delete a group type and its groups (events keep their `$groups`)."""
        if not delete_group_type(team=self.team, group_type_index=int(kwargs["group_type_index"])):
            raise NotFound()
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(parameters=[PROJECT_ID_PARAMETER])
class GroupViewSet(TeamScopedViewSetMixin, mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    scope_object = "group"
    required_scopes: list[str] | None = None  # set per extra action
    serializer_class = GroupSerializer
    queryset = Group.objects.none()
    pagination_class = GroupCursorPagination
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return team_groups(self.team, group_type_index=_group_type_index(self.request),
                           search=self.request.query_params.get("search"), group_key=self.request.query_params.get("group_key"))

    @extend_schema(parameters=[
        GROUP_TYPE_INDEX_PARAMETER,
        OpenApiParameter("search", OpenApiTypes.STR, description="Search the group name"),
        OpenApiParameter("group_key", OpenApiTypes.STR, description="Filter groups whose key contains this string (case-insensitive)"),
        OpenApiParameter("cursor", OpenApiTypes.STR, description="Pagination cursor returned in the `next` URL of a previous response"),
    ])
    def list(self, request, *args, **kwargs):
        """List the groups of one type, newest first; `?group_type_index=` is required."""
        return super().list(request, *args, **kwargs)

    @extend_schema(responses={201: GroupSerializer})
    def create(self, request, *args, **kwargs):
        """Create a group of an existing type; also records a `$groupidentify` event."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        group = create_group(team=self.team, **serializer.validated_data)
        return Response(GroupSerializer(group).data, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=[GROUP_TYPE_INDEX_PARAMETER, OpenApiParameter("group_key", OpenApiTypes.STR, required=True,
                                                                            description="Specify the key of the group to find")],
                   responses=FoundGroupSerializer)
    @action(detail=False, methods=["get"], required_scopes=["group:read"])
    def find(self, request, **kwargs):
        """One group by type and key, or 404."""
        index = _group_type_index(request)
        group = Group.objects.filter(team=self.team, group_type_index=index, group_key=request.query_params.get("group_key", "")).first()
        if group is None:
            raise NotFound()
        return Response(FoundGroupSerializer(group).data)
