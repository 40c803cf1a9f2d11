"""The packet layer: sizes, round trips, and field-by-field checks against independent layouts.

Independent sources: format 2025 against the f1-packets 2025.1.1 package (ctypes, written by
someone else from the same spec), every packet type, every field; formats 2024 and 2026
against packets packed here by hand with `struct` straight from the spec text.
"""

from __future__ import annotations

import ctypes
import math
import struct

import numpy as np
import pytest

from modules.f1_udp import (
    FORMATS,
    HEADER_DTYPE,
    MAX_CARS,
    PACKET_DTYPES,
    PACKET_SIZES,
    EventCode,
    PacketId,
    UnknownPacketError,
    event_details,
    event_details_dtype,
    fill_header,
    new_packet,
    packet_dtype,
    parse_packet,
    read_header,
    set_event,
)

# The spec's stated sizes, restated here so a change to either side is caught.
SPEC_SIZES = {
    2024: {0: 1349, 1: 753, 2: 1285, 3: 45, 4: 1350, 5: 1133, 6: 1352, 7: 1239, 8: 1020,
           9: 1306, 10: 953, 11: 1460, 12: 231, 13: 237, 14: 101},
    2025: {0: 1349, 1: 753, 2: 1285, 3: 45, 4: 1284, 5: 1133, 6: 1352, 7: 1239, 8: 1042,
           9: 954, 10: 1041, 11: 1460, 12: 231, 13: 273, 14: 101, 15: 1131},
    2026: {0: 1325, 1: 926, 2: 1399, 3: 45, 4: 1470, 5: 1233, 6: 1448, 7: 1445, 8: 1134,
           9: 1062, 10: 1133, 11: 1460, 12: 231, 13: 273, 14: 104, 15: 1231, 16: 269},
}  # fmt: skip

ALL_TYPES = [(fmt, pid) for fmt, sizes in SPEC_SIZES.items() for pid in sizes]


def random_datagram(rng: np.random.Generator, fmt: int, pid: int) -> bytes:
    """Random bytes of the right size for (fmt, pid), with a header naming that type."""
    data = bytearray(rng.integers(0, 256, PACKET_SIZES[(fmt, pid)], dtype=np.uint8).tobytes())
    struct.pack_into("<H", data, 0, fmt)
    data[5] = 1  # packetVersion: every type is version 1 in these specs
    data[6] = pid
    return bytes(data)


@pytest.mark.parametrize(("fmt", "pid"), ALL_TYPES)
def test_every_type_has_the_spec_size(fmt: int, pid: int) -> None:
    assert packet_dtype(fmt, pid).itemsize == SPEC_SIZES[fmt][pid]
    assert PACKET_SIZES[(fmt, pid)] == SPEC_SIZES[fmt][pid]


def test_exactly_the_spec_types_exist() -> None:
    assert set(PACKET_DTYPES) == set(ALL_TYPES)
    assert HEADER_DTYPE.itemsize == 29
    assert MAX_CARS == {2024: 22, 2025: 22, 2026: 24}


def test_unknown_format_or_id_is_a_clear_error() -> None:
    with pytest.raises(UnknownPacketError, match="unknown packet format 2023"):
        packet_dtype(2023, 0)
    with pytest.raises(UnknownPacketError, match="unknown packet id 15 in packet format 2024"):
        packet_dtype(2024, PacketId.LAP_POSITIONS)
    with pytest.raises(KeyError):  # UnknownPacketError is a KeyError for dict-like callers
        packet_dtype(2025, 16)
    with pytest.raises(UnknownPacketError, match="unknown event code 'XXXX'"):
        event_details_dtype(2025, "XXXX")


@pytest.mark.parametrize(("fmt", "pid"), ALL_TYPES)
def test_random_bytes_round_trip_exactly(fmt: int, pid: int) -> None:
    data = random_datagram(np.random.default_rng(pid), fmt, pid)
    packet = parse_packet(data)
    assert packet["header"]["packetFormat"] == fmt
    assert packet["header"]["packetId"] == pid
    assert packet.tobytes() == data


def test_wrong_sizes_and_short_datagrams_are_refused() -> None:
    good = new_packet(2025, PacketId.CAR_TELEMETRY).tobytes()
    with pytest.raises(ValueError, match="is 1352 bytes, datagram has 1351"):
        parse_packet(good[:-1])
    with pytest.raises(ValueError, match="datagram has 1353"):
        parse_packet(good + b"\0")
    with pytest.raises(ValueError, match="shorter than a header"):
        read_header(good[:28])
    with pytest.raises(UnknownPacketError):
        parse_packet(b"\xff" * 100)


def test_built_packet_has_header_and_fields_where_the_spec_puts_them() -> None:
    packet = new_packet(2025, PacketId.LAP_DATA)
    fill_header(
        packet,
        session_uid=0x0123456789ABCDEF,
        session_time=12.5,
        frame_identifier=700,
        player_car_index=19,
    )
    packet["lapData"]["lastLapTimeInMS"][1] = 83_456
    data = packet.tobytes()
    assert struct.unpack_from("<HBBBBBQfIIBB", data) == (
        2025, 25, 1, 0, 1, 2, 0x0123456789ABCDEF, 12.5, 700, 700, 19, 255
    )  # fmt: skip
    # car 1's LapData starts one 57-byte record after the header
    assert struct.unpack_from("<I", data, 29 + 57)[0] == 83_456


# ---- format 2025 against f1-packets 2025.1.1 -------------------------------------------------

f1_packets = pytest.importorskip("f1.packets")


def assert_same(ours: np.ndarray, theirs: object, path: str) -> int:
    """Walk our field tree and theirs side by side, by position; returns leaves compared."""
    dtype = ours.dtype
    if ours.ndim > 1 and len(theirs) == ours.size:  # they flatten 2-D arrays (lap positions)
        ours = ours.reshape(-1)
    if ours.ndim:
        assert len(ours) == len(theirs), path
        return sum(
            assert_same(o, t, f"{path}[{i}]")
            for i, (o, t) in enumerate(zip(ours, theirs, strict=True))
        )
    if dtype.names is not None:
        their_fields = [name for name, *_ in type(theirs)._fields_]
        assert len(dtype.names) == len(their_fields), f"{path}: {dtype.names} vs {their_fields}"
        return sum(
            assert_same(ours[name], getattr(theirs, other), f"{path}.{name}")
            for name, other in zip(dtype.names, their_fields, strict=True)
        )
    if dtype.kind == "S":
        assert bytes(ours).split(b"\0")[0] == theirs, path
        return 1
    mine = ours.item()
    if isinstance(mine, float) and math.isnan(mine):
        assert math.isnan(theirs), path
    else:
        assert mine == theirs, f"{path}: {mine} != {theirs}"
    return 1


@pytest.mark.parametrize("pid", sorted(SPEC_SIZES[2025]))
def test_format_2025_matches_f1_packets_field_by_field(pid: int) -> None:
    rng = np.random.default_rng(1000 + pid)
    for _ in range(3):
        data = random_datagram(rng, 2025, pid)
        theirs = f1_packets.resolve(data)
        assert ctypes.sizeof(theirs) == len(data)
        ours = parse_packet(data)
        if pid == PacketId.EVENT:
            # their union member, our whole packet apart from it
            assert bytes(theirs.event_string_code) == bytes(ours["eventStringCode"]).ljust(4, b"\0")
            assert_same(ours["header"], theirs.header, "header")
        else:
            assert assert_same(ours, theirs, "packet") > 10


THEIR_EVENT_MEMBERS = {
    "FTLP": "fastest_lap",
    "RTMT": "retirement",
    "DRSD": "drs_disabled",
    "TMPT": "team_mate_in_pits",
    "RCWN": "race_winner",
    "PENA": "penalty",
    "SPTP": "speed_trap",
    "STLG": "start_lights",
    "DTSV": "drive_through_penalty_served",
    "SGSV": "stop_go_penalty_served",
    "FLBK": "flashback",
    "BUTN": "buttons",
    "OVTK": "overtake",
    "SCAR": "safety_car",
    "COLL": "collision",
}


@pytest.mark.parametrize("code", list(EventCode))
def test_format_2025_event_details_match_f1_packets(code: EventCode) -> None:
    rng = np.random.default_rng(len(code.value) + ord(code.value[0]))
    data = bytearray(random_datagram(rng, 2025, PacketId.EVENT))
    data[29:33] = code.value.encode()
    ours = event_details(parse_packet(bytes(data)))
    theirs = f1_packets.resolve(bytes(data)).event_details
    member = THEIR_EVENT_MEMBERS.get(code.value)
    if member is None:
        assert ours.dtype.itemsize == 0, f"{code} has no details in the spec"
    else:
        assert assert_same(ours, getattr(theirs, member), code.value) >= 1


# ---- formats 2024 and 2026 against struct-packed bytes -------------------------------------

HEADER = "<HBBBBBQfIIBB"


def header_bytes(fmt: int, pid: int) -> bytes:
    return struct.pack(HEADER, fmt, fmt % 100, 1, 2, 1, pid, 99, 3.25, 400, 401, 5, 255)


def check_header(packet: np.ndarray, fmt: int, pid: int) -> None:
    h = packet["header"]
    assert (int(h["packetFormat"]), int(h["gameYear"]), int(h["packetId"])) == (fmt, fmt % 100, pid)
    assert (int(h["sessionUID"]), float(h["sessionTime"])) == (99, 3.25)
    assert (int(h["frameIdentifier"]), int(h["overallFrameIdentifier"])) == (400, 401)
    assert (int(h["playerCarIndex"]), int(h["secondaryPlayerCarIndex"])) == (5, 255)


LAP_DATA_STRUCT = "<IIHBHBHBHBfffBBBBBBBBBBBBBBBHHBfB"  # the spec's LapData, 57 bytes


def lap_values(car: int) -> tuple:
    return (
        80_000 + car, 1000 * car, 25_000 + car, 1, 26_000 + car, 0, 500 + car, 0, 9000 + car,
        1, 100.5 + car, 5000.25 + car, -1.5, car + 1, 3, 1, 2, 1, 0, 5, 2, 1, 0, 1, car + 2, 4,
        2, 1, 21_000, 2_400, 0, 320.5, 2,
    )  # fmt: skip


@pytest.mark.parametrize("fmt", [2024, 2026])
def test_lap_data_fields(fmt: int) -> None:
    cars = MAX_CARS[fmt]
    data = (
        header_bytes(fmt, 2)
        + b"".join(struct.pack(LAP_DATA_STRUCT, *lap_values(car)) for car in range(cars))
        + bytes([7, 9])
    )
    packet = parse_packet(data)
    check_header(packet, fmt, 2)
    for car in range(cars):
        record = packet["lapData"][car]
        assert [record[name].item() for name in record.dtype.names] == list(lap_values(car))
    assert (packet["timeTrialPBCarIdx"], packet["timeTrialRivalCarIdx"]) == (7, 9)


def test_2026_motion_quantises_g_forces_and_has_24_cars() -> None:
    car = struct.Struct("<ffffffhhhhhhhhhfff")  # 2026 CarMotionData, g-forces as int16
    data = header_bytes(2026, 0) + b"".join(
        car.pack(i, -i, 0.5, 1, 2, 3, 100, -100, 7, 8, 9, 10, 1500 + i, -2500, 980, 0.1, 0.2, 0.3)
        for i in range(24)
    )
    motion = parse_packet(data)["carMotionData"]
    assert motion["worldPositionX"].tolist() == list(range(24))
    assert motion["gForceLateral"].tolist() == [1500 + i for i in range(24)]
    assert motion["gForceLongitudinal"][23] == -2500
    assert motion["worldForwardDirY"][0] == -100
    assert motion.dtype["gForceVertical"] == np.dtype("<i2")


@pytest.mark.parametrize("fmt", [2024, 2026])
def test_participants_fields(fmt: int) -> None:
    # 2024: ids uint8, names 48 bytes, no livery; 2026: ids uint16, names 32 bytes, livery
    one = struct.Struct("<BBBBBBB48sBBHB" if fmt == 2024 else "<BHHHBBB32sBBHBB12B")

    def values(car: int) -> tuple:
        ids = (200 + car, 2, 100 + car) if fmt == 2024 else (300 + car, 2, 1000 + car)
        base = (1, *ids, 0, 44 + car, 10, f"Driver {car}".encode(), 1, 1, 7, 3)
        return base if fmt == 2024 else (*base, 2, *range(car, car + 12))

    data = header_bytes(fmt, 4) + bytes([20])
    data += b"".join(one.pack(*values(car)) for car in range(MAX_CARS[fmt]))
    packet = parse_packet(data)
    check_header(packet, fmt, 4)
    assert packet["numActiveCars"] == 20
    people = packet["participants"]
    assert people["name"][3] == b"Driver 3"
    assert people["raceNumber"][21] == 44 + 21
    assert people["platform"][0] == 3 and people["techLevel"][5] == 7
    last = MAX_CARS[fmt] - 1
    if fmt == 2026:
        assert people["driverId"][last] == 323 and people["teamId"][last] == 1023
        assert people["liveryColours"][last].tolist() == [
            (23, 24, 25), (26, 27, 28), (29, 30, 31), (32, 33, 34)
        ]  # fmt: skip
    else:
        assert people["driverId"][last] == 221 and people["teamId"][last] == 121


@pytest.mark.parametrize("fmt", [2024, 2026])
def test_car_telemetry_and_status_fields(fmt: int) -> None:
    engine_temp = "B" if fmt == 2026 else "H"
    telemetry = struct.Struct(f"<HfffBbHBBH4H4B4B{engine_temp}4f4B")
    data = header_bytes(fmt, 6) + b"".join(
        telemetry.pack(300 + c, 0.75, -0.25, 0.5, 10, -1, 11_000 + c, 1, 80, 0x7FFF,
                       *(900, 901, 902, 903 + c), *(90, 91, 92, 93), *(100, 101, 102, 103),
                       105, *(23.5, 23.25, 22.0, 22.5), *(0, 1, 2, 3))
        for c in range(MAX_CARS[fmt])
    ) + struct.pack("<BBb", 255, 3, -1)  # fmt: skip
    t = parse_packet(data)
    cars = t["carTelemetryData"]
    assert cars["speed"].tolist() == [300 + c for c in range(MAX_CARS[fmt])]
    assert cars["gear"][4] == -1 and cars["engineRPM"][2] == 11_002
    assert cars["brakesTemperature"][1].tolist() == [900, 901, 902, 904]
    assert cars["engineTemperature"][0] == 105 and cars["tyresPressure"][0][1] == 23.25
    assert (t["mfdPanelIndex"], t["mfdPanelIndexSecondaryPlayer"], t["suggestedGear"]) == (
        255,
        3,
        -1,
    )

    harvest_limit = "f" if fmt == 2026 else ""
    status = struct.Struct(f"<BBBBBfffHHBBHBBBbfffBfff{harvest_limit}B")
    data = header_bytes(fmt, 7) + b"".join(
        status.pack(2, 1, 1, 56, 0, 40.5 - c, 110.0, 12.5, 12_500, 4_000, 8, 1, 150, 17, 17, 3 + c,
                    2, 1.5e5, 1.2e5, 4e6, 1, 1e5, 2e5, 3e5, *([9e5] if fmt == 2026 else []), 0)
        for c in range(MAX_CARS[fmt])
    )  # fmt: skip
    s = parse_packet(data)["carStatusData"]
    assert s["fuelInTank"][3] == 37.5 and s["tyresAgeLaps"][5] == 8 and s["vehicleFIAFlags"][0] == 2
    assert s["ersDeployedThisLap"][0] == 3e5 and s["networkPaused"][0] == 0
    if fmt == 2026:
        assert s["ersHarvestLimitPerLap"][MAX_CARS[fmt] - 1] == 9e5


@pytest.mark.parametrize("fmt", [2024, 2026])
def test_final_classification_fields(fmt: int) -> None:
    reason = "B" if fmt >= 2025 else ""
    record = struct.Struct(f"<BBBBBB{reason}IdBBB8B8B8B")
    data = header_bytes(fmt, 8) + bytes([20]) + b"".join(
        record.pack(c + 1, 58, 20 - c % 20, 25 if c == 0 else 0, 1, 3, *([2] if reason else []),
                    81_234 + c, 5400.125 + c, 5, 1, 2, *([18, 17] + [0] * 6), *([16, 17] + [0] * 6),
                    *([20, 58] + [0] * 6))
        for c in range(MAX_CARS[fmt])
    )  # fmt: skip
    rows = parse_packet(data)["classificationData"]
    assert rows["bestLapTimeInMS"][7] == 81_241 and rows["totalRaceTime"][7] == 5407.125
    assert rows["tyreStintsEndLaps"][0].tolist()[:2] == [20, 58] and rows["points"][0] == 25
    assert ("resultReason" in rows.dtype.names) == (fmt >= 2025)


@pytest.mark.parametrize("fmt", [2024, 2026])
def test_event_details_by_code(fmt: int) -> None:
    def event(code: bytes, details: bytes) -> np.ndarray:
        return parse_packet(header_bytes(fmt, 3) + code + details.ljust(12, b"\0"))

    fastest = event_details(event(b"FTLP", struct.pack("<Bf", 7, 81.5)))
    assert (int(fastest["vehicleIdx"]), float(fastest["lapTime"])) == (7, 81.5)
    flashback = event_details(event(b"FLBK", struct.pack("<If", 12_345, 201.5)))
    assert flashback.item() == (12_345, 201.5)
    collision = event_details(event(b"COLL", bytes([3, 11, 2])))
    assert collision.item() == ((3, 11, 2) if fmt == 2026 else (3, 11))
    stop_go = event_details(event(b"SGSV", struct.pack("<Bf", 4, 10.0)))
    assert stop_go.item() == ((4, 10.0) if fmt >= 2025 else (4,))
    assert event_details(event(b"SSTA", b"")).dtype.itemsize == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_set_event_builds_what_the_parser_reads(fmt: int) -> None:
    packet = set_event(new_packet(fmt, PacketId.EVENT), "SPTP", vehicleIdx=4, speed=331.5,
                       isOverallFastestInSession=1, fastestSpeedInSession=331.5)  # fmt: skip
    data = packet.tobytes()
    assert data[29:33] == b"SPTP"
    assert struct.unpack_from("<BfBBBf", data, 33) == (4, 331.5, 1, 0, 0, 331.5)
    with pytest.raises(KeyError, match="no detail 'lapTime'"):
        set_event(new_packet(fmt, PacketId.EVENT), "SPTP", lapTime=1.0)


def test_session_history_2024_layout() -> None:
    lap = struct.Struct("<IHBHBHBB")
    data = header_bytes(2024, 11) + bytes([6, 3, 2, 2, 1, 2, 3])
    data += b"".join(
        lap.pack(90_000 + i, 30_000 + i, 0, 31_000, 0, 29_000, 0, 15) for i in range(100)
    )
    data += bytes([10, 18, 16, 255, 17, 17] + [0] * 18)
    history = parse_packet(data)
    assert history["carIdx"] == 6 and history["numLaps"] == 3
    assert history["lapHistoryData"]["lapTimeInMS"][99] == 90_099
    assert history["lapHistoryData"]["sector1TimeMSPart"][1] == 30_001
    assert history["tyreStintsHistoryData"][1].item() == (255, 17, 17)
