"""The wire shape of actions and their steps (PostHog's ActionSerializer / ActionStepJSON)."""
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from accounts.serializers import UserBasicSerializer

from .models import MATCHING_OPTIONS, Action
from .steps import selector_regex_of

MATCHING_FIELD = dict(choices=MATCHING_OPTIONS, required=False, allow_null=True)


class ActionStepSerializer(serializers.Serializer):
    event = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=400)
    properties = serializers.ListField(child=serializers.DictField(), required=False, allow_null=True)
    selector = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=2000)
    selector_regex = serializers.SerializerMethodField()
    tag_name = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=400)
    text = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=2000)
    text_matching = serializers.ChoiceField(**MATCHING_FIELD)
    href = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=2000)
    href_matching = serializers.ChoiceField(**MATCHING_FIELD)
    url = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=2000)
    url_matching = serializers.ChoiceField(**MATCHING_FIELD)

    def get_selector_regex(self, step) -> str | None:
        return selector_regex_of(step.get("selector") if isinstance(step, dict) else None)

    def to_internal_value(self, data):
        step = super().to_internal_value(data)
        # Stored normalised: every key present, a missing url_matching is "contains".
        normalised = {key: step.get(key) for key in ("event", "properties", "selector", "tag_name", "text", "text_matching",
                                                     "href", "href_matching", "url", "url_matching")}
        normalised["url_matching"] = normalised["url_matching"] or "contains"
        return normalised


class PinnedAtField(serializers.DateTimeField):
    """Any truthy value pins (at the server's time), null or "" unpins."""

    def to_internal_value(self, value):
        return bool(value)


class ActionSerializer(serializers.ModelSerializer):
    steps = ActionStepSerializer(many=True, required=False, source="steps_json")
    tags = serializers.ListField(child=serializers.CharField(max_length=255), required=False)
    created_by = UserBasicSerializer(read_only=True)
    is_calculating = serializers.SerializerMethodField()
    team_id = serializers.IntegerField(read_only=True)
    is_action = serializers.SerializerMethodField()
    pinned_at = PinnedAtField(required=False, allow_null=True)
    creation_context = serializers.SerializerMethodField()
    user_access_level = serializers.SerializerMethodField(help_text="The effective access level the user has for this object")
    _create_in_folder = serializers.CharField(required=False, allow_blank=True, write_only=True)

    class Meta:
        model = Action
        fields = ["id", "name", "description", "tags", "post_to_slack", "slack_message_format", "steps", "created_at",
                  "created_by", "deleted", "is_calculating", "last_calculated_at", "team_id", "is_action", "bytecode_error",
                  "pinned_at", "creation_context", "user_access_level", "_create_in_folder"]
        read_only_fields = ["id", "created_at", "created_by", "bytecode_error"]
        extra_kwargs = {"name": {"allow_null": True, "allow_blank": False, "required": False}}

    def get_is_calculating(self, action) -> bool:
        return False

    def get_is_action(self, action) -> bool:
        return True

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_creation_context(self, action) -> str | None:
        return None

    def get_user_access_level(self, action) -> str | None:
        return "editor"

    def validate_steps(self, steps):
        return [dict(step) for step in steps]

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["tags"] = list(instance.tags or [])
        return data


@extend_schema_serializer(many=False)  # the list answers one object holding every action, not an array
class ActionListResponseSerializer(serializers.Serializer):
    results = ActionSerializer(many=True)
