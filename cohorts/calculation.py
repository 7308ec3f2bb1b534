"""Recalculating dynamic cohorts: one generation at a time, in the background after a change and
on a schedule (Celery beat with Redis, `manage.py calculate_cohorts` from cron without it)."""
import logging
from datetime import timedelta
from typing import Optional

from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone
from rest_framework.exceptions import APIException

from core.background import ThreadRunner, uses_celery
from queries import conf
from queries.sql.cohorts import dynamic_members_insert
from queries.sql.engine import Params, get_engine

from .models import Cohort, CohortPeople

logger = logging.getLogger(__name__)

# Scheduler rules (PostHog's): recalculate after 15 minutes, give up after 20 straight errors,
# back off 30 min x 2^errors after an error, and retry a calculation stuck for a day.
MAX_AGE = timedelta(minutes=15)
MAX_ERRORS = 20
STUCK_AFTER = timedelta(hours=24)
ERROR_BACKOFF = timedelta(minutes=30)


def calculate_cohort(cohort_id: int) -> Optional[Cohort]:
    """Compute the members of a dynamic cohort as a new version and switch to it. Errors are
    recorded on the cohort (`errors_calculating`, `last_error_at`), never raised."""
    cohort = Cohort.objects.select_related("team").filter(id=cohort_id, deleted=False, is_static=False).first()
    if cohort is None:
        return None
    # Allocated under the row's lock, so two calculations running at once never write the same version.
    with transaction.atomic():
        version, pending = Cohort.objects.select_for_update().filter(id=cohort.id).values_list("version", "pending_version").get()
        pending = max(version or 0, pending or 0) + 1
        Cohort.objects.filter(id=cohort.id).update(pending_version=pending, is_calculating=True, calculation_started_at=timezone.now())
    engine = get_engine()
    try:
        params = Params()
        statement = dynamic_members_insert(cohort, pending, engine, params)
        with transaction.atomic():
            CohortPeople.objects.filter(cohort_id=cohort.id, version=pending).delete()  # left by a failed run
            count = engine.execute_write(statement, params, timeout=conf.async_timeout_seconds())
        switched = Cohort.objects.filter(id=cohort.id, pending_version=pending).update(
            version=pending, count=count, is_calculating=False, last_calculation=timezone.now(), errors_calculating=0,
            last_error=None)
        if switched:
            CohortPeople.objects.filter(cohort_id=cohort.id, version__lt=pending).delete()
    except (APIException, DatabaseError) as error:
        # A cohort whose filters no longer compile (a referenced cohort was deleted...) or a timeout.
        logger.warning("Cohort %s failed to calculate: %s", cohort.id, error)
        detail = getattr(error, "detail", None)
        message = str(detail[0] if isinstance(detail, list) and detail else detail or error)
        Cohort.objects.filter(id=cohort.id).update(is_calculating=False, errors_calculating=F("errors_calculating") + 1,
                                                   last_error_at=timezone.now(), last_error=message[:1000])
    cohort.refresh_from_db()
    return cohort


def due_cohort_ids(now=None) -> list[int]:
    """Dynamic cohorts to recalculate now, oldest calculation first."""
    now = now or timezone.now()
    candidates = Cohort.objects.filter(is_static=False, deleted=False, errors_calculating__lte=MAX_ERRORS).filter(
        Q(last_calculation__isnull=True) | Q(last_calculation__lt=now - MAX_AGE)
    ).filter(Q(is_calculating=False) | Q(calculation_started_at__isnull=True) | Q(calculation_started_at__lt=now - STUCK_AFTER))
    due = []
    for cohort_id, errors, last_error_at in candidates.order_by(F("last_calculation").asc(nulls_first=True), "id").values_list(
            "id", "errors_calculating", "last_error_at"):
        if errors and last_error_at and last_error_at > now - ERROR_BACKOFF * (2 ** errors):
            continue
        due.append(cohort_id)
    return due


def calculate_due_cohorts() -> int:
    """Recalculate every due cohort (the scheduled job); how many."""
    ids = due_cohort_ids()
    for cohort_id in ids:
        calculate_cohort(cohort_id)
    return len(ids)


# --- Dispatch after a change ----------------------------------------------------------------------


def enqueue_calculation(cohort: Cohort) -> None:
    """Mark the cohort as calculating and compute it once the current transaction commits:
    in the Celery worker when Redis is configured, else on a background thread."""
    Cohort.objects.filter(id=cohort.id).update(is_calculating=True, calculation_started_at=timezone.now())
    cohort.is_calculating = True
    cohort_id = cohort.id
    after_commit(lambda: dispatch(cohort_id))


def after_commit(callback) -> None:
    """The calculation must see the committed cohort (tests run it at once instead)."""
    transaction.on_commit(callback, robust=True)


_threads = ThreadRunner("cohort")


def dispatch(cohort_id: int) -> None:
    if uses_celery():
        from .tasks import calculate_cohort_task

        calculate_cohort_task.delay(cohort_id)
        return
    _threads.submit(calculate_cohort, cohort_id)
