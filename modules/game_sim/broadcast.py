"""From the race model to datagrams: every packet type of a format, on the game's send pattern.

`Broadcaster(sim, packet_format).step()` advances the race one frame and returns that frame's
datagrams, in order. Sans-IO: the runner puts them on a socket. The send pattern follows EA's
documentation: Motion, LapData, CarTelemetry, CarStatus, MotionEx (and 2026's CarTelemetry2)
every frame; Session, CarSetups 2/s; CarDamage 10/s; Participants every 5 s; SessionHistory
and TyreSets 20/s, one car each, cycling; LapPositions 1/s (2025+); TimeTrial 1/s in time
trials; LobbyInfo 2/s before the start; Events when they happen; FinalClassification once,
just before SEND. Layouts come from `modules.f1_udp`; nothing here knows a byte offset.

frameIdentifier is the race model's frame, which goes back on a flashback;
overallFrameIdentifier counts every frame sent and never goes back. A car that has not joined
yet is all zeros in every per-car array, as an empty slot is.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from modules.f1_udp.events import event_details_dtype, set_event
from modules.f1_udp.layouts import MAX_CARS, NAME_LEN
from modules.f1_udp.packets import PACKET_DTYPES, PacketId, fill_header, new_packet
from modules.game_sim.car_model import FUEL_KG_PER_LAP
from modules.game_sim.online import hide, restricted_cars
from modules.game_sim.race import (
    COMPOUNDS,
    PIT_SPEED_KPH,
    SESSION_TYPES,
    Car,
    RaceSim,
    SimEvent,
    _ms,
)
from modules.game_sim.tracks import BRAKE_MS2

GEAR_UP_KPH = (0, 80, 115, 150, 185, 220, 258, 295)  # the speed each gear (1..8) starts at
TYRE_SETS = ("soft",) * 8 + ("medium",) * 3 + ("hard",) * 2  # 13 dry sets; 7 wet sets follow
RULE_SETS = {"race": 1, "qualifying": 0, "time_trial": 2}
GAME_MODES = {"race": 3, "qualifying": 3, "time_trial": 5}  # Grand Prix, Time Trial


class Broadcaster:
    """Turns one RaceSim into the datagram stream a game would send."""

    def __init__(self, sim: RaceSim, packet_format: int = 2025) -> None:
        if (packet_format, 0) not in PACKET_DTYPES:
            raise ValueError(f"packet format must be one of 2024, 2025, 2026, not {packet_format}")
        self.sim = sim
        self.format = packet_format
        self.slots = MAX_CARS[packet_format]
        self.ids = {packet_id for fmt, packet_id in PACKET_DTYPES if fmt == packet_format}
        self._history_cursor = 0
        self._tyre_cursor = 0
        self._start_fuel = [car.fuel_kg for car in sim.cars]
        self._kinematics_frame = -2
        self._kinematics_cache: dict[str, np.ndarray] = {}
        self.overall_frame = -1
        self._absent: list[int] = []
        options = sim.options
        self.player = 255 if options.spectator else 0  # a spectator has no car of its own
        self.restricted = restricted_cars(options.restricted_cars, len(sim.cars), options.spectator)

    # ----- the schedule ---------------------------------------------------------------------

    def step(self) -> list[bytes]:
        sim = self.sim
        events = sim.step()
        frame, rate = sim.frame, sim.rate
        if frame < 0 or (sim.over and not events):
            return []
        self.overall_frame += 1
        self._absent = [car.index for car in sim.cars if car.mode == "absent"]
        per_second = _every(frame, rate)
        out: list[bytes] = []
        if per_second(2):
            out.append(self.session())
        if frame % (5 * rate) == 0:
            out.append(self.participants())
        if per_second(2):
            out.append(self.car_setups())
        out.append(self.lap_data())
        out.append(self.motion())
        out.append(self.car_telemetry())
        out.append(self.car_status())
        if per_second(10):
            out.append(self.car_damage())
        out.append(self.motion_ex())
        if PacketId.CAR_TELEMETRY_2 in self.ids:
            out.append(self.car_telemetry_2())
        for _ in range(_due(frame, rate, 20)):
            out.append(self.session_history(self._next(cursor="_history_cursor")))
        for _ in range(_due(frame, rate, 20)):
            out.append(self.tyre_sets(self._next(cursor="_tyre_cursor")))
        if PacketId.LAP_POSITIONS in self.ids and per_second(1):
            out.append(self.lap_positions())
        if sim.session_type == "time_trial" and per_second(1):
            out.append(self.time_trial())
        if (sim.phase == "pre_start" or frame == 0) and per_second(2):
            out.append(self.lobby_info())
        for event in events:
            if event.code == "FINAL":
                out.append(self.final_classification())
            else:
                out.append(self.event(event))
        return out

    def _next(self, cursor: str) -> Car:
        """The next car in the cycle, passing over cars that have not joined."""
        cars = self.sim.cars
        index = getattr(self, cursor) % len(cars)
        while cars[index].mode == "absent":  # car 0 never joins late, so this ends
            index = (index + 1) % len(cars)
        setattr(self, cursor, index + 1)
        return cars[index]

    def _blank_absent(self, data: np.ndarray) -> None:
        for index in self._absent:
            data[index] = np.zeros((), data.dtype)

    def _packet(self, packet_id: int) -> np.ndarray:
        packet = new_packet(self.format, packet_id)
        return fill_header(
            packet,
            session_uid=self.sim.session_uid,
            session_time=self.sim.time_s,
            frame_identifier=max(self.sim.frame, 0),
            overall_frame_identifier=max(self.overall_frame, 0),
            player_car_index=self.player,
        )

    # ----- per-car arrays -----------------------------------------------------------------

    def _kinematics(self) -> dict[str, np.ndarray]:
        """Positions, directions, speeds of every car this frame (computed once per frame)."""
        if self._kinematics_frame != self.sim.frame:
            self._kinematics_cache = self._compute_kinematics()
            self._kinematics_frame = self.sim.frame
        return self._kinematics_cache

    def _compute_kinematics(self) -> dict[str, np.ndarray]:
        sim, line, track = self.sim, self.sim.line, self.sim.track
        cars = sim.cars
        distance = np.array([car.distance for car in cars]) % track.length_m
        in_pit = np.array([car.mode in ("pit", "garage") for car in cars])
        lateral = np.array([car.lateral_m for car in cars]) + np.where(in_pit, 18.0, 0.0)
        grid = np.append(line.s, track.length_m)
        x = np.interp(distance, grid, np.append(line.x, line.x[0]))
        z = np.interp(distance, grid, np.append(line.z, line.z[0]))
        heading = np.interp(distance, grid, np.append(line.heading, line.heading[-1]))
        forward = np.stack([np.cos(heading), np.sin(heading)], axis=1)
        right = np.stack([forward[:, 1], -forward[:, 0]], axis=1)
        x += right[:, 0] * lateral
        z += right[:, 1] * lateral
        speed = np.array([car.speed for car in cars])
        sample = line.sample(distance)
        curvature = np.where(in_pit, 0.0, line.curvature[sample])
        accel = np.where(speed > 1.0, line.accel[sample], 0.0)
        return {
            "x": x,
            "y": 4.0 * np.sin(2 * np.pi * distance / track.length_m),
            "z": z,
            "forward": forward,
            "right": right,
            "heading": heading,
            "speed": speed,
            "accel": accel,
            "curvature": curvature,
        }

    def motion(self) -> bytes:
        packet = self._packet(PacketId.MOTION)
        k = self._kinematics()
        n = len(self.sim.cars)
        data = packet["carMotionData"]
        g_lat = k["speed"] ** 2 * k["curvature"] / 9.81
        g_lon = k["accel"] / 9.81
        quantised = data.dtype["gForceLateral"].kind == "i"  # 2026 sends g x 1000 as int16
        scale = 1000.0 if quantised else 1.0
        _set(data, n, worldPositionX=k["x"], worldPositionY=k["y"], worldPositionZ=k["z"])
        _set(
            data,
            n,
            worldVelocityX=k["forward"][:, 0] * k["speed"],
            worldVelocityZ=k["forward"][:, 1] * k["speed"],
            worldForwardDirX=np.round(k["forward"][:, 0] * 32767),
            worldForwardDirZ=np.round(k["forward"][:, 1] * 32767),
            worldRightDirX=np.round(k["right"][:, 0] * 32767),
            worldRightDirZ=np.round(k["right"][:, 1] * 32767),
            gForceLateral=np.round(np.clip(g_lat, -6, 6) * scale, 3),
            gForceLongitudinal=np.round(np.clip(g_lon, -6, 6) * scale, 3),
            gForceVertical=np.full(n, 1.0 * scale),
            yaw=k["heading"],
        )
        self._blank_absent(data)
        return packet.tobytes()

    def motion_ex(self) -> bytes:
        packet = self._packet(PacketId.MOTION_EX)
        car = self.sim.cars[0]
        k = self._kinematics()
        speed = float(k["speed"][0])
        packet["wheelSpeed"] = speed
        packet["localVelocityZ"] = speed
        packet["angularVelocityY"] = speed * float(k["curvature"][0])
        packet["frontWheelsAngle"] = float(np.clip(k["curvature"][0] * 3.0, -0.35, 0.35))
        packet["heightOfCOGAboveGround"] = 0.28
        packet["frontAeroHeight"] = 0.03 if car.speed > 60 else 0.05
        packet["rearAeroHeight"] = 0.08
        packet["wheelVertForce"] = 2500.0 + 1.2 * speed**2
        return packet.tobytes()

    def car_telemetry(self) -> bytes:
        packet = self._packet(PacketId.CAR_TELEMETRY)
        k = self._kinematics()
        n = len(self.sim.cars)
        kph = k["speed"] * 3.6
        moving = kph > 1.0
        gear = np.where(moving, np.searchsorted(GEAR_UP_KPH, kph, side="right"), 0)
        lower = np.array((*GEAR_UP_KPH, 340))[np.maximum(gear - 1, 0)]
        upper = np.array((*GEAR_UP_KPH[1:], 340, 360))[np.maximum(gear - 1, 0)]
        within = np.clip((kph - lower) / np.maximum(upper - lower, 1), 0, 1)
        rpm = np.where(moving, 10200 + 1600 * within, 4000)
        brake = np.clip(-k["accel"] / BRAKE_MS2, 0, 1)
        throttle = np.where(brake > 0.05, 0.0, np.where(k["accel"] > 0.5, 1.0, 0.55))
        drs = np.array([self._drs_open(car, kph[i]) for i, car in enumerate(self.sim.cars)])
        data = packet["carTelemetryData"]
        _set(
            data,
            n,
            speed=np.round(kph),
            throttle=np.where(moving, throttle, 0.0),
            steer=np.clip(k["curvature"] * 40.0, -1, 1),
            brake=brake,
            gear=gear,
            engineRPM=np.round(rpm),
            drs=drs,
            revLightsPercent=np.round(within * 100),
            engineTemperature=np.full(n, 105),
        )
        data["brakesTemperature"][:n] = (350 + 650 * brake)[:, None]
        # Tyres heat with cornering load and speed; worn rubber runs hotter inside.
        load = np.abs(k["speed"] ** 2 * k["curvature"]) / 9.81
        surface = np.where(moving, 84 + 6 * np.clip(load, 0, 5) + kph / 60, 60)
        wear = np.array([car.systems.wear for car in self.sim.cars])
        data["tyresSurfaceTemperature"][:n] = np.round(surface[:, None] + (0, 1, 3, 4))
        data["tyresInnerTemperature"][:n] = np.round(np.where(moving, 98, 80)[:, None] + wear / 5)
        data["tyresPressure"][:n] = (22.5, 22.5, 24.0, 24.0)
        packet["mfdPanelIndex"] = 255
        packet["mfdPanelIndexSecondaryPlayer"] = 255
        self._blank_absent(data)
        return packet.tobytes()

    def _drs_open(self, car: Car, kph: float) -> int:
        if not self.sim.drs_enabled or car.mode != "track" or car.position == 1 or kph < 250:
            return 0
        ahead = [c for c in self.sim.cars if c.position == car.position - 1]
        return int(bool(ahead) and 0 < self.sim.gap_ms(car, ahead[0]) < 1000)

    def car_telemetry_2(self) -> bytes:
        packet = self._packet(PacketId.CAR_TELEMETRY_2)
        n = len(self.sim.cars)
        data = packet["carTelemetry2Data"]
        systems = [car.systems for car in self.sim.cars]
        _set(
            data,
            n,
            activeAeroMode=[s.aero_low_drag for s in systems],
            activeAeroAvailable=[s.aero_available for s in systems],
            overtakeAvailable=[s.overtake_available for s in systems],
            overtakeActive=[s.overtake_active for s in systems],
            overtakeActivationDistance=[s.overtake_activation_m for s in systems],
        )
        data["2026Regulations"][:n] = 1
        self._blank_absent(data)
        return packet.tobytes()

    def lap_data(self) -> bytes:
        packet = self._packet(PacketId.LAP_DATA)
        sim = self.sim
        cars = sim.cars
        now_ms = round(sim.time_s * 1000)
        leader = min(cars, key=lambda c: c.position)
        by_position = {car.position: car for car in cars}
        racing = [car.mode not in ("grid", "garage") and car.status == "running" for car in cars]
        s1 = [car.sector_end_ms[0] - car.lap_start_ms if car.sector_end_ms else 0 for car in cars]
        s2 = [e[1] - e[0] if len(e := car.sector_end_ms) > 1 else 0 for car in cars]
        to_front = [
            sim.gap_ms(car, ahead) if (ahead := by_position.get(car.position - 1)) else 0
            for car in cars
        ]
        to_leader = [sim.gap_ms(car, leader) for car in cars]
        in_lane = [car.mode == "pit" for car in cars]
        s1, s2, to_front, to_leader = (np.array(v) for v in (s1, s2, to_front, to_leader))
        _set(
            packet["lapData"],
            len(cars),
            lastLapTimeInMS=[car.laps[-1].lap_time_ms if car.laps else 0 for car in cars],
            currentLapTimeInMS=[
                max(0, now_ms - car.lap_start_ms) if on else 0
                for car, on in zip(cars, racing, strict=True)
            ],
            sector1TimeMSPart=s1 % 60000,
            sector1TimeMinutesPart=s1 // 60000,
            sector2TimeMSPart=s2 % 60000,
            sector2TimeMinutesPart=s2 // 60000,
            deltaToCarInFrontMSPart=to_front % 60000,
            deltaToCarInFrontMinutesPart=np.minimum(to_front // 60000, 255),
            deltaToRaceLeaderMSPart=to_leader % 60000,
            deltaToRaceLeaderMinutesPart=np.minimum(to_leader // 60000, 255),
            lapDistance=[car.distance for car in cars],
            totalDistance=[car.total_distance for car in cars],
            carPosition=[car.position for car in cars],
            currentLapNum=[car.lap for car in cars],
            pitStatus=[car.pit_status for car in cars],
            numPitStops=[car.pit_stops for car in cars],
            sector=[0 if car.distance < 0 else sim.sector_of(car.distance) for car in cars],
            currentLapInvalid=[car.lap_invalid for car in cars],
            penalties=[min(255, car.penalty_s) for car in cars],
            numUnservedDriveThroughPens=[
                int(car.serve_kind == "drive_through" and car.serve_lap > 0) for car in cars
            ],
            numUnservedStopGoPens=[
                int(car.serve_kind == "stop_go" and car.serve_lap > 0) for car in cars
            ],
            totalWarnings=[car.warnings for car in cars],
            cornerCuttingWarnings=[car.corner_cutting_warnings for car in cars],
            gridPosition=[car.grid_position for car in cars],
            driverStatus=[_driver_status(sim, car) for car in cars],
            resultStatus=[_result_status(car) for car in cars],
            pitLaneTimerActive=in_lane,
            pitLaneTimeInLaneInMS=[
                min(65535, round((sim.time_s - car.pit_lane_enter_s) * 1000)) if lane else 0
                for car, lane in zip(cars, in_lane, strict=True)
            ],
            pitStopTimerInMS=[
                min(65535, round((car.stop_s - max(car.stop_left_s, 0)) * 1000))
                if car.stopped
                else 0
                for car in cars
            ],
            speedTrapFastestSpeed=[car.speed_trap_kph for car in cars],
            speedTrapFastestLap=[car.speed_trap_lap for car in cars],
        )
        packet["timeTrialPBCarIdx"] = 255
        packet["timeTrialRivalCarIdx"] = 255
        self._blank_absent(packet["lapData"])
        return packet.tobytes()

    def car_status(self) -> bytes:
        packet = self._packet(PacketId.CAR_STATUS)
        n = len(self.sim.cars)
        cars = self.sim.cars
        data = packet["carStatusData"]
        compounds = [COMPOUNDS[car.tyre] for car in cars]
        throttle_power = np.array([min(1.0, car.speed / 80.0) for car in cars])
        _set(
            data,
            n,
            fuelMix=np.ones(n),
            frontBrakeBias=np.full(n, 56),
            pitLimiterStatus=np.array([car.mode == "pit" for car in cars]),
            fuelInTank=np.array([car.fuel_kg for car in cars]),
            fuelCapacity=np.full(n, 110.0),
            fuelRemainingLaps=np.array([car.fuel_kg / FUEL_KG_PER_LAP for car in cars]),
            maxRPM=np.full(n, 13000),
            idleRPM=np.full(n, 4000),
            maxGears=np.full(n, 8),
            drsAllowed=np.full(n, int(self.sim.drs_enabled)),
            actualTyreCompound=np.array([c.actual for c in compounds]),
            visualTyreCompound=np.array([c.visual for c in compounds]),
            tyresAgeLaps=np.array([car.tyre_age for car in cars]),
            vehicleFIAFlags=np.full(n, 3 if self.sim.safety_car_status else 0),
            enginePowerICE=550e3 * throttle_power,
            enginePowerMGUK=120e3 * throttle_power,
            ersStoreEnergy=[car.systems.ers_store_j for car in cars],
            ersDeployMode=[car.systems.ers_mode for car in cars],
            ersHarvestedThisLapMGUK=[car.systems.ers_harvested_k_j for car in cars],
            ersHarvestedThisLapMGUH=[car.systems.ers_harvested_h_j for car in cars],
            ersDeployedThisLap=[car.systems.ers_deployed_j for car in cars],
        )
        self._blank_absent(data)
        hide(packet, PacketId.CAR_STATUS, self.restricted)
        return packet.tobytes()

    def car_damage(self) -> bytes:
        packet = self._packet(PacketId.CAR_DAMAGE)
        data = packet["carDamageData"]
        for i, car in enumerate(self.sim.cars):
            data["tyresWear"][i] = car.systems.wear
        self._blank_absent(data)
        hide(packet, PacketId.CAR_DAMAGE, self.restricted)
        return packet.tobytes()

    def car_setups(self) -> bytes:
        packet = self._packet(PacketId.CAR_SETUPS)
        n = len(self.sim.cars)
        data = packet["carSetupData"]
        _set(
            data,
            n,
            frontWing=np.full(n, 8),
            rearWing=np.full(n, 6),
            onThrottle=np.full(n, 60),
            offThrottle=np.full(n, 55),
            frontCamber=np.full(n, -3.0),
            rearCamber=np.full(n, -1.5),
            frontToe=np.full(n, 0.05),
            rearToe=np.full(n, 0.2),
            frontSuspension=np.full(n, 20),
            rearSuspension=np.full(n, 10),
            frontAntiRollBar=np.full(n, 10),
            rearAntiRollBar=np.full(n, 8),
            frontSuspensionHeight=np.full(n, 25),
            rearSuspensionHeight=np.full(n, 60),
            brakePressure=np.full(n, 100),
            brakeBias=np.full(n, 56),
            engineBraking=np.full(n, 50),
            rearLeftTyrePressure=np.full(n, 21.5),
            rearRightTyrePressure=np.full(n, 21.5),
            frontLeftTyrePressure=np.full(n, 23.0),
            frontRightTyrePressure=np.full(n, 23.0),
            fuelLoad=np.array(self._start_fuel),
        )
        self._blank_absent(data)
        hide(packet, PacketId.CAR_SETUPS, self.restricted)
        return packet.tobytes()

    # ----- session-wide packets -------------------------------------------------------------

    def session(self) -> bytes:
        packet = self._packet(PacketId.SESSION)
        sim, track = self.sim, self.sim.track
        duration = 7200 if sim.session_type == "race" else 1080
        packet["weather"] = 0
        packet["trackTemperature"] = 34
        packet["airTemperature"] = 24
        packet["totalLaps"] = sim.total_laps
        packet["trackLength"] = round(track.length_m)
        packet["sessionType"] = SESSION_TYPES[sim.session_type]
        packet["trackId"] = track.track_id
        packet["sessionDuration"] = duration
        packet["sessionTimeLeft"] = max(0, duration - int(sim.time_s))
        packet["pitSpeedLimit"] = PIT_SPEED_KPH
        packet["isSpectating"] = int(sim.options.spectator)
        packet["spectatorCarIndex"] = self._spectated() if sim.options.spectator else 255
        zones = packet["marshalZones"]
        packet["numMarshalZones"] = 10
        zones["zoneStart"][:10] = np.arange(10) / 10.0
        zones["zoneFlag"][:10] = 3 if sim.safety_car_status else 0
        packet["safetyCarStatus"] = sim.safety_car_status
        packet["numWeatherForecastSamples"] = 1
        forecast = packet["weatherForecastSamples"][0]
        forecast["sessionType"] = SESSION_TYPES[sim.session_type]
        forecast["trackTemperature"], forecast["airTemperature"] = 34, 24
        forecast["trackTemperatureChange"] = forecast["airTemperatureChange"] = 2
        packet["aiDifficulty"] = 95
        packet["sessionLinkIdentifier"] = sim.session_uid & 0xFFFFFFFF
        packet["gearboxAssist"] = 3
        packet["gameMode"] = GAME_MODES[sim.session_type]
        packet["ruleSet"] = RULE_SETS[sim.session_type]
        packet["timeOfDay"] = 14 * 60
        packet["sessionLength"] = 7
        packet["speedUnitsLeadPlayer"] = packet["speedUnitsSecondaryPlayer"] = 1
        packet["numSafetyCarPeriods"] = sim.safety_car_periods
        packet["numRedFlagPeriods"] = sim.red_flag_periods
        packet["safetyCar"] = 2 if sim.options.safety_car else 0
        packet["carDamage"] = 2
        packet["collisions"] = 2
        packet["numSessionsInWeekend"] = 1
        packet["weekendStructure"][0] = SESSION_TYPES[sim.session_type]
        packet["sector2LapDistanceStart"] = track.sector2_start_m
        packet["sector3LapDistanceStart"] = track.sector3_start_m
        if "numDRSZones" in packet.dtype.names:
            packet["numDRSZones"] = 1
            packet["drsZones"][0] = (0.0, track.sector2_start_m / track.length_m / 3)
        return packet.tobytes()

    def participants(self) -> bytes:
        packet = self._packet(PacketId.PARTICIPANTS)
        joined = [car for car in self.sim.cars if car.mode != "absent"]
        packet["numActiveCars"] = len(joined)
        data = packet["participants"]
        for car in joined:  # late joiners take the last slots: slot = car index
            row, driver = data[car.index], car.driver
            row["aiControlled"] = 0 if self.sim.session_type == "time_trial" else 1
            row["driverId"] = driver.driver_id
            row["networkId"] = 255
            row["teamId"] = driver.team.team_id
            row["raceNumber"] = driver.race_number
            row["nationality"] = driver.nationality
            row["name"] = _name(driver.name, NAME_LEN[self.format])
            row["yourTelemetry"] = int(car.index not in self.restricted)
            row["showOnlineNames"] = 1
            row["platform"] = 255
            if "numColours" in data.dtype.names:
                row["numColours"] = 1
                row["liveryColours"][0] = driver.team.colour
        return packet.tobytes()

    def lobby_info(self) -> bytes:
        packet = self._packet(PacketId.LOBBY_INFO)
        joined = [car for car in self.sim.cars if car.mode != "absent"]
        packet["numPlayers"] = len(joined)
        data = packet["lobbyPlayers"]
        for car in joined:  # late joiners take the last slots: slot = car index
            row, driver = data[car.index], car.driver
            row["aiControlled"] = 1
            row["teamId"] = driver.team.team_id
            row["nationality"] = driver.nationality
            row["platform"] = 255
            row["name"] = _name(driver.name, NAME_LEN[self.format])
            row["carNumber"] = driver.race_number
            row["yourTelemetry"] = int(car.index not in self.restricted)
            row["showOnlineNames"] = 1
            row["readyStatus"] = 1
        return packet.tobytes()

    def session_history(self, car: Car) -> bytes:
        packet = self._packet(PacketId.SESSION_HISTORY)
        packet["carIdx"] = car.index
        laps = car.laps
        packet["numLaps"] = min(100, len(laps) + (1 if car.status == "running" else 0))
        history = packet["lapHistoryData"]
        for i, record in enumerate(laps[:100]):
            row = history[i]
            row["lapTimeInMS"] = record.lap_time_ms
            for s, ms in enumerate(record.sector_ms, start=1):
                row[f"sector{s}TimeMSPart"] = ms % 60000
                row[f"sector{s}TimeMinutesPart"] = ms // 60000
            flags = 0x0F
            if not record.valid:
                flags &= ~0x01
                if record.invalid_sector is not None:
                    flags &= ~(0x02 << record.invalid_sector)
            row["lapValidBitFlags"] = flags
        valid = [r for r in laps if r.valid]
        if valid:
            packet["bestLapTimeLapNum"] = min(valid, key=lambda r: r.lap_time_ms).lap
            for s in range(3):
                packet[f"bestSector{s + 1}LapNum"] = min(
                    valid, key=lambda r, s=s: r.sector_ms[s]
                ).lap
        stints = _stints(car)
        packet["numTyreStints"] = len(stints)
        for i, (compound, end_lap) in enumerate(stints):
            row = packet["tyreStintsHistoryData"][i]
            row["endLap"] = end_lap
            row["tyreActualCompound"] = COMPOUNDS[compound].actual
            row["tyreVisualCompound"] = COMPOUNDS[compound].visual
        return packet.tobytes()

    def _spectated(self) -> int:
        """The car a spectator's camera follows: the leader."""
        return min(self.sim.cars, key=lambda c: c.position).index

    def tyre_sets(self, car: Car) -> bytes:
        packet = self._packet(PacketId.TYRE_SETS)
        packet["carIdx"] = car.index
        if car.index in self.restricted:  # all of it is hidden: only the car index is sent
            return packet.tobytes()
        fitted = TYRE_SETS.index(car.tyre) + (car.pit_stops if car.tyre == "soft" else 0)
        fitted_offset = COMPOUNDS[car.tyre].offset_s
        sets = packet["tyreSetData"]
        for i, name in enumerate(TYRE_SETS):
            compound = COMPOUNDS[name]
            row = sets[i]
            row["actualTyreCompound"] = compound.actual
            row["visualTyreCompound"] = compound.visual
            row["available"] = 1
            row["usableLife"] = round(100 / compound.wear_pct_per_lap)
            row["lifeSpan"] = row["usableLife"]
            row["lapDeltaTime"] = round((compound.offset_s - fitted_offset) * 1000)
            if i == fitted:
                row["fitted"] = 1
                row["wear"] = min(100, round(max(car.systems.wear)))
        for i in range(len(TYRE_SETS), 20):  # 4 intermediate and 3 wet sets
            sets[i]["actualTyreCompound"] = sets[i]["visualTyreCompound"] = 7 if i < 17 else 8
            sets[i]["available"] = 1
        packet["fittedIdx"] = fitted
        return packet.tobytes()

    def lap_positions(self) -> bytes:
        packet = self._packet(PacketId.LAP_POSITIONS)
        cars = self.sim.cars
        last_lap = max(max(car.lap_positions, default=0) for car in cars)
        start = max(0, last_lap - 50)
        packet["numLaps"] = last_lap - start
        packet["lapStart"] = start
        table = packet["positionForVehicleIdx"]
        for car in cars:
            for lap, position in car.lap_positions.items():
                if lap > start:
                    table[lap - 1 - start, car.index] = position
        return packet.tobytes()

    def time_trial(self) -> bytes:
        packet = self._packet(PacketId.TIME_TRIAL)
        car = self.sim.cars[0]
        valid = [r for r in car.laps if r.valid and not r.pit_out]
        best = min(valid, key=lambda r: r.lap_time_ms) if valid else None
        for name in ("playerSessionBestDataSet", "personalBestDataSet"):
            data = packet[name]
            data["carIdx"] = car.index
            data["teamId"] = car.driver.team.team_id
            if best is not None:
                data["lapTimeInMS"] = best.lap_time_ms
                data["sector1TimeInMS"], data["sector2TimeInMS"], data["sector3TimeInMS"] = (
                    best.sector_ms
                )
                data["valid"] = 1
        packet["rivalDataSet"]["carIdx"] = 255
        return packet.tobytes()

    def final_classification(self) -> bytes:
        packet = self._packet(PacketId.FINAL_CLASSIFICATION)
        sim = self.sim
        packet["numCars"] = len(sim.cars)
        data = packet["classificationData"]
        positions = {index: position for position, index in enumerate(sim.final_order(), start=1)}
        for i, car in enumerate(sim.cars):
            row = data[i]
            row["position"] = positions[car.index]
            row["numLaps"] = car.completed
            row["gridPosition"] = car.grid_position
            row["points"] = sim.points(car)
            row["numPitStops"] = car.pit_stops
            row["resultStatus"] = _result_status(car)
            if "resultReason" in data.dtype.names:
                row["resultReason"] = {"finished": 2, "dnf": car.retire_reason}.get(car.status, 0)
            row["bestLapTimeInMS"] = car.best_lap_ms
            row["penaltiesTime"] = min(255, car.penalty_s)
            row["numPenalties"] = sum(1 for p in car.penalties if p.get("penalty_type") == 4)
            if sim.session_type == "race" and car.status == "finished":
                # The sum of the car's lap times (whole ms), as in TRUTH.
                row["totalRaceTime"] = (_ms(car.finish_s) - _ms(sim.lights_out_s)) / 1000.0
            stints = _stints(car)[:8]
            row["numTyreStints"] = len(stints)
            for s, (compound, end_lap) in enumerate(stints):
                row["tyreStintsActual"][s] = COMPOUNDS[compound].actual
                row["tyreStintsVisual"][s] = COMPOUNDS[compound].visual
                row["tyreStintsEndLaps"][s] = end_lap
        return packet.tobytes()

    def event(self, event: SimEvent) -> bytes:
        packet = self._packet(PacketId.EVENT)
        # The model states every detail it knows; older formats lack some (RTMT's reason).
        names = event_details_dtype(self.format, event.code).names or ()
        set_event(packet, event.code, **{k: v for k, v in event.details.items() if k in names})
        return packet.tobytes()


def _every(frame: int, rate: int) -> Callable[[int], bool]:
    """frame -> whether a packet sent `n` times a second is due on this frame."""
    return lambda per_second: _due(frame, rate, per_second) > 0


def _due(frame: int, rate: int, per_second: int) -> int:
    """How many sends of a `per_second` packet fall on `frame` (frame 0 sends everything)."""
    return frame * per_second // rate - (frame - 1) * per_second // rate


def _set(data: np.ndarray, n: int, **fields: np.ndarray) -> None:
    for name, values in fields.items():
        data[name][:n] = values


def _name(text: str, size: int) -> bytes:
    raw = text.encode("utf-8")
    while len(raw) > size - 1:  # null-terminated, cut on a character boundary
        text = text[:-1]
        raw = text.encode("utf-8")
    return raw


def _stints(car: Car) -> list[tuple[str, int]]:
    stints = list(car.stints)
    if car.status == "running":
        stints.append((car.tyre, 255))  # 255: the current set
    return stints


def _driver_status(sim: RaceSim, car: Car) -> int:
    """EA's: 0 in garage, 1 flying lap, 2 in lap, 3 out lap, 4 on track."""
    if car.mode in ("garage", "grid") or car.status == "dnf":
        return 0
    if car.mode == "pit" and car.lap_pit_in:
        return 2
    if car.lap_pit_out or car.mode == "pit":
        return 3
    if sim.session_type != "race" and car.mode == "track":
        return 1
    return 4


def _result_status(car: Car) -> int:
    """EA's: 2 active, 3 finished, 7 retired."""
    return {"running": 2, "finished": 3, "dnf": 7}[car.status]
