"""The list costs a fixed number of SQL queries whatever the page size."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import make_member

from .conftest import make_dashboard, make_insight, put_on, view

pytestmark = pytest.mark.django_db

# key lookup, team, membership, count, page (users joined), tiles, tags
MAX_LIST_QUERIES = 8  # includes one lookup of the page's alerts


@pytest.fixture
def hundred_insights(team, user):
    other = make_member(team)
    dashboards = [make_dashboard(team) for _ in range(3)]
    for n in range(100):
        insight = make_insight(team, name=f"insight {n}", created_by=user, last_modified_by=other, tags=[f"t{n % 7}", "all"])
        put_on(insight, dashboards[n % 3])
        put_on(insight, dashboards[(n + 1) % 3])
        view(insight, user, timezone.now() - timedelta(minutes=n))


def count_queries(client, url, params):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(captured), response.json()


@pytest.mark.parametrize("params", [{}, {"basic": "true"}, {"search": "insight 1", "tags": '["all"]', "order": "-last_viewed_at"}])
def test_list_query_count_is_bounded(client, base, hundred_insights, params, django_assert_max_num_queries):
    client.get(base, {"limit": 1})  # the key's hourly last_used_at write stays out of the counts
    small, small_body = count_queries(client, base, {**params, "limit": 5})
    large, large_body = count_queries(client, base, {**params, "limit": 100})
    assert len(small_body["results"]) == min(5, large_body["count"])
    assert small == large <= MAX_LIST_QUERIES
    assert all(len(row["dashboards"]) == 2 and "all" in row["tags"] for row in large_body["results"])


def test_retrieve_query_count(client, base, team, hundred_insights, django_assert_max_num_queries):
    client.get(base, {"limit": 1})
    insight_id = client.get(base, {"limit": 1}).json()["results"][0]["id"]
    with django_assert_max_num_queries(7):
        assert client.get(f"{base}{insight_id}/").status_code == 200
