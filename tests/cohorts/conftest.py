import pytest

from cohorts.calculation import calculate_cohort
from tests.queries.conftest import clock, events_engine, run_query, trends  # noqa: F401  (shared query fixtures)


@pytest.fixture(autouse=True)
def calculate_at_once(monkeypatch):
    """Cohort calculations run when the change commits, in the background: here, at once."""
    monkeypatch.setattr("cohorts.calculation.after_commit", lambda callback: callback())
    monkeypatch.setattr("cohorts.calculation.dispatch", calculate_cohort)


@pytest.fixture
def cohorts_url(team):
    return f"/api/projects/{team.id}/cohorts/"


@pytest.fixture
def make_cohort(client, cohorts_url):
    """POST a cohort and return its JSON (asserting 201)."""

    def create(**body):
        response = client.post(cohorts_url, {"name": "c", **body}, format="json")
        assert response.status_code == 201, response.json()
        return client.get(f"{cohorts_url}{response.json()['id']}/").json()

    return create
