"""Fault probes against a real server: Redis stopped mid-run and restarted; PostgreSQL restarted.

    .venv/bin/python tests/probes/faults.py [--clients 20] [--seconds 24]

Both run gunicorn (2 workers) on a PRIVATE PostgreSQL cluster (initdb in a temp dir, free port)
and a PRIVATE redis-server (free port), never the machine's shared ones, under the mixed load of
bench/bench_load.py, then read back every acknowledged write. Pass criteria:
- Redis down then back: 0 responses >= 500, 0 lost writes, and `/_readyz` sees Redis again
  without a server restart.
- PostgreSQL restarted: every 5xx is a 503 (requests in flight during the restart), 0 lost writes.
Exits non-zero when a criterion fails.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from bench_load import Load, Server, free_port, prepare  # noqa: E402

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def _as_postgres(args: list[str]):
    """initdb and pg_ctl refuse to run as root: run them as the postgres user when we are root.
    Output goes to /dev/null: a postmaster started by pg_ctl would hold a captured pipe open."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", "postgres", "--", *args]
    subprocess.run(args, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


class PrivatePostgres:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="probe-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str):
        return _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args])

    def start(self):
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._ctl("-o", options, "-l", str(self.dir / "log"), "start")
        return self

    def restart(self):
        self._ctl("-m", "fast", "-l", str(self.dir / "log"), "restart")

    def stop(self):
        try:
            self._ctl("-m", "immediate", "stop")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True).stdout.strip() == "PONG":
                return self
            time.sleep(0.1)
        raise SystemExit("redis-server did not start")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _after(seconds: float, action):
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def redis_outage(env: dict, redis: PrivateRedis, clients: int, seconds: float) -> bool:
    boot = prepare(env)
    with Server(env) as server:
        load = Load(server.url, boot["personal_api_key"], boot["team_id"], boot["api_token"])
        events = []
        stop = _after(seconds * 0.25, lambda: (redis.stop(), events.append(f"redis stopped at {seconds * 0.25:.0f}s")))
        restart = _after(seconds * 0.6, lambda: (redis.start(), events.append(f"redis restarted at {seconds * 0.6:.0f}s")))
        results = load.run(clients, seconds)
        stop.join(), restart.join()
        lost = load.verify()
        ready = requests.get(f"{server.url}/_readyz", timeout=10).json()
    print(f"[redis] {'; '.join(events)}; {results.summary()}")
    print(f"[redis] statuses {dict(sorted(results.statuses.items()))}; /_readyz after: {ready}")
    for line in lost[:10]:
        print("   lost:", line)
    return results.server_errors == 0 and not lost and not results.errors and ready["checks"].get("redis") == "ok"


def postgres_restart(env: dict, postgres: PrivatePostgres, clients: int, seconds: float) -> bool:
    boot = prepare(env)
    with Server(env) as server:
        load = Load(server.url, boot["personal_api_key"], boot["team_id"], boot["api_token"])
        restart = _after(seconds * 0.4, postgres.restart)
        results = load.run(clients, seconds)
        restart.join()
        lost = load.verify()
    not_503 = {code: n for code, n in results.statuses.items() if code >= 500 and code != 503}
    print(f"[postgres] restarted at {seconds * 0.4:.0f}s; {results.summary()}")
    print(f"[postgres] statuses {dict(sorted(results.statuses.items()))}")
    for line in lost[:10]:
        print("   lost:", line)
    return not not_503 and not lost and not results.errors


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=24)
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # clean up the private servers on a kill
    postgres = PrivatePostgres().start()
    redis = PrivateRedis().start()
    var_dir = tempfile.mkdtemp(prefix="probe-var-")
    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": "probe", "RATE_LIMIT_ENABLED": "1", "LOG_LEVEL": "ERROR",
           # Throttles run (and read Redis) on every request without limiting the load.
           "API_BURST_RATE": "100000/minute", "API_SUSTAINED_RATE": "10000000/hour",
           "DATABASE_URL": postgres.url, "REDIS_URL": redis.url, "VAR_DIR": var_dir}
    try:
        ok_redis = redis_outage(env, redis, args.clients, args.seconds)
        ok_postgres = postgres_restart(env, postgres, max(5, args.clients // 2), args.seconds)
    finally:
        redis.stop()
        postgres.stop()
        shutil.rmtree(var_dir, ignore_errors=True)
    print(f"fault probes: redis outage {'PASS' if ok_redis else 'FAIL'}, postgres restart {'PASS' if ok_postgres else 'FAIL'}")
    sys.exit(0 if ok_redis and ok_postgres else 1)


if __name__ == "__main__":
    main()
