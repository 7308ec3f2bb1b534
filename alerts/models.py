"""Alerts on insights: their thresholds, their subscribers and the history of their checks."""
import os
import time
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Team
from insights.models import Insight


def time_ordered_uuid() -> uuid.UUID:
    """A UUID whose first 48 bits are the creation time in milliseconds (PostHog's ids sort by time)."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    # Stamp version 7 and the RFC 4122 variant so the value is a well-formed UUID.
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return uuid.UUID(int=value)


class AlertState(models.TextChoices):
    FIRING = "Firing"
    NOT_FIRING = "Not firing"
    ERRORED = "Errored"
    SNOOZED = "Snoozed"


class CalculationInterval(models.TextChoices):
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class Threshold(models.Model):
    """Bounds drawn on an insight; created and changed only through an alert."""

    id = models.UUIDField(primary_key=True, default=time_ordered_uuid, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    insight = models.ForeignKey(Insight, on_delete=models.CASCADE, related_name="thresholds")
    name = models.CharField(max_length=255, blank=True, default="")
    # {"type": "absolute" | "percentage", "bounds": {"lower": number | null, "upper": number | null}}
    configuration = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        indexes = [models.Index(fields=["team", "insight", "created_at"], name="threshold_team_insight")]


class AlertConfiguration(models.Model):
    id = models.UUIDField(primary_key=True, default=time_ordered_uuid, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    insight = models.ForeignKey(Insight, on_delete=models.CASCADE, related_name="alerts")
    name = models.CharField(max_length=255, blank=True, default="")
    subscribed_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="AlertSubscription", through_fields=("alert_configuration", "user"), related_name="+"
    )
    threshold = models.ForeignKey(Threshold, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts")
    condition = models.JSONField(default=dict)  # {"type": "absolute_value" | "relative_increase" | "relative_decrease"}
    config = models.JSONField(null=True, blank=True)  # {"type": "TrendsAlertConfig" | "FunnelsAlertConfig" | "HogQLAlertConfig", ...}
    state = models.CharField(max_length=10, choices=AlertState.choices, default=AlertState.NOT_FIRING)
    enabled = models.BooleanField(default=True)
    calculation_interval = models.CharField(max_length=10, choices=CalculationInterval.choices, default=CalculationInterval.DAILY)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    skip_weekend = models.BooleanField(null=True, blank=True, default=False)
    # {"blocked_windows": [{"start": "HH:MM", "end": "HH:MM"}]}: local times when no check runs.
    schedule_restriction = models.JSONField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    # Also the claim of a check in progress: a checker moves it ahead before computing (see checks.py).
    next_check_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)  # calculated value of the latest check
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        indexes = [
            models.Index(fields=["team", "created_at"], name="alert_team_created"),
            models.Index(fields=["enabled", "next_check_at"], name="alert_due"),
        ]

    def __str__(self):
        return self.name or str(self.id)


class AlertSubscription(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    alert_configuration = models.ForeignKey(AlertConfiguration, on_delete=models.CASCADE, related_name="subscriptions")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "alert_configuration"], name="unique_alert_subscription")]


class AlertCheck(models.Model):
    id = models.UUIDField(primary_key=True, default=time_ordered_uuid, editable=False)
    alert_configuration = models.ForeignKey(AlertConfiguration, on_delete=models.CASCADE, related_name="checks")
    created_at = models.DateTimeField(default=timezone.now)
    calculated_value = models.FloatField(null=True, blank=True)
    condition = models.JSONField(null=True, blank=True)  # the alert's condition when it was checked
    state = models.CharField(max_length=10, choices=AlertState.choices)
    # {"users": [emails]} when notifications went out; {} otherwise.
    targets_notified = models.JSONField(default=dict, blank=True)
    error = models.JSONField(null=True, blank=True)  # {"message": ...} when the check errored
    # Which of several values (breakdown value, SQL row) breached, e.g. {"series_index": 0, "breakdown_value": "us"}.
    triggered_metadata = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["alert_configuration", "-created_at"], name="alertcheck_alert_created"),
            models.Index(fields=["created_at"], name="alertcheck_created"),
        ]
