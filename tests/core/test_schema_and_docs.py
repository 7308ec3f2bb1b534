import re

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_schema_declares_personal_api_key_bearer(schema):
    assert schema["components"]["securitySchemes"]["PersonalAPIKeyAuth"] == {"type": "http", "scheme": "bearer"}


def test_schema_operation_security_carries_scopes(schema):
    operation = schema["paths"]["/api/projects/"]["get"]
    assert operation["operationId"] == "projects_list"
    assert {"PersonalAPIKeyAuth": ["project:read"]} in operation["security"]


def test_schema_is_public(anon_client):
    assert anon_client.get("/api/schema/").status_code == 200


def test_swagger_ui_and_redoc_are_served_offline(anon_client):
    for url in ("/api/schema/swagger-ui/", "/api/schema/redoc/"):
        response = anon_client.get(url)
        assert response.status_code == 200
        html = response.content.decode()
        assets = re.findall(r'(/static/drf_spectacular_sidecar/[^"\']+\.js)', html)
        assert assets, html
        for asset in assets:
            static = anon_client.get(asset)
            assert static.status_code == 200, asset
            static.close()


def test_browsable_api_login_page(anon_client, user):
    page = anon_client.get("/api-auth/login/")
    assert page.status_code == 200
    assert b"csrfmiddlewaretoken" in page.content
    browser = APIClient(enforce_csrf_checks=True)
    page = browser.get("/api-auth/login/")
    token = page.cookies["csrftoken"].value
    response = browser.post("/api-auth/login/", {"username": user.email, "password": "password123", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    me = browser.get("/api/users/@me/", HTTP_ACCEPT="text/html")
    assert me.status_code == 200
    assert user.email.encode() in me.content


def test_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    # --fail-on-warn turns any warning (an undocumented field, an unresolved type) into an error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").stat().st_size > 10_000
