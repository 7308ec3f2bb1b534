"""The sharing configuration API: .../insights/<insight_id>/sharing/."""
import pytest
from django.conf import global_settings
from rest_framework.test import APIClient

from activity.models import ActivityLog
from sharing.models import SharePassword, SharingConfiguration
from tests.conftest import error
from tests.factories import SharingConfigurationFactory, make_member, make_team
from tests.scopes import Action, ScopeTestCases

from .conftest import make_environment, make_insight, sharing_url

pytestmark = pytest.mark.django_db

CONFIG_KEYS = {"created_at", "enabled", "access_token", "settings", "password_required", "share_passwords"}


def enable_passwords(client, team, insight):
    response = client.patch(sharing_url(team, insight), {"enabled": True, "password_required": True}, format="json")
    assert response.status_code == 200


# -- GET ------------------------------------------------------------------------------------


def test_get_returns_one_object_with_a_stable_token(client, team, insight):
    first = client.get(sharing_url(team, insight))
    assert first.status_code == 200
    body = first.json()
    assert set(body) == CONFIG_KEYS
    assert body["enabled"] is False and body["password_required"] is False
    assert body["settings"] is None and body["share_passwords"] == []
    assert body["created_at"] is not None
    assert len(body["access_token"]) >= 28
    assert client.get(sharing_url(team, insight)).json()["access_token"] == body["access_token"]
    assert client.get(sharing_url(team, insight, family="environments")).json()["access_token"] == body["access_token"]
    assert SharingConfiguration.objects.filter(insight=insight).count() == 1


def test_trailing_slash_is_optional(client, team, insight):
    assert client.get(sharing_url(team, insight).rstrip("/")).status_code == 200


def test_get_is_bounded_in_queries(client, team, insight, django_assert_max_num_queries):
    client.get(sharing_url(team, insight))
    with django_assert_max_num_queries(10):
        assert client.get(sharing_url(team, insight)).status_code == 200


@pytest.mark.parametrize("insight_id", ["999999", "abc", "99999999999999999999999"])
def test_unknown_insight_is_404(client, team, insight_id):
    response = client.get(f"/api/projects/{team.id}/insights/{insight_id}/sharing/")
    assert response.status_code == 404
    assert response.json() == error("invalid_request", "not_found", "Insight not found.")


def test_deleted_insight_is_404(client, team, insight):
    insight.deleted = True
    insight.save()
    assert client.get(sharing_url(team, insight)).json() == error("invalid_request", "not_found", "Insight not found.")


def test_insight_of_another_organization_is_404_through_my_team(client, team):
    other_insight = make_insight(make_team())
    response = client.get(f"/api/projects/{team.id}/insights/{other_insight.id}/sharing/")
    assert response.status_code == 404
    assert response.json()["detail"] == "Insight not found."


def test_insights_are_project_wide(client, team, insight):
    sibling = make_environment(team)
    response = client.get(sharing_url(sibling, insight))
    assert response.status_code == 200
    assert response.json()["access_token"] == client.get(sharing_url(team, insight)).json()["access_token"]


def test_another_organizations_team_is_403_and_unknown_team_404(client, team, insight):
    other = make_team()
    response = client.get(sharing_url(other, insight))
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", "You don't have access to the project.")
    response = client.get(f"/api/projects/987654/insights/{insight.id}/sharing/")
    assert response.status_code == 404
    assert response.json() == error("invalid_request", "not_found", "Project not found.")


def test_unauthenticated_is_401(anon_client, team, insight):
    response = anon_client.get(sharing_url(team, insight))
    assert response.status_code == 401
    assert response.json() == error("authentication_error", "not_authenticated", "Authentication credentials were not provided.")


# -- scopes ---------------------------------------------------------------------------------


class TestSharingScopes(ScopeTestCases.ReadActions, ScopeTestCases.WriteActions, ScopeTestCases.UnscopedActions):
    url = "/api/projects/{team.id}/insights/{obj.insight_id}/sharing/"
    unrelated_scope = "insight:write"
    actions = {
        "list": Action("get", "", "sharing_configuration:read"),
        "patch": Action("patch", "", "sharing_configuration:write", body={"enabled": True}),
        "refresh": Action("post", "refresh/", "sharing_configuration:write"),
        "create_password": Action("post", "passwords/", "sharing_configuration:write", status=201, body={}),
        "delete_password": Action("delete", "passwords/{obj.password.id}/", "sharing_configuration:write", status=204),
        # Methods the configuration URL does not route: no scope maps to them.
        "post": Action("post", "", None, status=405, body={}),
        "put": Action("put", "", None, status=405, body={}),
        "delete": Action("delete", "", None, status=405),
    }

    def make_object(self, team, user):
        share = SharingConfigurationFactory(insight=make_insight(team, user), password_required=True, passwords=["correct horse"])
        share.password = share.share_passwords.get()  # for the delete_password path
        return share


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_other_methods_on_the_configuration_are_refused(client, team, insight, method, django_user_model):
    # As in PostHog, the scope check comes first and knows no scope for an unrouted method.
    response = getattr(client, method)(sharing_url(team, insight), {}, format="json")
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", "This action does not support Personal API Key access")
    session = APIClient()
    session.force_login(django_user_model.objects.get(organization_memberships__organization=team.organization))
    response = getattr(session, method)(sharing_url(team, insight), {}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


# -- PATCH ------------------------------------------------------------------------------------


def test_enable_and_disable_log_activity(client, team, user, insight):
    response = client.patch(sharing_url(team, insight), {"enabled": True}, format="json")
    assert response.status_code == 200
    assert response.json()["enabled"] is True
    response = client.patch(sharing_url(team, insight), {"enabled": False}, format="json")
    assert response.json()["enabled"] is False
    entries = list(ActivityLog.objects.filter(scope="Insight", item_id=str(insight.id)).order_by("created_at"))
    assert [entry.activity for entry in entries] == ["sharing enabled", "sharing disabled"]
    assert entries[0].user == user and entries[0].team == team
    assert entries[0].detail["name"] == insight.name and entries[0].detail["short_id"] == insight.short_id
    assert entries[0].detail["changes"] == [{"type": "Insight", "action": "changed", "field": "sharing", "before": None, "after": True}]
    assert entries[1].detail["changes"][0]["after"] is False


def test_settings_are_validated_and_normalised(client, team, insight):
    response = client.patch(
        sharing_url(team, insight),
        {"settings": {"legend": True, "noHeader": "true", "whitelabel": None, "unknownKey": 1, "theme": "dark"}},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["settings"] == {"legend": True, "noHeader": True, "theme": "dark"}
    assert client.patch(sharing_url(team, insight), {"settings": None}, format="json").json()["settings"] is None


@pytest.mark.parametrize("value", [{"legend": "maybe"}, {"theme": "purple"}, ["legend"], "legend", 5])
def test_invalid_settings_are_400(client, team, insight, value):
    response = client.patch(sharing_url(team, insight), {"settings": value}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", "Invalid settings format", "settings")


def test_invalid_enabled_is_400(client, team, insight):
    response = client.patch(sharing_url(team, insight), {"enabled": "sometimes"}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", "Must be a valid boolean.", "enabled")


def test_read_only_fields_are_ignored(client, team, insight):
    token = client.get(sharing_url(team, insight)).json()["access_token"]
    response = client.patch(sharing_url(team, insight), {"access_token": "mine", "share_passwords": [{"id": 1}]}, format="json")
    assert response.status_code == 200
    assert response.json()["access_token"] == token


def test_organization_forbidding_public_sharing(client, team, insight):
    team.organization.allow_publicly_shared_resources = False
    team.organization.save()
    response = client.patch(sharing_url(team, insight), {"enabled": True}, format="json")
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", "Public sharing is disabled for this organization.")
    assert client.patch(sharing_url(team, insight), {"enabled": False}, format="json").status_code == 200
    assert ActivityLog.objects.filter(activity="sharing enabled").count() == 0


# -- refresh ------------------------------------------------------------------------------------


def test_refresh_rotates_the_token_and_keeps_options_and_passwords(client, team, user, insight):
    enable_passwords(client, team, insight)
    client.patch(sharing_url(team, insight), {"settings": {"legend": True}}, format="json")
    created = client.post(sharing_url(team, insight, "passwords/"), {"raw_password": "correct horse", "note": "for the board"}, format="json")
    old = client.get(sharing_url(team, insight)).json()

    response = client.post(sharing_url(team, insight, "refresh/"))
    assert response.status_code == 200
    new = response.json()
    assert set(new) == CONFIG_KEYS
    assert new["access_token"] != old["access_token"]
    assert (new["enabled"], new["password_required"], new["settings"]) == (True, True, {"legend": True})
    assert [(p["note"], p["created_by_email"]) for p in new["share_passwords"]] == [("for the board", user.email)]
    assert client.get(sharing_url(team, insight)).json()["access_token"] == new["access_token"]

    current = SharingConfiguration.objects.get(access_token=new["access_token"])
    assert current.share_passwords.get().check_password("correct horse")
    previous = SharingConfiguration.objects.get(access_token=old["access_token"])
    assert previous.expires_at is not None
    assert 299 <= (previous.expires_at - current.created_at).total_seconds() <= 301
    assert created.json()["id"] != new["share_passwords"][0]["id"]
    entry = ActivityLog.objects.get(activity="access token refreshed")
    assert entry.item_id == str(insight.id) and entry.user == user and entry.detail["changes"] is None


def test_refresh_before_any_read_works(client, team, insight):
    response = client.post(sharing_url(team, insight, "refresh/"))
    assert response.status_code == 200
    assert SharingConfiguration.objects.filter(insight=insight).count() == 2
    assert SharingConfiguration.objects.filter(insight=insight, expires_at__isnull=True).count() == 1


# -- passwords --------------------------------------------------------------------------------------


def test_passwords_need_password_protection(client, team, insight):
    response = client.post(sharing_url(team, insight, "passwords/"), {"raw_password": "long enough"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"error": "Password protection must be enabled before creating passwords"}
    assert SharePassword.objects.count() == 0


def test_create_password_shows_the_raw_password_once(client, team, user, insight):
    enable_passwords(client, team, insight)
    response = client.post(sharing_url(team, insight, "passwords/"), {"raw_password": "correct horse", "note": "team"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "password", "note", "created_at", "created_by_email"}
    assert (body["password"], body["note"], body["created_by_email"]) == ("correct horse", "team", user.email)
    stored = SharePassword.objects.get(id=body["id"])
    assert stored.password_hash != "correct horse" and "correct horse" not in stored.password_hash
    listed = client.get(sharing_url(team, insight)).json()["share_passwords"]
    assert listed == [{"id": body["id"], "created_at": body["created_at"], "note": "team", "created_by_email": user.email, "is_active": True}]


def test_generated_password_when_absent_or_empty(client, team, insight):
    enable_passwords(client, team, insight)
    for body in ({}, {"raw_password": ""}):
        response = client.post(sharing_url(team, insight, "passwords/"), body, format="json")
        assert response.status_code == 201
        generated = response.json()["password"]
        assert len(generated) >= 16
        assert SharePassword.objects.get(id=response.json()["id"]).check_password(generated)


def test_password_hashes_never_leave_the_server(client, team, insight):
    enable_passwords(client, team, insight)
    created = client.post(sharing_url(team, insight, "passwords/"), {"raw_password": "correct horse"}, format="json")
    refreshed = client.post(sharing_url(team, insight, "refresh/"))
    listed = client.get(sharing_url(team, insight))
    hashes = list(SharePassword.objects.values_list("password_hash", flat=True))
    assert hashes
    for response in (created, refreshed, listed):
        for password_hash in hashes:
            assert password_hash not in response.content.decode()
        assert "password_hash" not in response.content.decode()


@pytest.mark.parametrize(
    "body, detail, attr",
    [
        ({"raw_password": "short"}, "Password must be at least 8 characters long.", "raw_password"),
        ({"raw_password": "long enough", "note": "n" * 101}, "Ensure this field has no more than 100 characters.", "note"),
    ],
)
def test_invalid_password_bodies_are_400(client, team, insight, body, detail, attr):
    enable_passwords(client, team, insight)
    response = client.post(sharing_url(team, insight, "passwords/"), body, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == detail and response.json()["attr"] == attr


def test_default_hasher_is_djangos_pbkdf2(client, team, insight, settings):
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS  # Django's default, as in production
    enable_passwords(client, team, insight)
    body = client.post(sharing_url(team, insight, "passwords/"), {"raw_password": "correct horse"}, format="json").json()
    assert SharePassword.objects.get(id=body["id"]).password_hash.startswith("pbkdf2_sha256$")


def test_delete_password(client, team, insight):
    enable_passwords(client, team, insight)
    password_id = client.post(sharing_url(team, insight, "passwords/"), {"raw_password": "correct horse"}, format="json").json()["id"]
    response = client.delete(sharing_url(team, insight, f"passwords/{password_id}/"))
    assert response.status_code == 204
    assert response.content == b""
    assert client.get(sharing_url(team, insight)).json()["share_passwords"] == []
    assert SharePassword.objects.get(id=password_id).is_active is False
    again = client.delete(sharing_url(team, insight, f"passwords/{password_id}/"))
    assert again.status_code == 404
    assert again.json() == error("invalid_request", "not_found", "Password not found")


@pytest.mark.parametrize("password_id", ["424242", "abc", "99999999999999999999999"])
def test_delete_unknown_password_is_404(client, team, insight, password_id):
    response = client.delete(sharing_url(team, insight, f"passwords/{password_id}/"))
    assert response.status_code == 404
    assert response.json() == error("invalid_request", "not_found", "Password not found")


def test_password_of_another_insight_cannot_be_deleted(client, team, user, insight):
    other = make_insight(team, user, name="Other")
    enable_passwords(client, team, other)
    password_id = client.post(sharing_url(team, other, "passwords/"), {"raw_password": "correct horse"}, format="json").json()["id"]
    assert client.delete(sharing_url(team, insight, f"passwords/{password_id}/")).status_code == 404
    assert SharePassword.objects.get(id=password_id).is_active is True


def test_member_of_another_organization_cannot_touch_my_share(team, insight, api_client):
    stranger = make_member(make_team())
    api = api_client(user=stranger)
    for response in (
        api.get(sharing_url(team, insight)),
        api.patch(sharing_url(team, insight), {"enabled": True}, format="json"),
        api.post(sharing_url(team, insight, "refresh/")),
    ):
        assert response.status_code == 403
        assert response.json()["detail"] == "You don't have access to the project."
    assert not SharingConfiguration.objects.filter(enabled=True).exists()
