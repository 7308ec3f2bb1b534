"""The alerts and thresholds endpoints in /api/schema/: PostHog's operation ids, scopes and shapes."""
import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(
    "path,method,operation_id,scope",
    [
        ("/api/projects/{project_id}/alerts/", "get", "alerts_list", "alert:read"),
        ("/api/projects/{project_id}/alerts/", "post", "alerts_create", "alert:write"),
        ("/api/projects/{project_id}/alerts/{id}/", "get", "alerts_retrieve", "alert:read"),
        ("/api/projects/{project_id}/alerts/{id}/", "put", "alerts_update", "alert:write"),
        ("/api/projects/{project_id}/alerts/{id}/", "patch", "alerts_partial_update", "alert:write"),
        ("/api/projects/{project_id}/alerts/{id}/", "delete", "alerts_destroy", "alert:write"),
        ("/api/projects/{project_id}/insights/{insight_id}/thresholds/", "get", "insights_thresholds_list", "alert:read"),
        ("/api/projects/{project_id}/insights/{insight_id}/thresholds/{id}/", "get", "insights_thresholds_retrieve", "alert:read"),
        ("/api/environments/{project_id}/alerts/", "get", "environments_alerts_list", "alert:read"),
        ("/api/environments/{project_id}/insights/{insight_id}/thresholds/", "get", "environments_insights_thresholds_list", "alert:read"),
    ],
)
def test_operations(schema, path, method, operation_id, scope):
    operation = schema["paths"][path][method]
    assert operation["operationId"] == operation_id
    assert {"PersonalAPIKeyAuth": [scope]} in operation["security"]


def test_thresholds_are_read_only(schema):
    for path in ("/api/projects/{project_id}/insights/{insight_id}/thresholds/", "/api/projects/{project_id}/insights/{insight_id}/thresholds/{id}/"):
        assert [method for method in schema["paths"][path] if method != "parameters"] == ["get"]


def test_alert_is_written_with_ids_and_read_with_objects(schema):
    components = schema["components"]["schemas"]
    alert, request = components["Alert"], components["AlertRequest"]
    assert alert["properties"]["insight"]["allOf"] == [{"$ref": "#/components/schemas/InsightBasic"}]
    assert alert["properties"]["subscribed_users"]["items"]["allOf"] == [{"$ref": "#/components/schemas/UserBasic"}]
    assert request["properties"]["insight"]["type"] == "integer"
    assert request["properties"]["subscribed_users"]["items"]["type"] == "integer"
    assert set(request["required"]) == {"insight", "subscribed_users", "threshold"}
    assert alert["properties"]["checks"]["items"]["$ref"] == "#/components/schemas/AlertCheck"
    assert components["ThresholdWithAlerts"]["properties"]["alerts"]["items"]["$ref"] == "#/components/schemas/Alert"
