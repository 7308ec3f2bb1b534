"""The real posthog-python SDK against a real server process (gunicorn), read back from the database."""
import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from django.db import connection
from posthog import Posthog
from posthog.request import APIError, batch_post

# transaction=True: on PostgreSQL the server process shares the test database and must see committed rows.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)

# Runs inside the server's database: everything the test checks, as JSON.
DUMP = """
import json
from events.models import Event, Person
events = [
    {"event": e.event, "distinct_id": e.distinct_id, "uuid": str(e.uuid), "timestamp": e.timestamp.isoformat(),
     "person": str(e.person.uuid) if e.person else None, "session_id": e.session_id, "properties": e.properties}
    for e in Event.objects.select_related("person").order_by("timestamp", "id")
]
persons = [
    {"uuid": str(p.uuid), "created_at": p.created_at.isoformat(), "properties": p.properties,
     "is_identified": p.is_identified, "distinct_ids": sorted(p.distinct_ids.values_list("distinct_id", flat=True))}
    for p in Person.objects.order_by("created_at")
]
print(json.dumps({"events": events, "persons": persons}))
"""


def manage(database_url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def database_url(tmp_path):
    """A database a separate server process can share with this test (SQLite's test database is in memory)."""
    if connection.vendor == "postgresql":
        s = connection.settings_dict
        return f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    url = f"sqlite:///{tmp_path / 'live.sqlite3'}"
    manage(url, "migrate", "--no-input", "--verbosity", "0")
    return url


@pytest.fixture
def server(database_url):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": database_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "insights_api.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{url}/api/", timeout=5)
                break
            except (requests.ConnectionError, requests.Timeout):
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_events_sent_by_posthog_python_are_stored_with_their_persons(server, database_url):
    account = json.loads(
        manage(database_url, "bootstrap", "--email", "sdk@example.com", "--password", "pw-123456", "--new-api-key", "--json")
    )
    token = account["api_token"]

    client = Posthog(token, host=server, sync_mode=True)
    client.capture("$pageview", distinct_id="anon-1", properties={"$current_url": "https://shop.example.com/", "$session_id": "s-1"}, timestamp=T0)
    client.set(distinct_id="anon-1", properties={"plan": "free"}, timestamp=T0 + timedelta(seconds=1))
    client.set_once(distinct_id="anon-1", properties={"landing": "/"}, timestamp=T0 + timedelta(seconds=2))
    client.capture("$identify", distinct_id="user-1", properties={"$anon_distinct_id": "anon-1", "$set": {"email": "ada@example.com"}}, timestamp=T0 + timedelta(minutes=1))
    client.alias(previous_id="user-1", distinct_id="ada@example.com", timestamp=T0 + timedelta(minutes=2))
    client.capture("signed up", distinct_id="ada@example.com", properties={"plan": "pro", "$session_id": "s-1"}, timestamp=T0 + timedelta(minutes=3))
    # backfilled history: an older event moves the person's created_at back
    client.capture("$pageview", distinct_id="user-1", timestamp=T0 - timedelta(days=3))
    personless_uuid = client.capture("anonymous read", properties={"$current_url": "https://shop.example.com/blog"}, timestamp=T0)
    gzip_client = Posthog(token, host=server, sync_mode=True, gzip=True)
    gzip_client.capture("purchase", distinct_id="user-1", properties={"revenue": 49.5}, timestamp=T0 + timedelta(minutes=4))

    # the SDK gets PostHog's answers for a wrong token
    with pytest.raises(APIError) as error:
        batch_post("phc_not_a_real_token", host=server, batch=[{"event": "x", "distinct_id": "d"}])
    assert error.value.status == 401

    data = json.loads(manage(database_url, "shell", "--no-imports", "-c", DUMP))
    events, persons = data["events"], data["persons"]
    assert sorted(e["event"] for e in events) == sorted(
        ["$pageview", "$pageview", "anonymous read", "$set", "$set_once", "$identify", "$create_alias", "signed up", "purchase"]
    )

    identified = [p for p in persons if p["is_identified"]]
    assert len(identified) == 1
    ada = identified[0]
    assert ada["distinct_ids"] == ["ada@example.com", "anon-1", "user-1"]
    assert ada["properties"] == {"plan": "free", "landing": "/", "email": "ada@example.com"}
    assert near(ada["created_at"], T0 - timedelta(days=3))
    assert {e["event"] for e in events if e["person"] == ada["uuid"]} == {"$pageview", "$set", "$set_once", "$identify", "$create_alias", "signed up", "purchase"}

    personless = next(e for e in events if e["event"] == "anonymous read")
    assert personless["uuid"] == personless_uuid
    assert personless["person"] is None
    assert personless["properties"]["$process_person_profile"] is False
    assert len(persons) == 1

    first = next(e for e in events if e["event"] == "$pageview" and e["distinct_id"] == "anon-1")
    assert first["session_id"] == "s-1"
    assert first["properties"]["$lib"] == "posthog-python"
    assert first["properties"]["$lib_version"]
    # the SDK sends sent_at: the stored time is corrected by the (tiny) skew between its clock and ours
    assert near(first["timestamp"], T0)
    purchase = next(e for e in events if e["event"] == "purchase")
    assert purchase["properties"]["revenue"] == 49.5
    assert near(purchase["timestamp"], T0 + timedelta(minutes=4))

    # and the query engine counts them: pageviews per day, and the one identified user
    trend = {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview", "math": "total"}, {"kind": "EventsNode", "event": None, "math": "dau"}],
        "dateRange": {"date_from": "2024-02-20", "date_to": "2024-03-05"},
        "interval": "day",
    }
    response = requests.post(
        f"{server}/api/projects/{account['project_id']}/query/",
        json={"query": trend, "refresh": "blocking"},
        headers={"Authorization": f"Bearer {account['personal_api_key']}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    pageviews, users = response.json()["results"]
    assert pageviews["count"] == 2 and sum(pageviews["data"]) == 2
    # per day: ada on Feb 26 (backfill) and Mar 1, plus the personless reader on Mar 1
    assert max(users["data"]) == 2 and sum(users["data"]) == 3


def near(stored: str, expected: datetime) -> bool:
    return abs(datetime.fromisoformat(stored) - expected) < timedelta(seconds=5)
