"""Where background work runs: the Celery worker when REDIS_URL is set, else threads of the server.

With chDB (EVENTS_ENGINE=chdb) the events' data directory opens in the server process only, so
background work that may read events (async queries, cohort calculations, exports) stays on the
server's threads even when REDIS_URL is set; Redis then still serves the cache and coalescing.
"""
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

from django.conf import settings
from django.db import close_old_connections, connections


def uses_celery() -> bool:
    return (bool(settings.REDIS_URL) and settings.EVENTS_ENGINE != "chdb"
            and not getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))


class ThreadRunner:
    """A lazily started thread pool whose jobs get their own database connections."""

    def __init__(self, name: str, max_workers: Callable[[], int] = lambda: 1):
        self.name = name
        self.max_workers = max_workers
        self._pool: Optional[ThreadPoolExecutor] = None
        self._lock = threading.Lock()

    def pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.max_workers(), thread_name_prefix=self.name)
            return self._pool

    def submit(self, function: Callable, *arguments) -> None:
        self.pool().submit(self._run, function, *arguments)

    def drain(self) -> None:
        """Wait for every submitted job (tests), then start afresh."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    @staticmethod
    def _run(function: Callable, *arguments) -> None:
        close_old_connections()
        try:
            function(*arguments)
        finally:
            connections.close_all()
