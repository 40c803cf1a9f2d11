"""Replaying saved live timing files onto Raceplane's streams at 1x, Nx or flat out."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .savefile import FileReport, merge_files
from .state import LiveSession, Sample
from .topics import TopicError


@dataclass
class ReplayReport:
    files: list[FileReport] = field(default_factory=list)
    messages: int = 0
    samples: int = 0
    refused: int = 0  # messages whose data could not be decoded
    first_refusal: str = ""
    stopped: bool = False


def replay(
    paths: Sequence[Path],
    publish: Callable[[Sample], None],
    logger: logging.Logger,
    speed: float = 1.0,
    flat_out: bool = False,
    stop: threading.Event | None = None,
) -> ReplayReport:
    """Publish the session in `paths` paced by its timestamps (`speed` times as fast)."""
    if not flat_out and speed <= 0:
        raise ValueError(f"speed must be > 0, not {speed}")
    stop = stop or threading.Event()
    report = ReplayReport()
    messages = merge_files(paths, report.files)
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
    started = time.monotonic()
    first = messages[0].time if messages else None
    for message in messages:
        if stop.is_set():
            report.stopped = True
            break
        if not flat_out and first is not None and message.time is not None:
            due = started + (message.time - first).total_seconds() / speed
            if stop.wait(max(0.0, due - time.monotonic())):
                report.stopped = True
                break
        report.messages += 1
        try:
            samples = session.feed(message)
        except (TopicError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            report.refused += 1
            if not report.first_refusal:
                report.first_refusal = f"{message.topic}: {error}"
            logger.warning("replay: %s message refused: %s", message.topic, error)
            continue
        for sample in samples:
            publish(sample)
        report.samples += len(samples)
    return report
