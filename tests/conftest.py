import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from .factories import make_key, make_member, make_team


@pytest.fixture(autouse=True)
def _clear_cache(settings):
    # Throttle counters and query results live in the cache: start every test clean.
    _clear_caches(settings)
    settings.RATE_LIMIT_ENABLED = False
    # Production hashes with PBKDF2; tests need speed, not key stretching.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield
    _clear_caches(settings)


def _clear_caches(settings):
    for alias in settings.CACHES:  # `default` and the query `results` cache
        caches[alias].clear()


@pytest.fixture
def team(db):
    return make_team()


@pytest.fixture
def user(team):
    return make_member(team)


@pytest.fixture
def api_key(user):
    return make_key(user)


@pytest.fixture
def client(api_key):
    """An API client authenticated with an all-scopes personal API key of a team member."""
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return api


@pytest.fixture
def anon_client():
    return APIClient()


def error(type_, code, detail, attr=None):
    return {"type": type_, "code": code, "detail": detail, "attr": attr}
