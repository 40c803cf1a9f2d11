"""InputHealth: the sans-IO tracker of a consumer's expected streams, fed a clock by hand."""

from __future__ import annotations

import logging

from dareplane_utils.stream_watcher.health import (
    Expectation,
    InputHealth,
    InputState,
    log_transitions,
)
from modules.expected_inputs import expect

LAP_DATA = Expectation("raceplane.lap_data", "telemetry_decoder", stale_after_s=5.0)
EVENTS = Expectation("raceplane.events", "telemetry_decoder", stale_after_s=None)


def states(health: InputHealth) -> dict[str, str]:
    return {name: s["state"] for name, s in health.status()["streams"].items()}


def moves(transitions) -> list[tuple[str, str, str]]:
    return [(t.stream, str(t.before), str(t.after)) for t in transitions]


def test_streams_found_within_the_grace_raise_nothing() -> None:
    health = InputHealth([LAP_DATA, EVENTS], now=100.0, grace_s=3.0)
    assert states(health) == {"raceplane.lap_data": "waiting", "raceplane.events": "waiting"}
    assert health.found("raceplane.lap_data", 101.0) == []
    assert health.arrived("raceplane.lap_data", 3, 101.5) == []
    assert health.found("raceplane.events", 102.0) == []
    assert health.check(104.0) == []
    status = health.status()
    assert (status["missing"], status["stale"], status["problems"]) == ([], [], [])
    assert status["streams"]["raceplane.lap_data"]["samples"] == 3


def test_a_stream_not_found_within_the_grace_is_missing_until_found() -> None:
    health = InputHealth([LAP_DATA], now=100.0, grace_s=3.0)
    assert health.check(102.9) == []
    [missing] = health.check(103.0)
    assert (missing.before, missing.after, missing.since) == (
        InputState.WAITING,
        InputState.MISSING,
        100.0,
    )
    assert missing.is_problem
    assert "raceplane.lap_data not found since" in missing.message()
    assert "telemetry_decoder" in missing.message()
    assert health.check(110.0) == []  # said once, not every check
    assert health.status()["missing"] == ["raceplane.lap_data"]
    assert health.status()["problems"] == [missing.message()]
    [back] = health.found("raceplane.lap_data", 111.0)
    assert (back.after, back.is_problem) == (InputState.CONNECTED, False)
    assert "connected again" in back.message()
    assert health.status()["missing"] == []


def test_a_regular_stream_that_stops_flowing_is_stale_until_data_returns() -> None:
    health = InputHealth([LAP_DATA], now=0.0, grace_s=3.0)
    health.found("raceplane.lap_data", 0.5)
    health.arrived("raceplane.lap_data", 10, 1.0)
    assert health.check(5.9) == []
    [stale] = health.check(6.0)
    assert (stale.after, stale.since) == (InputState.STALE, 1.0)
    assert stale.message().startswith("no data from telemetry_decoder since ")
    assert health.status()["stale"] == ["raceplane.lap_data"]
    assert health.arrived("raceplane.lap_data", 0, 7.0) == []  # nothing arrived: still stale
    [flowing] = health.arrived("raceplane.lap_data", 1, 8.0)
    assert moves([flowing]) == [("raceplane.lap_data", "stale", "flowing")]
    assert health.status()["stale"] == []


def test_a_regular_stream_found_but_silent_is_stale_after_its_limit() -> None:
    health = InputHealth([LAP_DATA], now=0.0, grace_s=3.0)
    health.found("raceplane.lap_data", 1.0)
    assert health.check(5.9) == []
    [stale] = health.check(6.0)
    assert (stale.before, stale.after, stale.since) == (
        InputState.CONNECTED,
        InputState.STALE,
        1.0,
    )


def test_problems_read_one_sentence_per_producer() -> None:
    motion = Expectation("raceplane.motion", "telemetry_decoder")
    laps = Expectation("raceplane.laps", "lap_timer", stale_after_s=None)
    health = InputHealth([LAP_DATA, motion, laps], now=0.0, grace_s=1.0)
    health.arrived("raceplane.lap_data", 1, 0.5)
    health.arrived("raceplane.motion", 1, 0.7)
    health.check(10.0)
    problems = health.status()["problems"]
    assert len(problems) == 2, problems
    stale, missing = sorted(problems)
    assert stale.startswith("no data from telemetry_decoder since ")
    assert stale.endswith("(raceplane.lap_data, raceplane.motion)")
    assert missing.startswith("raceplane.laps not found since ")
    assert "is lap_timer running" in missing


def test_irregular_streams_are_never_stale() -> None:
    health = InputHealth([EVENTS], now=0.0)
    health.found("raceplane.events", 0.1)
    health.arrived("raceplane.events", 1, 0.2)
    assert health.check(3600.0) == []
    assert states(health) == {"raceplane.events": "flowing"}


def test_a_lost_stream_is_missing_and_samples_bring_it_back() -> None:
    health = InputHealth([LAP_DATA], now=0.0)
    health.arrived("raceplane.lap_data", 5, 1.0)  # samples prove it was found
    assert states(health) == {"raceplane.lap_data": "flowing"}
    assert moves(health.lost("raceplane.lap_data", 2.0)) == [
        ("raceplane.lap_data", "flowing", "missing")
    ]
    assert moves(health.arrived("raceplane.lap_data", 1, 3.0)) == [
        ("raceplane.lap_data", "missing", "flowing")
    ]


def test_streams_nobody_expects_are_ignored() -> None:
    health = InputHealth([LAP_DATA], now=0.0)
    assert health.found("raceplane.motion", 1.0) == []
    assert health.arrived("raceplane.motion", 5, 1.0) == []
    assert health.lost("raceplane.motion", 1.0) == []
    assert health.expected == ["raceplane.lap_data"]


def test_transitions_are_logged_as_warnings_and_all_clears_as_info(caplog) -> None:
    health = InputHealth([LAP_DATA], now=0.0, grace_s=1.0)
    logger = logging.getLogger("test_input_health")
    with caplog.at_level(logging.INFO, logger="test_input_health"):
        log_transitions(logger, "lap timer", health.check(2.0))
        log_transitions(logger, "lap timer", health.found("raceplane.lap_data", 3.0))
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in caplog.records] == [
        ("WARNING", "lap timer"),
        ("INFO", "lap timer"),
    ]


def test_expectations_come_from_the_catalogue() -> None:
    by_name = {e.stream: e for e in expect(["raceplane.lap_data", "raceplane.laps", "x.y"])}
    assert by_name["raceplane.lap_data"].producer == "telemetry_decoder"
    assert by_name["raceplane.lap_data"].stale_after_s == 5.0
    assert by_name["raceplane.laps"].producer == "lap_timer"
    assert by_name["raceplane.laps"].stale_after_s is None
    assert by_name["x.y"].producer == "its producer"
