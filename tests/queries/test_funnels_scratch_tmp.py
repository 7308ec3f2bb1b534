import pytest
from queries import clock
from tests.queries.events import events, person, ts

pytestmark = pytest.mark.django_db

@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts("2020-01-20 12:00"))

def run(client, team, query, status=200):
    r = client.post(f"/api/projects/{team.id}/query/", {"query": query, "refresh": "force_blocking"}, format="json")
    assert r.status_code == status, r.content
    return r.json()

def test_basic(client, team):
    events(team,
        ("sign up", "p1", "2020-01-01 12:00"), ("play movie", "p1", "2020-01-01 13:00"), ("buy", "p1", "2020-01-01 15:00"),
        ("sign up", "p2", "2020-01-02 14:00"), ("play movie", "p2", "2020-01-02 16:00"),
        ("sign up", "p3", "2020-01-02 14:00"), ("play movie", "p3", "2020-01-02 16:00"), ("buy", "p3", "2020-01-02 17:00"),
    )
    q = {"kind": "FunnelsQuery", "series": [{"kind": "EventsNode", "event": e} for e in ["sign up", "play movie", "buy"]],
         "dateRange": {"date_from": "2020-01-01", "date_to": "2020-01-08"}, "funnelsFilter": {"funnelWindowInterval": 7}}
    body = run(client, team, q)
    print(body["hogql"])
    print(body["results"])
    assert [s["count"] for s in body["results"]] == [3, 3, 2]
    assert [s["average_conversion_time"] for s in body["results"]] == [None, 6000, 5400]
    assert [s["median_conversion_time"] for s in body["results"]] == [None, 7200, 5400]
