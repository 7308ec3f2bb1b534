"""A ClickHouse-compatible HTTP endpoint backed by chDB, for testing the HTTP transport.

A current ClickHouse server cannot be installed here, so the tests talk to this: a small threaded
HTTP server speaking the part of ClickHouse's HTTP interface that clickhouse-connect uses, which
runs every statement in chDB (ClickHouse's own code, in this process). chDB opens one data
directory per process, so this runs as its own process:

    python tests/clickhouse_http.py --data /tmp/dir [--port 0] [--user U --password P]

It prints `port <n>` once listening. What it speaks:
- `GET /ping` and `GET /` -> `Ok.`;
- the statement in the `query` parameter and/or the body (both: joined by a newline, as
  ClickHouse does for `INSERT ... FORMAT X` + data), `database`, `default_format` (else
  TabSeparated, or the statement's FORMAT clause), `param_<name>` values for `{name:Type}`,
  every other parameter a setting for this statement only (per-request chDB connection + `SET`);
- responses with `X-ClickHouse-Query-Id`, `X-ClickHouse-Summary`, `X-ClickHouse-Timezone`,
  `X-ClickHouse-Format`; errors as ClickHouse sends them: `X-ClickHouse-Exception-Code`, the
  status ClickHouse uses for the code, the text `Code: N. DB::Exception: ... (NAME) (version V)`.
- `query_id`: chDB runs each statement under its own id, so the endpoint records the client's id
  as the statement's `log_comment` and matches `query_id` in `KILL QUERY ... WHERE` against it.
"""
import argparse
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import zlib
from base64 import b64decode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

# Parameters of the HTTP interface itself; every other parameter is a setting.
HTTP_PARAMETERS = {
    "query", "database", "default_format", "query_id", "session_id", "session_timeout", "session_check",
    "user", "password", "quota_key", "compress", "decompress", "buffer_size", "wait_end_of_query",
    "client_protocol_version", "stacktrace", "close_session", "role",
}
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CODE = re.compile(r"Code: (\d+)\.")
KILL_QUERY = re.compile(r"^\s*KILL\s+QUERY\b", re.IGNORECASE)
FORMAT_CLAUSE = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)

# HTTP statuses ClickHouse's HTTP handler gives some error codes (everything else: 500).
STATUS_BY_CODE = {
    **{code: 400 for code in (6, 27, 36, 38, 41, 42, 43, 44, 46, 47, 53, 62, 69, 70, 72, 80, 113, 115, 117, 130,
                              132, 168, 190, 214, 215, 243, 352, 386, 456)},
    **{code: 404 for code in (60, 81, 83)},  # unknown table, database, ...
    **{code: 403 for code in (164, 497)},  # readonly, access denied
    516: 401,  # authentication failed
    159: 500, 394: 500,
}


class Endpoint(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, data_dir, user=None, password=None):
        import chdb  # here, not at the top: the test process imports this module for EndpointProcess

        super().__init__(address, Handler)
        self.data_dir = data_dir
        self.user, self.password = user, password
        # The engine lives while one connection is open; each request opens its own connection so
        # its `SET`s (the URL's settings) and `USE` apply to that statement only.
        self.root = chdb.connect(data_dir)
        version, timezone = self.root.query("SELECT version(), timezone()", "TabSeparated").bytes().decode().split()
        self.version, self.timezone = version, timezone
        self.connect = lambda: chdb.connect(data_dir)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clickhouse-connect's pool expects
    server: Endpoint

    def log_message(self, format, *args):  # quiet: the test output is the log
        return

    def do_GET(self):
        if urlsplit(self.path).path in ("/", "/ping") and "query" not in dict(self._params()):
            return self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
        self._execute(b"")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding:
            return self._error(f"Code: 1. DB::Exception: Unsupported Content-Encoding: {encoding}. (UNSUPPORTED_METHOD)", 1)
        self._execute(body)

    def _params(self):
        return parse_qsl(urlsplit(self.path).query, keep_blank_values=True)

    def _execute(self, body: bytes):
        params = dict(self._params())
        if not self._authenticated(params):
            return self._error("Code: 516. DB::Exception: default: Authentication failed: password is incorrect, or there "
                               "is no user with such name. (AUTHENTICATION_FAILED)", 516)
        sql = params.get("query", "")
        text = body.decode("utf-8", errors="surrogateescape")
        sql = f"{sql}\n{text}" if sql and text else (sql or text)
        query_id = params.get("query_id") or str(uuid.uuid4())
        settings = {name: value for name, value in params.items()
                    if name not in HTTP_PARAMETERS and not name.startswith("param_")}
        if params.get("query_id") and "log_comment" not in settings:
            settings["log_comment"] = query_id
        if KILL_QUERY.match(sql):
            sql = re.sub(r"\bquery_id\b", "Settings['log_comment']", sql)
        binds = {name[len("param_"):]: value for name, value in params.items() if name.startswith("param_")}
        fmt = params.get("default_format") or "TabSeparated"
        connection = self.server.connect()
        started = time.monotonic()
        try:
            for name, value in settings.items():
                if not SETTING_NAME.match(name):
                    raise RuntimeError(f"Code: 115. DB::Exception: Unknown setting '{name}'. (UNKNOWN_SETTING)")
                connection.query(f"SET {name} = {_literal(value)}", "TabSeparated")
            if params.get("database"):
                connection.query(f"USE {_identifier(params['database'])}", "TabSeparated")
            result = connection.query(sql, fmt, params=binds) if binds else connection.query(sql, fmt)
        except Exception as error:  # chDB raises with ClickHouse's message, "Code: N. DB::Exception: ..."
            message = str(error)
            match = CODE.search(message)
            return self._error(message, int(match.group(1)) if match else 1000, query_id)
        finally:
            connection.close()
        output = result.bytes() or b""
        summary = {
            "read_rows": str(result.rows_read()), "read_bytes": str(result.bytes_read()),
            "written_rows": str(result.rows_written()), "written_bytes": str(result.bytes_written()),
            "total_rows_to_read": str(result.rows_read()), "result_bytes": str(len(output)),
            "elapsed_ns": str(int((time.monotonic() - started) * 1e9)),
        }
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.server.timezone,
            "X-ClickHouse-Summary": json.dumps(summary),
        }
        if output:  # a statement with a result names its format (DDL and INSERT have none)
            clause = FORMAT_CLAUSE.search(sql)
            headers["X-ClickHouse-Format"] = clause.group(1) if clause else fmt
        self._send(200, output, headers)

    def _authenticated(self, params) -> bool:
        if self.server.user is None:
            return True
        user, password = params.get("user"), params.get("password")
        header = self.headers.get("Authorization") or ""
        if header.startswith("Basic "):
            user, _, password = b64decode(header[6:]).decode().partition(":")
        user = user or self.headers.get("X-ClickHouse-User")
        password = password if password is not None else self.headers.get("X-ClickHouse-Key")
        return user == self.server.user and password == self.server.password

    def _error(self, message: str, code: int, query_id: str = ""):
        body = f"{message} (version {self.server.version})\n".encode()
        headers = {"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": str(code)}
        if query_id:
            headers["X-ClickHouse-Query-Id"] = query_id
        self._send(STATUS_BY_CODE.get(code, 500), body, headers)

    def _send(self, status: int, body: bytes, headers: dict):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class EndpointProcess:
    """The endpoint in a child process (the test process keeps its own chDB data directory)."""

    def __init__(self, data_dir, user=None, password=""):
        self.data_dir, self.user, self.password = str(data_dir), user, password
        self.process = None
        self.port = None

    @property
    def url(self) -> str:
        credentials = f"{self.user}:{self.password}@" if self.user else ""
        return f"http://{credentials}127.0.0.1:{self.port}/default"

    def start(self) -> "EndpointProcess":
        command = [sys.executable, str(Path(__file__).resolve()), "--data", self.data_dir, "--port", str(self.port or 0)]
        if self.user:
            command += ["--user", self.user, "--password", self.password]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, env={**os.environ, "TZ": "UTC"}, text=True)
        line = self.process.stdout.readline()  # "port N" once listening (empty if it died)
        if not line.startswith("port "):
            self.stop()
            raise RuntimeError(f"the ClickHouse HTTP test endpoint did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)  # serve_forever returns, the engine shuts down cleanly
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.process = None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="chDB data directory (this process's own)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--user")
    parser.add_argument("--password", default="")
    args = parser.parse_args(argv)
    server = Endpoint((args.host, args.port), args.data, args.user, args.password if args.user else None)
    print(f"port {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
