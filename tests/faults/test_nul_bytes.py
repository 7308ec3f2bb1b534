"""NUL characters never reach the database: 400 naming the part, on SQLite and PostgreSQL alike."""
import gzip
import json

import pytest

from accounts.models import PersonalAPIKey
from events.models import Event
from insights.models import Insight

from ..conftest import error

NUL_ERROR = dict(type_="validation_error", code="null_characters_not_allowed", detail="Null characters are not allowed.")


def insights_url(team, rest=""):
    return f"/api/projects/{team.id}/insights/{rest}"


@pytest.mark.parametrize("param", ["sharing_access_token", "search", "short_id", "date_from", "created_by"])
def test_nul_in_a_query_parameter_is_400(client, team, param):
    response = client.get(insights_url(team), {param: "\x00abc"})
    assert response.status_code == 400
    assert response.json() == error(**NUL_ERROR, attr=param)


def test_nul_in_an_unauthenticated_share_token_is_400(anon_client, team):
    response = anon_client.get(insights_url(team), {"sharing_access_token": "a\x00" * 20})
    assert response.status_code == 400
    assert response.json() == error(**NUL_ERROR, attr="sharing_access_token")


def test_nul_in_a_path_token_is_400(anon_client):
    response = anon_client.get("/shared/abc%00def")
    assert response.status_code == 400
    assert response.json() == error(**NUL_ERROR, attr="path")


def test_nul_in_a_header_is_400(anon_client, team):
    response = anon_client.get(insights_url(team), HTTP_AUTHORIZATION="Bearer phx_\x00abc")
    assert response.status_code == 400
    assert response.json() == error(**NUL_ERROR, attr="authorization")


def test_nul_in_a_json_body_is_400_naming_the_field_and_writes_nothing(client, team):
    body = {"name": "ok", "query": {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "a\x00b"}]}}}
    response = client.post(insights_url(team), body, format="json")
    assert response.status_code == 400
    assert response.json() == error(**NUL_ERROR, attr="query__source__series__0__event")
    assert not Insight.objects.exists()


def test_nul_in_a_json_key_is_400(client, team):
    response = client.post(insights_url(team), {"name": "ok", "filters": {"a\x00": 1}}, format="json")
    assert response.status_code == 400
    assert response.json() == error(**NUL_ERROR, attr="filters")


def test_nul_in_a_query_endpoint_body_is_400(client, team):
    body = {"query": {"kind": "HogQLQuery", "query": "select 1 -- \x00"}}
    response = client.post(f"/api/projects/{team.id}/query/", body, format="json")
    assert response.status_code == 400
    assert response.json() == error(**NUL_ERROR, attr="query__query")


def test_nul_in_a_form_body_is_400(client, team):
    response = client.post("/api/personal_api_keys/", {"label": "a\x00b", "scopes": "*"})
    assert response.status_code == 400
    assert response.json() == error(**NUL_ERROR, attr="label")
    assert PersonalAPIKey.objects.count() == 1  # the client's own key only


def test_capture_strips_nul_from_properties_instead_of_losing_the_event(anon_client, team):
    # An SDK cannot fix one bad character in a batch; dropping the batch would lose good events.
    batch = {"api_key": team.api_token, "batch": [{"event": "pay\x00ment", "distinct_id": "d\x001", "properties": {"k\x00": "v\x00w"}}]}
    body = gzip.compress(json.dumps(batch).encode())
    response = anon_client.post("/batch/", body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200
    event = Event.objects.get(team=team)
    assert (event.event, event.distinct_id) == ("payment", "d1")
    assert event.properties["k"] == "vw"
