"""Server errors and schema mismatches found by the schema fuzzer (tests/probes/schema_fuzz.py)."""
from rest_framework.test import APIClient

from insights.models import Insight
from sharing.models import SharingConfiguration

from ..conftest import error


def test_too_many_form_fields_is_400_not_500(client):
    fields = "&".join(f"f{n}=1" for n in range(1500))
    response = client.post("/api/personal_api_keys/", fields, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json() == error(
        "invalid_request", "parse_error", "The number of GET/POST parameters exceeded settings.DATA_UPLOAD_MAX_NUMBER_FIELDS."
    )


def test_my_insights_filter_is_empty_for_a_share_viewer(team, user):
    insight = Insight.objects.create(team=team, name="shared", created_by=user)
    share = SharingConfiguration.objects.create(team=team, insight=insight, enabled=True)
    response = APIClient().get(f"/api/projects/{team.id}/insights/", {"user": "true", "sharing_access_token": share.access_token})
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_share_password_errors_are_documented_in_both_shapes(client):
    schema = client.get("/api/schema/?format=json").json()
    operation = schema["paths"]["/api/projects/{project_id}/insights/{insight_id}/sharing/passwords/"]["post"]
    body = operation["responses"]["400"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/SharePasswordErrorResponse"}
    assert [item["$ref"] for item in schema["components"]["schemas"]["SharePasswordErrorResponse"]["oneOf"]] == [
        "#/components/schemas/SharingErrorResponse", "#/components/schemas/SharePasswordValidationError",
    ]
