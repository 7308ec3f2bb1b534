"""Schema details drf-spectacular cannot infer from the insight serializers."""
from drf_spectacular.extensions import OpenApiSerializerExtension


class InsightSerializerSchema(OpenApiSerializerExtension):
    """`search_match_type` is only sent in search results, so it must not be a required key.

    PostHog publishes one `Insight` component for requests and responses, so its write-only
    `_create_in_folder` appears there; ours lists it too, as an optional key that is never sent
    (a `writeOnly` flag would make drf-spectacular drop it from the response component)."""

    target_class = "insights.serializers.InsightBasicSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if "required" in schema:
            schema["required"] = [name for name in schema["required"] if name != "search_match_type"]
        if direction == "response" and "_create_in_folder" in self.target.fields:
            schema["properties"]["_create_in_folder"] = {
                "type": "string",
                "description": "Write-only: accepted on create and update, never returned.",
            }
        return schema
