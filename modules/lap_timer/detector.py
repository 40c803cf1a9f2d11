"""Completed laps from LapData frames, without I/O.

The game reports per car the current lap number, the running sector 1/2 times of the lap in
progress, the validity of that lap and the pit status; when a car crosses the line the lap
number goes up, `last_lap_time_ms` becomes the finished lap's time and the sector times are
zeroed. So the finished lap's sectors are those of the frame *before* the increment; sector 3 is
the lap minus the other two. A lap number going down means a flashback (or a restart): the laps
from that number on no longer happened and are retracted.

A flashback also takes back what was seen of the laps in progress (a pit entry after the point
rewound to did not happen either), so each car's state is kept as it changed over the last
`REWIND_HISTORY_S` of session time and put back as it was at the time rewound to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from copy import copy
from dataclasses import dataclass

import numpy as np

MAX_CARS = 22
# How far back a flashback can be undone exactly (the game's own limit is far shorter).
REWIND_HISTORY_S = 300.0
HEADER = (
    "session_uid_hi",
    "session_uid_lo",
    "session_time_s",
    "frame_identifier",
    "overall_frame_identifier",
    "player_car_index",
    "source",
)
# The LapData fields the lap timer reads (a subset of the stream's channels).
FIELDS = (
    "last_lap_time_ms",
    "sector1_time_ms",
    "sector2_time_ms",
    "delta_to_car_in_front_ms",
    "delta_to_race_leader_ms",
    "car_position",
    "current_lap_num",
    "pit_status",
    "num_pit_stops",
    "current_lap_invalid",
    "grid_position",
    "driver_status",
    "result_status",
    # For the session report's pit stops.
    "pit_lane_timer_active",
    "pit_lane_time_in_lane_ms",
    "pit_stop_timer_ms",
)

# result_status values of the F1 UDP spec.
RESULT_FINISHED = 3
# driver_status values: what the game itself calls the car's current lap.
IN_GARAGE, IN_LAP, OUT_LAP = 0, 2, 3
RESULT_NAMES = {
    0: "inactive",
    1: "inactive",
    2: "running",
    3: "finished",
    4: "dnf",
    5: "dsq",
    6: "nc",
    7: "dnf",
    # Beyond the game's: what the live timing feed says of a car.
    8: "knocked_out",
    9: "stopped",
    10: "dns",
}


@dataclass
class LapFrame:
    """One LapData packet: header values and, per field, the 22 cars' values as ints."""

    session_uid: str
    session_time_s: float
    frame_identifier: int
    cars: dict[str, list[int]]
    # The same values as one (field, car) array in FIELDS order, when the frame came from a
    # sample: the detector compares it with the frame before to skip cars nothing happened to.
    values: np.ndarray | None = None

    def car(self, field: str, index: int) -> int:
        return self.cars[field][index]


class FrameLayout:
    """Where each header value and car field sits in a `raceplane.lap_data` sample."""

    def __init__(self, labels: Sequence[str]) -> None:
        position = {label: i for i, label in enumerate(labels)}
        missing = [f"header.{name}" for name in HEADER if f"header.{name}" not in position]
        missing += [f"car00.{name}" for name in FIELDS if f"car00.{name}" not in position]
        if missing:
            raise ValueError(f"lap_data stream lacks channels: {', '.join(missing)}")
        self._header = {name: position[f"header.{name}"] for name in HEADER}
        columns = [
            [position.get(f"car{i:02d}.{name}", -1) for i in range(MAX_CARS)] for name in FIELDS
        ]
        if min(min(c) for c in columns) < 0:
            raise ValueError("lap_data stream lacks some field for some of the 22 cars")
        # One fancy index takes every field of every car out of a sample at once.
        self._columns = np.array(columns)

    def frame(self, sample: np.ndarray) -> LapFrame:
        header = self._header
        uid = (int(sample[header["session_uid_hi"]]) << 32) | int(sample[header["session_uid_lo"]])
        cells = sample[self._columns]
        cells[np.isnan(cells)] = 0.0  # a field a format lacks
        values = cells.astype(np.int64)
        return LapFrame(
            session_uid=str(uid),
            session_time_s=float(sample[header["session_time_s"]]),
            frame_identifier=int(sample[header["frame_identifier"]]),
            # Python ints: what the per-car logic compares.
            cars=dict(zip(FIELDS, values.tolist(), strict=True)),
            values=values,
        )


@dataclass(frozen=True)
class LapCompleted:
    car_index: int
    lap: int
    lap_time_ms: int
    sector_ms: tuple[int | None, int | None, int | None]
    valid: bool
    pit_in: bool
    pit_out: bool
    tyre: int | None
    session_time_s: float


@dataclass(frozen=True)
class LapsRetracted:
    """Laps `from_lap` and later of a car did not happen after all (flashback, restart)."""

    car_index: int
    from_lap: int


Event = LapCompleted | LapsRetracted


@dataclass
class _Car:
    lap: int
    s1: int
    s2: int
    invalid: bool
    in_pit: bool
    pit_in: bool
    pit_out: bool
    tyre_at_start: int | None
    tyre: int | None
    neutral: bool  # this pit-lane visit began under a red flag
    garage: bool = False  # in the garage: its next way into the pit lane starts an out-lap
    done: bool = False  # took the chequered flag
    stale: bool = False  # a flashback went back before anything known of this car

    def state(self) -> tuple:
        """What a flashback must put back (the sectors and validity come with every frame)."""
        return (
            self.lap,
            self.in_pit,
            self.pit_in,
            self.pit_out,
            self.tyre_at_start,
            self.tyre,
            self.neutral,
            self.garage,
            self.done,
        )


# The rows of LapFrame.values the detector reads: a car whose values there are those of the
# frame before (and whose tyre is too) is in the same state after this frame as before it.
_DETECTOR_ROWS = np.array(
    [
        FIELDS.index(name)
        for name in (
            "last_lap_time_ms",
            "sector1_time_ms",
            "sector2_time_ms",
            "current_lap_num",
            "pit_status",
            "current_lap_invalid",
            "driver_status",
            "result_status",
        )
    ]
)


def _in_use(frame: LapFrame, index: int) -> bool:
    # Unused slots are all zeros; a car in the session has a lap number from 1 on.
    return frame.car("current_lap_num", index) > 0 and frame.car("result_status", index) >= 1


class LapDetector:
    """Feed it LapData frames of one session in order; it returns the laps they complete."""

    def __init__(self) -> None:
        self._cars: dict[int, _Car] = {}
        self._time = -1.0
        self._red_flag = False
        # Per car: (session time, copy of its state from then on), oldest first.
        self._history: dict[int, list[tuple[float, _Car]]] = {}
        # Cars whose last frame changed nothing but what a frame always sets again (their
        # sectors and validity), with the inputs of that frame: a car whose next frame has the
        # same inputs is left as it is (feeding it again would change nothing), which spares
        # the per-car work on most frames of a flat-out replay.
        self._steady: set[int] = set()
        self._last: np.ndarray | None = None
        self._last_tyres: list[int | None] = [None] * MAX_CARS

    def feed(
        self, frame: LapFrame, tyres: Sequence[int | None] | None = None, red_flag: bool = False
    ) -> list[Event]:
        """Events of this frame; `tyres` is each car's visual compound as last known.

        Under a red flag the cars wait in the pit lane: that visit, in and out, is no pit stop.
        """
        self._red_flag = red_flag
        events: list[Event] = []
        if frame.session_time_s < self._time:
            # Time went back: a flashback (or a restart of the same session).
            events.extend(self._rewind(frame.session_time_s))
        self._time = frame.session_time_s
        values, last = frame.values, self._last
        if values is None or last is None or values.shape != last.shape or not self._steady:
            same = None
        else:
            same = (values[_DETECTOR_ROWS] == last[_DETECTOR_ROWS]).all(axis=0).tolist()
        self._last = values
        steady, last_tyres = self._steady, self._last_tyres
        for index in range(MAX_CARS):
            tyre = None if tyres is None else tyres[index]
            if same is not None and same[index] and index in steady and tyre == last_tyres[index]:
                continue
            last_tyres[index] = tyre
            steady.discard(index)
            if not _in_use(frame, index):
                continue
            events.extend(self._feed_car(frame, index, tyre))
            self._remember(index, frame.session_time_s)
        return events

    def retract_after(self, session_time_s: float) -> None:
        """A flashback announced by its event: every car as it was at that session time.

        The caller retracts the laps finished after it (by time); the frames that follow
        continue from the state put back here.
        """
        if session_time_s < self._time:
            self._rewind(session_time_s)
            self._time = session_time_s
            self._steady.clear()

    def _remember(self, index: int, time: float) -> None:
        car = self._cars[index]
        history = self._history.setdefault(index, [])
        if history and history[-1][1].state() == car.state():
            return
        history.append((time, copy(car)))
        # Keep the newest state older than the window: it is the state at the window's start.
        while len(history) > 1 and history[1][0] <= time - REWIND_HISTORY_S:
            history.pop(0)

    def _rewind(self, to_time: float) -> list[Event]:
        """Every car as it was after the last frame at or before `to_time`; laps finished since
        are retracted. A car not known then is taken as new by the next frame, and its lap
        number then says which of its laps to retract."""
        events: list[Event] = []
        self._steady.clear()
        for index, car in list(self._cars.items()):
            history = self._history.get(index, [])
            while history and history[-1][0] > to_time:
                history.pop()
            if not history:
                car.stale = True
                continue
            then = copy(history[-1][1])
            if then.lap < car.lap or (car.done and not then.done):
                events.append(LapsRetracted(index, then.lap))
            self._cars[index] = then
        return events

    def _feed_car(self, frame: LapFrame, index: int, tyre: int | None) -> Iterable[Event]:
        lap = frame.car("current_lap_num", index)
        in_pit = frame.car("pit_status", index) != 0
        car = self._cars.get(index)
        if car is None or car.stale:
            # A car seen for the first time (joined late, or we started late): its laps
            # so far are unknown; its lap in progress is watched from here, and whether it is
            # an in- or out-lap is what the game says it is.
            known = car
            car = self._cars[index] = self._start_lap(frame, index, lap, in_pit, tyre, False)
            status = frame.car("driver_status", index)
            car.pit_in = in_pit and status == IN_LAP
            car.pit_out = status == OUT_LAP
            if known is not None and lap < known.lap + known.done:
                return (LapsRetracted(index, lap),)
            return ()
        if lap < car.lap:
            self._cars[index] = self._start_lap(frame, index, lap, in_pit, tyre, False)
            return (LapsRetracted(index, lap),)
        finished = frame.car("result_status", index) == RESULT_FINISHED
        if lap == car.lap and finished != car.done:
            # The chequered flag: the game marks the car finished without starting a new lap.
            # (Un-finished again: a flashback took the last lap back.)
            if finished:
                return self._finish(frame, index, car)
            self._cars[index] = self._start_lap(frame, index, lap, in_pit, tyre, False)
            return (LapsRetracted(index, lap),)
        if lap == car.lap:
            car.s1 = frame.car("sector1_time_ms", index)
            car.s2 = frame.car("sector2_time_ms", index)
            car.invalid = frame.car("current_lap_invalid", index) != 0
            if in_pit and not car.in_pit and car.garage:
                car.pit_out = True  # out of the garage: an out-lap, not a pit stop
            elif in_pit and not car.in_pit:
                car.neutral = self._red_flag
                car.pit_in = car.pit_in or not car.neutral
            elif car.in_pit and not in_pit:
                car.pit_out = car.pit_out or not car.neutral
            car.in_pit = in_pit
            car.garage = frame.car("driver_status", index) == IN_GARAGE
            if tyre is not None:
                car.tyre = tyre
                if car.tyre_at_start is None:  # the lap began before the first CarStatus
                    car.tyre_at_start = tyre
            # Nothing but the sectors and validity may change here: the same inputs again
            # leave the car as it is.
            self._steady.add(index)
            return ()
        # The lap number went up: the lap `car.lap` is finished (if frames were lost and it
        # jumped by more, only the last finished lap's time is known, and not its sectors).
        events = self._complete(frame, index, car, lap, in_pit, tyre)
        self._cars[index].done = finished
        return events

    def _finish(self, frame: LapFrame, index: int, car: _Car) -> Iterable[Event]:
        events = self._complete(frame, index, car, car.lap + 1, car.in_pit, car.tyre)
        self._cars[index].lap = car.lap
        self._cars[index].done = True
        return events

    def _complete(
        self, frame: LapFrame, index: int, car: _Car, lap: int, in_pit: bool, tyre: int | None
    ) -> Iterable[Event]:
        lap_time = frame.car("last_lap_time_ms", index)
        finished = lap - 1
        known = lap == car.lap + 1 and car.s1 > 0 and car.s2 > 0 and car.s1 + car.s2 < lap_time
        sectors = (car.s1, car.s2, lap_time - car.s1 - car.s2) if known else (None, None, None)
        if lap == car.lap + 1:
            # Entering the pit lane before the line and leaving after it makes this lap the
            # in-lap and the next the out-lap; both in one lap marks both.
            pit_in = car.pit_in or (in_pit and not car.in_pit and not self._red_flag)
            pit_out = car.pit_out
            # The in-lap was driven on the tyres it began with, whatever is fitted at the line.
            used = car.tyre_at_start if pit_in and not pit_out else car.tyre
            valid = not car.invalid
        else:
            pit_in = pit_out = False
            used, valid = car.tyre, True
        self._cars[index] = self._start_lap(
            frame, index, lap, in_pit, tyre, car.neutral and car.in_pit
        )
        if lap_time <= 0:
            return ()
        return (
            LapCompleted(
                car_index=index,
                lap=finished,
                lap_time_ms=lap_time,
                sector_ms=sectors,
                valid=valid,
                pit_in=pit_in,
                pit_out=pit_out,
                tyre=used,
                session_time_s=frame.session_time_s,
            ),
        )

    def _start_lap(
        self, frame: LapFrame, index: int, lap: int, in_pit: bool, tyre: int | None, neutral: bool
    ) -> _Car:
        neutral = in_pit and (neutral or self._red_flag)
        return _Car(
            lap=lap,
            s1=frame.car("sector1_time_ms", index),
            s2=frame.car("sector2_time_ms", index),
            invalid=frame.car("current_lap_invalid", index) != 0,
            in_pit=in_pit,
            pit_in=False,
            # A lap begun in the pit lane (after the box, or from the garage) is an out-lap.
            pit_out=in_pit and not neutral,
            tyre_at_start=tyre,
            tyre=tyre,
            neutral=neutral,
            garage=frame.car("driver_status", index) == IN_GARAGE,
        )
