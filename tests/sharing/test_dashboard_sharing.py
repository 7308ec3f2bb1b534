"""Sharing a whole dashboard: .../dashboards/<dashboard_id>/sharing/ and its public page with every tile."""
import pytest

from activity.models import ActivityLog
from insights.models import DashboardPrivilege
from sharing.models import SharingConfiguration
from tests.conftest import error
from tests.factories import DashboardFactory, DashboardTileFactory, make_member, make_team

from .conftest import make_insight

pytestmark = pytest.mark.django_db

CONFIG_KEYS = ["created_at", "enabled", "access_token", "settings", "password_required", "share_passwords"]


@pytest.fixture
def dashboard(team, user):
    board = DashboardFactory(team=team, name="Growth board", description="Weekly numbers", created_by=user,
                             filters={"date_from": "-7d"})
    DashboardTileFactory(dashboard=board, insight=make_insight(team, user, name="Pageviews"))
    DashboardTileFactory(dashboard=board, insight=make_insight(team, user, name="Signups"), filters_overrides={"date_from": "-3d"})
    return board


def url(team, dashboard, suffix=""):
    return f"/api/projects/{team.id}/dashboards/{dashboard.id}/sharing/{suffix}"


def enable(client, team, dashboard, **changes) -> str:
    response = client.patch(url(team, dashboard), {"enabled": True, **changes}, format="json")
    assert response.status_code == 200
    return response.json()["access_token"]


def test_configuration_api(client, team, dashboard):
    body = client.get(url(team, dashboard)).json()
    assert list(body) == CONFIG_KEYS and body["enabled"] is False
    assert client.get(url(team, dashboard)).json()["access_token"] == body["access_token"]  # stored on first read
    assert enable(client, team, dashboard) == body["access_token"]
    entry = ActivityLog.objects.get(activity="sharing enabled")
    assert (entry.scope, entry.item_id) == ("Dashboard", str(dashboard.id))
    rotated = client.post(url(team, dashboard, "refresh/")).json()
    assert rotated["access_token"] != body["access_token"] and rotated["enabled"] is True
    assert SharingConfiguration.objects.filter(dashboard=dashboard).count() == 2
    assert SharingConfiguration.objects.filter(dashboard=dashboard, insight__isnull=True).count() == 2


@pytest.mark.parametrize("dashboard_id", ["999999", "abc"])
def test_unknown_dashboard_is_404(client, team, dashboard_id):
    response = client.get(f"/api/projects/{team.id}/dashboards/{dashboard_id}/sharing/")
    assert (response.status_code, response.json()) == (404, error("invalid_request", "not_found", "Dashboard not found."))


def test_other_teams_and_deleted_dashboards_are_404(client, team, dashboard):
    foreign = DashboardFactory(team=make_team(name="elsewhere"))
    assert client.get(url(team, foreign)).status_code == 404
    dashboard.deleted = True
    dashboard.save()
    assert client.get(url(team, dashboard)).status_code == 404


def test_only_editors_of_a_restricted_dashboard_change_its_sharing(api_client, team, user, dashboard):
    dashboard.restriction_level = 37
    dashboard.save()
    other = make_member(team)
    as_other = api_client(user=other)
    assert as_other.get(url(team, dashboard)).status_code == 200
    response = as_other.patch(url(team, dashboard), {"enabled": True}, format="json")
    assert (response.status_code, response.json()) == (
        403, error("authentication_error", "permission_denied", "You don't have edit permissions for this dashboard."))
    DashboardPrivilege.objects.create(dashboard=dashboard, user=other, level=37)
    assert as_other.patch(url(team, dashboard), {"enabled": True}, format="json").status_code == 200


def test_public_page_shows_every_tile(client, anon_client, team, dashboard, engine):
    token = enable(client, team, dashboard)
    response = anon_client.get(f"/shared/{token}")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Growth board" in html and "Weekly numbers" in html
    assert html.count('class="tile chart"') == 2 and "Pageviews" in html and "Signups" in html
    assert html.count("<svg") == 2
    # Each tile computed under the dashboard's filters, the tile's own on top, in the dashboard's context.
    dates = sorted(call["query"]["source"]["dateRange"]["date_from"] for call in engine.calls if call["refresh"] != "force_cache")
    assert dates == ["-3d", "-7d"]
    assert {call["dashboard_id"] for call in engine.calls} == {dashboard.id}
    assert anon_client.get(f"/shared_dashboard/{token}").status_code == 200  # PostHog's legacy path
    assert anon_client.get(f"/shared/{token}.png").status_code == 404


def test_public_json_has_the_dashboard_with_computed_tiles(client, anon_client, team, dashboard, engine):
    token = enable(client, team, dashboard, settings={"hideExtraDetails": True})
    payload = anon_client.get(f"/shared/{token}.json").json()
    assert list(payload) == ["type", "accessToken", "dashboard", "themes", "hideExtraDetails"]
    assert (payload["type"], payload["accessToken"]) == ("scene", token)
    shown = payload["dashboard"]
    assert (shown["id"], shown["name"], shown["effective_privilege_level"], shown["user_access_level"]) == (dashboard.id, "Growth board", 21, None)
    assert [tile["insight"]["name"] for tile in shown["tiles"]] == ["Pageviews", "Signups"]
    for tile in shown["tiles"]:
        assert tile["insight"]["result"] == engine.response["results"]
        assert (tile["insight"]["effective_privilege_level"], tile["insight"]["user_access_level"]) == (21, None)
        assert "created_by" not in tile["insight"]
    assert shown["tiles"][1]["insight"]["query"]["source"]["dateRange"]["date_from"] == "-3d"
    assert anon_client.get(f"/embedded/{token}.json").json()["type"] == "embed"


def test_disabled_or_deleted_dashboard_shares_are_404_pages(client, anon_client, team, dashboard, engine):
    token = enable(client, team, dashboard)
    client.patch(url(team, dashboard), {"enabled": False}, format="json")
    assert anon_client.get(f"/shared/{token}").status_code == 404
    token = enable(client, team, dashboard)
    dashboard.deleted = True
    dashboard.save()
    assert anon_client.get(f"/shared/{token}").status_code == 404


def test_share_token_reads_the_dashboards_insights_only(client, anon_client, team, user, dashboard, engine):
    token = enable(client, team, dashboard)
    elsewhere = make_insight(team, user, name="Not on the board")
    listed = anon_client.get(f"/api/projects/{team.id}/insights/", {"sharing_access_token": token})
    assert listed.status_code == 200
    assert sorted(row["name"] for row in listed.json()["results"]) == ["Pageviews", "Signups"]
    on_board = dashboard.tiles.first().insight_id
    assert anon_client.get(f"/api/projects/{team.id}/insights/{on_board}/", {"sharing_access_token": token}).status_code == 200
    assert anon_client.get(f"/api/projects/{team.id}/insights/{elsewhere.id}/", {"sharing_access_token": token}).status_code == 404


def test_password_protected_dashboard(client, anon_client, team, dashboard, engine):
    token = enable(client, team, dashboard, password_required=True)
    created = client.post(url(team, dashboard, "passwords/"), {"raw_password": "correct horse", "note": "team"}, format="json")
    assert created.status_code == 201
    assert anon_client.get(f"/shared/{token}.json").json() == {"type": "unlock"}
    assert anon_client.post(f"/shared/{token}", {"password": "wrong one"}, format="json").status_code == 401
    unlocked = anon_client.post(f"/shared/{token}", {"password": "correct horse"}, format="json")
    assert unlocked.status_code == 200
    share_token = unlocked.json()["shareToken"]
    payload = anon_client.get(f"/shared/{token}.json", HTTP_AUTHORIZATION=f"Bearer {share_token}").json()
    assert payload["shareToken"] == share_token and len(payload["dashboard"]["tiles"]) == 2
    attempts = ActivityLog.objects.filter(activity__in=["share_login_success", "share_login_failed"], scope="Dashboard")
    assert attempts.count() == 2
