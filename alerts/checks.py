"""Running alert checks: which alerts are due, one check with its state change, notification and
record, and when the next one is due.

A check first claims its alert by moving `next_check_at` ahead by a lease with a conditional
UPDATE, so overlapping runners (cron and Celery beat, or two workers) never check the same alert
twice; a runner that dies mid-check leaves the alert due again once the lease has passed.
"""
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .config import AlertConfigError, blocked_until
from .evaluation import Evaluation, EvaluationError, evaluate
from .models import AlertCheck, AlertConfiguration, AlertState, CalculationInterval
from .notifications import AlertNotification, notify

logger = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=10)
SKIPPED = "skipped"


def due_alert_ids(now: datetime | None = None) -> list:
    now = now or timezone.now()
    return list(
        AlertConfiguration.objects.filter(enabled=True, insight__deleted=False)
        .filter(Q(next_check_at__isnull=True) | Q(next_check_at__lte=now))
        .order_by("next_check_at", "id")
        .values_list("id", flat=True)
    )


@dataclass
class RunSummary:
    checked: int = 0
    firing: int = 0
    not_firing: int = 0
    errored: int = 0
    skipped: int = 0

    def add(self, outcome: str) -> None:
        if outcome == SKIPPED:
            self.skipped += 1
            return
        self.checked += 1
        if outcome == AlertState.FIRING:
            self.firing += 1
        elif outcome == AlertState.ERRORED:
            self.errored += 1
        else:
            self.not_firing += 1


def check_alerts(alert_ids, *, now: datetime | None = None, force: bool = False) -> RunSummary:
    """Check each alert in turn; a failure in one never stops the others."""
    summary = RunSummary()
    for alert_id in alert_ids:
        try:
            summary.add(check_alert(alert_id, now=now, force=force))
        except Exception:
            logger.exception("Checking alert %s failed", alert_id)
            summary.add(AlertState.ERRORED)
    return summary


def check_alert(alert_id, *, now: datetime | None = None, force: bool = False) -> str:
    """Check one alert if it is due (or `force`); returns its new state, or SKIPPED."""
    now = now or timezone.now()
    if not _claim(alert_id, now, force):
        return SKIPPED
    alert = AlertConfiguration.objects.select_related("team", "insight", "threshold").filter(pk=alert_id).first()
    if alert is None:  # deleted since it was claimed
        return SKIPPED
    updates: dict = {}
    if alert.snoozed_until:
        if alert.snoozed_until > now:
            _save(alert, next_check_at=alert.snoozed_until)
            return SKIPPED
        updates = {"snoozed_until": None}
    tz = team_timezone(alert.team)
    if alert.skip_weekend and now.astimezone(tz).weekday() >= 5:
        _save(alert, next_check_at=_next_monday(now, tz), **updates)
        return SKIPPED
    local = now.astimezone(tz)
    blocked_end = blocked_until(alert.schedule_restriction, local.hour * 60 + local.minute)
    if blocked_end is not None:  # quiet hours: the next check is when they end
        midnight = datetime(local.year, local.month, local.day, tzinfo=tz)
        resume = (midnight + timedelta(minutes=blocked_end)).astimezone(ZoneInfo("UTC"))
        _save(alert, next_check_at=resume, **updates)
        return SKIPPED

    evaluation, error = Evaluation(None, ()), None
    try:
        evaluation = evaluate(alert)
    except (AlertConfigError, EvaluationError) as exc:
        error = {"message": str(exc)}
    except Exception as exc:  # e.g. the query engine failing: the alert errors, the run goes on
        logger.exception("Evaluating alert %s failed", alert.id)
        error = {"message": f"{type(exc).__name__}: {exc}"}
    state = AlertState.ERRORED if error else AlertState.FIRING if evaluation.breaches else AlertState.NOT_FIRING
    value = evaluation.value if evaluation.value is not None and math.isfinite(evaluation.value) else None

    targets = {}
    if state != AlertState.NOT_FIRING:
        delivery = notify(_notification(alert, state, evaluation, error))
        targets = delivery.targets
        if delivery.errors:  # recorded on the check, next to an evaluation error if there is one
            failed = "; ".join(f"{name}: {message}" for name, message in delivery.errors.items())
            error = {**(error or {"message": f"Error sending notifications: {failed}"}), "notification_errors": delivery.errors}
    with transaction.atomic():
        fields = {
            **updates,
            "state": state,
            "last_checked_at": now,
            "next_check_at": next_check_time(alert.calculation_interval, now, tz),
            "last_value": value,
        }
        if targets:
            fields["last_notified_at"] = now
        if _save(alert, **fields):
            AlertCheck.objects.create(
                alert_configuration_id=alert.id,
                created_at=now,
                calculated_value=value,
                condition=alert.condition,
                state=state,
                targets_notified=targets,
                error=error,
                triggered_metadata=evaluation.triggered_metadata,
            )
    return state


def _claim(alert_id, now: datetime, force: bool) -> bool:
    candidates = AlertConfiguration.objects.filter(pk=alert_id, enabled=True, insight__deleted=False)
    if not force:
        candidates = candidates.filter(Q(next_check_at__isnull=True) | Q(next_check_at__lte=now))
    return candidates.update(next_check_at=now + CLAIM_LEASE) == 1


def _save(alert: AlertConfiguration, **fields) -> bool:
    """Update only these columns (the alert may have been edited or deleted meanwhile)."""
    return AlertConfiguration.objects.filter(pk=alert.pk).update(**fields) == 1


def _notification(alert: AlertConfiguration, state: str, evaluation: Evaluation, error: dict | None) -> AlertNotification:
    recipients = tuple(alert.subscribed_users.filter(is_active=True).order_by("id").values_list("email", flat=True))
    return AlertNotification(
        alert_id=str(alert.id),
        alert_name=alert.name,
        team_id=alert.team_id,
        insight_id=alert.insight_id,
        insight_short_id=alert.insight.short_id,
        insight_name=alert.insight.name or alert.insight.derived_name or "",
        state=state,
        value=evaluation.value,
        breaches=evaluation.breaches,
        error=error["message"] if error else None,
        recipients=recipients,
    )


def team_timezone(team) -> ZoneInfo:
    try:
        return ZoneInfo(team.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def next_check_time(interval: str, now: datetime, tz: ZoneInfo) -> datetime:
    """Hourly alerts an hour later; the others early in the team's next day, week (Monday) or month,
    keeping the current minute so that alerts created at different times spread out."""
    if interval == CalculationInterval.HOURLY:
        return now + timedelta(hours=1)
    local = now.astimezone(tz)
    if interval == CalculationInterval.WEEKLY:
        day, hour = local.date() + timedelta(days=7 - local.weekday()), 3
    elif interval == CalculationInterval.MONTHLY:
        day, hour = (local.replace(day=28) + timedelta(days=4)).replace(day=1).date(), 4
    else:
        day, hour = local.date() + timedelta(days=1), 1
    wall = datetime(day.year, day.month, day.day, hour, local.minute, local.second, tzinfo=tz)
    return wall.astimezone(ZoneInfo("UTC"))


def _next_monday(now: datetime, tz: ZoneInfo) -> datetime:
    local = now.astimezone(tz)
    monday = local.date() + timedelta(days=7 - local.weekday())
    return datetime(monday.year, monday.month, monday.day, tzinfo=tz).astimezone(ZoneInfo("UTC"))


def delete_old_checks(now: datetime | None = None) -> int:
    """Check history is kept for ALERT_CHECK_RETENTION_DAYS (14 by default), as in PostHog."""
    days = int(getattr(settings, "ALERT_CHECK_RETENTION_DAYS", 14))
    deleted, _ = AlertCheck.objects.filter(created_at__lt=(now or timezone.now()) - timedelta(days=days)).delete()
    return deleted
