"""Query coalescing with real concurrency: threads fire identical requests at a live server."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from core import coalescing
from tests.core import coalescing_urls
from tests.factories import make_key, make_member, make_team

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(settings, live_server):
    settings.ROOT_URLCONF = "tests.core.coalescing_urls"
    settings.QUERY_COALESCING_ENABLED = True
    coalescing_urls.reset_computations()
    coalescing._backend = None  # a fresh store (in-process or Redis) per test
    backend = coalescing.get_backend()
    if isinstance(backend, coalescing.RedisBackend):
        backend.client.delete("http_qc_counters")
    return live_server.url


@pytest.fixture
def member_key(db):
    team = make_team()
    return team, make_key(make_member(team))


def fire(url, keys, body):
    def one(key):
        return requests.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        futures = []
        for i, key in enumerate(keys):
            futures.append(pool.submit(one, key))
            # The first request leads (a head start, so it does even on a loaded machine); the
            # others arrive while it runs.
            time.sleep(0.3 if i == 0 else 0.02)
        return [f.result() for f in futures]


def test_identical_requests_are_computed_once(server, member_key):
    team, key = member_key
    responses = fire(f"{server}/api/projects/{team.id}/query/", [key] * 8, {"sleep": 1.0})
    assert [r.status_code for r in responses] == [200] * 8
    assert coalescing_urls.computations() == 1
    assert {r.json()["computed"] for r in responses} == {1}
    assert sorted(r.headers[coalescing.HEADER] for r in responses) == ["leader"] + ["replayed"] * 7
    assert coalescing.read_counters() == {"leader": 1, "follower_served": 7, "fallthrough": 0}


def test_follower_without_access_gets_its_own_403(server, member_key):
    team, key = member_key
    stranger_key = make_key(make_member(make_team()))
    responses = fire(f"{server}/api/projects/{team.id}/query/", [key, stranger_key, key], {"sleep": 1.0})
    assert [r.status_code for r in responses] == [200, 403, 200]
    assert responses[1].json() == {"type": "authentication_error", "code": "permission_denied", "detail": "You don't have access to the project.", "attr": None}
    assert responses[2].headers[coalescing.HEADER] == "replayed"
    assert coalescing_urls.computations() == 1


def test_follower_with_bad_key_gets_401_and_missing_scope_403(server, member_key):
    team, key = member_key
    scoped = make_key(team.organization.memberships.first().user, scopes=["insight:read"])
    responses = fire(f"{server}/api/projects/{team.id}/query/", [key, "phx_bad", scoped], {"sleep": 1.0})
    assert [r.status_code for r in responses] == [200, 401, 403]
    assert responses[2].json()["detail"] == "API key missing required scope 'query:write'"


def test_4xx_leader_is_not_shared(server, member_key):
    team, key = member_key
    responses = fire(f"{server}/api/projects/{team.id}/query/", [key] * 3, {"sleep": 0.5, "status": 418})
    assert [r.status_code for r in responses] == [418] * 3
    assert coalescing_urls.computations() == 3  # every follower computed its own
    assert sorted(r.headers[coalescing.HEADER] for r in responses) == ["fallthrough", "fallthrough", "leader"]


def test_5xx_leader_is_shared(server, member_key):
    team, key = member_key
    responses = fire(f"{server}/api/projects/{team.id}/query/", [key] * 3, {"sleep": 0.5, "status": 500})
    assert [r.status_code for r in responses] == [500] * 3
    assert all(r.json()["type"] == "server_error" for r in responses)
    assert coalescing_urls.computations() == 1


def test_different_parameters_or_teams_are_not_shared(server, member_key):
    team, key = member_key
    other_team = make_team(team.organization)
    url = f"{server}/api/projects/%s/query/"

    def post(team_id, body):
        return requests.post(url % team_id, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda args: post(*args), [(team.id, {"sleep": 0.8}), (team.id, {"sleep": 0.81}), (other_team.id, {"sleep": 0.8})]))
    assert [r.status_code for r in results] == [200] * 3
    assert coalescing_urls.computations() == 3
    assert all(r.headers[coalescing.HEADER] == "leader" for r in results)


def test_client_query_id_does_not_split_the_key(server, member_key):
    team, key = member_key
    url = f"{server}/api/projects/{team.id}/query/"
    with ThreadPoolExecutor(max_workers=2) as pool:
        a = pool.submit(requests.post, url, json={"sleep": 1.0, "client_query_id": "a"}, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        time.sleep(0.1)
        b = pool.submit(requests.post, url, json={"sleep": 1.0, "client_query_id": "b"}, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        assert a.result().status_code == b.result().status_code == 200
    assert coalescing_urls.computations() == 1


def test_experiment_exposure_is_never_coalesced(server, member_key):
    team, key = member_key
    body = {"sleep": 0.5, "query": {"nested": [{"experiment_exposure": True}]}}
    responses = fire(f"{server}/api/projects/{team.id}/query/", [key] * 2, body)
    assert coalescing_urls.computations() == 2
    assert all(coalescing.HEADER not in r.headers for r in responses)


def test_switched_off(server, member_key, settings):
    settings.QUERY_COALESCING_ENABLED = False
    team, key = member_key
    fire(f"{server}/api/projects/{team.id}/query/", [key] * 3, {"sleep": 0.5})
    assert coalescing_urls.computations() == 3


def test_store_down_means_no_coalescing_and_no_errors(server, member_key, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    coalescing._backend = None
    team, key = member_key
    responses = fire(f"{server}/api/projects/{team.id}/query/", [key] * 3, {"sleep": 0.3})
    assert [r.status_code for r in responses] == [200] * 3
    assert coalescing_urls.computations() == 3


def test_dead_leader_is_detected_and_followers_fall_through(server, member_key, monkeypatch):
    """A leader that holds the lock but never heartbeats nor publishes (a crashed process)."""
    monkeypatch.setattr(coalescing, "CRASH_AFTER_SECONDS", 1.0)
    team, key = member_key
    url = f"{server}/api/projects/{team.id}/query/"
    backend = coalescing.get_backend()

    class FakeRequest:
        method = "POST"
        path = f"/api/projects/{team.id}/query/"
        body = b'{"sleep": 0.1}'
        META = {}

    assert backend.acquire(coalescing.request_key(FakeRequest)) is not None  # the "dead" leader
    started = time.monotonic()
    response = requests.post(url, json={"sleep": 0.1}, headers={"Authorization": f"Bearer {key}"}, timeout=60)
    assert response.status_code == 200
    assert response.headers[coalescing.HEADER] == "fallthrough"
    assert time.monotonic() - started < 10
    assert coalescing_urls.computations() == 1


def test_list_and_other_paths_are_not_eligible():
    class R:
        META = {"QUERY_STRING": ""}
        COOKIES = {}
        body = b""

    for method, path in [("GET", "/api/projects/1/insights/"), ("GET", "/api/projects/1/insights/abc/"), ("DELETE", "/api/projects/1/query/"), ("GET", "/api/projects/1/query")]:
        R.method, R.path = method, path
        assert coalescing.request_key(R) is None
    R.method, R.path = "GET", "/api/environments/1/insights/42/"
    R.META = {"QUERY_STRING": "refresh=blocking&client_query_id=x&b=2&a=1"}
    key = coalescing.request_key(R)
    R.META = {"QUERY_STRING": "a=1&b=2&refresh=blocking&session_id=y"}
    assert coalescing.request_key(R) == key


def test_object_bodies_are_per_credential_query_results_shared_by_members():
    """Insight and dashboard bodies carry the requesting user's access levels; query results don't."""
    class R:
        method, body = "GET", b""

        def __init__(self, path, authorization="", cookies=None):
            self.path = path
            self.META = {"QUERY_STRING": "refresh=blocking", "HTTP_AUTHORIZATION": authorization}
            self.COOKIES = cookies or {}

    for path in ("/api/projects/1/insights/42/", "/api/projects/1/dashboards/7/"):
        keys = {coalescing.request_key(R(path, "Bearer phx_one")), coalescing.request_key(R(path, "Bearer phx_two")),
                coalescing.request_key(R(path, cookies={"sessionid": "a"})), coalescing.request_key(R(path, cookies={"sessionid": "b"}))}
        assert len(keys) == 4
        assert coalescing.request_key(R(path, "Bearer phx_one")) == coalescing.request_key(R(path, "Bearer phx_one"))
    R.method, R.body = "POST", b'{"query": {"kind": "HogQLQuery", "query": "select 1"}}'
    assert coalescing.request_key(R("/api/projects/1/query/", "Bearer phx_one")) \
        == coalescing.request_key(R("/api/projects/1/query/", "Bearer phx_two")) \
        == coalescing.request_key(R("/api/projects/1/query/", cookies={"sessionid": "a"}))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_servers(settings):
    """Two gunicorn processes sharing the test database and Redis."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from django.db import connection

    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("needs PostgreSQL and Redis shared between processes")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.core.coalescing_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
    }
    root = Path(__file__).resolve().parents[2]
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "insights_api.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "8"],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        for port in ports:
            for _ in range(100):
                try:
                    requests.get(f"http://127.0.0.1:{port}/api/users/@me/", timeout=30)  # a cheap 401 once it is up
                    break
                except requests.ConnectionError:
                    time.sleep(0.2)
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def test_two_server_processes_share_one_computation(settings, two_servers, member_key):
    coalescing._backend = None
    coalescing.get_backend().client.delete("http_qc_counters")
    coalescing_urls.reset_computations()
    team, key = member_key

    def one(i):
        url = f"{two_servers[i % 2]}/api/projects/{team.id}/query/"
        return requests.post(url, json={"sleep": 1.5}, headers={"Authorization": f"Bearer {key}"}, timeout=60)

    with ThreadPoolExecutor(max_workers=10) as pool:
        futures = []
        for i in range(10):
            futures.append(pool.submit(one, i))
            time.sleep(0.03)
        responses = [f.result() for f in futures]
    assert [r.status_code for r in responses] == [200] * 10
    assert coalescing_urls.computations() == 1
    assert {r.json()["computed"] for r in responses} == {1}
    assert coalescing.read_counters()["follower_served"] == 9
