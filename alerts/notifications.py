"""Telling subscribers that an alert fired or errored.

Delivery goes through the backends named in the `ALERT_NOTIFICATION_BACKENDS` setting (dotted paths
to `NotificationBackend` subclasses); the default only writes a log entry. An email or webhook
backend is a subclass with its own `send`.
"""
import abc
import logging
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

DEFAULT_BACKENDS = ("alerts.notifications.LogNotificationBackend",)


@dataclass(frozen=True)
class AlertNotification:
    alert_id: str
    alert_name: str
    team_id: int
    insight_id: int
    insight_short_id: str
    insight_name: str
    state: str  # "Firing" or "Errored"
    value: float | None
    breaches: tuple[str, ...]
    error: str | None
    recipients: tuple[str, ...]  # email addresses

    @property
    def url(self) -> str:
        return f"{settings.SITE_URL}/project/{self.team_id}/insights/{self.insight_short_id}/alerts/{self.alert_id}"


class NotificationBackend(abc.ABC):
    @abc.abstractmethod
    def send(self, notification: AlertNotification) -> None:
        """Deliver the notification to its recipients; raise if it could not be delivered."""


class LogNotificationBackend(NotificationBackend):
    def send(self, notification: AlertNotification) -> None:
        reasons = "; ".join(notification.breaches) or notification.error or ""
        logger.warning(
            "Alert %s (%s) on insight %s is %s: %s. Notifying %s. %s",
            notification.alert_name or notification.alert_id,
            notification.alert_id,
            notification.insight_short_id,
            notification.state,
            reasons,
            ", ".join(notification.recipients),
            notification.url,
        )


def _backends() -> list[NotificationBackend]:
    paths = getattr(settings, "ALERT_NOTIFICATION_BACKENDS", DEFAULT_BACKENDS)
    return [import_string(path)() for path in paths]


def notify(notification: AlertNotification) -> dict:
    """Send through every backend; returns the check's `targets_notified` ({} when nobody was told)."""
    if not notification.recipients:
        return {}
    delivered = False
    for backend in _backends():
        try:
            backend.send(notification)
            delivered = True
        except Exception:  # one failing channel must not hide the alert from the others
            logger.exception("Alert notification backend %s failed", type(backend).__name__)
    return {"users": list(notification.recipients)} if delivered else {}
