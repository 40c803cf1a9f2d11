"""The analysis pages in headless Chromium with every non-local request refused (no network):
the compare page of the dashboard following a race being recorded, lap by lap, then a finished
recording; and `raceplane report`'s page opened from disk. Screenshots: test-artifacts/analysis/."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import free_port, wait_until
from modules.web_bridge.devstack import DevStack
from tests.test_browser_web_bridge import CHROMIUM, CHROMIUM_ARGS

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "analysis"
REPO = Path(__file__).resolve().parent.parent
RACE = {"track": "spielberg", "laps": 3, "cars": 20, "speed": 6, "rate": 10, "seed": 3}

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


def offline(page: Page) -> list[str]:
    """Refuse every request that leaves this machine; returns the refused URLs."""
    refused: list[str] = []

    def route(route: Route) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "file://", "data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    page.route("**/*", route)
    return refused


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def option_count(page: Page, select: str) -> int:
    return page.eval_on_selector(select, "s => s.options.length")


def rendered(page: Page) -> int:
    return int(page.eval_on_selector("#chart", "c => c.dataset.rendered || 0"))


def traces_drawn(page: Page) -> int:
    """Lines plotly actually drew (SVG paths with points) in the chart."""
    return page.eval_on_selector_all(
        "#chart .scatterlayer .trace path.js-line",
        "paths => paths.filter(p => (p.getAttribute('d') || '').length > 100).length",
    )


def test_compare_page_follows_the_race_then_opens_the_recording(browser, tmp_path):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    udp = free_port()
    with DevStack(tmp_path) as dev:
        dev.module("telemetry_decoder", "--udp-port", str(udp))
        lap_timer = dev.module("lap_timer", "--db", str(tmp_path / "laps.sqlite3"))
        recorder = dev.module("recorder", "--save-path", str(recordings))
        bridge = dev.bridge(lap_timer, recorder)
        sim = dev.module("game_sim", "--target-port", str(udp))
        with ModuleClient("127.0.0.1", recorder.port).connect() as client:
            wait_until(
                lambda: any(s["name"] == "raceplane.lap_data" for s in client.request("UPDATE")),
                timeout=30,
                interval=0.2,
            )
            client.request("RECORD", {"filename": "live.xdf"})
        with ModuleClient("127.0.0.1", sim.port).connect() as client:
            client.request("START", RACE)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        refused = offline(page)
        try:
            page.goto(bridge.url + "compare")
            expect(page.locator("#recording")).to_have_value("live", timeout=30_000)
            # Lap 1 done by the first cars: both selects hold their laps, the chart is drawn.
            wait_until(lambda: rendered(page) >= 1, timeout=90, interval=0.3, message="a chart")
            expect(page.locator("#status")).to_be_hidden()
            assert traces_drawn(page) == 7  # 2 laps x speed/throttle/brake, and the delta
            first_options = option_count(page, "#lap-a")
            shot(page, "compare_live")
            # Laps complete: the lists grow and the comparison is drawn again, unasked.
            wait_until(
                lambda: option_count(page, "#lap-a") > first_options and rendered(page) >= 2,
                timeout=90,
                interval=0.3,
                message="the compare page updated with new laps",
            )
            with ModuleClient("127.0.0.1", sim.port).connect() as client:
                wait_until(lambda: client.request("STATUS")["finished"], timeout=120, interval=0.5)
            with ModuleClient("127.0.0.1", recorder.port).connect() as client:
                client.request("STOPRECORD")
            # The finished race as a recording: two drivers' laps picked by hand.
            page.reload()
            expect(page.locator("#recording option[value='live.xdf']")).to_have_count(1)
            page.select_option("#recording", "live.xdf")
            laps = httpx.get(
                bridge.url + "api/analysis/laps", params={"recording": "live.xdf"}, timeout=30
            ).json()["laps"]
            drivers = list(dict.fromkeys(lap["driver"] for lap in laps))
            second_lap = [lap for lap in laps if lap["lap"] == 2]
            a = next(lap for lap in second_lap if lap["driver"] == drivers[0])
            b = next(lap for lap in second_lap if lap["driver"] == drivers[1])
            before = rendered(page)
            page.select_option("#lap-a", a["key"])
            page.select_option("#lap-b", b["key"])
            wait_until(lambda: rendered(page) > before, timeout=30, interval=0.2)
            expect(page.locator("#times")).to_have_text(re.compile(r"\d:\d\d\.\d{3} / \d:\d\d"))
            assert traces_drawn(page) == 7
            shot(page, "compare_recording")
            assert refused == []  # nothing was asked of the internet
        finally:
            page.close()
    # Bad requests get clear errors, not a stack trace.
    assert not any(lap["lap_time_s"] <= 0 for lap in laps)


def test_compare_api_errors_are_clear(tmp_path):
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    (recordings / "junk.xdf").write_bytes(b"not an xdf file at all")
    with DevStack(tmp_path) as dev:
        recorder = dev.module("recorder", "--save-path", str(recordings))
        bridge = dev.bridge(None, recorder)
        get = lambda path, **params: httpx.get(bridge.url + path, params=params, timeout=30)  # noqa: E731
        assert get("api/analysis/recordings").json() == {"live": [], "recordings": ["junk.xdf"]}
        answer = get("api/analysis/laps", recording="junk.xdf")
        assert answer.status_code == 422 and "neither an XDF" in answer.json()["detail"]
        answer = get("api/analysis/laps", recording="../etc/passwd")
        assert answer.status_code == 422
        answer = get("api/analysis/laps")
        assert answer.status_code == 404 and "not recording" in answer.json()["detail"]
        answer = get("api/analysis/compare", a="1-2@3", b="bad", recording="junk.xdf")
        assert answer.status_code == 422
        js = get("vendor/plotly.min.js")
        assert js.status_code == 200 and len(js.content) > 1_000_000


def test_report_page_renders_offline(browser, tmp_path):
    from tests.analysis_support import record_race

    race = record_race(tmp_path / "race", {"laps": 2})
    out = tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "modules.cli", "report", *map(str, race.parts), "-o", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "cdn" not in out.read_text().lower().split("<body>")[1][:2000]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    refused = offline(page)
    try:
        page.goto(out.as_uri())
        charts = page.locator(".chart .js-plotly-plot")
        expect(charts).to_have_count(6)
        for k in range(6):
            expect(charts.nth(k).locator(".main-svg").first).to_be_visible()
        titles = page.locator(".chart h2").all_inner_texts()
        assert titles == [
            "Lap times", "Positions", "Gap to the leader", "Tyre strategy", "Fastest laps",
            "Sectors",
        ]  # fmt: skip
        # Every chart has drawn data: lines, or bars.
        drawn = page.eval_on_selector_all(
            ".chart .js-plotly-plot",
            "plots => plots.map(p => p.querySelectorAll('path.js-line, .bars path').length)",
        )
        assert all(count > 0 for count in drawn), drawn
        shot(page, "report")
        assert refused == []
    finally:
        page.close()
    bad = subprocess.run(
        [sys.executable, "-m", "modules.cli", "report", str(tmp_path / "report.html")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "neither an XDF recording" in bad.stderr
