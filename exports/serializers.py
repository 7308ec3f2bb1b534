from rest_framework import serializers

from insights.models import Dashboard, Insight

from .models import ExportedAsset, ExportFormat
from .services import SUPPORTED_FORMATS


class ExportedAssetSerializer(serializers.ModelSerializer):
    has_content = serializers.BooleanField(read_only=True)
    filename = serializers.CharField(read_only=True)
    export_context = serializers.JSONField(required=False, allow_null=True)
    export_format = serializers.ChoiceField(choices=ExportFormat.choices, required=False)
    dashboard = serializers.PrimaryKeyRelatedField(queryset=Dashboard.objects.all(), required=False, allow_null=True)
    insight = serializers.PrimaryKeyRelatedField(queryset=Insight.objects.all(), required=False, allow_null=True)

    class Meta:
        model = ExportedAsset
        fields = ["id", "dashboard", "insight", "export_format", "created_at", "has_content", "export_context", "filename",
                  "expires_after", "exception"]
        read_only_fields = ["id", "created_at", "has_content", "filename", "exception"]

    def _same_team(self, obj, label: str):
        team = self.context["team"]
        if obj is not None and obj.team.project_id != team.project_id:
            raise serializers.ValidationError(f"This {label} does not belong to your team.")
        return obj

    def validate_dashboard(self, dashboard):
        return self._same_team(dashboard, "dashboard")

    def validate_insight(self, insight):
        return self._same_team(insight, "insight")

    def validate(self, attrs):
        export_format = attrs.get("export_format")
        if not export_format:
            raise serializers.ValidationError("Must provide export format")
        if not (attrs.get("dashboard") or attrs.get("insight") or attrs.get("export_context")):
            raise serializers.ValidationError("Either dashboard, insight or export_context is required for an export.")
        if export_format in (ExportFormat.WEBM, ExportFormat.MP4, ExportFormat.GIF):
            raise serializers.ValidationError("Video export supports session recordings only.")
        context = attrs.get("export_context")
        if context is not None and not isinstance(context, dict):
            raise serializers.ValidationError({"export_context": ["Must be an object."]})
        if export_format not in SUPPORTED_FORMATS:
            raise serializers.ValidationError({"export_format": [f"Export format {export_format} is not supported."]})
        target = attrs.get("insight") or attrs.get("dashboard")
        if not target and not isinstance((context or {}).get("source"), dict):
            raise serializers.ValidationError({"export_context": ["Exports without an insight or a dashboard need `source`: the query to export."]})
        if export_format == ExportFormat.PNG and not target:
            raise serializers.ValidationError({"export_format": ["PNG exports need an insight or a dashboard."]})
        return attrs
