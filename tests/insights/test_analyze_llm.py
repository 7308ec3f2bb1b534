"""The optional LLM path of analyze (and the approval it needs), against a fake OpenAI-compatible provider."""
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rest_framework.test import APIClient

from insights.analysis import NO_RESULTS
from queries import clock
from queries.api import execute_query
from tests.conftest import error
from tests.queries.events import events, person, ts

from .conftest import make_insight

pytestmark = pytest.mark.django_db

QUERY = {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "signed up"}],
                                              "dateRange": {"date_from": "2020-01-10", "date_to": "2020-01-14"}}}
FACTS = ("Trends insight from 2020-01-10 to 2020-01-14.\n"
         "signed up (count): 15 in total, 3 per day on average. Rising: the second half averages 4.5 per day, "
         "+200% on the first half (1.5). Peak 5 on 14-Jan-2020; low 1 on 10-Jan-2020.")
APPROVAL = error("authentication_error", "permission_denied", "AI data processing must be approved by your organization")


class FakeProvider:
    """A chat completions endpoint on 127.0.0.1 whose answer each test chooses (`reply`)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.reply = ("answer", "Signups tripled.")
        self.release = threading.Event()  # lets a hanging handler finish at teardown
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                provider.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                kind, *args = provider.reply
                if kind == "hang":
                    provider.release.wait(10)
                    return
                status, payload = (200, {"choices": [{"message": {"role": "assistant", "content": args[0]}}]}) if kind == "answer" else args
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider():
    fake = FakeProvider()
    yield fake
    fake.close()


@pytest.fixture
def llm(settings, provider, team):
    settings.LLM_API_BASE = provider.url
    settings.LLM_API_KEY = "sk-test"
    settings.LLM_MODEL = "test-model"
    settings.LLM_TIMEOUT_SECONDS = 5
    team.organization.is_ai_data_processing_approved = True
    team.organization.save()
    return provider


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts("2020-01-20 12:00"))


@pytest.fixture
def api(api_client):
    return api_client(None)


@pytest.fixture
def insight(team):
    """Signups 1, 2, 3, 4, 5 on 10-14 January by people with emails; the result is cached."""
    rows = []
    for day in range(5):
        for i in range(day + 1):
            distinct_id = f"person-{day}-{i}"
            person(team, distinct_id, properties={"email": f"{distinct_id}@secret.example"})
            rows.append(("signed up", distinct_id, f"2020-01-{10 + day} 10:00", {"email": f"{distinct_id}@secret.example"}))
    events(team, *rows)
    execute_query(team, QUERY, refresh="blocking")
    return make_insight(team, query=QUERY, name="Signups", description="People who signed up")


def analyze(api, team, insight, status=200):
    response = api.get(f"/api/projects/{team.id}/insights/{insight.id}/analyze/")
    assert response.status_code == status, response.content
    return response.json()


def test_without_llm_the_facts_are_the_analysis(api, team, insight):
    assert analyze(api, team, insight) == {"result": FACTS}


def test_the_model_writes_the_analysis_from_the_facts(api, team, insight, llm):
    assert analyze(api, team, insight) == {"result": "Signups tripled."}
    [request] = llm.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    body = request["body"]
    assert body["model"] == "test-model"
    assert [message["role"] for message in body["messages"]] == ["system", "user"]
    prompt = body["messages"][1]["content"]
    assert "Name: Signups" in prompt and "Description: People who signed up" in prompt
    assert FACTS in prompt
    # Facts only: no person, distinct id or property value leaves the server.
    sent = json.dumps(body)
    assert "secret.example" not in sent and "person-" not in sent


def test_answer_is_stripped_and_capped(api, team, insight, llm):
    llm.reply = ("answer", "  " + "x" * 9000 + "  ")
    assert analyze(api, team, insight)["result"] == "x" * 8000


@pytest.mark.parametrize("reply", [
    ("raw", 200, b"not json at all"),
    ("raw", 200, {"id": "chatcmpl-1", "object": "chat.completion"}),
    ("raw", 200, {"choices": []}),
    ("raw", 200, {"choices": [{"message": {"role": "assistant", "content": None}}]}),
    ("raw", 200, {"choices": [{"message": {"role": "assistant", "content": ["a", "list"]}}]}),
    ("raw", 200, [1, 2, 3]),
    ("answer", "   "),
    ("raw", 500, {"error": {"message": "overloaded"}}),
    ("raw", 401, {"error": {"message": "bad key"}}),
    ("raw", 429, {"error": {"message": "rate limited"}}),
], ids=["not-json", "no-choices", "empty-choices", "null-content", "list-content", "array", "blank", "500", "401", "429"])
def test_garbage_answers_fall_back_to_the_facts(api, team, insight, llm, reply):
    llm.reply = reply
    assert analyze(api, team, insight) == {"result": FACTS}
    assert len(llm.requests) == 1


def test_timeout_falls_back_to_the_facts(api, team, insight, llm, settings):
    settings.LLM_TIMEOUT_SECONDS = 0.2
    llm.reply = ("hang",)
    assert analyze(api, team, insight) == {"result": FACTS}
    assert len(llm.requests) == 1


def test_unreachable_provider_falls_back_to_the_facts(api, team, insight, llm, settings):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings.LLM_API_BASE = f"http://127.0.0.1:{port}/v1"  # nothing listens there
    assert analyze(api, team, insight) == {"result": FACTS}


def test_no_cached_result_never_calls_the_model(api, team, llm):
    insight = make_insight(team, query=QUERY)
    assert analyze(api, team, insight) == {"result": NO_RESULTS}
    assert llm.requests == []


def test_partial_configuration_is_no_configuration(api, team, insight, provider, settings):
    settings.LLM_API_BASE = provider.url
    settings.LLM_MODEL = "test-model"  # no LLM_API_KEY
    assert analyze(api, team, insight) == {"result": FACTS}
    assert provider.requests == []


def test_llm_path_needs_the_organizations_approval(api, team, user, insight, llm):
    team.organization.is_ai_data_processing_approved = False
    team.organization.save()
    base = f"/api/projects/{team.id}/insights/"
    for method, url in (("get", f"{base}{insight.id}/analyze/"), ("get", f"{base}{insight.id}/suggestions/"),
                        ("post", f"{base}{insight.id}/suggestions/"), ("get", f"{base}999999/analyze/")):
        response = getattr(api, method)(url, format="json")
        assert response.status_code == 403, url
        assert response.json() == APPROVAL
    session = APIClient()
    session.force_login(user)
    assert session.get(f"{base}{insight.id}/analyze/").json() == APPROVAL
    assert llm.requests == []


def test_deterministic_analysis_needs_no_approval(api, team, insight):
    assert team.organization.is_ai_data_processing_approved is False
    assert analyze(api, team, insight) == {"result": FACTS}


# --- generate_metadata with a provider ------------------------------------------------------------


def test_generate_metadata_uses_the_providers_json(api, llm, team):
    llm.reply = ("answer", '```json\n{"name": "Daily signups", "description": "Signups per day."}\n```')
    response = api.post(f"/api/projects/{team.id}/insights/generate_metadata/", {"query": QUERY}, format="json")
    assert response.status_code == 200
    assert response.json() == {"name": "Daily signups", "description": "Signups per day."}
    prompt = llm.requests[0]["body"]["messages"][1]["content"]
    assert "A plain name would be: signed up count" in prompt


@pytest.mark.parametrize("reply", [("answer", "not json"), ("status", 500, {"error": "down"})])
def test_generate_metadata_provider_failure_is_500(api, llm, team, reply):
    llm.reply = reply
    response = api.post(f"/api/projects/{team.id}/insights/generate_metadata/", {"query": QUERY}, format="json")
    assert response.status_code == 500
    assert response.json() == error("server_error", "error", "Failed to generate insight metadata. Please try again.")


def test_generate_metadata_needs_approval_when_a_provider_is_configured(api, llm, team):
    team.organization.is_ai_data_processing_approved = False
    team.organization.save()
    response = api.post(f"/api/projects/{team.id}/insights/generate_metadata/", {"query": QUERY}, format="json")
    assert response.status_code == 403 and response.json() == APPROVAL
