"""Behind a reverse proxy: the share-password throttle keys on the real client address, and share
cookies are Secure behind TLS, only for what trusted proxies report."""
import pytest
from django.test import Client

from core.proxy import client_address, _networks
from sharing import throttling
from tests.sharing.conftest import engine, make_insight  # noqa: F401 (fixture)
from tests.sharing.test_password_protection import PASSWORD, protect, unlock

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.7"


@pytest.fixture
def behind_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "127.0.0.1"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


@pytest.fixture
def token(client, team, user, engine):  # noqa: F811
    return protect(client, team, make_insight(team, user))


def fail_until_blocked(token, **extra):
    for _ in range(throttling.MAX_FAILED_ATTEMPTS):
        assert unlock(token, "guess", **extra).status_code == 401


def test_throttle_keys_on_the_client_behind_a_trusted_proxy(behind_proxy, token):
    fail_until_blocked(token, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert unlock(token, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    # Another client through the same proxy is not locked out by the first one's failures.
    assert unlock(token, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.10").status_code == 200
    # Nor can the blocked client escape by prepending a made-up address: the proxy appends the real one.
    assert unlock(token, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.9").status_code == 429
    # Through two trusted proxies, the client is the first address that is not one of them.
    assert unlock(token, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.8").status_code == 429


def test_forwarded_for_from_an_untrusted_peer_is_ignored(behind_proxy, token):
    fail_until_blocked(token, REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="203.0.113.1")
    # Rotating X-Forwarded-For does not help a direct attacker.
    assert unlock(token, REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="203.0.113.2").status_code == 429


def test_off_by_default_the_peer_address_counts(settings, token):
    assert settings.TRUSTED_PROXIES == []
    fail_until_blocked(token, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert unlock(token, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.10").status_code == 429


def test_share_cookie_is_secure_behind_tls(behind_proxy, token):
    response = unlock(token, PASSWORD, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert response.status_code == 200
    assert response.cookies["posthog_sharing_token"]["secure"] is True
    # The same header from a peer that is not a trusted proxy proves nothing.
    spoofed = unlock(token, PASSWORD, REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_PROTO="https")
    assert spoofed.cookies["posthog_sharing_token"]["secure"] == ""
    plain = unlock(token, PASSWORD, REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_PROTO="http")
    assert plain.cookies["posthog_sharing_token"]["secure"] == ""


def test_client_address_rules():
    networks = _networks(("10.0.0.0/8", "2001:db8::/32"))
    assert client_address({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 1.2.3.4, 10.9.9.9"}, networks) == "1.2.3.4"
    assert client_address({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "not-an-ip"}, networks) == "10.0.0.1"
    assert client_address({"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "[2001:db9::1]"}, networks) == "2001:db9::1"
    assert client_address({"REMOTE_ADDR": "10.0.0.1"}, networks) == "10.0.0.1"


def test_bad_trusted_proxies_setting_fails_at_start():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='insights_api.settings'; django.setup()"],
        env={**__import__("os").environ, "TRUSTED_PROXIES": "10.0.0.0/8,not-a-network"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "TRUSTED_PROXIES: 'not-a-network' does not appear to be an IPv4 or IPv6 network" in result.stderr


def test_captured_ip_is_the_client_behind_trusted_proxies(behind_proxy, team):
    import json

    from events.models import Event

    def send(event, **extra):
        body = {"api_key": team.api_token, "batch": [{"event": event, "distinct_id": "u1", "properties": {}}]}
        assert Client().post("/batch/", json.dumps(body), content_type="application/json", **extra).status_code == 200

    send("proxied", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.9")  # 192.0.2.1 is made up by the client
    send("direct", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="192.0.2.1")
    assert {e.event: e.properties["$ip"] for e in Event.objects.filter(team=team)} == {"proxied": "203.0.113.9", "direct": "198.51.100.1"}


def test_secure_cookies_are_set_from_the_environment():
    import os
    import subprocess
    import sys

    script = ("import django, os; os.environ['DJANGO_SETTINGS_MODULE']='insights_api.settings'; django.setup(); "
              "from django.conf import settings; print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE)")
    run = lambda env: subprocess.run([sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout.split()  # noqa: E731
    assert run({"SESSION_COOKIE_SECURE": "true", "CSRF_COOKIE_SECURE": "1"}) == ["True", "True"]
    assert run({"SESSION_COOKIE_SECURE": "false", "CSRF_COOKIE_SECURE": "0"}) == ["False", "False"]
