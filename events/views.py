"""Capture endpoints: PostHog SDKs post events here with the project's `phc_` token (no user auth)."""
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .browser import allow_browser_origin
from .capture import client_ip, read_capture_request
from .serializers import CaptureBatchSerializer, CaptureErrorSerializer, CaptureEventSerializer, CaptureResponseSerializer
from .services import ingest_batch, team_for_token

CAPTURE_REQUEST = PolymorphicProxySerializer(
    component_name="Capture",
    serializers=[CaptureBatchSerializer, CaptureEventSerializer, CaptureEventSerializer.__class__(many=True)],
    resource_type_field_name=None,
    many=False,
)
CAPTURE_PARAMETERS = [
    OpenApiParameter("compression", str, enum=["gzip", "gzip-js"], description="The body is gzip-compressed."),
    OpenApiParameter("_", int, description="Client send time in epoch milliseconds, when the body has no `sent_at`."),
]
CAPTURE_RESPONSES = {
    200: CaptureResponseSerializer,
    400: OpenApiResponse(CaptureErrorSerializer, description="Malformed body or invalid event; nothing was stored."),
    401: OpenApiResponse(CaptureErrorSerializer, description="Missing or unknown project API token."),
    413: OpenApiResponse(CaptureErrorSerializer, description="Body larger than 20 MiB."),
    503: OpenApiResponse(CaptureErrorSerializer, description="The database or the events store (ClickHouse) could not store "
                         "the events; nothing was stored, retry after `Retry-After` seconds."),
}


class CaptureView(APIView):
    """Stores the events of one request in one transaction: all of them, or none on a 4xx."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    parser_classes: list = []  # the body is decoded by events.capture (gzip, base64, forms)
    renderer_classes = [JSONRenderer]

    def post(self, request, *args, **kwargs):
        captured = read_capture_request(request._request)
        team = team_for_token(captured.token)
        ingest_batch(team, captured.events, captured.sent_at, ip=client_ip(request._request))
        return Response({"status": 1})

    def get(self, request, *args, **kwargs):
        # posthog-js falls back to GET /e/?data=... where POST bodies cannot be sent.
        return self.post(request, *args, **kwargs)

    def options(self, request, *args, **kwargs):
        return Response(status=200)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        return allow_browser_origin(request, response)  # browsers post from the tracked site's origin


def capture_view(operation_id: str):
    """One documented view per capture path, so each has its own operation id."""

    @extend_schema(
        operation_id=operation_id,
        tags=["capture"],
        auth=[],
        request={"application/json": CAPTURE_REQUEST},
        parameters=CAPTURE_PARAMETERS,
        responses=CAPTURE_RESPONSES,
        description="Capture events with the project API token, as PostHog's SDKs do (posthog-python posts "
        "`{api_key, batch, sent_at}` to /batch/). Answers `{\"status\": 1}` when the events are stored.",
    )
    def post(self, request, *args, **kwargs):
        return CaptureView.post(self, request, *args, **kwargs)

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        return CaptureView.get(self, request, *args, **kwargs)

    return type(f"CaptureView_{operation_id}", (CaptureView,), {"post": post, "get": get}).as_view()
