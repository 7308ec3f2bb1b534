"""What posthog-js asks besides capture, answered as PostHog does for a project with default
settings and no feature flags: the remote config (`/array/<token>/config` and `config.js`) and
flag evaluation (`/flags/?v=2`); plus the CORS headers every browser-facing endpoint carries.
"""
import json
import re
import time
import uuid

from accounts.models import Team

CONFIG_TOKEN = re.compile(r"^[a-zA-Z0-9_-]+$")
MAX_CONFIG_TOKEN_LENGTH = 200
# Configs may be cached by browsers and CDNs for five minutes, per embedding site.
CONFIG_CACHE_HEADERS = {"Cache-Control": "public, max-age=300", "Vary": "Origin, Referer"}
# Where posthog-js sends events once it has the config; served by events.urls.
ANALYTICS_ENDPOINT = "/i/v0/e/"


def allow_browser_origin(request, response):
    """Lets the tracked site's pages call us: the origin is echoed with credentials, as PostHog does."""
    origin = request.META.get("HTTP_ORIGIN")
    response["Access-Control-Allow-Origin"] = origin or "*"
    if origin:
        response["Access-Control-Allow-Credentials"] = "true"
        vary = [v.strip() for v in response.get("Vary", "").split(",") if v.strip()]
        response["Vary"] = ", ".join(dict.fromkeys([*vary, "Origin"]))
    response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = request.META.get(
        "HTTP_ACCESS_CONTROL_REQUEST_HEADERS", "Content-Type, Content-Encoding, Authorization"
    )
    return response


def team_for_capture_token(token) -> Team | None:
    if not isinstance(token, str) or not token.strip() or token.strip().startswith("phx_"):
        return None
    return Team.objects.only("id", "api_token").filter(api_token=token.strip()).first()


def remote_config(team: Team) -> dict:
    """The remote config of a project with default settings: no flags, recordings, surveys or site apps."""
    return {
        "token": team.api_token,
        "supportedCompression": ["gzip", "gzip-js"],
        "hasFeatureFlags": False,
        "captureDeadClicks": False,
        "capturePerformance": {"network_timing": True, "web_vitals": False, "web_vitals_allowed_metrics": None},
        "autocapture_opt_out": False,
        "autocaptureExceptions": False,
        "analytics": {"endpoint": ANALYTICS_ENDPOINT},
        "elementsChainAsString": True,
        "errorTracking": {"autocaptureExceptions": False, "suppressionRules": []},
        "logs": {"captureConsoleLogs": False},
        "sessionRecording": False,
        "heatmaps": False,
        "conversations": False,
        "surveys": False,
        "productTours": False,
        "defaultIdentifiedOnly": True,
        "siteApps": [],
    }


def remote_config_js(team: Team) -> str:
    """The script form: it registers the config for posthog-js under the project token."""
    config = remote_config(team)
    site_apps = config.pop("siteApps")
    token = json.dumps(team.api_token)  # the token matched CONFIG_TOKEN; quoted all the same
    return (
        "(function() {\n"
        "  window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {};\n"
        f"  window._POSTHOG_REMOTE_CONFIG[{token}] = {{\n"
        f"    config: {json.dumps(config, separators=(',', ':'))},\n"
        f"    siteApps: {json.dumps(site_apps)}\n"
        "  }\n"
        "}());"
    )


def flags_response(team: Team, *, with_config: bool) -> dict:
    """`/flags/?v=2` for a project without feature flags; `config=true` merges the remote config in."""
    response = {
        "errorsWhileComputingFlags": False,
        "flags": {},
        "requestId": str(uuid.uuid4()),
        "evaluatedAt": int(time.time() * 1000),
    }
    if with_config:
        config = remote_config(team)
        config.pop("token")
        response.update(config)
    return response
