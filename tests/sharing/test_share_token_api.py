"""Viewers of a share reading the insights API with `?sharing_access_token=` or a share token.

Missing or refused credentials answer 401 (with a Bearer challenge), as everywhere in this API;
PostHog answers 403 on these routes.
"""
import pytest
from rest_framework.test import APIClient

from sharing.authentication import shared_execution_mode
from tests.conftest import error
from tests.factories import make_team

from .conftest import make_environment, make_insight, sharing_url

pytestmark = pytest.mark.django_db

INVALID = error("authentication_error", "authentication_failed", "Sharing access token is invalid.")


@pytest.fixture
def shared(client, team, user, insight):
    """The shared insight, next to one that is not shared; returns the access token."""
    make_insight(team, user, name="Private roadmap")
    response = client.patch(sharing_url(team, insight), {"enabled": True}, format="json")
    return response.json()["access_token"]


def insights_url(team, suffix=""):
    return f"/api/projects/{team.id}/insights/{suffix}"


def test_access_token_lists_and_retrieves_only_the_shared_insight(team, insight, shared, engine):
    viewer = APIClient()
    listed = viewer.get(insights_url(team), {"sharing_access_token": shared})
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["results"]] == [insight.id]
    retrieved = viewer.get(insights_url(team, f"{insight.id}/"), {"sharing_access_token": shared})
    assert retrieved.status_code == 200
    assert retrieved.json()["name"] == "Weekly pageviews"
    assert retrieved.json()["user_access_level"] is None  # serialized as shared
    assert viewer.get(f"/api/environments/{team.id}/insights/", {"sharing_access_token": shared}).status_code == 200


def test_other_insights_are_invisible(team, user, insight, shared):
    hidden = team.insights.get(name="Private roadmap")
    response = APIClient().get(insights_url(team, f"{hidden.id}/"), {"sharing_access_token": shared})
    assert response.status_code == 404
    response = APIClient().get(insights_url(team, f"{hidden.short_id}/"), {"sharing_access_token": shared})
    assert response.status_code == 404


@pytest.mark.parametrize("method", ["post", "patch", "put", "delete"])
def test_access_token_is_read_only(team, insight, shared, method):
    response = getattr(APIClient(), method)(insights_url(team, f"{insight.id}/?sharing_access_token={shared}"), {"name": "x"}, format="json")
    assert response.status_code == 401
    assert response.json() == error("authentication_error", "authentication_failed", "Sharing access token can only be used for GET requests.")


def test_unknown_disabled_and_expired_tokens_are_invalid(client, team, insight, shared, clock):
    assert APIClient().get(insights_url(team), {"sharing_access_token": "nope"}).json() == INVALID
    client.post(sharing_url(team, insight, "refresh/"))
    assert APIClient().get(insights_url(team), {"sharing_access_token": shared}).status_code == 200  # grace period
    clock.advance(seconds=301)
    assert APIClient().get(insights_url(team), {"sharing_access_token": shared}).json() == INVALID
    current = client.get(sharing_url(team, insight)).json()["access_token"]
    client.patch(sharing_url(team, insight), {"enabled": False}, format="json")
    response = APIClient().get(insights_url(team), {"sharing_access_token": current})
    assert response.status_code == 401 and response.json() == INVALID


def test_organization_forbidding_public_sharing_invalidates_tokens(team, shared):
    team.organization.allow_publicly_shared_resources = False
    team.organization.save()
    assert APIClient().get(insights_url(team), {"sharing_access_token": shared}).json() == INVALID


def test_password_protected_share_is_not_opened_by_its_access_token(client, team, insight, shared):
    client.patch(sharing_url(team, insight), {"password_required": True}, format="json")
    response = APIClient().get(insights_url(team), {"sharing_access_token": shared})
    assert response.status_code == 401
    assert response.json() == error("authentication_error", "not_authenticated", "Authentication credentials were not provided.")


def test_token_only_works_through_its_own_team(team, insight, shared):
    sibling = make_environment(team)
    for other in (sibling, make_team()):
        response = APIClient().get(insights_url(other), {"sharing_access_token": shared})
        assert response.status_code == 403
        assert response.json() == error("authentication_error", "permission_denied", "You do not have permission to perform this action.")
    response = APIClient().get("/api/projects/987654/insights/", {"sharing_access_token": shared})
    assert response.status_code == 404


def test_only_list_and_retrieve_are_shared(team, shared):
    response = APIClient().get(insights_url(team, "my_last_viewed/"), {"sharing_access_token": shared})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_share_token_bearer(client, team, user, insight, engine):
    client.patch(sharing_url(team, insight), {"enabled": True, "password_required": True}, format="json")
    client.post(sharing_url(team, insight, "passwords/"), {"raw_password": "correct horse"}, format="json")
    token = client.get(sharing_url(team, insight)).json()["access_token"]
    share_token = APIClient().post(f"/shared/{token}", {"password": "correct horse"}, format="json").json()["shareToken"]
    viewer = APIClient()
    viewer.credentials(HTTP_AUTHORIZATION=f"Bearer {share_token}")
    assert [item["id"] for item in viewer.get(insights_url(team)).json()["results"]] == [insight.id]
    assert viewer.get(insights_url(team, f"{insight.id}/")).status_code == 200
    other = make_insight(team, user, name="Not shared")
    assert viewer.get(insights_url(team, f"{other.id}/")).status_code == 404
    # Writes are not a share token's business: the header is then read as a personal API key.
    response = viewer.patch(insights_url(team, f"{insight.id}/"), {"name": "x"}, format="json")
    assert response.status_code == 401
    assert response.json() == error(
        "authentication_error", "authentication_failed", "Personal API key found in request Authorization header is invalid."
    )


def test_personal_api_keys_still_work_next_to_sharing(client, team, insight, shared):
    listed = client.get(insights_url(team))
    assert listed.status_code == 200
    assert len(listed.json()["results"]) == 2


@pytest.mark.parametrize(
    "mode, shared_mode",
    [
        ("force_cache", "lazy_async"),
        ("async", "async"),
        ("blocking", "blocking"),
        ("force_blocking", "blocking"),
        ("force_async", "lazy_async"),
        ("lazy_async", "lazy_async"),
        ("async_except_on_cache_miss", "lazy_async"),
    ],
)
def test_shared_execution_modes(mode, shared_mode):
    assert shared_execution_mode(mode) == shared_mode
