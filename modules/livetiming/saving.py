"""Saving the live feed into a file, optionally publishing it as it comes: what `raceplane
livetiming save` and the module's SAVE command both run."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .client import ClientOptions, LiveTimingClient
from .order import StreamOrder
from .publish import Publisher
from .savefile import Message, SaveWriter
from .state import LiveSession
from .topics import TOKEN_TOPICS, TopicError, parse_timestamp, state_order

# What the lap timer reads: publishing waits for readers on these first.
READ_STREAMS = (
    "raceplane.session",
    "raceplane.participants",
    "raceplane.lap_data",
    "raceplane.car_status",
    "raceplane.events",
    "raceplane.final_classification",
)


def wait_for_readers(
    publisher: Publisher,
    timeout_s: float,
    logger: logging.Logger,
    stop: threading.Event | None = None,
) -> None:
    if timeout_s <= 0:
        return
    unread = publisher.wait_for_consumers(READ_STREAMS, timeout_s, stop)
    if unread:
        logger.warning("publishing with no reader on %s", ", ".join(unread))


class Saver:
    """One save: the client connected to the feed, every message into `writer`'s files, and
    into `publisher`'s streams when given. `run()` blocks until `stop()` or the idle timeout."""

    def __init__(
        self,
        writer: SaveWriter,
        options: ClientOptions,
        logger: logging.Logger,
        publisher: Publisher | None = None,
        wait_s: float = 0.0,
    ) -> None:
        self.writer = writer
        self.options = options
        self.logger = logger
        self.publisher = publisher
        self.wait_s = wait_s
        self.session = LiveSession() if publisher is not None else None
        self.client = LiveTimingClient(options, self._state, self._feed, logger, self._rollover)
        self.topics: dict[str, int] = {}  # feed messages per topic
        self.unpublished = 0
        self._stopped = threading.Event()  # stop() before run() reached the client
        self._order = StreamOrder(self._stopped)

    def stop(self) -> None:
        self._stopped.set()
        self.client.stop()

    def run(self) -> str:
        """Why it ended: "stopped" or "idle"."""
        if not self.options.access_token and set(self.options.topics) & set(TOKEN_TOPICS):
            self.logger.warning("no access token: %s may stay empty", ", ".join(TOKEN_TOPICS))
        try:
            if self.publisher is not None:
                wait_for_readers(self.publisher, self.wait_s, self.logger, self._stopped)
            return "stopped" if self._stopped.is_set() else self.client.run()
        finally:
            self.writer.close()

    def status(self) -> dict[str, Any]:
        stats = self.client.stats
        started = stats.connection_started
        return {
            "url": self.options.url,
            "connected": stats.connected,
            "connections": stats.connections,
            "failures": stats.failures,
            "last_error": stats.last_error,
            "bad_messages": stats.bad_messages,
            "messages": stats.feed_messages,
            "topics": dict(self.topics),
            "file": str(self.writer.path),
            "files": [str(path) for path in self.writer.files],
            "lines": self.writer.lines,
            "rollover": {
                "rollovers": stats.rollovers,
                "next_in_s": None
                if started is None
                else max(0.0, self.options.rollover_s - (time.monotonic() - started)),
            },
            "unpublished": self.unpublished,
        }

    def summary(self, why: str) -> str:
        stats = self.client.stats
        return (
            f"saved {self.writer.lines} lines to {', '.join(map(str, self.writer.files))}; "
            f"{stats.connections} connection(s), {stats.failures} lost, {stats.rollovers} "
            f"rolled over, {stats.bad_messages} bad message(s) skipped; ended: {why}"
        )

    def _publish(self, message: Message) -> None:
        if self.session is None or self.publisher is None:
            return
        try:
            samples = self.session.feed(message)
        except (TopicError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            self.unpublished += 1
            self.logger.warning("live timing: %s not published: %s", message.topic, error)
            return
        for sample in samples:
            if not self._order.before(sample.stream):
                return
            self.publisher.publish(sample)

    def _state(self, result: dict[str, Any]) -> None:
        self.writer.write_state(result)
        now = datetime.now(UTC)
        for topic in sorted(result, key=state_order):
            self._publish(Message(topic, result[topic], now, "", True))

    def _feed(self, topic: str, data: Any, timestamp: str) -> None:
        self.writer.write_feed(topic, data, timestamp)
        self.topics[topic] = self.topics.get(topic, 0) + 1
        if self.session is None:
            return
        try:
            when = parse_timestamp(timestamp)
        except ValueError:
            when = datetime.now(UTC)
        self._publish(Message(topic, data, when, ""))

    def _rollover(self) -> None:
        self.logger.warning("live timing: continuing in %s", self.writer.roll_over())


def save_to(path: Path, append: bool) -> SaveWriter:
    """The writer of a save; ValueError naming the file when it cannot be written."""
    try:
        return SaveWriter(path, append=append)
    except OSError as error:
        raise ValueError(f"cannot write {path}: {error.strerror}") from error
