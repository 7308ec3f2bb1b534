"""Celery tasks of exports (used when REDIS_URL is set)."""
from celery import shared_task

from . import services


@shared_task(name="exports.run_export", ignore_result=True)
def run_export_task(asset_id: int) -> None:
    services.run_export_by_id(asset_id)


@shared_task(name="exports.delete_expired_exports", ignore_result=True)
def delete_expired_exports_task() -> None:
    services.delete_expired_exports()
