"""/api/projects/:id/exports/: create (runs in the request), list own, retrieve, content download,
CSV/XLSX/PNG of insight results in PostHog's layout, expiry (spec/vocabulary.md §7)."""
import csv
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from openpyxl import load_workbook
from PIL import Image

from exports.models import ExportedAsset
from exports.services import run_export_by_id
from queries import clock
from tests.conftest import error
from tests.factories import make_member, make_team
from tests.insights.conftest import make_insight
from tests.queries.events import events, ts

pytestmark = pytest.mark.django_db

KEYS = ["id", "dashboard", "insight", "export_format", "created_at", "has_content", "export_context", "filename", "expires_after", "exception"]
CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
JAN = {"date_from": "2024-01-01", "date_to": "2024-01-03"}
TRENDS = {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "dateRange": JAN, "breakdownFilter": {"breakdown": "$browser"},
                                               "series": [{"kind": "EventsNode", "event": "$pageview", "custom_name": "Views"}]}}


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts("2024-01-10 12:00"))


@pytest.fixture
def url(team):
    return f"/api/projects/{team.id}/exports/"


@pytest.fixture
def pageviews(team):
    chrome, safari = {"$browser": "Chrome"}, {"$browser": "Safari"}
    events(team, ("$pageview", "a", "2024-01-01 10:00", chrome), ("$pageview", "a", "2024-01-02 10:00", chrome),
           ("$pageview", "b", "2024-01-02 11:00", safari), ("signed up", "a", "2024-01-01 09:00"), ("signed up", "b", "2024-01-02 09:00"),
           ("paid", "a", "2024-01-03 09:00"))


def export(client, url, **body):
    response = client.post(url, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def content(client, url, asset, **params):
    response = client.get(f"{url}{asset['id']}/content/", params)
    assert response.status_code == 200, response.content
    return response


def parsed_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def computed(client, team, insight) -> list:
    return client.get(f"/api/projects/{team.id}/insights/{insight.id}/", {"refresh": "blocking"}).json()["result"]


def test_create_runs_the_export_in_the_request(client, url, team, pageviews):
    insight = make_insight(team, name="Views by browser", query=TRENDS)
    body = export(client, url, export_format=CSV, insight=insight.id)
    assert list(body) == KEYS
    assert body["has_content"] is True and body["exception"] is None
    assert body["filename"] == "export-views-by-browser.csv"
    assert body["insight"] == insight.id and body["dashboard"] is None
    expires = timezone.datetime.fromisoformat(body["expires_after"].replace("Z", "+00:00"))
    assert timedelta(weeks=25) < expires - timezone.now() <= timedelta(weeks=26)


def test_trends_csv_is_the_insights_result_series_as_rows(client, url, team, pageviews):
    insight = make_insight(team, query=TRENDS)
    result = computed(client, team, insight)
    rows = parsed_csv(content(client, url, export(client, url, export_format=CSV, insight=insight.id)))
    assert rows[0] == ["series", "custom name", "$browser", *result[0]["labels"]]
    assert rows[1:] == [[series["label"], "Views", series["breakdown_value"], *map(str, series["data"])] for series in result]
    assert rows[1:] == [["Chrome", "Views", "Chrome", "1", "1", "0"], ["Safari", "Views", "Safari", "0", "1", "0"]]


def test_funnel_csv_has_a_row_per_step(client, url, team, pageviews):
    query = {"kind": "InsightVizNode", "source": {"kind": "FunnelsQuery", "dateRange": JAN, "series": [
        {"kind": "EventsNode", "event": "signed up"}, {"kind": "EventsNode", "event": "paid", "custom_name": "Paid"}]}}
    insight = make_insight(team, query=query)
    result = computed(client, team, insight)
    rows = parsed_csv(content(client, url, export(client, url, export_format=CSV, insight=insight.id)))
    assert rows[0] == ["name", "breakdown_value", "action_id", "count", "median_conversion_time (seconds)", "average_conversion_time (seconds)"]
    assert [row[:4] for row in rows[1:]] == [["signed up", "", "signed up", "2"], ["Paid", "", "paid", "1"]]
    assert [int(row[3]) for row in rows[1:]] == [step["count"] for step in result]


def test_retention_csv_has_a_row_per_cohort(client, url, team, pageviews):
    query = {"kind": "InsightVizNode", "source": {"kind": "RetentionQuery", "dateRange": JAN, "retentionFilter": {
        "period": "Day", "totalIntervals": 3, "targetEntity": {"id": "signed up", "type": "events"},
        "returningEntity": {"id": "$pageview", "type": "events"}}}}
    insight = make_insight(team, query=query)
    result = computed(client, team, insight)
    rows = parsed_csv(content(client, url, export(client, url, export_format=CSV, insight=insight.id)))
    assert rows[0][:2] == ["cohort", "cohort size"] and rows[0][2:] == [value["label"] for value in result[0]["values"]]
    assert len(rows) == len(result) + 1
    assert [row[1] for row in rows[1:]] == [str(cohort["values"][0]["count"]) for cohort in result]


def test_sql_table_csv_and_xlsx(client, url, team, pageviews):
    query = {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery",
             "query": "select event, count() as n from events group by event order by event"}}
    insight = make_insight(team, query=query)
    rows = parsed_csv(content(client, url, export(client, url, export_format=CSV, insight=insight.id)))
    assert rows == [["event", "n"], ["$pageview", "3"], ["paid", "1"], ["signed up", "2"]]
    response = content(client, url, export(client, url, export_format=XLSX, insight=insight.id), download="true")
    assert response["Content-Type"] == XLSX
    assert response["Content-Disposition"] == 'attachment; filename="export-an-insight.xlsx"'
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert [list(row) for row in sheet.iter_rows(values_only=True)] == [["event", "n"], ["$pageview", 3], ["paid", 1], ["signed up", 2]]


def test_xlsx_keeps_formula_like_text_as_text(client, url, team):
    events(team, ("=HYPERLINK(\"http://x\")", "a", "2024-01-01 10:00"))
    query = {"kind": "HogQLQuery", "query": "select event from events"}
    response = content(client, url, export(client, url, export_format=XLSX, export_context={"source": query}))
    cell = load_workbook(io.BytesIO(response.content)).active["A2"]
    assert (cell.value, cell.data_type) == ('=HYPERLINK("http://x")', "s")


def test_source_exports_with_columns_and_filename(client, url, team, pageviews):
    query = {"kind": "HogQLQuery", "query": "select event, distinct_id from events where event = 'signed up' order by distinct_id"}
    body = export(client, url, export_format=CSV, export_context={"source": query, "columns": ["distinct_id"], "filename": "My Signups"})
    assert body["filename"] == "my-signups.csv"
    assert parsed_csv(content(client, url, body)) == [["distinct_id"], ["a"], ["b"]]


def test_png_of_an_insight(client, url, team, pageviews):
    insight = make_insight(team, query=TRENDS)
    response = content(client, url, export(client, url, export_format="image/png", insight=insight.id))
    assert response["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (1200, 630)


def test_empty_result_and_failing_query(client, url, team):
    insight = make_insight(team, query=TRENDS)
    rows = parsed_csv(content(client, url, export(client, url, export_format=CSV, insight=insight.id)))
    assert rows == [["error"], ["No data available or unable to format for export."]]
    failing = export(client, url, export_format=CSV, export_context={"source": {"kind": "HogQLQuery", "query": "select nope from events"}})
    assert failing["has_content"] is False and failing["exception"]
    assert client.get(f"{url}{failing['id']}/content/").status_code == 404


@pytest.mark.parametrize("body, expected", [
    ({"insight": "ID"}, error("validation_error", "invalid_input", "Must provide export format")),
    ({"export_format": CSV}, error("validation_error", "invalid_input", "Either dashboard, insight or export_context is required for an export.")),
    ({"export_format": "application/pdf", "insight": "ID"},
     error("validation_error", "invalid_input", "Export format application/pdf is not supported.", "export_format")),
    ({"export_format": "video/mp4", "insight": "ID"}, error("validation_error", "invalid_input", "Video export supports session recordings only.")),
    ({"export_format": "text/plain", "insight": "ID"}, error("validation_error", "invalid_choice", '"text/plain" is not a valid choice.', "export_format")),
    ({"export_format": CSV, "insight": "FOREIGN"}, error("validation_error", "invalid_input", "This insight does not belong to your team.", "insight")),
])
def test_create_400s_write_nothing(client, url, team, body, expected):
    insight = make_insight(team)
    foreign = make_insight(make_team(name="Elsewhere"))
    body = {key: {"ID": insight.id, "FOREIGN": foreign.id}.get(value, value) for key, value in body.items()}
    response = client.post(url, body, format="json")
    assert response.status_code == 400
    assert response.json() == expected
    assert not ExportedAsset.objects.exists()


def test_list_shows_only_my_live_exports_newest_first_and_filters(client, url, team, user, pageviews, api_client):
    insight = make_insight(team, query=TRENDS)
    first = export(client, url, export_format=CSV, insight=insight.id)
    second = export(client, url, export_format=XLSX, insight=insight.id, export_context={"path": "/api/projects/1/insights/?x"})
    colleague = api_client(user=make_member(team))
    theirs = export(colleague, url, export_format=CSV, insight=insight.id)
    ExportedAsset.objects.filter(id=first["id"]).update(created_at=timezone.now() - timedelta(minutes=1))
    body = client.get(url).json()
    assert list(body) == ["count", "next", "previous", "results"]
    assert [asset["id"] for asset in body["results"]] == [second["id"], first["id"]]
    assert [a["id"] for a in client.get(url, {"export_format": XLSX}).json()["results"]] == [second["id"]]
    assert [a["id"] for a in client.get(url, {"context_path": "INSIGHTS"}).json()["results"]] == [second["id"]]
    # Retrieve: any export of the team.
    assert client.get(f"{url}{theirs['id']}/").json()["id"] == theirs["id"]


def test_other_teams_exports_are_404_and_other_organizations_403(client, url, team, pageviews):
    other = make_team(team.organization, name="Other")
    foreign = ExportedAsset.objects.create(team=other, export_format=CSV, content=b"x")
    for path in (f"{url}{foreign.id}/", f"{url}{foreign.id}/content/"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json() == error("invalid_request", "not_found", "No ExportedAsset matches the given query.")
    stranger = make_team(name="Stranger")
    response = client.get(f"/api/projects/{stranger.id}/exports/")
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", "You don't have access to the project.")


def test_scopes(team, user, url, pageviews, api_client):
    insight = make_insight(team, query=TRENDS)
    reader = api_client(["export:read"], user=user)
    response = reader.post(url, {"export_format": CSV, "insight": insight.id}, format="json")
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", "API key missing required scope 'export:write'")
    asset = export(api_client(["export:write"], user=user), url, export_format=CSV, insight=insight.id)
    assert reader.get(url).status_code == 200 and reader.get(f"{url}{asset['id']}/content/").status_code == 200
    response = api_client(["insight:read"], user=user).get(f"{url}{asset['id']}/content/")
    assert response.json() == error("authentication_error", "permission_denied", "API key missing required scope 'export:read'")


def test_no_update_or_delete(client, url, team, user, api_client):
    asset = ExportedAsset.objects.create(team=team, export_format=CSV, content=b"x")
    unscoped = api_client(None, user=user)
    assert unscoped.patch(f"{url}{asset.id}/", {}, format="json").status_code == 405
    assert unscoped.delete(f"{url}{asset.id}/").status_code == 405
    # As in PostHog, a scoped key is refused before the method is looked at.
    assert client.delete(f"{url}{asset.id}/").json() == error(
        "authentication_error", "permission_denied", "This action does not support Personal API Key access")


def test_expired_exports_are_hidden_then_deleted(client, url, team, user):
    live = ExportedAsset.objects.create(team=team, created_by=user, export_format=CSV, content=b"x",
                                        expires_after=timezone.now() + timedelta(days=1))
    expired = ExportedAsset.objects.create(team=team, created_by=user, export_format=CSV, content=b"x",
                                           expires_after=timezone.now() - timedelta(seconds=1))
    assert [a["id"] for a in client.get(url).json()["results"]] == [live.id]
    assert client.get(f"{url}{expired.id}/content/").status_code == 404
    out = io.StringIO()
    call_command("delete_expired_exports", stdout=out)
    assert out.getvalue().strip() == "Deleted 1 expired exports."
    assert list(ExportedAsset.objects.values_list("id", flat=True)) == [live.id]


def test_background_run_and_stuck_exports(client, url, team, user, pageviews):
    insight = make_insight(team, query=TRENDS)
    pending = ExportedAsset.objects.create(team=team, created_by=user, insight=insight, export_format=CSV)
    assert client.get(f"{url}{pending.id}/").json()["has_content"] is False
    run_export_by_id(pending.id)  # what the worker runs for an export that outlived the request
    body = client.get(f"{url}{pending.id}/").json()
    assert body["has_content"] is True and body["exception"] is None
    stuck = ExportedAsset.objects.create(team=team, created_by=user, insight=insight, export_format=CSV)
    ExportedAsset.objects.filter(id=stuck.id).update(created_at=timezone.now() - timedelta(hours=1))
    assert client.get(f"{url}{stuck.id}/").json()["exception"] == (
        "Export failed without throwing an exception. Please try to rerun this export and contact support if it fails to "
        "complete multiple times.")


def test_an_export_outliving_the_request_continues_in_the_background(client, url, team, settings, django_capture_on_commit_callbacks):
    settings.QUERY_TIMEOUT_SECONDS = 0.5
    events(team, *[("e", f"user{index}", "2024-01-02 10:00") for index in range(60)])
    slow = {"kind": "HogQLQuery", "query": "SELECT count() FROM events a, events b, events c, events d, events e"}
    with django_capture_on_commit_callbacks(execute=False) as dispatched:
        body = export(client, url, export_format=CSV, export_context={"source": slow})
    assert (body["has_content"], body["exception"]) == (False, None)
    assert len(dispatched) == 1  # handed to the worker once the asset is committed
    assert client.get(f"{url}{body['id']}/").json()["exception"] is None
