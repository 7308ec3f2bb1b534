"""Bodies of `POST insights/bulk_update_tags/` (PostHog's TaggedItemViewSetMixin)."""
from rest_framework import serializers

MAX_IDS = 500


class BulkUpdateTagsRequestSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), min_length=1, max_length=MAX_IDS,
                                help_text="Ids of the insights to update (at most 500).")
    action = serializers.ChoiceField(choices=["add", "remove", "set"],
                                     help_text="`add` to the tags each object has, `remove` from them, or `set` them.")
    tags = serializers.ListField(child=serializers.CharField(max_length=255), help_text="Tag names (trimmed and lower-cased).")

    def validate(self, attrs):
        if attrs["action"] in ("add", "remove") and not attrs["tags"]:
            raise serializers.ValidationError({"tags": f"tags must not be empty for action '{attrs['action']}'."})
        return attrs


class UpdatedTagsSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    tags = serializers.ListField(child=serializers.CharField())


class SkippedTagsSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reason = serializers.CharField()


class BulkUpdateTagsResponseSerializer(serializers.Serializer):
    updated = UpdatedTagsSerializer(many=True)
    skipped = SkippedTagsSerializer(many=True)
