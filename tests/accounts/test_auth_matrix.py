"""Authentication and authorization of a sample team-nested endpoint (GET /api/environments/<id>/)."""
import pytest
from rest_framework.test import APIClient

from accounts.models import OrganizationMembership, PersonalAPIKey
from tests.conftest import error
from tests.factories import make_key, make_member, make_team

pytestmark = pytest.mark.django_db


def test_no_credentials_is_401_with_www_authenticate(anon_client, team):
    response = anon_client.get(f"/api/projects/{team.id}/")
    assert response.status_code == 401
    assert response.json() == error("authentication_error", "not_authenticated", "Authentication credentials were not provided.")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("key", ["phx_unknown", "garbage", "phx_" + "a" * 45])
def test_unknown_key_is_401(team, key, api_client):
    response = api_client(key=key).get(f"/api/environments/{team.id}/")
    assert response.status_code == 401
    assert response.json() == error(
        "authentication_error", "authentication_failed", "Personal API key found in request Authorization header is invalid."
    )


def test_key_in_query_string_and_body(team, user, api_key):
    response = APIClient().get(f"/api/environments/{team.id}/?personal_api_key={api_key}")
    assert response.status_code == 200
    bad = APIClient().get(f"/api/environments/{team.id}/?personal_api_key=phx_nope")
    assert bad.status_code == 401
    assert bad.json()["detail"] == "Personal API key found in request query string is invalid."
    body = APIClient().post("/api/personal_api_keys/", {"label": "x", "personal_api_key": "phx_nope"}, format="json")
    assert body.json()["detail"] == "Personal API key found in request body is invalid."


def test_key_is_stored_hashed_and_masked(user):
    raw = make_key(user)
    stored = PersonalAPIKey.objects.get(user=user)
    assert raw.startswith("phx_") and len(raw) > 40
    assert stored.secure_value.startswith("sha256$") and raw not in stored.secure_value
    assert stored.mask_value == f"phx_...{raw[-4:]}"


def test_key_of_inactive_user_is_rejected(team, user, api_key, api_client):
    user.is_active = False
    user.save()
    assert api_client(key=api_key).get(f"/api/environments/{team.id}/").status_code == 401


def test_missing_scope_is_403(team, user, api_client):
    response = api_client(["insight:read"]).get(f"/api/environments/{team.id}/")
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", "API key missing required scope 'project:read'")


def test_write_scope_implies_read(team, user, api_client):
    assert api_client(["project:write"]).get(f"/api/environments/{team.id}/").status_code == 200


def test_legacy_unscoped_key_is_allowed(team, user, api_client):
    assert api_client(None).get(f"/api/environments/{team.id}/").status_code == 200


def test_key_scoped_to_another_team_is_403(team, user, api_client):
    other = make_team(team.organization)
    api = api_client(team=other)
    response = api.get(f"/api/environments/{team.id}/")
    assert response.status_code == 403
    assert response.json()["detail"] == f"API key does not have access to the requested project: ID {team.id}."
    assert api.get(f"/api/environments/{other.id}/").status_code == 200


def test_key_scoped_to_another_organization_is_403(team, user, api_client):
    other = make_team()
    OrganizationMembership.objects.create(organization=other.organization, user=user)
    response = api_client(organization=other.organization).get(f"/api/environments/{team.id}/")
    assert response.status_code == 403
    assert response.json()["detail"] == f"API key does not have access to the requested organization: ID {team.organization_id}."


def test_non_member_is_403(team, api_client):
    stranger = make_member(make_team())
    response = api_client(user=stranger).get(f"/api/environments/{team.id}/")
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", "You don't have access to the project.")


@pytest.mark.parametrize("team_id", ["999999", "abc"])
def test_unknown_team_is_404(client, team_id):
    response = client.get(f"/api/environments/{team_id}/")
    assert response.status_code == 404
    assert response.json() == error("invalid_request", "not_found", "Project not found.")


def test_current_team_alias(client, team):
    response = client.get("/api/environments/@current/")
    assert response.status_code == 200
    assert response.json()["id"] == team.id


def test_projects_and_environments_agree(client, team):
    project = client.get(f"/api/projects/{team.id}")  # optional trailing slash
    environment = client.get(f"/api/environments/{team.id}/")
    assert project.status_code == environment.status_code == 200
    for field in ("id", "organization", "timezone", "api_token"):
        assert project.json()[field] == environment.json()[field]
    assert project.json()["name"] == team.project.name


def test_organization_disallowing_keys_blocks_members_but_not_admins(team, user, api_key, api_client):
    team.organization.members_can_use_personal_api_keys = False
    team.organization.save()
    response = api_client(key=api_key).get(f"/api/environments/{team.id}/")
    assert response.status_code == 403
    assert "does not allow using personal API keys" in response.json()["detail"]
    admin = make_member(team, level=OrganizationMembership.Level.ADMIN)
    assert api_client(user=admin).get(f"/api/environments/{team.id}/").status_code == 200


def test_throttle_is_429_for_keys_only(settings, team, user, api_key, api_client):
    settings.RATE_LIMIT_ENABLED = True
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"burst": "3/minute", "sustained": "100/hour"}}
    api = api_client(key=api_key)
    statuses = [api.get(f"/api/environments/{team.id}/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api.get(f"/api/environments/{team.id}/")
    assert response.json()["type"] == "throttled_error"
    assert response.json()["code"] == "throttled"
    assert response.json()["detail"].startswith("Request was throttled. Expected available in ")
    assert int(response["Retry-After"]) > 0
    # Session requests are never throttled.
    session = APIClient()
    session.force_login(user)
    assert all(session.get(f"/api/environments/{team.id}/").status_code == 200 for _ in range(5))


def test_throttle_switched_off(settings, team, api_key, api_client):
    settings.RATE_LIMIT_ENABLED = False
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"burst": "1/minute", "sustained": "1/hour"}}
    api = api_client(key=api_key)
    assert [api.get(f"/api/environments/{team.id}/").status_code for _ in range(3)] == [200, 200, 200]


def test_last_used_at_is_updated_at_most_hourly(team, user, api_key, api_client):
    from datetime import timedelta

    from django.utils import timezone

    key = PersonalAPIKey.objects.get(user=user)
    assert key.last_used_at is None
    api_client(key=api_key).get(f"/api/environments/{team.id}/")
    key.refresh_from_db()
    first = key.last_used_at
    assert first is not None
    api_client(key=api_key).get(f"/api/environments/{team.id}/")
    key.refresh_from_db()
    assert key.last_used_at == first
    PersonalAPIKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timedelta(hours=2))
    api_client(key=api_key).get(f"/api/environments/{team.id}/")
    key.refresh_from_db()
    assert key.last_used_at > first
