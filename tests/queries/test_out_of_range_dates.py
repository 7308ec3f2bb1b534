import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]


@pytest.mark.parametrize("date_from", ["-10000000d", "-99999999999999999999y", "-900000m"])
def test_dates_past_the_calendar_are_a_400(client, team, date_from):
    query = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], "dateRange": {"date_from": date_from}}
    response = client.post(f"/api/projects/{team.id}/query/", {"query": query, "refresh": "blocking"}, format="json")
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
