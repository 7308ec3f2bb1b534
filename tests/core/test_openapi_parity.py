"""Our /api/schema/ matches PostHog's published OpenAPI for the insights paths."""
import json
import re
from pathlib import Path

import pytest

SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "spec" / "openapi" / "posthog-insights-openapi.json"

pytestmark = [pytest.mark.django_db, pytest.mark.skipif(not SPEC.exists(), reason="needs ../shared/spec")]


@pytest.fixture(scope="module")
def posthog():
    return json.loads(SPEC.read_text())


@pytest.fixture
def ours(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def operations(schema):
    return {
        (method.upper(), path): operation
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }


def test_every_posthog_operation_exists_with_its_operation_id(posthog, ours):
    theirs, mine = operations(posthog), operations(ours)
    missing = sorted(f"{m} {p}" for m, p in theirs if (m, p) not in mine)
    assert not missing
    mismatched = {f"{m} {p}": (op["operationId"], mine[(m, p)]["operationId"]) for (m, p), op in theirs.items() if mine[(m, p)]["operationId"] != op["operationId"]}
    assert not mismatched


def test_scopes_match(posthog, ours):
    mine = operations(ours)
    for key, operation in operations(posthog).items():
        expected = [entry for entry in operation.get("security") or [] if "PersonalAPIKeyAuth" in entry]
        actual = [entry for entry in mine[key].get("security") or [] if "PersonalAPIKeyAuth" in entry]
        assert actual == expected, key


def test_insight_fields_match(posthog, ours):
    schemas = ours["components"]["schemas"]
    for component in ("Insight", "UserBasic", "DashboardTileBasic", "SharingConfiguration"):
        theirs = posthog["components"]["schemas"][component]["properties"]
        mine = {**schemas.get(component, {}).get("properties", {}), **schemas.get(f"{component}Request", {}).get("properties", {})}
        assert set(theirs) <= set(mine), (component, sorted(set(theirs) - set(mine)))
    # Request and response components are split here: PATCH bodies take the writable fields.
    writable = {name for name, prop in posthog["components"]["schemas"]["PatchedInsight"]["properties"].items() if not prop.get("readOnly")}
    assert writable <= set(schemas["PatchedInsightRequest"]["properties"])


def test_query_parameters_of_list_and_retrieve(posthog, ours):
    mine = operations(ours)
    for key in [("GET", "/api/projects/{project_id}/insights/"), ("GET", "/api/projects/{project_id}/insights/{id}/")]:
        theirs = {p["name"] for p in operations(posthog)[key].get("parameters", [])}
        have = {p["name"] for p in mine[key].get("parameters", [])}
        assert theirs <= have, (key, sorted(theirs - have))


def test_tags_match(posthog, ours):
    mine = operations(ours)
    for key, operation in operations(posthog).items():
        assert mine[key]["tags"] == list(dict.fromkeys(operation["tags"])), key  # PostHog repeats `environments`


def test_share_token_schemes_only_on_reads_share_viewers_may_make(ours):
    sharing = {"SharingJWT", "SharingAccessToken"}
    for (method, path), operation in operations(ours).items():
        schemes = {name for entry in operation.get("security") or [] for name in entry}
        readable = method == "GET" and re.fullmatch(r"/api/(projects|environments)/\{project_id\}/insights/(\{id\}/)?", path)
        assert (schemes & sharing == sharing) if readable else not (schemes & sharing), (method, path)
