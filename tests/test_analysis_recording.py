"""modules.analysis against a race recorded through the real stack (tests/analysis_support.py):
the laps table equals the simulator's TRUTH, a lap's telemetry equals what the simulator sent
(read straight from the raw capture's packets), the delta at the line equals the lap times'
difference; rotated parts in any order, files cut mid-chunk, and the raw capture itself."""

from __future__ import annotations

import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pyxdf

from modules.analysis import RecordingError, delta_time, open_recording
from modules.f1_udp import PacketId, packet_dtype
from modules.f1_udp.capture import read_capture
from modules.lap_timer.detector import RESULT_FINISHED
from tests.analysis_support import RecordedRace, record_race

FORMAT_OFFSET, ID_OFFSET = 0, 6


@pytest.fixture(scope="module")
def race(tmp_path_factory) -> RecordedRace:
    return record_race(tmp_path_factory.mktemp("analysis_race"))


@pytest.fixture(scope="module")
def session(race):
    return open_recording(*race.parts)


def truth_rows(truth: dict) -> dict[tuple[int, int], dict]:
    return {(car["car_index"], lap["lap"]): lap for car in truth["cars"] for lap in car["laps"]}


def ms(value) -> int | None:
    return None if pd.isna(value) else round(value.total_seconds() * 1000)


def table_rows(laps: pd.DataFrame) -> dict[tuple[int, int], dict]:
    rows = {}
    for row in laps.itertuples():
        rows[(row.CarIndex, row.LapNumber)] = {
            "lap": row.LapNumber,
            "lap_time_ms": ms(row.LapTime),
            "sector_ms": [ms(row.Sector1Time), ms(row.Sector2Time), ms(row.Sector3Time)],
            "valid": row.Valid,
            "pit_in": row.PitIn,
            "pit_out": row.PitOut,
            "tyre": {"SOFT": "soft", "MEDIUM": "medium", "HARD": "hard"}.get(row.Compound, ""),
        }
    return rows


def test_laps_table_equals_truth(race, session):
    assert len(race.parts) >= 3  # rotated: the loader joins the parts
    expected = truth_rows(race.truth)
    laps = [lap for lap in expected.values()]
    assert any(lap["pit_in"] for lap in laps) and any(lap["pit_out"] for lap in laps)
    assert any(not lap["valid"] for lap in laps)
    table = session.laps
    assert session.warnings == []
    assert table_rows(table) == expected
    # FastF1's columns, with their meaning: the in-lap's PitInTime, the out-lap's PitOutTime.
    assert table.loc[table["PitIn"], "PitInTime"].notna().all()
    assert table.loc[table["PitOut"], "PitOutTime"].notna().all()
    assert table.loc[~table["PitIn"], "PitInTime"].isna().all()
    assert (table["Deleted"] == ~table["Valid"]).all()
    by_car = {car["car_index"]: car for car in race.truth["cars"]}
    for row in table.itertuples():
        assert row.FullName == by_car[row.CarIndex]["driver"]
        assert row.Team  # the game's team name (format 2025 names 2026's new team generically)
        # A new stint after every in-lap; tyre life counts the laps of the stint.
        stops_before = int(
            table[(table.CarIndex == row.CarIndex) & (table.LapNumber < row.LapNumber)][
                "PitIn"
            ].sum()
        )
        assert row.Stint == 1 + stops_before
    last_laps = table.sort_values("LapNumber").groupby("CarIndex").tail(1)
    finishers = [i for i in race.truth["final_order"] if by_car[i]["status"] == "finished"]
    leaders = last_laps[last_laps["LapNumber"] == race.truth["total_laps"]]
    assert list(leaders.sort_values("Position")["CarIndex"]) == finishers


def sent_frames(capture: Path, car: int) -> dict[int, dict[str, float]]:
    """frame identifier -> what the game sent for `car` that frame, from the raw datagrams."""
    frames: dict[int, dict[str, float]] = {}
    for datagram in read_capture(capture):
        data = datagram.payload
        fmt = int.from_bytes(data[FORMAT_OFFSET : FORMAT_OFFSET + 2], "little")
        kind = data[ID_OFFSET]
        if kind not in (PacketId.LAP_DATA, PacketId.CAR_TELEMETRY, PacketId.MOTION):
            continue
        packet = np.frombuffer(data, packet_dtype(fmt, kind), count=1)[0]
        frame = frames.setdefault(int(packet["header"]["frameIdentifier"]), {})
        if kind == PacketId.LAP_DATA:
            lap = packet["lapData"][car]
            # After the flag the lap number stays: those frames are no lap's.
            finished = int(lap["resultStatus"]) == RESULT_FINISHED
            frame["lap"] = 0 if finished else int(lap["currentLapNum"])
            frame["distance"] = float(lap["lapDistance"])
        elif kind == PacketId.CAR_TELEMETRY:
            tel = packet["carTelemetryData"][car]
            frame.update(
                speed=float(tel["speed"]),
                throttle=float(tel["throttle"]),
                brake=float(tel["brake"]),
                gear=float(tel["gear"]),
                rpm=float(tel["engineRPM"]),
                drs=float(tel["drs"]),
            )
        else:
            motion = packet["carMotionData"][car]
            frame.update(x=float(motion["worldPositionX"]), z=float(motion["worldPositionZ"]))
    return frames


def test_a_laps_telemetry_equals_what_the_simulator_sent(race, session):
    lap = session.fastest_lap()
    car = int(lap["CarIndex"])
    telemetry = session.telemetry(lap)
    sent = sent_frames(race.capture, car)
    expected = {f: v for f, v in sent.items() if v.get("lap") == lap["LapNumber"]}
    assert list(telemetry["FrameIdentifier"].astype(int)) == sorted(expected)
    columns = {
        "Speed": ("speed", 1), "Throttle": ("throttle", 100), "Brake": ("brake", 100),
        "nGear": ("gear", 1), "RPM": ("rpm", 1), "DRS": ("drs", 1), "X": ("x", 1),
        "Y": ("z", 1), "Distance": ("distance", 1),
    }  # fmt: skip
    for column, (field, scale) in columns.items():
        want = np.array([expected[f][field] * scale for f in sorted(expected)])
        np.testing.assert_allclose(telemetry[column].to_numpy(), want, rtol=1e-6, err_msg=column)
    assert (telemetry["Time"].diff().dropna() > pd.Timedelta(0)).all()
    assert telemetry["Time"].iloc[-1] < lap["LapTime"]


def test_delta_at_the_line_is_the_lap_time_difference(session):
    laps = session.laps
    finishers = laps[~laps["Deleted"] & (laps["LapNumber"] == 2)]
    first, second = finishers.iloc[0], finishers.iloc[1]
    delta = delta_time(session.telemetry(first), session.telemetry(second))
    difference = (second["LapTime"] - first["LapTime"]).total_seconds()
    assert abs(delta["Delta"].iloc[-1] - difference) < 1e-3
    assert delta["Delta"].iloc[0] == 0.0
    assert delta["Distance"].is_monotonic_increasing
    # A driver's fastest lap is the least of their valid laps.
    driver = first["Driver"]
    own = laps[(laps["Driver"] == driver) & ~laps["Deleted"]]
    assert session.fastest_lap(driver)["LapTime"] == own["LapTime"].min()


def test_rotated_parts_in_any_order_and_the_raw_capture_give_the_same_laps(race, session):
    columns = ["CarIndex", "LapNumber", "LapTime", "Sector1Time", "Sector2Time", "Sector3Time",
               "Compound", "PitIn", "PitOut", "Valid", "Position", "Stint"]  # fmt: skip
    shuffled = open_recording(*reversed(race.parts))
    pd.testing.assert_frame_equal(shuffled.laps[columns], session.laps[columns])
    captured = open_recording(race.capture)
    assert captured.kind == "capture"
    key = ["CarIndex", "LapNumber"]
    mine = captured.laps[columns].sort_values(key).reset_index(drop=True)
    theirs = session.laps[columns].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, theirs)


def test_a_recording_cut_mid_chunk_loads_what_it_has(race, tmp_path):
    # The last part as a crash leaves it: cut off in the middle of a chunk.
    cut = tmp_path / "cut.xdf"
    data = race.parts[-1].read_bytes()
    cut.write_bytes(data[: len(data) // 2 + 7])
    session = open_recording(*race.parts[:-1], cut)
    assert any("incomplete" in w or "stopped" in w for w in session.warnings)
    assert len(session.laps) > 0
    expected = truth_rows(race.truth)
    for key, row in table_rows(session.laps).items():
        assert row == expected[key]  # what is there is right; nothing is made up
    shutil.copy(race.capture, tmp_path / "cut.rpcap")
    raw = (tmp_path / "cut.rpcap").read_bytes()
    (tmp_path / "cut.rpcap").write_bytes(raw[: len(raw) - 5])
    captured = open_recording(tmp_path / "cut.rpcap")
    assert any("cut" in w or "trailing" in w or "short" in w for w in captured.warnings), (
        captured.warnings
    )


def test_files_that_are_not_recordings_get_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_bytes(b"\x00\x01 some bytes that are nothing")
    with pytest.raises(RecordingError, match="neither an XDF recording"):
        open_recording(tmp_path / "notes.txt")
    with pytest.raises(RecordingError, match="cannot read"):
        open_recording(tmp_path / "missing.xdf")


# ---- an XDF file written by another program, in LabRecorder's layout -------------------------


def _chunk(tag: int, content: bytes) -> bytes:
    # LabRecorder writes every length with 4 bytes (the spec allows 1, 4 or 8).
    return bytes([4]) + struct.pack("<I", len(content) + 2) + struct.pack("<H", tag) + content


def _varlen(value: int) -> bytes:
    return bytes([4]) + struct.pack("<I", value)


def write_labrecorder_like(path: Path, streams: list[dict]) -> None:
    """A minimal XDF writer of our own, laid out as LabRecorder lays its files out: header,
    all stream headers, boundary, samples chunks of every stream in turn with a timestamp on
    every sample, clock offsets, footers. `streams`: {name, type, format, labels, stamps,
    values (rows: numbers, or one string each)}."""
    out = [b"XDF:", _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')]
    for sid, s in enumerate(streams, start=1):
        channels = "".join(f"<channel><label>{label}</label></channel>" for label in s["labels"])
        info = (
            f'<?xml version="1.0"?><info><name>{s["name"]}</name><type>{s["type"]}</type>'
            f"<channel_count>{len(s['labels'])}</channel_count><nominal_srate>0</nominal_srate>"
            f"<channel_format>{s['format']}</channel_format><source_id>{s['name']}@lab"
            "</source_id><version>1.1</version><created_at>1</created_at><uid>x</uid>"
            "<session_id>default</session_id><hostname>lab</hostname>"
            f"<desc><channels>{channels}</channels></desc></info>"
        )
        out.append(_chunk(2, struct.pack("<I", sid) + info.encode()))
    out.append(_chunk(5, bytes.fromhex("43A546DCCBF5410FB30ED5467383CBE4")))
    step = 500
    longest = max(len(s["stamps"]) for s in streams)
    for start in range(0, longest, step):
        for sid, s in enumerate(streams, start=1):
            stamps = s["stamps"][start : start + step]
            if not len(stamps):
                continue
            body = [struct.pack("<I", sid), _varlen(len(stamps))]
            for k, stamp in enumerate(stamps):
                body.append(b"\x08" + struct.pack("<d", stamp))
                row = s["values"][start + k]
                if s["format"] == "string":
                    raw = row.encode()
                    body.append(_varlen(len(raw)) + raw)
                else:
                    body.append(np.asarray(row, "<f8").tobytes())
            out.append(_chunk(3, b"".join(body)))
            out.append(_chunk(4, struct.pack("<Idd", sid, float(stamps[-1]), 0.0)))
    for sid in range(1, len(streams) + 1):
        footer = b'<?xml version="1.0"?><info><first_timestamp>0</first_timestamp></info>'
        out.append(_chunk(6, struct.pack("<I", sid) + footer))
    path.write_bytes(b"".join(out))


def test_an_xdf_from_another_program(race, session, tmp_path):
    from modules.recorder import load

    recorded = load(*race.parts)
    streams = []
    for stream in recorded.streams:
        numeric = stream.layout.dtype is not None
        streams.append(
            {
                "name": stream.name,
                "type": stream.stream_type,
                "format": "double64" if numeric else "string",
                "labels": stream.channel_labels,
                "stamps": stream.time_stamps,
                "values": stream.time_series if numeric else [r[0] for r in stream.time_series],
            }
        )
    ours = tmp_path / "labrecorder_race.xdf"
    write_labrecorder_like(ours, streams)
    loaded, _ = pyxdf.load_xdf(str(ours), synchronize_clocks=False, dejitter_timestamps=False)
    assert sorted(s["info"]["name"][0] for s in loaded) == sorted(s["name"] for s in streams)
    columns = ["CarIndex", "LapNumber", "LapTime", "Sector1Time", "Compound", "PitIn", "Valid"]
    pd.testing.assert_frame_equal(open_recording(ours).laps[columns], session.laps[columns])

    eeg = tmp_path / "eeg.xdf"
    rng = np.random.default_rng(1)
    write_labrecorder_like(
        eeg,
        [
            {"name": "EEG", "type": "EEG", "format": "double64", "labels": ["C3", "C4"],
             "stamps": np.arange(100) / 100, "values": rng.normal(size=(100, 2))},
            {"name": "Markers", "type": "Markers", "format": "string", "labels": ["m"],
             "stamps": np.array([0.5]), "values": ["start"]},
        ],
    )  # fmt: skip
    with pytest.raises(RecordingError, match=r"no raceplane .*it has: EEG, Markers"):
        open_recording(eeg)


def test_the_readme_example_runs(race, capsys):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    example = next(block for block in blocks if "open_recording" in block)
    files = ", ".join(repr(str(part)) for part in race.parts)
    assert '"recordings/race.xdf"' in example
    namespace: dict = {}
    exec(example.replace('"recordings/race.xdf"', files), namespace)
    first, second, delta = namespace["first"], namespace["second"], namespace["delta"]
    gap = (second["LapTime"] - first["LapTime"]).total_seconds()
    assert abs(delta["Delta"].iloc[-1] - gap) < 1e-3
    assert first["Driver"] in capsys.readouterr().out
