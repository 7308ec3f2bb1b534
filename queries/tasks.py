"""Celery tasks of the query engine (used when REDIS_URL is set)."""
from celery import shared_task

from . import jobs


@shared_task(name="queries.process_query", ignore_result=True)
def process_query_task(team_id: int, query_id: str, query: dict, user_id, task_id: str) -> None:
    jobs.run_job(team_id, query_id, query, user_id, task_id)
