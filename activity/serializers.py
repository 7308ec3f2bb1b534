from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


class ActivityPageParamsSerializer(serializers.Serializer):
    # Bounded so that the offset (page - 1) * limit always fits the database's 64-bit LIMIT/OFFSET.
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=10, help_text="Page size (at most 1000). Defaults to 10.")
    page = serializers.IntegerField(min_value=1, max_value=10**9, default=1, help_text="1-indexed page number. Defaults to 1.")


class ChangeSerializer(serializers.Serializer):
    type = serializers.CharField(read_only=True)
    action = serializers.CharField(read_only=True)
    field = serializers.CharField(read_only=True)
    before = serializers.JSONField(read_only=True, allow_null=True)
    after = serializers.JSONField(read_only=True, allow_null=True)


class TriggerSerializer(serializers.Serializer):
    job_type = serializers.CharField(read_only=True)
    job_id = serializers.CharField(read_only=True)
    payload = serializers.JSONField(read_only=True)


class MergeSerializer(serializers.Serializer):
    type = serializers.CharField(read_only=True)
    source = serializers.JSONField(read_only=True)
    target = serializers.JSONField(read_only=True)


class DetailSerializer(serializers.Serializer):
    id = serializers.CharField(read_only=True, allow_null=True)
    changes = ChangeSerializer(many=True, read_only=True, allow_null=True)
    merge = MergeSerializer(read_only=True, allow_null=True)
    trigger = TriggerSerializer(read_only=True, allow_null=True)
    name = serializers.CharField(read_only=True, allow_null=True)
    short_id = serializers.CharField(read_only=True, allow_null=True)
    type = serializers.CharField(read_only=True, allow_null=True)


class ActivityLogSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    user = serializers.SerializerMethodField()
    activity = serializers.CharField(read_only=True)
    scope = serializers.CharField(read_only=True)
    item_id = serializers.CharField(read_only=True)
    detail = DetailSerializer(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)

    # `is_system` appears on system entries only, so it is not a required key.
    @extend_schema_field({
        "type": "object",
        "properties": {"first_name": {"type": "string"}, "email": {"type": "string", "nullable": True}, "is_system": {"type": "boolean"}},
        "required": ["first_name", "email"],
    })
    def get_user(self, entry) -> dict:
        if entry.is_system:
            return {"first_name": "System", "email": None, "is_system": True}
        user = entry.user
        return {"first_name": user.first_name if user else "", "email": user.email if user else ""}


class ActivityPageSerializer(serializers.Serializer):
    results = ActivityLogSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    total_count = serializers.IntegerField()
