"""Outages answer 503 with Retry-After (database) or are ridden out (Redis); health endpoints."""
import socket

import pytest
from django.core.cache import caches
from django.db import connection

from insights.models import Insight

from ..conftest import error

DATABASE_UNAVAILABLE = error(
    "server_error", "database_unavailable", "The database is temporarily unavailable. Please retry shortly."
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def database_down(request):
    """The database server is gone: connecting is refused, as during a restart or failover."""
    if connection.vendor == "postgresql":
        request.getfixturevalue("transactional_db")
        saved = dict(connection.settings_dict)
        connection.close()
        connection.settings_dict["PORT"] = free_port()
        try:
            yield
        finally:
            connection.close()
            connection.settings_dict.update(saved)
        return
    pytest.skip("SQLite is a file in this process: there is no server to lose")


def test_a_write_that_finds_the_database_unavailable_is_503_with_retry_after(team, client, database_down):
    response = client.post(f"/api/projects/{team.id}/insights/", {"name": "x"}, format="json")
    assert response.status_code == 503
    assert response.json() == DATABASE_UNAVAILABLE
    assert response["Retry-After"] == "5"


def test_capture_that_finds_the_database_unavailable_is_503_so_sdks_retry(team, anon_client, database_down):
    batch = {"api_key": team.api_token, "batch": [{"event": "e", "distinct_id": "d"}]}
    response = anon_client.post("/batch/", batch, format="json")
    assert response.status_code == 503
    assert response.json() == DATABASE_UNAVAILABLE


def test_health_answers_without_the_database(anon_client, database_down):
    response = anon_client.get("/_health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_names_each_dependency(anon_client, settings, db):
    response = anon_client.get("/_readyz", HTTP_HOST="10.1.2.3")  # probes come by pod address
    assert response.status_code == 200
    expected = {"database": "ok"} | ({"redis": "ok"} if settings.REDIS_URL else {})
    assert response.json() == {"status": "ok", "checks": expected}
    assert response["Cache-Control"] == "no-store"


def test_readyz_is_503_when_the_database_is_unreachable(anon_client, database_down):
    response = anon_client.get("/_readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"


def test_health_endpoints_only_read(anon_client):
    response = anon_client.post("/_health")
    assert response.status_code == 405
    assert response.json() == error("invalid_request", "method_not_allowed", 'Method "POST" not allowed.')


@pytest.fixture
def redis_down(settings):
    """Redis configured but not there: nothing listens on its port."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings.REDIS_URL = url
    dead = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url, "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 1}}
    settings.CACHES = {"default": dead, "results": dead}
    settings.RATE_LIMIT_ENABLED = True
    yield
    # Back on the suite's own cache, which the autouse fixture clears.


def test_with_redis_down_requests_still_answer(team, client, redis_down, caplog):
    created = client.post(f"/api/projects/{team.id}/insights/", {"name": "kept"}, format="json")
    assert created.status_code == 201
    insight_id = created.json()["id"]
    listed = client.get(f"/api/projects/{team.id}/insights/")
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["results"]] == [insight_id]
    retrieved = client.get(f"/api/projects/{team.id}/insights/{insight_id}/", {"refresh": "blocking"})
    assert retrieved.status_code == 200
    patched = client.patch(f"/api/projects/{team.id}/insights/{insight_id}/", {"name": "renamed"}, format="json")
    assert patched.status_code == 200
    assert Insight.objects.get(pk=insight_id).name == "renamed"
    # django-redis logs each ignored failure: the throttles failed open with a warning.
    assert any(record.name.startswith("django_redis") for record in caplog.records)


def test_readyz_reports_redis_down_as_degraded(anon_client, db, redis_down):
    response = anon_client.get("/_readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "checks": {"database": "ok", "redis": "unavailable"}}


def test_without_redis_results_live_in_a_persistent_cache(settings):
    if settings.REDIS_URL:
        pytest.skip("the embedded default only")
    assert settings.CACHES["results"]["BACKEND"] == "django.core.cache.backends.filebased.FileBasedCache"
    caches["results"].set("survives", {"a": 1})
    # A new backend, as a restarted process makes, reads the same files.
    assert caches.create_connection("results").get("survives") == {"a": 1}
