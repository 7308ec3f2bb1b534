import threading

from core.background import ThreadRunner, uses_celery


def test_background_work_goes_to_celery_only_with_redis_and_never_with_chdb(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.REDIS_URL, settings.EVENTS_ENGINE = "redis://127.0.0.1:6379/0", ""
    assert uses_celery() is True
    settings.EVENTS_ENGINE = "clickhouse"  # a server: any process reaches it
    assert uses_celery() is True
    settings.EVENTS_ENGINE = "chdb"  # the data directory opens in the server process only
    assert uses_celery() is False
    settings.REDIS_URL, settings.EVENTS_ENGINE = "", ""
    assert uses_celery() is False
    settings.REDIS_URL, settings.CELERY_TASK_ALWAYS_EAGER = "redis://127.0.0.1:6379/0", True
    assert uses_celery() is False


def test_thread_runner_runs_jobs_off_the_caller_thread_and_drains():
    runner, seen = ThreadRunner("test-runner", lambda: 2), []
    for n in range(5):
        runner.submit(lambda n: seen.append((n, threading.current_thread().name)), n)
    runner.drain()
    assert sorted(n for n, _ in seen) == [0, 1, 2, 3, 4]
    assert all(name.startswith("test-runner") for _, name in seen)
    runner.submit(seen.append, "again")  # a new pool starts on demand
    runner.drain()
    assert seen[-1] == "again"
