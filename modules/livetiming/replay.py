"""Replaying saved live timing files onto Raceplane's streams at 1x, Nx or flat out.

Whatever the speed, samples keep the order the lap timer relies on (order.py), the session's
identity first (the state lines: SessionInfo, DriverList, LapCount, then the rest). Flat out
also goes at most `max_rate` messages a second, so no reader's ring is overrun while it is busy
for a moment (the lap timer keeps 4096 LapData rows).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .order import ORDER_GAP_S, StreamOrder
from .savefile import FileReport, merge_files
from .state import LiveSession, Sample
from .topics import TopicError

FLAT_OUT_RATE = 2000.0


@dataclass
class ReplayReport:
    """Filled in while the replay runs (STATUS reads it from another thread)."""

    files: list[FileReport] = field(default_factory=list)
    total: int = 0  # messages to replay, known once the files are read
    messages: int = 0
    samples: int = 0
    refused: int = 0  # messages whose data could not be decoded
    first_refusal: str = ""
    position: datetime | None = None  # the time of the last message replayed
    sessions: list[str] = field(default_factory=list)  # further sessions found in the files
    stopped: bool = False
    done: bool = False


class _Pacer:
    """When the next message may go: its time scaled by `speed`, or flat out at most
    `max_rate` messages a second (0: no limit)."""

    def __init__(
        self, speed: float, flat_out: bool, max_rate: float, stop: threading.Event
    ) -> None:
        self.speed = speed
        self.flat_out = flat_out
        self.interval_s = 1.0 / max_rate if flat_out and max_rate > 0 else 0.0
        self.stop = stop
        self.started = time.monotonic()
        self.first: datetime | None = None
        self.last = float("-inf")

    def message(self, when: datetime | None) -> bool:
        """Wait until a message of time `when` is due; False if stopped meanwhile."""
        due = self.last + self.interval_s
        if not self.flat_out and when is not None:
            self.first = self.first or when
            due = max(due, self.started + (when - self.first).total_seconds() / self.speed)
        wait = due - time.monotonic()
        if (wait > 0 and self.stop.wait(wait)) or self.stop.is_set():
            return False
        self.last = time.monotonic()
        return True


def replay(
    paths: Sequence[Path],
    publish: Callable[[Sample], None],
    logger: logging.Logger,
    speed: float = 1.0,
    flat_out: bool = False,
    stop: threading.Event | None = None,
    *,
    order_gap_s: float = ORDER_GAP_S,
    max_rate: float = FLAT_OUT_RATE,
    report: ReplayReport | None = None,
) -> ReplayReport:
    """Publish the session in `paths` paced by its timestamps (`speed` times as fast), or flat
    out; `order_gap_s` 0 and `max_rate` 0 drop the order rules (when no reader is to follow)."""
    if not flat_out and speed <= 0:
        raise ValueError(f"speed must be > 0, not {speed}")
    stop = stop or threading.Event()
    report = report if report is not None else ReplayReport()
    messages = merge_files(paths, report.files)
    report.total = len(messages)
    for file in report.files:
        if file.bad_lines:
            logger.warning(
                "%s: %d of %d lines unreadable, first: %s",
                file.path,
                file.bad_lines,
                file.lines,
                file.first_error,
            )
        if file.overlapping:
            logger.info(
                "%s: %d lines overlap earlier files, taken once", file.path, file.overlapping
            )
    session = LiveSession()
    pacer = _Pacer(speed, flat_out, max_rate, stop)
    order = StreamOrder(stop, order_gap_s)
    for message in messages:
        if not pacer.message(message.time):
            report.stopped = True
            break
        report.messages += 1
        report.position = message.time
        sessions = len(session.sessions_seen)
        try:
            samples = session.feed(message)
        except (TopicError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            report.refused += 1
            if not report.first_refusal:
                report.first_refusal = f"{message.topic}: {error}"
            logger.warning("replay: %s message refused: %s", message.topic, error)
            continue
        if len(session.sessions_seen) > sessions:
            report.sessions.append(session.sessions_seen[-1])
            logger.warning(
                "replay: another session begins at %s (%s): published as a session of its own",
                message.time,
                session.sessions_seen[-1],
            )
        for sample in samples:
            if not order.before(sample.stream):
                report.stopped = True
                break
            publish(sample)
            report.samples += 1
        if report.stopped:
            break
    report.done = True
    return report
