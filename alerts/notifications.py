"""Telling subscribers that an alert fired or errored.

Delivery goes through the backends named in the `ALERT_NOTIFICATION_BACKENDS` setting (dotted paths
to `NotificationBackend` subclasses): by default a log entry, an email to each subscriber (Django's
email framework, when configured) and a JSON POST to each of `ALERT_WEBHOOK_URLS`. A backend
returns the targets it really reached; the check's `targets_notified` lists only those, and what
failed is recorded on the check.
"""
import abc
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

DEFAULT_BACKENDS = (
    "alerts.notifications.LogNotificationBackend",
    "alerts.notifications.EmailNotificationBackend",
    "alerts.notifications.WebhookNotificationBackend",
)
UNCONFIGURED_EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"


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

    @property
    def title(self) -> str:
        name = self.alert_name or self.insight_name or self.insight_short_id
        return f"Alert '{name}' is {'firing' if self.state == 'Firing' else 'erroring'}"


class DeliveryError(Exception):
    """Some or all targets of a backend were not reached; `delivered` lists those that were."""

    def __init__(self, message: str, delivered: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.delivered = delivered or {}


class NotificationBackend(abc.ABC):
    # Backends that write to the alert's subscribers are skipped when it has none.
    needs_recipients = True

    @abc.abstractmethod
    def send(self, notification: AlertNotification) -> dict[str, list[str]]:
        """Deliver the notification; return the targets reached, e.g. {"users": [emails]} ({} for none).
        Raise DeliveryError (with what was reached) when a target could not be."""


class LogNotificationBackend(NotificationBackend):
    """Writes a log entry; reaches nobody."""

    def send(self, notification: AlertNotification) -> dict[str, list[str]]:
        reasons = "; ".join(notification.breaches) or notification.error or ""
        logger.warning(
            "Alert %s (%s) on insight %s is %s: %s. Subscribers: %s. %s",
            notification.alert_name or notification.alert_id,
            notification.alert_id,
            notification.insight_short_id,
            notification.state,
            reasons,
            ", ".join(notification.recipients),
            notification.url,
        )
        return {}


class EmailNotificationBackend(NotificationBackend):
    """One email per subscriber, through Django's configured email backend."""

    def send(self, notification: AlertNotification) -> dict[str, list[str]]:
        if settings.EMAIL_BACKEND == UNCONFIGURED_EMAIL_BACKEND:
            return {}
        reasons = list(notification.breaches) or [notification.error or ""]
        body = "\n".join(
            [
                f"{notification.title} on insight '{notification.insight_name or notification.insight_short_id}'.",
                "",
                *(f"- {reason}" for reason in reasons),
                "",
                f"View the alert: {notification.url}",
            ]
        )
        delivered, failures = [], []
        connection = get_connection(fail_silently=False)
        try:
            connection.open()
        except Exception as exc:  # SMTP and socket errors alike
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        try:
            for recipient in notification.recipients:
                message = EmailMessage(notification.title, body, settings.DEFAULT_FROM_EMAIL, [recipient], connection=connection)
                try:
                    message.send()
                    delivered.append(recipient)
                except Exception as exc:
                    failures.append(f"{recipient}: {type(exc).__name__}: {exc}")
        finally:
            connection.close()
        targets = {"users": delivered} if delivered else {}
        if failures:
            raise DeliveryError("; ".join(failures), targets)
        return targets


class WebhookNotificationBackend(NotificationBackend):
    """POSTs the notification as JSON to each of ALERT_WEBHOOK_URLS, retrying with exponential backoff
    on network errors, 429 and 5xx answers."""

    needs_recipients = False

    def send(self, notification: AlertNotification) -> dict[str, list[str]]:
        payload = json.dumps(webhook_payload(notification)).encode()
        delivered, failures = [], []
        for url in settings.ALERT_WEBHOOK_URLS:
            error = self._post(url, payload)
            if error is None:
                delivered.append(_redacted(url))
            else:
                failures.append(f"{_redacted(url)}: {error}")
        targets = {"webhooks": delivered} if delivered else {}
        if failures:
            raise DeliveryError("; ".join(failures), targets)
        return targets

    @staticmethod
    def _post(url: str, payload: bytes) -> str | None:
        """None once delivered, else why the last attempt failed."""
        attempts = 1 + max(0, settings.ALERT_WEBHOOK_RETRIES)
        error = None
        for attempt in range(attempts):
            if attempt:
                time.sleep(settings.ALERT_WEBHOOK_BACKOFF_SECONDS * 2 ** (attempt - 1))
            request = urllib.request.Request(
                url, data=payload, method="POST", headers={"Content-Type": "application/json", "User-Agent": "insights-api-alerts"}
            )
            try:
                with urllib.request.urlopen(request, timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS):
                    return None
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code}"
                if exc.code != 429 and exc.code < 500:
                    break  # the receiver refuses this payload: retrying will not help
            except (urllib.error.URLError, OSError, ValueError) as exc:
                error = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        return f"{error} after {attempt + 1} attempt(s)"


def webhook_payload(notification: AlertNotification) -> dict:
    return {
        "title": notification.title,
        "alert": {"id": notification.alert_id, "name": notification.alert_name, "state": notification.state, "url": notification.url},
        "insight": {"id": notification.insight_id, "short_id": notification.insight_short_id, "name": notification.insight_name},
        "team_id": notification.team_id,
        "value": notification.value,
        "breaches": list(notification.breaches),
        "error": notification.error,
    }


def _redacted(url: str) -> str:
    """Webhook URLs often carry a secret in their path or query: record only the scheme and host."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _backends() -> list[NotificationBackend]:
    paths = getattr(settings, "ALERT_NOTIFICATION_BACKENDS", DEFAULT_BACKENDS)
    return [import_string(path)() for path in paths]


@dataclass
class Delivery:
    targets: dict[str, list[str]] = field(default_factory=dict)  # the check's `targets_notified`
    errors: dict[str, str] = field(default_factory=dict)  # backend name -> what failed


def notify(notification: AlertNotification) -> Delivery:
    """Send through every backend; one failing channel never hides the alert from the others."""
    delivery = Delivery()
    for backend in _backends():
        if backend.needs_recipients and not notification.recipients:
            continue
        name = type(backend).__name__
        try:
            reached = backend.send(notification)
        except DeliveryError as exc:
            logger.warning("Alert notification backend %s could not deliver everything: %s", name, exc)
            reached = exc.delivered
            delivery.errors[name] = str(exc)
        except Exception as exc:
            logger.exception("Alert notification backend %s failed", name)
            reached = {}
            delivery.errors[name] = f"{type(exc).__name__}: {exc}"
        for kind, targets in (reached or {}).items():
            delivery.targets.setdefault(kind, []).extend(t for t in targets if t not in delivery.targets[kind])
    return delivery
