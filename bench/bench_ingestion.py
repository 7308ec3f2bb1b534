"""Ingestion throughput of POST /batch/ with 100-event batches, against gunicorn as `make run` starts it.

    .venv/bin/python bench/bench_ingestion.py                     # a fresh SQLite file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bench_ingestion.py
    .venv/bin/python bench/bench_ingestion.py --engine chdb       # events into ClickHouse in process (chDB)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/bench_ingestion.py --engine chdb --baseline django
    .venv/bin/python bench/bench_ingestion.py --engine clickhouse-http  # events into a ClickHouse server over HTTP

Events look like posthog-python's (pageviews with browser, OS, URL, session; some $set and
$identify), from a pool of distinct ids, so the run covers new and returning persons. Request
bodies are encoded before the clock starts; client threads keep their connections open. The
run checks that every event sent was stored. Every engine run gets a new database (on
PostgreSQL, a new database beside the one DATABASE_URL names, dropped after; on SQLite a new
file). `--baseline` runs a second engine first, in the same invocation, and prints the ratio.

`--engine clickhouse-http` runs the server as in production with ClickHouse (CLICKHOUSE_URL,
any number of gunicorn workers); no ClickHouse server installs here, so the server is the
chDB-backed HTTP endpoint the tests use (tests/clickhouse_http.py, a Python HTTP front end over
ClickHouse's own code in one process). Its CPU is counted with the server's, front end included.
"""
import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BROWSERS = ["Chrome", "Safari", "Firefox", "Microsoft Edge"]
# Issue 15's target: 15,000 events/s into ClickHouse where the Django engine on PostgreSQL did 9,300.
TARGET_RATIO = 15_000 / 9_300
PATHS = ["/", "/pricing", "/features", "/docs", "/blog/launch-week", "/signup", "/app"]


def manage(env, *args) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode:
        sys.exit(result.stderr)
    return result.stdout


def build_batches(token: str, events: int, batch_size: int, pool: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    start = datetime.now(timezone.utc) - timedelta(days=1)
    bodies, batch = [], []
    for n in range(events):
        user = rng.randrange(pool)
        properties = {
            "$lib": "posthog-python",
            "$lib_version": "7.91.1",
            "$geoip_disable": True,
            "$browser": BROWSERS[user % len(BROWSERS)],
            "$os": "Mac OS X" if user % 3 else "Windows",
            "$device_type": "Desktop",
            "$current_url": f"https://shop.example.com{rng.choice(PATHS)}",
            "$host": "shop.example.com",
            "$pathname": rng.choice(PATHS),
            "$referring_domain": "$direct",
            "$session_id": f"session-{user}-{n // 500}",
            "$window_id": f"window-{user}",
            "plan": rng.choice(["free", "pro"]),
        }
        name = "$pageview"
        if rng.random() < 0.03:
            name = "$identify"
            properties["$anon_distinct_id"] = f"anon-{user}"
            properties["$set"] = {"email": f"user{user}@example.com", "plan": properties["plan"]}
        elif rng.random() < 0.05:
            properties["$set"] = {"last_seen_plan": properties["plan"]}
        batch.append(
            {
                "event": name,
                "distinct_id": f"user-{user}",
                "properties": properties,
                "timestamp": (start + timedelta(seconds=n)).isoformat(),
                "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            }
        )
        if len(batch) == batch_size:
            bodies.append(json.dumps({"api_key": token, "batch": batch, "sent_at": datetime.now(timezone.utc).isoformat()}).encode())
            batch = []
    if batch:
        bodies.append(json.dumps({"api_key": token, "batch": batch}).encode())
    return bodies


def send_all(port: int, bodies: list[bytes], concurrency: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    queue = list(reversed(bodies))
    errors: list[str] = []

    def worker():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not queue or errors:
                    break
                body = queue.pop()
            started = time.perf_counter()
            connection.request("POST", "/batch/", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
            elapsed = time.perf_counter() - started
            with lock:
                if response.status != 200:
                    errors.append(f"{response.status} {payload[:300]!r}")
                latencies.append(elapsed)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        sys.exit(f"capture failed: {errors[0]}")
    return latencies


def count_events(port: int, api_key: str, project_id: int) -> int:
    """The project's events as a HogQL query through the API counts them."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = json.dumps({"query": {"kind": "HogQLQuery", "query": "SELECT count() FROM events"}, "refresh": "force_blocking"})
    connection.request("POST", f"/api/projects/{project_id}/query/", body,
                       {"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    if response.status != 200:
        sys.exit(f"count query failed: {response.status} {payload[:300]!r}")
    return int(json.loads(payload)["results"][0][0])


def cpu_seconds(pids) -> float:
    """User + system CPU of these processes so far (0 for any that is gone or not readable)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def server_pids(server: subprocess.Popen) -> list[int]:
    """The server and every process under it (workers, the chDB spool's person resolution process)."""
    pids, pending = [], [server.pid]
    while pending:
        pid = pending.pop()
        pids.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            children = task / "children"
            if children.exists():
                pending.extend(int(child) for child in children.read_text().split())
    return pids


def database_backend_pids(env) -> list[int]:
    """PostgreSQL backends serving the bench database (same machine only)."""
    code = (
        "from django.db import connection\n"
        "with connection.cursor() as c:\n"
        "    c.execute('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()')\n"
        "    print(' '.join(str(r[0]) for r in c.fetchall()))"
    )
    return [int(pid) for pid in manage(env, "shell", "--no-imports", "-c", code).split()]


def analyze(env) -> None:
    """Refresh planner statistics, as autovacuum does on a production server (it is off here)."""
    code = "from django.db import connection\nconnection.cursor().execute('ANALYZE events_event, events_person, events_persondistinctid')"
    manage(env, "shell", "--no-imports", "-c", code)


def wait_for(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("server exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit("server did not start")


ENGINES = {"django": "", "chdb": "chdb", "clickhouse-http": "clickhouse"}


def fresh_database(base_url: str, label: str):
    """(a new database's URL, a function dropping it): PostgreSQL gets a database per run (dead
    tuples of an earlier run would slow a later one: autovacuum is off here); SQLite a new file."""
    if not base_url.startswith("postgres"):
        directory = tempfile.TemporaryDirectory()
        return f"sqlite:///{directory.name}/bench.sqlite3", directory.cleanup
    import psycopg

    server, _, _ = base_url.rpartition("/")
    name = f"bench_ingestion_{label}_{os.getpid()}"

    def run(statement: str) -> None:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(statement)

    run(f"DROP DATABASE IF EXISTS {name}")
    run(f"CREATE DATABASE {name}")
    return f"{server}/{name}", lambda: run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run_engine(engine: str, args, database_url: str) -> dict:
    """Serve with `engine`, send the events, and measure; returns the rates and CPU per event."""
    chdb, http = engine == "chdb", engine == "clickhouse-http"
    workers = 1 if chdb else args.workers
    threads = args.threads or (8 if chdb else 4)
    tmp = tempfile.TemporaryDirectory()
    # Production-like: DEBUG off (no query log kept per request).
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "0", "SECRET_KEY": "bench-only-secret", "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    env.pop("CLICKHOUSE_URL", None)
    env["EVENTS_ENGINE"] = ENGINES[engine]
    endpoint = None
    if chdb:
        env["CLICKHOUSE_DATA_DIR"] = f"{tmp.name}/clickhouse"
    if http:
        sys.path.insert(0, str(ROOT))
        from tests.clickhouse_http import EndpointProcess

        endpoint = EndpointProcess(f"{tmp.name}/clickhouse").start()
        env["CLICKHOUSE_URL"] = endpoint.url
    manage(env, "migrate", "--no-input", "--verbosity", "0")
    if chdb or http:
        manage(env, "migrate_clickhouse")
    account = json.loads(
        manage(env, "bootstrap", "--email", "bench@example.com", "--password", "bench-password", "--organization", f"bench {uuid.uuid4()}",
               "--new-api-key", "--scopes", "*", "--json")
    )
    team_id, token = account["team_id"], account["api_token"]

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "insights_api.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )
    postgres = database_url.startswith("postgres")
    try:
        wait_for(port, server)
        # Warm-up: every user of the pool sends once, so the timed run sees returning users.
        warmup = build_batches(token, max(args.distinct_ids, 20 * args.batch_size), args.batch_size, args.distinct_ids, seed=1)
        send_all(port, warmup, args.concurrency)
        if postgres:
            analyze(env)
        bodies = build_batches(token, args.events, args.batch_size, args.distinct_ids, seed=2)
        watched = server_pids(server) + (database_backend_pids(env) if postgres else []) + ([endpoint.process.pid] if http else [])
        cpu_before, load_before = cpu_seconds(watched), os.getloadavg()[0]
        started = time.perf_counter()
        latencies = send_all(port, bodies, args.concurrency)
        acknowledged = time.perf_counter() - started
        # The clock stops once a query sees every event: capture may acknowledge events before
        # they are stored (the chDB spool), and a query waits for them.
        queried = count_events(port, account["personal_api_key"], account["project_id"])
        elapsed = time.perf_counter() - started
        watched += [pid for pid in (database_backend_pids(env) if postgres else []) if pid not in watched]
        cpu_used, load_after = cpu_seconds(watched) - cpu_before, os.getloadavg()[0]
    finally:
        server.terminate()
        server.wait(timeout=30)

    # The server has stopped, so this process may open the chDB data.
    count = (f"from events.clickhouse import get_client; print(get_client().query('SELECT count() FROM events WHERE team_id = {team_id}').rows[0][0])"
             if chdb or http else f"from events.models import Event; print(Event.objects.filter(team_id={team_id}).count())")
    try:
        stored = int(manage(env, "shell", "--no-imports", "-c", count))
    finally:
        if endpoint is not None:
            endpoint.stop()
    expected = args.events + sum(len(json.loads(body)["batch"]) for body in warmup)
    vendor = "postgresql" if postgres else "sqlite"
    if chdb:
        vendor = f"events in ClickHouse (chDB in the server process), persons in {vendor}"
    if http:
        vendor = f"events in ClickHouse over HTTP (the chDB-backed test endpoint), persons in {vendor}"
    latencies.sort()
    print(f"[{engine}] database: {vendor}; server: gunicorn --workers {workers} --threads {threads}; client connections: {args.concurrency}")
    print(f"  sent {args.events} events in {len(bodies)} batches of {args.batch_size}: acknowledged in {acknowledged:.2f}s, "
          f"all counted by a query {elapsed:.2f}s after the first was sent")
    print(f"  throughput: {args.events / elapsed:,.0f} events/s stored and queryable ({args.events / acknowledged:,.0f} events/s acknowledged)")
    print(f"  batch latency: p50 {statistics.median(latencies) * 1000:.1f} ms, p95 {latencies[int(len(latencies) * 0.95)] * 1000:.1f} ms")
    print(f"  server CPU (gunicorn{' with chDB' if chdb else ''}{' + the ClickHouse endpoint' if http else ''}{' + postgres backends' if postgres else ''}): "
          f"{cpu_used / args.events * 1e6:.0f} us per event -> at most {args.events / cpu_used * (os.cpu_count() or 1):,.0f} events/s "
          f"if {os.cpu_count()} cores served only this")
    print(f"  machine load average: {load_before:.1f} before, {load_after:.1f} after ({os.cpu_count()} cores)")
    print(f"  stored: {stored} of {expected} events sent (warm-up included)", flush=True)
    if stored != expected or queried != expected:
        sys.exit(f"some events were not stored (a query right after counted {queried})")
    return {"rate": args.events / elapsed, "cpu": cpu_used / args.events}


def python_loop_seconds() -> float:
    started = time.perf_counter()
    total = 0
    for step in range(10_000_000):
        total += step
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=250_000, help="timed events (long enough that the chDB spool's last group, ~0.5 s, weighs little)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--distinct-ids", type=int, default=5_000, help="size of the pool of users sending events")
    parser.add_argument("--concurrency", type=int, default=4, help="client connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (with --engine chdb: 1, chDB opens its data in one process)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads per worker (default: 4, or 8 with --engine chdb: the same 8 threads in all as two workers, "
                             "and what `make run` starts)")
    parser.add_argument("--engine", choices=list(ENGINES), default="django",
                        help="where events go: the Django database, ClickHouse in process (one worker: chDB opens its data "
                             "in one process), or a ClickHouse server over HTTP (the tests' chDB-backed endpoint)")
    parser.add_argument("--baseline", choices=list(ENGINES), default=None,
                        help="also run this engine first, on a database of its own, and print the ratio of the two rates "
                             "(machines here differ in speed from one session to the next: compare within one run)")
    args = parser.parse_args()

    print(f"machine speed: a 10,000,000-step Python loop takes {python_loop_seconds():.2f}s (this machine kind varies from "
          f"one session, and hour, to the next)", flush=True)
    base_url = os.environ.get("DATABASE_URL") or "sqlite:///"
    results = {}
    for engine in [args.baseline, args.engine] if args.baseline else [args.engine]:
        database_url, drop = fresh_database(base_url, engine.replace("-", "_"))
        try:
            results[engine] = run_engine(engine, args, database_url)
        finally:
            drop()
    if args.baseline:
        ours, base = results[args.engine], results[args.baseline]
        print(f"{args.engine} / {args.baseline}: {ours['rate'] / base['rate']:.2f}x the events/s stored and queryable, "
              f"{base['cpu'] / ours['cpu']:.2f}x less server CPU per event (target with --engine chdb --baseline django: "
              f">= {TARGET_RATIO:.2f}x, issue 15's 15,000 events/s where the Django engine on PostgreSQL did 9,300)")


if __name__ == "__main__":
    main()
