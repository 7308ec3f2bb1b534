"""Schema of the alert fields that are written as ids and read as nested objects."""
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes

from accounts.serializers import UserBasicSerializer
from insights.serializers import InsightBasicSerializer


class _IdInNestedOutField(OpenApiSerializerFieldExtension):
    nested_serializer: type

    def map_serializer_field(self, auto_schema, direction):
        if direction == "request":
            return build_basic_type(OpenApiTypes.INT)
        return auto_schema.resolve_serializer(self.nested_serializer, direction).ref


class InsightRelatedFieldSchema(_IdInNestedOutField):
    target_class = "alerts.serializers.InsightRelatedField"
    nested_serializer = InsightBasicSerializer


class UserRelatedFieldSchema(_IdInNestedOutField):
    target_class = "alerts.serializers.UserRelatedField"
    nested_serializer = UserBasicSerializer
