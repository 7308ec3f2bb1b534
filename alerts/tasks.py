"""Celery tasks: beat runs `check_due_alerts_task` (see CELERY_BEAT_SCHEDULE), which fans out one
task per due alert so that a slow insight does not hold back the others."""
from celery import shared_task

from .checks import check_alert, delete_old_checks, due_alert_ids


@shared_task(ignore_result=True)
def check_due_alerts_task() -> None:
    for alert_id in due_alert_ids():
        check_alert_task.delay(str(alert_id))
    delete_old_checks()


@shared_task(ignore_result=True)
def check_alert_task(alert_id: str) -> None:
    check_alert(alert_id)
