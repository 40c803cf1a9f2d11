"""A real qualifying session on the dashboard, in headless Chromium: the 2024 Spanish GP
qualifying replayed by the live timing module into the lap timer and the web bridge. The page
shows the part (Q3), each driver's best per part and that the results are final. Screenshots
go to test-artifacts/web_bridge/."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from dareplane_utils.client.module_client import ModuleClient, ModuleError
from dareplane_utils.testing import wait_until
from modules.web_bridge.devstack import DevStack
from tests.fastf1_judge import shared_file
from tests.test_browser_web_bridge import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


def lap_time(ms: int | None) -> str:
    if not ms:
        return ""
    minutes, rest = divmod(ms, 60_000)
    return f"{minutes}:{rest // 1000:02d}.{rest % 1000:03d}"


def test_a_real_qualifying_shows_its_parts_and_its_final_results(tmp_path):
    path = shared_file("2024_spain_qualifying", tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    # The session's first messages: the module opens its outlets, the bridge finds them.
    opening = tmp_path / "opening.txt"
    opening.write_text("".join(lines[:40]), encoding="utf-8")
    with DevStack(tmp_path / "stack") as dev:
        timer = dev.module("lap_timer", "--db", str(tmp_path / "laps.sqlite3"))
        bridge = dev.bridge(timer)
        live = dev.module("livetiming", "--wait-s", "30")
        with ModuleClient("127.0.0.1", live.port, timeout=15).connect() as client:

            def replay(file, **options):
                client.request("REPLAY", {"paths": [str(file)], "flat_out": True, **options})
                status = wait_until(
                    lambda: (s := client.request("STATUS"))["state"] == "idle" and s,
                    timeout=300,
                    message=f"the replay of {file.name} ends",
                )
                assert status["ended"] == "done", status

            replay(opening)

            def bridge_reads_livetiming():
                streams = httpx.get(bridge.url + "api/streams").json()
                found = {s["name"] for s in streams if "livetiming" in s["source_id"]}
                return {"raceplane.session", "raceplane.lap_data"} <= found

            wait_until(bridge_reads_livetiming, timeout=60, message="the bridge reads livetiming")
            replay(path)

        with ModuleClient("127.0.0.1", timer.port, timeout=15).connect() as client:

            def final_table():
                try:
                    table = client.request("GET_STANDINGS")
                except ModuleError:
                    return None
                return table["final"] and table

            table = wait_until(final_table, timeout=60, message="final standings")
        assert table["part"] == "Q3"

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            try:
                page.goto(bridge.url)
                expect(page.locator("#connection")).to_have_text("live")
                expect(page.locator("#session-type")).to_have_text("Qualifying Q3")
                expect(page.locator("#tower-state")).to_have_text("Q3 · final")
                headings = page.locator("#tower thead th.part")
                expect(headings).to_have_text(["Q1", "Q2", "Q3"])
                for i in range(3):
                    expect(headings.nth(i)).to_be_in_viewport(ratio=1)
                # They stand for the best, the interval and the last lap, which go.
                expect(page.locator("#tower thead th.best")).to_be_hidden()
                rows = page.locator("#tower tbody tr")
                expect(rows).to_have_count(20)
                # Pole: Norris, 1:11.383 in Q3 (the feed's own result of that day).
                pole = rows.first
                expect(pole).to_have_attribute("data-driver", "Lando NORRIS")
                expect(pole.locator("td.q3")).to_have_text("1:11.383")
                expect(pole.locator("td.q3")).to_have_class("part q3 num purple")
                # Every row: the best of each part as the standings stream gives it; the last
                # five went out in Q1, the five before them in Q2.
                got = page.eval_on_selector_all(
                    "#tower tbody tr",
                    "rows => rows.map(r => [r.dataset.driver,"
                    " ...[...r.querySelectorAll('td.part')].map(c => c.textContent)])",
                )
                want = [
                    [row["driver"], *(lap_time(ms) for ms in row["best_by_part_ms"])]
                    for row in table["rows"]
                ]
                assert got == want
                # Piastri's Q3 lap was deleted and his in-lap is no best: no Q3 time, as F1 had.
                assert {row[0]: row[3] for row in got}["Oscar PIASTRI"] == ""
                assert all(q2 == q3 == "" for _, _, q2, q3 in got[15:])
                assert all(q3 == "" and q2 for _, _, q2, q3 in got[10:15])
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=ARTIFACTS / "dashboard_livetiming_qualifying.png")
            finally:
                page.close()
                browser.close()
