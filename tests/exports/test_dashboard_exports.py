"""Exporting a whole dashboard: CSV sections per tile, one XLSX worksheet per tile, a PNG grid,
every tile computed under the dashboard's filters."""
import io

import pytest
from openpyxl import load_workbook
from PIL import Image

from tests.factories import DashboardFactory, DashboardTileFactory
from tests.insights.conftest import make_insight

from .test_exports_api import CSV, JAN, TRENDS, XLSX, content, export, frozen_now, pageviews, parsed_csv, url  # noqa: F401

pytestmark = pytest.mark.django_db

FUNNEL = {"kind": "InsightVizNode", "source": {"kind": "FunnelsQuery", "dateRange": JAN, "series": [
    {"kind": "EventsNode", "event": "signed up"}, {"kind": "EventsNode", "event": "paid"}]}}


@pytest.fixture
def dashboard(team, pageviews):
    # The dashboard narrows every tile to 2-3 January: its filters must show in the numbers.
    board = DashboardFactory(team=team, name="Growth KPIs", filters={"date_from": "2024-01-02", "date_to": "2024-01-03"})
    DashboardTileFactory(dashboard=board, insight=make_insight(team, name="Views by browser", query=TRENDS))
    DashboardTileFactory(dashboard=board, insight=make_insight(team, name="Signup funnel", query=FUNNEL))
    return board


def test_csv_has_a_section_per_tile(client, url, team, dashboard):
    body = export(client, url, export_format=CSV, dashboard=dashboard.id)
    assert (body["dashboard"], body["insight"], body["has_content"], body["exception"]) == (dashboard.id, None, True, None)
    assert body["filename"] == "export-growth-kpis.csv"
    rows = parsed_csv(content(client, url, body))
    header = rows[0]
    assert header[:6] == ["insight", "series", "custom name", "$browser", "2-Jan-2024", "3-Jan-2024"]
    assert "1-Jan-2024" not in header and "name" in header and "count" in header
    by_insight = {}
    for row in rows[1:]:
        by_insight.setdefault(row[0], []).append(dict(zip(header, row)))
    assert [(row["series"], row["2-Jan-2024"], row["3-Jan-2024"]) for row in by_insight["Views by browser"]] == [
        ("Chrome", "1", "0"), ("Safari", "1", "0")]
    # Only b signed up within the dashboard's dates, and b never paid.
    assert [(row["name"], row["count"]) for row in by_insight["Signup funnel"]] == [("signed up", "1"), ("paid", "0")]


def test_xlsx_has_a_worksheet_per_tile(client, url, team, dashboard):
    body = export(client, url, export_format=XLSX, dashboard=dashboard.id)
    workbook = load_workbook(io.BytesIO(content(client, url, body).content))
    assert workbook.sheetnames == ["Views by browser", "Signup funnel"]
    trends = list(workbook["Views by browser"].iter_rows(values_only=True))
    assert trends[0][:3] == ("series", "custom name", "$browser") and [row[0] for row in trends[1:]] == ["Chrome", "Safari"]
    funnel = list(workbook["Signup funnel"].iter_rows(values_only=True))
    assert funnel[0][0] == "name" and [row[0] for row in funnel[1:]] == ["signed up", "paid"]


def test_png_is_a_grid_of_the_tiles_charts(client, url, team, dashboard):
    body = export(client, url, export_format="image/png", dashboard=dashboard.id)
    image = Image.open(io.BytesIO(content(client, url, body).content))
    assert image.size == (1200, 315)  # two tiles side by side


def test_an_empty_dashboard(client, url, team):
    empty = DashboardFactory(team=team, name="Empty")
    rows = parsed_csv(content(client, url, export(client, url, export_format=CSV, dashboard=empty.id)))
    assert rows == [["error"], ["No data available or unable to format for export."]]
    png = export(client, url, export_format="image/png", dashboard=empty.id)
    assert (png["has_content"], png["exception"]) == (False, "This dashboard has no insights to export.")


def test_a_tile_that_cannot_compute_is_a_row_of_its_own(client, url, team, dashboard):
    broken = make_insight(team, name="Broken", query={"kind": "HogQLQuery", "query": "select nope from nowhere"})
    DashboardTileFactory(dashboard=dashboard, insight=broken)
    rows = parsed_csv(content(client, url, export(client, url, export_format=CSV, dashboard=dashboard.id)))
    header = rows[0]
    errors = [dict(zip(header, row)) for row in rows[1:] if row[0] == "Broken"]
    assert len(errors) == 1 and errors[0]["error"]
