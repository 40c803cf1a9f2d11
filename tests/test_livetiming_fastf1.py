"""Real F1 sessions through the real processes, judged by FastF1's reading of the same files.

Each shared session file is replayed flat out by the live timing module into a lap timer
process; every lap FastF1 times from the file must be in the lap timer with the same driver,
lap number, lap time and sector times, the final order must be the feed's final positions, and
knocked-out cars must say so.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from dareplane_utils.client.module_client import ModuleClient, ModuleError
from dareplane_utils.testing import free_port, wait_until
from modules.livetiming.savefile import merge_files
from modules.livetiming.state import LiveSession
from modules.livetiming.topics import time_ms
from tests.fastf1_judge import SESSIONS, fastf1_laps, fastf1_timing, judge, shared_file
from tests.test_livetiming_deleted import DELETED

pytest.importorskip("fastf1")


def connect(port: int) -> ModuleClient:
    return ModuleClient("127.0.0.1", port, timeout=15).connect(retries=300, interval=0.05)


def feed_facts(path: Path) -> dict:
    """What the file itself says, read from its lines: names, final KnockedOut flags."""
    names: dict[str, str] = {}
    knocked: dict[str, bool] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        topic, data, _ = ast.literal_eval(line)
        if topic == "DriverList":
            for number, entry in data.items():
                if isinstance(entry, dict) and entry.get("FullName"):
                    names[number] = entry["FullName"]
        elif topic == "TimingData":
            for number, change in (data.get("Lines") or {}).items():
                if isinstance(change, dict) and "KnockedOut" in change:
                    knocked[number] = bool(change["KnockedOut"])
    return {
        "names": names,
        "knocked_out": {n for n, k in knocked.items() if k},
        "best_by_part": feed_bests(path),
    }


def feed_bests(path: Path) -> dict[str, list[int | None]]:
    """Each car's best of each qualifying part as the feed last put it (BestLapTimes), a
    best taken back (a deleted lap) included, the screen clears of a new part not."""
    best: dict[str, list[int | None]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        topic, data, _ = ast.literal_eval(line)
        if topic != "TimingData":
            continue
        for number, change in (data.get("Lines") or {}).items():
            parts = change.get("BestLapTimes") if isinstance(change, dict) else None
            if not isinstance(parts, dict):
                continue
            last = change.get("LastLapTime")
            if isinstance(last, dict) and last.get("Value") == "":
                continue  # the screen cleared (a new part)
            for index, entry in parts.items():
                if isinstance(entry, dict) and "Value" in entry:
                    best.setdefault(number, [None, None, None])[int(index)] = time_ms(
                        entry["Value"]
                    )
    return best


def laps_we_publish(path: Path) -> int:
    """How many laps the replay hands the lap timer (to know when it has taken them all)."""
    session = LiveSession()
    return sum(
        1
        for message in merge_files([path])
        for sample in session.feed(message)
        if sample.stream == "raceplane.events" and sample.value["code"] == "FLAP"
    )


@pytest.mark.parametrize("name", SESSIONS)
def test_a_real_session_replayed_gives_fastf1s_laps_and_the_feeds_order(
    name, spawn, start_lap_timer, tmp_path
):
    path = shared_file(name, tmp_path)
    theirs = fastf1_laps(path)
    _, stream = fastf1_timing(path)
    final_position = {
        str(driver): int(rows.sort_values("Time")["Position"].dropna().iloc[-1])
        for driver, rows in stream.groupby("Driver")
    }
    facts = feed_facts(path)
    expected = laps_we_publish(path)

    live_port, timer_port = free_port(), free_port()
    timer = start_lap_timer(timer_port, tmp_path / "laps.sqlite3")
    spawn(
        "modules.livetiming",
        "--port",
        str(live_port),
        "--log-port",
        str(free_port()),
        "--wait-s",
        "30",
        stdout=open(tmp_path / "livetiming.log", "a"),  # noqa: SIM115 (the child holds it)
    )
    with connect(timer_port) as client, connect(live_port) as live:
        live.request("REPLAY", {"paths": [str(path)], "flat_out": True})

        def finished():
            status = live.request("STATUS")
            return status["state"] == "idle" and status

        status = wait_until(finished, timeout=300, message="the replay ends")
        assert status["ended"] == "done" and status["replay"]["refused"] == 0

        def applied():
            # Replayed; then the lap timer has applied everything: every lap, and the
            # classification (the session's last word).
            try:
                laps = client.request("GET_LAPS")
                table = client.request("GET_STANDINGS")
            except ModuleError:
                return None
            return len(laps) >= expected and table["final"] and (laps, table)

        laps, table = wait_until(applied, timeout=120, message="every lap in the lap timer")
        client.send("CLOSE")
        live.send("CLOSE")
    assert timer.wait(timeout=30) == 0

    # A car the DriverList never names (Sargeant in Baku 2023) goes by its number.
    number_of = {f"Car {number}": number for number in final_position}
    number_of.update({full: number for number, full in facts["names"].items()})
    ours = {
        (number_of[lap["driver"]], lap["lap"]): (lap["lap_time_ms"], *lap["sector_ms"])
        for lap in laps
    }
    verdict = judge(ours, theirs)
    assert verdict.equal == verdict.theirs, verdict.summary()
    # Laps we time that FastF1 does not: only slow laps (its 150 s rule); an out-lap only
    # where its three sectors add up to the feed's time (no time in the pits in it).
    assert all(times[0] > 150_000 for _, times in verdict.extra), verdict.extra
    by_lap = {(number_of[lap["driver"]], lap["lap"]): lap for lap in laps}
    for key, (time, *sectors) in verdict.extra:
        assert not by_lap[key]["pit_out"] or (None not in sectors and sum(sectors) == time)

    # The laps race control deleted stay, marked invalid (not a best any more).
    assert {key for key, lap in by_lap.items() if not lap["valid"]} == DELETED[name]

    order = [number_of[row["driver"]] for row in table["rows"]]
    assert order == sorted(final_position, key=final_position.get)
    statuses = {number_of[row["driver"]]: row["status"] for row in table["rows"]}
    assert {n for n, s in statuses.items() if s == "knocked_out"} == facts["knocked_out"]
    assert len(facts["knocked_out"]) == 10
    assert table["part"] == "Q3"  # every shared session is a qualifying (or shootout)
    # Best per part: out in Q1 (16th-20th) none in Q2/Q3, out in Q2 (11th-15th) none in Q3.
    parts = [row["best_by_part_ms"] for row in table["rows"]]
    assert all(len(p) == 3 for p in parts)
    assert all(p[1] is None and p[2] is None for p in parts[15:])
    assert all(p[2] is None for p in parts[10:15])
    assert all(p[0] is not None for p in parts[:15])
    assert parts[0][2] is not None and parts[0][2] == min(p[2] for p in parts[:10] if p[2])
    # And each is the feed's own best of that part (BestLapTimes), deleted laps taken out.
    bests = {number_of[row["driver"]]: row["best_by_part_ms"] for row in table["rows"]}
    feed_best = facts["best_by_part"]
    assert bests == {n: feed_best.get(n, [None, None, None]) for n in bests}
