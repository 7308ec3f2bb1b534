"""Dashboard restriction levels and collaborators: who may edit a dashboard and the insights on it,
computed per requesting user (personal API keys act as their user)."""
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import OrganizationMembership
from insights.models import Dashboard, DashboardPrivilege
from tests.conftest import error
from tests.factories import make_member, make_team

from .conftest import make_dashboard, make_insight, put_on

pytestmark = pytest.mark.django_db

DASHBOARD_EDIT_DENIED = error("authentication_error", "permission_denied", "You don't have edit permissions for this dashboard.")
INSIGHT_EDIT_DENIED = error(
    "authentication_error", "permission_denied",
    "This insight is on a dashboard that can only be edited by its owner, team members invited to editing the dashboard, and project admins.",
)
RESTRICT_DENIED = error(
    "authentication_error", "permission_denied",
    "Only the dashboard owner and project admins have the restriction rights required to change the dashboard's restriction level.",
)
COLLABORATOR_KEYS = ["id", "dashboard_id", "user", "level", "added_at", "updated_at"]


def invalid(detail, attr=None):
    return error("validation_error", "invalid_input", detail, attr)


@pytest.fixture
def owner(team, user):
    return user  # a plain member who created the dashboard


@pytest.fixture
def other(team):
    return make_member(team)


@pytest.fixture
def admin(team):
    return make_member(team, level=OrganizationMembership.Level.ADMIN)


@pytest.fixture
def restricted(team, owner):
    return make_dashboard(team, name="Board", created_by=owner, restriction_level=37)


@pytest.fixture
def as_user(api_client):
    return lambda user, scopes=("*",): api_client(scopes, user=user)


def dashboard_url(team, dashboard, rest=""):
    return f"/api/projects/{team.id}/dashboards/{dashboard.id}/{rest}"


def levels(body):
    return body["effective_restriction_level"], body["effective_privilege_level"], body["user_access_level"]


# -- dashboards ---------------------------------------------------------------------------------


def test_levels_are_computed_for_each_user(team, restricted, owner, other, admin, as_user):
    collaborator = make_member(team)
    DashboardPrivilege.objects.create(dashboard=restricted, user=collaborator, level=37)
    expected = {owner: (37, 37, "editor"), admin: (37, 37, "editor"), collaborator: (37, 37, "editor"), other: (37, 21, "viewer")}
    for person, want in expected.items():
        body = as_user(person).get(dashboard_url(team, restricted)).json()
        assert (body["restriction_level"], *levels(body)) == (37, *want)
        listed = as_user(person).get(f"/api/projects/{team.id}/dashboards/").json()["results"][0]
        assert levels(listed) == want


def test_unrestricted_dashboard_is_editable_by_every_member(team, owner, other, as_user):
    dashboard = make_dashboard(team, created_by=owner)
    body = as_user(other).get(dashboard_url(team, dashboard)).json()
    assert (body["restriction_level"], *levels(body)) == (21, 21, 37, "editor")
    response = as_user(other).patch(dashboard_url(team, dashboard), {"name": "Renamed"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Renamed"


def test_only_owner_and_admins_change_the_restriction(team, owner, other, admin, as_user):
    dashboard = make_dashboard(team, created_by=owner)
    response = as_user(other).patch(dashboard_url(team, dashboard), {"restriction_level": 37}, format="json")
    assert (response.status_code, response.json()) == (403, RESTRICT_DENIED)
    response = as_user(owner).patch(dashboard_url(team, dashboard), {"restriction_level": 37}, format="json")
    assert response.status_code == 200 and levels(response.json()) == (37, 37, "editor")
    response = as_user(admin).patch(dashboard_url(team, dashboard), {"restriction_level": 21}, format="json")
    assert response.status_code == 200 and response.json()["restriction_level"] == 21
    response = as_user(owner).patch(dashboard_url(team, dashboard), {"restriction_level": 30}, format="json")
    assert (response.status_code, response.json()) == (400, error("validation_error", "invalid_choice", '"30" is not a valid choice.', "restriction_level"))
    created = as_user(other).post(f"/api/projects/{team.id}/dashboards/", {"name": "Mine", "restriction_level": 37}, format="json")
    assert created.status_code == 201 and levels(created.json()) == (37, 37, "editor")


def test_restricted_dashboard_refuses_other_members(team, restricted, owner, other, admin, as_user):
    response = as_user(other).patch(dashboard_url(team, restricted), {"name": "Mine now"}, format="json")
    assert (response.status_code, response.json()) == (403, DASHBOARD_EDIT_DENIED)
    assert as_user(other).get(dashboard_url(team, restricted)).status_code == 200  # reading stays open
    collaborator = make_member(team)
    DashboardPrivilege.objects.create(dashboard=restricted, user=collaborator, level=37)
    assert as_user(collaborator).patch(dashboard_url(team, restricted), {"name": "By a collaborator"}, format="json").status_code == 200
    response = as_user(collaborator).patch(dashboard_url(team, restricted), {"restriction_level": 21}, format="json")
    assert (response.status_code, response.json()) == (403, RESTRICT_DENIED)
    assert as_user(admin).patch(dashboard_url(team, restricted), {"name": "By an admin"}, format="json").status_code == 200
    restricted.refresh_from_db()
    assert restricted.name == "By an admin"


# -- insights on restricted dashboards -----------------------------------------------------------


def test_insight_levels_and_edits_follow_its_dashboards(team, restricted, owner, other, as_user):
    insight = make_insight(team, name="On the board", created_by=owner)
    put_on(insight, restricted)
    url = f"/api/projects/{team.id}/insights/{insight.id}/"
    assert levels(as_user(owner).get(url).json()) == (37, 37, "editor")
    assert levels(as_user(other).get(url).json()) == (37, 21, "viewer")
    listed = as_user(other).get(f"/api/projects/{team.id}/insights/", {"basic": "true"}).json()["results"][0]
    assert listed["user_access_level"] == "viewer"
    response = as_user(other).patch(url, {"name": "Hijacked"}, format="json")
    assert (response.status_code, response.json()) == (403, INSIGHT_EDIT_DENIED)
    assert as_user(owner).patch(url, {"name": "Renamed"}, format="json").status_code == 200
    sharing = f"{url}sharing/"
    assert as_user(other).get(sharing).status_code == 200
    response = as_user(other).patch(sharing, {"enabled": True}, format="json")
    assert (response.status_code, response.json()) == (
        403, error("authentication_error", "permission_denied", "You don't have edit permissions for this insight."))
    assert as_user(owner).patch(sharing, {"enabled": True}, format="json").json()["enabled"] is True
    # On an open dashboard too: anyone who may edit one of its dashboards may edit it.
    put_on(insight, make_dashboard(team, created_by=owner))
    assert levels(as_user(other).get(url).json()) == (37, 37, "editor")
    assert as_user(other).patch(url, {"name": "Shared work"}, format="json").status_code == 200


def test_putting_insights_on_and_off_restricted_dashboards(team, restricted, owner, other, as_user):
    insights = f"/api/projects/{team.id}/insights/"
    query = {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}}
    response = as_user(other).post(insights, {"query": query, "dashboards": [restricted.id]}, format="json")
    denied = f"You don't have permission to add insights to dashboard: {restricted.id}"
    assert (response.status_code, response.json()) == (403, error("authentication_error", "permission_denied", denied))
    mine = as_user(other).post(insights, {"query": query}, format="json").json()
    response = as_user(other).patch(f"{insights}{mine['id']}/", {"dashboards": [restricted.id]}, format="json")
    assert (response.status_code, response.json()) == (403, error("authentication_error", "permission_denied", denied))
    assert as_user(owner).patch(f"{insights}{mine['id']}/", {"dashboards": [restricted.id]}, format="json").status_code == 200
    open_board = make_dashboard(team, created_by=owner)
    put_on(make_insight(team), open_board)
    both = as_user(owner).post(insights, {"query": query, "dashboards": [restricted.id, open_board.id]}, format="json").json()
    response = as_user(other).patch(f"{insights}{both['id']}/", {"dashboards": [open_board.id]}, format="json")
    removal = f"You don't have permission to remove insights from dashboard: {restricted.id}"
    assert (response.status_code, response.json()) == (403, error("authentication_error", "permission_denied", removal))
    assert sorted(as_user(owner).get(f"{insights}{both['id']}/").json()["dashboards"]) == sorted([restricted.id, open_board.id])


def test_bulk_tags_skip_insights_the_user_may_not_edit(team, restricted, owner, other, as_user):
    locked, free = make_insight(team, created_by=owner), make_insight(team)
    put_on(locked, restricted)
    response = as_user(other).post(f"/api/projects/{team.id}/insights/bulk_update_tags/",
                                   {"ids": [locked.id, free.id, 999999], "action": "add", "tags": ["q3"]}, format="json")
    assert response.status_code == 200
    assert response.json() == {"updated": [{"id": free.id, "tags": ["q3"]}],
                               "skipped": [{"id": locked.id, "reason": "Permission denied"}, {"id": 999999, "reason": "Not found"}]}


# -- collaborators -------------------------------------------------------------------------------


def test_collaborators_add_list_remove(team, restricted, owner, other, as_user):
    url = dashboard_url(team, restricted, "collaborators/")
    assert as_user(other).get(url).json() == []
    response = as_user(owner).post(url, {"user_uuid": str(other.uuid), "level": 37}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert list(body) == COLLABORATOR_KEYS
    assert (body["dashboard_id"], body["user"]["uuid"], body["level"]) == (restricted.id, str(other.uuid), 37)
    assert as_user(other).get(url).json() == [body]
    # The invited member may now edit the dashboard and its insights.
    assert levels(as_user(other).get(dashboard_url(team, restricted)).json()) == (37, 37, "editor")
    again = as_user(owner).post(url, {"user_uuid": str(other.uuid), "level": 37}, format="json")
    assert (again.status_code, again.json()) == (400, invalid("User already is a collaborator."))
    assert as_user(owner).delete(f"{url}{other.uuid}").status_code == 204
    assert as_user(owner).get(url).json() == []
    assert levels(as_user(other).get(dashboard_url(team, restricted)).json()) == (37, 21, "viewer")
    assert as_user(owner).delete(f"{url}{other.uuid}").status_code == 404
    assert as_user(owner).delete(f"{url}not-a-uuid").status_code == 404
    session = APIClient()
    session.force_login(owner)
    assert session.patch(f"{url}{other.uuid}", {"level": 21}, format="json").status_code == 405  # levels are not edited


def test_collaborator_refusals(team, restricted, owner, other, admin, as_user):
    url = dashboard_url(team, restricted, "collaborators/")
    outsider = make_member(make_team(name="elsewhere"))
    cases = [
        ({"user_uuid": str(other.uuid), "level": 21}, invalid("Only edit access can be explicitly specified currently.")),
        ({"user_uuid": str(other.uuid)}, error("validation_error", "required", "This field is required.", "level")),
        ({"user_uuid": str(other.uuid), "level": 99}, error("validation_error", "invalid_choice", '"99" is not a valid choice.', "level")),
        ({"level": 37}, error("validation_error", "required", "This field is required.", "user_uuid")),
        ({"user_uuid": "nope", "level": 37}, invalid("Must be a valid UUID.", "user_uuid")),
        ({"user_uuid": str(uuid.uuid4()), "level": 37}, invalid("User does not exist.")),
        ({"user_uuid": str(outsider.uuid), "level": 37}, invalid("Cannot add collaborators that have no access to the project.")),
        ({"user_uuid": str(owner.uuid), "level": 37},
         invalid("Cannot add collaborators that already have inherent access (the dashboard owner or a project admins).")),
        ({"user_uuid": str(admin.uuid), "level": 37},
         invalid("Cannot add collaborators that already have inherent access (the dashboard owner or a project admins).")),
    ]
    for body, expected in cases:
        response = as_user(owner).post(url, body, format="json")
        assert (response.status_code, response.json()) == (400, expected), body
    response = as_user(other).post(url, {"user_uuid": str(other.uuid), "level": 37}, format="json")
    assert (response.status_code, response.json()) == (403, DASHBOARD_EDIT_DENIED)
    DashboardPrivilege.objects.create(dashboard=restricted, user=make_member(team), level=37)
    victim = DashboardPrivilege.objects.get(dashboard=restricted).user
    response = as_user(other).delete(f"{url}{victim.uuid}")
    assert (response.status_code, response.json()) == (403, DASHBOARD_EDIT_DENIED)
    # On an open dashboard nobody is invited or removed.
    Dashboard.objects.filter(id=restricted.id).update(restriction_level=21)
    response = as_user(owner).post(url, {"user_uuid": str(other.uuid), "level": 37}, format="json")
    assert (response.status_code, response.json()) == (400, invalid("Cannot add collaborators to a dashboard on the lowest restriction level."))
    response = as_user(owner).delete(f"{url}{victim.uuid}")
    assert (response.status_code, response.json()) == (400, invalid("Cannot remove collaborators from a dashboard on the lowest restriction level."))


def test_collaborators_of_unknown_or_foreign_dashboards(team, owner, as_user):
    foreign = make_dashboard(make_team(name="other org"), restriction_level=37)
    not_found = error("invalid_request", "not_found", "Dashboard not found.")
    for dashboard_id in (foreign.id, 0, "abc"):
        url = f"/api/projects/{team.id}/dashboards/{dashboard_id}/collaborators/"
        for response in (as_user(owner).get(url), as_user(owner).post(url, {"user_uuid": str(owner.uuid), "level": 37}, format="json")):
            assert (response.status_code, response.json()) == (404, not_found)


def test_collaborator_scopes(team, restricted, owner, other, as_user):
    url = dashboard_url(team, restricted, "collaborators/")
    assert as_user(owner, ["dashboard:read"]).get(url).status_code == 200
    response = as_user(owner, ["dashboard:read"]).post(url, {"user_uuid": str(other.uuid), "level": 37}, format="json")
    assert (response.status_code, response.json()) == (
        403, error("authentication_error", "permission_denied", "API key missing required scope 'dashboard:write'"))
    assert as_user(owner, ["insight:read"]).get(url).status_code == 403
    assert as_user(owner, ["dashboard:write"]).post(url, {"user_uuid": str(other.uuid), "level": 37}, format="json").status_code == 201


# -- constant query counts on list endpoints ----------------------------------------------------


def _count(client, url, params=None):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(captured), response.json()


def _restricted_world(team, owner, other, n):
    for i in range(n):
        dashboard = make_dashboard(team, name=f"board {i}", created_by=owner, restriction_level=37 if i % 2 else 21)
        if i % 3 == 0:
            DashboardPrivilege.objects.create(dashboard=dashboard, user=other, level=37)
        put_on(make_insight(team, name=f"insight {i}", created_by=owner), dashboard)


def test_list_levels_cost_constant_queries(team, owner, other, as_user):
    client = as_user(other)
    dashboards, insights = f"/api/projects/{team.id}/dashboards/", f"/api/projects/{team.id}/insights/"
    _restricted_world(team, owner, other, 3)
    client.get(insights, {"limit": 1})  # the key's last_used_at write stays out of the counts
    small = [_count(client, dashboards)[0], _count(client, insights)[0], _count(client, insights, {"basic": "true"})[0]]
    _restricted_world(team, owner, other, 30)
    large = [_count(client, dashboards), _count(client, insights), _count(client, insights, {"basic": "true"})]
    assert [count for count, _ in large] == small
    rows = large[0][1]["results"]
    # Odd boards are restricted; boards 0, 3, 6... invite `other`.
    by_name = {row["name"]: levels(row) for row in rows}
    assert by_name["board 1"] == (37, 21, "viewer") and by_name["board 3"] == (37, 37, "editor")
    assert by_name["board 2"] == (21, 37, "editor")
