"""Person resolution for the chDB spool in a child process, beside the server's own.

The server process owns chDB, so it serves every request and runs every ClickHouse statement;
Python in it runs under one GIL. Resolving the persons of spooled capture requests is the biggest
Python job left after capture (`services.store_spooled`), and it needs only the Django database:
so it runs here, in a process of its own (its own GIL, the machine's other core), while the
server's process decodes capture requests and writes ClickHouse.

Protocol over a pipe, one pickled message at a time: the server sends ("store", records), the
spool's own records of capture requests. The child resolves them in one transaction and asks the
server to run its ClickHouse statements (the event-store rows, group mirrors), each answered with
("ok", result) or ("error", message, code); it commits only once ClickHouse has the rows, then
answers ("done",), or ("failed", outage, message) after rolling back. A child that dies or stops
answering is an outage: the spool keeps the records and retries with a new child.
"""
import logging
import os
import pickle
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Optional

from django.conf import settings

from .client import ClickHouseClient, ClickHouseError  # nothing that needs Django's apps: the child imports this first

logger = logging.getLogger(__name__)


class UnstorableRequests(Exception):
    """The child could not store the requests for a reason retrying does not fix (see the spool)."""


class ResolverProcess:
    """The server's end: starts the child on first use and again after it died."""

    def __init__(self, client: ClickHouseClient, settings_overrides: dict, database: dict):
        self.client = client  # the spool's client: the child's statements run on it
        self._child_settings = (settings_overrides, database)
        self._process = None
        self._pipe = None

    def store(self, records: list[bytes], rows: list) -> None:
        """Resolve and store the capture requests `records`, with the already resolved `rows`."""
        pipe = self._started()
        try:
            pipe.send_bytes(pickle.dumps(("store", records), pickle.HIGHEST_PROTOCOL))
            while True:
                message = pickle.loads(pipe.recv_bytes())
                if message[0] == "done":
                    return
                if message[0] == "failed":
                    _, outage, text = message
                    raise ClickHouseError(text) if outage else UnstorableRequests(text)
                pipe.send_bytes(pickle.dumps(self._run(message, rows), pickle.HIGHEST_PROTOCOL))
        except (EOFError, OSError, pickle.PickleError) as error:
            self.stop()
            raise ClickHouseError(f"The person resolution process stopped: {error!r}") from None

    def _run(self, message: tuple, rows: list) -> tuple:
        from .writer import write_rows

        kind, args, kwargs = message
        try:
            if kind == "write_rows":
                write_rows(self.client, [*args[0], *rows], side_by_side=False)
                return ("ok", None)
            return ("ok", getattr(self.client, kind)(*args, **kwargs))
        except ClickHouseError as error:
            return ("error", str(error), error.code)

    def _started(self):
        if self._process is None or self._process.poll() is not None:
            self.stop()
            # A new interpreter (no fork of a process running chDB's threads) on one end of a
            # socket pair; its settings arrive as the first message.
            ours, theirs = socket.socketpair()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "events.clickhouse.resolver", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], cwd=settings.BASE_DIR, env={**os.environ, "DJANGO_SETTINGS_MODULE": _settings_module()},
            )
            theirs.close()
            self._pipe = Connection(ours.detach())
            self._pipe.send_bytes(pickle.dumps(self._child_settings, pickle.HIGHEST_PROTOCOL))
        return self._pipe

    def stop(self) -> None:
        if self._pipe is not None:
            self._pipe.close()  # the child sees the end of its input and exits
            self._pipe = None
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


class _ServerClient(ClickHouseClient):
    """The child's ClickHouse client: every statement runs in the server's process."""

    def __init__(self, pipe):
        self.pipe = pipe
        self.spool = None

    def call(self, kind: str, *args, **kwargs):
        self.pipe.send_bytes(pickle.dumps((kind, args, kwargs), pickle.HIGHEST_PROTOCOL))
        answer = pickle.loads(self.pipe.recv_bytes())
        if answer[0] == "error":
            raise ClickHouseError(answer[1], answer[2])
        return answer[1]

    def query(self, sql, **kwargs):
        return self.call("query", sql, **kwargs)

    def command(self, sql, **kwargs):
        return self.call("command", sql, **kwargs)

    def insert(self, table, rows, column_names, **kwargs):
        return self.call("insert", table, rows, column_names, **kwargs)


def serve(pipe) -> None:
    """The child: resolve what the server sends until the pipe closes."""
    import django

    settings_overrides, database = pickle.loads(pipe.recv_bytes())
    django.setup()
    from django.db import close_old_connections, connections

    from . import client as client_module
    from ..services import store_spooled
    from .spool import _is_outage, _item
    from .writer import encode_events

    for name, value in settings_overrides.items():
        setattr(settings, name, value)
    connections["default"].settings_dict.update(database)  # the server's database (a test's, too)
    server = client_module._client = _ServerClient(pipe)
    while True:
        try:
            _, records = pickle.loads(pipe.recv_bytes())
        except (EOFError, OSError):
            return  # the server is gone
        close_old_connections()
        try:
            requests = [(item.team_id, item.now, item.events) for item in map(_item, records)]
            store_spooled(requests, lambda resolved: server.call("write_rows", [encode_events(server, rows) for rows in resolved]))
            answer: tuple = ("done",)
        except Exception as error:  # the server decides: retry later, or set the requests aside
            answer = ("failed", _is_outage(error), repr(error))
        try:
            pipe.send_bytes(pickle.dumps(answer, pickle.HIGHEST_PROTOCOL))
        except (EOFError, OSError):
            return


def _settings_module() -> str:
    return os.environ.get("DJANGO_SETTINGS_MODULE") or settings.SETTINGS_MODULE


def process_for(client: ClickHouseClient) -> Optional[ResolverProcess]:
    """A resolver process for the spool of `client`, or None where persons resolve in the spool's
    thread: when the setting says so, or when another process cannot open the database (SQLite in
    memory, as in tests)."""
    from django.db import connection

    if not settings.CLICKHOUSE_SPOOL_PERSONS_PROCESS:
        return None
    in_memory = getattr(connection, "is_in_memory_db", lambda: False)()
    if in_memory:
        return None
    overrides = {"EVENTS_ENGINE": settings.EVENTS_ENGINE, "CLICKHOUSE_SPOOL": False}
    return ResolverProcess(client, overrides, dict(connection.settings_dict))


if __name__ == "__main__":  # python -m events.clickhouse.resolver <socket fd>, started by ResolverProcess
    serve(Connection(int(sys.argv[1])))
