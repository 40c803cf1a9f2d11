"""Circuits: length, sectors, pit lane, and a 2-D centre line with a reference speed profile.

Each centre line is a closed Catmull-Rom spline through hand-placed control points that trace
the circuit's shape, scaled so its length is the real lap length. The reference speed along it
comes from its curvature (a lateral grip limit) smoothed by acceleration and braking limits,
then scaled so one lap takes the track's reference lap time. Cars follow that profile, faster
or slower by their pace, so speed traces and world positions look like a car on that circuit.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from modules.game_sim.circuits import CIRCUITS

STEP_M = 2.0  # resolution of the sampled centre line
MAX_SPEED_MS = 95.0
LATERAL_G = 4.0 * 9.81
BRAKE_MS2 = 4.5 * 9.81
ACCEL_MS2 = 1.2 * 9.81


@dataclass(frozen=True)
class Track:
    name: str
    track_id: int  # EA's track id (Monza is 11)
    length_m: float
    sector2_start_m: float
    sector3_start_m: float
    reference_lap_s: float  # a competitive race lap; the fastest cars run close to it
    # The pit lane runs from entry to exit in the direction of travel, across the timing line
    # when the exit's lap distance is below the entry's; the boxes lie anywhere between.
    pit_entry_m: float  # lap distance where the pit lane leaves the track
    pit_box_m: float  # lap distance of the pit boxes
    pit_exit_m: float  # lap distance where the pit lane rejoins
    speed_trap_m: float
    control_points: tuple[tuple[float, float], ...]  # clockwise, first point on the start line

    @property
    def box_before_line(self) -> bool:
        """The line lies between the boxes and the exit: the stop is part of the in-lap."""
        return self.pit_box_m > self.pit_exit_m

    @property
    def lane_crosses_line(self) -> bool:
        return self.pit_exit_m < self.pit_entry_m

    @property
    def garage_m(self) -> float:
        """Where a car leaving its garage joins the pit lane: past the line if the lane crosses
        it (a garage-out lap is not begun just before the line), else at the boxes."""
        return 1.0 if self.box_before_line else self.pit_box_m

    @cached_property
    def line(self) -> CentreLine:
        return CentreLine(self)


class CentreLine:
    """The sampled centre line: position, heading and reference speed by lap distance."""

    def __init__(self, track: Track) -> None:
        points = np.asarray(track.control_points, dtype=float)
        dense = _catmull_rom_closed(points, samples_per_segment=64)
        segment = np.hypot(*np.diff(np.vstack([dense, dense[:1]]), axis=0).T)
        dense *= track.length_m / segment.sum()  # the drawn shape, scaled to the real length
        segment *= track.length_m / segment.sum()
        along = np.concatenate([[0.0], np.cumsum(segment)])
        self.length_m = track.length_m
        self.s = np.arange(0.0, track.length_m, STEP_M)
        closed = np.vstack([dense, dense[:1]])
        self.x = np.interp(self.s, along, closed[:, 0])
        self.z = np.interp(self.s, along, closed[:, 1])
        dx = np.gradient(np.append(self.x, self.x[0]))[:-1]
        dz = np.gradient(np.append(self.z, self.z[0]))[:-1]
        self.heading = np.unwrap(np.arctan2(dz, dx))
        turn = np.gradient(self.heading)  # heading is unwrapped: no jumps of 2 pi
        self.curvature = turn / STEP_M  # signed: positive turns left
        speed = _speed_profile(np.abs(self.curvature))
        lap_s = float(np.sum(STEP_M / speed))
        self.speed = speed * lap_s / track.reference_lap_s  # one lap takes the reference time
        # Time at reference pace to reach each sample; tau(s) and s(tau) map pace onto distance.
        self.tau = np.concatenate([[0.0], np.cumsum(STEP_M / self.speed)])
        self.lap_tau = float(self.tau[-1])
        # Scalar look-ups run for every car on every frame: bisect on lists beats np.interp there.
        self._s_list = [*self.s.tolist(), self.length_m]
        self._tau_list = self.tau.tolist()
        self.accel = np.gradient(np.append(self.speed, self.speed[0]) ** 2)[:-1] / (2 * STEP_M)

    def distance_at(self, tau: float) -> float:
        """Lap distance reached after `tau` seconds at reference pace (0 <= tau <= lap_tau)."""
        return _interp(tau, self._tau_list, self._s_list)

    def tau_at(self, distance: float) -> float:
        return _interp(distance % self.length_m, self._s_list, self._tau_list)

    def sample(self, distance: np.ndarray) -> np.ndarray:
        """Index of the sample at each lap distance (vectorised)."""
        return (np.asarray(distance) % self.length_m / STEP_M).astype(int) % len(self.s)


def _interp(x: float, xs: list[float], ys: list[float]) -> float:
    i = bisect.bisect_right(xs, x)
    if i <= 0:
        return ys[0]
    if i >= len(xs):
        return ys[-1]
    x0, x1 = xs[i - 1], xs[i]
    return ys[i - 1] + (ys[i] - ys[i - 1]) * (x - x0) / (x1 - x0)


def _catmull_rom_closed(points: np.ndarray, samples_per_segment: int) -> np.ndarray:
    count = len(points)
    t = np.linspace(0.0, 1.0, samples_per_segment, endpoint=False)[:, None]
    pieces = []
    for i in range(count):
        p0, p1, p2, p3 = (points[(i + k) % count] for k in (-1, 0, 1, 2))
        pieces.append(
            0.5
            * (
                2 * p1
                + (p2 - p0) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (3 * p1 - p0 - 3 * p2 + p3) * t**3
            )
        )
    return np.vstack(pieces)


def _speed_profile(curvature: np.ndarray) -> np.ndarray:
    # Smooth the curvature over ~30 m: hand-placed points make kinks a real corner would not have.
    kernel = np.ones(15) / 15
    padded = np.concatenate([curvature[-15:], curvature, curvature[:15]])
    smooth = np.convolve(padded, kernel, mode="same")[15:-15]
    speed = np.minimum(MAX_SPEED_MS, np.sqrt(LATERAL_G / np.maximum(smooth, 1e-6)))
    speed = np.maximum(speed, 18.0)
    # Two laps of forward (traction) and backward (braking) passes settle the wrap-around.
    count = len(speed)
    for _ in range(2):
        for i in range(1, 2 * count):
            j, k = i % count, (i - 1) % count
            speed[j] = min(
                speed[j], np.sqrt(speed[k] ** 2 + 2 * ACCEL_MS2 * STEP_M * (1 - speed[k] / 110))
            )
        for i in range(2 * count - 2, -1, -1):
            j, k = i % count, (i + 1) % count
            speed[j] = min(speed[j], np.sqrt(speed[k] ** 2 + 2 * BRAKE_MS2 * STEP_M))
    return speed


# Control points are drawn by hand in metres (x east, z north, before scaling), clockwise.
TRACKS: dict[str, Track] = {
    "monza": Track(
        name="Monza",
        track_id=11,
        length_m=5793.0,
        sector2_start_m=1850.0,
        sector3_start_m=4050.0,
        reference_lap_s=82.0,
        pit_entry_m=5380.0,
        pit_box_m=150.0,
        pit_exit_m=560.0,
        speed_trap_m=4700.0,
        control_points=(
            (0, 0),
            (0, 450),
            (0, 900),  # main straight, north
            (10, 980),
            (45, 1010),
            (35, 1060),
            (50, 1110),  # Rettifilo, right-left
            (160, 1320),
            (330, 1480),
            (520, 1560),  # Curva Grande
            (640, 1590),
            (690, 1640),
            (730, 1630),
            (780, 1660),  # Roggia, left-right
            (920, 1760),
            (990, 1750),
            (1020, 1690),  # Lesmo 1
            (1060, 1600),
            (1085, 1540),  # Lesmo 2
            (1075, 1100),
            (1050, 500),
            (1030, 250),  # Serraglio, south
            (990, 150),
            (1010, 90),
            (960, 20),
            (930, -60),  # Ascari
            (860, -300),
            (760, -520),  # towards Parabolica
            (640, -640),
            (470, -680),
            (300, -600),
            (150, -430),
            (40, -220),  # Parabolica
        ),
    ),
    "spielberg": Track(
        name="Austria",
        track_id=17,
        length_m=4318.0,
        sector2_start_m=1400.0,
        sector3_start_m=2650.0,
        reference_lap_s=66.0,
        pit_entry_m=3950.0,
        pit_box_m=120.0,
        pit_exit_m=380.0,
        speed_trap_m=1200.0,
        control_points=(
            (0, 0),
            (250, 60),
            (420, 110),  # start straight, uphill east
            (470, 160),
            (455, 240),  # Turn 1, right
            (380, 500),
            (330, 760),
            (320, 880),  # the long climb north
            (350, 930),
            (300, 960),
            (250, 920),  # Turn 3 hairpin, right
            (120, 650),
            (-20, 420),  # down the hill, south-west
            (-80, 380),
            (-150, 420),  # Turn 4, right
            (-300, 520),
            (-420, 480),
            (-450, 400),  # Turns 5 and 6
            (-400, 300),
            (-330, 250),
            (-300, 160),  # Turns 7 and 8
            (-330, 60),
            (-300, -20),
            (-220, -50),
            (-100, -30),  # Turns 9 and 10
        ),
    ),
    "silverstone": Track(
        name="Silverstone",
        track_id=7,
        length_m=5891.0,
        sector2_start_m=1850.0,
        sector3_start_m=4200.0,
        reference_lap_s=89.0,
        pit_entry_m=5550.0,
        pit_box_m=150.0,
        pit_exit_m=520.0,
        speed_trap_m=3300.0,
        control_points=(
            (0, 0),
            (180, 140),  # between Club and Abbey, north-east
            (260, 260),
            (240, 360),  # Abbey, Farm
            (200, 430),
            (120, 460),
            (90, 520),  # Village, The Loop
            (140, 600),
            (260, 640),  # Aintree
            (700, 800),
            (900, 870),  # Wellington Straight
            (960, 940),
            (930, 1010),
            (860, 1020),  # Brooklands, Luffield
            (760, 990),
            (700, 1030),  # Woodcote
            (600, 1150),
            (560, 1260),
            (520, 1330),  # Copse and the run to Maggotts
            (440, 1350),
            (400, 1300),
            (330, 1300),
            (280, 1250),  # Maggotts-Becketts-Chapel
            (-150, 900),
            (-350, 730),  # Hangar Straight
            (-420, 650),
            (-400, 560),
            (-340, 500),  # Stowe
            (-360, 380),
            (-420, 300),
            (-380, 220),  # Vale, Club
            (-250, -80),
            (-120, -100),
        ),
    ),
}
TRACKS.update({key: Track(**data) for key, data in CIRCUITS.items()})
DEFAULT_TRACK = "monza"


def get_track(name: str) -> Track:
    try:
        return TRACKS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown track {name!r}; choose one of: {', '.join(TRACKS)}") from None
