"""The race model: a whole session, frame by frame, with no sockets and no packets.

`RaceSim(options).step()` advances one frame (1/rate seconds of session time) and returns the
events of that frame; the cars' state is read off `sim.cars`. Everything random comes from one
generator seeded by `options.seed`, drawn in a fixed order, so a seed replays the same race.

How a car moves: each lap gets a target time (pace x tyres x fuel x lap-to-lap noise); the car
advances along the track's reference-time axis `tau` at (reference lap / target) per second, so
its speed follows the circuit's speed profile and the lap takes its target time. In the pit
lane it moves at the pit speed limit instead. Lap and sector times are the session times of the
line and boundary crossings (interpolated inside the frame), rounded to whole milliseconds, and
differenced: those integers are what the packets carry and what `truth()` reports.

Events carry EA's codes and detail names (SSTA, STLG, LGOT, FTLP, PENA, RTMT, SCAR, DRSE, DRSD,
OVTK, SPTP, TMPT, CHQF, RCWN, FLBK, RDFL, SEND), plus one of the model's own: FINAL, when the
last car is done, which the broadcaster answers with the FinalClassification packet.

The hard cases, as the game does them: a flashback (`flashback_at_s`) puts the whole session
back `flashback_s` seconds (frame and session time go back; what happened after that point
never did, in TRUTH too) and the laps from there go differently; a red flag
(`red_flag_at_lap`) sends every car into the pit lane to queue, then restarts the race with
lights out; late joiners (`late_joiners`, the last car slots) are absent, all zeros in every
packet, until they join and leave the garage.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modules.game_sim.car_model import FUEL_KG_PER_LAP, SC_FUEL, CarSystems
from modules.game_sim.roster import DRIVERS, Driver
from modules.game_sim.tracks import Track, get_track

SESSION_TYPES = {"race": 15, "qualifying": 8, "time_trial": 18}  # EA's session type ids
PIT_SPEED_KPH = 80
PIT_SPEED_MS = PIT_SPEED_KPH / 3.6
GRID_SPACING_M = 8.0
GAP_BUCKET_M = 25.0  # resolution of the timing gaps (delta to car in front / leader)
POINTS = (25, 18, 15, 12, 10, 8, 6, 4, 2, 1)


@dataclass(frozen=True)
class Compound:
    name: str
    visual: int  # EA's visual compound (16 soft, 17 medium, 18 hard)
    actual: int  # EA's actual compound (F1 Modern: 17 = C4, 18 = C3, 19 = C2)
    offset_s: float  # lap time relative to the medium
    wear_s_per_lap: float  # lap time lost per lap of age
    wear_pct_per_lap: float


COMPOUNDS = {
    "soft": Compound("soft", 16, 17, -0.55, 0.09, 3.2),
    "medium": Compound("medium", 17, 18, 0.0, 0.05, 2.0),
    "hard": Compound("hard", 18, 19, 0.35, 0.03, 1.3),
}

# What the simulator's stewards hand out, cycling through the penalised cars, as EA's PENA
# codes: (kind, penaltyType, infringementType, seconds). A time penalty follows two warnings
# for the same infringement; a drive-through or stop-go is served on a later lap.
PENALTY_KINDS = (
    ("time", 4, 7, 5),  # time penalty, corner cutting gained time
    ("drive_through", 0, 12, 0),  # drive through, ignoring yellow flags
    ("stop_go", 1, 3, 10),  # stop go, big collision
)
WARNING_TYPE = 5
RETIREMENT_REASONS = (3, 8)  # EA's result reasons: terminal damage, mechanical failure
SERVED_CODES = {"drive_through": "DTSV", "stop_go": "SGSV"}


USED_SET_LAPS = 3  # a set used in qualifying: an out-lap, a push lap, an in-lap


@dataclass
class SessionOptions:
    session: str = "race"
    track: str = "monza"
    laps: int = 5
    cars: int = 20
    rate: int = 20
    seed: int = 1
    retirements: int = 0
    safety_car: bool = False
    flashback_at_s: float = 0.0  # session time of the player's flashback (0: none)
    flashback_s: float = 10.0  # how far back it goes
    red_flag_at_lap: int = 0  # the race is red-flagged when the leader is on this lap (0: never)
    late_joiners: int = 0  # cars (the last slots) that join the session after its start
    penalties: int = 0  # race cars given a penalty (a time penalty, drive-through, stop-go, ...)
    restricted_cars: int = 0  # online: cars whose drivers restrict their telemetry
    spectator: bool = False  # online: the receiver spectates (no car of its own, index 255)
    pit_spread: bool = False  # stops spread over the race by grid slot, not drawn at random
    # Race cars (from the front of the grid) that start on a used set, as the top ten start
    # on the tyres they qualified on: their first stint's tyre age is not 0.
    used_sets: int = 0

    def validate(self) -> None:
        if self.session not in SESSION_TYPES:
            raise ValueError(
                f"session must be one of {', '.join(SESSION_TYPES)}, not {self.session!r}"
            )
        get_track(self.track)
        if not 1 <= self.laps <= 99:
            raise ValueError(f"laps must be 1..99, not {self.laps}")
        if self.cars not in (20, 22) and not (self.session == "time_trial" and self.cars == 1):
            raise ValueError(f"cars must be 20 or 22, not {self.cars}")
        if not 10 <= self.rate <= 120:
            raise ValueError(f"rate must be 10..120 Hz, not {self.rate}")
        if not 0 <= self.retirements < max(1, self.cars // 2):
            raise ValueError(f"retirements must be 0..{self.cars // 2 - 1}, not {self.retirements}")
        if self.flashback_at_s and not 0 < self.flashback_s <= self.flashback_at_s:
            raise ValueError(
                f"flashback_s must be more than 0 and at most flashback_at_s "
                f"({self.flashback_at_s}), not {self.flashback_s}"
            )
        if self.flashback_at_s < 0:
            raise ValueError(f"flashback_at_s must be 0 (none) or more, not {self.flashback_at_s}")
        # Not on the last lap: the cars would take the flag in the pit lane, with no restart.
        if self.red_flag_at_lap and (
            self.session != "race" or not 2 <= self.red_flag_at_lap < self.laps
        ):
            raise ValueError(
                f"red_flag_at_lap must be 0 (none) or a lap of a race before its last, "
                f"2..{self.laps - 1}, not {self.red_flag_at_lap} in a {self.session}"
            )
        if not 0 <= self.restricted_cars <= self.cars - (not self.spectator):
            raise ValueError(
                f"restricted_cars must be 0..{self.cars - (not self.spectator)} "
                f"(the player sees their own car), not {self.restricted_cars}"
            )
        joiners = 0 if self.session == "time_trial" else self.cars // 2 - 1
        if self.penalties and (self.session != "race" or self.laps < 4):
            raise ValueError("penalties need a race of 4 laps or more (served on a later lap)")
        if not 0 <= self.penalties <= self.cars // 2:
            raise ValueError(f"penalties must be 0..{self.cars // 2}, not {self.penalties}")
        if not 0 <= self.late_joiners <= joiners:
            raise ValueError(f"late_joiners must be 0..{joiners}, not {self.late_joiners}")
        if not 0 <= self.used_sets <= self.cars:
            raise ValueError(f"used_sets must be 0..{self.cars}, not {self.used_sets}")


@dataclass
class LapRecord:
    lap: int
    lap_time_ms: int
    sector_ms: list[int]
    valid: bool
    pit_in: bool
    pit_out: bool
    tyre: str
    invalid_sector: int | None = None  # which sector (0..2) was cut, for SessionHistory's flags

    def truth(self) -> dict[str, Any]:
        return {
            "lap": self.lap,
            "lap_time_ms": self.lap_time_ms,
            "sector_ms": list(self.sector_ms),
            "valid": self.valid,
            "pit_in": self.pit_in,
            "pit_out": self.pit_out,
            "tyre": self.tyre,
        }


@dataclass
class SimEvent:
    code: str
    details: dict[str, float] = field(default_factory=dict)


@dataclass
class Car:
    index: int
    driver: Driver
    pace: float
    track_length: float
    grid_position: int = 0
    status: str = "running"  # running | finished | dnf
    mode: str = "grid"  # absent | grid | track | pit | garage | cooldown
    lap: int = 1
    distance: float = 0.0  # lap distance in metres; negative before the line on lap 1
    tau: float = 0.0
    pre_line: bool = False  # lap 1 of a race: gridded behind the line, which does not count
    speed: float = 0.0
    lap_start_ms: int = 0
    sector_end_ms: list[int] = field(default_factory=list)
    laps: list[LapRecord] = field(default_factory=list)
    lap_target_s: float = 0.0
    lap_invalid: bool = False
    invalid_at: float | None = None  # lap distance where this lap gets cut
    invalid_sector: int | None = None
    lap_pit_in: bool = False
    lap_pit_out: bool = False
    lap_tyre: str = "medium"
    tyre: str = "medium"
    tyre_age: int = 0
    stints: list[tuple[str, int]] = field(default_factory=list)  # (compound, end lap)
    pit_laps: tuple[int, ...] = ()
    pit_stops: int = 0
    pit_status: int = 0  # 0 none, 1 pitting, 2 in pit area (EA's)
    pit_lane_enter_s: float = 0.0
    stop_left_s: float = 0.0
    stop_s: float = 0.0
    stopped: bool = False
    launched_s: float = 0.0  # when the car last pulled away (start, pit exit): the ramp's origin
    launch_floor: float = 0.3  # fraction of reference speed the ramp starts from
    position: int = 0
    warnings: int = 0
    corner_cutting_warnings: int = 0
    finish_s: float = 0.0
    retire_s: float | None = None
    best_lap_ms: int = 0
    speed_trap_kph: float = 0.0
    speed_trap_lap: int = 255
    fuel_kg: float = 0.0
    lateral_m: float = 0.0
    laps_planned: int = 0  # qualifying and time trial: out-lap plus flying laps
    bucket_s: list[float] = field(default_factory=list)  # session time at every GAP_BUCKET_M
    lap_positions: dict[int, int] = field(default_factory=dict)
    join_s: float | None = None  # a late joiner: when it joins the session
    queue_m: float | None = None  # under a red flag: where in the pit lane it waits
    queued: bool = False
    retire_reason: int = 0  # EA's result reason of a retirement
    penalty_plan: tuple[str, int, float] | None = None  # (kind, lap, lap distance) to be given
    serve_lap: int = 0  # the lap whose pit-lane pass serves the pending drive-through/stop-go
    serve_kind: str = ""
    serving: str = ""  # in the pit lane for: "" (tyres), "drive_through", "stop_go"
    penalty_s: int = 0  # time penalties, added to the race time at the end
    penalties: list[dict[str, Any]] = field(default_factory=list)  # PENA as issued, and served
    pit_visits: list[dict[str, Any]] = field(default_factory=list)
    stint_ages: list[int] = field(default_factory=lambda: [0])  # tyre age at each stint's start
    laps_led: int = 0
    systems: CarSystems = field(default_factory=CarSystems)
    rejoins: list[dict[str, Any]] = field(default_factory=list)  # where it left the pit lane
    # At every line: the engineer's figures as the lap ended (the frame before the crossing).
    lap_systems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return len(self.laps)

    @property
    def total_distance(self) -> float:
        return (self.lap - 1) * self.track_length + self.distance


class RaceSim:
    """One session. `step()` until `over`; then `truth()` is final."""

    def __init__(self, options: SessionOptions, session_uid: int | None = None) -> None:
        options.validate()
        self.options = options
        self.track: Track = get_track(options.track)
        self.line = self.track.line
        self.rate = options.rate
        self.dt = 1.0 / options.rate
        self.rng = np.random.default_rng(options.seed)
        drawn = int(self.rng.integers(1, 2**63))  # drawn either way: the race stays the same
        self.session_uid = drawn if session_uid is None else session_uid
        # Incidents (penalties, retirement reasons) draw from their own generator, so adding
        # them leaves every other draw, and so every race of a seed, as it was.
        self.incident_rng = np.random.default_rng([options.seed, 19])
        self.lap_leaders: dict[int, int] = {}  # lap -> the car that completed it first
        self.session_type = options.session
        self.total_laps = options.laps
        self.frame = -1
        self.time_s = 0.0
        self.phase = "pre_start" if options.session == "race" else "running"
        self.over = False
        self.chequered = False
        self.safety_car_status = 0  # EA's: 0 none, 1 full safety car
        self.safety_car_periods = 0
        self.drs_enabled = False
        self.best_lap_ms = 0
        self.best_speed_trap = (0.0, 255)
        self.lights_out_s = 0.0
        self._light_times: list[float] = []
        self._sc_deploy_s: float | None = None
        self._sc_end_s = 0.0
        self._by_position: dict[int, Car] = {}  # this frame's order, for the ERS model
        self._exits: list[Car] = []  # cars that left the pit lane after a stop this frame
        self._sc_returning = False
        self._end_s: float | None = None
        self.red_flag = False
        self.red_flag_periods = 0
        self._red_flag_restart_s: float | None = None
        self._queue_next_m = 0.0
        self.flashbacks = 0
        self._flashback_point: dict[str, Any] | None = None
        self.cars = self._make_cars()
        track = self.track
        self._mark_taus = [
            (name, self.line.tau_at(at))
            for name, at in (
                ("s2", track.sector2_start_m),
                ("s3", track.sector3_start_m),
                ("trap", track.speed_trap_m),
                ("pit", track.pit_entry_m),
            )
        ]
        self._schedule()

    # ----- set-up -----------------------------------------------------------------------------

    def _make_cars(self) -> list[Car]:
        count = 1 if self.session_type == "time_trial" else self.options.cars
        drivers = list(DRIVERS[:count]) if count > 1 else [DRIVERS[0]]
        cars = []
        # Its own generator: the tyre model leaves the race's draws, and so its seeds, as they were.
        tyre_rng = np.random.default_rng([self.options.seed, 20])
        for index, driver in enumerate(drivers):
            pace = driver.team.pace + driver.skill + float(self.rng.normal(0.0, 0.0015))
            car = Car(index, driver, pace, self.track.length_m)
            car.lateral_m = float(self.rng.uniform(-2.5, 2.5))
            car.systems.wear_factor = float(tyre_rng.uniform(0.85, 1.15))
            cars.append(car)
        return cars

    def _schedule(self) -> None:
        laps = self.total_laps
        length = self.track.length_m
        if self.session_type == "race":
            # Qualifying pace decides the grid, with some shuffling from the seed.
            grid_pace = [car.pace + float(self.rng.normal(0.0, 0.002)) for car in self.cars]
            order = sorted(range(self._on_grid), key=lambda i: grid_pace[i])
            self._light_times = [1.0 + i for i in range(5)]
            self.lights_out_s = 5.0 + float(self.rng.uniform(0.2, 2.5))
            for position, index in enumerate(order, start=1):
                car = self.cars[index]
                car.grid_position = position
                car.position = position
                car.pre_line = True
                car.distance = -(GRID_SPACING_M * (position - 1) + 5.0)
                car.tau = self.line.tau_at(length + car.distance)
                car.tyre = "soft" if position <= 10 else "medium"
                if position <= self.options.used_sets:
                    car.tyre_age = car.stint_ages[0] = USED_SET_LAPS
                car.fuel_kg = 1.6 * laps + 3.0
                if laps >= 3:  # one stop: the dry-race rule of two compounds
                    lap = int(self.rng.integers(max(1, laps // 3), max(2, laps - laps // 4)))
                    # A pit lane wholly after the line is entered on the lap after the decision.
                    if self.options.pit_spread:  # neighbours on the grid stop laps apart
                        lap = 2 + (position - 1) % (laps - 3) if laps > 4 else lap
                    car.pit_laps = (lap + (not self.track.lane_crosses_line),)
                car.lap_positions[1] = position
            count = min(self.options.retirements, self._on_grid - 1)
            retiring = self.rng.choice(self._on_grid, size=count, replace=False) if count else []
            race_s = laps * self.track.reference_lap_s
            for index in retiring:
                self.cars[int(index)].retire_s = (
                    self.lights_out_s + float(self.rng.uniform(0.25, 0.75)) * race_s
                )
            for index in retiring:
                reason = self.incident_rng.choice(RETIREMENT_REASONS)
                self.cars[int(index)].retire_reason = int(reason)
            self._schedule_penalties()
            if self.options.safety_car:
                first = min((c.retire_s for c in self.cars if c.retire_s is not None), default=None)
                self._sc_deploy_s = first if first is not None else self.lights_out_s + 0.5 * race_s
        else:
            order = list(self.rng.permutation(len(self.cars)))
            for slot, index in enumerate(order):
                car = self.cars[int(index)]
                car.position = car.index + 1
                car.grid_position = car.index + 1
                car.mode = "garage"
                car.tyre = "soft"
                car.fuel_kg = 12.0
                car.launched_s = 2.0 + 6.0 * slot  # leaves the garage then
                car.distance = self.track.garage_m
                car.laps_planned = laps + 1
                car.lap_positions[1] = car.position
        self._schedule_late_joiners()
        for car in self.cars:
            car.lap_tyre = car.tyre

    def _schedule_penalties(self) -> None:
        """The penalised cars (not retiring, not late), each with its infringement's lap and
        place: early enough that a drive-through or stop-go is served before the last lap."""
        candidates = [car for car in self.cars[: self._on_grid] if car.retire_s is None]
        count = min(self.options.penalties, len(candidates))
        chosen = self.incident_rng.choice(len(candidates), size=count, replace=False)
        for k, pick in enumerate(sorted(int(i) for i in chosen)):
            car = candidates[pick]
            lap = int(self.incident_rng.integers(1, self.total_laps - 2))
            at = float(self.incident_rng.uniform(0.2, 0.6)) * self.track.length_m
            car.penalty_plan = (PENALTY_KINDS[k % len(PENALTY_KINDS)][0], lap, at)

    @property
    def _on_grid(self) -> int:
        """Cars there from the start; the late joiners take the slots after them."""
        return len(self.cars) - self.options.late_joiners

    def _schedule_late_joiners(self) -> None:
        span = (self.total_laps + (0 if self.session_type == "race" else 1)) * (
            self.track.reference_lap_s
        )
        for car in self.cars[self._on_grid :]:
            # Joins the lobby a while in, then leaves the garage: an out-lap from the pit lane.
            car.join_s = self.lights_out_s + float(self.rng.uniform(0.15, 0.4)) * span
            car.launched_s = car.join_s + 3.0
            car.mode = "absent"
            car.pre_line = False
            car.distance = self.track.garage_m
            car.tau = self.line.tau_at(car.distance)
            car.position = car.grid_position = car.index + 1
            car.lap_positions = {}
            if self.session_type == "race":
                car.grid_position = 0
                car.fuel_kg = 1.6 * self.total_laps + 3.0

    # ----- stepping ---------------------------------------------------------------------------

    def step(self) -> list[SimEvent]:
        """Advance one frame; returns what happened in it (in order)."""
        if self.over:
            return []
        if self._flashback_point is not None and self.time_s >= self.options.flashback_at_s:
            return self._flash_back()
        events = self._advance()
        at, back = self.options.flashback_at_s, self.options.flashback_s
        due = at and self.time_s >= at - back
        if due and not self.flashbacks and self._flashback_point is None:
            self._flashback_point = self._snapshot()
        return events

    def _snapshot(self) -> dict[str, Any]:
        keep = {"options", "track", "line", "flashbacks", "_flashback_point"}
        state = {name: value for name, value in vars(self).items() if name not in keep}
        # Drivers and teams are the roster's (compared by identity): shared, not copied.
        memo: dict[int, Any] = {}
        for car in self.cars:
            memo[id(car.driver)] = car.driver
            memo[id(car.driver.team)] = car.driver.team
        return copy.deepcopy(state, memo)

    def _flash_back(self) -> list[SimEvent]:
        """The player rewinds: the session is again what it was then, frame and time included."""
        point, self._flashback_point = self._flashback_point, None
        assert point is not None
        vars(self).update(point)
        self.flashbacks += 1
        # The seconds driven again go differently (the player takes that corner another way).
        for car in self.cars:
            if car.status == "running" and car.mode in ("track", "pit"):
                car.lap_target_s *= 1.0 + float(self.rng.uniform(-0.01, 0.01))
        details = {"flashbackFrameIdentifier": self.frame, "flashbackSessionTime": self.time_s}
        return [SimEvent("FLBK", details)]

    def _advance(self) -> list[SimEvent]:
        events: list[SimEvent] = []
        self.frame += 1
        if self.frame == 0:
            events.append(SimEvent("SSTA"))
            return events
        t_prev = self.time_s
        self.time_s = self.frame * self.dt
        if self.session_type == "race":
            self._race_control(t_prev, events)
        self._by_position = {car.position: car for car in self.cars}
        for car in self._movement_order():
            self._move(car, t_prev, events)
            if car.penalty_plan is not None:
                self._stewards(car, events)
        self._update_positions(events)
        self._record_exits()
        self._check_end(events)
        return events

    def _race_control(self, t_prev: float, events: list[SimEvent]) -> None:
        t = self.time_s
        for number, at in enumerate(self._light_times, start=1):
            if t_prev < at <= t:
                events.append(SimEvent("STLG", {"numLights": number}))
        if self.phase == "pre_start" and t >= self.lights_out_s:
            self.phase = "running"
            events.append(SimEvent("LGOT"))
            start_ms = _ms(self.lights_out_s)
            for car in self.cars:
                if car.mode != "grid":
                    continue
                car.mode = "track"
                car.lap_start_ms = start_ms
                car.launched_s = self.lights_out_s
                car.launch_floor = 0.05  # a standing start
                car.lap_target_s = self._lap_target(car)
                self._plan_invalid(car)
        for car in self.cars:
            if car.retire_s is not None and car.status == "running" and t_prev < car.retire_s <= t:
                self._retire(car, events)
        # A safety car due while the race is red-flagged is not deployed.
        sc_due = self._sc_deploy_s is not None and t_prev < self._sc_deploy_s <= t
        if sc_due and not self.chequered and not self.red_flag:
            self.safety_car_status = 1
            self.safety_car_periods += 1
            self._sc_end_s = t + 0.8 * self.track.reference_lap_s
            events.append(SimEvent("SCAR", {"safetyCarType": 1, "eventType": 0}))
            if self.drs_enabled:
                self.drs_enabled = False
                events.append(SimEvent("DRSD", {"reason": 1}))
        if self.safety_car_status:
            if not self._sc_returning and t >= self._sc_end_s - 0.3 * self.track.reference_lap_s:
                self._sc_returning = True
                events.append(SimEvent("SCAR", {"safetyCarType": 1, "eventType": 1}))
            if t >= self._sc_end_s:
                self.safety_car_status = 0
                self._sc_deploy_s = None
                events.append(SimEvent("SCAR", {"safetyCarType": 1, "eventType": 3}))
        self._red_flag_control(t_prev, events)
        leader = self._leader()
        if (
            not self.drs_enabled
            and not self.safety_car_status
            and not self.red_flag
            and leader is not None
            and leader.completed >= 2
            and not self.chequered
        ):
            self.drs_enabled = True
            events.append(SimEvent("DRSE"))

    def _red_flag_control(self, t_prev: float, events: list[SimEvent]) -> None:
        """Red flag: shown when the leader is on `red_flag_at_lap` (and no car is in the pit
        lane); every car drives into the pit lane and queues; 10 s after the last one stopped,
        five lights and lights out, and the queue drives out of the pit lane in order."""
        t = self.time_s
        if not self.red_flag:
            leader = self._leader()
            due = (
                self.options.red_flag_at_lap
                and not self.red_flag_periods
                and self.phase == "running"
                and not self.chequered
                and not self.safety_car_status
                and leader is not None
                and leader.lap >= self.options.red_flag_at_lap
                and not any(car.mode == "pit" for car in self.cars)
            )
            if due:
                self.red_flag = True
                self.red_flag_periods += 1
                self._queue_next_m = self.track.pit_exit_m - 20.0
                events.append(SimEvent("RDFL"))
                if self.drs_enabled:
                    self.drs_enabled = False
                    events.append(SimEvent("DRSD", {"reason": 2}))
            return
        if self._red_flag_restart_s is None:
            racing = [
                car
                for car in self.cars
                if car.status == "running" and car.mode not in ("absent", "garage")
            ]
            if all(car.queued for car in racing):
                self._red_flag_restart_s = t + 10.0
            return
        start = self._red_flag_restart_s
        for number in range(1, 6):
            if t_prev < start + number <= t:
                events.append(SimEvent("STLG", {"numLights": number}))
        if t >= start + 6.0:
            self.red_flag = False
            self._red_flag_restart_s = None
            events.append(SimEvent("LGOT"))
            for car in self.cars:
                car.queued = False
                car.queue_m = None

    def _movement_order(self) -> list[Car]:
        # Under the safety car a car may not pass the one ahead: move them front to back.
        return sorted(self.cars, key=lambda c: c.position)

    def _move(self, car: Car, t_prev: float, events: list[SimEvent]) -> None:
        t = self.time_s
        if car.mode == "absent":
            if car.join_s is not None and t >= car.join_s:
                car.mode = "garage"
            return
        if car.mode == "grid" or car.status == "dnf":
            car.speed = 0.0
            return
        if car.mode == "garage":
            if t >= car.launched_s and self.red_flag:
                car.launched_s = t + self.dt  # the pit exit is closed: stay in the garage
            elif t >= car.launched_s:
                car.mode = "pit"
                car.lap_start_ms = _ms(car.launched_s)
                car.lap_pit_out = True
                car.pit_status = 1
                car.pit_lane_enter_s = car.launched_s
                car.lap_target_s = self._lap_target(car)
                self._plan_invalid(car)
            return
        if car.mode == "pit":
            self._move_in_pit(car, t_prev, events)
        else:
            self._move_on_track(car, t_prev, events)
        if car.status == "running":
            self._burn_and_wear(car)
        self._record_buckets(car)

    def _burn_and_wear(self, car: Car) -> None:
        """Fuel, tyres and ERS for this frame's movement (a finished car's stay as they were)."""
        safety_car = bool(self.safety_car_status or self.red_flag)
        moved = car.speed * self.dt
        burn = moved * FUEL_KG_PER_LAP / self.track.length_m * (SC_FUEL if safety_car else 1.0)
        car.fuel_kg = max(0.0, car.fuel_kg - burn)
        ahead = self._by_position.get(car.position - 1)
        close = ahead is not None and 0 < self.gap_ms(car, ahead) < 1000
        car.systems.advance(
            self.dt,
            moved,
            car.speed * 3.6,
            float(self.line.accel[self.line.sample(car.distance)]),
            car.mode == "track",
            safety_car,
            COMPOUNDS[car.tyre].wear_pct_per_lap,
            self.track.length_m,
            close,
        )

    def _pace_factor(self, car: Car) -> float:
        rate = self.line.lap_tau / car.lap_target_s
        # Pulling away (lights out, pit exit): ramp up from about pit-lane speed over ~4 s.
        ramp = (self.time_s - car.launched_s) / 4.0
        rate *= min(1.0, car.launch_floor + (1.0 - car.launch_floor) * ramp)
        if (self.safety_car_status or self.red_flag) and car.status == "running":
            rate *= 0.62
        if car.mode == "cooldown":
            rate *= 0.55
        return rate

    def _move_on_track(self, car: Car, t_prev: float, events: list[SimEvent]) -> None:
        line, length = self.line, self.track.length_m
        start_tau = car.tau
        new_tau = car.tau + self.dt * self._pace_factor(car)
        if (self.safety_car_status or self.red_flag) and car.status == "running":
            new_tau = self._hold_behind(car, new_tau)
        span = max(new_tau - start_tau, 1e-9)

        def crossing(at_tau: float) -> float:
            return t_prev + self.dt * (at_tau - start_tau) / span

        wrapped = new_tau >= line.lap_tau
        new_d = line.distance_at(new_tau - line.lap_tau if wrapped else new_tau)
        if car.mode == "cooldown":
            car.tau = new_tau - line.lap_tau if wrapped else new_tau
            car.distance = new_d
            car.speed = float(line.speed[line.sample(new_d)]) * self._pace_factor(car)
            return
        on_lap = not car.pre_line
        # Boundaries this frame, in the order the car meets them.
        marks: list[tuple[float, str]] = []
        for name, at_tau in self._mark_taus:
            if start_tau < at_tau <= new_tau or (wrapped and at_tau <= new_tau - line.lap_tau):
                marks.append((at_tau if at_tau > start_tau else at_tau + line.lap_tau, name))
        if car.invalid_at is not None:
            at_tau = line.tau_at(car.invalid_at)
            if start_tau < at_tau <= new_tau:
                marks.append((at_tau, "cut"))
        if wrapped:
            marks.append((line.lap_tau, "line"))
        marks.sort()
        for at_tau, name in marks:
            when = crossing(at_tau)
            if name == "line":
                if car.pre_line:
                    car.pre_line = False
                    on_lap = True
                else:
                    self._complete_lap(car, when, events)
                    if car.mode != "track":
                        break
            elif not on_lap:
                continue
            elif name in ("s2", "s3"):
                car.sector_end_ms.append(_ms(when))
            elif name == "trap":
                self._speed_trap(car, at_tau, events)
            elif name == "cut":
                self._cut(car, events)
            elif (
                name == "pit"
                and car.status == "running"
                and (self.red_flag or car.lap in car.pit_laps or car.lap == car.serve_lap)
            ):
                car.mode = "pit"
                car.pit_status = 1
                if car.lap == car.serve_lap and not self.red_flag:
                    car.serving, car.serve_lap = car.serve_kind, 0
                # Under a red flag the pit lane is where the cars wait: no pit stop.
                car.lap_pit_in = not self.red_flag
                if self.red_flag:
                    car.queue_m = self._queue_next_m
                    self._queue_next_m -= 10.0
                car.pit_lane_enter_s = when
                car.distance = self.track.pit_entry_m
                car.tau = line.tau_at(car.distance)
                car.speed = PIT_SPEED_MS
                if car.lap_pit_in and self._teammate(car) is not None:
                    events.append(SimEvent("TMPT", {"vehicleIdx": car.index}))
                return
        if car.mode != "track":
            return
        car.tau = new_tau - line.lap_tau if wrapped else new_tau
        car.distance = new_d - length if car.pre_line else new_d
        car.speed = float(line.speed[line.sample(new_d)]) * self._pace_factor(car)

    def _hold_behind(self, car: Car, new_tau: float) -> float:
        """Under the safety car: no closer than 25 m to the running car ahead."""
        ahead = [c for c in self.cars if c.position == car.position - 1]
        if not ahead or ahead[0].mode != "track" or ahead[0].status != "running":
            return new_tau
        length, lap_tau = self.track.length_m, self.line.lap_tau
        lap_base = (car.lap - 1) * length - (length if car.pre_line else 0.0)
        allowed = ahead[0].total_distance - 25.0 - lap_base  # as a distance along this lap
        if allowed <= self.line.distance_at(car.tau):
            return car.tau
        if allowed >= length:
            return min(new_tau, lap_tau + self.line.tau_at(allowed - length))
        return min(new_tau, self.line.tau_at(allowed))

    def _move_in_pit(self, car: Car, t_prev: float, events: list[SimEvent]) -> None:
        track, length = self.track, self.track.length_m
        if car.queued:
            car.speed = 0.0
            return
        if car.stopped:
            car.stop_left_s -= self.dt
            car.speed = 0.0
            if car.stop_left_s <= 0:
                car.stopped = False
                car.pit_status = 1
            return
        old = car.distance
        new = old + PIT_SPEED_MS * self.dt
        car.speed = PIT_SPEED_MS
        if new >= length:  # the pit lane crosses the line
            when = t_prev + self.dt * (length - old) / (new - old)
            self._complete_lap(car, when, events)
            new -= length
            old -= length
            if car.mode != "pit":
                return
        if car.queue_m is not None and old < car.queue_m <= new:
            car.distance = car.queue_m
            car.speed = 0.0
            car.queued = True
            return
        box = track.pit_box_m
        in_lap = car.lap_pit_in or (car.completed and car.laps[-1].pit_in)
        if old < box <= new and in_lap and car.serving != "drive_through":
            car.distance = box
            car.stopped = True
            car.pit_status = 2
            if car.serving == "stop_go":  # stands for the penalty's time; no work on the car
                car.stop_s = float(PENALTY_KINDS[2][3])
            else:
                car.stop_s = float(self.rng.uniform(2.2, 3.4))
                self._change_tyres(car)
            car.stop_left_s = car.stop_s
            return
        if new >= track.pit_exit_m and old < track.pit_exit_m:
            self._leave_pit_lane(car, events)
            # A lane wholly inside the lap: the lap that came in goes out again.
            car.lap_pit_out = car.lap_pit_out or car.lap_pit_in
            if car.pit_stops and not self.red_flag:
                self._exits.append(car)
            car.mode = "track"
            car.pit_status = 0
            car.distance = track.pit_exit_m
            car.tau = self.line.tau_at(track.pit_exit_m)
            car.launched_s = self.time_s
            car.launch_floor = 0.3  # about the pit speed limit
            return
        car.distance = new

    def _leave_pit_lane(self, car: Car, events: list[SimEvent]) -> None:
        """A pit-lane visit ends: a stop for tyres, or a penalty served (DTSV/SGSV)."""
        if car.queue_m is not None or not (car.lap_pit_out or car.lap_pit_in):
            return  # a red-flag queue: no visit
        if car.lap_pit_out and not car.completed:
            return  # an out-lap from the garage (a late joiner)
        visit = {
            "lap": car.lap - 1 if car.lap_pit_out else car.lap,  # the in-lap
            "kind": car.serving or "tyres",
            "pit_lane_ms": _ms(self.time_s - car.pit_lane_enter_s),
            "stationary_ms": _ms(car.stop_s) if car.serving != "drive_through" else 0,
        }
        car.pit_visits.append(visit)
        if car.serving:
            code = SERVED_CODES[car.serving]
            details: dict[str, float] = {"vehicleIdx": car.index}
            if car.serving == "stop_go":
                details["stopTime"] = car.stop_s
            events.append(SimEvent(code, details))
            car.penalties.append({"served": code, "lap": visit["lap"]})
            car.serving = ""

    def _stewards(self, car: Car, events: list[SimEvent]) -> None:
        """Hands out the car's planned penalty when it reaches the planned place."""
        assert car.penalty_plan is not None
        kind, lap, at = car.penalty_plan
        if car.status != "running" or car.mode != "track" or car.lap != lap or car.distance < at:
            return
        car.penalty_plan = None
        _, penalty_type, infringement, seconds = next(k for k in PENALTY_KINDS if k[0] == kind)
        if kind == "time":
            for _ in range(2):
                self._penalty(car, WARNING_TYPE, infringement, 255, events)
                car.warnings += 1
            car.penalty_s += seconds
        else:
            # Served on the next lap that is not the planned tyre stop.
            car.serve_lap = lap + 1 + (lap + 1 in car.pit_laps)
            car.serve_kind = kind
        self._penalty(car, penalty_type, infringement, seconds or 255, events)

    def _penalty(
        self, car: Car, penalty_type: int, infringement: int, seconds: int, events: list[SimEvent]
    ) -> None:
        details = {
            "penaltyType": penalty_type,
            "infringementType": infringement,
            "vehicleIdx": car.index,
            "otherVehicleIdx": 255,
            "time": seconds,
            "lapNum": car.lap,
            "placesGained": 255,
        }
        events.append(SimEvent("PENA", details))
        car.penalties.append(
            {
                "penalty_type": penalty_type,
                "infringement": infringement,
                "time_s": seconds,
                "lap": car.lap,
            }
        )

    def _change_tyres(self, car: Car) -> None:
        """The old set's stint ends with the in-lap; a lap the car is on at the box and does
        not end in the pit lane (an out-lap) counts for the new set."""
        previous = car.tyre
        in_lap_done = not (self.track.box_before_line and car.lap_pit_in)
        car.stints.append((previous, car.lap - 1 if in_lap_done else car.lap))
        car.tyre = _next_compound(previous)
        car.systems.new_set()
        car.stint_ages.append(0)  # a new set
        if in_lap_done:
            car.lap_tyre = car.tyre
        car.tyre_age = 0
        car.pit_stops += 1

    def _complete_lap(self, car: Car, when: float, events: list[SimEvent]) -> None:
        end_ms = _ms(when)
        lap_ms = end_ms - car.lap_start_ms
        ends = [*car.sector_end_ms, end_ms, end_ms][:2]
        s1 = ends[0] - car.lap_start_ms
        s2 = ends[1] - ends[0]
        record = LapRecord(
            lap=car.lap,
            lap_time_ms=lap_ms,
            sector_ms=[s1, s2, lap_ms - s1 - s2],
            valid=not car.lap_invalid,
            pit_in=car.lap_pit_in,
            pit_out=car.lap_pit_out,
            tyre=car.lap_tyre,
            invalid_sector=car.invalid_sector,
        )
        car.laps.append(record)
        car.lap_systems.append(
            {"lap": car.lap, "fuel_in_tank_kg": car.fuel_kg, **car.systems.truth()}
        )
        if record.valid and (car.best_lap_ms == 0 or lap_ms < car.best_lap_ms):
            car.best_lap_ms = lap_ms
        if (
            record.valid
            and (self.best_lap_ms == 0 or lap_ms < self.best_lap_ms)
            and not record.pit_out
        ):
            self.best_lap_ms = lap_ms
            events.append(SimEvent("FTLP", {"vehicleIdx": car.index, "lapTime": lap_ms / 1000.0}))
        car.tyre_age += 1
        if self.session_type == "race" and car.lap not in self.lap_leaders:
            self.lap_leaders[car.lap] = car.index
            car.laps_led += 1
        if self._session_done_for(car, when, events):
            return
        car.lap += 1
        car.lap_start_ms = end_ms
        car.sector_end_ms = []
        car.lap_invalid = False
        car.lap_pit_in = False
        # An in-lap that ends in the pit lane: the next is the out-lap (its tyre is set at the box).
        car.lap_pit_out = record.pit_in and car.mode == "pit"
        car.lap_tyre = car.tyre
        car.lap_target_s = self._lap_target(car)
        car.lap_positions[car.lap] = car.position
        ahead = self._by_position.get(car.position - 1)
        car.systems.new_lap(self.gap_ms(car, ahead) if ahead else 0, car.distance)
        self._plan_invalid(car)

    def _session_done_for(self, car: Car, when: float, events: list[SimEvent]) -> bool:
        if self.session_type == "race":
            if not self.chequered and car.completed >= self.total_laps:
                self.chequered = True
                events.append(SimEvent("CHQF"))
                events.append(SimEvent("RCWN", {"vehicleIdx": car.index}))
            if not self.chequered:
                return False
        elif car.completed < car.laps_planned:
            return False
        car.status = "finished"
        car.finish_s = when
        car.mode = "cooldown"
        car.pit_status = 0
        car.stints.append((car.tyre, car.completed))
        return True

    def _retire(self, car: Car, events: list[SimEvent]) -> None:
        car.status = "dnf"
        car.speed = 0.0
        car.stints.append((car.tyre, car.completed))
        events.append(SimEvent("RTMT", {"vehicleIdx": car.index, "reason": car.retire_reason}))

    def _speed_trap(self, car: Car, at_tau: float, events: list[SimEvent]) -> None:
        kph = (
            float(self.line.speed[self.line.sample(self.line.distance_at(at_tau))])
            * self._pace_factor(car)
            * 3.6
        )
        kph = round(kph, 1)
        if kph <= car.speed_trap_kph:
            return
        car.speed_trap_kph = kph
        car.speed_trap_lap = car.lap
        overall = kph > self.best_speed_trap[0]
        if overall:
            self.best_speed_trap = (kph, car.index)
        events.append(
            SimEvent(
                "SPTP",
                {
                    "vehicleIdx": car.index,
                    "speed": kph,
                    "isOverallFastestInSession": int(overall),
                    "isDriverFastestInSession": 1,
                    "fastestVehicleIdxInSession": self.best_speed_trap[1],
                    "fastestSpeedInSession": self.best_speed_trap[0],
                },
            )
        )

    def _cut(self, car: Car, events: list[SimEvent]) -> None:
        car.invalid_at = None
        if car.lap_invalid:
            return
        car.lap_invalid = True
        car.warnings += 1
        car.corner_cutting_warnings += 1
        events.append(
            SimEvent(
                "PENA",
                {
                    "penaltyType": 10,  # this lap invalidated
                    "infringementType": 25,  # lap invalidated corner cutting
                    "vehicleIdx": car.index,
                    "otherVehicleIdx": 255,
                    "time": 255,
                    "lapNum": car.lap,
                    "placesGained": 255,
                },
            )
        )

    def _plan_invalid(self, car: Car) -> None:
        car.invalid_at = None
        car.invalid_sector = None
        if self.rng.random() < 0.05:
            length = self.track.length_m
            car.invalid_at = float(self.rng.uniform(0.05, 0.95)) * length
            car.invalid_sector = self.sector_of(car.invalid_at)

    def sector_of(self, distance: float) -> int:
        if distance < self.track.sector2_start_m:
            return 0
        return 1 if distance < self.track.sector3_start_m else 2

    def _lap_target(self, car: Car) -> float:
        compound = COMPOUNDS[car.tyre]
        target = self.track.reference_lap_s * car.pace
        target += compound.offset_s + compound.wear_s_per_lap * car.tyre_age
        target += 0.03 * car.fuel_kg
        target += float(self.rng.normal(0.0, 0.2))
        if self.rng.random() < 0.04:  # a mistake: a lock-up, a wide exit
            target += float(self.rng.uniform(0.6, 2.0))
        if self.session_type != "race" and car.lap == 1:
            target *= 1.3  # the out-lap of qualifying and time trial
        return target

    def _teammate(self, car: Car) -> Car | None:
        for other in self.cars:
            if other is not car and other.driver.team is car.driver.team:
                return other
        return None

    def _record_exits(self) -> None:
        """Where each car that left the pit lane this frame rejoined: TRUTH for the engineer's
        rejoin prediction (its position, the car ahead and the gap to it on the road)."""
        by_position = {car.position: car for car in self.cars}
        for car in self._exits:
            ahead = by_position.get(car.position - 1)
            # Every car ahead on the road, and how long ago it passed where this car is now.
            gaps = {
                other.index: gap
                for other in self.cars
                if other.position < car.position
                and other.status == "running"
                and (gap := self._passed_ms_ago(other, car.total_distance)) is not None
            }
            car.rejoins.append(
                {
                    "in_lap": car.lap if car.lap_pit_in else car.lap - 1,
                    "entered_s": car.pit_lane_enter_s,
                    "exited_s": self.time_s,
                    "exit_distance_m": car.total_distance,
                    "position": car.position,
                    "ahead": ahead.index if ahead else None,
                    "gap_ahead_ms": gaps.get(ahead.index) if ahead else None,
                    "safety_car": bool(self.safety_car_status),
                    "ahead_gaps_ms": {str(index): gap for index, gap in gaps.items()},
                }
            )
        self._exits = []

    def _passed_ms_ago(self, car: Car, total_distance: float) -> int | None:
        """How long ago `car` passed `total_distance` (its bucket times, interpolated)."""
        passed = self._passed_s(car, total_distance)
        return None if passed is None else _ms(self.time_s - passed)

    def _passed_s(self, car: Car, total_distance: float) -> float | None:
        """When `car` passed `total_distance` (None: not there yet)."""
        at = total_distance / GAP_BUCKET_M
        k = int(at)
        if k < 0 or k >= len(car.bucket_s):
            return None
        start = car.bucket_s[k]
        if k + 1 < len(car.bucket_s):
            return start + (car.bucket_s[k + 1] - start) * (at - k)
        # Passed it inside the bucket it is in now.
        covered = max(car.total_distance - k * GAP_BUCKET_M, 1e-6)
        return start + (self.time_s - start) * min(1.0, (at - k) * GAP_BUCKET_M / covered)

    def _road_gaps(self, car: Car, rejoin: dict[str, Any]) -> dict[str, int]:
        """Every other car's time at this rejoin's pit exit against this car's: how long before
        it (positive) or after it (negative) each passed there, as far as they have yet."""
        gaps = {}
        for other in self.cars:
            at = rejoin["exit_distance_m"]
            passed = None if other is car else self._passed_s(other, at)
            if passed is not None and other.total_distance >= at:
                gaps[str(other.index)] = _ms(rejoin["exited_s"] - passed)
        return gaps

    def _record_buckets(self, car: Car) -> None:
        if car.pre_line or self.session_type != "race":
            return
        reached = int(car.total_distance // GAP_BUCKET_M)
        while len(car.bucket_s) <= reached:
            car.bucket_s.append(self.time_s)

    # ----- positions, gaps, end -----------------------------------------------------------------

    def _leader(self) -> Car | None:
        return min(self.cars, key=lambda c: c.position) if self.cars else None

    def _update_positions(self, events: list[SimEvent]) -> None:
        if self.session_type == "race":
            order = sorted(self.cars, key=self._race_key)
        else:
            order = sorted(self.cars, key=lambda c: (c.best_lap_ms or 10**9, c.index))
        previous = {car.index: car.position for car in self.cars}
        for position, car in enumerate(order, start=1):
            car.position = position
        if self.session_type == "race" and self.phase == "running":
            for car in self.cars:
                if (
                    car.position >= previous[car.index]
                    or car.mode != "track"
                    or car.status != "running"
                ):
                    continue
                for other in self.cars:
                    passed = (
                        previous[other.index] < previous[car.index]
                        and other.position > car.position
                    )
                    if passed and other.mode == "track" and other.status == "running":
                        events.append(
                            SimEvent(
                                "OVTK",
                                {
                                    "overtakingVehicleIdx": car.index,
                                    "beingOvertakenVehicleIdx": other.index,
                                },
                            )
                        )

    def _race_key(self, car: Car) -> tuple:
        length = self.track.length_m
        if car.status == "finished":  # time penalties count once the car has finished
            return (0, -car.completed, car.finish_s + car.penalty_s)
        if car.mode in ("absent", "garage"):  # a late joiner not yet out: behind every racer
            return (0, math.inf, float(car.index))
        progress = car.completed + car.distance / length
        if car.status == "dnf":
            return (1, -progress, car.index)
        return (0, -progress, 0.0)

    def gap_ms(self, car: Car, other: Car) -> int:
        """How far `car` is behind `other` on the road, in ms (0 when unknown or ahead)."""
        if self.session_type != "race" or car is other or car.pre_line:
            return 0
        bucket = int(car.total_distance // GAP_BUCKET_M)
        if bucket < 0 or bucket >= len(other.bucket_s) or bucket >= len(car.bucket_s):
            return 0
        return max(0, _ms(car.bucket_s[bucket] - other.bucket_s[bucket]))

    def _check_end(self, events: list[SimEvent]) -> None:
        if self._end_s is None:
            done = all(car.status != "running" for car in self.cars)
            if done:
                self._end_s = self.time_s + 2.0  # time for SessionHistory to cycle all cars
                self.phase = "finished"
                events.append(SimEvent("FINAL"))  # the broadcaster sends FinalClassification
        elif self.time_s >= self._end_s:
            self.over = True
            events.append(SimEvent("SEND"))

    # ----- results ------------------------------------------------------------------------------

    def final_order(self) -> list[int]:
        if self.session_type == "race":
            return [car.index for car in sorted(self.cars, key=self._race_key)]
        return [
            car.index for car in sorted(self.cars, key=lambda c: (c.best_lap_ms or 10**9, c.index))
        ]

    def points(self, car: Car) -> int:
        if self.session_type != "race" or car.status != "finished" or car.position > len(POINTS):
            return 0
        return POINTS[car.position - 1]

    def status(self) -> dict[str, Any]:
        leader = self._leader()
        return {
            "session_uid": str(self.session_uid),
            "session_type": self.session_type,
            "track": self.track.name,
            "session_time_s": round(self.time_s, 3),
            "frame": self.frame,
            "phase": self.phase,
            "lap": leader.lap if leader else 0,
            "total_laps": self.total_laps,
            "leader": leader.driver.name if leader else None,
            "safety_car": bool(self.safety_car_status),
            "red_flag": self.red_flag,
            "flashbacks": self.flashbacks,
            "finished": self.over,
        }

    def _report_truth(self, car: Car) -> dict[str, Any]:
        """What a session report states about the car (docs/DESIGN.md, TRUTH)."""
        stints, start = [], 1
        for n, (compound, end_lap) in enumerate(_stints_so_far(car)):
            stints.append(
                {
                    "compound": COMPOUNDS[compound].actual,
                    "visual": compound,
                    "start_lap": start,
                    "end_lap": end_lap,
                    "tyre_age_at_start": car.stint_ages[n],
                }
            )
            start = end_lap + 1
        finished = self.session_type == "race" and car.status == "finished"
        return {
            "grid_position": car.grid_position,
            "result_reason": car.retire_reason if car.status == "dnf" else 0,
            "late_joiner": car.join_s is not None,
            "total_time_ms": _ms(car.finish_s) - _ms(self.lights_out_s) if finished else None,
            "penalty_s": car.penalty_s,
            "laps_led": car.laps_led,
            "best_lap_ms": car.best_lap_ms,
            "warnings": car.warnings,
            "stints": stints,
            "pit_stops": [dict(visit) for visit in car.pit_visits],
            "penalties": [dict(entry) for entry in car.penalties],
        }

    def truth(self) -> dict[str, Any]:
        cars = []
        for car in self.cars:
            cars.append(
                {
                    "car_index": car.index,
                    "driver": car.driver.name,
                    "team": car.driver.team.name,
                    "race_number": car.driver.race_number,
                    "status": car.status,
                    "position": car.position,
                    "laps": [record.truth() for record in car.laps],
                    "pit_stop_count": car.pit_stops,
                    # Fuel, tyres, ERS: now, and as each lap ended.
                    "systems": {"fuel_in_tank_kg": car.fuel_kg, **car.systems.truth()},
                    "lap_systems": list(car.lap_systems),
                    "rejoins": [
                        {**r, "road_gaps_ms": self._road_gaps(car, r)} for r in car.rejoins
                    ],
                    # (compound, last lap on it); the set on at the end closes with the last lap
                    "stint_ends": [[tyre, end] for tyre, end in _all_stints(car)],
                    **self._report_truth(car),
                }
            )
        return {
            "session_uid": str(self.session_uid),
            "session_type": self.session_type,
            "track": self.track.name,
            "total_laps": self.total_laps,
            "finished": self.over,
            "cars": cars,
            "final_order": self.final_order(),
        }


def _stints_so_far(car: Car) -> list[tuple[str, int]]:
    """(compound, end lap) of every stint; a running car's current one ends at its last lap."""
    if car.status == "running":
        return [*car.stints, (car.tyre, car.completed)]
    return list(car.stints)


def _all_stints(car: Car) -> list[tuple[str, int]]:
    """The sets the car completed laps on (one fitted and then retired on is left out)."""
    stints = [*car.stints, (car.tyre, car.completed)] if car.status == "running" else car.stints
    return [stint for i, stint in enumerate(stints) if stint[1] > (stints[i - 1][1] if i else 0)]


def _next_compound(tyre: str) -> str:
    return "hard" if tyre != "hard" else "medium"


def _ms(seconds: float) -> int:
    return math.floor(seconds * 1000.0 + 0.5)
