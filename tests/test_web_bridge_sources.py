"""The web bridge's source rule: the newest live session; a replay only when asked; back to
live when the replay ends. Unit tests of the rule, then the bridge process with real feeders."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from dareplane_utils.client.module_client import ModuleClient, ModuleError
from dareplane_utils.testing import wait_until
from modules.web_bridge.devstack import DevStack, Endpoint
from modules.web_bridge.sources import LIVE, SourceRule
from tests.test_browser_web_bridge import CHROMIUM, CHROMIUM_ARGS

LAPS = ("raceplane.laps", "x@lap_timer:8103", 1.0)


def lap_data(producer: str, created_at: float) -> tuple[str, str, float]:
    return ("raceplane.lap_data", f"raceplane.lap_data@{producer}", created_at)


def test_the_newest_live_producer_is_shown_and_a_replay_only_when_picked() -> None:
    rule = SourceRule()
    rule.observe([LAPS, lap_data("decoder:20777", 5.0), lap_data("replay:77", 9.0)])
    assert rule.choose() == "decoder:20777"
    assert rule.shows("raceplane.laps", "raceplane.laps@lap_timer:8103")  # always followed
    assert not rule.shows("raceplane.lap_data", "raceplane.lap_data@replay:77")
    rule.observe([lap_data("decoder:20777", 5.0), lap_data("decoder:20778", 7.0)])
    assert rule.choose() == "decoder:20778"  # a newer live session
    rule.observe([lap_data("decoder:20777", 5.0), lap_data("replay:77", 9.0)])
    rule.pick("replay:77")
    assert rule.choose() == "replay:77" and rule.status()["replay"] is True
    rule.observe([lap_data("decoder:20777", 5.0)])  # the replay ended
    assert rule.choose() == "decoder:20777" and rule.wanted == LIVE
    assert "replay:77 ended; back to live" in rule.notes
    with pytest.raises(ValueError, match="no source 'replay:1'; sources: live, decoder:20777"):
        rule.pick("replay:1")


def test_only_a_replay_is_not_shown_unless_asked() -> None:
    rule = SourceRule()
    rule.observe([lap_data("replay:77", 9.0)])
    assert rule.choose() is None
    rule.pick("replay:77")
    assert rule.choose() == "replay:77"


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevStack]:
    with DevStack(tmp_path) as stack:
        yield stack


def feeder(dev: DevStack, name: str, producer: str) -> subprocess.Popen:
    process = dev.start(
        name,
        "modules.web_bridge.feeder",
        "raceplane.events",
        "--producer",
        producer,
        stdin=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def source(bridge: Endpoint, payload: dict | None = None) -> dict:
    with ModuleClient("127.0.0.1", bridge.port).connect() as client:
        return client.request("SOURCE", payload)


def watching(bridge: Endpoint) -> list[str]:
    with ModuleClient("127.0.0.1", bridge.port).connect() as client:
        return [s["source_id"] for s in client.request("STATUS")["streams"]]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_a_replay_beside_the_live_session_is_shown_only_when_picked(dev: DevStack) -> None:
    live = feeder(dev, "live", "decoder:1")
    bridge = dev.bridge()
    wait_until(lambda: source(bridge)["showing"] == "decoder:1", timeout=30, message="live")
    replay = feeder(dev, "replay", "replay:2")
    wait_until(
        lambda: {s["producer"] for s in source(bridge)["sources"]} == {"decoder:1", "replay:2"},
        timeout=30,
        message="the replay seen",
    )
    assert source(bridge)["showing"] == "decoder:1"  # seen, not shown
    assert watching(bridge) == ["raceplane.events@decoder:1"]
    with pytest.raises(ModuleError, match="no source 'nope'"):
        source(bridge, {"source": "nope"})
    # The user picks the replay on the page.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(bridge.url)
        menu = page.locator("#source")
        expect(menu.locator("option")).to_have_text(["live (decoder:1)", "replay replay:2"])
        menu.select_option("replay:2")
        wait_until(lambda: source(bridge)["showing"] == "replay:2", timeout=30)
        assert source(bridge)["replay"] is True
        wait_until(
            lambda: watching(bridge) == ["raceplane.events@replay:2"],
            timeout=30,
            message="the bridge reading the replay",
        )
        replay.kill()  # the replay ends: the bridge and the page go back to live
        replay.wait()
        expect(menu).to_have_value(LIVE, timeout=60_000)
        expect(menu.locator("option")).to_have_text(["live (decoder:1)"])
        browser.close()
    wait_until(
        lambda: source(bridge)["showing"] == "decoder:1" and source(bridge)["wanted"] == LIVE,
        timeout=60,
        message="back to live after the replay ended",
    )
    wait_until(lambda: watching(bridge) == ["raceplane.events@decoder:1"], timeout=30)
    assert "source: replay:2 ended; back to live" in (dev.directory / "web_bridge.out").read_text()
    assert live.poll() is None
