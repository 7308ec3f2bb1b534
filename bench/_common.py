"""Shared pieces of the engine benchmarks: Django set-up and the alternating API-vs-SQL timing."""
import os
import statistics
import tempfile
import time
from pathlib import Path


def setup_django(database_url: str | None, prefix: str) -> str:
    """Configure Django on `database_url`, or a fresh SQLite file, and migrate it."""
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    else:
        path = Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-")) / "bench.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "insights_api.settings")
    os.environ.setdefault("DEBUG", "true")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return os.environ["DATABASE_URL"]


def compare_timings(api_call, hand_written_call, repeat: int, target: float = 1.5,
                    labels: tuple[str, str] = ("(a) API, force_blocking", "(b) hand-written SQL")) -> None:
    """Alternate (a) the API and (b) the hand-written SQL `repeat` times; print medians and ratio."""
    api_times, sql_times = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        api_call()
        api_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        hand_written_call()
        sql_times.append(time.perf_counter() - t)
    api_median, sql_median = statistics.median(api_times), statistics.median(sql_times)
    width = max(map(len, labels)) + 1
    print(f"{labels[0] + ':':{width}}  median {api_median * 1000:8.1f} ms  (runs: {', '.join(f'{t * 1000:.0f}' for t in api_times)})")
    print(f"{labels[1] + ':':{width}}  median {sql_median * 1000:8.1f} ms  (runs: {', '.join(f'{t * 1000:.0f}' for t in sql_times)})")
    print(f"ratio (a)/(b): {api_median / sql_median:.2f}  (target <= {target})")


def bench_team(name: str, team_id: int | None = None):
    """(team, user, personal API key): a new organization and team, or the team `team_id`, with a new
    member user whose key has every scope."""
    import uuid

    from accounts.models import Organization, OrganizationMembership, Team, User
    from accounts.services import create_personal_api_key, create_project_with_team

    if team_id:
        team = Team.objects.select_related("organization").get(id=team_id)
    else:
        team = create_project_with_team(Organization.objects.create(name=f"Bench {uuid.uuid4().hex[:6]}"), name=name)
    user = User.objects.create_user(email=f"bench-{uuid.uuid4().hex[:8]}@example.com", password="x")
    OrganizationMembership.objects.create(organization=team.organization, user=user)
    _, key = create_personal_api_key(user, label="bench", scopes=["*"])
    return team, user, key


def fetch_rows(sql: str, params: list) -> list[tuple]:
    """Run hand-written SQL with the session settings the engine uses (PostgreSQL: JIT off), for a
    like-for-like time, and return its rows."""
    from django.db import connection, transaction

    from queries.sql.engine import get_engine

    with transaction.atomic(), connection.cursor() as cursor:
        for setting in getattr(get_engine(), "SESSION_SETTINGS", ()):
            cursor.execute(setting)
        cursor.execute(sql, params)
        return cursor.fetchall()


def remove_team(team, user) -> None:
    """Drop the bench team's cohorts, events and persons (kept out of a shared database), then the team."""
    from django.db import connection, transaction

    from cohorts.models import Cohort, CohortPeople
    from events.models import Event, Person, PersonDistinctId

    with transaction.atomic(), connection.cursor() as cursor:
        cohorts = list(Cohort.objects.filter(team=team).values_list("id", flat=True))
        CohortPeople.objects.filter(cohort_id__in=cohorts).delete()
        Cohort.objects.filter(id__in=cohorts).delete()
        for model in (Event, PersonDistinctId, Person):
            cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE team_id = %s", [team.id])
    team.organization.delete()
    user.delete()


def query_call(team, key: str, query: dict):
    """A function that computes `query` through `POST /api/projects/:id/query/` (refresh
    `force_blocking`) and returns the response body."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    def call() -> dict:
        response = client.post(f"/api/projects/{team.id}/query/", {"query": query, "refresh": "force_blocking"}, format="json")
        assert response.status_code == 200, response.content[:500]
        return response.json()

    return call
