"""Broadcast overlays and the league pages in headless Chromium, with the game simulator racing
through the decoder and the lap timer into a bridge serving a league. Each overlay is loaded
before the race, checked transparent (computed style and a screenshot without a background:
its corner pixel is see-through) and seen to follow the race; the league admin page attaches
the race to a round and disqualifies its winner, and the public page and the championship
overlay follow with the recomputed standings. Screenshots go to test-artifacts/overlays/."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright
from test_browser_web_bridge import CHROMIUM, CHROMIUM_ARGS

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import free_port, wait_until
from modules.game_sim.roster import DRIVERS
from modules.web_bridge.devstack import DevStack, Endpoint

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "overlays"
RACE = {"track": "spielberg", "laps": 3, "cars": 20, "speed": 8, "rate": 10, "seed": 5}
TRANSPARENT = "rgba(0, 0, 0, 0)"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
    pytest.mark.timeout(300),  # a whole race, on a shared 2-core machine
]


def league_file(drivers: list[str]) -> str:
    """A league of the simulator's drivers (matched by name), two rounds."""
    entries = "".join(f'[[drivers]]\nname = "{name}"\n' for name in drivers)
    return (
        'name = "Overlay Cup"\n[points]\nrace = [25, 18, 15, 12, 10, 8, 6, 4, 2, 1]\n'
        f'[[rounds]]\nname = "Austria"\n[[rounds]]\nname = "Monza"\n{entries}'
    )


class Race:
    def __init__(self, dev: DevStack, sim: Endpoint, timer: Endpoint, bridge: Endpoint) -> None:
        self.dev, self.sim, self.timer, self.bridge = dev, sim, timer, bridge
        self.pages: dict[str, Page] = {}

    def ask(self, endpoint: Endpoint, cmd: str, payload: dict | None = None) -> Any:
        with ModuleClient("127.0.0.1", endpoint.port, timeout=10).connect() as client:
            return client.request(cmd, payload)

    def truth(self) -> dict[str, Any]:
        return self.ask(self.sim, "TRUTH")

    def finished(self) -> dict[str, Any]:
        return wait_until(
            lambda: (t := self.truth())["finished"] and t,
            timeout=180,
            interval=0.5,
            message="the race finished",
        )


def shot(page: Page, name: str) -> bytes:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return page.screenshot(path=ARTIFACTS / f"{name}.png", omit_background=True)


def assert_transparent(page: Page, name: str) -> None:
    backgrounds = page.evaluate(
        "() => [document.documentElement, document.body]"
        ".map((node) => getComputedStyle(node).backgroundColor)"
    )
    assert backgrounds == [TRANSPARENT, TRANSPARENT], name
    image = Image.open(io.BytesIO(shot(page, name))).convert("RGBA")
    # The bottom-right corner is beyond every box: nothing is painted there.
    assert image.getpixel((image.width - 1, image.height - 1))[3] == 0, name
    painted = image.getchannel("A").getbbox()
    assert painted is not None, f"{name}: nothing drawn at all"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


OVERLAYS = {
    "tower": "overlay/tower?rows=5&theme=team",
    "battle": "overlay/battle?car={car}&scale=1.5",
    "fastest-lap": "overlay/fastest-lap?hold=0",
    "header": "overlay/header?theme=light",
    "championship": "overlay/championship?rows=4",
}


@pytest.fixture(scope="module")
def race(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[Race]:
    directory = tmp_path_factory.mktemp("overlays")
    udp = free_port()
    with DevStack(directory) as dev:
        dev.module("telemetry_decoder", "--udp-port", str(udp))
        timer = dev.module("lap_timer", "--db", str(directory / "laps.sqlite3"))
        sim = dev.module("game_sim", "--target-port", str(udp))
        # The league: the simulator's drivers (the first of its roster race).
        drivers = [driver.name for driver in DRIVERS[: RACE["cars"]]]
        (directory / "league.toml").write_text(league_file(drivers))
        bridge = dev.bridge(timer, None, "--league", str(directory / "league.toml"))
        race = Race(dev, sim, timer, bridge)
        for name, path in OVERLAYS.items():
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.goto(bridge.url + path.format(car=5))
            expect(page.locator("#overlay")).to_have_attribute("data-connection", "live")
            race.pages[name] = page
        race.ask(sim, "START", RACE)
        yield race
        for page in race.pages.values():
            page.close()


def test_overlays_are_transparent_and_follow_the_race(race: Race) -> None:
    pages = race.pages
    tower_rows = pages["tower"].locator(".ov-tower tr")
    expect(tower_rows).to_have_count(5, timeout=60_000)  # rows=5 of 20 cars
    expect(pages["header"].locator(".ov-header .track")).to_contain_text("Austria")
    expect(pages["header"].locator(".ov-header .lap")).to_contain_text(f"/ {RACE['laps']}")
    battle = pages["battle"].locator(".ov-battle")
    expect(battle.locator('.car[data-car="5"]')).to_be_visible(timeout=30_000)
    # The battle box follows car 5's interval as it changes lap by lap.
    seen: set[str] = set()
    wait_until(
        lambda: seen.add(battle.locator(".gap").inner_text()) or len(seen - {""}) >= 3,
        timeout=60,
        interval=0.3,
        message="the battle box's gap changing",
    )
    banner = pages["fastest-lap"].locator(".ov-fastest")
    expect(banner).to_be_visible(timeout=90_000)
    for name, page in pages.items():
        assert_transparent(page, f"{name}_racing")

    truth = race.finished()
    names = {car["car_index"]: car["driver"] for car in truth["cars"]}
    final_codes = [code(names[i]) for i in truth["final_order"][:5]]
    wait_until(
        lambda: pages["tower"].locator(".ov-tower .code").all_inner_texts() == final_codes,
        timeout=30,
        interval=0.3,
        message=f"the tower overlay in the final order {final_codes}",
    )
    expect(pages["header"].locator(".ov-header .flag")).to_contain_text("Chequered")
    standings = race.ask(race.timer, "GET_STANDINGS", {"session_uid": truth["session_uid"]})
    fastest = standings["fastest_lap"]
    expect(banner).to_have_attribute("data-driver", fastest["driver"], timeout=30_000)
    assert banner.locator(".time").inner_text() == format_lap(fastest["lap_time_ms"])
    shot(pages["tower"], "tower_finished")


def code(name: str) -> str:
    """What a broadcast tower shows: "Lando NORRIS" -> "NOR" (the surname in capitals)."""
    capitals = [part for part in name.split() if len(part) > 1 and part.isupper()]
    return "".join(capitals or name.split()[-1:])[:3].upper()


def league_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modules.cli", "league", *args],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip


def format_lap(ms: int) -> str:
    minutes, rest = divmod(ms, 60_000)
    return f"{minutes}:{rest // 1000:02d}.{rest % 1000:03d}"


def test_overlay_options_are_checked(race: Race) -> None:
    with httpx.Client(base_url=race.bridge.url, timeout=10) as http:
        assert http.get("overlay/tower?rows=5").status_code == 200
        for bad in ("rows=0", "rows=x", "theme=pink", "scale=9", "rwos=5", "car=30"):
            assert http.get(f"overlay/tower?{bad}").status_code == 422, bad
        assert http.get("overlay/ticker").status_code == 422


def test_league_admin_attaches_and_disqualifies_and_pages_follow(
    race: Race, browser: Browser
) -> None:
    truth = race.finished()
    uid = truth["session_uid"]
    names = {car["car_index"]: car["driver"] for car in truth["cars"]}
    order = [names[i] for i in truth["final_order"]]
    champ = race.pages["championship"].locator(".ov-champ tr")
    expect(champ).to_have_count(4)  # rows=4 of 20 drivers, all on 0 before any round
    wait_until(
        lambda: race.ask(race.timer, "GET_REPORT", {"session_uid": uid})["final"],
        timeout=30,
        interval=0.3,
    )
    public = browser.new_page(viewport={"width": 1280, "height": 900})
    admin = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        public.goto(race.bridge.url + "league")
        expect(public.locator("h1")).to_have_text("Overlay Cup")
        admin.goto(race.bridge.url + "admin/league")
        expect(admin.locator("#league-name")).to_have_text("Overlay Cup")
        form = admin.locator("#attach-form")
        form.locator("select[name=round]").select_option("Austria")
        form.locator("select[name=session_uid]").select_option(uid)
        form.locator("input[name=by]").fill("Race Director")
        form.locator("button").click()
        expect(admin.locator("#attach-result")).to_contain_text(f"Session {uid} attached")
        # The race as run: 25, 18, 15 to the first three.
        top = public.locator("#drivers tbody tr")
        expect(top.nth(0)).to_have_attribute("data-driver", order[0])
        expect(top.nth(0).locator("td").nth(3)).to_have_text("25")
        expect(champ.nth(0)).to_have_attribute("data-driver", order[0])

        # Attached twice: refused, next to the session field; nothing changes.
        again = admin.locator("#attach-form")
        again.locator("select[name=session_uid]").evaluate(
            f"(s) => s.replaceChildren(new Option('{uid}', '{uid}'))"
        )
        again.locator("button").click()
        expect(again.locator('.field-error[data-for="session_uid"]')).to_contain_text(
            "already attached"
        )

        decision = admin.locator("#decision-form")
        decision.locator("select[name=round]").select_option("Austria")
        decision.locator("select[name=driver]").select_option(order[0])
        decision.locator("select[name=kind]").select_option("dsq")
        decision.locator("input[name=by]").fill("")
        decision.locator("input[name=why]").fill("illegal plank wear")
        decision.locator("button").click()  # no "by": refused next to its field
        expect(decision.locator('.field-error[data-for="by"]')).not_to_be_empty()
        decision.locator("input[name=by]").fill("Chief Steward")
        decision.locator("button").click()
        expect(admin.locator("#decision-result")).to_contain_text("disqualified")
        expect(admin.locator("#decisions tbody tr")).to_contain_text("illegal plank wear")

        # Recomputed: second place wins (25), third is second (18), the winner scores 0;
        # the public page and the championship overlay follow without a reload.
        expected = [(order[1], "25"), (order[2], "18"), (order[3], "15")]
        for index, (driver, points) in enumerate(expected):
            expect(top.nth(index)).to_have_attribute("data-driver", driver)
            expect(top.nth(index).locator("td").nth(3)).to_have_text(points)
        expect(public.locator(f'#drivers tr[data-driver="{order[0]}"] td').nth(3)).to_have_text("0")
        expect(public.locator("#decisions")).to_contain_text("Chief Steward")
        expect(public.locator("#decisions")).to_contain_text("illegal plank wear")
        for index, (driver, points) in enumerate(expected):
            expect(champ.nth(index)).to_have_attribute("data-driver", driver)
            expect(champ.nth(index).locator(".points")).to_have_text(points)
        assert_transparent(race.pages["championship"], "championship_after_decision")
        shot(public, "league_public")
        admin.screenshot(path=ARTIFACTS / "league_admin.png")

        csv = httpx.get(race.bridge.url + "api/league/standings.csv", timeout=10).text
        assert csv.splitlines()[1].startswith(f"1,{order[1]},")

        # Page and command share the league's database, both ways.
        league = str(race.dev.directory / "league.toml")
        listed = league_cli("decisions", league).stdout
        assert "illegal plank wear" in listed and "Chief Steward" in listed
        league_cli(
            "decide", league, "Austria", order[1], "--points", "5",
            "--by", "Chief Steward", "--why", "unsafe release",
        )  # fmt: skip
        public.reload()
        expect(public.locator(f'#drivers tr[data-driver="{order[1]}"] td').nth(3)).to_have_text(
            "20"
        )
        expect(public.locator("#decisions")).to_contain_text("unsafe release")
    finally:
        public.close()
        admin.close()


def test_league_writes_are_guarded_off_loopback(race: Race, tmp_path: Path) -> None:
    league = tmp_path / "guarded.toml"
    league.write_text(league_file(["A Driver"]))
    bridge = race.dev.bridge(
        race.timer,
        None,
        *("--http-host", "0.0.0.0", "--token", "s3cret", "--league", str(league)),
        name="guarded",
    )
    decision = {"round": "Austria", "driver": "A Driver", "kind": "points", "value": 2,
                "by": "Steward", "why": "x"}  # fmt: skip
    with httpx.Client(base_url=bridge.url, timeout=10) as http:
        assert http.get("/league").status_code == 200  # the public page stays open
        assert http.get("/admin/league").status_code == 401
        assert http.post("/api/league/decisions", json=decision).status_code == 401
        attach = {"round": "Austria", "session_uid": "1"}
        assert http.post("/api/league/attach", json=attach).status_code == 401
        opened = http.get("/admin/league", params={"token": "s3cret"}, follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/admin/league"
        assert http.get("/admin/league").status_code == 200
        # With the token: the write reaches the store, which refuses it (nothing attached).
        refused = http.post("/api/league/decisions", json=decision)
        assert refused.status_code == 422 and "attached: none" in refused.text


def test_a_wrong_league_file_stops_the_bridge_naming_the_line(race: Race, tmp_path: Path) -> None:
    league = tmp_path / "bad.toml"
    league.write_text('name = "L"\n[[rounds]]\nname = "R"\n[[drivers]]\nname = "A"\nnmae = "B"\n')
    done = subprocess.run(
        [sys.executable, "-m", "modules.web_bridge", "--league", str(league),
         "--http-port", str(free_port()), "--port", str(free_port())],
        capture_output=True, text=True, timeout=60, env=race.dev.env,
    )  # fmt: skip
    assert done.returncode == 2 and "bad.toml:6:" in done.stderr
    assert not (tmp_path / "bad.sqlite3").exists()
