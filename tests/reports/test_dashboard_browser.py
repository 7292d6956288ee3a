"""Protects the promise of the dashboard file: opened from disk in a real browser (Debian's
headless Chromium, driven by Playwright), it makes no network request at all, logs no error,
and draws every chart (the map with its country outlines when world-atlas is installed),
whether the marts are full or empty. NOSTR_UPDATE_SCREENSHOT=1 saves the README's screenshot,
docs/dashboard.png.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from nostr_assets.lib.reports.country_outlines import WORLD_ATLAS_FILE
from nostr_assets.lib.reports.dashboard import build_dashboard
from nostr_assets.lib.reports.dashboard_page import write_atomically

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing of its own on the network: no QUIC probes, updates, sync or first-run.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Fixed, so that the screenshot changes only when the page does.
BUILT_AT = datetime(2024, 1, 1, 12, 40, tzinfo=UTC)
# The README's screenshot. A test run does not rewrite a committed file (fonts differ between
# machines): NOSTR_UPDATE_SCREENSHOT=1 makes it save there instead of in its temporary folder.
README_SCREENSHOT = ROOT / "docs" / "dashboard.png"


@dataclass
class Visit:
    """What the browser did and drew for one page."""

    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    charts: dict[str, dict] = field(default_factory=dict)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (Debian package chromium); Playwright never downloads")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def visit(browser, path: Path, screenshot: Path | None = None) -> Visit:
    """Open ``path`` from disk, wait until vega-embed has drawn every chart, and report."""
    seen = Visit()
    # 1200 CSS pixels wide drawn at 0.75: a 900-pixel screenshot, readable and small.
    page = browser.new_page(viewport={"width": 1200, "height": 900}, device_scale_factor=0.75)
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on(
        "console",
        lambda message: (
            seen.errors.append(f"console: {message.text}")
            if message.type in ("error", "assert")
            else None
        ),
    )
    page.on("pageerror", lambda error: seen.errors.append(f"page: {error}"))
    try:
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready=true]", state="attached", timeout=30_000)
        seen.charts = page.evaluate(
            """() => Object.fromEntries(
                Array.from(document.querySelectorAll("[data-chart]")).map((el) => {
                    const svg = el.querySelector("svg");
                    const box = svg ? svg.getBoundingClientRect() : { width: 0, height: 0 };
                    return [el.dataset.chart, {
                        rendered: el.dataset.rendered,
                        empty: el.dataset.empty,
                        width: box.width,
                        height: box.height,
                        marks: svg ? svg.querySelectorAll("path, rect, text").length : 0,
                        shapes: svg ? svg.querySelectorAll(".mark-shape path").length : 0,
                        text: svg ? svg.textContent : "",
                    }];
                }))"""
        )
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
    finally:
        page.close()
    return seen


def assert_offline_and_drawn(seen: Visit, path: Path) -> None:
    assert seen.requests == [path.as_uri()], "the page fetched something besides itself"
    assert not [u for u in seen.requests if u.split(":")[0] in ("http", "https", "ws", "wss")]
    assert seen.errors == []
    assert len(seen.charts) == 10
    for key, chart in seen.charts.items():
        assert chart["rendered"] == "true", key
        assert chart["width"] > 200 and chart["height"] > 40, (key, chart)
        assert chart["marks"] > 0, key


def test_the_dashboard_draws_offline(browser, fixture_marts, tmp_path):
    path = tmp_path / "network.html"
    with duckdb.connect(str(fixture_marts), read_only=True) as conn:
        dashboard = build_dashboard(conn, BUILT_AT, ROOT / WORLD_ATLAS_FILE)
    write_atomically(path, dashboard.html)
    update = os.environ.get("NOSTR_UPDATE_SCREENSHOT", "").strip() in ("1", "true", "yes")
    screenshot = README_SCREENSHOT if update else tmp_path / "dashboard.png"
    seen = visit(browser, path, screenshot)
    assert_offline_and_drawn(seen, path)
    assert {chart["empty"] for chart in seen.charts.values()} == {"false"}
    assert "wss://relay.two" in seen.charts["relay_uptime"]["text"]
    assert "notes (1)" in seen.charts["events_by_kind"]["text"]
    assert screenshot.stat().st_size > 50_000
    if dashboard.outlines.topology is None:
        pytest.skip(f"world-atlas is not installed (npm ci): {dashboard.outlines.why_missing}")
    # Natural Earth's 1:110m countries (177), each a path, and the globe's outline.
    assert seen.charts["relay_map"]["shapes"] == 178


def test_an_empty_warehouse_draws_empty_states_offline(browser, tmp_path):
    path = tmp_path / "empty.html"
    write_atomically(path, build_dashboard(None, BUILT_AT, tmp_path / "absent.json").html)
    seen = visit(browser, path)
    assert_offline_and_drawn(seen, path)
    assert {chart["empty"] for chart in seen.charts.values()} == {"true"}
    assert "No zaps yet" in seen.charts["zaps"]["text"]
    # No outlines: the globe and its graticule, two shapes instead of 177 countries.
    assert seen.charts["relay_map"]["shapes"] == 2
