"""The demo `make run` serves: every example insight computes on every engine (the issue's "done
when" for ClickHouse: `EVENTS_ENGINE=chdb make run` shows each example with a result)."""
from io import StringIO

import pytest
from django.core.management import call_command

from events.demo_data import generate_demo_data
from insights.management.commands.create_example_insights import EXAMPLES
from insights.models import Insight

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]


def test_every_example_insight_has_a_result(client, team, user):
    generate_demo_data(team, events=3000, days=60, seed=1)
    call_command("create_example_insights", "--team", str(team.id), stdout=StringIO())
    insights = list(Insight.objects.filter(team=team).order_by("id"))
    assert len(insights) == len(EXAMPLES) + 2  # and the cohort and action examples

    for insight in insights:
        response = client.get(f"/api/projects/{team.id}/insights/{insight.id}/", {"refresh": "force_blocking"})
        assert response.status_code == 200, (insight.name, response.content)
        body = response.json()
        assert body["query_status"] is None or not body["query_status"].get("error"), (insight.name, body["query_status"])
        assert body["result"], insight.name
