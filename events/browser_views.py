"""posthog-js's remote config and flags endpoints (events/browser.py), with CORS like capture."""
from django.http import HttpResponse, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from .browser import (
    CONFIG_CACHE_HEADERS,
    CONFIG_TOKEN,
    MAX_CONFIG_TOKEN_LENGTH,
    allow_browser_origin,
    flags_response,
    remote_config,
    remote_config_js,
    team_for_capture_token,
)
from .capture import read_payload
from .exceptions import CaptureError

FLAGS_REQUEST = inline_serializer(
    "FlagsRequest",
    {
        "token": serializers.CharField(help_text="Project API token (`phc_...`); also accepted as `api_key`."),
        "distinct_id": serializers.CharField(),
        "groups": serializers.DictField(required=False),
        "person_properties": serializers.DictField(required=False),
        "group_properties": serializers.DictField(required=False),
    },
)
FLAGS_RESPONSE = inline_serializer(
    "FlagsResponse",
    {
        "errorsWhileComputingFlags": serializers.BooleanField(),
        "flags": serializers.DictField(help_text="Evaluated flags by key: always empty, this server has no feature flags."),
        "requestId": serializers.UUIDField(),
        "evaluatedAt": serializers.IntegerField(help_text="Epoch milliseconds."),
    },
)
AUTH_ERROR = inline_serializer(
    "FlagsAuthenticationError",
    {"type": serializers.CharField(), "code": serializers.CharField(), "detail": serializers.CharField(), "attr": serializers.CharField(allow_null=True)},
)


def _auth_error(code: str, detail: str) -> JsonResponse:
    return JsonResponse({"type": "authentication_error", "code": code, "detail": detail, "attr": None}, status=401)


def _truthy_flag(params, name: str) -> bool:
    """`?config`, `?config=`, `?config=true`, `?config=1` are on; `false`/`0` off."""
    return name in params and params[name].strip().lower() not in ("false", "0", "no")


class BrowserView(APIView):
    """No user authentication, CSRF or throttling: browsers call these with the project token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    parser_classes: list = []
    renderer_classes = [JSONRenderer]

    def options(self, request, *args, **kwargs):
        return HttpResponse(status=200)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        return allow_browser_origin(request, response)


class FlagsView(BrowserView):
    @extend_schema(
        operation_id="flags_create",
        tags=["capture"],
        auth=[],
        request={"application/json": FLAGS_REQUEST},
        parameters=[
            OpenApiParameter("v", OpenApiTypes.INT, description="Response version; posthog-js sends `2`. Without it, the legacy "
                             "`featureFlags`/`featureFlagPayloads` shape."),
            OpenApiParameter("config", OpenApiTypes.BOOL, description="Also return the remote config fields."),
        ],
        responses={
            200: FLAGS_RESPONSE,
            400: OpenApiResponse(OpenApiTypes.STR, description="Undecodable body or missing distinct_id (plain text)."),
            401: OpenApiResponse(AUTH_ERROR, description="Missing or unknown project API token."),
        },
        description="Feature flag evaluation for posthog-js (`POST /flags/?v=2`). This server has no feature flags: the "
        "answer is always an empty set, in PostHog's shape. Bodies may be JSON, gzip or base64 form data, as for capture.",
    )
    def post(self, request, *args, **kwargs):
        try:
            payload, _ = read_payload(request._request)
        except CaptureError as error:
            if error.get_codes() == "no_data":
                return _auth_error("not_authenticated", "No API token provided. Please include a valid API token in your request.")
            return HttpResponse(f"Failed to decode request: {error.detail}. Please check your request format and try again.", status=400, content_type="text/plain")
        if not isinstance(payload, dict):
            return HttpResponse("Failed to decode request: the body is not a JSON object. Please check your request format and try again.", status=400, content_type="text/plain")
        token = payload.get("token") or payload.get("api_key") or request.query_params.get("token") or request.query_params.get("api_key")
        if not token:
            return _auth_error("not_authenticated", "No API token provided. Please include a valid API token in your request.")
        team = team_for_capture_token(token)
        if team is None:
            return _auth_error("authentication_failed", "The provided API key is invalid or has expired. Please check your API key and try again.")
        distinct_id = payload.get("distinct_id")
        if distinct_id is None or (isinstance(distinct_id, str) and not distinct_id.strip()):
            return HttpResponse("The distinct_id field is missing from the request. Please include a valid identifier.", status=400, content_type="text/plain")
        body = flags_response(team, with_config=_truthy_flag(request.query_params, "config"))
        version = request.query_params.get("v", "")
        if not (version.isdigit() and int(version) >= 2):
            body = {"featureFlags": {}, "featureFlagPayloads": {}, **{k: v for k, v in body.items() if k != "flags"}}
        return JsonResponse(body)


def _config_lookup(token: str):
    """(team, None) or (None, the error response PostHog gives for this token)."""
    if not token:
        return None, HttpResponse("empty token", status=401, content_type="text/plain")
    if len(token) > MAX_CONFIG_TOKEN_LENGTH or not CONFIG_TOKEN.match(token):
        return None, HttpResponse("invalid token", status=400, content_type="text/plain")
    team = team_for_capture_token(token)
    if team is None:
        return None, HttpResponse(status=404)
    return team, None


CONFIG_ERRORS = {
    400: OpenApiResponse(OpenApiTypes.STR, description="Malformed token (plain text `invalid token`)."),
    404: OpenApiResponse(description="No project has this token (empty body)."),
}


class ConfigView(BrowserView):
    http_method_names = ["get", "options", "head"]  # answered in `Allow` in this order, as PostHog does

    def options(self, request, *args, **kwargs):
        return HttpResponse(status=204)


class RemoteConfigView(ConfigView):
    @extend_schema(
        operation_id="array_config_retrieve",
        tags=["capture"],
        auth=[],
        responses={200: OpenApiTypes.OBJECT, **CONFIG_ERRORS},
        description="The project's remote config for posthog-js (compression, capture endpoint, features), "
        "cacheable for 5 minutes.",
    )
    def get(self, request, token: str, *args, **kwargs):
        team, error = _config_lookup(token)
        if error:
            return error
        return JsonResponse(remote_config(team), headers=CONFIG_CACHE_HEADERS)


class RemoteConfigScriptView(ConfigView):
    @extend_schema(
        operation_id="array_config_js_retrieve",
        tags=["capture"],
        auth=[],
        responses={(200, "application/javascript"): OpenApiTypes.STR, **CONFIG_ERRORS},
        description="The remote config as a script registering it in `window._POSTHOG_REMOTE_CONFIG[token]`, "
        "cacheable for 5 minutes.",
    )
    def get(self, request, token: str, *args, **kwargs):
        team, error = _config_lookup(token)
        if error:
            return error
        return HttpResponse(remote_config_js(team), content_type="application/javascript", headers=CONFIG_CACHE_HEADERS)
