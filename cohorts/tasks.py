"""Celery tasks: beat runs `calculate_due_cohorts_task` (see CELERY_BEAT_SCHEDULE); a change to a
cohort sends `calculate_cohort_task` for it."""
from celery import shared_task

from .calculation import calculate_cohort, due_cohort_ids


@shared_task(ignore_result=True)
def calculate_due_cohorts_task() -> None:
    for cohort_id in due_cohort_ids():
        calculate_cohort_task.delay(cohort_id)


@shared_task(ignore_result=True)
def calculate_cohort_task(cohort_id: int) -> None:
    calculate_cohort(cohort_id)
