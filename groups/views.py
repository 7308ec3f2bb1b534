"""Group types (`/api/projects/:id/groups_types/`) and groups (`/api/projects/:id/groups/`)."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from core.mixins import TeamScopedViewSetMixin

from .models import MAX_GROUP_TYPES_PER_PROJECT, Group, GroupTypeMapping
from .pagination import GroupCursorPagination
from .selectors import group_property_definitions, group_property_values, project_group_types, related, team_groups
from .serializers import (
    FoundGroupSerializer, GroupSerializer, GroupTypeMetadataSerializer, GroupTypeSerializer, PropertyCountSerializer,
    PropertyValuesSerializer, RelatedGroupSerializer, RelatedPersonSerializer,
)
from .services import create_group, delete_group_type, update_group_type_metadata

PROJECT_ID_PARAMETER = OpenApiParameter(
    "project_id", OpenApiTypes.STR, OpenApiParameter.PATH,
    description="Project ID of the project you're trying to access. To find the ID of the project, make a call to /api/projects/.",
)
GROUP_TYPE_INDEX_PARAMETER = OpenApiParameter("group_type_index", OpenApiTypes.INT, required=True,
                                              description="Specify the group type to list")
MISSING_INDEX = ("You must pass ?group_type_index= in this URL. To get a list of valid group types, "
                 "call /api/:project_id/groups_types/.")


REQUIRED = "This query parameter is required."


def _group_type_index(request, missing: str = MISSING_INDEX) -> int:
    raw = request.query_params.get("group_type_index")
    if not raw:
        raise ValidationError({"group_type_index": [missing]})
    try:
        return int(raw)
    except ValueError:
        raise ValidationError({"group_type_index": ["A valid integer is required."]}) from None


def _required(request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise ValidationError({name: [REQUIRED]})
    return value


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

    @extend_schema(parameters=[
        OpenApiParameter("group_type_index", OpenApiTypes.INT, description="Specify the group type to find"),
        OpenApiParameter("id", OpenApiTypes.STR, required=True,
                         description="The key of the group (with group_type_index), or else the UUID of the person, to find related actors of"),
    ], responses=PolymorphicProxySerializer(component_name="RelatedActor", serializers=[RelatedPersonSerializer, RelatedGroupSerializer],
                                            resource_type_field_name=None, many=True))
    @action(detail=False, methods=["get"], required_scopes=["group:read"], pagination_class=None)
    def related(self, request, **kwargs):
        """Persons and groups that shared events with a group (or a person) in the last 90 days: the
        group's persons, then groups of the project's other types that exist in the groups list."""
        actor_id = _required(request, "id")
        index = _group_type_index(request) if request.query_params.get("group_type_index") else None
        if index is not None and not 0 <= index < MAX_GROUP_TYPES_PER_PROJECT:
            raise ValidationError({"group_type_index": [f"This field must be between 0 and {MAX_GROUP_TYPES_PER_PROJECT - 1}."]})
        persons, groups = related(self.team, group_type_index=index, actor_id=actor_id)
        return Response([*RelatedPersonSerializer(persons, many=True).data, *RelatedGroupSerializer(groups, many=True).data])

    @extend_schema(responses={200: OpenApiResponse(
        response=OpenApiTypes.OBJECT, description='Property keys per group type index, most used first: `{"0": [{"name", "count"}]}`')})
    @action(detail=False, methods=["get"], required_scopes=["group:read"])
    def property_definitions(self, request, **kwargs):
        """The property keys of the project's groups by group type index, with how many groups have each."""
        return Response(group_property_definitions(self.team))

    @extend_schema(parameters=[
        OpenApiParameter("group_type_index", OpenApiTypes.INT, required=True, description="Specify the group type to find property values of"),
        OpenApiParameter("key", OpenApiTypes.STR, required=True, description="Specify the property key to find values for"),
        OpenApiParameter("value", OpenApiTypes.STR, description="Keep values containing this text (case-insensitive)"),
    ], responses=PropertyValuesSerializer)
    @action(detail=False, methods=["get"], required_scopes=["group:read"])
    def property_values(self, request, **kwargs):
        """The 20 most common values of a group property among the groups of one type."""
        index = _group_type_index(request, REQUIRED)
        key = _required(request, "key")
        values = group_property_values(self.team, group_type_index=index, key=key, value=request.query_params.get("value"))
        return Response({"results": PropertyCountSerializer(values, many=True).data, "refreshing": False})
