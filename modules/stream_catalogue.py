"""Every LSL stream Raceplane publishes: names, channel labels, units. The one source of truth.

The decoder publishes from this (its outlets and its field extraction both use the names made
here), consumers look channels up by these labels, and the README's stream table is
`render_markdown()`.

Naming (fixed by the stream contract):
- A field's name is the snake_case of EA's spec name without `m_`, with the unit folded in
  where EA's name lacks it (`speed` -> `speed_kph`, `lapDistance` -> `lap_distance_m`,
  `lastLapTimeInMS` -> `last_lap_time_ms`). Percentages and 0..1 fractions keep their names
  (the unit is in the channel's `desc`).
- A minutes part and a milliseconds part of one time are one `<name>_ms` value.
- Wheel arrays (order RL, RR, FL, FR) become four numeric channels `<name>_rl` ... `_fr`;
  in JSON they stay a list of four.
- Per-car numeric streams: float64, one sample per packet: the header channels, then
  `car<ii>.<field>` for ii = 00..21, car by car, then the remaining header fields and the
  packet's own (not per-car) fields. A field a packet format lacks is NaN; a car slot the game
  leaves empty is zeros.
- Scaled on the way: world direction vectors (int16, /32767) and format 2026's quantised
  g-forces (int16, /1000) are published as plain floats, the same for every format.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dareplane_utils.stream_watcher.outlets import ChannelSpec, StreamSpec
from modules.f1_udp import FORMATS, PACKET_DTYPES, PacketId, packet_dtype

USER_PREFIX = "raceplane.user."  # users' own stores (modules.live.store); not session data
CARS = 22  # the contract's car slots per numeric stream (see the 2026 note in DESIGN.md)
WHEELS = ("rl", "rr", "fl", "fr")

# The header: first the contract's channels, then the rest of EA's header at the tail.
HEADER_CHANNELS = (
    ChannelSpec("header.session_uid_hi", "", "sessionUID"),  # uint32 high half
    ChannelSpec("header.session_uid_lo", "", "sessionUID"),  # uint32 low half
    ChannelSpec("header.session_time_s", "s", "sessionTime"),
    ChannelSpec("header.frame_identifier", "", "frameIdentifier"),
    ChannelSpec("header.overall_frame_identifier", "", "overallFrameIdentifier"),
    ChannelSpec("header.player_car_index", "", "playerCarIndex"),
    ChannelSpec("header.source", "", "source"),  # which sender: 0 for the first address seen
)
HEADER_TAIL_CHANNELS = (
    ChannelSpec("header.packet_format", "", "packetFormat"),
    ChannelSpec("header.game_year", "", "gameYear"),
    ChannelSpec("header.game_major_version", "", "gameMajorVersion"),
    ChannelSpec("header.game_minor_version", "", "gameMinorVersion"),
    ChannelSpec("header.packet_version", "", "packetVersion"),
    ChannelSpec("header.secondary_player_car_index", "", "secondaryPlayerCarIndex"),
)

# EA name -> (our name, unit) where the unit must be folded in or snake_case alone is wrong.
FIELD_NAMES: dict[str, tuple[str, str]] = {
    **{f"worldPosition{a}": (f"world_position_{a.lower()}_m", "m") for a in "XYZ"},
    **{f"worldVelocity{a}": (f"world_velocity_{a.lower()}_mps", "m/s") for a in "XYZ"},
    **{f"localVelocity{a}": (f"local_velocity_{a.lower()}_mps", "m/s") for a in "XYZ"},
    **{f"angularVelocity{a}": (f"angular_velocity_{a.lower()}_radps", "rad/s") for a in "XYZ"},
    **{
        f"angularAcceleration{a}": (f"angular_acceleration_{a.lower()}_radps2", "rad/s^2")
        for a in "XYZ"
    },
    **{f"gForce{a}": (f"g_force_{a.lower()}_g", "g") for a in ("Lateral", "Longitudinal")},
    "gForceVertical": ("g_force_vertical_g", "g"),
    "yaw": ("yaw_rad", "rad"),
    "pitch": ("pitch_rad", "rad"),
    "roll": ("roll_rad", "rad"),
    "frontWheelsAngle": ("front_wheels_angle_rad", "rad"),
    "chassisYaw": ("chassis_yaw_rad", "rad"),
    "chassisPitch": ("chassis_pitch_rad", "rad"),
    "wheelCamber": ("wheel_camber_rad", "rad"),
    "wheelCamberGain": ("wheel_camber_gain_rad", "rad"),
    "lapDistance": ("lap_distance_m", "m"),
    "totalDistance": ("total_distance_m", "m"),
    "safetyCarDelta": ("safety_car_delta_s", "s"),
    "penalties": ("penalties_s", "s"),
    "speedTrapFastestSpeed": ("speed_trap_fastest_speed_kph", "km/h"),
    "speed": ("speed_kph", "km/h"),
    "fastestSpeedInSession": ("fastest_speed_in_session_kph", "km/h"),
    "engineRPM": ("engine_rpm", "rpm"),
    "maxRPM": ("max_rpm", "rpm"),
    "idleRPM": ("idle_rpm", "rpm"),
    "brakesTemperature": ("brakes_temperature_c", "degC"),
    "tyresSurfaceTemperature": ("tyres_surface_temperature_c", "degC"),
    "tyresInnerTemperature": ("tyres_inner_temperature_c", "degC"),
    "engineTemperature": ("engine_temperature_c", "degC"),
    "trackTemperature": ("track_temperature_c", "degC"),
    "airTemperature": ("air_temperature_c", "degC"),
    "tyresPressure": ("tyres_pressure_psi", "psi"),
    **{
        f"{corner}TyrePressure": (f"{snake}_tyre_pressure_psi", "psi")
        for corner, snake in (
            ("rearLeft", "rear_left"),
            ("rearRight", "rear_right"),
            ("frontLeft", "front_left"),
            ("frontRight", "front_right"),
        )
    },
    "fuelInTank": ("fuel_in_tank_kg", "kg"),
    "fuelCapacity": ("fuel_capacity_kg", "kg"),
    "drsActivationDistance": ("drs_activation_distance_m", "m"),
    "activeAeroActivationDistance": ("active_aero_activation_distance_m", "m"),
    "overtakeActivationDistance": ("overtake_activation_distance_m", "m"),
    "enginePowerICE": ("engine_power_ice_w", "W"),
    "enginePowerMGUK": ("engine_power_mguk_w", "W"),
    "ersStoreEnergy": ("ers_store_energy_j", "J"),
    "ersHarvestedThisLapMGUK": ("ers_harvested_this_lap_mguk_j", "J"),
    "ersHarvestedThisLapMGUH": ("ers_harvested_this_lap_mguh_j", "J"),
    "ersDeployedThisLap": ("ers_deployed_this_lap_j", "J"),
    "ersHarvestLimitPerLap": ("ers_harvest_limit_per_lap_j", "J"),
    "trackLength": ("track_length_m", "m"),
    "sessionTimeLeft": ("session_time_left_s", "s"),
    "sessionDuration": ("session_duration_s", "s"),
    "pitSpeedLimit": ("pit_speed_limit_kph", "km/h"),
    "timeOfDay": ("time_of_day_min", "min"),
    "timeOffset": ("time_offset_min", "min"),
    "sector2LapDistanceStart": ("sector2_lap_distance_start_m", "m"),
    "sector3LapDistanceStart": ("sector3_lap_distance_start_m", "m"),
    "startReactionTime": ("start_reaction_time_s", "s"),
    "totalRaceTime": ("total_race_time_s", "s"),
    "penaltiesTime": ("penalties_time_s", "s"),
    "lapTime": ("lap_time_s", "s"),
    "stopTime": ("stop_time_s", "s"),
    "time": ("time_s", "s"),
    "flashbackSessionTime": ("flashback_session_time_s", "s"),
    "lapDeltaTime": ("lap_delta_time_ms", "ms"),
}
_UNITS_BY_NAME = {"throttle": "0..1", "brake": "0..1", "steer": "-1..1", "clutch": "%"}
# Scales applied to integer encodings so every format publishes the same quantity.
DIRECTION_SCALE = 1 / 32767.0
G_FORCE_SCALE = 1 / 1000.0


def snake_case(ea_name: str) -> str:
    """EA's camelCase name as snake_case: `lastLapTimeInMS` -> `last_lap_time_in_ms`."""
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", ea_name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text).lower()


def field_name(ea_name: str) -> tuple[str, str]:
    """(our name, unit) of one EA field name (a MSPart name gives the combined `_ms` name)."""
    if ea_name in FIELD_NAMES:
        return FIELD_NAMES[ea_name]
    if ea_name.endswith("MSPart"):
        return snake_case(ea_name[: -len("MSPart")]) + "_ms", "ms"
    name = snake_case(ea_name)
    if name.endswith("_in_ms"):
        return name[: -len("_in_ms")] + "_ms", "ms"
    return name, _UNITS_BY_NAME.get(name, "")


def minutes_part_of(ea_name: str) -> str | None:
    """The minutes-part partner of a milliseconds-part field, if it is one."""
    return ea_name[: -len("MSPart")] + "MinutesPart" if ea_name.endswith("MSPart") else None


@dataclass(frozen=True)
class Column:
    """One numeric channel (without its `car<ii>.` prefix) and where its value comes from."""

    name: str
    unit: str
    source: str  # EA field name in the record
    index: int | None = None  # position in a wheel array
    minutes: str | None = None  # EA name of the minutes part to add (x 60000)
    scale: float = 1.0


def record_columns(record: np.dtype) -> list[Column]:
    """The numeric channels of one record (a car's struct, or a packet's own fields)."""
    columns: list[Column] = []
    for ea_name in record.names or ():
        if ea_name == "header" or ea_name.endswith("MinutesPart"):
            continue
        sub = record[ea_name]
        base = sub.base
        name, unit = field_name(ea_name)
        scale = 1.0
        if ea_name.startswith("world") and "Dir" in ea_name:
            scale = DIRECTION_SCALE
        elif ea_name.startswith("gForce") and base.kind == "i":
            scale = G_FORCE_SCALE
        if sub.shape == (len(WHEELS),):
            columns += [
                Column(f"{name}_{wheel}", unit, ea_name, i, scale=scale)
                for i, wheel in enumerate(WHEELS)
            ]
        elif sub.shape == () and base.names is None:
            columns.append(Column(name, unit, ea_name, None, minutes_part_of(ea_name), scale))
        # Nested structs and other arrays belong to per-car arrays or JSON streams, not here.
    return columns


def _union(lists: Iterator[list[Column]]) -> list[Column]:
    """Columns of every format, in the newest format's order (NaN where a format lacks one)."""
    seen: dict[str, Column] = {}
    for columns in lists:
        for column in columns:
            seen.setdefault(column.name, column)
    return list(seen.values())


@dataclass(frozen=True)
class StreamDef:
    """One stream of the catalogue."""

    name: str
    producer: str
    kind: str  # "per_car" (float64, car<ii>.<field>), "numeric" (float64), "json"
    description: str
    packet_id: PacketId | None = None
    cars_field: str | None = None  # the per-car array of a per_car stream
    channels: tuple[ChannelSpec, ...] = field(default=(), repr=False)

    def spec(self, producer_id: str) -> StreamSpec:
        """The StreamSpec of this stream as published by `producer_id` (e.g. `decoder:20777`)."""
        source_id = f"{self.name}@{producer_id}"
        if self.kind == "json":
            return StreamSpec.json(self.name, source_id, producer=self.producer)
        return StreamSpec(
            name=self.name,
            type=self.kind,
            channels=self.channels,
            source_id=source_id,
            channel_format="float64",
            metadata={"producer": self.producer, "cars": CARS if self.kind == "per_car" else 0},
        )


def formats_with(packet_id: PacketId) -> list[int]:
    """Formats that have this packet type, newest first."""
    return [fmt for fmt in reversed(FORMATS) if (fmt, packet_id) in PACKET_DTYPES]


def car_columns(packet_id: PacketId, cars_field: str) -> list[Column]:
    return _union(
        record_columns(packet_dtype(fmt, packet_id)[cars_field].base)
        for fmt in formats_with(packet_id)
    )


def packet_columns(packet_id: PacketId, cars_field: str | None) -> list[Column]:
    """The packet's own numeric fields (not the per-car array), over every format."""

    def own(fmt: int) -> list[Column]:
        dtype = packet_dtype(fmt, packet_id)
        return [c for c in record_columns(dtype) if c.source != cars_field]

    return _union(own(fmt) for fmt in formats_with(packet_id))


def _per_car(name: str, packet_id: PacketId, cars_field: str, description: str) -> StreamDef:
    cars = car_columns(packet_id, cars_field)
    per_car = [
        ChannelSpec(f"car{i:02d}.{c.name}", c.unit, c.source) for i in range(CARS) for c in cars
    ]
    own = [ChannelSpec(c.name, c.unit, c.source) for c in packet_columns(packet_id, cars_field)]
    return StreamDef(
        name,
        "telemetry_decoder",
        "per_car",
        description,
        packet_id,
        cars_field,
        (*HEADER_CHANNELS, *per_car, *HEADER_TAIL_CHANNELS, *own),
    )


def _numeric(name: str, packet_id: PacketId, description: str) -> StreamDef:
    own = [ChannelSpec(c.name, c.unit, c.source) for c in packet_columns(packet_id, None)]
    return StreamDef(
        name,
        "telemetry_decoder",
        "numeric",
        description,
        packet_id,
        None,
        (*HEADER_CHANNELS, *HEADER_TAIL_CHANNELS, *own),
    )


def _json(
    name: str, producer: str, description: str, packet_id: PacketId | None = None
) -> StreamDef:
    return StreamDef(name, producer, "json", description, packet_id)


P = PacketId
CATALOGUE: tuple[StreamDef, ...] = (
    _per_car("raceplane.motion", P.MOTION, "carMotionData", "world position, velocity, "
             "orientation and g-forces of every car"),
    _per_car("raceplane.lap_data", P.LAP_DATA, "lapData", "lap and sector times, position, "
             "distance, pit and penalty state of every car"),
    _per_car("raceplane.car_setups", P.CAR_SETUPS, "carSetupData", "every car's setup"),
    _per_car("raceplane.car_telemetry", P.CAR_TELEMETRY, "carTelemetryData", "speed, "
             "throttle, brake, gear, rpm, temperatures and pressures of every car"),
    _per_car("raceplane.car_status", P.CAR_STATUS, "carStatusData", "fuel, tyres, ERS, "
             "flags of every car"),
    _per_car("raceplane.car_damage", P.CAR_DAMAGE, "carDamageData", "wear and damage of "
             "every car"),
    _per_car("raceplane.car_telemetry_2", P.CAR_TELEMETRY_2, "carTelemetry2Data", "active "
             "aero and overtake mode of every car (format 2026 only)"),
    _numeric("raceplane.motion_ex", P.MOTION_EX, "the player car's extended motion "
             "(suspension, wheel forces and slip)"),
    _json("raceplane.session", "telemetry_decoder", "a Session packet: track (track_id, "
          "track_name), session type, weather, forecast, rules", P.SESSION),
    _json("raceplane.events", "telemetry_decoder", "an Event packet: {code, name, its "
          "details}", P.EVENT),
    _json("raceplane.participants", "telemetry_decoder", "a Participants packet: names, "
          "teams, race numbers", P.PARTICIPANTS),
    _json("raceplane.final_classification", "telemetry_decoder", "a FinalClassification "
          "packet", P.FINAL_CLASSIFICATION),
    _json("raceplane.lobby_info", "telemetry_decoder", "a LobbyInfo packet", P.LOBBY_INFO),
    _json("raceplane.session_history", "telemetry_decoder", "a SessionHistory packet (one "
          "car's laps and stints)", P.SESSION_HISTORY),
    _json("raceplane.tyre_sets", "telemetry_decoder", "a TyreSets packet (one car)",
          P.TYRE_SETS),
    _json("raceplane.time_trial", "telemetry_decoder", "a TimeTrial packet", P.TIME_TRIAL),
    _json("raceplane.lap_positions", "telemetry_decoder", "a LapPositions packet (position "
          "of every car at the start of each lap)", P.LAP_POSITIONS),
    _json("raceplane.decoder", "telemetry_decoder", "what the decoder noticed: new sender, "
          "new session, flashback, restart, detected drops"),
    _json("raceplane.laps", "lap_timer", "one completed lap"),
    _json("raceplane.standings", "lap_timer", "the standings table, on every change"),
    _json("raceplane.engineer", "engineer", "the race engineer's view: {type: cars} every "
          "car's tyres (wear, fit per stint), fuel, ERS, damage, 2026 aero, cars around, delta "
          "to best, at its rate; {type: lap} each lap's fuel, ERS and wear as it ended"),
    _json("raceplane.pit_rejoin", "engineer", "where every running car would rejoin if it "
          "pitted now (position, cars around, gaps, pit loss), every lap and under safety car"),
    _json("raceplane.livetiming", "livetiming", "one message of the F1 live timing feed as "
          "received: {topic, data, timestamp} (livetiming also fills the streams above that a "
          "real session has: lap_data, car_status, car_telemetry, motion, session, "
          "participants, events)"),
)  # fmt: skip

STREAMS: dict[str, StreamDef] = {s.name: s for s in CATALOGUE}
BY_PACKET_ID: dict[int, StreamDef] = {
    int(s.packet_id): s for s in CATALOGUE if s.packet_id is not None
}
assert len(BY_PACKET_ID) == len(PacketId), "every packet type must reach a stream"


def render_markdown() -> str:
    """The README's stream table."""
    lines = ["| stream | producer | format | one sample is |", "|---|---|---|---|"]
    for s in CATALOGUE:
        fmt = "string (JSON)" if s.kind == "json" else f"float64, {len(s.channels)} channels"
        lines.append(f"| `{s.name}` | {s.producer} | {fmt} | {s.description} |")
    return "\n".join(lines)


README_BEGIN = "<!-- stream-catalogue:begin -->"
README_END = "<!-- stream-catalogue:end -->"


def with_catalogue(readme: str) -> str:
    """`readme` with the stream table between its catalogue markers replaced by the current one."""
    head, begin, rest = readme.partition(README_BEGIN)
    _, end, tail = rest.partition(README_END)
    if not (begin and end):
        raise ValueError(f"the README has no {README_BEGIN} ... {README_END} block")
    return f"{head}{README_BEGIN}\n{render_markdown()}\n{README_END}{tail}"


def main(argv: list[str] | None = None) -> int:
    """`raceplane streams [STREAM]`: the stream table, or one stream's channels and units."""
    args = list(argv or [])
    if not args:
        print(render_markdown())
        return 0
    if args[0] in ("-h", "--help"):
        print(
            "usage: raceplane streams [STREAM]   (the table, or one stream's channels)\n"
            "       raceplane streams --write-readme README.md   (refresh the README's table)"
        )
        return 0
    if args[0] == "--write-readme" and len(args) == 2:
        readme = Path(args[1])
        readme.write_text(with_catalogue(readme.read_text()))
        return 0
    stream = STREAMS.get(args[0]) or STREAMS.get(f"raceplane.{args[0]}")
    if stream is None:
        print(f"raceplane streams: no stream {args[0]!r}; see `raceplane streams`", file=sys.stderr)
        return 2
    if stream.kind == "json":
        print(f"{stream.name}: one JSON object per sample ({stream.description})")
    for channel in stream.channels:
        print(f"{channel.label}\t{channel.unit}\t{channel.type}")
    return 0
