from typing import Literal

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError
from rest_framework import serializers

from .models import SharePassword, SharingConfiguration
from .selectors import active_passwords


class SharingSettings(BaseModel):
    """The options of a shared page (PostHog's SharingConfigurationSettings)."""

    model_config = ConfigDict(extra="forbid")

    whitelabel: bool | None = None
    noHeader: bool | None = None
    showInspector: bool | None = None
    legend: bool | None = None
    detailed: bool | None = None
    hideExtraDetails: bool | None = None
    theme: Literal["light", "dark", "system"] | None = None


def created_by_email(password: SharePassword) -> str:
    return password.created_by.email if password.created_by else "deleted user"


class SharePasswordSerializer(serializers.ModelSerializer):
    created_by_email = serializers.SerializerMethodField()

    class Meta:
        model = SharePassword
        fields = ["id", "created_at", "note", "created_by_email", "is_active"]
        read_only_fields = fields

    def get_created_by_email(self, password) -> str:
        return created_by_email(password)


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "description": "Options of the shared page. Unknown keys are dropped.",
        "properties": {
            **{name: {"type": "boolean"} for name in ("whitelabel", "noHeader", "showInspector", "legend", "detailed", "hideExtraDetails")},
            "theme": {"type": "string", "enum": ["light", "dark", "system"]},
        },
    }
)
class SettingsField(serializers.JSONField):
    def to_internal_value(self, data):
        if data is None:
            return None
        if not isinstance(data, dict):
            raise serializers.ValidationError("Invalid settings format")
        known = {key: value for key, value in data.items() if key in SharingSettings.model_fields}
        try:
            settings = SharingSettings.model_validate(known, strict=False)
        except PydanticValidationError:
            raise serializers.ValidationError("Invalid settings format")
        return settings.model_dump(exclude_none=True)


@extend_schema_serializer(many=False)  # one object at the collection URL, not a list
class SharingConfigurationSerializer(serializers.ModelSerializer):
    settings = SettingsField(required=False, allow_null=True)
    share_passwords = serializers.SerializerMethodField(help_text="The active passwords (hashes are never returned).")

    class Meta:
        model = SharingConfiguration
        fields = ["created_at", "enabled", "access_token", "settings", "password_required", "share_passwords"]
        read_only_fields = ["created_at", "access_token", "share_passwords"]

    @extend_schema_field(SharePasswordSerializer(many=True))
    def get_share_passwords(self, configuration):
        return SharePasswordSerializer(active_passwords(configuration), many=True).data


class SharePasswordCreateSerializer(serializers.Serializer):
    raw_password = serializers.CharField(
        required=False, allow_blank=True, trim_whitespace=False, help_text="At least 8 characters; generated when absent or empty."
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")

    def validate_raw_password(self, value):
        if value and len(value) < 8:
            raise serializers.ValidationError("Password must be at least 8 characters long.")
        return value


class SharePasswordCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    password = serializers.CharField(help_text="The raw password. Shown this once; only its hash is stored.")
    note = serializers.CharField()
    created_at = serializers.DateTimeField()
    created_by_email = serializers.CharField()
