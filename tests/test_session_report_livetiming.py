"""The session report of a live-timing session: each shared real F1 file (../shared/data/
livetiming) through the live timing module's core into the lap timer, in the file's order, and
the report judged by what the file itself says, read here from its lines: the classification
in the feed's final positions, knocked-out cars as such, each driver's best lap the feed's
best BestLapTimes, and each driver's stints (compound, tyre age at the start) the feed's Stints."""

from __future__ import annotations

import ast
import gzip
from pathlib import Path
from typing import Any

import pytest

from modules.lap_timer.inputs import NUMERIC, Inputs
from modules.lap_timer.inputs import STREAMS as READ
from modules.lap_timer.laptime import parse_lap_time
from modules.lap_timer.store import Store, read_report
from modules.lap_timer.timer import LapTimer
from modules.livetiming.savefile import merge_files
from modules.livetiming.state import LiveSession
from modules.livetiming.topics import TopicError
from modules.stream_catalogue import STREAMS

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "livetiming"
FILES = sorted(DATA.glob("*.txt.gz"))


def merge(into: dict, change: Any) -> Any:
    """The feed's way: a change is merged into what came before; a list may come as a dict of
    its indices."""
    if not isinstance(change, dict):
        return change
    if isinstance(into, list):
        into = dict(enumerate(into))
    into = dict(into) if isinstance(into, dict) else {}
    for key, value in change.items():
        key = int(key) if isinstance(key, str) and key.isdigit() else key
        into[key] = merge(into.get(key), value)
    return into


def file_facts(lines: list[str]) -> dict[str, dict]:
    """Per car number, from the file's TimingData, TimingAppData and DriverList."""
    timing: dict = {}
    app: dict = {}
    names: dict[str, str] = {}
    # Each part's best as last stated: the feed clears a part's value when the next part
    # starts, and when it deletes that lap (then states the next best).
    bests: dict[str, dict[int, str]] = {}
    for line in lines:
        topic, data, _ = ast.literal_eval(line)
        if topic == "TimingData":
            timing = merge(timing, data.get("Lines") or {})
            for number, change in (data.get("Lines") or {}).items():
                parts = change.get("BestLapTimes") if isinstance(change, dict) else None
                items = parts.items() if isinstance(parts, dict) else enumerate(parts or [])
                for part, value in items:
                    if isinstance(value, dict) and value.get("Value"):
                        bests.setdefault(str(number), {})[int(part)] = value["Value"]
        elif topic == "TimingAppData":
            app = merge(app, data.get("Lines") or {})
        elif topic == "DriverList":
            for number, entry in data.items():
                if isinstance(entry, dict) and entry.get("FullName"):
                    names[number] = entry["FullName"]
    facts = {}
    for number, line in timing.items():
        number = str(number)
        best = [parse_lap_time(value) for value in bests.get(number, {}).values()]
        stints = (app.get(int(number)) or app.get(number) or {}).get("Stints") or {}
        stints = [stints[k] for k in sorted(stints)] if isinstance(stints, dict) else stints
        facts[names.get(number, f"Car {number}")] = {
            "position": int(line.get("Position") or 0),
            "knocked_out": bool(line.get("KnockedOut")),
            "best_lap_ms": min(best, default=None),
            "stints": [(s["Compound"].lower(), int(s["StartLaps"])) for s in stints],
        }
    return facts


def report_of(lines: list[str], path: Path, db: Path) -> dict:
    store = Store(db)
    timer = LapTimer(store)
    inputs = Inputs(timer)
    for name in NUMERIC:
        inputs.set_channels(name, [c.label for c in STREAMS[name].channels])
    session = LiveSession()
    batch = []
    for message in merge_files([path], []):
        try:
            samples = session.feed(message)
        except (TopicError, ValueError, TypeError, KeyError, IndexError, AttributeError):
            continue  # the replay refuses it too
        batch += [(s.stream, s.value) for s in samples if s.stream in READ]
    assert inputs.handle_batch(batch) == []
    report = timer.get_report()
    store.close()
    return report


@pytest.mark.skipif(not FILES, reason=f"no live-timing files in {DATA}")
@pytest.mark.parametrize("source", FILES, ids=[f.name.split(".")[0] for f in FILES])
def test_a_real_live_timing_session_has_its_report(source: Path, tmp_path: Path) -> None:
    text = gzip.decompress(source.read_bytes()).decode("utf-8")
    path = tmp_path / source.name.removesuffix(".gz")
    path.write_text(text, encoding="utf-8")
    facts = file_facts(text.splitlines())
    report = report_of(text.splitlines(), path, tmp_path / "laps.sqlite3")

    assert report["final"] is True
    rows = report["classification"]
    assert [r["driver"] for r in rows] == sorted(facts, key=lambda d: facts[d]["position"])
    for row in rows:
        fact = facts[row["driver"]]
        assert (row["status"] == "knocked_out") == fact["knocked_out"], row["driver"]
        assert row["best_lap_ms"] == fact["best_lap_ms"], row["driver"]
        stints = [(s["visual"], s["tyre_age_at_start"]) for s in row["stints"]]
        assert stints == fact["stints"], row["driver"]
    assert sum(f["knocked_out"] for f in facts.values()) == 10
    fastest = min((f["best_lap_ms"], d) for d, f in facts.items() if f["best_lap_ms"])
    assert (report["fastest_lap"]["lap_time_ms"], report["fastest_lap"]["driver"]) == fastest
    # Stored as it ran, final once the feed's session ended.
    stored = read_report(tmp_path / "laps.sqlite3")
    assert stored["final"] is True and stored["classification"] == rows
