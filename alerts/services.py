"""Writes to alerts and their thresholds, and the hooks the insights app calls.

Integration note for the insights app (call these; nothing here imports the insight views):
- `alerts_for_insights(insight_ids)` -> {insight id: [serialized alert, ...]} for the insight
  serializer's `alerts` field. Call it once per page (e.g. from the list/retrieve view, kept in
  the serializer context); it costs a fixed number of queries whatever the page size. Insights
  without alerts map to [].
- `on_insight_soft_deleted(insight)`: after a PATCH that sets `deleted` to true. Deletes its alerts.
- `on_insight_query_changed(insight)`: after every update that saved `query` (or `filters`).
  Deletes its alerts when the query is no longer alertable; switching between alertable kinds
  keeps them.
- `alerts.config.alertable_query_kind(query)` is PostHog's `Insight.alertable_query_kind`.
Call the hooks inside the update's transaction. This module imports its serializers lazily
because the insight serializers import this module.

Alert checks themselves live in `checks.py` (run by `manage.py check_alerts` and Celery beat).
"""
from django.db import transaction
from django.utils import timezone

from accounts.models import Team, User
from insights.models import Insight

from .config import alertable_query_kind
from .models import AlertCheck, AlertConfiguration, AlertState, AlertSubscription, Threshold
from .selectors import alerts_by_insight


@transaction.atomic
def create_alert(team: Team, user: User, data: dict) -> AlertConfiguration:
    data = dict(data)
    subscribers = data.pop("subscribed_users", [])
    threshold = data.pop("threshold", None)
    snoozed_until = data.pop("snoozed_until", None)
    alert = AlertConfiguration(team=team, created_by=user, **data)
    if threshold:
        alert.threshold = Threshold.objects.create(team=team, insight=alert.insight, created_by=user, **threshold)
    if snoozed_until and snoozed_until > timezone.now():
        alert.snoozed_until, alert.state = snoozed_until, AlertState.SNOOZED
    alert.save()
    _set_subscribers(alert, subscribers, user)
    return alert


@transaction.atomic
def update_alert(alert: AlertConfiguration, user: User, data: dict) -> AlertConfiguration:
    """Apply a validated (partial) update. Changing what the alert fires on (threshold, condition,
    config, insight) resets it to "Not firing"; those and a new interval make it due at once."""
    data = dict(data)
    insight = data.get("insight", alert.insight)
    reset = insight.id != alert.insight_id
    if reset and alert.threshold:  # the threshold is drawn on the watched insight
        alert.threshold.insight = insight
        alert.threshold.save(update_fields=["insight"])
    if "snoozed_until" in data:
        _snooze(alert, data.pop("snoozed_until"))
    if "threshold" in data:
        reset |= _apply_threshold(alert, insight, user, data.pop("threshold"))
    if "subscribed_users" in data:
        _set_subscribers(alert, data.pop("subscribed_users"), user)
    reset |= any(field in data and data[field] != getattr(alert, field) for field in ("condition", "config"))
    recheck = reset or any(field in data and data[field] != getattr(alert, field) for field in ("calculation_interval", "schedule_restriction"))
    for field, value in data.items():
        setattr(alert, field, value)
    if recheck:
        alert.next_check_at = None
    if reset and alert.state != AlertState.SNOOZED:
        alert.state = AlertState.NOT_FIRING
    alert.save()
    return alert


def delete_alert(alert: AlertConfiguration) -> None:
    alert.delete()


def _snooze(alert: AlertConfiguration, until) -> None:
    if until is None:
        if alert.snoozed_until is None and alert.state != AlertState.SNOOZED:
            return
        alert.snoozed_until, alert.state = None, AlertState.NOT_FIRING
    else:
        alert.snoozed_until, alert.state = until, AlertState.SNOOZED
    # The snooze shows in the check history, as in PostHog.
    alert.last_value = None
    AlertCheck.objects.create(alert_configuration=alert, calculated_value=None, condition=alert.condition, state=alert.state)


def _apply_threshold(alert: AlertConfiguration, insight: Insight, user: User, threshold_data: dict) -> bool:
    """`{}` detaches, a dict updates the alert's threshold in place or creates one. True if the bounds changed."""
    if not threshold_data:
        changed = alert.threshold_id is not None
        alert.threshold = None
        return changed
    if alert.threshold:
        threshold, before = alert.threshold, alert.threshold.configuration
        for field, value in threshold_data.items():
            setattr(threshold, field, value)
        threshold.save()
        return threshold.configuration != before
    alert.threshold = Threshold.objects.create(team_id=alert.team_id, insight=insight, created_by=user, **threshold_data)
    return True


def _set_subscribers(alert: AlertConfiguration, users, by: User) -> None:
    wanted = {user.id for user in users}
    AlertSubscription.objects.filter(alert_configuration=alert).exclude(user_id__in=wanted).delete()
    AlertSubscription.objects.bulk_create(
        [AlertSubscription(alert_configuration=alert, user_id=user_id, created_by=by) for user_id in sorted(wanted)],
        ignore_conflicts=True,
    )


# -- hooks for the insights app ----------------------------------------------------------------


def alerts_for_insights(insight_ids) -> dict[int, list[dict]]:
    from .serializers import AlertSerializer

    return {
        insight_id: [dict(item) for item in AlertSerializer(alerts, many=True, context={}).data]
        for insight_id, alerts in alerts_by_insight(insight_ids).items()
    }


def on_insight_soft_deleted(insight: Insight) -> None:
    AlertConfiguration.objects.filter(insight_id=insight.id).delete()


def on_insight_query_changed(insight: Insight) -> None:
    if alertable_query_kind(insight.query) is None:
        AlertConfiguration.objects.filter(insight_id=insight.id).delete()
