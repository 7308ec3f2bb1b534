"""What posthog-js asks on every page load besides capture: the remote config (`/array/<token>/config`,
`config.js`) and flags (`POST /flags/?v=2`), in the SDK's own request shapes, with CORS."""
import base64
import gzip
import json
import shutil
import subprocess
import uuid
from urllib.parse import urlencode

import pytest
from django.test import Client

from events.models import Event

pytestmark = pytest.mark.django_db

ORIGIN = "https://shop.example.com"
DEFAULT_CONFIG = {
    "supportedCompression": ["gzip", "gzip-js"],
    "hasFeatureFlags": False,
    "captureDeadClicks": False,
    "capturePerformance": {"network_timing": True, "web_vitals": False, "web_vitals_allowed_metrics": None},
    "autocapture_opt_out": False,
    "autocaptureExceptions": False,
    "analytics": {"endpoint": "/i/v0/e/"},
    "elementsChainAsString": True,
    "errorTracking": {"autocaptureExceptions": False, "suppressionRules": []},
    "logs": {"captureConsoleLogs": False},
    "sessionRecording": False,
    "heatmaps": False,
    "conversations": False,
    "surveys": False,
    "productTours": False,
    "defaultIdentifiedOnly": True,
}


@pytest.fixture
def browser():
    return Client(HTTP_ORIGIN=ORIGIN, HTTP_REFERER=f"{ORIGIN}/cart")


def flags_body(team, **extra):
    """What posthog-js posts to /flags/?v=2 (its _callFlagsEndpoint)."""
    return {
        "token": team.api_token,
        "distinct_id": "0192f3c4-anon",
        "groups": {},
        "$anon_distinct_id": "0192f3c4-anon",
        "person_properties": {"$initial_referrer": "$direct", "$lib": "web", "$lib_version": "1.449.2"},
        "timezone": "Europe/Paris",
        **extra,
    }


def assert_cors(response):
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response["Vary"]


# --- remote config ---------------------------------------------------------------------------------

def test_config_json_is_posthogs_default_config(browser, team):
    response = browser.get(f"/array/{team.api_token}/config")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"token": team.api_token, **DEFAULT_CONFIG, "siteApps": []}
    assert response["Cache-Control"] == "public, max-age=300"
    assert response["Vary"] == "Origin, Referer"
    assert_cors(response)


def test_config_js_registers_the_config_for_the_sdk(browser, team):
    response = browser.get(f"/array/{team.api_token}/config.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/javascript"
    assert response["Cache-Control"] == "public, max-age=300"
    assert_cors(response)
    if not shutil.which("node"):
        pytest.skip("node is not installed")
    # Run the script as a browser would and read what it registered.
    script = response.content.decode() + "\nprocess.stdout.write(JSON.stringify(window._POSTHOG_REMOTE_CONFIG));"
    out = subprocess.run(["node", "-e", "var window = {};\n" + script], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == {team.api_token: {"config": {"token": team.api_token, **DEFAULT_CONFIG}, "siteApps": []}}


@pytest.mark.parametrize("suffix", ["config", "config.js"])
def test_config_for_unknown_and_malformed_tokens(browser, team, suffix):
    unknown = browser.get(f"/array/phc_unknown/{suffix}")
    assert (unknown.status_code, unknown.content) == (404, b"")
    assert_cors(unknown)
    malformed = browser.get(f"/array/phc_bad%20token/{suffix}")
    assert (malformed.status_code, malformed.content) == (400, b"invalid token")
    too_long = browser.get(f"/array/{'a' * 201}/{suffix}")
    assert too_long.status_code == 400
    empty = browser.get(f"/array//{suffix}")
    assert (empty.status_code, empty.content) == (401, b"empty token")


def test_config_preflight(browser, team):
    response = browser.options(f"/array/{team.api_token}/config", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert response.status_code == 204
    assert response["Allow"] == "GET, OPTIONS, HEAD"
    assert_cors(response)
    assert response["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"


# --- flags ---------------------------------------------------------------------------------------

def assert_empty_flags_v2(body):
    assert set(body) == {"errorsWhileComputingFlags", "flags", "requestId", "evaluatedAt"}
    assert body["errorsWhileComputingFlags"] is False and body["flags"] == {}
    uuid.UUID(body["requestId"])
    assert isinstance(body["evaluatedAt"], int) and body["evaluatedAt"] > 1_700_000_000_000


def test_flags_gzip_js_as_posthog_js_sends_it(browser, team):
    # gzip-js: the body is gzipped JSON sent as text/plain (no preflight), the compression
    # parameter removed from the URL.
    body = gzip.compress(json.dumps(flags_body(team)).encode(), mtime=0)
    response = browser.post("/flags/?v=2", data=body, content_type="text/plain")
    assert response.status_code == 200
    assert_empty_flags_v2(response.json())
    assert_cors(response)


def test_flags_base64_form_and_plain_json(browser, team):
    encoded = base64.b64encode(json.dumps(flags_body(team)).encode()).decode()
    form = browser.post("/flags/?v=2&compression=base64", data=urlencode({"data": encoded}), content_type="application/x-www-form-urlencoded")
    assert form.status_code == 200
    assert_empty_flags_v2(form.json())
    plain = browser.post("/flags/?v=2", data=json.dumps(flags_body(team)), content_type="application/json")
    assert plain.status_code == 200
    assert_empty_flags_v2(plain.json())


def test_flags_preflight_for_json_bodies(browser):
    response = browser.options(
        "/flags/?v=2", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST", HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type"
    )
    assert response.status_code == 200
    assert_cors(response)
    assert response["Access-Control-Allow-Headers"] == "content-type"


def test_flags_with_config_and_legacy_shape(browser, team):
    with_config = browser.post("/flags/?v=2&config=true", data=json.dumps(flags_body(team)), content_type="application/json").json()
    assert with_config["flags"] == {} and with_config["supportedCompression"] == ["gzip", "gzip-js"]
    assert {k: with_config[k] for k in DEFAULT_CONFIG} == DEFAULT_CONFIG
    legacy = browser.post("/flags/", data=json.dumps(flags_body(team)), content_type="application/json").json()
    assert set(legacy) == {"errorsWhileComputingFlags", "featureFlags", "featureFlagPayloads", "requestId", "evaluatedAt"}
    assert legacy["featureFlags"] == {} and legacy["featureFlagPayloads"] == {}


def test_flags_token_errors(browser, team):
    unknown = browser.post("/flags/?v=2", data=json.dumps(flags_body(team, token="phc_nope")), content_type="application/json")
    assert unknown.status_code == 401
    assert unknown.json() == {
        "type": "authentication_error",
        "code": "authentication_failed",
        "detail": "The provided API key is invalid or has expired. Please check your API key and try again.",
        "attr": None,
    }
    assert_cors(unknown)
    body = flags_body(team)
    del body["token"]
    missing = browser.post("/flags/?v=2", data=json.dumps(body), content_type="application/json")
    assert missing.status_code == 401
    assert missing.json()["code"] == "not_authenticated"
    assert missing.json()["detail"] == "No API token provided. Please include a valid API token in your request."
    empty = browser.post("/flags/?v=2", data=b"", content_type="text/plain")
    assert (empty.status_code, empty.json()["code"]) == (401, "not_authenticated")


def test_flags_bad_bodies_are_400_not_500(browser, team):
    no_distinct_id = browser.post("/flags/?v=2", data=json.dumps(flags_body(team, distinct_id="")), content_type="application/json")
    assert no_distinct_id.status_code == 400
    assert no_distinct_id.content == b"The distinct_id field is missing from the request. Please include a valid identifier."
    garbage = browser.post("/flags/?v=2", data=b"\x1f\x8b not gzip", content_type="text/plain")
    assert garbage.status_code == 400
    assert garbage.content.startswith(b"Failed to decode request: ")
    array = browser.post("/flags/?v=2", data="[1, 2]", content_type="application/json")
    assert array.status_code == 400


def test_events_go_to_the_configured_endpoint(browser, team):
    """The config points posthog-js at /i/v0/e/, where gzip-js batches are stored."""
    endpoint = browser.get(f"/array/{team.api_token}/config").json()["analytics"]["endpoint"]
    batch = [{"event": "$pageview", "properties": {"distinct_id": "anon-1", "token": team.api_token, "$current_url": f"{ORIGIN}/"}}]
    response = browser.post(f"{endpoint}?ver=1.449.2&compression=gzip-js", data=gzip.compress(json.dumps(batch).encode()), content_type="text/plain")
    assert response.status_code == 200 and response.json() == {"status": 1}
    assert_cors(response)
    assert Event.objects.filter(team=team, event="$pageview").count() == 1
