"""The dashboard and admin page in headless Chromium, with the game simulator racing through
the decoder and the lap timer into the bridge. Screenshots go to test-artifacts/web_bridge/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import free_port, wait_until
from modules.web_bridge.devstack import DevStack, Endpoint

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "web_bridge"
# A short, quick race: two laps of the shortest circuit at 8x, ten frames a second.
RACE = {"track": "spielberg", "laps": 2, "cars": 20, "speed": 8, "rate": 10, "seed": 3}

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")

# Records every distinct order of the tower's rows, as the page sees it.
WATCH_TOWER = """() => {
  window.__orders = [];
  const body = document.querySelector('#tower tbody');
  const note = () => {
    const order = [...body.children].map((tr) => tr.dataset.driver).join('|');
    if (order && window.__orders[window.__orders.length - 1] !== order) window.__orders.push(order);
  };
  new MutationObserver(note).observe(body, { childList: true });
  note();
}"""


class Race:
    def __init__(self, dev: DevStack, sim: Endpoint, bridge: Endpoint, page: Page) -> None:
        self.dev, self.sim, self.bridge, self.page = dev, sim, bridge, page

    def truth(self) -> dict[str, Any]:
        with ModuleClient("127.0.0.1", self.sim.port).connect() as client:
            return client.request("TRUTH")

    def shot(self, page: Page, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"{name}.png")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def race(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[Race]:
    directory = tmp_path_factory.mktemp("browser")
    (directory / "recordings").mkdir()
    udp = free_port()
    with DevStack(directory) as dev:
        dev.module("telemetry_decoder", "--udp-port", str(udp))
        lap_timer = dev.module("lap_timer", "--db", str(directory / "laps.sqlite3"))
        recorder = dev.module("recorder", "--save-path", str(directory / "recordings"))
        bridge = dev.bridge(lap_timer, recorder)
        sim = dev.module("game_sim", "--target-port", str(udp))
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(bridge.url)
        expect(page.locator("#connection")).to_have_text("live")
        page.evaluate(WATCH_TOWER)
        with ModuleClient("127.0.0.1", sim.port).connect() as client:
            client.request("START", RACE)
        yield Race(dev, sim, bridge, page)
        page.close()


def tower_drivers(page: Page) -> list[str]:
    return page.eval_on_selector_all("#tower tbody tr", "rows => rows.map(r => r.dataset.driver)")


def test_timing_tower_fills_with_the_field(race: Race) -> None:
    rows = race.page.locator("#tower tbody tr")
    expect(rows).to_have_count(RACE["cars"], timeout=30_000)
    drivers = sorted(car["driver"] for car in race.truth()["cars"])
    # Rows come with the first LapData; names with Participants (every 5 s of game time).
    wait_until(
        lambda: sorted(tower_drivers(race.page)) == drivers,
        timeout=30,
        interval=0.2,
        message=f"the tower naming {drivers}",
    )
    expect(race.page.locator("#track")).to_have_text("Austria")
    expect(race.page.locator("#lap")).to_contain_text(f"/ {RACE['laps']}")
    race.shot(race.page, "dashboard_racing")
    race.page.set_viewport_size({"width": 2560, "height": 1440})  # a wall screen
    try:
        expect(rows).to_have_count(RACE["cars"])
        race.shot(race.page, "dashboard_racing_wall")
    finally:
        race.page.set_viewport_size({"width": 1440, "height": 900})


def test_tower_reorders_and_ends_in_the_final_order(race: Race) -> None:
    truth = wait_until(lambda: (t := race.truth())["finished"] and t, timeout=120, interval=0.5)
    names = {car["car_index"]: car["driver"] for car in truth["cars"]}
    final = [names[i] for i in truth["final_order"]]
    wait_until(
        lambda: tower_drivers(race.page) == final,
        timeout=30,
        interval=0.2,
        message=f"the tower in the final order {final}",
    )
    orders = race.page.evaluate("window.__orders")
    full = [order.split("|") for order in orders if len(order.split("|")) == len(final)]
    assert len({tuple(order) for order in full}) >= 2, "the tower never reordered"
    race.shot(race.page, "dashboard_finished")


def test_manual_lap_from_admin_reaches_the_dashboard(race: Race, browser: Browser) -> None:
    admin = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        admin.goto(race.bridge.url + "admin")
        admin.fill("#lap-form input[name=driver]", "Ada LOVELACE")
        admin.fill("#lap-form input[name=team]", "Williams")
        admin.fill("#lap-form input[name=time]", "1:29.512")
        admin.click("#lap-form button")
        expect(admin.locator("#lap-result")).to_contain_text("Added lap 1 for Ada LOVELACE")
        board = race.page.locator('#manual-board tr[data-driver="Ada LOVELACE"]')
        expect(board).to_contain_text("1:29.512")
        expect(race.page.locator('#laps li[data-driver="Ada LOVELACE"]')).to_contain_text(
            "1:29.512"
        )
        race.shot(race.page, "dashboard_manual_lap")
        race.shot(admin, "admin_lap_added")
    finally:
        admin.close()


def test_bad_lap_time_shows_its_error_next_to_the_field(race: Race, browser: Browser) -> None:
    admin = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        admin.goto(race.bridge.url + "admin")
        admin.fill("#lap-form input[name=driver]", "Ada LOVELACE")
        admin.fill("#lap-form input[name=time]", "1:6x.2")
        admin.click("#lap-form button")
        error = admin.locator('#lap-form .field-error[data-for="time"]')
        expect(error).to_contain_text("not understood")
        expect(admin.locator('#lap-form .field-error[data-for="driver"]')).to_have_text("")
        expect(admin.locator("#lap-form input[name=time]")).to_have_class("invalid")
        race.shot(admin, "admin_bad_lap_time")
    finally:
        admin.close()


def test_api_docs_work_with_the_network_cut(race: Race, browser: Browser) -> None:
    """Swagger UI at /docs and ReDoc at /redoc, with every request beyond this machine
    refused (as with no internet): their scripts come from files installed with Raceplane."""
    page = browser.new_page()
    refused: list[str] = []

    def cut(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", cut)
    try:
        page.goto(race.bridge.url + "docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Raceplane web bridge")
        expect(page.locator(".opblock-summary-path").first).to_be_visible()
        page.goto(race.bridge.url + "redoc")
        expect(page.locator("redoc h1").first).to_contain_text("Raceplane web bridge")
        expect(page.get_by_text("/api/session").first).to_be_attached()
        # ReDoc's "API docs by Redocly" badge links its logo; nothing else goes out.
        assert [url for url in refused if not url.endswith("redoc/logo-mini.svg")] == []
    finally:
        page.close()


def test_banner_says_which_input_is_missing_or_quiet_and_clears(
    tmp_path: Path, browser: Browser
) -> None:
    # A session of its own: the module's race stack publishes raceplane.lap_data too.
    with DevStack(tmp_path, private_lsl=True) as dev:
        bridge = dev.bridge(None, None, "--expect", "raceplane.lap_data")
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        try:
            page.goto(bridge.url)
            banner = page.locator("#inputs-banner")
            expect(banner).to_contain_text("raceplane.lap_data not found since", timeout=10_000)
            expect(banner).to_contain_text("is telemetry_decoder running")
            Race(dev, bridge, bridge, page).shot(page, "dashboard_input_missing")
            feeder = dev.feeder("raceplane.lap_data")
            expect(banner).to_be_hidden(timeout=10_000)  # found: the alarm clears
            assert feeder.stdin is not None
            row = json.dumps(
                {"stream": "raceplane.lap_data", "cars": {"0": {"current_lap_num": 1}}}
            )
            feeder.stdin.write(row + "\n")
            feeder.stdin.flush()
            # Nothing more arrives: after 5 s the bridge says since when.
            expect(banner).to_contain_text("no data from telemetry_decoder since", timeout=15_000)
            feeder.stdin.write(row + "\n")
            feeder.stdin.flush()
            expect(banner).to_be_hidden(timeout=10_000)
        finally:
            page.close()
