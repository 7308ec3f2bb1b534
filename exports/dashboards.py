"""A dashboard exported whole: every shown tile computed under the dashboard's filters (as the
dashboard retrieve computes them, in one call), then laid out per format:

- CSV: each tile's rows in PostHog's layout for its kind, one section after the other, with a
  leading `insight` column naming the tile; the header is the union of the sections' columns;
- XLSX: one worksheet per tile, named after its insight;
- PNG: the tiles' charts in a grid of two columns.
"""
import io

from PIL import Image
from rest_framework.exceptions import APIException

from insights.dashboards.tiles import tile_insights
from insights.results import insight_results, shown_query
from queries.api import ExecutionMode, QueryTimeout, source_of
from sharing.charts import build_chart
from sharing.layout import BACKGROUND, layout
from sharing.png import render_png

from . import formats
from .computing import TABLE_KINDS, StillComputing, error_message, export_fields
from .models import ExportFormat

TILE_SIZE = (600, 315)
GRID_COLUMNS = 2


def _title(insight) -> str:
    return insight.name or insight.derived_name or f"Insight {insight.id}"


def _tiles(asset, timeout) -> list[tuple[str, dict, dict]]:
    """(title, query as computed, result fields) of each shown tile, in the dashboard's order.
    SQL and events tiles hold up to the export's rows; the others compute as the dashboard does."""
    tiles, insights, contexts = tile_insights(asset.dashboard)
    queries = {insight.id: contexts[insight.id].returned_query(shown_query(insight)) or {} for insight in insights}
    tables = [insight for insight in insights if source_of(queries[insight.id]).get("kind") in TABLE_KINDS]
    results = insight_results([insight for insight in insights if insight not in tables], asset.team, ExecutionMode.BLOCKING,
                              asset.created_by, contexts=contexts)
    for insight in tables:
        try:
            results[insight.id] = export_fields(asset.team, queries[insight.id], asset.created_by, timeout=timeout,
                                                insight_id=insight.id, dashboard_id=asset.dashboard_id)
        except APIException as error:  # the engine refused this tile's query: its own row says why
            results[insight.id] = {"result": None, "query_status": {"error": True, "error_message": error_message(error.detail)}}
    by_id = {insight.id: insight for insight in insights}
    shown = []
    for tile in tiles:
        if tile.insight_id is None:
            continue  # text tiles hold no data
        insight, fields = by_id[tile.insight_id], results[tile.insight_id]
        status = fields.get("query_status") or {}
        if status.get("error") and status.get("error_code") == QueryTimeout.default_code:
            raise StillComputing()
        shown.append((_title(insight), queries[insight.id], fields))
    return shown


def _rows(query: dict, fields: dict) -> list[dict]:
    status = fields.get("query_status") or {}
    if status.get("error"):
        return [{"error": status.get("error_message") or "This insight could not be computed."}]
    return formats.rows_for(query, fields.get("result"), fields.get("columns"))


def render_dashboard(asset, *, timeout=None) -> bytes:
    tiles = _tiles(asset, timeout)
    if asset.export_format == ExportFormat.PNG:
        return _grid_png(tiles)
    if asset.export_format == ExportFormat.XLSX:
        return formats.to_xlsx_sheets([(title, _rows(query, fields)) for title, query, fields in tiles])
    rows: list[dict] = []
    for title, query, fields in tiles:
        rows.extend({"insight": title, **row} for row in _rows(query, fields))
        if len(rows) >= formats.CSV_EXPORT_LIMIT:
            break
    return formats.to_csv(rows[: formats.CSV_EXPORT_LIMIT] or formats.NO_DATA)


def _grid_png(tiles: list) -> bytes:
    if not tiles:
        raise APIException("This dashboard has no insights to export.")
    width, height = TILE_SIZE
    rows = -(-len(tiles) // GRID_COLUMNS)
    columns = min(GRID_COLUMNS, len(tiles))
    image = Image.new("RGB", (width * columns, height * rows), BACKGROUND)
    for index, (title, query, fields) in enumerate(tiles):
        chart = build_chart(query, fields)
        tile_png = render_png(layout(chart, width, height, title=title, legend=chart.has_legend), width, height)
        image.paste(Image.open(io.BytesIO(tile_png)), ((index % GRID_COLUMNS) * width, (index // GRID_COLUMNS) * height))
    output = io.BytesIO()
    image.save(output, format="PNG", optimize=True)
    return output.getvalue()
