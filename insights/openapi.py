"""Schema details drf-spectacular cannot infer from the insight serializers."""
from drf_spectacular.extensions import OpenApiSerializerExtension


class InsightSerializerSchema(OpenApiSerializerExtension):
    """`search_match_type` is only sent in search results, so it must not be a required key."""

    target_class = "insights.serializers.InsightBasicSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if "required" in schema:
            schema["required"] = [name for name in schema["required"] if name != "search_match_type"]
        return schema
