"""Dashboard serializers, in PostHog's field order."""
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.serializers import UserBasicSerializer

from ..access import access_level_name, request_access
from ..models import Dashboard, DashboardTile, Text
from ..serializers import PRIVILEGE_LEVELS, RESTRICTION_LEVELS, InsightSerializer, TagsField
from .fields import DashboardFiltersField, DashboardVariablesField

BASIC_FIELDS = [
    "id",
    "name",
    "description",
    "pinned",
    "created_at",
    "created_by",
    "deleted",
    "creation_mode",
    "filters",
    "variables",
    "tags",
    "restriction_level",
    "effective_restriction_level",
    "effective_privilege_level",
    "user_access_level",
    "team_id",
]


class TextSerializer(serializers.ModelSerializer):
    """The text of a text tile (PostHog's Text)."""

    created_by = UserBasicSerializer(read_only=True)
    last_modified_by = UserBasicSerializer(read_only=True)
    body = serializers.CharField(max_length=4000, required=False, allow_blank=True, allow_null=True,
                                 error_messages={"max_length": "Text body cannot exceed 4000 characters"})

    class Meta:
        model = Text
        fields = ["id", "created_by", "last_modified_by", "body", "last_modified_at", "team"]
        read_only_fields = ["id", "created_by", "last_modified_by", "last_modified_at", "team"]


class DashboardTileSerializer(serializers.ModelSerializer):
    """A tile as shown: its insight with results computed under the dashboard's (and the tile's) filters."""

    insight = serializers.SerializerMethodField()
    text = serializers.SerializerMethodField()
    filters_overrides = DashboardFiltersField(required=False)
    last_refresh = serializers.SerializerMethodField()
    is_cached = serializers.SerializerMethodField()

    class Meta:
        model = DashboardTile
        fields = ["id", "insight", "text", "layouts", "color", "deleted", "filters_overrides", "last_refresh", "is_cached"]
        read_only_fields = fields

    @extend_schema_field(InsightSerializer(allow_null=True))
    def get_insight(self, tile):
        return self.context["tile_insights"].get(tile.insight_id)

    @extend_schema_field(TextSerializer(allow_null=True))
    def get_text(self, tile):
        return TextSerializer(tile.text).data if tile.text_id is not None else None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_last_refresh(self, tile):
        return (self.get_insight(tile) or {}).get("last_refresh")

    def get_is_cached(self, tile) -> bool:
        return bool((self.get_insight(tile) or {}).get("is_cached"))


class TileUpdateSerializer(serializers.Serializer):
    """What `PATCH` may change on one of the dashboard's tiles, named by its id; without an id, a
    tile with `text` is a new text tile."""

    id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)
    text = TextSerializer(required=False)
    layouts = serializers.DictField(required=False)
    color = serializers.CharField(max_length=400, allow_null=True, allow_blank=True, required=False)
    deleted = serializers.BooleanField(required=False)
    filters_overrides = DashboardFiltersField(required=False)

    def validate(self, attrs):
        if "id" not in attrs and "text" not in attrs:  # an existing tile is named by its id; a new one is a text
            raise serializers.ValidationError({"id": [self.fields["id"].error_messages["required"]]}, code="required")
        return attrs


class TilesField(serializers.ListField):
    """Written as a list of tile changes; read back as the tiles the view rendered into the context."""

    child = TileUpdateSerializer()

    def get_attribute(self, dashboard):
        return self.context.get("tiles", [])

    def to_representation(self, tiles):
        return tiles


class DashboardBasicSerializer(serializers.ModelSerializer):
    created_by = UserBasicSerializer(read_only=True)
    tags = TagsField(required=False)
    filters = DashboardFiltersField(required=False)
    variables = DashboardVariablesField(required=False)
    restriction_level = serializers.ChoiceField(choices=RESTRICTION_LEVELS, required=False)
    effective_restriction_level = serializers.SerializerMethodField()
    effective_privilege_level = serializers.SerializerMethodField()
    user_access_level = serializers.SerializerMethodField(help_text="The effective access level the user has for this object")

    class Meta:
        model = Dashboard
        fields = BASIC_FIELDS
        read_only_fields = ["id", "created_at", "created_by", "team_id"]

    # Computed for the requesting user; shared viewers may only view.

    @extend_schema_field(serializers.ChoiceField(choices=RESTRICTION_LEVELS))
    def get_effective_restriction_level(self, dashboard) -> int:
        return Dashboard.RestrictionLevel.ONLY_COLLABORATORS_CAN_EDIT.value if self.context.get("is_shared") else dashboard.restriction_level

    @extend_schema_field(serializers.ChoiceField(choices=PRIVILEGE_LEVELS))
    def get_effective_privilege_level(self, dashboard) -> int:
        if self.context.get("is_shared"):
            return Dashboard.PrivilegeLevel.CAN_VIEW.value
        return request_access(self.context).dashboard_privilege(dashboard)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_user_access_level(self, dashboard) -> str | None:
        if self.context.get("is_shared"):
            return None
        return access_level_name(request_access(self.context).dashboard_privilege(dashboard))


class DashboardSerializer(DashboardBasicSerializer):
    tiles = extend_schema_field(DashboardTileSerializer(many=True))(TilesField)(required=False)
    use_dashboard = serializers.IntegerField(
        write_only=True, required=False, allow_null=True, min_value=1, max_value=2**63 - 1,
        help_text="On create: the id of a dashboard of the project to duplicate (its tiles, layouts and colors).",
    )
    duplicate_tiles = serializers.BooleanField(
        write_only=True, required=False, default=False,
        help_text="With `use_dashboard`: copy each tile's insight too (named `<name> (Copy)`), instead of showing the same insights.",
    )

    class Meta(DashboardBasicSerializer.Meta):
        fields = [*BASIC_FIELDS, "tiles", "use_dashboard", "duplicate_tiles"]

    def validate_use_dashboard(self, dashboard_id):
        if dashboard_id is None:
            return None
        dashboard = Dashboard.objects.filter(id=dashboard_id, team__project_id=self.context["team"].project_id).first()
        if dashboard is None:
            raise serializers.ValidationError("Invalid value provided")
        return dashboard

    def validate_tiles(self, tiles):
        """Only this dashboard's own tiles (soft-deleted ones included, to restore them) may change."""
        ids = {tile["id"] for tile in tiles if "id" in tile}
        own = {} if self.instance is None else dict(
            DashboardTile.objects_including_soft_deleted.filter(dashboard=self.instance, id__in=ids).values_list("id", "text_id")
        )
        if missing := sorted(ids - set(own)):
            raise serializers.ValidationError(f"Tile {missing[0]} is not on this dashboard.")
        if insight_tile := next((tile["id"] for tile in tiles if "text" in tile and "id" in tile and own[tile["id"]] is None), None):
            raise serializers.ValidationError(f"Tile {insight_tile} shows an insight: it has no text to change.")
        return tiles
