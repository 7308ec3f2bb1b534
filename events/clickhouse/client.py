"""One client interface over two transports that run the same SQL.

- `ChdbClient`: ClickHouse in this process (the `chdb` package). chDB lets ONE process open a
  data directory (a second fails with "Error initializing EmbeddedServer"), and one session per
  process; threads of that process share it. So the embedded mode is one server process
  (gunicorn with a single worker, threads for concurrency); management commands that touch
  events run while it is stopped, as `make run` orders them.
- `HttpClient`: a ClickHouse server over HTTP (`clickhouse-connect`), for production and clusters.

Values are passed inline as SQL literals rendered by sqlglot (see the engine) or as ClickHouse
server-side parameters (`{name:Type}` in the SQL, `parameters=` here); never by string pasting.
"""
import atexit
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Optional, Sequence
from uuid import UUID

import orjson
from django.conf import settings


class ClickHouseError(Exception):
    """A statement ClickHouse refused or could not run (`code` is ClickHouse's error code, if known)."""

    def __init__(self, message: str, code: Optional[int] = None):
        super().__init__(message)
        self.code = code


# ClickHouse error codes the callers tell apart.
TIMEOUT_EXCEEDED = 159
QUERY_WAS_CANCELLED = 394


@dataclass
class QueryResult:
    columns: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)


class ClickHouseClient:
    """query / command / insert; subclasses implement `_run` (text SQL in, JSONCompact out)."""

    database = "default"

    def query(self, sql: str, *, parameters: Optional[dict] = None, settings: Optional[dict] = None,
              query_id: Optional[str] = None) -> QueryResult:
        raise NotImplementedError

    def command(self, sql: str, *, settings: Optional[dict] = None) -> None:
        raise NotImplementedError

    def insert(self, table: str, rows: Sequence[Sequence[Any]], column_names: Sequence[str], *,
               settings: Optional[dict] = None) -> None:
        raise NotImplementedError

    def insert_lines(self, table: str, lines: Sequence[bytes], column_names: Sequence[str], *,
                     settings: Optional[dict] = None) -> None:
        """Rows already encoded by `json_row` (JSONCompactEachRow), one line each."""
        raise NotImplementedError

    def kill_query(self, query_id: str) -> None:
        self.command(f"KILL QUERY WHERE query_id = {quote(query_id)} ASYNC")

    def close(self) -> None:
        return None


def quote(value: Any) -> str:
    """A Python value as a ClickHouse literal (strings escaped for ClickHouse's lexer)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return repr(float(value)) if isinstance(value, float) else str(value)
    if isinstance(value, datetime):
        text = value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        return f"toDateTime64('{text}', 6, 'UTC')"
    if isinstance(value, UUID):
        return f"toUUID('{value}')"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(quote(item) for item in value) + "]"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def settings_clause(values: Optional[dict]) -> str:
    if not values:
        return ""
    return " SETTINGS " + ", ".join(f"{name} = {quote(value)}" for name, value in values.items())


def convert(value: Any, type_name: str) -> Any:
    """A JSONCompact value as the Python value the Django-database engines return."""
    if value is None:
        return None
    base = type_name
    while base.startswith(("Nullable(", "LowCardinality(")):
        base = base[base.index("(") + 1 : -1]
    if base.startswith("DateTime"):
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc) if "UTC" in base or "(" not in base else datetime.fromisoformat(value)
    if base == "Date" or base == "Date32":
        return datetime.fromisoformat(value).date()
    if base.startswith(("Int", "UInt")) and isinstance(value, str):
        return int(value)
    if base.startswith("Float") and isinstance(value, str):
        return float(value)  # inf / nan come quoted
    if base.startswith("Decimal"):
        return float(value)
    if base == "Bool":
        return bool(value)
    if base.startswith("Array(") and isinstance(value, list):
        inner = base[len("Array(") : -1]
        return [convert(item, inner) for item in value]
    if base.startswith("Tuple(") and isinstance(value, list):
        return tuple(value)
    return value


_OUTPUT_SETTINGS = {
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_quote_denormals": 1,
    "output_format_json_named_tuples_as_objects": 0,
}


class ChdbClient(ClickHouseClient):
    """ClickHouse in this process; one chDB session per process (see the module docstring)."""

    def __init__(self, path: str, spool=None):
        self.path = path
        self._connections = _chdb_connections(path)
        self.spool = spool  # the ingestion spool in front of this data (`spool`), if any

    def _run(self, sql: str, fmt: str, parameters: Optional[dict], *, after_spool: bool = True):
        if self.spool is not None and after_spool:
            self.spool.wait_flushed()  # read-your-writes: acknowledged events first
        # One chDB connection per concurrent statement: a shared session runs one at a time (a
        # slow insight would hold up every request, and a KILL would wait behind its query).
        connection = self._connections.acquire()
        try:
            if parameters:
                return connection.query(sql, fmt, params={k: _param_text(v) for k, v in parameters.items()})
            return connection.query(sql, fmt)
        except Exception as error:  # chDB raises RuntimeError with ClickHouse's message
            _drain(connection)
            raise ClickHouseError(str(error), _error_code(str(error))) from None
        finally:
            self._connections.release(connection)

    def query(self, sql, *, parameters=None, settings=None, query_id=None):
        all_settings = {**_OUTPUT_SETTINGS, **(settings or {})}
        if query_id:
            all_settings["log_comment"] = query_id  # chDB has no per-call query id; KILL matches log_comment
        result = self._run(sql + settings_clause(all_settings), "JSONCompact", parameters)
        text = result.bytes() if hasattr(result, "bytes") else bytes(result)
        if not text:
            return QueryResult()
        body = json.loads(text)
        columns = [column["name"] for column in body["meta"]]
        types = [column["type"] for column in body["meta"]]
        rows = [tuple(convert(value, type_name) for value, type_name in zip(row, types)) for row in body["data"]]
        return QueryResult(columns, types, rows)

    def command(self, sql, *, settings=None):
        self._run(sql + settings_clause(settings), "CSV", None)

    def insert(self, table, rows, column_names, *, settings=None):
        self.insert_lines(table, [json_row(row) for row in rows], column_names, settings=settings)

    def insert_lines(self, table, lines, column_names, *, settings=None):
        if not lines:
            return
        columns = ", ".join(f"`{name}`" for name in column_names)
        all_settings = {"date_time_input_format": "best_effort", **(settings or {})}
        payload = b"\n".join(lines).decode()
        # An insert reads nothing: it need not wait for the spool (and inside a transaction
        # that holds what the spool's flush needs, it must not).
        self._run(f"INSERT INTO {table} ({columns}){settings_clause(all_settings)} FORMAT JSONCompactEachRow\n{payload}", "CSV",
                  None, after_spool=False)

    def kill_query(self, query_id):
        # system.processes has no log_comment column; the statement's settings hold it.
        self.command(f"KILL QUERY WHERE Settings['log_comment'] = {quote(query_id)} ASYNC")


def _drain(connection) -> None:
    """chDB keeps what a failed query had written (e.g. the header of a timed-out one) and
    prepends it to the connection's next result: read it out with a throwaway query."""
    try:
        connection.query("SELECT 1", "CSV")
    except Exception:  # best effort: the connection is unusable anyway if this fails
        pass


class _ChdbConnections:
    """Idle chDB connections to one data directory, opened as concurrency needs them."""

    def __init__(self, path: str):
        import chdb  # optional dependency: the `clickhouse` extra

        self.path = path
        self._connect = lambda: chdb.connect(path)
        self._idle = [self._connect()]  # the engine stays up while a connection is open
        self._lock = threading.Lock()

    def acquire(self):
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def release(self, connection) -> None:
        with self._lock:
            self._idle.append(connection)

    def close(self) -> None:
        with self._lock:
            for connection in self._idle:
                connection.close()
            self._idle = []


_chdb: dict = {"connections": None}


def _chdb_connections(path: str) -> _ChdbConnections:
    """The process's connections on `path` (chDB opens one data directory; another path replaces it)."""
    current = _chdb["connections"]
    if current is None or current.path != path:
        if current is not None:
            current.close()
        else:
            atexit.register(_close_chdb_connections)
        _chdb["connections"] = _ChdbConnections(path)
    return _chdb["connections"]


def _close_chdb_connections() -> None:
    """Close chDB before the interpreter tears down (left open, chDB can segfault at exit after
    queries that ran while other threads were alive)."""
    connections, _chdb["connections"] = _chdb["connections"], None
    if connections is not None:
        connections.close()


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, UUID):
        return str(value)
    return value


def _json_default(value: Any) -> Any:
    """What orjson does not encode itself (Decimals)."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not a ClickHouse row value")


def json_row(row: Sequence[Any]) -> bytes:
    """A row as a JSONCompactEachRow line: a JSON array (no key repeated per row), encoded by
    orjson in C; datetimes as ISO 8601 with their offset (read by `best_effort`), UUIDs as text."""
    return orjson.dumps(row, default=_json_default, option=orjson.OPT_NAIVE_UTC)


def json_text(value: Any) -> str:
    """`value` as JSON text for a String column (properties): orjson's compact encoding, or the
    standard library's for what orjson refuses (integers beyond 64 bits, lone surrogates)."""
    return json_bytes(value).decode()


def json_bytes(value: Any) -> bytes:
    """`json_text`, encoded."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(value).encode()


_PARAM_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0", "'": "\\'"})


def _param_text(value: Any) -> str:
    """A server-side parameter value: ClickHouse reads it in the escaped (TSV) text format."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return str(value).translate(_PARAM_ESCAPES)


def _error_code(message: str) -> Optional[int]:
    marker = "Code: "
    if marker in message:
        digits = message.split(marker, 1)[1].split(".", 1)[0].strip()
        return int(digits) if digits.isdigit() else None
    return None


_client: Optional[ClickHouseClient] = None
_client_lock = threading.Lock()


def is_enabled() -> bool:
    return settings.EVENTS_ENGINE in ("chdb", "clickhouse")


def get_client() -> ClickHouseClient:
    """The process-wide client for the configured engine (created on first use)."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = _make_client()
    return _client


def _make_client() -> ClickHouseClient:
    if settings.EVENTS_ENGINE == "chdb":
        from . import spool

        path = str(settings.CLICKHOUSE_DATA_DIR)
        return ChdbClient(path, spool.get_spool(path) if spool.is_enabled() else None)
    if settings.EVENTS_ENGINE == "clickhouse":
        from .http import HttpClient  # written with the HTTP transport

        return HttpClient(settings.CLICKHOUSE_URL)
    raise RuntimeError("ClickHouse is not configured (EVENTS_ENGINE is neither 'chdb' nor 'clickhouse')")


def reset_client() -> None:
    """Forget the process-wide client (settings changed; a chDB session on the same path is reused)."""
    global _client
    _client = None

