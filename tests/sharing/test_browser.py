"""A person opens a password-protected shared insight in a real browser (headless Chromium),
unlocks it and sees the chart. Skipped when Chromium or its driver is not installed."""
import datetime as dt
import os
import shutil

import pytest

import queries
from events.models import Event

from .conftest import make_insight, sharing_url

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.skipif(
        not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)), reason="Chromium and chromedriver are not installed"
    ),
    pytest.mark.django_db(transaction=True),
]

PASSWORD = "open sesame 42"
QUERY = {
    "kind": "InsightVizNode",
    "source": {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview"}],
        "interval": "day",
        "dateRange": {"date_from": "2025-03-01", "date_to": "2025-03-05"},
    },
}


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1100,800",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_unlock_a_protected_share_and_see_the_chart(browser, live_server, client, team, user, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    pageviews = {1: 3, 2: 5, 3: 2, 5: 6}
    Event.objects.bulk_create(
        Event(team=team, event="$pageview", distinct_id=f"user-{day}-{n}", timestamp=dt.datetime(2025, 3, day, 12, tzinfo=dt.timezone.utc))
        for day, count in pageviews.items()
        for n in range(count)
    )
    insight = make_insight(team, user, name="March pageviews", description="Every pageview, per day", query=QUERY)
    queries.execute_query(team, QUERY, refresh="blocking")  # the page shows what is cached
    assert client.patch(sharing_url(team, insight), {"enabled": True, "password_required": True}, format="json").status_code == 200
    assert client.post(sharing_url(team, insight, "passwords/"), {"raw_password": PASSWORD}, format="json").status_code == 201
    token = client.get(sharing_url(team, insight)).json()["access_token"]

    wait = WebDriverWait(browser, 15)
    browser.get(f"{live_server.url}/shared/{token}")
    form = wait.until(ec.presence_of_element_located((By.ID, "unlock-form")))
    assert "March pageviews" not in browser.page_source
    browser.save_screenshot(str(tmp_path / "unlock.png"))

    form.find_element(By.ID, "password").send_keys("wrong password")
    form.find_element(By.ID, "unlock-submit").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "unlock-error"), "Incorrect password"))

    password = browser.find_element(By.ID, "password")
    password.clear()
    password.send_keys(PASSWORD)
    browser.find_element(By.ID, "unlock-submit").click()
    heading = wait.until(ec.presence_of_element_located((By.ID, "insight-name")))

    assert heading.text == "March pageviews"
    assert browser.find_element(By.ID, "insight-description").text == "Every pageview, per day"
    chart = browser.find_element(By.CSS_SELECTOR, "#insight-chart svg.insight-chart")
    assert chart.get_attribute("aria-label") == "March pageviews"
    assert chart.size["width"] > 500 and chart.size["height"] > 200  # laid out, not collapsed
    points = chart.find_elements(By.TAG_NAME, "circle")
    tips = [point.find_element(By.TAG_NAME, "title").get_attribute("textContent") for point in points]
    assert tips == [
        "$pageview · 1-Mar-2025: 3",
        "$pageview · 2-Mar-2025: 5",
        "$pageview · 3-Mar-2025: 2",
        "$pageview · 4-Mar-2025: 0",
        "$pageview · 5-Mar-2025: 6",
    ]
    heights = [point.location["y"] for point in points]
    assert heights[4] < heights[1] < heights[0] < heights[2] < heights[3]  # higher counts are drawn higher
    cookie = browser.get_cookie("posthog_sharing_token")
    assert cookie["httpOnly"] is True and cookie["path"] == f"/shared/{token}"
    screenshot = tmp_path / "shared-insight.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 0

    browser.get(f"{live_server.url}/shared/{token}")  # the cookie keeps it unlocked
    assert browser.find_element(By.ID, "insight-name").text == "March pageviews"


def test_a_page_waiting_for_its_result_reloads_until_it_is_there(browser, live_server, client, team, user):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from sharing import throttling

    Event.objects.bulk_create(
        Event(team=team, event="$pageview", distinct_id=f"user-{n}", timestamp=dt.datetime(2025, 3, 2, 12, tzinfo=dt.timezone.utc))
        for n in range(4)
    )
    insight = make_insight(team, user, name="March pageviews", query=QUERY)
    assert client.patch(sharing_url(team, insight), {"enabled": True}, format="json").status_code == 200
    token = client.get(sharing_url(team, insight)).json()["access_token"]

    assert throttling.begin_computation(insight.id)  # another viewer is computing it
    try:
        browser.get(f"{live_server.url}/shared/{token}")
        assert browser.find_element(By.ID, "insight-pending").text == "Computing results…"
    finally:
        throttling.end_computation(insight.id)  # ...and stopped without a result: the next load computes
    chart = WebDriverWait(browser, 15).until(ec.presence_of_element_located((By.CSS_SELECTOR, "#insight-chart svg.insight-chart")))
    tips = [point.find_element(By.TAG_NAME, "title").get_attribute("textContent") for point in chart.find_elements(By.TAG_NAME, "circle")]
    assert "$pageview · 2-Mar-2025: 4" in tips
