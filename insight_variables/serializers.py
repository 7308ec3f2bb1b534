from rest_framework import serializers

from .models import InsightVariable


def _scalar_text(value):
    """A list value as text, or None when it is not a scalar (an object or an array)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


class InsightVariableSerializer(serializers.ModelSerializer):
    class Meta:
        model = InsightVariable
        fields = ["id", "name", "type", "default_value", "created_by", "created_at", "code_name", "values", "is_multi",
                  "values_query", "values_query_connection_id"]
        read_only_fields = ["id", "code_name", "created_by", "created_at"]
        extra_kwargs = {"values_query_connection_id": {"allow_null": True, "required": False}}

    def validate_values(self, values):
        if values is None or not isinstance(values, list):
            return values
        texts = []
        for index, value in enumerate(values):
            if value is None:
                continue
            text = _scalar_text(value)
            if text is None:
                shape = "an object" if isinstance(value, dict) else "an array"
                raise serializers.ValidationError(
                    f"List variable values must be strings or numbers (got {shape} at index {index}). "
                    "Enter each value as plain text or a number."
                )
            texts.append(text)
        return texts

    def validate(self, attrs):
        variable_type = attrs.get("type", getattr(self.instance, "type", None))
        if variable_type != InsightVariable.Type.LIST:
            attrs["is_multi"] = False
            attrs["values_query"] = None
            return attrs
        if "values_query" in attrs and not (attrs["values_query"] or "").strip():
            attrs["values_query"] = None
        if "default_value" in attrs and attrs["default_value"] is not None:
            is_multi = attrs.get("is_multi", getattr(self.instance, "is_multi", False))
            default = attrs["default_value"]
            if is_multi:
                items = default if isinstance(default, list) else [default]
                attrs["default_value"] = [text for text in map(_scalar_text, items) if text is not None]
            else:
                attrs["default_value"] = _scalar_text(default[0] if isinstance(default, list) and default else default)
        return attrs

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if instance.type == InsightVariable.Type.LIST:
            values = instance.values if isinstance(instance.values, list) else []
            data["values"] = [text for text in map(_scalar_text, values) if text is not None]
        return data
