"""Text tiles on dashboards: added, edited and removed with PATCH `tiles`, shown beside insight tiles."""
import pytest

from insights.models import DashboardTile, Text
from tests.conftest import error
from tests.factories import make_member

from .conftest import make_dashboard, make_insight, put_on
from .test_dashboard_tiles import TILE_KEYS, dashboards, retrieve  # noqa: F401  (dashboards: fixture)

pytestmark = pytest.mark.django_db

TEXT_KEYS = ["id", "created_by", "last_modified_by", "body", "last_modified_at", "team"]


def test_add_edit_and_remove_a_text_tile(client, api_client, dashboards, team, user):
    dashboard = make_dashboard(team)
    insight_tile = put_on(make_insight(team), dashboard)
    url = f"{dashboards}{dashboard.id}/"
    layouts = {"sm": {"x": 0, "y": 5, "w": 12, "h": 2}}
    response = client.patch(url, {"tiles": [{"text": {"body": "# Weekly review"}, "layouts": layouts, "color": "white"}]}, format="json")
    assert response.status_code == 200
    tiles = response.json()["tiles"]
    assert [tile["id"] for tile in tiles][0] == insight_tile.id and len(tiles) == 2
    text_tile = tiles[1]
    assert list(text_tile) == TILE_KEYS
    assert (text_tile["insight"], text_tile["layouts"], text_tile["color"], text_tile["is_cached"]) == (None, layouts, "white", False)
    assert list(text_tile["text"]) == TEXT_KEYS
    assert (text_tile["text"]["body"], text_tile["text"]["created_by"]["id"], text_tile["text"]["last_modified_by"]) == (
        "# Weekly review", user.id, None)
    assert text_tile["text"]["team"] == team.id

    editor = make_member(team)
    as_editor = api_client(user=editor)
    edited = as_editor.patch(url, {"tiles": [{"id": text_tile["id"], "text": {"body": "Updated"}}]}, format="json").json()["tiles"][1]
    assert (edited["text"]["body"], edited["text"]["created_by"]["id"], edited["text"]["last_modified_by"]["id"]) == ("Updated", user.id, editor.id)
    assert edited["layouts"] == layouts  # untouched

    removed = client.patch(url, {"tiles": [{"id": text_tile["id"], "deleted": True}]}, format="json").json()["tiles"]
    assert [tile["id"] for tile in removed] == [insight_tile.id]
    assert DashboardTile.objects_including_soft_deleted.get(id=text_tile["id"]).deleted is True


def test_text_tile_refusals(client, dashboards, team):
    dashboard = make_dashboard(team)
    insight_tile = put_on(make_insight(team), dashboard)
    url = f"{dashboards}{dashboard.id}/"
    for body, expected in [
        ({"tiles": [{"text": {"body": "x" * 4001}}]},
         error("validation_error", "max_length", "Text body cannot exceed 4000 characters", "tiles__0__text__body")),
        ({"tiles": [{"id": insight_tile.id, "text": {"body": "no"}}]},
         error("validation_error", "invalid_input", f"Tile {insight_tile.id} shows an insight: it has no text to change.", "tiles")),
        ({"tiles": [{"text": "plain"}]},
         error("validation_error", "invalid_input", "Invalid data. Expected a dictionary, but got str.", "tiles__0__text__non_field_errors")),
    ]:
        response = client.patch(url, body, format="json")
        assert (response.status_code, response.json()) == (400, expected)
    assert Text.objects.count() == 0


def test_text_tiles_are_duplicated_with_the_dashboard(client, dashboards, team):
    dashboard = make_dashboard(team, name="Source")
    put_on(make_insight(team), dashboard)
    client.patch(f"{dashboards}{dashboard.id}/", {"tiles": [{"text": {"body": "Notes"}}]}, format="json")
    same = client.post(dashboards, {"name": "Copy", "use_dashboard": dashboard.id}, format="json").json()
    assert [tile["text"]["body"] if tile["text"] else None for tile in same["tiles"]] == [None, "Notes"]
    copied = client.post(dashboards, {"name": "Deep", "use_dashboard": dashboard.id, "duplicate_tiles": True}, format="json").json()
    assert copied["tiles"][1]["text"]["body"] == "Notes"
    assert copied["tiles"][1]["text"]["id"] != same["tiles"][1]["text"]["id"] == Text.objects.order_by("id").first().id


def test_shared_dashboard_page_and_exports_show_text_tiles(client, anon_client, dashboards, team):
    dashboard = make_dashboard(team, name="Board")
    put_on(make_insight(team, name="Views"), dashboard)
    client.patch(f"{dashboards}{dashboard.id}/", {"tiles": [{"text": {"body": "<b>Read me</b>"}}]}, format="json")
    token = client.patch(f"/api/projects/{team.id}/dashboards/{dashboard.id}/sharing/", {"enabled": True}, format="json").json()["access_token"]
    html = anon_client.get(f"/shared/{token}").content.decode()
    assert "&lt;b&gt;Read me&lt;/b&gt;" in html and "<b>Read me" not in html
    payload = anon_client.get(f"/shared/{token}.json").json()
    assert [tile["text"]["body"] if tile["text"] else tile["insight"]["name"] for tile in payload["dashboard"]["tiles"]] == [
        "Views", "<b>Read me</b>"]
    export = client.post(f"/api/projects/{team.id}/exports/", {"export_format": "text/csv", "dashboard": dashboard.id}, format="json")
    assert export.status_code == 201 and export.json()["exception"] is None
