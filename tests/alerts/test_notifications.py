"""Alert notifications really go out: email through Django's email framework (locmem in tests, a
refused SMTP connection for failures) and webhooks to a real HTTP server on 127.0.0.1."""
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail

from alerts.notifications import DEFAULT_BACKENDS
from tests.factories import make_member

from .conftest import make_alert
from .test_evaluation import WEDNESDAY, run

pytestmark = pytest.mark.django_db


class Receiver:
    """A webhook receiver answering the statuses in `script` in turn (then 200), optionally slowly."""

    def __init__(self, script=(), delay=0.0):
        self.script, self.delay, self.received = list(script), delay, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((time.monotonic(), self.headers["Content-Type"], json.loads(body)))
                time.sleep(receiver.delay)
                status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token?key=abc"
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory(settings):
    settings.ALERT_WEBHOOK_BACKOFF_SECONDS = 0.05
    settings.ALERT_WEBHOOK_TIMEOUT_SECONDS = 2
    made = []

    def make(*args, **kwargs):
        made.append(Receiver(*args, **kwargs))
        settings.ALERT_WEBHOOK_URLS = [r.url for r in made]
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def default_backends(settings):
    settings.ALERT_NOTIFICATION_BACKENDS = list(DEFAULT_BACKENDS)
    settings.ALERT_WEBHOOK_URLS = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_email_is_sent_to_each_subscriber(engine, team, user, insight, default_backends, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "alerts@example.com"
    other = make_member(team)
    engine.series([0, 11, 0])
    alert, check = run(make_alert(team, insight, [user, other], upper=10, name="Spike"))
    assert [m.to for m in mail.outbox] == [[user.email], [other.email]]
    message = mail.outbox[0]
    assert message.subject == "Alert 'Spike' is firing"
    assert message.from_email == "alerts@example.com"
    assert "$pageview: the value for the previous day is 11, above the upper threshold of 10" in message.body
    assert f"/project/{team.id}/insights/{insight.short_id}/alerts/{alert.id}" in message.body
    assert check.targets_notified == {"users": [user.email, other.email]}
    assert alert.last_notified_at == WEDNESDAY and check.error is None


def test_without_email_configured_nobody_is_claimed_notified(engine, team, user, insight, default_backends, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"  # the default without EMAIL_URL/EMAIL_HOST
    engine.series([0, 11, 0])
    alert, check = run(make_alert(team, insight, [user], upper=10))
    assert alert.state == "Firing"
    assert check.targets_notified == {} and alert.last_notified_at is None
    assert check.error is None


def test_smtp_failure_is_recorded_and_not_claimed(engine, team, user, insight, default_backends, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2  # nothing listens
    engine.series([0, 11, 0])
    alert, check = run(make_alert(team, insight, [user], upper=10))
    assert alert.state == "Firing" and check.state == "Firing"
    assert check.targets_notified == {} and alert.last_notified_at is None
    assert check.error["message"].startswith("Error sending notifications: EmailNotificationBackend: ConnectionRefusedError")
    assert set(check.error["notification_errors"]) == {"EmailNotificationBackend"}


def test_webhook_receives_the_alert_as_json(engine, team, user, insight, default_backends, receiver_factory, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    receiver = receiver_factory()
    engine.series([0, 11, 0])
    alert, check = run(make_alert(team, insight, [user], upper=10, name="Spike"))
    ((_, content_type, payload),) = receiver.received
    assert content_type == "application/json"
    assert payload == {
        "title": "Alert 'Spike' is firing",
        "alert": {"id": str(alert.id), "name": "Spike", "state": "Firing", "url": payload["alert"]["url"]},
        "insight": {"id": insight.id, "short_id": insight.short_id, "name": "Pageviews"},
        "team_id": team.id,
        "value": 11,
        "breaches": ["$pageview: the value for the previous day is 11, above the upper threshold of 10"],
        "error": None,
    }
    assert payload["alert"]["url"].endswith(f"/alerts/{alert.id}")
    # Recorded without the secret parts of the URL.
    assert check.targets_notified == {"users": [user.email], "webhooks": [receiver.origin]}
    assert alert.last_notified_at == WEDNESDAY


def test_webhook_without_subscribers_still_goes_out(engine, team, insight, default_backends, receiver_factory):
    receiver = receiver_factory()
    engine.series([0, 11, 0])
    alert, check = run(make_alert(team, insight, [], upper=10))
    assert len(receiver.received) == 1
    assert check.targets_notified == {"webhooks": [receiver.origin]}


def test_webhook_retries_with_backoff_then_succeeds(engine, team, insight, default_backends, receiver_factory):
    receiver = receiver_factory(script=[503, 500])
    engine.series([0, 11, 0])
    alert, check = run(make_alert(team, insight, [], upper=10))
    times = [at for at, _, _ in receiver.received]
    assert len(times) == 3
    # Each retry waits at least its backoff (0.05 s, then 0.1 s); a busy machine only adds to a gap.
    assert times[1] - times[0] >= 0.05 and times[2] - times[1] >= 0.1
    assert check.targets_notified == {"webhooks": [receiver.origin]} and check.error is None


def test_webhook_failure_after_retries_is_recorded_on_the_check(engine, team, user, insight, default_backends, receiver_factory, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.ALERT_WEBHOOK_RETRIES = 2
    failing = receiver_factory(script=[500, 502, 503, 200])
    working = receiver_factory()
    engine.series([0, 11, 0])
    alert, check = run(make_alert(team, insight, [user], upper=10))
    assert len(failing.received) == 3  # the first attempt and 2 retries
    assert check.targets_notified == {"users": [user.email], "webhooks": [working.origin]}
    assert check.error == {
        "message": f"Error sending notifications: WebhookNotificationBackend: {failing.origin}: HTTP 503 after 3 attempt(s)",
        "notification_errors": {"WebhookNotificationBackend": f"{failing.origin}: HTTP 503 after 3 attempt(s)"},
    }
    assert alert.state == "Firing" and alert.last_notified_at == WEDNESDAY


def test_webhook_client_errors_are_not_retried(engine, team, insight, default_backends, receiver_factory):
    receiver = receiver_factory(script=[404])
    engine.series([0, 11, 0])
    alert, check = run(make_alert(team, insight, [], upper=10))
    assert len(receiver.received) == 1
    assert check.targets_notified == {} and alert.last_notified_at is None
    assert check.error["notification_errors"] == {"WebhookNotificationBackend": f"{receiver.origin}: HTTP 404 after 1 attempt(s)"}


def test_webhook_timeout(engine, team, insight, default_backends, receiver_factory, settings):
    receiver = receiver_factory(delay=1.0)
    settings.ALERT_WEBHOOK_TIMEOUT_SECONDS = 0.2
    settings.ALERT_WEBHOOK_RETRIES = 1
    engine.series([0, 11, 0])
    alert, check = run(make_alert(team, insight, [], upper=10))
    assert len(receiver.received) == 2
    assert check.targets_notified == {}
    assert "after 2 attempt(s)" in check.error["notification_errors"]["WebhookNotificationBackend"]


def test_errored_alert_keeps_its_evaluation_error_next_to_delivery_failures(engine, team, insight, default_backends, receiver_factory):
    receiver = receiver_factory(script=[400])
    engine.error = ValueError("bad")
    alert, check = run(make_alert(team, insight, [], upper=10))
    assert alert.state == "Errored"
    assert receiver.received[0][2]["error"] == "ValueError: bad"
    assert check.error == {
        "message": "ValueError: bad",
        "notification_errors": {"WebhookNotificationBackend": f"{receiver.origin}: HTTP 400 after 1 attempt(s)"},
    }
