"""The decoder's sans-IO core and field extraction, fed bytes directly (no sockets, no LSL)."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest

from dareplane_utils.stream_watcher.outlets import encode_json
from modules.f1_udp import (
    FORMATS,
    MAX_CARS,
    PACKET_DTYPES,
    PacketId,
    fill_header,
    new_packet,
    set_event,
)
from modules.stream_catalogue import BY_PACKET_ID, CARS, STREAMS
from modules.telemetry_decoder.core import NOTICES, Datagram, DecoderCore

GAME = ("192.0.2.1", 50000)
OTHER_GAME = ("192.0.2.2", 50001)

# The contract's lap_data fields and the EA spec fields each comes from, written out by hand
# (not derived from the catalogue), with the conversion the contract asks for.
LAP_DATA_CONTRACT = {
    "last_lap_time_ms": ("lastLapTimeInMS",),
    "current_lap_time_ms": ("currentLapTimeInMS",),
    "sector1_time_ms": ("sector1TimeMSPart", "sector1TimeMinutesPart"),
    "sector2_time_ms": ("sector2TimeMSPart", "sector2TimeMinutesPart"),
    "delta_to_car_in_front_ms": ("deltaToCarInFrontMSPart", "deltaToCarInFrontMinutesPart"),
    "delta_to_race_leader_ms": ("deltaToRaceLeaderMSPart", "deltaToRaceLeaderMinutesPart"),
    "lap_distance_m": ("lapDistance",),
    "total_distance_m": ("totalDistance",),
    "safety_car_delta_s": ("safetyCarDelta",),
    "car_position": ("carPosition",),
    "current_lap_num": ("currentLapNum",),
    "pit_status": ("pitStatus",),
    "num_pit_stops": ("numPitStops",),
    "sector": ("sector",),
    "current_lap_invalid": ("currentLapInvalid",),
    "penalties_s": ("penalties",),
    "total_warnings": ("totalWarnings",),
    "corner_cutting_warnings": ("cornerCuttingWarnings",),
    "num_unserved_drive_through_pens": ("numUnservedDriveThroughPens",),
    "num_unserved_stop_go_pens": ("numUnservedStopGoPens",),
    "grid_position": ("gridPosition",),
    "driver_status": ("driverStatus",),
    "result_status": ("resultStatus",),
    "pit_lane_timer_active": ("pitLaneTimerActive",),
    "pit_lane_time_in_lane_ms": ("pitLaneTimeInLaneInMS",),
    "pit_stop_timer_ms": ("pitStopTimerInMS",),
    "pit_stop_should_serve_pen": ("pitStopShouldServePen",),
    "speed_trap_fastest_speed_kph": ("speedTrapFastestSpeed",),
    "speed_trap_fastest_lap": ("speedTrapFastestLap",),
}


def randomise(packet: np.ndarray, rng: np.random.Generator) -> None:
    """Fill every field below the header with random values of its type (floats are finite)."""
    for name in packet.dtype.names:
        if name != "header":
            _fill(packet[name], rng)


def _fill(values: np.ndarray, rng: np.random.Generator) -> None:
    if values.dtype.names:
        for name in values.dtype.names:
            _fill(values[name], rng)
    elif values.dtype.kind == "f":
        values[...] = rng.uniform(-1000, 1000, values.shape).round(2)
    elif values.dtype.kind in "iu":
        info = np.iinfo(values.dtype)
        values[...] = rng.integers(info.min, info.max, values.shape, endpoint=True)
    elif values.dtype.kind == "S":
        values[...] = b"Name"


def packet(fmt: int, packet_id: int, *, uid: int = 77, frame: int = 1, overall=None):
    p = new_packet(fmt, packet_id)
    fill_header(
        p,
        session_uid=uid,
        session_time=frame / 60,
        frame_identifier=frame,
        overall_frame_identifier=overall,
    )
    return p


def feed(core: DecoderCore, *payloads: bytes, sender=GAME) -> dict:
    pubs = core.feed([Datagram(p, sender, float(i)) for i, p in enumerate(payloads)])
    return {pub.stream: pub for pub in pubs}


def row_of(pubs: dict, stream: str, index: int = 0) -> dict[str, float]:
    labels = [c.label for c in STREAMS[stream].channels]
    return dict(zip(labels, pubs[stream].rows[index], strict=True))


@pytest.mark.parametrize("fmt", FORMATS)
def test_lap_data_fields_match_the_contract(fmt: int) -> None:
    rng = np.random.default_rng(fmt)
    p = packet(fmt, PacketId.LAP_DATA, uid=(5 << 32) + 9, frame=300, overall=310)
    randomise(p, rng)
    row = row_of(feed(DecoderCore(), p.tobytes()), "raceplane.lap_data")
    assert row["header.session_uid_hi"] == 5 and row["header.session_uid_lo"] == 9
    assert row["header.frame_identifier"] == 300
    assert row["header.overall_frame_identifier"] == 310
    assert row["header.source"] == 0 and row["header.packet_format"] == fmt
    cars = p["lapData"]
    for car in range(CARS):
        for name, (ea, *minutes) in LAP_DATA_CONTRACT.items():
            expected = float(cars[ea][car])
            if minutes:
                expected += 60_000 * float(cars[minutes[0]][car])
            assert row[f"car{car:02d}.{name}"] == expected, (car, name)
    assert row["time_trial_pb_car_idx"] == p["timeTrialPBCarIdx"]
    # exactly the contract's fields per car
    per_car = {label[6:] for label in row if label.startswith("car00.")}
    assert per_car == set(LAP_DATA_CONTRACT)


def test_every_numeric_field_of_every_type_reaches_its_stream() -> None:
    """Each per-car/numeric packet, randomised: every channel equals its source field."""
    core = DecoderCore()
    rng = np.random.default_rng(3)
    for fmt, packet_id in PACKET_DTYPES:
        stream = BY_PACKET_ID[packet_id]
        if stream.kind == "json":
            continue
        p = packet(fmt, packet_id)
        randomise(p, rng)
        row = row_of(feed(core, p.tobytes()), stream.name)
        expected_channels = 0
        for channel in stream.channels:
            if channel.label.startswith("header."):
                continue
            car, _, name = channel.label.rpartition(".")
            record = p[stream.cars_field][int(car[3:])] if car else p
            source = channel.type  # the catalogue keeps EA's field name as the channel type
            if source not in record.dtype.names:
                assert math.isnan(row[channel.label]), (fmt, channel.label)
                continue
            value = record[source]
            if value.shape == (4,):
                value = value[["rl", "rr", "fl", "fr"].index(name.rsplit("_", 1)[1])]
            expected = float(value)
            if source.endswith("MSPart"):
                expected += 60_000 * float(record[source.replace("MSPart", "MinutesPart")])
            if "Dir" in source:
                expected /= 32767
            if source.startswith("gForce") and record[source].dtype.kind == "i":
                expected /= 1000
            assert row[channel.label] == pytest.approx(expected, rel=1e-12), (fmt, channel.label)
            expected_channels += 1
        assert expected_channels > 10


def test_a_big_batch_decodes_as_every_packet_alone() -> None:
    """A socket drain of 70 packets per type (beyond the plan's 32-row scratch) gives row for
    row what one-datagram batches give, each row from its own packet."""
    rng = np.random.default_rng(11)
    batched, alone = DecoderCore(), DecoderCore()
    for fmt, packet_id in PACKET_DTYPES:
        stream = BY_PACKET_ID[packet_id]
        if stream.kind == "json":
            continue
        packets = []
        for frame in range(1, 71):
            p = packet(fmt, packet_id, uid=fmt, frame=frame)
            randomise(p, rng)
            packets.append(p.tobytes())
        rows = feed(batched, *packets)[stream.name].rows
        assert rows.shape == (70, len(stream.channels))
        singles = np.vstack([feed(alone, p)[stream.name].rows for p in packets])
        np.testing.assert_array_equal(rows, singles)
        frames = rows[:, [c.label for c in stream.channels].index("header.frame_identifier")]
        assert frames.tolist() == list(range(1, 71)), (fmt, packet_id)


def test_format_2026_g_forces_and_directions_are_scaled() -> None:
    p = packet(2026, PacketId.MOTION)
    p["carMotionData"]["gForceLateral"][4] = -2500
    p["carMotionData"]["worldForwardDirX"][4] = 32767
    row = row_of(feed(DecoderCore(), p.tobytes()), "raceplane.motion")
    assert row["car04.g_force_lateral_g"] == -2.5
    assert row["car04.world_forward_dir_x"] == 1.0
    assert MAX_CARS[2026] == 24 and "car22.g_force_lateral_g" not in row


def test_json_streams_carry_header_names_and_event_details() -> None:
    core = DecoderCore()
    session = packet(2025, PacketId.SESSION, uid=2**63 + 5)
    session["trackId"] = 11
    session["sessionType"] = 15
    session["trackLength"] = 5793
    event = packet(2025, PacketId.EVENT, uid=2**63 + 5)
    set_event(event, "FTLP", vehicleIdx=7, lapTime=81.5)
    history = packet(2025, PacketId.SESSION_HISTORY, uid=2**63 + 5)
    history["carIdx"] = 3
    history["numLaps"] = 2
    history["lapHistoryData"]["lapTimeInMS"][0] = 95_123
    history["lapHistoryData"]["sector2TimeMSPart"][0] = 1_500
    history["lapHistoryData"]["sector2TimeMinutesPart"][0] = 1
    people = packet(2025, PacketId.PARTICIPANTS, uid=2**63 + 5)
    people["participants"]["name"][2] = "Zoë Ünal".encode()
    people["participants"]["teamId"][2] = 1
    pubs = feed(core, session.tobytes(), event.tobytes(), history.tobytes(), people.tobytes())
    s = pubs["raceplane.session"].objects[0]
    assert s["header"]["session_uid"] == str(2**63 + 5)
    assert s["header"]["packet_format"] == 2025 and s["header"]["game_year"] == 25
    assert (s["track_id"], s["track_name"], s["session_type_name"]) == (11, "Monza", "Race")
    assert s["track_length_m"] == 5793 and len(s["marshal_zones"]) == 21
    e = pubs["raceplane.events"].objects[0]
    assert (e["code"], e["name"], e["vehicle_idx"], e["lap_time_s"]) == (
        "FTLP", "fastest_lap", 7, 81.5
    )  # fmt: skip
    h = pubs["raceplane.session_history"].objects[0]
    assert h["car_idx"] == 3 and h["lap_history_data"][0]["lap_time_ms"] == 95_123
    assert h["lap_history_data"][0]["sector2_time_ms"] == 61_500
    assert len(h["lap_history_data"]) == 100
    p = pubs["raceplane.participants"].objects[0]["participants"][2]
    assert (p["name"], p["team_id"], p["team_name"]) == ("Zoë Ünal", 1, "Ferrari")
    for pub in pubs.values():
        for obj in pub.objects or ():
            json.dumps(obj, allow_nan=False)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_repeated_json_packet_keeps_its_own_header_and_text(fmt: int) -> None:
    # SessionHistory goes round the cars with the same content: the core reuses what it made
    # of the part after the header, so each sample must still carry its own header, and the
    # texts it hands on must be encode_json's of the objects, byte for byte.
    core = DecoderCore()
    payloads = []
    for frame, car in ((10, 3), (11, 4), (12, 3), (13, 3)):
        history = packet(fmt, PacketId.SESSION_HISTORY, frame=frame, overall=frame + 100)
        history["carIdx"] = car
        history["numLaps"] = 1
        history["lapHistoryData"]["lapTimeInMS"][0] = 90_000 + (frame == 13)
        payloads.append(history.tobytes())
    pub = feed(core, *payloads)["raceplane.session_history"]
    fresh = feed(DecoderCore(), payloads[2])["raceplane.session_history"].objects[0]
    assert pub.objects[2] == fresh
    assert [o["header"]["frame_identifier"] for o in pub.objects] == [10, 11, 12, 13]
    assert [o["car_idx"] for o in pub.objects] == [3, 4, 3, 3]
    laps = [o["lap_history_data"][0]["lap_time_ms"] for o in pub.objects]
    assert laps == [90_000, 90_000, 90_000, 90_001]
    assert pub.texts == [encode_json(obj) for obj in pub.objects]
    assert [json.loads(text) for text in pub.texts] == pub.objects


def test_garbage_is_counted_by_reason_and_valid_packets_still_decode() -> None:
    core = DecoderCore()
    valid = packet(2025, PacketId.CAR_TELEMETRY).tobytes()
    unknown_id = bytearray(valid)
    unknown_id[6] = 40
    unknown_format = bytearray(valid)
    unknown_format[0:2] = struct.pack("<H", 2019)
    bad_event = bytearray(packet(2025, PacketId.EVENT).tobytes())
    bad_event[29:33] = b"ZZZZ"
    nan_session = packet(2025, PacketId.SESSION)
    nan_session["sector2LapDistanceStart"] = np.nan
    pubs = feed(
        core,
        b"",
        b"x" * 10,
        valid[:-1],
        valid + b"\0",
        bytes(unknown_id),
        bytes(unknown_format),
        bytes(bad_event),
        b"\xff" * 60_000,
        valid,
        nan_session.tobytes(),
    )
    assert core.rejects == {
        "too_short": 2,
        "wrong_size": 2,
        "unknown_packet_id": 1,
        "unknown_format": 2,
        "unknown_event_code": 1,
    }
    assert pubs["raceplane.car_telemetry"].rows.shape[0] == 1
    assert pubs["raceplane.session"].objects[0]["sector2_lap_distance_start_m"] is None
    report = core.reject_report(now=10.0)
    assert report is not None and "wrong_size 2 (e.g. format 2025 id 6: 1351 bytes" in report
    assert core.reject_report(now=11.0) is None  # nothing new, and rate-limited anyway


def test_sessions_flashbacks_restarts_and_drops_are_noticed() -> None:
    core = DecoderCore()

    def lap(frame: int, overall: int, uid: int = 1) -> bytes:
        return packet(2025, PacketId.LAP_DATA, uid=uid, frame=frame, overall=overall).tobytes()

    first = feed(core, lap(1, 1), lap(2, 2), lap(3, 3))
    kinds = [n["kind"] for n in first[NOTICES].objects]
    assert kinds == ["new_source", "session_started"]
    # a flashback: frame back to 2, overall keeps counting
    notices = feed(core, lap(4, 4), lap(2, 5))[NOTICES].objects
    assert notices == [{"kind": "flashback", "source": 0, "from_frame": 4, "to_frame": 2}]
    # frames 6 and 7 lost
    assert NOTICES not in feed(core, lap(3, 6), lap(6, 9))
    assert core.sources[GAME].drops == 2
    # the game restarted with the same session: overall frame far back
    restart = feed(core, lap(1, 1))[NOTICES].objects
    assert restart[0]["kind"] == "restart"
    # a new session
    new = feed(core, lap(1, 1, uid=2))[NOTICES].objects
    assert new[0]["kind"] == "session_started" and new[0]["previous_session_uid"] == "1"
    status = core.status(now=1.0)
    assert status["drops_detected"] == 2
    assert status["current_session"]["session_uid"] == "2"
    assert status["sources"][0]["flashbacks"] == 1 and status["sources"][0]["restarts"] == 1


def test_two_games_are_two_sources() -> None:
    core = DecoderCore()
    a = packet(2024, PacketId.LAP_DATA, uid=10).tobytes()
    b = packet(2025, PacketId.LAP_DATA, uid=20).tobytes()
    pubs = core.feed([Datagram(a, GAME, 1.0), Datagram(b, OTHER_GAME, 2.0)])
    rows = {pub.stream: pub for pub in pubs}["raceplane.lap_data"].rows
    labels = [c.label for c in STREAMS["raceplane.lap_data"].channels]
    source, uid = labels.index("header.source"), labels.index("header.session_uid_lo")
    assert sorted(zip(rows[:, source], rows[:, uid], strict=True)) == [(0, 10), (1, 20)]
    assert [s["address"] for s in core.status(0.0)["sources"]] == ["192.0.2.1:50000",
                                                                    "192.0.2.2:50001"]  # fmt: skip


def test_batches_give_the_same_rows_as_single_packets() -> None:
    rng = np.random.default_rng(9)
    payloads = []
    for frame in range(1, 6):
        p = packet(2025, PacketId.CAR_STATUS, frame=frame)
        randomise(p, rng)
        payloads.append(p.tobytes())
    batched = feed(DecoderCore(), *payloads)["raceplane.car_status"].rows
    single = DecoderCore()
    one_by_one = np.vstack([feed(single, p)["raceplane.car_status"].rows for p in payloads])
    np.testing.assert_array_equal(batched, one_by_one)


def simulator_datagrams(fmt: int, frames: int = 240) -> list[bytes]:
    from modules.game_sim.broadcast import Broadcaster
    from modules.game_sim.race import RaceSim, SessionOptions

    broadcaster = Broadcaster(RaceSim(SessionOptions(cars=22, rate=60, laps=1, seed=3)), fmt)
    out: list[bytes] = []
    for _ in range(frames):
        out += broadcaster.step()
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_simulator_race_decodes_field_by_field(fmt: int) -> None:
    """The game simulator's packets, read back by hand at the spec's byte offsets."""
    core = DecoderCore()
    datagrams = simulator_datagrams(fmt)
    telemetry_record = 59 if fmt == 2026 else 60  # 2026's engine temperature is one byte
    checked = 0
    for data in datagrams:
        pubs = feed(core, data)
        if data[6] == PacketId.LAP_DATA:
            row = row_of(pubs, "raceplane.lap_data")
            for car in range(CARS):
                base = 29 + 57 * car  # the spec's LapData record is 57 bytes
                last, current, s1_ms, s1_min = struct.unpack_from("<IIHB", data, base)
                lap_distance, total_distance = struct.unpack_from("<ff", data, base + 20)
                position, lap_num = data[base + 32], data[base + 33]
                assert row[f"car{car:02d}.last_lap_time_ms"] == last
                assert row[f"car{car:02d}.current_lap_time_ms"] == current
                assert row[f"car{car:02d}.sector1_time_ms"] == s1_min * 60_000 + s1_ms
                assert row[f"car{car:02d}.lap_distance_m"] == lap_distance
                assert row[f"car{car:02d}.total_distance_m"] == total_distance
                assert row[f"car{car:02d}.car_position"] == position
                assert row[f"car{car:02d}.current_lap_num"] == lap_num
            checked += 1
        elif data[6] == PacketId.CAR_TELEMETRY:
            row = row_of(pubs, "raceplane.car_telemetry")
            for car in range(CARS):
                base = 29 + telemetry_record * car
                speed, throttle, steer, brake, _, gear, rpm = struct.unpack_from(
                    "<HfffBbH", data, base
                )
                assert row[f"car{car:02d}.speed_kph"] == speed
                assert row[f"car{car:02d}.throttle"] == throttle
                assert row[f"car{car:02d}.steer"] == steer
                assert row[f"car{car:02d}.brake"] == brake
                assert row[f"car{car:02d}.gear"] == gear
                assert row[f"car{car:02d}.engine_rpm"] == rpm
            checked += 1
    assert checked >= 400
    assert not core.rejects
    assert core.packets["raceplane.session"] >= 6 and core.packets["raceplane.participants"] >= 1


def test_simulator_2025_packets_match_f1_packets() -> None:
    """Every numeric channel of the simulator's 2025 packets against f1-packets' decode."""
    f1_packets = pytest.importorskip("f1.packets")
    core = DecoderCore()
    wanted = {
        PacketId.MOTION: ("car_motion_data", "world_position_x", "car{:02d}.world_position_x_m"),
        PacketId.CAR_STATUS: ("car_status_data", "fuel_in_tank", "car{:02d}.fuel_in_tank_kg"),
        PacketId.CAR_DAMAGE: ("car_damage_data", "tyres_wear", "car{:02d}.tyres_wear_fl"),
    }
    seen = set()
    for data in simulator_datagrams(2025, frames=120):
        pubs = feed(core, data)
        if data[6] not in wanted:
            continue
        array_name, field, label = wanted[data[6]]
        stream = BY_PACKET_ID[data[6]].name
        row = row_of(pubs, stream)
        theirs = getattr(f1_packets.resolve(data), array_name)
        for car in range(CARS):
            value = getattr(theirs[car], field)
            value = value[2] if field == "tyres_wear" else value  # FL is the third wheel
            assert row[label.format(car)] == pytest.approx(value, rel=1e-7)
        seen.add(data[6])
    assert seen == set(wanted)
