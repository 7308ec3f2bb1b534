"""What a public page shows when its result is fresh, stale, missing or being computed (issue 13.10),
and the legend of charts with several series."""
import io
import re
from types import SimpleNamespace

import pytest
from django.test import Client
from django.utils import timezone
from PIL import Image

from sharing import throttling

from .conftest import TRENDS_RESPONSE, replace_query_engine, sharing_url

pytestmark = pytest.mark.django_db

MISS = {"cache_key": "cache_abc", "query_status": None}
RUNNING = {"id": "cache_abc", "query_async": True, "team_id": 1, "complete": False, "error": False, "error_message": None}
COMPUTED = {**TRENDS_RESPONSE, "is_cached": False}


class ModalEngine:
    """Stands in for the query engine: `cached` is what the cache holds; `computed` what computing gives
    (or raises); `async` answers with the cache when it holds a result, else starts a job."""

    def __init__(self, cached=MISS, computed=COMPUTED):
        self.cached, self.computed = cached, computed
        self.modes = []

    def __call__(self, team, query, *, refresh, **kwargs):
        self.modes.append(str(refresh))
        if refresh == "force_cache":
            return self.cached
        if refresh == "async":
            return self.cached if self.cached.get("results") else {"cache_key": "cache_abc", "query_status": RUNNING}
        if isinstance(self.computed, Exception):
            raise self.computed
        return self.computed


@pytest.fixture
def page(client, team, insight):
    client.patch(sharing_url(team, insight), {"enabled": True}, format="json")
    token = client.get(sharing_url(team, insight)).json()["access_token"]
    return lambda suffix="": Client().get(f"/shared/{token}{suffix}")


@pytest.fixture
def use(monkeypatch):
    return lambda engine: replace_query_engine(monkeypatch, engine)


def polls(html: str) -> bool:
    return '<meta http-equiv="refresh" content="3">' in html


def test_nothing_cached_is_computed_by_the_first_viewer(page, use, insight):
    engine = use(ModalEngine())
    html = page().content.decode()
    assert engine.modes == ["force_cache", "async_except_on_cache_miss"]
    assert "<title>$pageview · 4-Jan-2025: 9</title>" in html and not polls(html)
    assert not throttling.computation_running(insight.id)  # the lock is released


def test_a_fresh_or_stale_cache_is_shown_and_refreshed_in_the_background(page, use):
    engine = use(ModalEngine(cached=TRENDS_RESPONSE))
    html = page().content.decode()
    # `async`: a fresh result as is, a stale one while a background job refreshes it.
    assert engine.modes == ["force_cache", "async"]
    assert "<title>$pageview · 4-Jan-2025: 9</title>" in html and not polls(html)


def test_while_another_viewer_computes_the_page_polls(page, use, insight):
    engine = use(ModalEngine())
    assert throttling.begin_computation(insight.id)
    try:
        html = page().content.decode()
        assert engine.modes == ["force_cache"]  # no second computation
        assert polls(html) and 'id="insight-pending"' in html and "No results yet" not in html
        body = page(".json").json()
        assert body["insight"]["result"] is None
    finally:
        throttling.end_computation(insight.id)
    assert "<title>$pageview · 4-Jan-2025: 9</title>" in page().content.decode()


def test_a_running_background_job_is_waited_for(page, use):
    engine = use(ModalEngine(cached={"cache_key": "cache_abc", "query_status": RUNNING}))
    html = page().content.decode()
    assert engine.modes == ["force_cache"] and polls(html)
    assert page(".json").json()["insight"]["query_status"]["complete"] is False


def test_computations_per_shared_insight_are_throttled_then_go_to_the_background(page, use, insight, monkeypatch):
    # One instant for the throttle: its windows are fixed minutes, which a slow run could straddle.
    instant = timezone.now()
    monkeypatch.setattr(throttling, "timezone", SimpleNamespace(now=lambda: instant))
    engine = use(ModalEngine(computed=MISS))  # computing leaves nothing cached: every view is a miss
    for _ in range(throttling.COMPUTATIONS_PER_WINDOW):
        page()
    assert engine.modes.count("async_except_on_cache_miss") == throttling.COMPUTATIONS_PER_WINDOW
    engine.modes.clear()
    html = page().content.decode()
    assert engine.modes == ["force_cache", "async"]  # enqueued, not computed here
    assert polls(html)


def test_a_failed_computation_says_so_and_does_not_poll(page, use):
    use(ModalEngine(computed=RecursionError("too deep")))
    html = page().content.decode()
    assert "No results yet" in html and not polls(html)
    assert 'id="insight-error"' in html and "nested too deeply" in html and "too deep<" not in html


def test_a_query_the_engine_refuses_is_not_computed_again(page, use, team, insight, client):
    insight.query = {"kind": "InsightVizNode", "source": {"kind": "NoSuchQuery"}}
    insight.save()
    html = page().content.decode()
    assert "No results yet" in html and not polls(html) and 'id="insight-error"' in html


def legend_labels(html: str) -> list[str]:
    svg = re.search(r"<svg[^>]*class=\"insight-chart\".*?</svg>", html, re.S).group(0)
    return re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="12" height="12" fill="#[0-9a-f]+"></rect><text [^>]*>([^<]*)</text>', svg)


def test_several_series_get_a_legend(page, use):
    use(ModalEngine(cached=TRENDS_RESPONSE))
    assert legend_labels(page().content.decode()) == ["$pageview", "signed_up"]


def test_a_breakdown_gets_a_legend(page, use, insight):
    breakdown = [{**series, "label": browser, "breakdown_value": browser} for series, browser in zip(TRENDS_RESPONSE["results"], ["Chrome", "Safari"])]
    use(ModalEngine(cached={**TRENDS_RESPONSE, "results": breakdown}))
    assert legend_labels(page().content.decode()) == ["Chrome", "Safari"]


def test_a_single_series_has_no_legend(page, use):
    use(ModalEngine(cached={**TRENDS_RESPONSE, "results": TRENDS_RESPONSE["results"][:1]}))
    assert legend_labels(page().content.decode()) == []


def test_the_png_of_several_series_has_a_legend(page, use):
    def lowest_first_colour(response) -> int:
        """The lowest row holding the first series' colour: a legend puts its swatch below the plot."""
        image = Image.open(io.BytesIO(response.content)).convert("RGB")
        rows = [y for y in range(image.height) if any(image.getpixel((x, y)) == (0x1D, 0x4A, 0xFF) for x in range(0, image.width, 2))]
        return max(rows)

    use(ModalEngine(cached={**TRENDS_RESPONSE, "results": TRENDS_RESPONSE["results"][1:]}))
    single = lowest_first_colour(page(".png"))
    use(ModalEngine(cached=TRENDS_RESPONSE))
    several = lowest_first_colour(page(".png"))
    assert several > single + 10
