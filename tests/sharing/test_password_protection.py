"""Password-protected shares: the unlock page, the share token (JWT), its cookie, brute-force limits."""
import datetime as dt

import jwt
import pytest
from django.conf import settings as django_settings
from django.test import Client

from activity.models import ActivityLog
from sharing import throttling
from sharing.models import SharePassword

from .conftest import make_insight, sharing_url

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"


def protect(client, team, insight, password=PASSWORD, note="board") -> str:
    response = client.patch(sharing_url(team, insight), {"enabled": True, "password_required": True}, format="json")
    assert response.status_code == 200
    created = client.post(sharing_url(team, insight, "passwords/"), {"raw_password": password, "note": note}, format="json")
    assert created.status_code == 201
    return response.json()["access_token"]


def unlock(token, password=PASSWORD, viewer=None, path="shared", **extra):
    viewer = viewer or Client()
    return viewer.post(f"/{path}/{token}", {"password": password}, content_type="application/json", **extra)


def assert_unlock_page(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert '<form id="unlock-form"' in html and 'type="password"' in html
    assert "Weekly pageviews" not in html and "<svg" not in html


def test_locked_share_shows_the_unlock_page_without_data(client, team, insight, engine):
    token = protect(client, team, insight)
    assert_unlock_page(Client().get(f"/shared/{token}"))
    assert_unlock_page(Client().get(f"/embedded/{token}"))
    assert_unlock_page(Client().get(f"/shared/{token}.png"))
    locked = Client().get(f"/shared/{token}.json")
    assert locked.json() == {"type": "unlock"}
    assert "no-store" in locked["Cache-Control"]
    assert engine.calls == []


def test_session_of_a_member_does_not_unlock(client, team, user, insight, engine):
    token = protect(client, team, insight)
    member = Client()
    member.force_login(user)
    assert_unlock_page(member.get(f"/shared/{token}"))


def test_wrong_password_is_401_and_logged(client, team, insight, engine):
    token = protect(client, team, insight)
    response = unlock(token, "not the password", REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 401
    assert response.json() == {"error": "Incorrect password"}
    assert "posthog_sharing_token" not in response.cookies
    entry = ActivityLog.objects.get(activity="share_login_failed")
    assert entry.user is None and entry.scope == "Insight" and entry.item_id == str(insight.id)
    assert entry.detail["changes"] == [
        {
            "type": "Insight",
            "action": "changed",
            "field": "authentication_attempt",
            "before": None,
            "after": {"access_token_suffix": token[-6:], "client_ip": "203.0.113.7", "success": False, "resource_type": "insight"},
        }
    ]


@pytest.mark.parametrize(
    "body, content_type",
    [('{"password": 12345678}', "application/json"), ("{not json", "application/json"), ("{}", "application/json"), ("", "text/plain")],
)
def test_malformed_unlock_bodies_are_401(client, team, insight, engine, body, content_type):
    token = protect(client, team, insight)
    response = Client().post(f"/shared/{token}", body, content_type=content_type)
    assert response.status_code == 401
    assert response.json() == {"error": "Incorrect password"}


def test_right_password_gives_a_share_token_and_cookie(client, team, insight, engine):
    token = protect(client, team, insight)
    password = SharePassword.objects.get()
    response = unlock(token, REMOTE_ADDR="203.0.113.7")
    assert response.status_code == 200
    share_token = response.json()["shareToken"]
    assert set(response.json()) == {"shareToken"}
    claims = jwt.decode(share_token, django_settings.SECRET_KEY, algorithms=["HS256"], audience="posthog:sharing_password_protected")
    assert {key: claims[key] for key in ("share_password_id", "team_id", "access_token")} == {
        "share_password_id": password.id,
        "team_id": team.id,
        "access_token": token,
    }
    assert 24 * 3600 - 60 <= claims["exp"] - dt.datetime.now(dt.timezone.utc).timestamp() <= 24 * 3600
    cookie = response.cookies["posthog_sharing_token"]
    assert cookie.value == share_token
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax" and cookie["max-age"] == 86400
    assert cookie["path"] == f"/shared/{token}" and not cookie["secure"]
    entry = ActivityLog.objects.get(activity="share_login_success")
    assert entry.detail["changes"][0]["after"] == {
        "access_token_suffix": token[-6:],
        "client_ip": "203.0.113.7",
        "success": True,
        "resource_type": "insight",
        "password_id": str(password.id),
        "password_note": "board",
    }


def test_cookie_path_drops_the_extension(client, team, insight, engine):
    token = protect(client, team, insight)
    response = Client().post(f"/embedded/{token}.json", {"password": PASSWORD}, content_type="application/json")
    assert response.cookies["posthog_sharing_token"]["path"] == f"/embedded/{token}"


def test_any_active_password_unlocks(client, team, insight, engine):
    token = protect(client, team, insight)
    client.post(sharing_url(team, insight, "passwords/"), {"raw_password": "second password"}, format="json")
    assert unlock(token).status_code == 200
    assert unlock(token, "second password").status_code == 200


def test_cookie_unlocks_the_page(client, team, insight, engine):
    token = protect(client, team, insight)
    viewer = Client()
    assert unlock(token, viewer=viewer).status_code == 200
    page = viewer.get(f"/shared/{token}")
    assert page.status_code == 200
    assert b"Weekly pageviews" in page.content and b"<svg" in page.content
    assert "no-store" in page["Cache-Control"]
    assert b'property="og:image"' not in page.content


def test_bearer_share_token_unlocks_page_and_json(client, team, insight, engine):
    token = protect(client, team, insight)
    share_token = unlock(token).json()["shareToken"]
    viewer = Client(HTTP_AUTHORIZATION=f"Bearer {share_token}")
    assert b"Weekly pageviews" in viewer.get(f"/shared/{token}").content
    payload = viewer.get(f"/shared/{token}", HTTP_ACCEPT="application/json").json()
    assert payload["insight"]["id"] == insight.id and payload["shareToken"] == share_token
    assert viewer.get(f"/shared/{token}.json").json()["type"] == "scene"
    png = viewer.get(f"/shared/{token}.png")
    assert png["Content-Type"] == "image/png"


def test_share_token_of_another_share_is_refused(client, team, user, insight, engine):
    token = protect(client, team, insight)
    other_token = protect(client, team, make_insight(team, user, name="Other"), password="other password")
    other_share_token = unlock(other_token, "other password").json()["shareToken"]
    assert_unlock_page(Client(HTTP_AUTHORIZATION=f"Bearer {other_share_token}").get(f"/shared/{token}"))
    viewer = Client()
    viewer.cookies["posthog_sharing_token"] = other_share_token
    assert_unlock_page(viewer.get(f"/shared/{token}"))


def test_forged_expired_and_foreign_tokens_are_refused(client, team, insight, engine):
    token = protect(client, team, insight)
    password = SharePassword.objects.get()
    claims = {"share_password_id": password.id, "team_id": team.id, "access_token": token, "aud": "posthog:sharing_password_protected"}
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    candidates = [
        jwt.encode({**claims, "exp": later}, "not the server secret, though just as long", algorithm="HS256"),
        jwt.encode({**claims, "exp": dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)}, django_settings.SECRET_KEY, algorithm="HS256"),
        jwt.encode({**claims, "exp": later, "aud": "posthog:impersonted_user"}, django_settings.SECRET_KEY, algorithm="HS256"),
        jwt.encode({**claims, "exp": later, "team_id": team.id + 1}, django_settings.SECRET_KEY, algorithm="HS256"),
        jwt.encode({key: value for key, value in claims.items() if key != "share_password_id"} | {"exp": later}, django_settings.SECRET_KEY, algorithm="HS256"),
        "not-a-jwt",
    ]
    for candidate in candidates:
        assert_unlock_page(Client(HTTP_AUTHORIZATION=f"Bearer {candidate}").get(f"/shared/{token}"))
    valid = jwt.encode({**claims, "exp": later}, django_settings.SECRET_KEY, algorithm="HS256")
    assert b"Weekly pageviews" in Client(HTTP_AUTHORIZATION=f"Bearer {valid}").get(f"/shared/{token}").content


def test_deleting_the_password_revokes_its_share_tokens(client, team, insight, engine):
    token = protect(client, team, insight)
    share_token = unlock(token).json()["shareToken"]
    password_id = SharePassword.objects.get().id
    assert client.delete(sharing_url(team, insight, f"passwords/{password_id}/")).status_code == 204
    assert_unlock_page(Client(HTTP_AUTHORIZATION=f"Bearer {share_token}").get(f"/shared/{token}"))
    assert unlock(token).status_code == 401


def test_turning_protection_off_opens_the_page(client, team, insight, engine):
    token = protect(client, team, insight)
    client.patch(sharing_url(team, insight), {"password_required": False}, format="json")
    assert b"Weekly pageviews" in Client().get(f"/shared/{token}").content


def test_plain_form_post_without_javascript(client, team, insight, engine):
    token = protect(client, team, insight)
    viewer = Client()
    wrong = viewer.post(f"/shared/{token}", {"password": "nope"}, HTTP_ACCEPT="text/html")
    assert wrong.status_code == 401
    assert b"Incorrect password" in wrong.content and b'<form id="unlock-form"' in wrong.content
    right = viewer.post(f"/shared/{token}", {"password": PASSWORD}, HTTP_ACCEPT="text/html")
    assert right.status_code == 302 and right["Location"] == f"/shared/{token}"
    assert b"Weekly pageviews" in viewer.get(f"/shared/{token}").content


def test_brute_force_is_throttled_per_share_and_address(client, team, user, insight, engine, clock):
    token = protect(client, team, insight)
    other_token = protect(client, team, make_insight(team, user, name="Other"))
    for _ in range(throttling.MAX_FAILED_ATTEMPTS):
        assert unlock(token, "guess", REMOTE_ADDR="198.51.100.1").status_code == 401
    blocked = unlock(token, REMOTE_ADDR="198.51.100.1")  # even the right password
    assert blocked.status_code == 429
    wait = int(blocked["Retry-After"])
    assert 0 < wait <= throttling.WINDOW_SECONDS
    assert blocked.json() == {"error": f"Too many attempts. Try again in {wait} seconds."}
    assert ActivityLog.objects.filter(activity="share_login_failed").count() == throttling.MAX_FAILED_ATTEMPTS
    assert unlock(token, REMOTE_ADDR="198.51.100.2").status_code == 200  # another address
    assert unlock(other_token, REMOTE_ADDR="198.51.100.1").status_code == 200  # another share
    clock.advance(seconds=wait)
    assert unlock(token, REMOTE_ADDR="198.51.100.1").status_code == 200


def test_successes_are_not_counted(client, team, insight, engine):
    token = protect(client, team, insight)
    for _ in range(throttling.MAX_FAILED_ATTEMPTS + 2):
        assert unlock(token).status_code == 200


def test_rotation_keeps_passwords_and_old_share_tokens_for_the_grace_period(client, team, insight, engine, clock):
    token = protect(client, team, insight)
    share_token = unlock(token).json()["shareToken"]
    new_token = client.post(sharing_url(team, insight, "refresh/")).json()["access_token"]
    old_viewer = Client(HTTP_AUTHORIZATION=f"Bearer {share_token}")
    assert b"Weekly pageviews" in old_viewer.get(f"/shared/{token}").content
    assert_unlock_page(old_viewer.get(f"/shared/{new_token}"))  # issued for the old link only
    assert unlock(new_token).status_code == 200  # the password carried over
    clock.advance(seconds=301)
    assert old_viewer.get(f"/shared/{token}").status_code == 404
    assert unlock(token).status_code == 404
