"""Mixed load from N clients for T seconds against gunicorn; 5xx, latency and lost writes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_load REDIS_URL=redis://127.0.0.1:6379/12 \
        .venv/bin/python bench/bench_load.py --clients 50 --seconds 30
    .venv/bin/python bench/bench_load.py --clients 10,25,50,100 --seconds 20   # find the knee

Each client loops over a weighted mix: create an insight (with an event capture), patch one of
its own, list, retrieve with `refresh=blocking`, record views, and run a trends query. Every
acknowledged (2xx) write is remembered and checked through the API afterwards: a create that is
missing, a capture whose event is absent, or a patch whose name is not the one last acknowledged
(with no later attempt) is a lost write. Prints requests/s, p50/p95/p99, the 5xx count and the
lost writes per run. The fault probes (tests/probes/) reuse `Server` and `Load`.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

TRENDS = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview", "math": "total"}], "dateRange": {"date_from": "-14d"}}
MIX = [("create", 3), ("patch", 3), ("list", 3), ("retrieve", 3), ("viewed", 2), ("query", 2), ("capture", 2)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict, *args: str) -> str:
    return subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout.strip()


def prepare(env: dict, events: int = 5000) -> dict:
    """Migrate, bootstrap a user with an all-scopes key, and seed a few events; returns bootstrap's JSON."""
    manage(env, "migrate", "--no-input", "-v0")
    boot = json.loads(manage(env, "bootstrap", "--email", "load@example.com", "--password", "load-password",
                             "--organization", "Load", "--new-api-key", "--json"))
    manage(env, "generate_demo_data", "--team", str(boot["team_id"]), "--events", str(events), "--days", "14", "--seed", "3", "--if-empty")
    return boot


class Server:
    """gunicorn on a free port (2 workers x 8 threads, as `make run` would serve in production)."""

    def __init__(self, env: dict, workers: int = 2, threads: int = 8, log: str | None = None):
        self.env, self.workers, self.threads = env, workers, threads
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "ab") if log else subprocess.DEVNULL
        self.process = None

    def start(self) -> "Server":
        self.process = subprocess.Popen(
            [str(Path(PY).parent / "gunicorn"), "insights_api.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(self.workers), "--threads", str(self.threads), "--timeout", "120"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log, start_new_session=True,
        )
        for _ in range(300):
            try:
                if requests.get(f"{self.url}/_health", timeout=10).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@dataclass
class Results:
    latencies: list = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # connection errors, timeouts
    by_status_and_op: Counter = field(default_factory=Counter)
    created: dict = field(default_factory=dict)  # insight id -> name acknowledged last (or None)
    pending_patch: set = field(default_factory=set)  # ids with an unacknowledged patch after the last ack
    captured: set = field(default_factory=set)  # event uuids acknowledged
    seconds: float = 0.0
    lost: list = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(count for code, count in self.statuses.items() if code >= 500)

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    def summary(self) -> str:
        total = len(self.latencies)
        return (f"{total} requests, {total / self.seconds:.1f} req/s, p50 {self.percentile(50) * 1000:.0f} ms, "
                f"p95 {self.percentile(95) * 1000:.0f} ms, p99 {self.percentile(99) * 1000:.0f} ms, "
                f"5xx {self.server_errors}, connection errors {sum(self.errors.values())}, lost writes {len(self.lost)}")


class Load:
    """The mixed workload; `run()` blocks for `seconds`, `verify()` checks every acknowledged write."""

    def __init__(self, url: str, key: str, team_id: int, api_token: str, *, timeout: float = 30):
        self.url, self.team_id, self.api_token, self.timeout = url, team_id, api_token, timeout
        self.headers = {"Authorization": f"Bearer {key}"}
        self.results = Results()
        self.lock = threading.Lock()

    def _api(self, path: str) -> str:
        return f"{self.url}/api/projects/{self.team_id}/{path}"

    def _send(self, session, op: str, method: str, url: str, **kwargs):
        started = time.perf_counter()
        try:
            response = session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            with self.lock:
                self.results.errors[type(exc).__name__] += 1
            return None
        elapsed = time.perf_counter() - started
        with self.lock:
            self.results.latencies.append(elapsed)
            self.results.statuses[response.status_code] += 1
            self.results.by_status_and_op[(response.status_code, op)] += 1
        return response

    def _client(self, seed: int, deadline: float) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        session.headers.update(self.headers)
        mine: list[int] = []
        ops, weights = zip(*MIX)
        while time.monotonic() < deadline:
            op = rng.choices(ops, weights)[0]
            if op in ("patch", "retrieve", "viewed") and not mine:
                op = "create"
            if op == "create":
                name = f"load {uuid.uuid4().hex[:12]}"
                body = {"name": name, "query": {"kind": "InsightVizNode", "source": TRENDS}}
                response = self._send(session, op, "POST", self._api("insights/"), json=body)
                if response is not None and response.status_code == 201:
                    insight_id = response.json()["id"]
                    mine.append(insight_id)
                    with self.lock:
                        self.results.created[insight_id] = name
            elif op == "patch":
                insight_id = rng.choice(mine)
                name = f"patched {uuid.uuid4().hex[:12]}"
                with self.lock:
                    self.results.pending_patch.add(insight_id)
                response = self._send(session, op, "PATCH", self._api(f"insights/{insight_id}/"), json={"name": name})
                if response is not None and response.status_code == 200:
                    with self.lock:
                        self.results.created[insight_id] = name
                        self.results.pending_patch.discard(insight_id)
            elif op == "list":
                self._send(session, op, "GET", self._api("insights/"), params={"limit": 20})
            elif op == "retrieve":
                self._send(session, op, "GET", self._api(f"insights/{rng.choice(mine)}/"), params={"refresh": "blocking"})
            elif op == "viewed":
                self._send(session, op, "POST", self._api("insights/viewed/"), json={"insight_ids": rng.sample(mine, min(3, len(mine)))})
            elif op == "query":
                self._send(session, op, "POST", self._api("query/"), json={"query": TRENDS, "refresh": "blocking"})
            elif op == "capture":
                event_uuid = str(uuid.uuid4())
                batch = {"api_key": self.api_token, "batch": [{"event": "$pageview", "distinct_id": f"load-{seed}", "uuid": event_uuid}]}
                response = self._send(session, op, "POST", f"{self.url}/batch/", json=batch)
                if response is not None and response.status_code == 200:
                    with self.lock:
                        self.results.captured.add(event_uuid)

    def run(self, clients: int, seconds: float) -> Results:
        started = time.monotonic()
        threads = [threading.Thread(target=self._client, args=(index, started + seconds), daemon=True) for index in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.results.seconds = time.monotonic() - started
        return self.results

    def verify(self) -> list[str]:
        """Every acknowledged write, read back through the API: the list of those missing."""
        session = requests.Session()
        session.headers.update(self.headers)
        lost = []
        stored = {}
        url = self._api("insights/?limit=1000&basic=true")
        while url:
            page = session.get(url, timeout=60).json()
            stored.update({item["id"]: item["name"] for item in page["results"]})
            url = page.get("next")
        for insight_id, name in self.results.created.items():
            if insight_id not in stored:
                lost.append(f"insight {insight_id} created but missing")
            elif stored[insight_id] != name and insight_id not in self.results.pending_patch:
                lost.append(f"insight {insight_id} named {stored[insight_id]!r}, acknowledged {name!r}")
        if self.results.captured:
            found = self._stored_event_uuids(session)
            lost.extend(f"event {event_uuid} acknowledged but missing" for event_uuid in self.results.captured - found)
        self.results.lost = lost
        return lost

    def _stored_event_uuids(self, session) -> set[str]:
        query = {"kind": "HogQLQuery", "query": "select uuid from events where distinct_id like 'load-%' limit 1000000"}
        response = session.post(self._api("query/"), json={"query": query, "refresh": "force_blocking"}, timeout=120)
        response.raise_for_status()
        return {str(row[0]) for row in response.json()["results"]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", default="50", help="comma-separated client counts, one run each")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": "bench", "RATE_LIMIT_ENABLED": "0", "LOG_LEVEL": "WARNING"}
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='bench-load-')}/db.sqlite3"
    env.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="bench-load-var-"))
    boot = prepare(env)
    print(f"database {env['DATABASE_URL'].split('@')[-1]}, redis {'yes' if env.get('REDIS_URL') else 'no'}, "
          f"gunicorn {args.workers} workers x {args.threads} threads, {args.seconds:.0f} s per run")
    with Server(env, workers=args.workers, threads=args.threads) as server:
        for clients in [int(c) for c in args.clients.split(",")]:
            load = Load(server.url, boot["personal_api_key"], boot["team_id"], boot["api_token"])
            results = load.run(clients, args.seconds)
            load.verify()
            print(f"{clients:4d} clients: {results.summary()}")
            for line in results.lost[:10]:
                print("   lost:", line)
            if results.server_errors:
                print("   5xx by operation:", {f"{op} {code}": n for (code, op), n in results.by_status_and_op.items() if code >= 500})


if __name__ == "__main__":
    main()
