"""Replaying saved live timing files onto Raceplane's streams at 1x, Nx or flat out.

The samples carry their order (each its own overall frame identifier, the session's identity
first: the state lines SessionInfo, DriverList, LapCount, then the rest), and consumers merge
by it, so nothing here paces for order. Flat out goes as fast as the consumer given as `ack`
takes it (ConsumerAck: at most a window of samples ahead of what it applied) and ends when it
has applied everything; without one, as fast as the publishing goes.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from modules.acknowledge import ConsumerAck
from modules.stream_catalogue import STREAMS

from .savefile import FileReport, merge_files
from .state import LiveSession, Sample
from .topics import TopicError

# Flat out with a consumer to acknowledge: how many samples (sequence numbers) may be ahead
# of what it applied.
ACK_WINDOW = 2000
# With a consumer to acknowledge and no --wait-s: how long to wait for it to read the streams.
ACK_READERS_S = 10.0
_SEQUENCE_LABELS = (
    "header.session_uid_hi",
    "header.session_uid_lo",
    "header.overall_frame_identifier",
)


@dataclass
class ReplayReport:
    """Filled in while the replay runs (STATUS reads it from another thread)."""

    files: list[FileReport] = field(default_factory=list)
    total: int = 0  # messages to replay, known once the files are read
    messages: int = 0
    samples: int = 0
    refused: int = 0  # messages whose data could not be decoded
    first_refusal: str = ""
    unread: int = 0  # values the session could not read (a bad pit time), the message kept
    first_unread: str = ""
    position: datetime | None = None  # the time of the last message replayed
    sessions: list[str] = field(default_factory=list)  # further sessions found in the files
    session_status: str = ""  # the last SessionStatus replayed ("Finalised", "Started" ...)
    final: bool = False  # the session's results stood (Finalised/Ends) by the files' end
    stopped: bool = False
    done: bool = False


class _Pacer:
    """When the next message may go: its time scaled by `speed`, or at once (flat out)."""

    def __init__(self, speed: float, flat_out: bool, stop: threading.Event) -> None:
        self.speed = speed
        self.flat_out = flat_out
        self.stop = stop
        self.started = time.monotonic()
        self.first: datetime | None = None

    def message(self, when: datetime | None) -> bool:
        """Wait until a message of time `when` is due; False if stopped meanwhile."""
        if not self.flat_out and when is not None:
            self.first = self.first or when
            due = self.started + (when - self.first).total_seconds() / self.speed
            wait = due - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                return False
        return not self.stop.is_set()


@functools.cache
def _sequence_columns(stream: str) -> list[int]:
    labels = [channel.label for channel in STREAMS[stream].channels]
    return [labels.index(label) for label in _SEQUENCE_LABELS]


def sequence_of(sample: Sample) -> tuple[str, float] | None:
    """(session uid, overall frame identifier) a sample carries, None if it has no header."""
    if isinstance(sample.value, np.ndarray):
        hi, lo, seq = sample.value[_sequence_columns(sample.stream)]
        return str((int(hi) << 32) | int(lo)), float(seq)
    header = sample.value.get("header")
    if not isinstance(header, dict):
        return None
    return str(header["session_uid"]), float(header["overall_frame_identifier"])


def replay(
    paths: Sequence[Path],
    publish: Callable[[Sample], None],
    logger: logging.Logger,
    speed: float = 1.0,
    flat_out: bool = False,
    stop: threading.Event | None = None,
    *,
    ack: ConsumerAck | None = None,
    report: ReplayReport | None = None,
) -> ReplayReport:
    """Publish the session in `paths` paced by its timestamps (`speed` times as fast), or flat
    out; with `ack`, never more than its window ahead of that consumer, ending once it has
    applied everything (AcknowledgementError if it stops taking samples)."""
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
    pacer = _Pacer(speed, flat_out, stop)
    for message in messages:
        if not pacer.message(message.time):
            report.stopped = True
            break
        report.messages += 1
        report.position = message.time
        sessions = len(session.sessions_seen)
        problems = len(session.problems)
        try:
            samples = session.feed(message)
        except (TopicError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            report.refused += 1
            if not report.first_refusal:
                report.first_refusal = f"{message.topic}: {error}"
            logger.warning("replay: %s message refused: %s", message.topic, error)
            continue
        for problem in session.problems[problems:]:
            report.unread += 1
            report.first_unread = report.first_unread or problem
            logger.warning("replay: not read: %s", problem)
        if len(session.sessions_seen) > sessions:
            report.sessions.append(session.sessions_seen[-1])
            logger.warning(
                "replay: another session begins at %s (%s): published as a session of its own",
                message.time,
                session.sessions_seen[-1],
            )
        for sample in samples:
            key = sequence_of(sample) if ack is not None and ack.reads(sample.stream) else None
            if key is not None and not ack.wait_for_room(*key):  # type: ignore[union-attr]
                report.stopped = True
                break
            publish(sample)
            report.samples += 1
            if key is not None:
                ack.sent(*key)  # type: ignore[union-attr]
        if report.stopped:
            break
    if ack is not None and not report.stopped and not ack.finish():
        report.stopped = True
    status = session.topics.get("SessionStatus")
    report.session_status = str(status.get("Status", "")) if isinstance(status, dict) else ""
    report.final = session.final
    if not report.stopped and not report.final:
        # A file cut off (a recorder stopped early, a download broken): what it has is
        # published, and the standings stay provisional; say why they never become final.
        logger.warning(
            "replay: the files end before the session is final (last SessionStatus: %s): "
            "no final classification, the standings stay provisional",
            report.session_status or "none",
        )
    report.done = True
    return report
