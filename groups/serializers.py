from rest_framework import serializers

from cohorts.serializers import CohortPersonSerializer

from .models import MAX_GROUP_TYPES_PER_PROJECT, Group, GroupTypeMapping


RELATED_DISTINCT_IDS = 1000  # PostHog's limit of distinct ids per related person


class GroupTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = GroupTypeMapping
        fields = ["group_type", "group_type_index", "name_singular", "name_plural", "detail_dashboard", "default_columns", "created_at"]
        read_only_fields = ["group_type", "group_type_index", "detail_dashboard", "created_at"]


class GroupTypeMetadataSerializer(serializers.Serializer):
    """One item of `update_metadata`'s body: the names of one group type."""

    group_type_index = serializers.IntegerField(min_value=0, max_value=MAX_GROUP_TYPES_PER_PROJECT - 1)
    name_singular = serializers.CharField(max_length=400, required=False, allow_null=True, allow_blank=True)
    name_plural = serializers.CharField(max_length=400, required=False, allow_null=True, allow_blank=True)


class GroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = Group
        fields = ["group_type_index", "group_key", "group_properties", "created_at"]
        read_only_fields = ["created_at"]
        # The duplicate check is the service's, with PostHog's message.
        validators: list = []

    group_type_index = serializers.IntegerField(min_value=0, max_value=MAX_GROUP_TYPES_PER_PROJECT - 1)
    group_key = serializers.CharField(max_length=400)
    group_properties = serializers.DictField(required=False, default=dict)


class FoundGroupSerializer(GroupSerializer):
    """`find`'s answer: the group and the short id of its notebook (none here)."""

    notebook = serializers.SerializerMethodField()

    class Meta(GroupSerializer.Meta):
        fields = [*GroupSerializer.Meta.fields, "notebook"]

    def get_notebook(self, obj) -> str | None:
        return None


class PropertyCountSerializer(serializers.Serializer):
    name = serializers.CharField()
    count = serializers.IntegerField()


class PropertyValuesSerializer(serializers.Serializer):
    """`property_values`' answer."""

    results = PropertyCountSerializer(many=True)
    refreshing = serializers.BooleanField()


class _ActorFields(serializers.Serializer):
    """What PostHog adds to every serialized actor: no recordings here, no value at a data point."""

    matched_recordings = serializers.SerializerMethodField()
    value_at_data_point = serializers.SerializerMethodField()

    def get_matched_recordings(self, actor) -> list:
        return []

    def get_value_at_data_point(self, actor) -> float | None:
        return None


class RelatedPersonSerializer(CohortPersonSerializer, _ActorFields):
    """A related person, as PostHog serializes actors."""

    def _distinct_ids(self, person) -> list[str]:
        return [link.distinct_id for link in person.distinct_ids.all()][:RELATED_DISTINCT_IDS]


class RelatedGroupSerializer(_ActorFields):
    """A related group, as PostHog serializes actors."""

    type = serializers.SerializerMethodField()
    id = serializers.CharField(source="group_key")
    group_type_index = serializers.IntegerField()
    group_key = serializers.CharField()
    created_at = serializers.DateTimeField()
    properties = serializers.JSONField(source="group_properties")

    def get_type(self, group) -> str:
        return "group"
