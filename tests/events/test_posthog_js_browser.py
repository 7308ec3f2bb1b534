"""The real posthog-js in headless Chromium, on a page of another origin, against a live server:
its remote config and flags requests succeed with CORS, so it compresses with gzip-js and its
events arrive. Skipped without Chromium, chromedriver or npm (posthog-js is fetched once)."""
import json
import os
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from events.models import Event

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
POSTHOG_JS_VERSION = "1.449.2"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER) and shutil.which("npm")),
        reason="Chromium, chromedriver and npm are needed",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(scope="session")
def posthog_js(tmp_path_factory) -> bytes:
    directory = tmp_path_factory.mktemp("posthog-js")
    result = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", str(directory), f"posthog-js@{POSTHOG_JS_VERSION}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    bundle = Path(directory) / "node_modules" / "posthog-js" / "dist" / "array.full.js"
    if result.returncode != 0 or not bundle.exists():
        pytest.skip(f"posthog-js could not be installed: {result.stderr[-300:]}")
    return bundle.read_bytes()


@pytest.fixture
def site(posthog_js):
    """The tracked site: a page on its own origin that loads posthog-js."""
    pages = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body, content_type = pages.get(self.path, (b"not found", "text/plain"))
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pages["/posthog.js"] = (posthog_js, "application/javascript")
    pages["/favicon.ico"] = (b"", "image/x-icon")
    yield f"http://127.0.0.1:{server.server_address[1]}", pages
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-background-networking", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def network(browser, api) -> list[dict]:
    """Requests to the API seen by the browser: method, path, content type, status."""
    requests, statuses = {}, {}
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent" and params["request"]["url"].startswith(api):
            request = params["request"]
            headers = {k.lower(): v for k, v in request.get("headers", {}).items()}
            requests[params["requestId"]] = {
                "method": request["method"],
                "path": request["url"][len(api):],
                "content_type": headers.get("content-type"),
            }
        elif message["method"] == "Network.responseReceived":
            statuses[params["requestId"]] = params["response"]["status"]
    return [{**request, "status": statuses.get(request_id)} for request_id, request in requests.items()]


def test_posthog_js_loads_its_config_and_flags_and_sends_compressed_events(browser, site, live_server, team):
    origin, pages = site
    api = live_server.url
    pages["/"] = (
        f"""<!doctype html><html><body><h1>Shop</h1>
        <script src="/posthog.js"></script>
        <script>
          posthog.init({json.dumps(team.api_token)}, {{api_host: {json.dumps(api)}, person_profiles: "always", opt_out_useragent_filter: true}});
          posthog.capture("signed up", {{plan: "pro"}});
          posthog.reloadFeatureFlags();
        </script></body></html>""".encode(),
        "text/html",
    )
    browser.get(f"{origin}/")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not Event.objects.filter(team=team, event="signed up").exists():
        time.sleep(0.25)
    event = Event.objects.get(team=team, event="signed up")
    assert event.properties["plan"] == "pro"
    assert event.properties["$lib"] == "web"

    seen = network(browser, api)
    paths = [(r["method"], r["path"].split("?")[0]) for r in seen]
    assert ("GET", f"/array/{team.api_token}/config.js") in paths
    assert ("POST", "/flags/") in paths
    assert [r for r in seen if r["status"] is not None and r["status"] >= 400] == []
    sends = [r for r in seen if r["method"] == "POST" and r["path"].split("?")[0] in ("/e/", "/i/v0/e/")]
    assert sends, paths
    # gzip-js: the body goes as text/plain, which needs no CORS preflight.
    assert {r["content_type"] for r in sends} == {"text/plain"}
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
