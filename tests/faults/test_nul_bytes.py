"""NUL characters never reach the database: 400, on SQLite and PostgreSQL alike, whichever way
they arrive (query parameter, header, token, path, JSON or form body)."""
import gzip
import json

import pytest
from django.db import connection

from accounts.models import PersonalAPIKey
from events.models import Event
from insights.models import Insight

from ..conftest import error
from ..factories import make_team

NUL_ERROR = error("validation_error", "null_characters_not_allowed", "Null characters are not allowed.")


def insights_url(team, rest=""):
    return f"/api/projects/{team.id}/insights/{rest}"


@pytest.mark.parametrize("param,attr", [("sharing_access_token", None), ("short_id", "short_id")])
def test_nul_in_a_query_parameter_is_400(client, team, param, attr):
    # A list filter refuses it itself, naming the parameter; anything else is refused at the database boundary.
    response = client.get(insights_url(team), {param: "\x00abc"})
    assert response.status_code == 400
    assert response.json() == {**NUL_ERROR, "attr": attr}


def test_nul_in_an_unauthenticated_share_token_is_400(anon_client, team):
    response = anon_client.get(insights_url(team), {"sharing_access_token": "a\x00" * 20})
    assert response.status_code == 400
    assert response.json() == NUL_ERROR


def test_nul_in_a_public_share_path_is_400(anon_client, db):
    response = anon_client.get("/shared/abc%00def")
    assert response.status_code == 400
    assert response.json() == NUL_ERROR


def test_nul_in_a_session_cookie_is_never_looked_up(anon_client, team):
    anon_client.cookies["sessionid"] = "abc\x00def"
    response = anon_client.get(insights_url(team))
    assert response.status_code in (400, 401, 403)
    assert response.status_code != 500


def test_nul_in_a_capture_token_is_stripped_like_the_rest_of_the_payload(anon_client, db):
    response = anon_client.post("/batch/", {"api_key": "phc_\x00", "batch": [{"event": "e", "distinct_id": "d"}]}, format="json")
    assert response.status_code == 401
    assert not Event.objects.exists()


def test_nul_in_a_json_body_is_400_and_writes_nothing(client, team):
    body = {"name": "a\x00b", "query": {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "e"}]}}}
    response = client.post(insights_url(team), body, format="json")
    assert response.status_code == 400
    assert response.json() == {**NUL_ERROR, "attr": "name"}  # serializer fields name themselves
    assert not Insight.objects.exists()


def test_nul_in_a_json_key_is_400(client, team):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite stores JSON as text, where an escaped NUL is harmless")
    response = client.post(insights_url(team), {"name": "ok", "description": "d", "filters": {"a\x00": 1}}, format="json")
    assert response.status_code == 400
    assert response.json() == NUL_ERROR
    assert not Insight.objects.exists()


def test_nul_in_a_form_body_is_400(client, team):
    response = client.post("/api/personal_api_keys/", {"label": "a\x00b", "scopes": "*"})
    assert response.status_code == 400
    assert response.json() == {**NUL_ERROR, "attr": "label"}
    assert PersonalAPIKey.objects.count() == 1  # the client's own key only


def test_other_teams_data_is_not_reached_through_a_nul(client, team):
    other = make_team(name="other")
    response = client.get(insights_url(other), {"short_id": "\x00"})
    assert response.status_code == 403


def test_capture_strips_nul_from_properties_instead_of_losing_the_event(anon_client, team):
    # An SDK cannot fix one bad character in a batch; dropping the batch would lose good events.
    batch = {"api_key": team.api_token, "batch": [{"event": "pay\x00ment", "distinct_id": "d\x001", "properties": {"k\x00": "v\x00w"}}]}
    body = gzip.compress(json.dumps(batch).encode())
    response = anon_client.post("/batch/", body, content_type="application/json", HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200
    event = Event.objects.get(team=team)
    assert (event.event, event.distinct_id) == ("payment", "d1")
    assert event.properties["k"] == "vw"
