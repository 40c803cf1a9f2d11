"""The race engineer through the real stack: the game simulator (format 2026, an online lobby)
sends UDP through a relay here to the decoder; the engineer module reads the decoder's streams
and publishes `raceplane.engineer`; the web bridge serves `/engineer` to headless Chromium.

Against the simulator's TRUTH: each lap's fuel, ERS and tyre wear as it ended, on the engineer
stream; 2026 aero and overtake fields equal what the simulator sent (the relay keeps every
CarTelemetry2 it passed on, by frame); laps exact; in an online lobby and when spectating,
what the game hides is shown as unknown on the page, never as zero."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pylsl
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import free_port, wait_until
from modules.f1_udp.packets import PacketId, parse_packet
from modules.web_bridge.devstack import DevStack, Endpoint

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "engineer"
RESTRICTED = (1, 2, 3)  # the cars after the player's whose drivers restrict their telemetry
RACE = {
    "track": "spielberg",
    "laps": 3,
    "cars": 20,
    "speed": 8,
    "rate": 10,
    "seed": 3,
    "format": 2026,
    "restricted_cars": len(RESTRICTED),
}

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
    pytest.mark.timeout(400),  # two whole races at 8x
]


class SniffingRelay:
    """Passes the game's datagrams on to the decoder, keeping each CarTelemetry2 by frame."""

    def __init__(self, target_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.target = ("127.0.0.1", target_port)
        self.aero: dict[tuple[str, int], np.ndarray] = {}  # (session uid, frame) -> cars
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            self.sock.sendto(data, self.target)
            if data[6] == PacketId.CAR_TELEMETRY_2:
                packet = parse_packet(data)
                header = packet["header"]
                key = (str(int(header["sessionUID"])), int(header["frameIdentifier"]))
                self.aero[key] = packet["carTelemetry2Data"].copy()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


class EngineerInlet:
    """Every `raceplane.engineer` sample, read here in a thread."""

    def __init__(self) -> None:
        self.laps: list[dict[str, Any]] = []
        self.pictures: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        found = []
        while not found and not self._stop.is_set():
            found = pylsl.resolve_byprop("name", "raceplane.engineer", timeout=0.5)
        if not found:
            return
        inlet = pylsl.StreamInlet(found[0], max_buflen=60)
        while not self._stop.is_set():
            sample, _ = inlet.pull_sample(timeout=0.2)
            if sample is None:
                continue
            obj = json.loads(sample[0])
            (self.laps if obj["type"] == "lap" else self.pictures).append(obj)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Race:
    def __init__(self, sim: Endpoint, lap_timer: Endpoint, bridge: Endpoint) -> None:
        self.sim, self.lap_timer, self.bridge = sim, lap_timer, bridge

    def ask(self, endpoint: Endpoint, cmd: str, payload: dict | None = None) -> Any:
        with ModuleClient("127.0.0.1", endpoint.port).connect() as client:
            return client.request(cmd, payload)

    def run(self, **options: Any) -> dict[str, Any]:
        self.start(**options)
        return self.finished()

    def start(self, **options: Any) -> None:
        self.ask(self.sim, "STOP")
        self.ask(self.sim, "START", {**RACE, **options})

    def finished(self) -> dict[str, Any]:
        return wait_until(
            lambda: (t := self.ask(self.sim, "TRUTH"))["finished"] and t,
            timeout=240,
            interval=0.5,
            message="the race to finish",
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Race, SniffingRelay]]:
    directory = tmp_path_factory.mktemp("engineer")
    udp = free_port()
    relay = SniffingRelay(udp)
    try:
        with DevStack(directory) as dev:
            dev.module("telemetry_decoder", "--udp-port", str(udp))
            dev.module("engineer")
            lap_timer = dev.module("lap_timer", "--db", str(directory / "laps.sqlite3"))
            bridge = dev.bridge(lap_timer)
            sim = dev.module("game_sim", "--target-port", str(relay.port))
            yield Race(sim, lap_timer, bridge), relay
    finally:
        relay.close()


def sent_aero(values: np.void) -> dict[str, Any]:
    """One car's CarTelemetry2 as the engineer names it."""
    return {
        "active_aero_mode": int(values["activeAeroMode"]),
        "active_aero_available": bool(values["activeAeroAvailable"]),
        "active_aero_activation_distance_m": float(values["activeAeroActivationDistance"]),
        "overtake_available": bool(values["overtakeAvailable"]),
        "overtake_active": bool(values["overtakeActive"]),
        "overtake_activation_distance_m": float(values["overtakeActivationDistance"]),
    }


def check_laps_exact(race: Race, truth: dict[str, Any]) -> None:
    uid = truth["session_uid"]
    mine = {
        (lap["car_index"], lap["lap"]): lap
        for lap in race.ask(race.lap_timer, "GET_LAPS", {"session_uid": uid})
    }
    fields = ("lap_time_ms", "sector_ms", "valid", "pit_in", "pit_out", "tyre")
    expected = {
        (car["car_index"], lap["lap"]): {f: lap[f] for f in fields}
        for car in truth["cars"]
        for lap in car["laps"]
    }
    assert {key: {f: lap[f] for f in fields} for key, lap in mine.items()} == expected


def shows_unknown(page: Page, selector: str) -> None:
    expect(page.locator(selector)).to_have_text("unknown")
    expect(page.locator(selector)).to_have_class(re.compile(r"\bunknown\b"))


def test_fuel_ers_wear_and_aero_equal_truth_and_the_page_shows_unknown_as_unknown(
    stack: tuple[Race, SniffingRelay], browser: Browser
) -> None:
    race, relay = stack
    inlet = EngineerInlet()
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    try:
        page.goto(race.bridge.url + "engineer?car=0")
        expect(page.locator("#connection")).to_have_text("live")
        truth = race.run()
        uid = truth["session_uid"]
        # Every lap's fuel, ERS and wear as it ended, for every car the game does not hide.
        expected = {}
        for car in truth["cars"]:
            if car["car_index"] in RESTRICTED:
                continue
            for lap in car["lap_systems"]:
                expected[(car["car_index"], lap["lap"])] = lap
        assert len(expected) > 40

        def received() -> dict:
            return {
                (s["car_index"], s["lap"]): s
                for s in list(inlet.laps)
                if s["session_uid"] == uid and s["car_index"] not in RESTRICTED
            }

        got = wait_until(lambda: len(r := received()) >= len(expected) and r, timeout=30)
        f32 = lambda value: float(np.float32(value))  # noqa: E731  (the packets' floats)
        for key, lap in expected.items():
            mine = got[key]
            assert mine["fuel_in_tank_kg"] == f32(lap["fuel_in_tank_kg"]), key
            assert mine["ers_store_j"] == f32(lap["ers_store_j"]), key
            assert mine["ers_deployed_j"] == f32(lap["ers_deployed_this_lap_j"]), key
            assert mine["ers_harvested_mguk_j"] == f32(lap["ers_harvested_this_lap_mguk_j"]), key
            assert mine["ers_harvested_mguh_j"] == f32(lap["ers_harvested_this_lap_mguh_j"]), key
            assert mine["tyre_wear_pct"] == [f32(w) for w in lap["tyre_wear_pct"]], key
        # The hidden cars' laps arrive too, their figures unknown.
        hidden = [s for s in inlet.laps if s["session_uid"] == uid and s["car_index"] in RESTRICTED]
        assert hidden and all(
            s["fuel_in_tank_kg"] is None and s["tyre_wear_pct"] is None and s["ers_store_j"] is None
            for s in hidden
        )
        # 2026: the aero and overtake fields of every picture equal the sent packet's.
        pictures = [p for p in inlet.pictures if p["session_uid"] == uid]
        compared = 0
        for picture in pictures:
            sent = relay.aero.get((uid, picture["frames"].get("raceplane.car_telemetry_2", -1)))
            if sent is None:
                continue
            for index, car in picture["cars"].items():
                assert car["aero"] == sent_aero(sent[int(index)]), (picture["frame"], index)
                compared += 1
        assert compared > 100
        modes = {
            c["aero"]["active_aero_mode"] for p in pictures for c in p["cars"].values() if c["aero"]
        }
        assert modes == {0, 1}  # low drag on the straights: not a constant
        check_laps_exact(race, truth)
        # The page: the player's own car in figures, a restricted car as unknown.
        expect(page.locator("#eng-fuel")).not_to_have_text("unknown")
        expect(page.locator('tr[data-corner="fl"] .wear')).not_to_have_text("unknown")
        # Damage from CarDamage: the simulator's cars take none, which reads "none", not unknown.
        expect(page.locator("#eng-damage")).to_have_text("none")
        page.screenshot(path=_artifact("engineer_player_car.png"))
        page.select_option("#eng-car", "2")
        for selector in (
            "#eng-fuel",
            "#eng-ers-store",
            "#eng-ers-mode",
            "#eng-damage",
            'tr[data-corner="rl"] .wear',
        ):
            shows_unknown(page, selector)
        expect(page.locator("#eng-compound")).not_to_have_text("unknown")  # stays public
        assert "car=2" in page.url
        page.screenshot(path=_artifact("engineer_restricted_car.png"))
    finally:
        page.close()
        inlet.close()


def test_spectator_laps_exact_and_hidden_cars_unknown(
    stack: tuple[Race, SniffingRelay], browser: Browser
) -> None:
    race, _ = stack
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    try:
        page.goto(race.bridge.url + "engineer?car=0")
        expect(page.locator("#connection")).to_have_text("live")
        race.start(spectator=True, laps=2, seed=5, format=2025)
        # While it runs, the dashboard's map carries the chosen car's rejoin ghost.
        dashboard = browser.new_page(viewport={"width": 1440, "height": 900})
        dashboard.goto(race.bridge.url)
        expect(dashboard.locator("#car-select option")).not_to_have_count(0, timeout=30_000)
        dashboard.select_option("#car-select", "4")
        expect(dashboard.locator("#ghost-note")).to_contain_text("pit now: P", timeout=60_000)
        # The same rejoins on the engineer page (its car's lap data is public when spectating).
        expect(page.locator("#eng-rejoin-position")).to_have_text(re.compile(r"^P\d+$"))
        expect(page.locator("#eng-pit-loss")).to_have_text(re.compile(r"^\d+\.\d$"))
        dashboard.screenshot(path=_artifact("dashboard_rejoin_ghost.png"))
        dashboard.close()
        truth = race.finished()
        check_laps_exact(race, truth)
        # A spectator has no car of its own: car 0 is restricted like the others.
        expect(page.locator("#eng-frame")).not_to_have_text("\u2013")
        for selector in ("#eng-fuel", "#eng-ers-deployed", 'tr[data-corner="fr"] .wear'):
            shows_unknown(page, selector)
        # Format 2025 has no CarTelemetry2: unknown, not "no".
        shows_unknown(page, "#eng-overtake-available")
        page.select_option("#eng-car", "5")  # a public car: figures
        expect(page.locator("#eng-fuel")).not_to_have_text("unknown")
        page.screenshot(path=_artifact("engineer_spectating.png"))
    finally:
        page.close()


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
