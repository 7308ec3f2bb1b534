import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import Organization, PersonalAPIKey, Team, User
from tests.conftest import error
from tests.factories import make_key, make_member, make_team

pytestmark = pytest.mark.django_db


def test_users_me(client, user, team):
    response = client.get("/api/users/@me/")
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == user.email
    assert body["distinct_id"] == user.distinct_id
    assert body["uuid"] == str(user.uuid)
    assert body["organization"]["id"] == str(team.organization_id)
    assert [o["id"] for o in body["organizations"]] == [str(team.organization_id)]
    assert body["organizations"][0]["membership_level"] == 1
    assert body["team"] == {
        "id": team.id,
        "uuid": str(team.uuid),
        "organization": str(team.organization_id),
        "project_id": team.project_id,
        "api_token": team.api_token,
        "name": team.name,
        "timezone": "UTC",
    }


def test_users_other_than_me_is_404(client, user):
    assert client.get(f"/api/users/{user.id}/").status_code == 404


def test_create_key_shows_raw_value_once(client, user, team, api_client):
    response = client.post("/api/personal_api_keys/", {"label": "ci", "scopes": ["insight:read"], "scoped_teams": [team.id]}, format="json")
    assert response.status_code == 201
    body = response.json()
    raw = body["value"]
    assert raw.startswith("phx_")
    assert body["mask_value"] == f"phx_...{raw[-4:]}"
    assert body["scopes"] == ["insight:read"] and body["scoped_teams"] == [team.id]
    assert not PersonalAPIKey.objects.filter(secure_value__contains=raw).exists()
    listed = client.get("/api/personal_api_keys/").json()
    assert {k["id"] for k in listed} >= {body["id"]}
    assert all(k["value"] is None for k in listed)
    # The new key works, and @current describes it.
    current = api_client(key=raw).get("/api/personal_api_keys/@current/")
    assert current.status_code == 200
    assert current.json()["scopes"] == ["insight:read"]
    assert current.json()["scoped_teams"] == [team.id]
    assert current.json()["scoped_organizations"] == []


def test_current_key_requires_key_auth(user):
    session = APIClient()
    session.force_login(user)
    response = session.get("/api/personal_api_keys/@current/")
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"


@pytest.mark.parametrize(
    "payload, attr",
    [
        ({}, "label"),
        ({"label": "x", "scopes": ["nonsense"]}, "scopes"),
        ({"label": "x", "scopes": "insight:read"}, "scopes"),
        ({"label": "x", "scoped_teams": [999999]}, "scoped_teams"),
        ({"label": "x", "scoped_teams": ["abc"]}, "scoped_teams__0"),
        ({"label": "x" * 41}, "label"),
    ],
)
def test_create_key_validation(client, payload, attr):
    count = PersonalAPIKey.objects.count()
    response = client.post("/api/personal_api_keys/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert response.json()["attr"] == attr
    assert PersonalAPIKey.objects.count() == count


def test_delete_key(client, user, api_client):
    other_raw = make_key(user)
    other = PersonalAPIKey.objects.exclude(id=client.get("/api/personal_api_keys/@current/").json()["id"]).get()
    assert client.delete(f"/api/personal_api_keys/{other.id}/").status_code == 204
    assert api_client(key=other_raw).get("/api/users/@me/").status_code == 401
    assert client.delete(f"/api/personal_api_keys/{other.id}/").status_code == 404


def test_keys_of_other_users_are_invisible(client, team):
    stranger = make_member(make_team())
    make_key(stranger)
    stranger_key = PersonalAPIKey.objects.get(user=stranger)
    assert client.delete(f"/api/personal_api_keys/{stranger_key.id}/").status_code == 404
    assert stranger_key.id not in {k["id"] for k in client.get("/api/personal_api_keys/").json()}


def test_projects_list_only_members_projects(client, team):
    make_team()  # another organization's project
    response = client.get("/api/projects/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"][0] == {
        "id": team.project_id,
        "organization": str(team.organization_id),
        "name": team.project.name,
        "timezone": "UTC",
        "api_token": team.api_token,
        "created_at": body["results"][0]["created_at"],
    }


def test_project_of_other_organization_is_404(client):
    other = make_team()
    assert client.get(f"/api/projects/{other.id}/").status_code == 404


def test_malformed_json_is_400(client):
    response = client.post("/api/personal_api_keys/", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["type"] == "invalid_request"
    assert response.json()["code"] == "parse_error"


def test_unsupported_media_type_is_415(client):
    response = client.post("/api/personal_api_keys/", data="label=x", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_method_not_allowed_shape(user):
    session = APIClient()
    session.force_login(user)
    response = session.put("/api/users/@me/", {}, format="json")
    assert response.status_code == 405
    assert response.json() == error("invalid_request", "method_not_allowed", 'Method "PUT" not allowed.')


def test_unknown_url_is_json_404(client):
    response = client.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_unhandled_exception_is_500_with_error_body(client, monkeypatch):
    from accounts import views

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(views.MeSerializer, "to_representation", boom)
    api = APIClient(raise_request_exception=False)
    api.credentials(**client._credentials)
    response = api.get("/api/users/@me/")
    assert response.status_code == 500
    assert response.json() == {"type": "server_error", "code": "error", "detail": "A server error occurred.", "attr": None}


def run_bootstrap(*args):
    from io import StringIO

    out = StringIO()
    call_command("bootstrap", *args, stdout=out)
    return out.getvalue()


def test_bootstrap_is_idempotent_and_separates_tenants(db, api_client):
    first = json.loads(run_bootstrap("--email", "a@example.com", "--password", "pw123456", "--organization", "Acme", "--new-api-key", "--json"))
    assert set(first) == {"organization_id", "project_id", "team_id", "email", "personal_api_key", "api_token"}
    assert first["personal_api_key"].startswith("phx_") and first["api_token"].startswith("phc_")
    again = json.loads(run_bootstrap("--email", "a@example.com", "--password", "pw123456", "--organization", "Acme", "--json"))
    assert {k: again[k] for k in ("organization_id", "project_id", "team_id", "api_token")} == {
        k: first[k] for k in ("organization_id", "project_id", "team_id", "api_token")
    }
    assert again["personal_api_key"] is None
    other = json.loads(run_bootstrap("--email", "a@example.com", "--password", "pw123456", "--organization", "Other", "--new-api-key", "--json"))
    assert other["organization_id"] != first["organization_id"] and other["team_id"] != first["team_id"]
    assert User.objects.count() == 1 and Organization.objects.count() == 2 and Team.objects.count() == 2
    # The printed key works and is a member of its organizations only.
    me = api_client(key=first["personal_api_key"]).get(f"/api/environments/{first['team_id']}/")
    assert me.status_code == 200 and me.json()["api_token"] == first["api_token"]
    assert project_and_team_ids_match(first)


def project_and_team_ids_match(result):
    return result["project_id"] == result["team_id"]


@pytest.mark.parametrize("team_id", [str(2**64), str(2**63), "0", "-1", "abc"])
@pytest.mark.parametrize("path", ["/api/projects/{}/", "/api/projects/{}/insights/", "/api/environments/{}/", "/api/environments/{}/dashboards/"])
def test_malformed_or_out_of_range_team_ids_are_404(client, path, team_id):
    response = client.get(path.format(team_id))
    assert response.status_code == 404
    assert response.json() == error("invalid_request", "not_found", "Project not found.")


def test_current_project_resolves_like_every_team_url(client, team):
    assert client.get("/api/projects/@current/").json()["id"] == team.project_id
    assert client.get(f"/api/projects/{team.id}/").json()["id"] == team.project_id
