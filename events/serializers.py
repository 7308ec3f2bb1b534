"""OpenAPI shapes of the capture endpoints (requests are decoded by events.capture, not by DRF)."""
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

CaptureEventSerializer = inline_serializer(
    "CaptureEvent",
    {
        "event": serializers.CharField(help_text="Event name. Events with an empty name are accepted and dropped."),
        "distinct_id": serializers.CharField(help_text="The user's distinct id (also read from properties.distinct_id)."),
        "properties": serializers.DictField(
            required=False,
            help_text="Event properties. `$set`, `$set_once`, `$unset` update the person; `$session_id` is the session; "
            "`$process_person_profile: false` captures without a person; `$anon_distinct_id` ($identify) and "
            "`alias` ($create_alias) link two distinct ids to one person.",
        ),
        "timestamp": serializers.CharField(required=False, help_text="ISO 8601 time of the event; corrected by `sent_at`."),
        "offset": serializers.IntegerField(required=False, help_text="Milliseconds since the event, used without a timestamp."),
        "uuid": serializers.UUIDField(required=False, help_text="Event id; a retried event with the same uuid is stored once."),
        "$set": serializers.DictField(required=False),
        "$set_once": serializers.DictField(required=False),
        "api_key": serializers.CharField(required=False, help_text="Project API token (`phc_...`), single-event bodies."),
    },
)

CaptureBatchSerializer = inline_serializer(
    "CaptureBatch",
    {
        "api_key": serializers.CharField(help_text="Project API token (`phc_...`). Also accepted as `token`, in each "
        "event's properties.token, or as `Authorization: Bearer phc_...`."),
        "batch": CaptureEventSerializer.__class__(many=True),
        "sent_at": serializers.DateTimeField(required=False, help_text="When the client sent the batch (also `sentAt`)."),
        "historical_migration": serializers.BooleanField(required=False),
    },
)

CaptureResponseSerializer = inline_serializer("CaptureResponse", {"status": serializers.IntegerField(default=1)})

CaptureErrorSerializer = inline_serializer(
    "CaptureError",
    {
        "type": serializers.CharField(),
        "code": serializers.CharField(),
        "detail": serializers.CharField(),
        "attr": serializers.CharField(allow_null=True),
    },
)
