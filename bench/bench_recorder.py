"""Recorder benchmark: Raceplane's recorder and LabRecorder record the same streams, same run.

LabRecorder is PyPI's `labrecorder` (Python bindings of LabRecorder's recording code, with the
liblsl 1.17 in its wheel) in its own venv under .bench/, driven by this same file in `child`
mode. Each recorder runs as a child process; the publisher (modules.recorder.publish, another
process) sends values and timestamps known in advance, so loss and duplicates are counted
exactly from the files with pyxdf.

Two cases:
- flat out: 10 streams x 8 float32 channels, pushed as fast as the publisher can. Reported:
  samples/s and MB/s from the publisher's first sample until the file stops growing, the
  recorder's CPU seconds per million samples, loss, file size, pyxdf load time.
- demo rate: what `make demo` sends (per-car numeric streams at 60 Hz, JSON streams at a few
  Hz) for 10 s; reported: the recorder's CPU use in % of one core.
- subscribe: 20 streams already publishing when recording starts (a stack's ~20); reported:
  seconds from the start until the first and the last of them has samples in the file.

`python bench/bench_recorder.py [--quick]`
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LABRECORDER = ["labrecorder==1.0.0rc0", "pylsl>=1.17,<1.18", "numpy"]


def child(kind: str, path: str, pattern: str, streams: int) -> int:
    """Record `streams` streams whose names start with `pattern` until a line arrives on stdin."""
    print("starting", flush=True)
    if kind == "ours":
        from modules.recorder.engine import Recorder, RecorderSettings

        recorder = Recorder(RecorderSettings(patterns=[pattern + "*"], scan_interval=0.2))
        recorder.record(path)
        while len(recorder.status()["streams"]) < streams:
            time.sleep(0.01)
        stop = recorder.stop_record
    else:
        import labrecorder
        import pylsl

        infos = pylsl.resolve_bypred(f"starts-with(name,'{pattern}')", streams, 60)
        if len(infos) < streams:
            print(f"failed: found {len(infos)} of {streams} streams", flush=True)
            return 1
        recording = labrecorder.Recording(path, infos)
        stop = recording.stop
    before = resource.getrusage(resource.RUSAGE_SELF)
    print("recording", flush=True)
    sys.stdin.readline()
    stop()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print("stopped " + json.dumps({"cpu_s": cpu}), flush=True)
    return 0


class Lines:
    """A child process's stdout as lines, read by a thread so waiting never blocks on a pipe."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process
        self.lines: list[tuple[float, str]] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._changed:
                self.lines.append((time.perf_counter(), line.strip()))
                self._changed.notify_all()
        with self._changed:
            self.lines.append((time.perf_counter(), "<eof>"))
            self._changed.notify_all()

    def wait(self, prefix: str, timeout: float = 120.0) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for when, line in self.lines:
                    if line.startswith(prefix):
                        return when, line
                    if line == "<eof>" or line.startswith("failed"):
                        raise RuntimeError(
                            f"child ended before {prefix!r}: {[text for _, text in self.lines]}"
                        )
                if not self._changed.wait(max(0.0, deadline - time.monotonic())):
                    raise RuntimeError(
                        f"no {prefix!r} within {timeout} s: {[text for _, text in self.lines]}"
                    )


def lsl_config(directory: Path) -> Path:
    # A port range of our own: with many LSL processes on this machine the default range
    # (16572 + 32) is full, and outlets outside it are not found by unicast resolves, which
    # is all that works when loopback has no multicast. KnownPeers makes resolves unicast.
    base_port = 24_000 + 128 * random.randrange(200)
    path = directory / "lsl_api.cfg"
    path.write_text(
        f"[ports]\nBasePort = {base_port}\nPortRange = 64\nIPv6 = disable\n\n"
        "[multicast]\nResolveScope = machine\n\n"
        f"[lab]\nSessionID = bench-{uuid.uuid4().hex}\nKnownPeers = {{127.0.0.1}}\n\n"
        "[log]\nlevel = -2\n"
    )
    return path


@dataclass
class Publisher:
    args: list[str]
    streams: int
    count: int
    channels: int


def record_case(
    kind: str, python: Path, publishers: list[Publisher], work: Path, pattern: str
) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if kind == "labrecorder":
        libs = python.parent.parent / "lib" / "python3.11" / "site-packages" / "labrecorder.libs"
        env["PYLSL_LIB"] = str(next(libs.glob("liblsl*")))
    path = work / f"{kind}-{uuid.uuid4().hex[:6]}.xdf"
    started = []
    for publisher in publishers:
        process = subprocess.Popen(
            [sys.executable, "-m", "modules.recorder.publish", *publisher.args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append((process, Lines(process)))
        started[-1][1].wait("ready")
    recorder = subprocess.Popen(
        [
            str(python),
            __file__,
            "child",
            kind,
            str(path),
            pattern,
            str(sum(p.streams for p in publishers)),
        ],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    recorder_lines = Lines(recorder)
    try:
        recorder_lines.wait("recording")
        began = time.perf_counter()
        go = min(lines.wait("go")[0] for _, lines in started)
        pushed = max(lines.wait("done", timeout=600)[0] for _, lines in started)
        last_growth = _wait_for_plateau(path, quiet=1.5)
        recorder.stdin.write("stop\n")
        recorder.stdin.flush()
        _, line = recorder_lines.wait("stopped", timeout=120)
        ended = time.perf_counter()
        recorder.wait(timeout=60)
    finally:
        for process, _ in started:
            process.terminate()
            process.wait(timeout=10)
        if recorder.poll() is None:
            recorder.kill()
    cpu = json.loads(line.split(" ", 1)[1])["cpu_s"]
    expected = sum(p.streams * p.count for p in publishers)
    load_began = time.perf_counter()
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=False, dejitter_timestamps=False)
    load_s = time.perf_counter() - load_began
    got = sum(len(s["time_stamps"]) for s in streams)
    unique = sum(len(set(s["time_stamps"].tolist())) for s in streams)
    return {
        "expected": expected,
        "samples": got,
        "lost": expected - unique,
        "duplicates": got - unique,
        "cpu_s": cpu,
        "wall_s": ended - began,
        "push_s": pushed - go,
        "drain_s": max(last_growth, pushed) - go,
        "bytes": path.stat().st_size,
        "load_s": load_s,
    }


def subscribe_case(kind: str, python: Path, work: Path, streams: int = 20) -> list[float]:
    """Seconds from the recorder's start until each stream's first samples are in its file."""
    from modules.recorder.loader import load

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if kind == "labrecorder":
        libs = python.parent.parent / "lib" / "python3.11" / "site-packages" / "labrecorder.libs"
        env["PYLSL_LIB"] = str(next(libs.glob("liblsl*")))
    path = work / f"subscribe-{kind}-{uuid.uuid4().hex[:6]}.xdf"
    name = f"raceplane.sub{uuid.uuid4().hex[:6]}"
    # --wait-consumers 0: publishing from the start, whether anyone listens or not.
    publisher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modules.recorder.publish",
            "--name",
            name,
            "--streams",
            str(streams),
            "--count",
            "100000000",
            "--push-rate",
            "100",
            "--chunk",
            "1",
            "--wait-consumers",
            "0",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    Lines(publisher).wait("go")
    recorder = subprocess.Popen(
        [str(python), __file__, "child", kind, str(path), name, str(streams)],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines = Lines(recorder)
    first: dict[str, float] = {}
    try:
        began, _ = lines.wait("starting")
        deadline = time.perf_counter() + 120
        while len(first) < streams and time.perf_counter() < deadline:
            if path.exists():
                for stream in load(path).streams:
                    if len(stream) and stream.name not in first:
                        first[stream.name] = time.perf_counter() - began
            time.sleep(0.02)
        lines.wait("recording")
        recorder.stdin.write("stop\n")
        recorder.stdin.flush()
        lines.wait("stopped", timeout=120)
    finally:
        publisher.terminate()
        publisher.wait(timeout=10)
        if recorder.poll() is None:
            recorder.kill()
    if len(first) < streams:
        raise RuntimeError(f"only {len(first)} of {streams} streams reached the file in 120 s")
    return sorted(first.values())


def _wait_for_plateau(path: Path, quiet: float) -> float:
    """When the file last grew, once it has not grown for `quiet` seconds."""
    size, changed = -1, time.perf_counter()
    while time.perf_counter() - changed < quiet:
        now_size = path.stat().st_size if path.exists() else 0
        if now_size != size:
            size, changed = now_size, time.perf_counter()
        time.sleep(0.01)
    return changed


def main() -> int:
    quick = "--quick" in sys.argv
    from peers import peer_python, print_table

    work = Path(tempfile.mkdtemp(prefix="bench-recorder-"))
    os.environ["LSLAPICFG"] = str(lsl_config(work))
    os.environ["RACEPLANE_LSL_ISOLATED"] = "1"
    recorders: list[tuple[str, Path]] = [("raceplane", Path(sys.executable))]
    try:
        recorders.append(("labrecorder", peer_python("labrecorder", LABRECORDER)))
    except (subprocess.CalledProcessError, OSError) as error:
        print(f"LabRecorder cannot run here: installing {LABRECORDER} failed: {error}")

    count = 30_000 if quick else 300_000
    flat = [
        Publisher(
            [
                "--name",
                "raceplane.flat",
                "--streams",
                "10",
                "--channels",
                "8",
                "--rate",
                "1000",
                "--count",
                str(count),
                "--chunk",
                "1000",
                "--push-rate",
                "0",
            ],
            10,
            count,
            8,
        )
    ]
    seconds = 3 if quick else 10
    demo = [
        Publisher(
            [
                "--name",
                "raceplane.demo_num",
                "--streams",
                "8",
                "--channels",
                "400",
                "--format",
                "double64",
                "--rate",
                "60",
                "--count",
                str(60 * seconds),
                "--chunk",
                "1",
            ],
            8,
            60 * seconds,
            400,
        ),
        Publisher(
            [
                "--name",
                "raceplane.demo_json",
                "--streams",
                "4",
                "--format",
                "string",
                "--rate",
                "0",
                "--push-rate",
                "4",
                "--count",
                str(4 * seconds),
                "--chunk",
                "1",
            ],
            4,
            4 * seconds,
            1,
        ),
    ]
    flat_rows, demo_rows = [], []
    for label, python in recorders:
        kind = "ours" if label == "raceplane" else "labrecorder"
        try:
            result = record_case(kind, python, flat, work, "raceplane.flat")
            flat_rows.append(
                [
                    label,
                    result["expected"] / result["drain_s"],
                    result["bytes"] / 1e6 / result["drain_s"],
                    result["expected"] / result["push_s"],
                    result["cpu_s"] / (result["expected"] / 1e6),
                    result["lost"],
                    result["duplicates"],
                    result["bytes"] / 1e6,
                    result["load_s"],
                ]
            )
            result = record_case(kind, python, demo, work, "raceplane.demo")
            demo_rows.append(
                [
                    label,
                    100 * result["cpu_s"] / result["wall_s"],
                    result["cpu_s"] / (result["expected"] / 1e6),
                    result["lost"],
                    result["bytes"] / 1e6,
                    result["load_s"],
                ]
            )
        except (RuntimeError, subprocess.SubprocessError) as error:
            print(f"{label} could not complete the benchmark: {error}")
    subscribe_rows = []
    for label, python in recorders:
        kind = "ours" if label == "raceplane" else "labrecorder"
        try:
            times = subscribe_case(kind, python, work)
            subscribe_rows.append([label, times[0], times[len(times) // 2], times[-1]])
        except (RuntimeError, subprocess.SubprocessError) as error:
            print(f"{label} could not complete the subscribe case: {error}")
    print_table(
        f"flat out: 10 streams x 8 float32 channels, {10 * count:,} samples (recorded/s: until "
        "the file stops growing; pushed/s: the publisher's own pace)",
        [
            "recorder",
            "recorded/s",
            "MB/s",
            "pushed/s",
            "cpu s/M samples",
            "lost",
            "dup",
            "file MB",
            "pyxdf load s",
        ],
        flat_rows,
    )
    print_table(
        f"demo rate: 8 streams x 400 float64 @ 60 Hz + 4 JSON streams @ 4 Hz, {seconds} s",
        ["recorder", "cpu % of a core", "cpu s/M samples", "lost", "file MB", "pyxdf load s"],
        demo_rows,
    )
    print_table(
        "subscribe: 20 streams publishing before the start; seconds from the recorder's start "
        "until a stream's first samples are in the file (LabRecorder: resolve, then record)",
        ["recorder", "first s", "median s", "last s"],
        subscribe_rows,
    )
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        sys.exit(child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
