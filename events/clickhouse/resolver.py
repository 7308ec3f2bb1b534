"""Person resolution for the chDB spool in a child process, beside the server's own.

The server process owns chDB, so it serves every request and runs every ClickHouse statement;
Python in it runs under one GIL. Resolving the persons of spooled capture requests is the biggest
Python job left after capture (`services.store_spooled`), and it needs only the Django database:
so it runs here, in a process of its own (its own GIL, the machine's other core), while the
server's process decodes capture requests and writes ClickHouse. The two overlap: the server
writes one group's rows into ClickHouse while the child resolves the next group (the spool).

Protocol over a socket pair, one pickled message at a time: the server sends ("store", records),
the spool's own records of capture requests. The child resolves them in one transaction, asking
the server to run the few ClickHouse statements it needs on the way (group mirrors, the
materialized columns), each answered with ("ok", result) or ("error", message, code); it encodes
the events' insert, commits, and answers ("resolved", rows), or ("failed", outage, message) after
rolling back. Persons are committed before their events are in ClickHouse: if that write fails
or the server stops, the records stay spooled and are resolved again, which changes nothing
(`$set` of the same values, merges already made, events stored once by uuid). A child that dies
or stops answering is an outage: the spool keeps the records and retries with a new child.
"""
import os
import pickle
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Optional

from django.conf import settings

from .client import ClickHouseClient, ClickHouseError  # nothing that needs Django's apps: the child imports this first


class UnstorableRequests(Exception):
    """The child could not store the requests for a reason retrying does not fix (see the spool)."""


class ResolverProcess:
    """The server's end: starts the child on first use and again after it died."""

    def __init__(self, client: ClickHouseClient, settings_overrides: dict, database: dict):
        self.client = client  # the spool's client: the child's statements run on it
        self._child_settings = (settings_overrides, database)
        self._process = None
        self._pipe = None

    def submit(self, records: list[bytes]) -> None:
        """Send capture requests (spool records) to be resolved; `collect` gets their rows."""
        try:
            self._started().send_bytes(pickle.dumps(("store", records), pickle.HIGHEST_PROTOCOL))
        except (EOFError, OSError, pickle.PickleError) as error:
            self.stop()
            raise ClickHouseError(f"The person resolution process stopped: {error!r}") from None

    def collect(self) -> list:
        """The rows (`writer.Rows`, events encoded) of the submitted requests, once the child
        committed their persons; runs the child's ClickHouse statements meanwhile."""
        try:
            while True:
                message = pickle.loads(self._pipe.recv_bytes())
                if message[0] == "resolved":
                    return message[1]
                if message[0] == "failed":
                    _, outage, text = message
                    raise ClickHouseError(text) if outage else UnstorableRequests(text)
                self._pipe.send_bytes(pickle.dumps(self._run(message), pickle.HIGHEST_PROTOCOL))
        except (EOFError, OSError, pickle.PickleError, AttributeError) as error:  # AttributeError: no pipe
            self.stop()
            raise ClickHouseError(f"The person resolution process stopped: {error!r}") from None

    def _run(self, message: tuple) -> tuple:
        kind, args, kwargs = message
        if kind not in ("query", "command", "insert"):
            raise pickle.PickleError(f"unexpected message {kind!r}")  # a child out of step: restarted
        try:
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

    def call(self, kind: str, *args, **kwargs):  # kind: a ClickHouseClient method
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

    from core.memory import tune_for_server

    from . import client as client_module
    from ..services import store_spooled
    from .spool import _is_outage, _item
    from .writer import encode_events

    for name, value in settings_overrides.items():
        setattr(settings, name, value)
    connections["default"].settings_dict.update(database)  # the server's database (a test's, too)
    tune_for_server()
    server = client_module._client = _ServerClient(pipe)
    while True:
        try:
            _, records = pickle.loads(pipe.recv_bytes())
        except (EOFError, OSError):
            return  # the server is gone
        close_old_connections()
        try:
            requests = [(item.team_id, item.now, item.events) for item in map(_item, records)]
            encoded: list = []

            def keep(resolved: list) -> None:  # the last attempt's rows, sent once committed
                encoded[:] = [encode_events(server, rows) for rows in resolved]

            store_spooled(requests, keep)
            answer: tuple = ("resolved", encoded)
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
