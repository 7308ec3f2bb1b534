"""Query coalescing: 50 concurrent identical `refresh=blocking` retrieves of one slow insight.

    .venv/bin/python bench/bench_coalescing.py                     # SQLite file, in-process coalescing
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_coalescing REDIS_URL=redis://127.0.0.1:6379/12 \
        .venv/bin/python bench/bench_coalescing.py                 # PostgreSQL, Redis shared by the workers

Seeds events so that the insight takes about a second to compute, then serves with gunicorn
(several workers with Redis; one worker with many threads in the embedded mode, where the
coalescing store is in-process) and, with coalescing on and then off: fires 50 identical
requests at once, counts the computations (the leader counter / the engine's cache misses) and
prints the total wall time as a ratio to one single uncached request. Targets: 1 computation,
ratio <= 1.5 with coalescing on.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def manage(env, *args) -> str:
    return subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(env, coalescing: bool):
    port = free_port()
    workers = ["--workers", "4", "--threads", "16"] if env.get("REDIS_URL") else ["--workers", "1", "--threads", "64"]
    process = subprocess.Popen(
        [str(Path(PY).parent / "gunicorn"), "insights_api.wsgi:application", "--bind", f"127.0.0.1:{port}", "--timeout", "300", *workers],
        cwd=ROOT,
        env={**env, "QUERY_COALESCING_ENABLED": "1" if coalescing else "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            requests.get(f"{url}/api/users/@me/", timeout=30)  # a cheap 401 means it is up
            return process, url
        except requests.ConnectionError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def clear_cache(env):
    manage(env, "shell", "-c", "from django.conf import settings; from django.core.cache import caches; [caches[a].clear() for a in settings.CACHES]")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()

    env = {**os.environ, "DEBUG": "0", "SECRET_KEY": "bench", "RATE_LIMIT_ENABLED": "0", "LOG_LEVEL": "WARNING"}
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='bench-coalescing-')}/db.sqlite3"
    manage(env, "migrate", "--no-input", "-v0")
    boot = json.loads(manage(env, "bootstrap", "--email", "bench@example.com", "--password", "bench-pass", "--organization", "Bench", "--new-api-key", "--json"))
    team = boot["team_id"]
    manage(env, "generate_demo_data", "--team", str(team), "--events", str(args.events), "--days", "90", "--seed", "7", "--if-empty")
    manage(env, "create_example_insights", "--team", str(team))
    insight_id = int(manage(env, "shell", "-c", f"from insights.models import Insight; print(Insight.objects.get(team_id={team}, name='Daily pageviews by browser').id)").splitlines()[-1])
    headers = {"Authorization": f"Bearer {boot['personal_api_key']}"}
    path = f"/api/projects/{team}/insights/{insight_id}/?refresh=blocking"

    def timed(coalescing: bool, concurrency: int):
        """Requests on a fresh server with an empty cache (the in-process cache lives in the server)."""
        clear_cache(env)
        process, url = serve(env, coalescing)
        try:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                started = time.perf_counter()
                responses = list(pool.map(lambda _: requests.get(url + path, headers=headers, timeout=300), range(concurrency)))
                elapsed = time.perf_counter() - started
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
        assert all(r.status_code == 200 for r in responses), [r.status_code for r in responses]
        return elapsed, responses

    results = {}
    for coalescing in (True, False):
        single, _ = timed(coalescing, 1)
        total, responses = timed(coalescing, args.concurrency)
        # A replayed response carries the leader's body: only the others computed (or read the cache).
        computations = sum(1 for r in responses if r.headers.get("X-Query-Coalescing") != "replayed" and r.json()["is_cached"] is False)
        modes = {}
        for r in responses:
            modes[r.headers.get("X-Query-Coalescing", "-")] = modes.get(r.headers.get("X-Query-Coalescing", "-"), 0) + 1
        results[coalescing] = (single, total, computations, modes)

    engine = "PostgreSQL + Redis" if "postgres" in env["DATABASE_URL"] else "SQLite (in-process coalescing)"
    print(f"{engine}, {args.events:,} events, {args.concurrency} concurrent identical requests")
    for coalescing, (single, total, computations, modes) in results.items():
        print(
            f"  coalescing {'on ' if coalescing else 'off'}: single {single * 1000:.0f} ms, {args.concurrency} at once {total * 1000:.0f} ms, "
            f"ratio {total / single:.2f}, computations {computations}, responses {modes}"
        )


if __name__ == "__main__":
    main()
