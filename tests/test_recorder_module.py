"""The recorder as its users meet it: a module process over TCP, and the `raceplane` CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import pyxdf

from dareplane_utils.client.module_client import ModuleClient, ModuleError
from dareplane_utils.testing import free_port, wait_until
from modules.recorder import load
from modules.recorder.loader import iter_chunks
from modules.recorder.publish import expected_strings, expected_values, stamps
from tests.recorder_support import expect, publish


def stream_samples(client: ModuleClient, name: str) -> int:
    return sum(s["samples"] for s in client.request("STATUS")["streams"] if s["name"] == name)


@pytest.fixture
def module(spawn, tmp_path: Path):
    port = free_port()
    setup = tmp_path / "setup.toml"
    setup.write_text('[modules.recorder]\nkind = "recorder"\n')
    process = spawn(
        "modules.recorder",
        *("--port", str(port), "--save-path", str(tmp_path / "rec"), "--setup", str(setup)),
    )
    client = ModuleClient("127.0.0.1", port).connect(retries=100)
    yield process, client
    client.close()


def test_commands_over_tcp_record_a_loadable_file(module, spawn, tmp_path):
    process, client = module
    assert set(client.pcomms) >= {
        "RECORD",
        "STOPRECORD",
        "SELECT",
        "SET_SAVE_PATH",
        "UPDATE",
        "STATUS",
    }
    (tmp_path / "plain").write_text("")
    with pytest.raises(ModuleError, match=r"cannot use .* as save path"):
        client.request("SET_SAVE_PATH", {"path": str(tmp_path / "plain" / "x")})
    assert client.request("SET_SAVE_PATH", {"path": str(tmp_path / "out")}) == str(tmp_path / "out")
    with pytest.raises(ModuleError, match="not recording"):
        client.request("STOPRECORD")
    assert client.request("STOP")["recording"] is False  # STOP is for everyone: never refused
    with pytest.raises(ModuleError, match="identifiers"):
        client.request("RECORD", {"filename": "x.xdf", "bad key": 1})
    # RECORD during a recording closes it and starts the new file, and says what it closed.
    first = client.request("RECORD", {"filename": "first.xdf"})
    assert first == {"file": str(tmp_path / "out" / "first.xdf")}
    with pytest.raises(ModuleError, match=r"already recording to .*first\.xdf"):
        client.request("RECORD", {"filename": "first.xdf"})
    started = client.request("RECORD", {"filename": "tcp.xdf", "track": "Monza"})
    assert started["file"] == str(tmp_path / "out" / "tcp.xdf")
    assert started["closed"]["file"] == first["file"] and started["closed"]["error"] is None
    assert set(started["closed"]) == {
        "file", "files", "duration_s", "samples", "bytes", "streams", "error"
    }  # fmt: skip
    load(first["file"])  # closed whole
    assert client.request("STATUS")["file"] == started["file"]
    publisher = publish(
        spawn,
        "raceplane.events",
        "--format",
        "string",
        "--rate",
        "0",
        "--count",
        "30",
        "--chunk",
        "1",
        "--push-rate",
        "100",
        "--t0",
        "5.0",
    )
    assert [s["name"] for s in client.request("UPDATE", timeout=10)] == ["raceplane.events"]
    expect(publisher, "done")
    wait_until(lambda: stream_samples(client, "raceplane.events") == 30)
    summary = client.request("STOPRECORD", timeout=30)
    assert summary["recording"] is False and summary["samples"] == 30 and summary["bytes"] > 0
    streams, header = pyxdf.load_xdf(str(tmp_path / "out" / "tcp.xdf"))
    assert streams[0]["time_series"] == [[text] for text in expected_strings(0, 30)]
    session = header["info"]["session"][0]
    assert session["track"] == ["Monza"]
    assert session["setup_file"] == [str(tmp_path / "setup.toml")]
    assert session["setup"] == ['[modules.recorder]\nkind = "recorder"\n']
    client.send("CLOSE")
    assert process.wait(timeout=20) == 0


def test_sigkill_mid_recording_keeps_everything_up_to_the_last_chunk(module, spawn, tmp_path):
    process, client = module
    publisher = publish(
        spawn,
        "raceplane.motion",
        "--channels",
        "16",
        "--rate",
        "1000",
        "--count",
        "1000000",
        "--push-rate",
        "2000",
        "--chunk",
        "20",
        "--t0",
        "300.0",
    )
    client.request("RECORD", {"filename": "killed.xdf"})
    wait_until(lambda: stream_samples(client, "raceplane.motion") > 3000, timeout=30)
    path = tmp_path / "rec" / "killed.xdf"
    before = stream_samples(client, "raceplane.motion")
    # What STATUS counted reaches the file within a writer loop: the loader sees it, mid-write.
    wait_until(lambda: len(load(path).stream("raceplane.motion")) >= before)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    publisher.send_signal(signal.SIGTERM)
    data = path.read_bytes()
    good_end = max(item.end for item in iter_chunks(data))
    assert len(data) - good_end < 1 << 20  # at most a partly written chunk after the last whole one
    stream = load(path).stream("raceplane.motion")
    assert len(stream) >= before
    np.testing.assert_array_equal(stream.time_stamps, stamps(0, len(stream), 300.0, 1000))
    np.testing.assert_array_equal(stream.time_series, expected_values(0, len(stream), 16))


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modules.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parent.parent,
    )


def test_record_and_inspect_from_the_command_line(spawn, tmp_path):
    path = tmp_path / "cli.xdf"
    publisher = publish(
        spawn, "raceplane.car_telemetry", "--count", "300", "--push-rate", "300", "--t0", "1.0"
    )
    recording = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modules.cli",
            "record",
            str(path),
            "--streams",
            "raceplane.car_*",
            "--idle-timeout",
            "1.5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    expect(publisher, "done")
    out, err = recording.communicate(timeout=60)
    assert recording.returncode == 0, err
    assert "no data for 1.5 s; stopping" in out
    assert "300 samples" in out.splitlines()[-1]
    inspected = run_cli("inspect", str(path))
    assert inspected.returncode == 0, inspected.stderr
    row = next(
        line for line in inspected.stdout.splitlines() if line.startswith("raceplane.car_telemetry")
    )
    assert row.split()[1:6] == ["check", "4", "float32", "300", "2.990"]
    assert float(row.split()[6]) == pytest.approx(100.0)
    # --append continues the same file; the second run's stream joins the first in load().
    os.killpg(publisher.pid, signal.SIGKILL)
    publisher.wait()
    again = publish(
        spawn,
        "raceplane.car_telemetry",
        "--count",
        "100",
        "--start",
        "300",
        "--push-rate",
        "300",
        "--t0",
        "1.0",
    )
    second = subprocess.Popen(
        # --timeout: the old spelling of --idle-timeout still works.
        [sys.executable, "-m", "modules.cli", "record", str(path), "--append", "--timeout", "1.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    expect(again, "done")
    assert second.wait(timeout=60) == 0
    stream = load(path).stream("raceplane.car_telemetry")
    np.testing.assert_array_equal(stream.time_series, expected_values(0, 400, 4))
    assert "400" in run_cli("inspect", str(path)).stdout


def test_record_duration_stops_by_itself_while_data_keeps_coming(spawn, tmp_path):
    path = tmp_path / "timed.xdf"
    publish(spawn, "raceplane.car_telemetry", "--count", "100000000", "--push-rate", "100")
    done = run_cli(
        "record", str(path), "--streams", "raceplane.car_*", "--duration", "2", timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "recorded for 2 s; stopping" in done.stdout
    load(path)  # a whole file, closed cleanly (how much data it has depends on the machine)


def test_cli_errors_are_clear(tmp_path):
    (tmp_path / "plain").write_text("")
    done = run_cli("record", str(tmp_path / "plain" / "x.xdf"))
    assert done.returncode == 1 and "is not a directory" in done.stderr
    (tmp_path / "junk.xdf").write_bytes(b"hello")
    done = run_cli("inspect", str(tmp_path / "junk.xdf"))
    assert done.returncode == 1 and "not an XDF file" in done.stderr
