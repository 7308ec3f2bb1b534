"""The insight activity log: entries written on change, and the two activity endpoints (spec §3.5, §5)."""
import pytest

from activity.models import ActivityLog
from insights.models import Insight
from tests.conftest import error
from tests.factories import make_team
from tests.insights.conftest import SQL_QUERY, TRENDS_QUERY, make_dashboard, make_insight

pytestmark = pytest.mark.django_db

ENTRY_KEYS = ["id", "user", "activity", "scope", "item_id", "detail", "created_at"]
DETAIL_KEYS = ["id", "changes", "merge", "trigger", "name", "short_id", "type"]


@pytest.fixture
def base(team):
    return f"/api/projects/{team.id}/insights/"


def entries(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200, response.json()
    return response.json()


def changes_of(entry):
    return {change["field"]: change for change in entry["detail"]["changes"]}


def test_create_logs_created(client, base, user):
    insight = client.post(base, {"name": "Signups", "query": TRENDS_QUERY}, format="json").json()
    page = entries(client, f"{base}{insight['id']}/activity/")
    assert list(page) == ["results", "next", "previous", "total_count"]
    assert page["total_count"] == 1 and page["next"] is None and page["previous"] is None
    entry = page["results"][0]
    assert list(entry) == ENTRY_KEYS
    assert (entry["activity"], entry["scope"], entry["item_id"]) == ("created", "Insight", str(insight["id"]))
    assert entry["user"] == {"first_name": user.first_name, "email": user.email}
    assert list(entry["detail"]) == DETAIL_KEYS
    assert entry["detail"] == {
        "id": None, "changes": None, "merge": None, "trigger": None, "name": "Signups", "short_id": insight["short_id"], "type": None,
    }


def test_unnamed_insights_are_not_logged(client, base):
    insight = client.post(base, {"query": TRENDS_QUERY}, format="json").json()
    client.patch(f"{base}{insight['id']}/", {"description": "still unnamed"}, format="json")
    assert not ActivityLog.objects.exists()
    # derived_name is enough.
    client.patch(f"{base}{insight['id']}/", {"derived_name": "Pageview count"}, format="json")
    entry = entries(client, f"{base}{insight['id']}/activity/")["results"][0]
    assert entry["detail"]["name"] == "Pageview count"


def test_update_logs_field_diffs(client, base, team):
    insight = make_insight(team, name="Old", description=None, tags=["a"])
    dashboard = make_dashboard(team, name="KPIs")
    client.patch(
        f"{base}{insight.id}/",
        {"name": "New", "description": "Now described", "query": SQL_QUERY, "favorited": True, "tags": ["a", "b"], "dashboards": [dashboard.id], "order": 3},
        format="json",
    )
    entry = entries(client, f"{base}{insight.id}/activity/")["results"][0]
    assert entry["activity"] == "updated"
    assert entry["detail"]["name"] == "New"
    changes = changes_of(entry)
    assert set(changes) == {"name", "description", "query", "favorited", "tags", "dashboards"}  # order is excluded
    assert changes["name"] == {"type": "Insight", "action": "changed", "field": "name", "before": "Old", "after": "New"}
    assert changes["description"] == {"type": "Insight", "action": "created", "field": "description", "before": None, "after": "Now described"}
    assert changes["query"]["before"] == TRENDS_QUERY and changes["query"]["after"] == SQL_QUERY
    assert (changes["favorited"]["before"], changes["favorited"]["after"]) == (False, True)
    assert (changes["tags"]["before"], changes["tags"]["after"]) == (["a"], ["a", "b"])
    assert changes["dashboards"] == {
        "type": "Insight", "action": "changed", "field": "dashboards", "before": [], "after": [{"id": dashboard.id, "name": "KPIs"}],
    }


def test_clearing_a_field_is_a_deleted_change(client, base, team):
    insight = make_insight(team, description="text")
    client.patch(f"{base}{insight.id}/", {"description": None}, format="json")
    change = changes_of(entries(client, f"{base}{insight.id}/activity/")["results"][0])["description"]
    assert (change["action"], change["before"], change["after"]) == ("deleted", "text", None)


def test_updates_without_changes_are_not_logged(client, base, team):
    insight = make_insight(team, name="Same", favorited=True)
    assert client.patch(f"{base}{insight.id}/", {"name": "Same", "favorited": True, "order": 5}, format="json").status_code == 200
    assert entries(client, f"{base}{insight.id}/activity/")["total_count"] == 0


def test_delete_and_restore_are_logged(client, base, team):
    insight = make_insight(team, name="Doomed")
    url = f"{base}{insight.id}/"
    client.patch(url, {"deleted": True}, format="json")
    client.patch(url, {"deleted": False}, format="json")
    page = entries(client, f"{url}activity/")
    assert [entry["activity"] for entry in page["results"]] == ["restored", "deleted"]
    deleted = changes_of(page["results"][1])["deleted"]
    assert (deleted["before"], deleted["after"]) == (False, True)


def test_activity_of_a_deleted_insight_is_404(client, base, team):
    insight = make_insight(team, deleted=True)
    response = client.get(f"{base}{insight.id}/activity/")
    assert response.status_code == 404


def test_paging(client, base, team):
    insight = make_insight(team, name="v0")
    for n in range(1, 6):
        client.patch(f"{base}{insight.id}/", {"name": f"v{n}"}, format="json")
    url = f"{base}{insight.id}/activity/"
    first = entries(client, url, limit=2)
    assert first["total_count"] == 5
    assert [changes_of(e)["name"]["after"] for e in first["results"]] == ["v5", "v4"]
    assert first["next"] == f"http://testserver{url}?limit=2&page=2"
    assert first["previous"] is None
    second = entries(client, url, limit=2, page=2)
    assert [changes_of(e)["name"]["after"] for e in second["results"]] == ["v3", "v2"]
    assert second["previous"] == f"http://testserver{url}?limit=2&page=1"
    last = entries(client, url, limit=2, page=3)
    assert len(last["results"]) == 1 and last["next"] is None
    beyond = entries(client, url, limit=2, page=9)
    assert beyond["results"] == [] and beyond["next"] is None and beyond["total_count"] == 5


@pytest.mark.parametrize(
    "params, attr, detail",
    [
        ({"page": "abc"}, "page", "A valid integer is required."),
        ({"page": 0}, "page", "Ensure this value is greater than or equal to 1."),
        ({"limit": "x"}, "limit", "A valid integer is required."),
        ({"limit": 0}, "limit", "Ensure this value is greater than or equal to 1."),
        # Found by the schema fuzzer: a limit past 64 bits reached the database.
        ({"limit": "30210087053935708733440"}, "limit", "Ensure this value is less than or equal to 1000."),
        ({"page": 10**20}, "page", "Ensure this value is less than or equal to 1000000000."),
    ],
)
def test_bad_paging_params_are_400(client, base, team, params, attr, detail):
    insight = make_insight(team)
    for url in (f"{base}{insight.id}/activity/", f"{base}activity/"):
        response = client.get(url, params)
        assert response.status_code == 400
        body = response.json()
        assert (body["type"], body["attr"], body["detail"]) == ("validation_error", attr, detail)


def test_all_activity_covers_the_environment_only(client, base, team):
    first = make_insight(team, name="first")
    second = make_insight(team, name="second")
    client.patch(f"{base}{first.id}/", {"name": "first!"}, format="json")
    client.patch(f"{base}{second.id}/", {"name": "second!"}, format="json")
    # Another environment of the same project has its own log; other tenants too.
    sibling = make_team(team.organization)
    sibling.project = team.project
    sibling.save()
    client.patch(f"/api/projects/{sibling.id}/insights/{first.id}/", {"name": "via sibling"}, format="json")
    ActivityLog.objects.create(team=make_team(), scope="Insight", item_id="1", activity="created", detail={})
    page = entries(client, f"{base}activity/")
    assert [e["item_id"] for e in page["results"]] == [str(second.id), str(first.id)]
    assert page["total_count"] == 2
    assert entries(client, f"/api/projects/{sibling.id}/insights/activity/")["total_count"] == 1


def test_system_and_deleted_users(client, base, team):
    insight = make_insight(team)
    ActivityLog.objects.create(team=team, scope="Insight", item_id=str(insight.id), activity="updated", is_system=True, detail=None)
    ActivityLog.objects.create(team=team, scope="Insight", item_id=str(insight.id), activity="updated", user=None, detail=None)
    users = [e["user"] for e in entries(client, f"{base}{insight.id}/activity/")["results"]]
    assert {"first_name": "System", "email": None, "is_system": True} in users
    assert {"first_name": "", "email": ""} in users


def test_activity_is_written_in_the_same_transaction(client, base, team, monkeypatch):
    insight = make_insight(team, name="Before")

    def broken(**kwargs):
        raise RuntimeError("activity store down")

    monkeypatch.setattr("insights.services.log_activity", broken)
    response = client.patch(f"{base}{insight.id}/", {"name": "After"}, format="json")
    assert response.status_code == 500
    assert response.json() == error("server_error", "error", "A server error occurred.")
    assert Insight.objects.get(pk=insight.pk).name == "Before"
    response = client.post(base, {"name": "Never", "query": TRENDS_QUERY}, format="json")
    assert response.status_code == 500
    assert not Insight.objects.filter(name="Never").exists()
