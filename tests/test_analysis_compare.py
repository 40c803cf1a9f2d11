"""Comparing laps on a distance axis when a lap's frames do not simply run 0 -> the line: the
first lap of a standing start begins on the grid, behind the line, at the end of the lap's
distance (what the game and the simulator send there)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modules.analysis import common_distance, delta_time, resample

LENGTH = 4318.0  # Spielberg, metres
SPEED = 50.0  # m/s on the lap


def lap(distance: np.ndarray, seconds: np.ndarray, speed: np.ndarray, lap_time: float):
    telemetry = pd.DataFrame(
        {
            "Time": pd.to_timedelta(seconds, unit="s"),
            "Distance": distance,
            "Speed": speed,
            **{c: np.zeros(len(distance)) for c in ("Throttle", "Brake", "RPM", "X", "Y")},
            **{c: np.ones(len(distance)) for c in ("nGear", "DRS")},
        }
    )
    telemetry.attrs.update({"LapTime": lap_time, "LapLength": LENGTH})
    return telemetry


def test_a_standing_starts_grid_frames_are_not_the_end_of_the_lap():
    # Lap 2: a flying lap at 50 m/s.
    flying = np.arange(0.0, 4310.0, 10.0)
    reference = lap(flying, flying / SPEED, np.full(len(flying), 180.0), LENGTH / SPEED)
    # Lap 1: three frames on the grid (4290-4310 m, behind the line, slow), then 1 s behind
    # the flying lap everywhere after the line.
    grid = np.array([4290.0, 4300.0, 4310.0])
    after = np.arange(5.0, 4310.0, 10.0)
    standing = lap(
        np.concatenate((grid, after)),
        np.concatenate(([0.0, 0.3, 0.6], 1.0 + after / SPEED)),
        np.concatenate(([0.0, 10.0, 20.0], np.full(len(after), 180.0))),
        1.0 + LENGTH / SPEED,
    )
    distance = common_distance(reference, standing)
    assert distance[-1] == LENGTH and np.all(np.diff(distance) > 0)
    resampled = resample(standing, distance)
    # The traces near the line are the lap's, not the grid's.
    assert (resampled.loc[resampled["Distance"] >= 5.0, "Speed"] == 180.0).all()
    delta = delta_time(reference, standing)
    np.testing.assert_allclose(delta["Delta"].iloc[-1], 1.0, atol=1e-9)  # the lap times' gap
    np.testing.assert_allclose(delta.loc[delta["Distance"] >= 5.0, "Delta"], 1.0, atol=1e-9)
    assert delta["Delta"].iloc[0] == 0.0


def test_frames_that_go_back_do_not_bend_the_time_axis():
    # A car that backs up a few metres mid-lap (a spin): times still map to distances rising.
    distance = np.array([0.0, 100.0, 200.0, 190.0, 195.0, 300.0, 400.0])
    seconds = np.array([0.0, 2.0, 4.0, 6.0, 7.0, 9.0, 11.0])
    spun = lap(distance, seconds, np.full(len(distance), 100.0), 11.0 + (LENGTH - 400) / SPEED)
    axis = np.array([0.0, 150.0, 250.0, 350.0])
    times = resample(spun, axis)["Time"].to_numpy()
    np.testing.assert_allclose(times, [0.0, 3.0, 4.0 + 5.0 * 0.5, 10.0])
