"""Tenant x identity matrix over every API route of the URL conf.

One harness (as NetBox's generic API test cases): each route is called, with every method it
accepts, by each identity that must not reach the victim's data, with the victim's real ids in
the path. Each gets PostHog's status and error body, and no body ever carries the victim's data.
"""
import re

import pytest
from drf_spectacular.generators import EndpointEnumerator
from rest_framework.test import APIClient

from accounts.models import PersonalAPIKey
from actions.models import Action
from alerts.models import AlertConfiguration
from cohorts.models import Cohort
from exports.models import ExportedAsset
from groups.models import Group, GroupTypeMapping
from insight_variables.models import InsightVariable
from insights.models import Dashboard, Insight
from sharing.models import SharingConfiguration

from ..conftest import error
from ..factories import make_key, make_member, make_team

pytestmark = pytest.mark.django_db

SECRET = "victim-secret-7f3a"
PUBLIC_ROUTES = re.compile(r"^/api/schema/")  # the OpenAPI document and its viewers are public
NOT_AUTHENTICATED = error("authentication_error", "not_authenticated", "Authentication credentials were not provided.")
BAD_KEY = error("authentication_error", "authentication_failed", "Personal API key found in request Authorization header is invalid.")
NO_KEY_ACCESS = error("authentication_error", "permission_denied", "This action does not support Personal API Key access")
NO_PROJECT_ACCESS = error("authentication_error", "permission_denied", "You don't have access to the project.")


def routes():
    """(method, path template) of every API route."""
    found = []
    for path, _, method, _ in EndpointEnumerator().get_api_endpoints():
        if path.startswith("/api/") and not PUBLIC_ROUTES.match(path):
            found.append((method, path))
    return sorted(set(found))


@pytest.fixture
def world():
    """The victim's organization, team, member and objects, and an attacker in another organization."""
    victim_team = make_team(name="victim project")
    victim = make_member(victim_team)
    sibling_team = make_team(victim_team.organization, name="sibling")
    query = {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}}
    insight = Insight.objects.create(team=victim_team, name=f"{SECRET} insight", query=query, created_by=victim)
    shared_other = Insight.objects.create(team=victim_team, name="public insight", query=query, created_by=victim)
    dashboard = Dashboard.objects.create(team=victim_team, name=f"{SECRET} dashboard", created_by=victim)
    make_key(victim)
    victim_key_id = PersonalAPIKey.objects.get(user=victim).id
    share = SharingConfiguration.objects.create(team=victim_team, insight=shared_other, enabled=True)
    SharingConfiguration.objects.create(team=victim_team, insight=insight, enabled=True)
    alert = AlertConfiguration.objects.create(
        team=victim_team, insight=insight, name=f"{SECRET} alert", condition={"type": "absolute_value"}, created_by=victim
    )
    variable = InsightVariable.objects.create(team=victim_team, name=f"{SECRET} variable", code_name="v", type="String")
    export = ExportedAsset.objects.create(team=victim_team, insight=insight, export_format="text/csv",
                                          content=SECRET.encode(), created_by=victim)
    cohort = Cohort.objects.create(team=victim_team, name=f"{SECRET} cohort", is_static=True, version=0, created_by=victim)
    action = Action.objects.create(team=victim_team, name=f"{SECRET} action", steps_json=[{"event": SECRET}])
    GroupTypeMapping.objects.create(team=victim_team, project_id=victim_team.project_id, group_type="company", group_type_index=0,
                                    name_singular=f"{SECRET} company")
    Group.objects.create(team=victim_team, group_type_index=0, group_key=f"{SECRET} group", group_properties={"name": SECRET})
    attacker = make_member(make_team(name="attacker project"))
    ids = {
        "project_id": victim_team.id,
        "insight_id": insight.id,
        "password_id": "0" * 22,
        "query_id": "some-query",
        "alert": str(alert.id),
        "threshold": "00000000-0000-0000-0000-000000000000",
        "dashboard": dashboard.id,
        "dashboard_id": dashboard.id,
        "user__uuid": str(victim.uuid),
        "insight": insight.id,
        "key": victim_key_id,
        "user": "@me",  # the only user route
        "project": victim_team.id,
        "variable": variable.id,
        "export": export.id,
        "cohort": cohort.id,
        "action": action.id,
        "group_type_index": 0,
    }
    return {"victim_team": victim_team, "victim": victim, "sibling_team": sibling_team, "attacker": attacker,
            "share_token": share.access_token, "ids": ids, "counts": _counts(victim_team)}


def _counts(team):
    return (Insight.objects.filter(team=team, deleted=False).count(), Dashboard.objects.filter(team=team, deleted=False).count(),
            AlertConfiguration.objects.filter(team=team).count(), SharingConfiguration.objects.filter(team=team, enabled=True).count(),
            InsightVariable.objects.filter(team=team).count(), ExportedAsset.objects.filter(team=team).count(),
            Cohort.objects.filter(team=team, deleted=False).count(), Action.objects.filter(team=team, deleted=False).count(),
            GroupTypeMapping.objects.filter(project_id=team.project_id).count(), Group.objects.filter(team=team).count())


def _fill(path: str, ids: dict) -> str:
    def pk_for(match_path):
        for family, key in (("alerts", "alert"), ("thresholds", "threshold"), ("dashboards", "dashboard"), ("insights", "insight"),
                            ("personal_api_keys", "key"), ("users", "user"), ("projects", "project"),
                            ("insight_variables", "variable"), ("exports", "export"), ("cohorts", "cohort"),
                            ("actions", "action")):
            if f"/{family}/{{pk}}/" in match_path:
                return ids[key]
        raise AssertionError(f"no id for {match_path}")

    if "{pk}" in path:
        path = path.replace("{pk}", str(pk_for(path)))
    return re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)


def _call(api, method, url):
    send = getattr(api, method.lower())
    return send(url, {}, format="json") if method in ("POST", "PUT", "PATCH") else send(url)


def _bearer(key):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return api


def _session(user):
    api = APIClient()
    api.force_login(user)
    return api


def _is_team_route(path):
    return path.startswith(("/api/projects/{project_id}/", "/api/environments/{project_id}/")) or path == "/api/environments/{project_id}/"


IDENTITIES = ["no credentials", "bad key", "key without the scope", "key of another organization",
              "key restricted to another team", "session of a non-member", "share token of another insight"]


def _identity(identity, world):
    """The client of `identity` (made once per test) and a function: route -> expected (status, body)."""
    victim_team = world["victim_team"]
    team_only = lambda expected: lambda path: expected if _is_team_route(path) else (None, None)  # noqa: E731
    if identity == "no credentials":
        return APIClient(), lambda path: (401, NOT_AUTHENTICATED)
    if identity == "bad key":
        return _bearer("phx_" + "x" * 45), lambda path: (401, BAD_KEY)
    if identity == "key without the scope":
        # A member of the victim's team whose key holds an unrelated scope.
        return _bearer(make_key(world["victim"], scopes=["feature_flag:read"])), team_only((403, "missing scope"))
    if identity == "key of another organization":
        return _bearer(make_key(world["attacker"])), team_only((403, NO_PROJECT_ACCESS))
    if identity == "key restricted to another team":
        detail = f"API key does not have access to the requested project: ID {victim_team.id}."
        key = make_key(world["victim"], scoped_teams=[world["sibling_team"].id])
        return _bearer(key), team_only((403, error("authentication_error", "permission_denied", detail)))
    if identity == "session of a non-member":
        return _session(world["attacker"]), team_only((403, NO_PROJECT_ACCESS))
    if identity == "share token of another insight":
        return APIClient(), lambda path: ("share", None)
    raise AssertionError(identity)


@pytest.mark.parametrize("identity", IDENTITIES)
def test_no_identity_reaches_another_tenant(world, identity):
    problems = []
    api, expectation = _identity(identity, world)
    for method, template in routes():
        status, expected = expectation(template)
        url = _fill(template, world["ids"])
        if status == "share":
            url += ("&" if "?" in url else "?") + f"sharing_access_token={world['share_token']}"
        response = _call(api, method, url)
        body = response.content.decode("utf-8", "replace")
        where = f"{method} {template} -> {response.status_code}"
        if SECRET in body:
            problems.append(f"{where}: leaks the victim's data")
        if response.status_code >= 500:
            problems.append(f"{where}: server error")
        if status == "share":
            # Only the shared insight itself may be read; everything else is refused.
            if response.status_code not in (401, 403, 404, 405) and not (method == "GET" and template.endswith("/insights/")):
                problems.append(f"{where}: a share token of another insight was let through")
        elif status is None:
            # Routes outside a team (own keys, own user, project list): the caller's own data or a 403/404.
            if response.status_code not in (200, 201, 204, 400, 403, 404, 405):
                problems.append(f"{where}: unexpected status")
        elif response.status_code == 405:
            continue  # the route answers other methods only
        elif response.status_code != status:
            problems.append(f"{where}: expected {status}")
        elif expected == "missing scope":
            detail = response.json()
            scope_refused = detail["detail"].startswith("API key missing required scope '") and (detail["type"], detail["code"]) == (
                "authentication_error", "permission_denied")
            if not scope_refused and detail != NO_KEY_ACCESS:
                problems.append(f"{where}: {detail}")
        elif response.json() != expected and not (identity.startswith("key") and response.json() == NO_KEY_ACCESS):
            # Session-only actions refuse every key before looking at the team, as PostHog does.
            problems.append(f"{where}: {response.json()}")
    assert _counts(world["victim_team"]) == world["counts"], "a request changed the victim's data"
    assert not problems, "\n".join(problems)
