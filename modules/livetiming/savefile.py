"""Files in FastF1's live timing format, and reading several of them as one session.

A line is Python's `str()` of a list (what `python -m fastf1.livetiming save` writes):
- a feed message: `['TimingData', {'Lines': {...}}, '2024-03-02T15:03:41.837Z']`;
- the state the server sends in reply to `Subscribe`: `['TimingData', '<the state as JSON>', '']`,
  one line per topic, the data a JSON string and the timestamp empty.
FastF1 reads lines by turning quotes into double quotes and parsing JSON; Raceplane reads them as
Python literals (so an apostrophe in a name is no harm) and falls back to FastF1's way.
"""

from __future__ import annotations

import ast
import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import Any, TextIO

from .topics import STATE_FIRST, parse_timestamp, state_order


@dataclass(frozen=True, slots=True)
class Message:
    """One line: a topic's data at a time; a state line (a topic's whole state) has no time
    in the file and is given its file's first time when read."""

    topic: str
    data: Any
    time: datetime | None
    line: str  # the line as in the file, to recognise the same message in two files
    is_state: bool = False


def feed_line(topic: str, data: Any, timestamp: str) -> str:
    return str([topic, data, timestamp])


def state_lines(result: dict[str, Any]) -> list[str]:
    return [str([topic, json.dumps(data), ""]) for topic, data in result.items()]


_KEYWORDS = {"True": "true", "False": "false", "None": "null"}


def _as_json(text: str) -> str:
    """A line without double quotes or backslashes as JSON, exactly: each `'` then delimits a
    string (Python writes one holding `'` in double quotes, control characters as escapes), and
    outside strings only True, False and None differ from JSON."""
    if "True" not in text and "False" not in text and "None" not in text:
        return text.replace("'", '"')
    parts = text.split("'")
    strings = "".join(parts[1::2])
    if "True" not in strings and "False" not in strings and "None" not in strings:
        # No string holds a keyword (the usual case): replace them all at once.
        for word, value in _KEYWORDS.items():
            text = text.replace(word, value)
        return text.replace("'", '"')
    for index in range(0, len(parts), 2):
        for word, value in _KEYWORDS.items():
            parts[index] = parts[index].replace(word, value)
    return '"'.join(parts)


_DECODER = json.JSONDecoder()


def _json(text: str) -> Any:
    """JSON text without surrounding whitespace (json.loads less its checks for that)."""
    value, end = _DECODER.raw_decode(text)
    if end != len(text):
        raise ValueError(f"extra data at character {end}")
    return value


def _literal(text: str) -> Any:
    if '"' not in text and "\\" not in text:
        try:
            return _json(_as_json(text))  # ten times as fast as literal_eval
        except ValueError:
            pass
    return ast.literal_eval(text)


def parse_line(line: str) -> Message:
    """One line of a file; ValueError says what is wrong with it."""
    text = line.strip()
    if not text:
        raise ValueError("empty line")
    try:
        value = _literal(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        fixed = text.replace("'", '"').replace("True", "true").replace("False", "false")
        try:
            value = json.loads(fixed)
        except ValueError as error:
            raise ValueError(f"neither a Python literal nor JSON: {error}") from error
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ValueError("expected [topic, data, timestamp]")
    topic, data, stamp = value
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"topic must be a name, not {topic!r}")
    if stamp in ("", None):
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError as error:
                raise ValueError(f"{topic}: state is not JSON: {error}") from error
        return Message(topic, data, None, text, is_state=True)
    return Message(topic, data, parse_timestamp(stamp), text)


@dataclass
class FileReport:
    path: Path
    lines: int = 0
    bad_lines: int = 0
    kept: int = 0
    overlapping: int = 0  # lines also in the previous file, left out
    first_error: str = ""


def read_file(path: Path, report: FileReport) -> list[Message]:
    messages: list[Message] = []
    # gzip-compressed files (as the shared real sessions are) are read as they are.
    with open(path, "rb") as probe:
        opener = gzip.open if probe.read(2) == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            report.lines += 1
            try:
                messages.append(parse_line(line))
            except ValueError as error:
                report.bad_lines += 1
                if not report.first_error:
                    report.first_error = f"{path}, line {number}: {error}"
    return messages


def _start(messages: list[Message]) -> datetime | None:
    return next((m.time for m in messages if m.time is not None), None)


def merge_files(paths: Iterable[Path], reports: list[FileReport] | None = None) -> list[Message]:
    """The messages of several files of one session, in time order, each once.

    Files are taken by their first timestamp. Where a file begins before the previous ones end
    (two clients recording at once, or a client rolled over to a new file), the messages it
    shares with them are recognised by their text and timestamp and taken once. A later file's
    state lines are kept only after a gap (they then bring the state up to date); otherwise
    the earlier files' messages already built that state.
    """
    loaded = []
    for path in paths:
        report = FileReport(Path(path))
        loaded.append((read_file(Path(path), report), report))
        if reports is not None:
            reports.append(report)
    loaded.sort(key=lambda item: (_start(item[0]) is None, _start(item[0]) or datetime.min))
    out: list[Message] = []
    previous: list[Message] = []
    last: datetime | None = None
    for messages, report in loaded:
        start = _start(messages)
        overlaps = last is not None and start is not None and start <= last
        # The lines of the previous file, to recognise the overlap (only when there is one).
        seen = {m.line for m in previous if not m.is_state} if overlaps else set()
        # The stable sort keeps file order, with the session's identity first among states.
        messages.sort(key=lambda m: state_order(m.topic) if m.is_state else len(STATE_FIRST))
        for message in messages:
            if message.is_state:
                if overlaps:
                    report.overlapping += 1
                    continue
                # A state line is as of the file's first message (the Subscribe reply).
                out.append(Message(message.topic, message.data, start, message.line, True))
            elif overlaps and message.time <= last and message.line in seen:
                report.overlapping += 1
                continue
            else:
                out.append(message)
            report.kept += 1
        end = max((m.time for m in messages if m.time is not None), default=None)
        if end is not None and (last is None or end > last):
            last = end
        previous = messages
    # Stable: state lines stay ahead of the messages of their instant, file order within ties.
    return sorted((m for m in out if m.time is not None), key=attrgetter("time"))


class SaveWriter:
    """Writes lines and flushes each (a crash loses nothing); `roll_over()` starts the next file.

    The n-th file after the first is `<stem>.<n><suffix>` beside it.
    """

    def __init__(self, path: Path, append: bool = False) -> None:
        self.first = Path(path)
        self.path = self.first
        self.files = [self.first]
        self.lines = 0
        self._handle: TextIO = open(self.first, "a" if append else "w", encoding="utf-8")  # noqa: SIM115

    def write_state(self, result: dict[str, Any]) -> None:
        self._write(state_lines(result))

    def write_feed(self, topic: str, data: Any, timestamp: str) -> None:
        self._write([feed_line(topic, data, timestamp)])

    def _write(self, lines: list[str]) -> None:
        self._handle.write("".join(line + "\n" for line in lines))
        self._handle.flush()
        self.lines += len(lines)

    def roll_over(self) -> Path:
        self._handle.close()
        self.path = self.first.with_name(f"{self.first.stem}.{len(self.files)}{self.first.suffix}")
        self.files.append(self.path)
        self._handle = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        return self.path

    def close(self) -> None:
        self._handle.close()
