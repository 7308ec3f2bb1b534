"""`make run` from a fresh clone: installs, migrates, prints a key, and serves the API."""
import os
import re
import shutil
import signal
import sqlite3
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="make run is the embedded (SQLite) default"),
    pytest.mark.skipif(not (ROOT / ".git").exists() or shutil.which("git") is None, reason="needs the git checkout"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_run_from_fresh_clone(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "VAR_DIR")}
    env["PORT"] = str(port)
    log = (tmp_path / "make-run.log").open("w+")
    process = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        key = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and process.poll() is None:
            log.seek(0)
            output = log.read()
            match = re.search(r"Personal API key:\s+(phx_\w+)", output)
            if match:
                key = match.group(1)
                try:
                    response = requests.get(f"http://127.0.0.1:{port}/api/schema/", headers={"Authorization": f"Bearer {key}"}, timeout=120)
                    break
                except requests.ConnectionError:
                    pass
            time.sleep(1)
        log.seek(0)
        output = log.read()
        assert key, output[-3000:]
        assert response.status_code == 200, output[-3000:]
        assert b"openapi" in response.content
        assert f"http://127.0.0.1:{port}" in output
        project = re.search(r"Project id:\s+(\d+)", output).group(1)
        me = requests.get(f"http://127.0.0.1:{port}/api/projects/{project}/", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert me.status_code == 200
        # The demo data and example insights give results at once.
        insights = requests.get(
            f"http://127.0.0.1:{port}/api/projects/{project}/insights/?refresh=blocking", headers={"Authorization": f"Bearer {key}"}, timeout=120
        ).json()
        assert insights["count"] >= 7
        assert all(item["result"] for item in insights["results"]), [item["name"] for item in insights["results"] if not item["result"]]
        swagger = requests.get(f"http://127.0.0.1:{port}/api/schema/swagger-ui/", timeout=10)
        assert swagger.status_code == 200
        # Several gunicorn workers write to the embedded database at once without "database is locked".
        headers = {"Authorization": f"Bearer {key}"}
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(
                pool.map(
                    lambda i: requests.post(f"http://127.0.0.1:{port}/api/personal_api_keys/", json={"label": f"k{i}"}, headers=headers, timeout=60).status_code,
                    range(48),
                )
            )
        assert statuses == [201] * 48
        with sqlite3.connect(clone / "var" / "db.sqlite3") as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
