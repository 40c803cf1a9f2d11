"""Analysis after the session: time to a whole race's laps table and to one lap's telemetry,
next to pyxdf loading the same XDF file and FastF1 loading live-timing files.

The race: the game simulator's 22 cars at 60 Hz (format 2025, every packet type on the game's
send pattern), decoded by the decoder core and written with the recorder's XDF encoder the way
the recorder writes it (every raceplane.* stream, a chunk per stream every second). Made once
and kept under .bench/analysis/. `BENCH_ANALYSIS_LAPS` sets the race length (default 5 laps of
Monza, the demo's race). Each measurement runs in a fresh process; CPU seconds, best of ROUNDS.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.peers import BENCH_DIR, print_table  # noqa: E402

LAPS = int(os.environ.get("BENCH_ANALYSIS_LAPS", "5"))
RATE = 60
ROUNDS = 3
SHARED = REPO.parent / "shared" / "data" / "livetiming"


def make_race(path: Path) -> None:
    from dareplane_utils.stream_watcher.outlets import encode_json
    from modules.game_sim.broadcast import Broadcaster
    from modules.game_sim.race import RaceSim, SessionOptions
    from modules.recorder.xdf import XdfEncoder
    from modules.stream_catalogue import STREAMS
    from modules.telemetry_decoder.core import Datagram, DecoderCore

    options = SessionOptions(rate=RATE, laps=LAPS, cars=22, seed=1, retirements=1)
    sim = RaceSim(options, session_uid=0x5EED_0000_0001)
    broadcaster = Broadcaster(sim, 2025)
    core = DecoderCore()
    encoder = XdfEncoder()
    ids: dict[str, int] = {}
    pending: dict[str, list] = defaultdict(list)
    clock = 1000.0
    partial = path.with_suffix(".partial")
    with open(partial, "wb") as out:
        out.write(encoder.file_header({"track": "monza", "session_type": "race"}))

        def flush() -> None:
            for name, items in pending.items():
                stamps = np.array([t for t, _ in items])
                if name not in ids:
                    ids[name] = len(ids) + 1
                    spec = STREAMS[name].spec("bench") if name in STREAMS else None
                    info = spec.stream_info().as_xml()
                    out.write(encoder.stream_header(ids[name], info))
                first = items[0][1]
                if isinstance(first, np.ndarray):
                    values = np.vstack([v for _, v in items])
                else:
                    values = np.array([[encode_json(v)] for _, v in items], dtype=object)
                out.write(encoder.samples(ids[name], stamps, values))
            pending.clear()

        frame = 0
        while not sim.over:
            clock += 1.0 / RATE
            batch = [Datagram(data, ("127.0.0.1", 20777), clock) for data in broadcaster.step()]
            for publication in core.feed(batch):
                if publication.stream not in STREAMS:
                    continue
                if publication.rows is not None:
                    rows = list(publication.rows)
                else:
                    rows = list(publication.objects or [])
                pending[publication.stream] += zip(publication.timestamps, rows, strict=True)
            frame += 1
            if frame % RATE == 0:  # as the recorder: every stream's samples every second
                flush()
        flush()
        for stream_id in ids.values():
            out.write(encoder.stream_footer(stream_id))
    partial.rename(path)


def run(code: str, *args: str) -> dict:
    """Run `code` in a fresh interpreter; it prints one JSON line of results."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


OURS = """
import json, sys, time
from modules.analysis import open_recording
t0 = time.process_time(); w0 = time.perf_counter()
session = open_recording(*sys.argv[1:])
laps = session.laps
laps_cpu = time.process_time() - t0; laps_wall = time.perf_counter() - w0
picked = laps.sample(min(5, len(laps)), random_state=1)
t0 = time.process_time()
session.telemetry(picked.iloc[0])  # the first reads the telemetry streams of an XDF file
first_tel = time.process_time() - t0
tel = []
for _, lap in picked.iterrows():
    t0 = time.process_time()
    frame = session.telemetry(lap)
    tel.append(time.process_time() - t0)
print(json.dumps({"laps_cpu": laps_cpu, "laps_wall": laps_wall, "laps": len(laps),
                  "tel_cpu": sorted(tel)[len(tel) // 2], "tel_rows": len(frame),
                  "first_tel_cpu": first_tel}))
"""

PYXDF = """
import json, sys, time
import pyxdf
t0 = time.process_time(); w0 = time.perf_counter()
streams, header = pyxdf.load_xdf(sys.argv[1])
print(json.dumps({"cpu": time.process_time() - t0, "wall": time.perf_counter() - w0,
                  "streams": len(streams)}))
"""

FASTF1 = """
import json, logging, sys, time
import fastf1, fastf1._api as api
from fastf1.livetiming.data import LiveTimingData
fastf1.set_log_level("ERROR")
t0 = time.process_time(); w0 = time.perf_counter()
data = LiveTimingData(sys.argv[1]); data.load()
laps, stream = api.timing_data("", livedata=data)
print(json.dumps({"cpu": time.process_time() - t0, "wall": time.perf_counter() - w0,
                  "laps": int(laps["LapTime"].notna().sum())}))
"""


def best(code: str, *args: str) -> dict:
    results = [run(code, *args) for _ in range(ROUNDS)]
    key = "laps_cpu" if "laps_cpu" in results[0] else "cpu"
    return min(results, key=lambda r: r[key])


def main() -> int:
    directory = BENCH_DIR / "analysis"
    directory.mkdir(parents=True, exist_ok=True)
    race = directory / f"race_{LAPS}laps_{RATE}hz.xdf"
    if not race.exists():
        print(f"making a {LAPS}-lap 22-car race at {RATE} Hz with the simulator ...", flush=True)
        make_race(race)
    size_mb = race.stat().st_size / 1e6
    # Taken in turns, so both meet the same neighbours on a shared machine.
    pairs = [(run(OURS, str(race)), run(PYXDF, str(race))) for _ in range(ROUNDS)]
    ours = min((mine for mine, _ in pairs), key=lambda r: r["laps_cpu"])
    theirs = min((pyxdf for _, pyxdf in pairs), key=lambda r: r["cpu"])

    def rate(mb: float, cpu: float) -> str:
        return f"{mb / cpu:,.0f}"

    rows = [
        ["raceplane analysis", race.name, size_mb, f"laps table ({ours['laps']} laps)",
         ours["laps_cpu"], ours["laps_wall"], rate(size_mb, ours["laps_cpu"]),
         f"{theirs['cpu'] / ours['laps_cpu']:.1f}x faster"],
        ["raceplane analysis", "", "", "first lap's telemetry (reads its channels)",
         ours["first_tel_cpu"], "", "", ""],
        ["raceplane analysis", "", "", f"one lap's telemetry once open ({ours['tel_rows']} rows)",
         ours["tel_cpu"], "", "", ""],
        ["pyxdf.load_xdf", race.name, size_mb, f"load the file ({theirs['streams']} streams)",
         theirs["cpu"], theirs["wall"], rate(size_mb, theirs["cpu"]), "1x"],
    ]  # fmt: skip
    # FastF1 has nothing to read an XDF file with: it reads live-timing files. The real ones
    # (the only real ones there are here) are small; MB per CPU second puts them side by side.
    with tempfile.TemporaryDirectory() as tmp:
        for packed in sorted(SHARED.glob("*.txt.gz")):
            plain = Path(tmp) / packed.name.removesuffix(".gz")
            with gzip.open(packed, "rb") as source, open(plain, "wb") as target:
                shutil.copyfileobj(source, target)
            mb = plain.stat().st_size / 1e6
            mine = best(OURS, str(plain))
            fastf1 = best(FASTF1, str(plain))
            rows.append(
                ["raceplane analysis", plain.name, mb, f"laps table ({mine['laps']} laps)",
                 mine["laps_cpu"], mine["laps_wall"], rate(mb, mine["laps_cpu"]), ""]
            )  # fmt: skip
            rows.append(
                ["fastf1 timing_data", plain.name, mb, f"laps table ({fastf1['laps']} laps)",
                 fastf1["cpu"], fastf1["wall"], rate(mb, fastf1["cpu"]), ""]
            )  # fmt: skip
    print_table(
        f"a whole race recording ({LAPS} laps, 22 cars, {RATE} Hz) and the real live-timing "
        f"files (../shared/data/livetiming): CPU s, best of {ROUNDS}, a fresh process each; "
        "lower is better (MB/CPU s: higher)",
        ["reader", "file", "MB", "what", "CPU s", "wall s", "MB/CPU s", "vs pyxdf"],
        rows,
    )
    print(
        "\nnote: laps differ between the readers on the live-timing files while issue 16 "
        "(livetiming lap semantics) is open; FastF1 counts only timed laps"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
