"""Helpers the recorder's tests share: publisher processes and their output, STATUS counts."""

from __future__ import annotations

import queue
import subprocess
import threading

from modules.recorder.engine import Recorder


def expect(process: subprocess.Popen, word: str, timeout: float = 30.0) -> str:
    """Read the process's output until a line starting with `word`; fail with what it said."""
    if not hasattr(process, "lines"):
        process.lines = queue.Queue()
        threading.Thread(target=_pump, args=(process,), daemon=True).start()
    seen = []
    while True:
        try:
            line = process.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"no {word!r} within {timeout} s; it said: {''.join(seen)}"
            ) from None
        if line is None:
            raise AssertionError(f"publisher ended before {word!r}: {''.join(seen)}")
        seen.append(line)
        if line.startswith(word):
            return line


def _pump(process: subprocess.Popen) -> None:
    for raw in process.stdout:
        process.lines.put(raw.decode())
    process.lines.put(None)


def publish(spawn, name: str, *args: str) -> subprocess.Popen:
    process = spawn("modules.recorder.publish", "--name", name, *args)
    expect(process, "ready")
    return process


def samples_of(recorder: Recorder, name: str) -> int:
    return sum(s["samples"] for s in recorder.status().get("streams", []) if s["name"] == name)
