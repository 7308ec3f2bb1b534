"""Capture endpoints: payload shapes, tokens, errors, timestamps, atomicity, de-duplication."""
import base64
import json
from datetime import timedelta
from urllib.parse import quote, urlencode

import pytest
from django.test import Client
from rest_framework.test import APIClient

from events import capture
from events.models import Event, Person
from tests.factories import make_team

from .helpers import T0, capture_error, gzipped, message, minutes, post_batch, post_raw

pytestmark = pytest.mark.django_db

CAPTURE_PATHS = ["/batch/", "/batch", "/capture/", "/capture", "/e/", "/e", "/i/v0/e/", "/i/v0/e"]


def stored(team):
    return list(Event.objects.filter(team=team).order_by("timestamp", "id"))


@pytest.mark.parametrize("path", CAPTURE_PATHS)
def test_posthog_python_batch_on_every_capture_path(team, path):
    msg = message("signed up", "user-1", {"plan": "pro", "$session_id": "s-1"})
    response = post_batch(team, [msg], path=path)
    assert response.status_code == 200
    assert response.json() == {"status": 1}
    [event] = stored(team)
    assert str(event.uuid) == msg["uuid"]
    assert (event.event, event.distinct_id, event.timestamp, event.session_id) == ("signed up", "user-1", T0, "s-1")
    assert event.properties == {"$lib": "posthog-python", "$lib_version": "7.91.1", "plan": "pro", "$session_id": "s-1", "$ip": "127.0.0.1"}
    assert event.person.properties == {}
    assert event.created_at > event.timestamp


def test_single_event_list_and_form_bodies(team):
    single = {**message("a", "d1"), "api_key": team.api_token}
    assert post_raw("/e/", json.dumps(single)).status_code == 200
    # posthog-js: a list of events with the token in their properties
    as_list = [message("b", "d1", {"token": team.api_token}), message("c", "d1", {"token": team.api_token})]
    assert post_raw("/e/", json.dumps(as_list)).status_code == 200
    # legacy form body: data= base64 JSON
    data = base64.b64encode(json.dumps(message("d", "d1")).encode()).decode()
    form = urlencode({"data": data, "api_key": team.api_token})
    assert post_raw("/capture/", form, content_type="application/x-www-form-urlencoded").status_code == 200
    # multipart form (old server-side libraries), data= as JSON
    assert Client().post("/capture/", {"data": json.dumps([message("f", "d1")]), "api_key": team.api_token}).status_code == 200
    # image-beacon fallback: GET /e/?data=<json>
    get_data = quote(json.dumps(message("e", "d1", {"token": team.api_token})))
    assert APIClient().get(f"/e/?data={get_data}").status_code == 200
    assert sorted(e.event for e in stored(team)) == ["a", "b", "c", "d", "e", "f"]


@pytest.mark.parametrize(
    "where",
    ["body_token", "query_token", "query_api_key", "bearer", "dollar_token"],
)
def test_token_locations(team, where):
    body = {"batch": [message()]}
    path = "/batch/"
    headers = {}
    if where == "body_token":
        body["token"] = team.api_token
    elif where == "query_token":
        path += f"?token={team.api_token}"
    elif where == "query_api_key":
        path += f"?api_key={team.api_token}"
    elif where == "bearer":
        headers["HTTP_AUTHORIZATION"] = f"Bearer {team.api_token}"
    else:
        body = {**message(), "$token": team.api_token}
    response = post_raw(path, json.dumps(body), **headers)
    assert response.status_code == 200
    assert Event.objects.filter(team=team).count() == 1


def test_gzip_by_header_query_param_and_magic_bytes(team):
    payload = {"api_key": team.api_token, "batch": [message("g1")]}
    assert post_raw("/batch/", gzipped(payload), HTTP_CONTENT_ENCODING="gzip").status_code == 200
    payload["batch"] = [message("g2")]
    assert post_raw("/batch/?compression=gzip-js", gzipped(payload), content_type="text/plain").status_code == 200
    payload["batch"] = [message("g3")]
    assert post_raw("/i/v0/e/", gzipped(payload), content_type="").status_code == 200
    assert sorted(e.event for e in stored(team)) == ["g1", "g2", "g3"]


def test_corrupt_or_truncated_gzip_is_400(team):
    corrupt = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 20
    response = post_raw("/batch/", corrupt, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert response.json() == capture_error(
        "Malformed request data: Failed to decompress data. Error -3 while decompressing data: invalid block type"
    )
    truncated = gzipped({"api_key": team.api_token, "batch": [message()]})[:-12]
    response = post_raw("/batch/", truncated, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert response.json() == capture_error("Malformed request data: Failed to decompress data. The gzip stream is truncated.")
    assert Event.objects.count() == 0


def test_malformed_json_is_400(team):
    response = post_raw("/capture/", '{"event": "incorrect json with trailing comma",}')
    assert response.status_code == 400
    assert response.json() == capture_error(
        "Malformed request data: Invalid JSON: Expecting property name enclosed in double quotes: line 1 column 48 (char 47)"
    )


@pytest.mark.parametrize("body", [b"", b"{}", b"[]"])
def test_empty_body_is_400_no_data(team, body):
    response = post_raw("/e/", body)
    assert response.status_code == 400
    assert response.json() == capture_error(
        "No data found. Make sure to use a POST request when sending the payload in the body of the request.", code="no_data"
    )


def test_body_over_the_limit_is_413(team, monkeypatch):
    monkeypatch.setattr(capture, "MAX_BODY_BYTES", 1000)
    big = {"api_key": team.api_token, "batch": [message(properties={"blob": "x" * 2000})]}
    response = post_batch(team, big["batch"])
    assert response.status_code == 413
    assert response.json() == capture_error("Request body exceeds the limit of 1000 bytes.", "payload_too_large", "invalid_request")
    # a small gzip body that inflates past the limit is refused too
    response = post_raw("/batch/", gzipped(big), HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413
    assert Event.objects.count() == 0


def test_missing_token_is_401(team):
    response = post_raw("/batch/", json.dumps({"batch": [message()]}))
    assert response.status_code == 401
    assert response.json() == capture_error(
        "API key not provided. You can find your project API key in PostHog project settings.",
        "missing_api_key",
        "authentication_error",
    )


@pytest.mark.parametrize(
    "token,detail,code",
    [
        ("phc_unknown", "Project API key invalid. You can find your project API key in PostHog project settings.", "invalid_api_key"),
        ({"some": "object"}, "Provided API key is not valid: not_string", "not_string"),
        ("phx_" + "a" * 40, "Provided API key is not valid: personal_api_key", "personal_api_key"),
    ],
)
def test_bad_token_is_401(team, token, detail, code):
    response = post_raw("/batch/", json.dumps({"api_key": token, "batch": [message()]}))
    assert response.status_code == 401
    assert response.json() == capture_error(detail, code, "authentication_error")
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    "bad_event,detail",
    [
        ({"event": "x", "properties": {}}, 'Invalid payload: All events must have the event field "distinct_id"!'),
        ({"event": "x", "distinct_id": None}, 'Invalid payload: Event field "distinct_id" should not be blank!'),
        ({"event": "x", "distinct_id": "  "}, 'Invalid payload: Event field "distinct_id" should not be blank!'),
        ({"distinct_id": "d"}, 'Invalid payload: All events must have the event name field "event"!'),
        ({"event": 12, "distinct_id": "d"}, 'Invalid payload: All events must have the event name field "event"!'),
        ({"event": "x", "distinct_id": "d", "uuid": "invalid_uuid"}, 'Invalid payload: Event field "uuid" is not a valid UUID!'),
        ({"event": "x", "distinct_id": "d", "properties": [1]}, "Invalid payload: Properties must be a JSON object, received list!"),
        ({"event": "x", "distinct_id": "d", "offset": "soon"}, 'Invalid payload: Event field "offset" must be a number!'),
        (None, "Invalid payload: some events are null"),
        ("an event", "Invalid payload: All events must be dictionaries not 'str'!"),
    ],
)
def test_invalid_event_rejects_the_whole_request(team, bad_event, detail):
    response = post_batch(team, [message("fine"), bad_event, message("also fine")])
    assert response.status_code == 400
    assert response.json() == capture_error(detail)
    assert Event.objects.count() == 0
    assert Person.objects.count() == 0


def test_batch_sent_as_a_json_string_is_400(team):
    response = post_raw("/batch/", json.dumps({"api_key": team.api_token, "batch": json.dumps([message()])}))
    assert response.status_code == 400
    assert response.json() == capture_error("Invalid payload: All events must be dictionaries not 'str'!")


def test_empty_event_name_and_recordings_are_accepted_but_not_stored(team):
    response = post_batch(team, [message(""), message("$snapshot"), message("$performance_event"), message("kept")])
    assert response.status_code == 200
    assert [e.event for e in stored(team)] == ["kept"]


def test_retried_events_are_stored_once(team):
    batch = [message("a"), message("b")]
    assert post_batch(team, batch).status_code == 200
    assert post_batch(team, batch).status_code == 200  # SDK retry after a timeout
    assert post_batch(team, [batch[0], batch[0]]).status_code == 200  # duplicate inside one batch
    assert Event.objects.filter(team=team).count() == 2


def test_a_uuid_in_another_spelling_is_the_same_event(team):
    msg = message()
    spellings = [msg["uuid"].upper(), "{" + msg["uuid"] + "}", msg["uuid"].replace("-", ""), f"urn:uuid:{msg['uuid']}"]
    assert post_batch(team, [msg]).status_code == 200
    assert post_batch(team, [{**msg, "uuid": spelling} for spelling in spellings]).status_code == 200
    assert [str(e.uuid) for e in stored(team)] == [msg["uuid"]]


def test_same_uuid_in_two_teams_is_two_events(team):
    other = make_team()
    msg = message()
    assert post_batch(team, [msg]).status_code == 200
    assert post_batch(other, [msg]).status_code == 200
    assert Event.objects.filter(uuid=msg["uuid"]).count() == 2


def test_events_go_to_the_token_team_only(team):
    other = make_team()
    post_batch(team, [message("mine", "shared-id")])
    post_batch(other, [message("theirs", "shared-id")])
    assert [e.event for e in stored(team)] == ["mine"]
    assert [e.event for e in stored(other)] == ["theirs"]
    mine, theirs = Person.objects.get(team=team), Person.objects.get(team=other)
    assert mine.pk != theirs.pk
    assert stored(team)[0].person_id == mine.pk and stored(other)[0].person_id == theirs.pk


class TestTimestamps:
    def test_sent_at_corrects_client_clock_skew(self, team):
        # client clock is 2 hours fast; the event happened 10 minutes before the send
        client_now = T0 + timedelta(hours=2)
        post_batch(team, [message(timestamp=client_now - minutes(10))], sent_at=client_now)
        [event] = stored(team)
        assert event.timestamp == event.created_at - minutes(10)

    def test_sent_at_camel_case_and_ignore_sent_at(self, team):
        post_batch(team, [message("skewed", timestamp=T0)], sentAt=(T0 + minutes(5)).isoformat())
        post_batch(team, [message("kept", timestamp=T0, properties={"$ignore_sent_at": True})], sent_at=T0 + minutes(5))
        skewed, kept = (Event.objects.get(team=team, event=name) for name in ("skewed", "kept"))
        assert skewed.timestamp == skewed.created_at - minutes(5)
        assert kept.timestamp == T0

    def test_js_underscore_query_param_is_the_send_time(self, team):
        sent_ms = int((T0 + minutes(3)).timestamp() * 1000)
        body = json.dumps([message(timestamp=T0, properties={"token": team.api_token})])
        post_raw(f"/e/?_={sent_ms}", body)
        [event] = stored(team)
        assert event.timestamp == event.created_at - minutes(3)

    def test_offset_without_timestamp(self, team):
        post_batch(team, [message(timestamp=None, offset=1500)])
        [event] = stored(team)
        assert event.timestamp == event.created_at - timedelta(milliseconds=1500)

    @pytest.mark.parametrize("timestamp", [None, "not a date", "2024-13-45T00:00:00Z", True])
    def test_missing_or_invalid_timestamp_is_server_time(self, team, timestamp):
        post_batch(team, [message(timestamp=timestamp)])
        [event] = stored(team)
        assert event.timestamp == event.created_at

    def test_far_future_timestamp_is_server_time(self, team):
        post_batch(team, [message("future", timestamp="2999-01-01T00:00:00Z")])
        [event] = stored(team)
        assert event.timestamp == event.created_at

    def test_timestamp_formats(self, team):
        post_batch(team, [message("naive", timestamp="2024-03-01T12:00:00"), message("offset", timestamp="2024-03-01T14:00:00+02:00"), message("millis", timestamp=int(T0.timestamp() * 1000))])
        assert {e.event: e.timestamp for e in stored(team)} == {"naive": T0, "offset": T0, "millis": T0}


def test_session_id_column(team):
    post_batch(team, [message("a", properties={"$session_id": "0190-abc"}), message("b"), message("c", properties={"$session_id": 42})])
    assert {e.event: e.session_id for e in stored(team)} == {"a": "0190-abc", "b": "", "c": "42"}


def test_top_level_set_moves_into_properties(team):
    msg = message("$set", "u1", **{"$set": {"email": "a@example.com"}, "$set_once": {"first": "x"}})
    post_batch(team, [msg])
    [event] = stored(team)
    assert event.properties["$set"] == {"email": "a@example.com"}
    assert event.properties["$set_once"] == {"first": "x"}
    assert event.person.properties == {"email": "a@example.com", "first": "x"}


def test_distinct_id_sources_and_truncation(team):
    post_batch(team, [{"event": "a", "properties": {"distinct_id": 42}}, {"event": "b", "$distinct_id": "x" * 250}])
    assert {e.event: e.distinct_id for e in stored(team)} == {"a": "42", "b": "x" * 200}


def test_values_no_database_can_store_are_cleaned(team):
    body = '{"api_key": "%s", "batch": [{"event": "nul\\u0000", "distinct_id": "d\\u0000", "properties": {"k\\u0000": "v\\u0000", "lone": "\\ud800", "nan": NaN, "big": 1e999}}]}' % team.api_token
    response = post_raw("/batch/", body)
    assert response.status_code == 200
    [event] = stored(team)
    assert (event.event, event.distinct_id) == ("nul", "d")
    assert event.properties == {"k": "v", "lone": "?", "nan": None, "big": None, "$ip": "127.0.0.1"}


def test_ip_from_forwarded_for_and_explicit_ip_wins(team):
    APIClient().post("/batch/", json.dumps({"api_key": team.api_token, "batch": [message("a")]}), content_type="application/json", HTTP_X_FORWARDED_FOR="1.2.3.4:5555, 10.0.0.1")
    post_batch(team, [message("b", properties={"$ip": "5.6.7.8"})])
    assert {e.event: e.properties["$ip"] for e in stored(team)} == {"a": "1.2.3.4", "b": "5.6.7.8"}


def test_csrf_exempt_and_cors(team):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/e/", json.dumps({**message(), "api_key": team.api_token}), content_type="application/json", HTTP_ORIGIN="https://shop.example.com"
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert response["Access-Control-Allow-Credentials"] == "true"
    preflight = client.options("/e/", HTTP_ORIGIN="https://shop.example.com", HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type")
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Methods"] == "GET, POST, OPTIONS"
    assert preflight["Access-Control-Allow-Headers"] == "content-type"


def test_personal_api_key_session_is_not_needed_or_used(team, client):
    # an authenticated API client posts like any SDK: the token decides the team
    response = client.post("/batch/", {"api_key": team.api_token, "batch": [message()]}, format="json")
    assert response.status_code == 200
    assert Event.objects.filter(team=team).count() == 1


def test_one_request_is_a_few_queries_whatever_its_size(team, django_assert_max_num_queries):
    post_batch(team, [message(distinct_id=f"known-{i}") for i in range(20)])
    batch = [message(distinct_id=f"known-{i % 20}", properties={"$set": {"n": i}}) for i in range(50)]
    batch += [message(distinct_id=f"new-{i}", properties={"$set_once": {"first": i}}) for i in range(50)]
    with django_assert_max_num_queries(12):
        assert post_batch(team, batch).status_code == 200
    assert Event.objects.filter(team=team).count() == 120
    assert Person.objects.filter(team=team).count() == 70


def test_schema_documents_the_capture_endpoints(client):
    schema = client.get("/api/schema/?format=json").json()
    for path, operation_id in [("/batch/", "capture_batch_create"), ("/capture/", "capture_capture_create"), ("/e/", "capture_e_create"), ("/i/v0/e/", "capture_i_v0_e_create")]:
        operation = schema["paths"][path]["post"]
        assert operation["operationId"] == operation_id
        assert set(operation["responses"]) == {"200", "400", "401", "413", "503"}
        assert "security" not in operation  # the project token in the body, no user credentials
        assert operation["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/CaptureRequest"}
    schemas = schema["components"]["schemas"]
    assert schemas["CaptureRequest"]["oneOf"] == [
        {"$ref": "#/components/schemas/CaptureBatchRequest"},
        {"$ref": "#/components/schemas/CaptureEventRequest"},
        {"type": "array", "items": {"$ref": "#/components/schemas/CaptureEventRequest"}},
    ]
    assert schemas["CaptureBatchRequest"]["required"] == ["api_key", "batch"]
