import pytest
from django.core.cache import caches
from rest_framework.test import APIClient

from .factories import make_key, make_member, make_team

# The shared scope battery asserts outside test modules: have pytest explain its failures too.
pytest.register_assert_rewrite("tests.scopes")


@pytest.fixture(scope="session", autouse=True)
def _private_results_cache(tmp_path_factory):
    """Query results kept in files (no Redis) go to a directory of this test process, so test
    runs in parallel (xdist, several checkouts) never read each other's results."""
    from django.conf import settings
    from django.test import override_settings

    results = settings.CACHES.get("results", {})
    if not results.get("BACKEND", "").endswith("FileBasedCache"):
        yield
        return
    with override_settings(CACHES={**settings.CACHES, "results": {**results, "LOCATION": str(tmp_path_factory.mktemp("results"))}}):
        yield


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
def api_client(request):
    """Makes API clients authenticated with a new personal API key (Authorization: Bearer).

    `api_client(scopes=["insight:read"])`: the key's scopes (default all, `*`; `None` is a legacy
    unscoped key); `team=` / `organization=` restrict the key to that team's project / that
    organization; `user=` owns the key (default: the `user` fixture); `key=` authenticates with
    an existing raw key instead of making one.
    """

    def make(scopes=("*",), *, team=None, organization=None, user=None, key=None) -> APIClient:
        if key is None:
            restrictions = {}
            if team is not None:
                restrictions["scoped_teams"] = [team.id]
            if organization is not None:
                restrictions["scoped_organizations"] = [str(organization.id)]
            key = make_key(user or request.getfixturevalue("user"), scopes=scopes, **restrictions)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return api

    return make


@pytest.fixture
def client(api_client, api_key):
    """An API client authenticated with an all-scopes personal API key of a team member."""
    return api_client(key=api_key)


@pytest.fixture
def anon_client():
    return APIClient()


def error(type_, code, detail, attr=None):
    return {"type": type_, "code": code, "detail": detail, "attr": attr}


@pytest.fixture(scope="session")
def _clickhouse_dir(tmp_path_factory):
    # chDB opens one data directory per process: each test process (xdist worker) gets its own.
    return tmp_path_factory.mktemp("clickhouse")


@pytest.fixture
def clickhouse(settings, _clickhouse_dir):
    """ClickHouse in-process (chDB) as the event engine for this test, tables migrated and empty."""
    pytest.importorskip("chdb")
    from events.clickhouse import get_client, reset_client
    from events.clickhouse.schema import migrate, truncate

    settings.EVENTS_ENGINE = "chdb"
    settings.CLICKHOUSE_DATA_DIR = _clickhouse_dir
    # Capture resolves persons itself: the spool's flusher would on its own database connection,
    # which cannot see the test's uncommitted transaction (tests/events/test_clickhouse_spool_persons.py
    # covers that mode, committing).
    settings.CLICKHOUSE_SPOOL_PERSONS = False
    reset_client()
    client = get_client()
    migrate(client)
    truncate(client)
    yield client
    reset_client()


@pytest.fixture(scope="session")
def clickhouse_http_endpoint(tmp_path_factory):
    """A chDB-backed ClickHouse HTTP endpoint (tests/clickhouse_http.py) in a child process: chDB
    opens one data directory per process, and this test process may use its own (`clickhouse`)."""
    pytest.importorskip("chdb")
    pytest.importorskip("clickhouse_connect")
    from .clickhouse_http import EndpointProcess

    endpoint = EndpointProcess(tmp_path_factory.mktemp("clickhouse_http")).start()
    yield endpoint
    endpoint.stop()


@pytest.fixture
def clickhouse_http(settings, clickhouse_http_endpoint):
    """A ClickHouse server over HTTP as the event engine for this test, tables migrated and empty."""
    from events.clickhouse import get_client, reset_client
    from events.clickhouse.schema import migrate, truncate

    settings.EVENTS_ENGINE = "clickhouse"
    settings.CLICKHOUSE_URL = clickhouse_http_endpoint.url
    reset_client()
    client = get_client()
    migrate(client)
    truncate(client)
    yield client
    client.close()
    reset_client()
