"""When cohorts are recalculated: after a change (in the background), and on the schedule."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.core.management import call_command
from django.utils import timezone

from cohorts import calculation
from cohorts.calculation import calculate_cohort, due_cohort_ids
from cohorts.models import Cohort
from cohorts.tasks import calculate_cohort_task, calculate_due_cohorts_task
from tests.queries.events import person

pytestmark = pytest.mark.django_db

FILTERS = {"properties": {"type": "AND", "values": [{"type": "person", "key": "plan", "operator": "exact", "value": "pro"}]}}


def cohort(team, **fields):
    return Cohort.objects.create(team=team, name="c", filters=FILTERS, **fields)


def test_due_cohorts(team):
    now = timezone.now()
    never = cohort(team)
    fresh = cohort(team, last_calculation=now - timedelta(minutes=5))
    old = cohort(team, last_calculation=now - timedelta(minutes=20))
    cohort(team, is_static=True)
    cohort(team, deleted=True)
    cohort(team, errors_calculating=21, last_error_at=now - timedelta(days=30))
    cohort(team, errors_calculating=1, last_error_at=now - timedelta(minutes=50))  # backs off 60 minutes
    retried = cohort(team, errors_calculating=1, last_error_at=now - timedelta(minutes=70))
    cohort(team, is_calculating=True, calculation_started_at=now - timedelta(hours=1))
    stuck = cohort(team, is_calculating=True, calculation_started_at=now - timedelta(hours=25),
                   last_calculation=now - timedelta(days=2))
    assert fresh.id not in due_cohort_ids(now)
    assert due_cohort_ids(now) == [never.id, retried.id, stuck.id, old.id]  # never calculated first, then the oldest


def test_command_and_tasks_calculate(team, monkeypatch, capsys):
    person(team, "a", properties={"plan": "pro"})
    first, second = cohort(team), cohort(team)
    call_command("calculate_cohorts")
    assert "Recalculated 2 cohort(s)." in capsys.readouterr().out
    assert list(Cohort.objects.order_by("id").values_list("count", "version")) == [(1, 1), (1, 1)]
    sent = []
    monkeypatch.setattr(calculate_cohort_task, "delay", sent.append)
    Cohort.objects.filter(id=first.id).update(last_calculation=timezone.now() - timedelta(hours=1))
    calculate_due_cohorts_task()
    assert sent == [first.id]
    calculate_cohort_task(second.id)
    assert Cohort.objects.get(id=second.id).version == 2


def test_a_calculation_takes_the_same_queries_for_any_number_of_persons(team, django_assert_max_num_queries):
    person(team, "a", properties={"plan": "pro"})
    target = cohort(team)
    with CaptureQueriesContext(connection) as one:
        calculate_cohort(target.id)
    for n in range(30):
        person(team, f"p{n}", properties={"plan": "pro"})
    with django_assert_max_num_queries(len(one.captured_queries)):
        calculate_cohort(target.id)
    assert Cohort.objects.get(id=target.id).count == 31


def test_a_change_calculates_after_commit(client, team, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(calculation, "after_commit", _real_after_commit)
    dispatched = []
    monkeypatch.setattr(calculation, "dispatch", dispatched.append)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(f"/api/projects/{team.id}/cohorts/", {"name": "c", "filters": FILTERS}, format="json")
    assert response.json()["is_calculating"] is True
    assert len(callbacks) == 1 and dispatched == [response.json()["id"]]


def _real_after_commit(callback):
    from django.db import transaction

    transaction.on_commit(callback, robust=True)
