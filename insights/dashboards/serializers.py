"""Dashboard serializers, in PostHog's field order."""
from rest_framework import serializers

from accounts.serializers import UserBasicSerializer

from ..models import Dashboard
from ..serializers import TagsField
from .fields import DashboardFiltersField, DashboardVariablesField


class DashboardSerializer(serializers.ModelSerializer):
    created_by = UserBasicSerializer(read_only=True)
    tags = TagsField(required=False)
    filters = DashboardFiltersField(required=False)
    variables = DashboardVariablesField(required=False)

    class Meta:
        model = Dashboard
        fields = [
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
            "team_id",
        ]
        read_only_fields = ["id", "created_at", "created_by", "team_id"]
