"""A coalesced follower gets the leader's response only if it may see the object itself.

The viewset is the real insights one with a slow retrieve (tests/core/coalescing_urls.py): a
member loads insight B while others poll B with credentials that must not see B's body.
"""
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from core import coalescing
from insights.models import Insight
from sharing.services import create_password, update_configuration
from sharing.tokens import encode_share_token
from tests.core import coalescing_urls
from tests.core.test_coalescing import free_port, server, two_servers  # noqa: F401 (fixtures)
from tests.factories import make_key, make_member, make_team

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["configured", "in_process"])
def backend_server(request, server, settings):  # noqa: F811
    """The live server with the configured store (Redis when REDIS_URL is set) and with the in-process one."""
    if request.param == "in_process":
        settings.REDIS_URL = ""
        coalescing._backend = None
    return server


@pytest.fixture
def world(db):
    team = make_team()
    member = make_member(team)
    a = Insight.objects.create(team=team, created_by=member, name="Insight A", query={"kind": "DataTableNode"})
    b = Insight.objects.create(team=team, created_by=member, name="Secret insight B", query={"kind": "DataTableNode"})
    return team, make_key(member), a, b


def share_token(insight) -> str:
    """The share token a viewer gets after unlocking the password-protected share of `insight`."""
    user = insight.created_by
    configuration = update_configuration(insight, user, {"enabled": True, "password_required": True})
    password, _ = create_password(configuration, user, "correct horse battery", "viewer")
    return encode_share_token(password)


def concurrently(calls):
    """Runs (url, headers) GETs; the first starts first and leads, the others arrive while it runs."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = []
        for url, headers in calls:
            futures.append(pool.submit(requests.get, url, headers=headers, timeout=60))
            time.sleep(0.15)
        return [f.result() for f in futures]


def test_share_token_for_another_insight_never_gets_a_replay(backend_server, world):
    team, key, a, b = world
    url = f"{backend_server}/api/projects/{team.id}/insights/{b.id}/?sleep=1.5"
    member = {"Authorization": f"Bearer {key}"}
    viewer_of_a = {"Authorization": f"Bearer {share_token(a)}"}
    responses = concurrently([(url, member), (url, viewer_of_a), (url, viewer_of_a), (url, member)])
    assert [r.status_code for r in responses] == [200, 404, 404, 200]
    assert all("Secret insight B" not in r.text for r in responses[1:3])
    assert responses[1].json() == {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}
    assert responses[3].headers[coalescing.HEADER] == "replayed"


def test_share_viewer_of_the_insight_gets_the_shared_answer_not_the_members(backend_server, world):
    team, key, a, b = world
    url = f"{backend_server}/api/projects/{team.id}/insights/{b.id}/?sleep=1.5"
    member = {"Authorization": f"Bearer {key}"}
    viewer_of_b = {"Authorization": f"Bearer {share_token(b)}"}
    responses = concurrently([(url, member), (url, viewer_of_b)])
    assert [r.status_code for r in responses] == [200, 200]
    assert responses[0].json()["user_access_level"] == "editor"
    assert responses[1].json()["user_access_level"] is None  # serialized for a share viewer
    assert responses[1].headers[coalescing.HEADER] == "leader"


def test_follower_runs_the_object_permissions_a_leader_runs(backend_server, world):
    team, key, a, b = world
    url = f"{backend_server}/api/projects/{team.id}/insights/{b.id}/?sleep=1.5"
    member = {"Authorization": f"Bearer {key}"}
    denied = {**member, "X-Denied-Objects": str(b.id)}
    responses = concurrently([(url, member), (url, denied), (url, member)])
    assert [r.status_code for r in responses] == [200, 403, 200]
    assert responses[1].json() == {
        "type": "authentication_error", "code": "permission_denied", "detail": "This caller may not see this object.", "attr": None
    }
    assert [r.headers[coalescing.HEADER] for r in (responses[0], responses[2])] == ["leader", "replayed"]
    assert coalescing_urls.computations() == 1  # the denied follower computed nothing either


def test_two_server_processes_check_objects_before_replaying(settings, two_servers, world):  # noqa: F811
    coalescing._backend = None
    coalescing.get_backend().client.delete("http_qc_counters")
    coalescing_urls.reset_computations()
    team, key, a, b = world
    member = {"Authorization": f"Bearer {key}"}
    viewer_of_a = {"Authorization": f"Bearer {share_token(a)}"}
    denied = {**member, "X-Denied-Objects": str(b.id)}
    path = f"/api/projects/{team.id}/insights/{b.id}/?sleep=2"
    calls = [(f"{two_servers[i % 2]}{path}", headers) for i, headers in enumerate([member, viewer_of_a, denied, member, viewer_of_a, denied])]
    responses = concurrently(calls)
    assert [r.status_code for r in responses] == [200, 404, 403, 200, 404, 403]
    assert all("Secret insight B" not in r.text for r in responses if r.status_code != 200)
    assert responses[3].headers[coalescing.HEADER] == "replayed"
    assert coalescing.read_counters()["follower_served"] == 1  # only the second member got a replay


def test_share_tokens_are_part_of_the_key():
    class R:
        method, path, body, COOKIES = "GET", "/api/projects/1/insights/42/", b"", {}

    def key_for(authorization):
        R.META = {"QUERY_STRING": "refresh=blocking", "HTTP_AUTHORIZATION": authorization}
        return coalescing.request_key(R)

    assert key_for("Bearer eyJ.share.one") != key_for("Bearer eyJ.share.two")
    assert key_for("Bearer eyJ.share.one") != key_for("")
