"""Dependencies point down: the engine imports no product app nor the project package, and
insights read events through the engine."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imports(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                yield from ((path, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield path, node.module


def offenders(package: str, forbidden: set[str]) -> list[str]:
    return [f"{path.relative_to(ROOT)}: {module}" for path, module in imports(package) if module.split(".")[0] in forbidden]


def test_queries_import_neither_the_project_package_nor_product_apps():
    assert offenders("queries", {"insights_api", "insights", "sharing", "alerts", "activity"}) == []


def test_insights_read_events_through_queries():
    assert offenders("insights", {"events"}) == []


def test_query_tasks_are_sent_through_the_project_celery_app():
    from insights_api.celery import app
    from queries.tasks import process_query_task

    assert process_query_task.app is app
