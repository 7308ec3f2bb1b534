"""Creating and running exports.

As in PostHog, an export runs inside the request that creates it, so the 201 normally already
carries the file (`has_content`) or the reason it failed (`exception`). When computing the result
outlives the request's query timeout, the export continues in the background — on the Celery
worker with REDIS_URL, else on an in-process thread — and retrieving it later reports the outcome.
"""
import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import APIException

from core.background import ThreadRunner, uses_celery
from insights.results import insight_results, shown_query
from queries import conf
from queries.api import ExecutionMode, QueryTimeout, execute_query, source_of
from sharing.charts import build_chart
from sharing.layout import layout
from sharing.png import render_png

from . import formats
from .computing import TABLE_KINDS, StillComputing, error_message, export_fields
from .dashboards import render_dashboard
from .models import ExportedAsset, ExportFormat

logger = logging.getLogger(__name__)

SUPPORTED_FORMATS = (ExportFormat.CSV, ExportFormat.XLSX, ExportFormat.PNG)
DEFAULT_LIFETIME = timedelta(weeks=26)
IMAGE_SIZE = (1200, 630)
FAILED_MESSAGE = "The export failed. Please try again."


def default_expiry():
    """PostHog's API default: 26 weeks from today, at midnight."""
    return (timezone.now() + DEFAULT_LIFETIME).replace(hour=0, minute=0, second=0, microsecond=0)


def create_export(*, team, user, data: dict) -> ExportedAsset:
    asset = ExportedAsset.objects.create(team=team, created_by=user, expires_after=data.pop("expires_after", None) or default_expiry(), **data)
    try:
        run_export(asset)
    except StillComputing:
        transaction.on_commit(lambda: _dispatch(asset.id), robust=True)
    return asset


def run_export(asset: ExportedAsset, *, in_background: bool = False) -> None:
    """Compute the asset's file and store it, or store why it failed. StillComputing when the
    result takes longer than a request may wait (never raised in the background)."""
    try:
        asset.content = _render(asset, in_background=in_background)
        asset.exception = None
    except StillComputing:
        if in_background:
            asset.exception = "The query took too long to compute."
        else:
            raise
    except APIException as error:
        asset.exception = error_message(error.detail)
    except Exception:  # noqa: BLE001  (the reason is logged; the client gets a generic message)
        logger.exception("Export %s failed", asset.id)
        asset.exception = FAILED_MESSAGE
    asset.save(update_fields=["content", "exception"])


def _render(asset: ExportedAsset, *, in_background: bool) -> bytes:
    if asset.dashboard_id is not None and asset.insight_id is None:
        return render_dashboard(asset, timeout=conf.async_timeout_seconds() if in_background else None)
    query, fields = _result(asset, in_background=in_background)
    if asset.export_format == ExportFormat.PNG:
        chart = build_chart(query, fields)
        width, height = IMAGE_SIZE
        title = (asset.insight.name or asset.insight.derived_name or "") if asset.insight_id else ""
        return render_png(layout(chart, width, height, title=title, legend=chart.has_legend), width, height)
    context = asset.export_context if isinstance(asset.export_context, dict) else {}
    columns = context.get("columns") if isinstance(context.get("columns"), list) else None
    rows = formats.rows_for(query, fields.get("result"), fields.get("columns"))
    if asset.export_format == ExportFormat.XLSX:
        return formats.to_xlsx(rows, columns)
    return formats.to_csv(rows, columns)


def _result(asset: ExportedAsset, *, in_background: bool) -> tuple[dict, dict]:
    """(the query, its result fields `result` and `columns`) of what the asset exports."""
    context = asset.export_context if isinstance(asset.export_context, dict) else {}
    # In the background a query may run as long as an async query; in a request, as long as any request's.
    timeout = conf.async_timeout_seconds() if in_background else None
    if isinstance(context.get("source"), dict):
        query = context["source"]
        return query, export_fields(asset.team, query, asset.created_by, timeout=timeout)
    insight = asset.insight
    if source_of(shown_query(insight)).get("kind") in TABLE_KINDS:
        # A SQL or events insight holds up to the export's rows, not the 100 its page shows.
        query = shown_query(insight)
        return query, export_fields(asset.team, query, asset.created_by, timeout=timeout, insight_id=insight.id)
    if in_background and insight.query:
        try:  # compute into the cache with the longer timeout; the insight's result is then read from it
            execute_query(asset.team, insight.query, refresh=ExecutionMode.BLOCKING, user=asset.created_by, insight_id=insight.id,
                          timeout=timeout)
        except QueryTimeout:
            raise StillComputing() from None
    fields = insight_results([insight], asset.team, ExecutionMode.BLOCKING, asset.created_by)[insight.id]
    status = fields.get("query_status") or {}
    if status.get("error"):
        if status.get("error_code") == QueryTimeout.default_code:
            raise StillComputing()
        raise APIException(status.get("error_message") or FAILED_MESSAGE)
    return shown_query(insight) or {}, fields


# --- Background ------------------------------------------------------------------------------------


def run_export_by_id(asset_id: int) -> None:
    asset = ExportedAsset.objects.select_related("team", "insight", "dashboard", "created_by").filter(id=asset_id).first()
    if asset is not None and asset.content is None and not asset.exception:
        run_export(asset, in_background=True)


_threads = ThreadRunner("export")


def _dispatch(asset_id: int) -> None:
    if uses_celery():
        from .tasks import run_export_task

        run_export_task.delay(asset_id)
        return
    _threads.submit(run_export_by_id, asset_id)


# --- Expiry ----------------------------------------------------------------------------------------


def delete_expired_exports() -> int:
    """Delete the assets whose `expires_after` has passed; how many."""
    deleted, _ = ExportedAsset.objects.filter(expires_after__lte=timezone.now()).delete()
    return deleted
