"""The cohorts REST API on the wire: shapes, status codes, error bodies, scopes, tenants, query counts."""
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activity.models import ActivityLog
from cohorts.models import Cohort
from tests.conftest import error
from tests.factories import make_environment, make_team
from tests.queries.events import person

pytestmark = pytest.mark.django_db

PRO = {"type": "person", "key": "plan", "operator": "exact", "value": "pro"}
FILTERS = {"properties": {"type": "OR", "values": [{"type": "AND", "values": [PRO]}]}}
KEYS = {"id", "name", "description", "groups", "deleted", "filters", "query", "is_calculating", "created_by", "created_at",
        "last_calculation", "errors_calculating", "count", "is_static", "cohort_type", "experiment_set"}


def csv_file(text: str, name="ids.csv"):
    upload = io.BytesIO(text.encode() if isinstance(text, str) else text)
    upload.name = name
    return upload


@pytest.fixture
def pros(team):
    return [person(team, f"pro{n}", properties={"plan": "pro", "email": f"pro{n}@x.com"}) for n in range(3)] + [
        person(team, "free", properties={"plan": "free", "email": "free@x.com"})]


def test_create_dynamic_cohort(client, cohorts_url, pros, user):
    response = client.post(cohorts_url, {"name": "Pros", "filters": FILTERS}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == KEYS
    assert (body["name"], body["filters"], body["is_static"], body["is_calculating"], body["groups"], body["experiment_set"]) == (
        "Pros", FILTERS, False, True, [], [])
    assert body["created_by"]["email"] == user.email
    stored = client.get(f"{cohorts_url}{body['id']}/").json()
    assert (stored["count"], stored["is_calculating"], stored["errors_calculating"]) == (3, False, 0)
    assert ActivityLog.objects.filter(scope="Cohort", item_id=str(body["id"]), activity="created").count() == 1


def test_list_newest_first_with_filters(client, cohorts_url, make_cohort, team, user):
    first = make_cohort(name="Alpha", filters=FILTERS)
    static = client.post(cohorts_url, {"name": "Listed beta", "is_static": True}, format="json").json()
    behavioral = make_cohort(name="Gamma", filters={"properties": {"type": "AND", "values": [
        {"type": "behavioral", "key": "$pageview", "value": "performed_event", "event_type": "events", "time_value": 7, "time_interval": "day"}]}})
    referring = make_cohort(name="Delta", filters={"properties": {"type": "AND", "values": [{"type": "cohort", "key": "id", "value": behavioral["id"]}]}})
    body = client.get(cohorts_url).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert [item["id"] for item in body["results"]] == [referring["id"], behavioral["id"], static["id"], first["id"]]
    ids = lambda query: [item["id"] for item in client.get(f"{cohorts_url}?{query}").json()["results"]]  # noqa: E731
    assert ids("type=static") == [static["id"]]
    assert ids("type=dynamic") == [referring["id"], behavioral["id"], first["id"]]
    assert ids("search=BETA") == [static["id"]]
    assert ids("hide_behavioral_cohorts=true") == [static["id"], first["id"]]
    assert ids(f"created_by_id={user.id}") == [referring["id"], behavioral["id"], static["id"], first["id"]]


def test_list_query_count_does_not_grow(client, cohorts_url, make_cohort, django_assert_max_num_queries):
    for n in range(2):
        make_cohort(name=f"c{n}", filters=FILTERS)
    with CaptureQueriesContext(connection) as few:
        client.get(cohorts_url)
    baseline = len(few.captured_queries)  # read now: each request resets the query log
    for n in range(6):
        make_cohort(name=f"more{n}", filters=FILTERS)
    with django_assert_max_num_queries(baseline):
        assert client.get(cohorts_url).json()["count"] == 8


def test_cohorts_are_project_scoped_and_other_teams_are_404(client, cohorts_url, make_cohort, team):
    cohort = make_cohort(filters=FILTERS)
    environment = make_environment(team)
    assert client.get(f"/api/environments/{environment.id}/cohorts/{cohort['id']}/").status_code == 200
    foreign = Cohort.objects.create(team=make_team(name="other"), name="foreign", filters=FILTERS)
    for method in ("get", "patch"):
        response = getattr(client, method)(f"{cohorts_url}{foreign.id}/", {}, format="json")
        assert response.status_code == 404
        assert response.json() == error("invalid_request", "not_found", "No Cohort matches the given query.")
    assert client.get(f"{cohorts_url}{foreign.id}/persons/").status_code == 404


def test_soft_delete_and_no_hard_delete(client, cohorts_url, make_cohort):
    cohort = make_cohort(filters=FILTERS)
    response = client.delete(f"{cohorts_url}{cohort['id']}/")
    assert response.status_code == 405
    assert response.json() == error("invalid_request", "method_not_allowed", 'Method "DELETE" not allowed.')
    assert client.patch(f"{cohorts_url}{cohort['id']}/", {"deleted": True}, format="json").json()["deleted"] is True
    assert client.get(f"{cohorts_url}{cohort['id']}/").status_code == 404
    assert client.get(cohorts_url).json()["count"] == 0
    assert ActivityLog.objects.filter(scope="Cohort", item_id=str(cohort["id"]), activity="deleted").count() == 1


def test_null_legacy_groups_are_no_groups(client, cohorts_url, make_cohort):
    # Found by the schema fuzzer: a form body with groups=null was a 500 (the column holds a list).
    form = "name=n&groups=null&filters=null&query=null&is_static=false"
    created = client.post(cohorts_url, form, content_type="application/x-www-form-urlencoded")
    assert created.status_code == 201 and created.json()["groups"] == []
    cohort = make_cohort(filters=FILTERS)
    for method in (client.patch, client.put):
        response = method(f"{cohorts_url}{cohort['id']}/", form, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 200 and response.json()["groups"] == []
    response = client.patch(f"{cohorts_url}{cohort['id']}/", {"groups": None}, format="json")  # JSON null: a clear 400
    assert response.status_code == 400
    assert response.json() == error("validation_error", "null", "This field may not be null.", "groups")


def test_patch_filters_recalculates(client, cohorts_url, make_cohort, pros):
    cohort = make_cohort(filters=FILTERS)
    free = {"properties": {"type": "AND", "values": [{**PRO, "value": "free"}]}}
    assert client.patch(f"{cohorts_url}{cohort['id']}/", {"filters": free}, format="json").status_code == 200
    assert client.get(f"{cohorts_url}{cohort['id']}/").json()["count"] == 1
    entry = ActivityLog.objects.filter(scope="Cohort", activity="updated").get()
    assert [change["field"] for change in entry.detail["changes"]] == ["filters"]


@pytest.mark.parametrize("body, attr, detail", [
    ({"filters": {"nope": 1}}, "filters", "Must contain a 'properties' key with type and values"),
    ({"filters": {"properties": {"type": "AND"}}}, "filters", "Must contain a 'properties' key with type and values"),
    ({"filters": {"properties": {"type": "AND", "values": [{"type": "person", "key": "plan"}]}}}, "filters",
     "Missing required keys for person filter: value, operator (properties.values.0.person)"),
    ({"filters": {"properties": {"type": "AND", "values": [{"type": "event", "key": "plan", "value": 1, "operator": "exact"}]}}}, "filters",
     None),
    ({"filters": {"properties": {"type": "AND", "values": [{**PRO, "extra": 1}]}}}, "filters", None),
    ({"filters": {"properties": {"type": "AND", "values": [{"type": "behavioral", "key": "$pageview", "value": "performed_event_multiple",
                                                              "operator": "between", "time_value": 1, "time_interval": "day"}]}}},
     "filters", "count_operator must be gte, lte, eq, or None (properties.values.0.behavioral)"),
    ({"filters": {"properties": {"type": "AND", "values": [{"type": "behavioral", "key": "$pageview", "value": "stopped_performing_event",
                                                              "time_value": 1, "time_interval": "day"}]}}},
     "filters", "Behavioral filters (stopped_performing_event) need seq_time_value and seq_time_interval."),
    ({"filters": {"properties": {"type": "AND", "values": [{"type": "behavioral", "key": "$pageview", "value": "performed_event"}]}}},
     "filters", "Behavioral filters (performed_event) need time_value and time_interval, or explicit_datetime."),
    ({"filters": {"properties": {"type": "AND", "values": [{"type": "cohort", "key": "id", "value": 999999}]}}}, "filters",
     "Invalid Cohort ID in filter"),
    ({"filters": {"properties": {"type": "AND", "values": [{"type": "person", "key": "x", "operator": "regex", "value": "("}]}}},
     "filters", "Invalid regular expression '(': missing ), unterminated subpattern at position 0"),
    ({"filters": FILTERS, "query": {"kind": "HogQLQuery", "query": "select 1"}}, None, "Cannot set both query and filters at the same time."),
    ({"query": {"kind": "HogQLQuery", "query": "select 1"}}, None, "Cannot create a dynamic cohort with a query. Set is_static to true."),
    ({"cohort_type": "nope", "filters": FILTERS}, "cohort_type", '"nope" is not a valid choice.'),
])
def test_invalid_cohorts_are_400(client, cohorts_url, body, attr, detail):
    response = client.post(cohorts_url, {"name": "bad", **body}, format="json")
    assert response.status_code == 400, response.json()
    got = response.json()
    assert (got["type"], got["code"], got["attr"]) == ("validation_error", "invalid_choice" if attr == "cohort_type" else "invalid_input", attr)
    if detail:
        assert got["detail"] == detail
    assert Cohort.objects.count() == 0


def test_reference_loops_are_refused(client, cohorts_url, make_cohort):
    first = make_cohort(filters=FILTERS)
    second = make_cohort(filters={"properties": {"type": "AND", "values": [{"type": "cohort", "key": "id", "value": first["id"]}]}})
    loop = {"properties": {"type": "AND", "values": [{"type": "cohort", "key": "id", "value": second["id"]}]}}
    response = client.patch(f"{cohorts_url}{first['id']}/", {"filters": loop}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", "Cohorts cannot reference other cohorts in a loop.", "filters")


# --- Static cohorts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [
    "pro0\npro1\nnobody\n",                              # one column: distinct ids, first row included
    "\n\ndistinct-id-less\npro0\npro1\n",                # leading empty rows skipped
    "email\npro0@x.com\npro1@x.com\n",                   # email header
    "name,distinct_id\nA,pro0\nB,pro1\nC,\n",            # multi-column by header
    "e-mail,distinct_id\nfree@x.com,pro0\npro1@x.com,pro1\n",  # distinct_id wins over email
])
def test_static_cohort_from_csv(client, cohorts_url, pros, content):
    response = client.post(cohorts_url, {"name": "Listed", "is_static": True, "csv": csv_file(content)}, format="multipart")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["is_static"], body["count"], body["is_calculating"]) == (True, 2, False)
    persons = client.get(f"{cohorts_url}{body['id']}/persons/").json()["results"]
    assert sorted(p["distinct_ids"][0] for p in persons) == ["pro0", "pro1"]


def test_static_cohort_by_person_uuid_header(client, cohorts_url, pros):
    content = "Person_ID\n" + "\n".join(str(p.uuid) for p in pros[:3]) + "\nnot-a-uuid\n"
    body = client.post(cohorts_url, {"name": "Listed", "is_static": True, "csv": csv_file(content)}, format="multipart").json()
    assert body["count"] == 3


@pytest.mark.parametrize("content, detail", [
    ("", "CSV file is empty. Upload a file with one id per row."),
    ("\n\n", "CSV file is empty. Upload a file with one id per row."),
    ("name,plan\nA,pro\n", "Multi-column CSV must contain at least one column with a supported ID header: person_id, distinct_id or email."),
    ("email\n\n", "CSV file contains no valid emails."),
    (b"\xff\xfe\x00bad", "CSV file encoding is not supported. Save the file as UTF-8 and upload it again."),
])
def test_bad_csv_files_are_400(client, cohorts_url, content, detail):
    response = client.post(cohorts_url, {"name": "Listed", "is_static": True, "csv": csv_file(content)}, format="multipart")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", detail, "csv")
    assert Cohort.objects.count() == 0


def test_static_person_ids_add_and_remove(client, cohorts_url, pros):
    body = client.post(cohorts_url, {"name": "Listed", "is_static": True, "_create_static_person_ids": [str(pros[0].uuid)]},
                       format="json").json()
    url = f"{cohorts_url}{body['id']}/"
    assert body["count"] == 1 and "_create_static_person_ids" not in body
    added = client.patch(f"{url}add_persons_to_static_cohort/", {"person_ids": [str(pros[0].uuid), str(pros[1].uuid), "junk"]}, format="json")
    assert (added.status_code, added.json()) == (200, {"success": True})
    assert client.get(url).json()["count"] == 2
    removed = client.patch(f"{url}remove_person_from_static_cohort/", {"person_id": str(pros[0].uuid)}, format="json")
    assert (removed.status_code, removed.json()) == (200, {"success": True})
    again = client.patch(f"{url}remove_person_from_static_cohort/", {"person_id": str(pros[0].uuid)}, format="json")
    assert again.status_code == 404
    assert again.json() == error("invalid_request", "not_found", "Person is not part of the cohort")
    assert client.get(url).json()["count"] == 1


@pytest.mark.parametrize("body, attr, detail", [
    ({"person_ids": []}, "person_ids", "person_ids cannot be empty"),
    ({"person_ids": "abc"}, "person_ids", "person_ids must be a list"),
    ({"person_ids": ["x"] * 1001}, "person_ids", "List size exceeds limit"),
    ({"person_ids": ["00000000-0000-0000-0000-000000000000"]}, None, "No valid users to add to cohort"),
])
def test_add_persons_errors(client, cohorts_url, body, attr, detail):
    static = client.post(cohorts_url, {"name": "Listed", "is_static": True}, format="json").json()
    response = client.patch(f"{cohorts_url}{static['id']}/add_persons_to_static_cohort/", body, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", detail, attr)


def test_only_static_cohorts_take_persons(client, cohorts_url, make_cohort, pros):
    dynamic = make_cohort(filters=FILTERS)
    response = client.patch(f"{cohorts_url}{dynamic['id']}/add_persons_to_static_cohort/", {"person_ids": [str(pros[0].uuid)]}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", "Can only add users to static cohorts")


def test_duplicate_as_static(client, cohorts_url, make_cohort, pros):
    dynamic = make_cohort(name="Pros", filters=FILTERS)
    response = client.get(f"{cohorts_url}{dynamic['id']}/duplicate_as_static_cohort/")
    assert response.status_code == 200
    copy = response.json()
    assert (copy["name"], copy["is_static"], copy["count"]) == ("Pros (static copy)", True, 3)
    refused = client.get(f"{cohorts_url}{copy['id']}/duplicate_as_static_cohort/")
    assert refused.status_code == 400


# --- Persons ---------------------------------------------------------------------------------------------


def test_persons_pages(client, cohorts_url, make_cohort, pros, django_assert_max_num_queries):
    cohort = make_cohort(filters=FILTERS)
    url = f"{cohorts_url}{cohort['id']}/persons/"
    with django_assert_max_num_queries(10):
        first = client.get(f"{url}?limit=2").json()
    assert set(first) == {"results", "next", "previous"}
    assert [p["distinct_ids"] for p in first["results"]] == [["pro0"], ["pro1"]]
    assert set(first["results"][0]) == {"type", "id", "uuid", "name", "distinct_ids", "properties", "created_at", "is_identified"}
    assert first["results"][0]["type"] == "person" and first["results"][0]["id"] == str(pros[0].uuid)
    assert first["results"][0]["name"] == "pro0@x.com"
    assert first["next"].endswith("limit=2&offset=2") and first["previous"] is None
    second = client.get(first["next"]).json()
    assert [p["distinct_ids"] for p in second["results"]] == [["pro2"]]
    assert second["next"] is None and second["previous"] is not None


@pytest.mark.parametrize("query", ["limit=136209262&offset=131985321363236483005153280", "limit=99999999999999999999999",
                                   "offset=9223372036854775807", "limit=-1&offset=-5"])
def test_persons_huge_or_odd_paging_never_fails(client, cohorts_url, make_cohort, pros, query):
    cohort = make_cohort(filters=FILTERS)
    response = client.get(f"{cohorts_url}{cohort['id']}/persons/?{query}")
    assert response.status_code == 200
    assert set(response.json()) == {"results", "next", "previous"}


def test_persons_csv(client, cohorts_url, make_cohort, pros):
    cohort = make_cohort(filters=FILTERS)
    response = client.get(f"{cohorts_url}{cohort['id']}/persons/?format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0] == "id,email,name,created_at,properties,distinct_ids"
    assert len(lines) == 4 and lines[1].startswith(f"{pros[0].uuid},pro0@x.com,pro0@x.com,")


# --- Scopes ---------------------------------------------------------------------------------------------


def test_scopes(api_client, cohorts_url, make_cohort):
    cohort = make_cohort(filters=FILTERS)
    reader = api_client(scopes=["cohort:read"])
    assert reader.get(cohorts_url).status_code == 200
    refused = reader.post(cohorts_url, {"name": "x", "filters": FILTERS}, format="json")
    assert refused.status_code == 403
    assert refused.json() == error("authentication_error", "permission_denied", "API key missing required scope 'cohort:write'")
    persons = reader.get(f"{cohorts_url}{cohort['id']}/persons/")
    assert persons.json() == error("authentication_error", "permission_denied", "API key missing required scope 'person:read'")
    assert api_client(scopes=["cohort:read", "person:read"]).get(f"{cohorts_url}{cohort['id']}/persons/").status_code == 200
    assert api_client(scopes=["insight:read"]).get(cohorts_url).status_code == 403


def test_openapi_documents_cohorts(client):
    schema = client.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    assert "/api/projects/{project_id}/cohorts/" in paths
    assert "/api/projects/{project_id}/cohorts/{id}/persons/" in paths
    assert "/api/environments/{project_id}/cohorts/{id}/add_persons_to_static_cohort/" in paths


@pytest.mark.parametrize("leaf", [
    {"type": "cohort", "key": "id", "value": 10**30},
    {"type": "behavioral", "key": "$pageview", "value": "performed_event_multiple", "operator": "gte", "operator_value": 10**20,
     "time_value": 1, "time_interval": "day"},
    {"type": "behavioral", "key": "$pageview", "value": "performed_event", "time_value": 2**31 - 1, "time_interval": "year"},
    {"type": "person", "key": "plan", "operator": "exact", "value": {"nested": ["x"]}},
    {"type": "AND", "values": "nope"},
    "just a string",
])
def test_odd_filters_are_400_never_500(client, cohorts_url, leaf):
    response = client.post(cohorts_url, {"name": "odd", "filters": {"properties": {"type": "AND", "values": [leaf]}}}, format="json")
    assert response.status_code == 400, response.json()


def test_csv_with_nul_characters_is_400(client, cohorts_url):
    response = client.post(cohorts_url, {"name": "nul", "is_static": True, "csv": csv_file("a\x00b\n")}, format="multipart")
    assert response.status_code == 400
