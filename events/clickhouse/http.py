"""The ClickHouse server transport: `HttpClient` over ClickHouse's HTTP interface (`clickhouse-connect`).

It returns exactly what `ChdbClient` returns because it asks the server for the same output
(JSONCompact with the same output settings) and converts it with the same `convert()`; inserts
send the same JSONEachRow rows. So the engine and the tests see one behaviour on both transports.

- `CLICKHOUSE_URL` is `http(s)://user:password@host:port/database` (port 8123/8443 by default,
  database `default` when the path is empty).
- Settings go per query as URL parameters (never `SET`: the connection pool is shared by threads),
  the caller's `query_id` is sent as ClickHouse's own query id, so `kill_query` can find it.
- A statement the server refuses raises `ClickHouseError` with ClickHouse's code; a server that
  cannot be reached (refused, reset, timed out, a proxy's 502/503/504) or cannot serve now
  (`UNAVAILABLE_CODES`) raises `ClickHouseUnavailable`, which the API answers with 503 and
  `Retry-After` (core/faults.py).
"""
import json
import re
import threading
from typing import Any, Optional
from urllib.parse import parse_qsl, unquote, urlsplit

from core.faults import BackendUnavailable

from .client import _OUTPUT_SETTINGS, ClickHouseClient, ClickHouseError, QueryResult, _json_value, _param_text, convert

DEFAULT_PORTS = {"http": 8123, "https": 8443}

# Options accepted in the URL's query string, passed to clickhouse_connect.get_client (ints).
_URL_OPTIONS = ("connect_timeout", "send_receive_timeout", "query_retries")

# Errors of a server that is up but cannot serve now (overloaded, a shard or Keeper down, an
# insert whose outcome is unknown): retrying later helps, so they are outages, not bad statements.
UNAVAILABLE_CODES = {
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    225,  # NO_ZOOKEEPER
    242,  # TABLE_IS_READ_ONLY (a replica lost Keeper)
    279,  # ALL_CONNECTION_TRIES_FAILED (a shard is down)
    319,  # UNKNOWN_STATUS_OF_INSERT
    999,  # KEEPER_EXCEPTION
}

# clickhouse-connect prefixes the server's text; the message is kept as chDB reports it.
_WRAPPER = re.compile(r"^(Received ClickHouse exception, code: \d+, server response: |HTTP driver received HTTP status \d+, server response: )")
_UNREACHABLE_STATUS = re.compile(r"HTTP driver received HTTP status (502|503|504)\b")


class ClickHouseUnavailable(BackendUnavailable):
    """The ClickHouse server could not be reached or serve now; the statement may not have run.
    Not a ClickHouseError: callers that turn statement errors into query errors let it pass."""

    def __init__(self, message: str, code: Optional[int] = None):
        super().__init__(message)
        self.code = code


class HttpClient(ClickHouseClient):
    """A ClickHouse server over HTTP. Thread-safe: no HTTP session, a shared connection pool."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError("CLICKHOUSE_URL must look like http://user:password@host:8123/database")
        self.database = unquote(parts.path.strip("/")) or "default"
        options = {key: int(value) for key, value in parse_qsl(parts.query) if key in _URL_OPTIONS}
        if "send_receive_timeout" not in options:
            # Longer than any query may run (async jobs the longest), so a slow query is never
            # mistaken for a dead server; max_execution_time stops queries before this.
            from queries.conf import async_timeout_seconds, query_timeout_seconds

            options["send_receive_timeout"] = int(max(async_timeout_seconds(), query_timeout_seconds())) + 60
        self._options = {
            "interface": parts.scheme,
            "host": parts.hostname,
            "port": parts.port or DEFAULT_PORTS[parts.scheme],
            "username": unquote(parts.username or "default"),
            "password": unquote(parts.password or ""),
            "database": self.database,
            # A session id makes the server refuse concurrent queries; the app runs many threads.
            "autogenerate_session_id": False,
            # Messages are kept without the URL (it can carry the password).
            "show_clickhouse_errors": "scrub",
            **options,
        }
        self._client = None
        self._lock = threading.Lock()

    def _connection(self):
        # Connected on first use (clickhouse-connect asks the server for its version and settings
        # then), so a server that is down at start-up only fails the requests that need it.
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import clickhouse_connect  # optional dependency: the `clickhouse` extra

                    self._client = _call(lambda: clickhouse_connect.get_client(**self._options))
        return self._client

    def query(self, sql, *, parameters=None, settings=None, query_id=None):
        all_settings = {**_OUTPUT_SETTINGS, **(settings or {})}
        if query_id:
            all_settings["query_id"] = query_id
        client = self._connection()
        body = _call(lambda: client.raw_query(sql, parameters=_parameters(parameters), settings=all_settings, fmt="JSONCompact"))
        if not body:
            return QueryResult()
        result = json.loads(body)
        columns = [column["name"] for column in result["meta"]]
        types = [column["type"] for column in result["meta"]]
        rows = [tuple(convert(value, type_name) for value, type_name in zip(row, types)) for row in result["data"]]
        return QueryResult(columns, types, rows)

    def command(self, sql, *, settings=None):
        client = self._connection()
        _call(lambda: client.command(sql, settings=settings or None))

    def insert(self, table, rows, column_names, *, settings=None):
        if not rows:
            return
        # The same JSONEachRow rows ChdbClient inserts: one encoding of values on both transports.
        payload = "\n".join(json.dumps(dict(zip(column_names, map(_json_value, row)))) for row in rows)
        client = self._connection()
        _call(lambda: client.raw_insert(table, list(column_names), payload, settings=settings or None, fmt="JSONEachRow"))

    def insert_lines(self, table, lines, column_names, *, settings=None):
        if not lines:
            return
        all_settings = {"date_time_input_format": "best_effort", **(settings or {})}
        client = self._connection()
        _call(lambda: client.raw_insert(table, list(column_names), b"\n".join(lines), settings=all_settings,
                                        fmt="JSONCompactEachRow"))

    def close(self):
        if self._client is not None:
            self._client.close()
            self._client = None


def _parameters(parameters: Optional[dict]) -> Optional[dict]:
    # clickhouse-connect renders datetimes to whole seconds; ChdbClient keeps microseconds (UTC).
    if not parameters:
        return None
    return {name: _param_text(value) if hasattr(value, "astimezone") else value for name, value in parameters.items()}


def _call(operation) -> Any:
    """Run a clickhouse-connect call, its failures as ClickHouseError or ClickHouseUnavailable."""
    from clickhouse_connect.driver.exceptions import Error, OperationalError

    try:
        return operation()
    except Error as error:
        message = _WRAPPER.sub("", str(error)).strip()
        code = getattr(error, "code", None)
        if code is None and (isinstance(error, OperationalError) or _UNREACHABLE_STATUS.search(str(error))):
            raise ClickHouseUnavailable(message) from error
        if code in UNAVAILABLE_CODES:
            raise ClickHouseUnavailable(message, code) from error
        raise ClickHouseError(message, code) from None
