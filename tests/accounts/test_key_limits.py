"""A personal API key can only create, roll and delete keys that grant no more than it does itself."""
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from accounts.models import PersonalAPIKey
from tests.conftest import error
from tests.factories import make_key, make_member, make_team

pytestmark = pytest.mark.django_db

URL = "/api/personal_api_keys/"


def bearer(key):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return api


@pytest.fixture
def other_team(team):
    return make_team(team.organization, name="Second project")


@pytest.fixture
def other_org_team(user):
    team = make_team()
    from accounts.models import OrganizationMembership

    OrganizationMembership.objects.create(organization=team.organization, user=user)
    return team


def denied(detail):
    return error("authentication_error", "permission_denied", detail)


def teams_detail(verb, team_id):
    return f"API key cannot {verb} a key with access to project ID {team_id}: the key making the request does not have access to it."


# --- create ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "actor_scopes, requested, exceeding",
    [
        (["insight:read", "personal_api_key:write"], ["insight:write"], "insight:write"),
        (["insight:read", "personal_api_key:write"], ["*"], "*"),
        (["insight:read", "personal_api_key:write"], None, "*"),  # no scopes = unrestricted
        (["insight:read", "personal_api_key:write"], ["dashboard:read"], "dashboard:read"),
    ],
)
def test_key_cannot_create_a_key_with_more_scopes(user, actor_scopes, requested, exceeding):
    count = PersonalAPIKey.objects.count()
    body = {"label": "wider"} | ({"scopes": requested} if requested is not None else {})
    response = bearer(make_key(user, scopes=actor_scopes)).post(URL, body, format="json")
    assert response.status_code == 403
    assert response.json() == denied(
        f"API key cannot create a key with scope '{exceeding}': it exceeds the scopes of the key making the request."
    )
    assert PersonalAPIKey.objects.count() == count + 1  # only the actor


@pytest.mark.parametrize(
    "actor_scopes, requested",
    [
        (["insight:write", "personal_api_key:write"], ["insight:read"]),  # write covers read
        (["insight:write", "personal_api_key:write"], ["insight:write", "personal_api_key:read"]),
        (["*"], ["*"]),
        (None, ["*"]),  # a legacy unrestricted key is unrestricted
    ],
)
def test_key_can_create_a_key_within_its_scopes(user, actor_scopes, requested):
    response = bearer(make_key(user, scopes=actor_scopes)).post(URL, {"label": "narrower", "scopes": requested}, format="json")
    assert response.status_code == 201
    assert response.json()["scopes"] == requested


def test_team_restricted_key_cannot_create_unrestricted_or_other_team_keys(user, team, other_team):
    actor = bearer(make_key(user, scoped_teams=[team.id]))
    response = actor.post(URL, {"label": "all", "scopes": ["*"]}, format="json")
    assert response.status_code == 403
    assert response.json() == denied(
        f"API key cannot create a key with access to all projects: the key making the request is restricted to projects [{team.id}]."
    )
    response = actor.post(URL, {"label": "other", "scopes": ["*"], "scoped_teams": [team.id, other_team.id]}, format="json")
    assert response.status_code == 403
    assert response.json() == denied(teams_detail("create", other_team.id))
    # An organization restriction does not narrow a team restriction away.
    response = actor.post(URL, {"label": "org", "scopes": ["*"], "scoped_organizations": [str(team.organization_id)]}, format="json")
    assert response.status_code == 403
    response = actor.post(URL, {"label": "same", "scopes": ["*"], "scoped_teams": [team.id]}, format="json")
    assert response.status_code == 201
    assert response.json()["scoped_teams"] == [team.id]
    assert PersonalAPIKey.objects.filter(user=user).count() == 2


def test_organization_restricted_key_cannot_reach_other_organizations(user, team, other_team, other_org_team):
    org = str(team.organization_id)
    actor = bearer(make_key(user, scoped_organizations=[org]))
    response = actor.post(URL, {"label": "all", "scopes": ["*"]}, format="json")
    assert response.status_code == 403
    assert response.json() == denied(
        f"API key cannot create a key with access to all organizations: the key making the request is restricted to organizations ['{org}']."
    )
    foreign = str(other_org_team.organization_id)
    response = actor.post(URL, {"label": "foreign", "scopes": ["*"], "scoped_organizations": [foreign]}, format="json")
    assert response.status_code == 403
    assert response.json() == denied(
        f"API key cannot create a key with access to organization ID {foreign}: the key making the request does not have access to it."
    )
    response = actor.post(URL, {"label": "foreign team", "scopes": ["*"], "scoped_teams": [other_org_team.id]}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"].startswith(f"API key cannot create a key with access to organization ID {foreign}")
    # Within: the same organization, or projects of it.
    assert actor.post(URL, {"label": "org", "scopes": ["*"], "scoped_organizations": [org]}, format="json").status_code == 201
    assert actor.post(URL, {"label": "team", "scopes": ["*"], "scoped_teams": [other_team.id]}, format="json").status_code == 201


def test_session_users_are_not_limited(user, team):
    session = APIClient()
    session.force_login(user)
    response = session.post(URL, {"label": "all", "scopes": ["*"]}, format="json")
    assert response.status_code == 201
    assert response.json()["scoped_teams"] == []


# --- roll and delete --------------------------------------------------------------------------------

def test_restricted_key_cannot_roll_or_delete_a_broader_key(user, team, other_team):
    broad = PersonalAPIKey.objects.get(secure_value__isnull=False, id=_key_id(make_key(user)))
    actor = bearer(make_key(user, scopes=["insight:read", "personal_api_key:write"]))
    response = actor.post(f"{URL}{broad.id}/roll/")
    assert response.status_code == 403
    assert response.json() == denied("API key cannot roll a key with scope '*': it exceeds the scopes of the key making the request.")
    response = actor.delete(f"{URL}{broad.id}/")
    assert response.status_code == 403
    assert response.json() == denied("API key cannot delete a key with scope '*': it exceeds the scopes of the key making the request.")
    broad.refresh_from_db()
    assert broad.last_rolled_at is None

    other_team_key = PersonalAPIKey.objects.get(id=_key_id(make_key(user, scopes=["insight:read"], scoped_teams=[other_team.id])))
    team_actor = bearer(make_key(user, scoped_teams=[team.id]))
    response = team_actor.delete(f"{URL}{other_team_key.id}/")
    assert response.status_code == 403
    assert response.json() == denied(teams_detail("delete", other_team.id))
    assert PersonalAPIKey.objects.filter(id=other_team_key.id).exists()


def test_key_can_roll_and_delete_keys_within_its_own(user, team):
    narrow_raw = make_key(user, scopes=["insight:read"], scoped_teams=[team.id])
    narrow = PersonalAPIKey.objects.get(id=_key_id(narrow_raw))
    actor = bearer(make_key(user, scopes=["insight:write", "personal_api_key:write"], scoped_teams=[team.id]))
    response = actor.post(f"{URL}{narrow.id}/roll/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == narrow.id and body["value"].startswith("phx_") and body["last_rolled_at"]
    assert body["mask_value"] == f"phx_...{body['value'][-4:]}"
    insights = f"/api/projects/{team.id}/insights/"
    assert bearer(narrow_raw).get(insights).status_code == 401
    assert bearer(body["value"]).get(insights).status_code == 200
    assert actor.delete(f"{URL}{narrow.id}/").status_code == 204
    assert not PersonalAPIKey.objects.filter(id=narrow.id).exists()


def test_key_without_key_write_scope_cannot_roll(user):
    raw = make_key(user, scopes=["insight:read", "personal_api_key:read"])
    response = bearer(raw).post(f"{URL}@current/roll/")
    assert response.status_code == 403
    assert response.json() == denied("API key missing required scope 'personal_api_key:write'")


def test_session_user_rolls_any_of_their_keys(user):
    key_id = _key_id(make_key(user))
    session = APIClient()
    session.force_login(user)
    response = session.post(f"{URL}{key_id}/roll/")
    assert response.status_code == 200
    assert response.json()["value"].startswith("phx_")
    stranger_key = _key_id(make_key(make_member(make_team())))
    assert session.post(f"{URL}{stranger_key}/roll/").status_code == 404


def _key_id(raw):
    from accounts.models import hash_key_value

    return PersonalAPIKey.objects.get(secure_value=hash_key_value(raw)).id


# --- restrictions are arrays on the wire -------------------------------------------------------------

def test_current_key_made_by_bootstrap_answers_arrays(db):
    from io import StringIO
    import json

    from django.core.management import call_command

    out = StringIO()
    call_command("bootstrap", "--email", "boot@example.com", "--password", "pw-123456", "--new-api-key", "--json", stdout=out)
    raw = json.loads(out.getvalue())["personal_api_key"]
    body = bearer(raw).get(f"{URL}@current/").json()
    assert body["scopes"] == ["*"]
    assert body["scoped_teams"] == [] and body["scoped_organizations"] == []
    key = PersonalAPIKey.objects.get(id=body["id"])
    assert key.scoped_teams == [] and key.scoped_organizations == []


def test_legacy_key_without_scopes_lists_star_and_empty_restrictions(user):
    raw = make_key(user, scopes=None)
    body = bearer(raw).get(f"{URL}@current/").json()
    assert (body["scopes"], body["scoped_teams"], body["scoped_organizations"]) == (["*"], [], [])
    assert {type(v) for k in bearer(raw).get(URL).json() for v in (k["scopes"], k["scoped_teams"], k["scoped_organizations"])} == {list}


def test_null_restrictions_are_refused_not_stored(user):
    session = APIClient()
    session.force_login(user)
    response = session.post(URL, {"label": "x", "scoped_teams": None}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "null", "This field may not be null.", "scoped_teams")


@pytest.mark.django_db(transaction=True)
def test_migration_turns_stored_nulls_into_empty_arrays():
    executor = MigrationExecutor(connection)
    before, after = [("accounts", "0002_organization_is_ai_data_processing_approved")], [("accounts", "0004_personal_api_key_restrictions_not_null")]
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    User = old_apps.get_model("accounts", "User")
    OldKey = old_apps.get_model("accounts", "PersonalAPIKey")
    user = User.objects.create(email="old@example.com", distinct_id="old")
    OldKey.objects.create(id="legacy", user=user, label="old", secure_value="sha256$x", mask_value="phx_...x", scopes=["*"])
    assert OldKey.objects.get(id="legacy").scoped_teams is None
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(after)
    key = PersonalAPIKey.objects.get(id="legacy")
    assert key.scoped_teams == [] and key.scoped_organizations == []
    # Leave the schema whole for the tests after this one: migrating accounts back also unapplied
    # every other app's migrations that depend on it.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


def test_schema_types_key_restrictions_as_arrays(client):
    properties = client.get("/api/schema/?format=json").json()["components"]["schemas"]["PersonalAPIKey"]["properties"]
    for name in ("scopes", "scoped_teams", "scoped_organizations"):
        assert properties[name]["type"] == "array" and not properties[name].get("nullable"), name
    assert properties["value"]["description"] == "The key itself: only in the response that created or rolled it."
