"""The simulator's packets, decoded with modules.f1_udp, against the simulator's own TRUTH."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

from modules.f1_udp.events import event_details
from modules.f1_udp.packets import PACKET_DTYPES, PACKET_SIZES, PacketId, parse_packet
from modules.game_sim.broadcast import Broadcaster
from modules.game_sim.race import RaceSim, SessionOptions


def broadcast(options: SessionOptions, packet_format: int = 2025) -> tuple[RaceSim, list[bytes]]:
    sim = RaceSim(options)
    broadcaster = Broadcaster(sim, packet_format)
    datagrams: list[bytes] = []
    while not sim.over:
        datagrams += broadcaster.step()
    return sim, datagrams


@pytest.fixture(scope="module")
def race():
    sim, datagrams = broadcast(
        SessionOptions(cars=22, laps=3, seed=4, rate=20, retirements=1, safety_car=True)
    )
    return sim, sim.truth(), [parse_packet(d) for d in datagrams], datagrams


def of_kind(packets, packet_id):
    return [p for p in packets if p["header"]["packetId"] == packet_id]


def ms(packet_row, prefix):
    return int(packet_row[f"{prefix}MSPart"]) + 60_000 * int(packet_row[f"{prefix}MinutesPart"])


@pytest.mark.parametrize("packet_format", [2024, 2025, 2026])
def test_every_packet_type_of_the_format_with_its_size(packet_format):
    ids = Counter()
    for options in (
        SessionOptions(cars=20, laps=1, seed=2, rate=10),
        SessionOptions(session="time_trial", laps=1, seed=2, rate=10),
    ):
        _, datagrams = broadcast(options, packet_format)
        for datagram in datagrams:
            packet = parse_packet(datagram)  # raises on a wrong size or an unknown id
            header = packet["header"]
            assert header["packetFormat"] == packet_format
            assert header["gameYear"] == packet_format % 100
            assert len(datagram) == PACKET_SIZES[(packet_format, int(header["packetId"]))]
            ids[int(header["packetId"])] += 1
    assert set(ids) == {pid for fmt, pid in PACKET_DTYPES if fmt == packet_format}
    assert ids[PacketId.FINAL_CLASSIFICATION] == 2  # once per session


def test_send_pattern_follows_the_game(race):
    sim, _, packets, _ = race
    frames = sim.frame + 1  # frame 0 included
    counts = Counter(int(p["header"]["packetId"]) for p in packets)
    for per_frame in (
        PacketId.MOTION,
        PacketId.LAP_DATA,
        PacketId.CAR_TELEMETRY,
        PacketId.CAR_STATUS,
        PacketId.MOTION_EX,
    ):
        assert counts[per_frame] == frames
    seconds = frames / sim.rate
    assert abs(counts[PacketId.SESSION] - 2 * seconds) <= 1
    assert abs(counts[PacketId.CAR_SETUPS] - 2 * seconds) <= 1
    assert abs(counts[PacketId.CAR_DAMAGE] - 10 * seconds) <= 1
    assert abs(counts[PacketId.PARTICIPANTS] - seconds / 5) <= 1
    assert abs(counts[PacketId.SESSION_HISTORY] - 20 * seconds) <= 1
    assert abs(counts[PacketId.LAP_POSITIONS] - seconds) <= 1
    history_cars = [int(p["carIdx"]) for p in of_kind(packets, PacketId.SESSION_HISTORY)]
    assert history_cars[:44] == list(range(22)) * 2  # cycling through the cars
    first_frame = [
        int(p["header"]["packetId"]) for p in packets if p["header"]["frameIdentifier"] == 0
    ]
    assert {PacketId.SESSION, PacketId.PARTICIPANTS, PacketId.LAP_DATA, PacketId.MOTION} <= set(
        first_frame
    )


def test_headers_carry_session_uid_time_and_frames(race):
    _, truth, packets, _ = race
    assert {int(p["header"]["sessionUID"]) for p in packets} == {int(truth["session_uid"])}
    motion = of_kind(packets, PacketId.MOTION)
    frames = [int(p["header"]["frameIdentifier"]) for p in motion]
    assert frames == list(range(len(motion)))
    times = np.array([float(p["header"]["sessionTime"]) for p in motion])
    assert np.all(np.diff(times) > 0)


def test_lap_data_last_lap_times_equal_truth_exactly(race):
    _, truth, packets, _ = race
    seen: dict[int, list[int]] = defaultdict(list)
    sectors: dict[int, list[tuple[int, int]]] = defaultdict(list)
    previous = None
    for packet in of_kind(packets, PacketId.LAP_DATA):
        rows = packet["lapData"]
        for car in truth["cars"]:
            i = car["car_index"]
            key = (int(rows[i]["currentLapNum"]), int(rows[i]["lastLapTimeInMS"]))
            if previous is not None and key != previous[i][0] and key[1]:
                seen[i].append(key[1])
                sectors[i].append(previous[i][1])
        previous = {
            car["car_index"]: (
                (
                    int(rows[car["car_index"]]["currentLapNum"]),
                    int(rows[car["car_index"]]["lastLapTimeInMS"]),
                ),
                (
                    ms(rows[car["car_index"]], "sector1Time"),
                    ms(rows[car["car_index"]], "sector2Time"),
                ),
            )
            for car in truth["cars"]
        }
    for car in truth["cars"]:
        i = car["car_index"]
        assert seen[i] == [lap["lap_time_ms"] for lap in car["laps"]], car["driver"]
        # Just before the line, LapData showed this lap's first two sectors.
        assert sectors[i] == [tuple(lap["sector_ms"][:2]) for lap in car["laps"]], car["driver"]


def test_session_history_equals_truth_exactly(race):
    _, truth, packets, _ = race
    latest = {}
    for packet in of_kind(packets, PacketId.SESSION_HISTORY):
        latest[int(packet["carIdx"])] = packet
    for car in truth["cars"]:
        packet = latest[car["car_index"]]
        laps = car["laps"]
        assert packet["numLaps"] == len(laps)
        for row, lap in zip(packet["lapHistoryData"], laps, strict=False):
            assert int(row["lapTimeInMS"]) == lap["lap_time_ms"]
            assert [ms(row, f"sector{s}Time") for s in (1, 2, 3)] == lap["sector_ms"]
            assert bool(row["lapValidBitFlags"] & 1) == lap["valid"]
        stints = packet["tyreStintsHistoryData"][: int(packet["numTyreStints"])]
        visual = {16: "soft", 17: "medium", 18: "hard"}
        assert visual[int(stints[0]["tyreVisualCompound"])] == laps[0]["tyre"]
        assert visual[int(stints[-1]["tyreVisualCompound"])] == laps[-1]["tyre"]


def test_final_classification_equals_truth(race):
    _, truth, packets, datagrams = race
    (final,) = of_kind(packets, PacketId.FINAL_CLASSIFICATION)
    rows = final["classificationData"]
    assert final["numCars"] == 22
    order = sorted(range(22), key=lambda i: int(rows[i]["position"]))
    assert order == truth["final_order"]
    for car in truth["cars"]:
        row = rows[car["car_index"]]
        assert row["numLaps"] == len(car["laps"])
        assert row["resultStatus"] == {"finished": 3, "dnf": 7}[car["status"]]
        valid = [lap["lap_time_ms"] for lap in car["laps"] if lap["valid"]]
        assert row["bestLapTimeInMS"] == (min(valid) if valid else 0)
    assert sum(int(rows[i]["points"]) for i in range(22)) == 101
    assert parse_packet(datagrams[-1])["eventStringCode"] == b"SEND"


def test_participants_name_the_truth(race):
    _, truth, packets, _ = race
    participants = of_kind(packets, PacketId.PARTICIPANTS)[-1]
    assert participants["numActiveCars"] == 22
    for car in truth["cars"]:
        row = participants["participants"][car["car_index"]]
        assert row["name"].decode("utf-8") == car["driver"]
        assert row["raceNumber"] == car["race_number"]


def test_events_decode_with_their_details(race):
    _, truth, packets, _ = race
    events = defaultdict(list)
    for packet in of_kind(packets, PacketId.EVENT):
        events[packet["eventStringCode"].item().decode("ascii")].append(event_details(packet))
    assert {"SSTA", "STLG", "LGOT", "FTLP", "RTMT", "SCAR", "CHQF", "RCWN", "SPTP", "SEND"} <= set(
        events
    )
    dnf = [car["car_index"] for car in truth["cars"] if car["status"] == "dnf"]
    assert [int(d["vehicleIdx"]) for d in events["RTMT"]] == dnf
    assert [int(d["reason"]) for d in events["RTMT"]] == [8]  # mechanical failure
    fastest = events["FTLP"][-1]
    best = truth["cars"][int(fastest["vehicleIdx"])]["laps"]
    assert any(abs(float(fastest["lapTime"]) * 1000 - lap["lap_time_ms"]) < 0.01 for lap in best)
    assert [int(d["numLights"]) for d in events["STLG"]] == [1, 2, 3, 4, 5]
    assert int(events["RCWN"][0]["vehicleIdx"]) == truth["final_order"][0]


def test_world_positions_trace_the_circuit(race):
    sim, _, packets, _ = race
    line = sim.track.line
    motion = of_kind(packets, PacketId.MOTION)[-200]
    xs = motion["carMotionData"]["worldPositionX"][:22]
    zs = motion["carMotionData"]["worldPositionZ"][:22]
    # Every car is on the centre line or beside it (pit lane 18 m off), never elsewhere.
    distance = np.min(
        np.hypot(xs[:, None] - line.x[None, :], zs[:, None] - line.z[None, :]), axis=1
    )
    assert np.all(distance < 25.0)
    speeds = of_kind(packets, PacketId.CAR_TELEMETRY)[-200]["carTelemetryData"]["speed"][:22]
    assert speeds.max() > 60


def test_same_seed_same_bytes():
    options = SessionOptions(cars=20, laps=1, seed=9, rate=10)
    _, first = broadcast(options)
    _, second = broadcast(SessionOptions(**vars(options)))
    assert first == second


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="packet format must be one of"):
        Broadcaster(RaceSim(SessionOptions()), 2023)
