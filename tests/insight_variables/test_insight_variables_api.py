"""/api/projects/:id/insight_variables/ (and /api/environments/...): CRUD, code names, scopes and
how saved variables resolve in SQL insights (spec/vocabulary.md §6)."""
import pytest

from insight_variables.models import InsightVariable
from tests.conftest import error
from tests.factories import make_member, make_team
from tests.queries.events import events

pytestmark = pytest.mark.django_db

KEYS = ["id", "name", "type", "default_value", "created_by", "created_at", "code_name", "values", "is_multi", "values_query",
        "values_query_connection_id"]


@pytest.fixture
def url(team):
    return f"/api/projects/{team.id}/insight_variables/"


def create(client, url, **body):
    response = client.post(url, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_derives_the_code_name_and_returns_posthogs_fields(client, url, user):
    body = create(client, url, name="Event Name!", type="String", default_value="$pageview")
    assert list(body) == KEYS
    assert body["code_name"] == "event_name"
    assert body["created_by"] == user.id
    assert body["default_value"] == "$pageview" and body["is_multi"] is False and body["values_query"] is None


@pytest.mark.parametrize("name, code_name", [("My_var 2", "my_var_2"), ("Größe", "größe"), ("a-b.c", "abc")])
def test_code_name_rule(client, url, name, code_name):
    assert create(client, url, name=name, type="Number", default_value=1)["code_name"] == code_name


def test_renaming_keeps_the_code_name_and_code_name_is_read_only(client, url):
    variable = create(client, url, name="Limit", type="Number", default_value=10)
    response = client.patch(f"{url}{variable['id']}/", {"name": "Row limit", "code_name": "other"}, format="json")
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["code_name"]) == ("Row limit", "limit")


def test_duplicate_code_name_is_400_and_writes_nothing(client, url, team):
    create(client, url, name="Browser", type="String")
    response = client.post(url, {"name": "browser", "type": "String"}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", "Variable with this code name already exists")
    assert InsightVariable.objects.filter(team=team).count() == 1


def test_same_code_name_in_another_team_is_fine(client, url, team):
    other = make_team(team.organization, name="Other")
    InsightVariable.objects.create(team=other, name="Browser", code_name="browser", type="String")
    assert create(client, url, name="Browser", type="String")["code_name"] == "browser"


@pytest.mark.parametrize("body, attr", [({"name": "x", "type": "Colour"}, "type"), ({"type": "String"}, "name"), ({"name": "x"}, "type")])
def test_invalid_bodies_are_400(client, url, body, attr):
    response = client.post(url, body, format="json")
    assert response.status_code == 400
    assert response.json()["attr"] == attr


def test_list_values_are_stringified_and_objects_rejected(client, url):
    body = create(client, url, name="Plans", type="List", values=["free", 2, True, None], default_value=2, values_query="  ")
    assert body["values"] == ["free", "2", "true"]
    assert body["default_value"] == "2" and body["values_query"] is None
    multi = create(client, url, name="Many", type="List", values=["a", "b"], is_multi=True, default_value="a")
    assert multi["default_value"] == ["a"] and multi["is_multi"] is True
    response = client.post(url, {"name": "Bad", "type": "List", "values": ["a", {"b": 1}]}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", "List variable values must be strings or numbers "
                                    "(got an object at index 1). Enter each value as plain text or a number.", "values")


def test_non_list_types_are_never_multi(client, url):
    body = create(client, url, name="Flag", type="Boolean", default_value=True, is_multi=True, values_query="select 1")
    assert (body["is_multi"], body["values_query"]) == (False, None)


@pytest.mark.parametrize("family", ["projects", "environments"])
def test_list_is_page_numbered_and_team_only(client, team, family):
    url = f"/api/{family}/{team.id}/insight_variables/"
    first = create(client, url, name="A", type="String")
    other = make_team(team.organization, name="Other")
    InsightVariable.objects.create(team=other, name="B", code_name="b", type="String")
    body = client.get(url).json()
    assert list(body) == ["count", "next", "previous", "results"]
    assert body["count"] == 1 and [v["id"] for v in body["results"]] == [first["id"]]


def test_retrieve_update_and_hard_delete(client, url, team):
    variable = create(client, url, name="N", type="Number", default_value=1)
    assert client.get(f"{url}{variable['id']}/").json() == variable
    put = client.put(f"{url}{variable['id']}/", {"name": "N", "type": "Number", "default_value": 5}, format="json")
    assert put.status_code == 200 and put.json()["default_value"] == 5
    assert client.delete(f"{url}{variable['id']}/").status_code == 204
    assert not InsightVariable.objects.filter(team=team).exists()
    assert client.get(f"{url}{variable['id']}/").status_code == 404


def test_another_teams_variable_is_404_and_another_organizations_project_403(client, url, team):
    other = make_team(team.organization, name="Other")
    foreign = InsightVariable.objects.create(team=other, name="B", code_name="b", type="String")
    response = client.get(f"{url}{foreign.id}/")
    assert response.status_code == 404
    assert response.json() == error("invalid_request", "not_found", "No InsightVariable matches the given query.")
    stranger = make_team(name="Stranger")
    response = client.get(f"/api/projects/{stranger.id}/insight_variables/")
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", "You don't have access to the project.")


def test_scopes(team, user, url, api_client):
    reader = api_client(["insight_variable:read"], user=user)
    assert reader.get(url).status_code == 200
    response = reader.post(url, {"name": "x", "type": "String"}, format="json")
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", "API key missing required scope 'insight_variable:write'")
    response = api_client(["insight:read"], user=user).get(url)
    assert response.json() == error("authentication_error", "permission_denied", "API key missing required scope 'insight_variable:read'")
    assert api_client(["insight_variable:write"], user=user).post(url, {"name": "x", "type": "String"}, format="json").status_code == 201


# --- Saved variables in SQL insights ---------------------------------------------------------

@pytest.fixture
def browsers(team):
    events(team, ("$pageview", "a", "2024-01-05 10:00", {"$browser": "Chrome"}), ("$pageview", "b", "2024-01-06 10:00", {"$browser": "Chrome"}),
           ("$pageview", "c", "2024-01-07 10:00", {"$browser": "Safari"}))


def sql(variable, entry=None):
    entry = {"variableId": str(variable.id), "code_name": variable.code_name, **(entry or {})}
    return {"kind": "HogQLQuery", "query": "select count() from events where properties.$browser = {variables.browser}",
            "variables": {str(variable.id): entry}}


def run(client, team, query, **body):
    response = client.post(f"/api/projects/{team.id}/query/", {"query": query, **body}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_a_query_without_a_value_takes_the_saved_default(client, team, browsers):
    variable = InsightVariable.objects.create(team=team, name="Browser", code_name="browser", type="String", default_value="Chrome")
    assert run(client, team, sql(variable)) == [[2]]
    assert run(client, team, sql(variable, {"value": "Safari"})) == [[1]]
    variable.default_value = "Safari"
    variable.save()
    assert run(client, team, sql(variable)) == [[1]]  # a new default is a new cache key


def test_values_are_bound_never_spliced(client, team, browsers):
    variable = InsightVariable.objects.create(team=team, name="Browser", code_name="browser", type="String", default_value="x' or '1'='1")
    assert run(client, team, sql(variable)) == [[0]]


def test_variables_override_applies_over_saved_defaults(client, team, browsers):
    variable = InsightVariable.objects.create(team=team, name="Browser", code_name="browser", type="String", default_value="Chrome")
    override = {str(variable.id): {"code_name": "browser", "variableId": str(variable.id), "value": "Safari"}}
    assert run(client, team, sql(variable), variables_override=override) == [[1]]
    # An override saved under an older id of the variable applies through its code name.
    assert run(client, team, sql(variable), variables_override={"stale-id": {"code_name": "browser", "value": "Safari"}}) == [[1]]
    # No value in the override: the saved default.
    assert run(client, team, sql(variable), variables_override={str(variable.id): {"code_name": "browser"}}) == [[2]]


def test_is_null_and_list_variables(client, team, browsers):
    variable = InsightVariable.objects.create(team=team, name="Browser", code_name="browser", type="String", default_value="Chrome")
    assert run(client, team, sql(variable, {"isNull": True})) == [[0]]
    browsers_list = InsightVariable.objects.create(team=team, name="Browsers", code_name="browsers", type="List", is_multi=True,
                                                   default_value=["Chrome", "Safari"])
    query = {"kind": "HogQLQuery", "query": "select count() from events where properties.$browser in {variables.browsers}",
             "variables": {str(browsers_list.id): {"variableId": str(browsers_list.id), "code_name": "browsers"}}}
    assert run(client, team, query) == [[3]]


def test_insight_retrieve_numbers_change_under_variables(client, team, browsers):
    from tests.insights.conftest import make_insight

    variable = InsightVariable.objects.create(team=team, name="Browser", code_name="browser", type="String", default_value="Chrome")
    insight = make_insight(team, query={"kind": "DataVisualizationNode", "source": sql(variable)})
    url = f"/api/projects/{team.id}/insights/{insight.id}/"
    assert client.get(url, {"refresh": "blocking"}).json()["result"] == [[2]]
    override = '{"%s": {"code_name": "browser", "value": "Safari"}}' % variable.id
    assert client.get(url, {"refresh": "blocking", "variables_override": override}).json()["result"] == [[1]]


def test_another_teams_saved_variable_is_not_used(client, team, browsers):
    other = make_team(team.organization, name="Other")
    make_member(other)
    foreign = InsightVariable.objects.create(team=other, name="Browser", code_name="browser", type="String", default_value="Chrome")
    assert run(client, team, sql(foreign)) == [[0]]  # no saved variable of this team: the entry's own (absent) value


def test_relative_date_variables_become_absolute_dates(client, team):
    import re

    variable = InsightVariable.objects.create(team=team, name="Since", code_name="since", type="Date", default_value="-7d")
    query = {"kind": "HogQLQuery", "query": "select {variables.since}",
             "variables": {str(variable.id): {"variableId": str(variable.id), "code_name": "since"}}}
    [[value]] = run(client, team, query)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", value)
