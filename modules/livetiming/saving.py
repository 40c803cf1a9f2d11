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
from .health import TopicWatch, token_status
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
        watch: TopicWatch | None = None,
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
        self.watch = watch or TopicWatch()
        self._token_state = ""  # the token's state as last logged
        self._checked = 0.0  # monotonic time of the last health check
        self._stopped = threading.Event()  # stop() before run() reached the client

    def stop(self) -> None:
        self._stopped.set()
        self.client.stop()

    def run(self) -> str:
        """Why it ended: "stopped" or "idle"."""
        if not self.options.access_token and set(self.options.topics) & set(TOKEN_TOPICS):
            self.logger.warning("no access token: %s may stay empty", ", ".join(TOKEN_TOPICS))
        self._check_token()
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
            # Values the feed sent that could not be read (a bad pit time), their messages kept.
            "unread": list(self.session.problems[-5:]) if self.session is not None else [],
            "token": token_status(self.options.access_token, datetime.now(UTC)),
            # Topics that normally flow and have stopped: {topic: seconds quiet}.
            "silent": self.watch.silent(time.monotonic()),
        }

    def _check_token(self) -> None:
        """Log the token's state when it changes: a warning well before it expires, an error
        once it has (the feed will refuse it at the next connection)."""
        status = token_status(self.options.access_token, datetime.now(UTC))
        state = status["state"]
        if state == self._token_state or state in ("none", "ok"):
            self._token_state = state
            return
        self._token_state = state
        text = {
            "expiring": "the access token expires at %s (in %.0f s): get a fresh one",
            "expired": "the access token expired at %s (%.0f s): the feed will refuse it",
            "unreadable": "the access token is not a JWT with an expiry (%s %s)",
        }[state]
        level = logging.ERROR if state == "expired" else logging.WARNING
        self.logger.log(level, "live timing: " + text, status["expires"], status["expires_in_s"])
        self._announce(text % (status["expires"], status["expires_in_s"]))

    def _check_health(self) -> None:
        """At most once a second: the token, and topics gone quiet (logged once each)."""
        now = time.monotonic()
        if now - self._checked < min(1.0, self.watch.min_silence_s / 2):
            return
        self._checked = now
        self._check_token()
        silent, back = self.watch.changes(now)
        for topic, quiet in silent.items():
            self.logger.warning("live timing: %s silent for %.0f s", topic, quiet)
            self._announce(f"{topic} silent for {quiet:.0f} s")
        for topic in back:
            self.logger.info("live timing: %s flows again", topic)
            self._announce(f"{topic} flows again")

    def _announce(self, text: str) -> None:
        """Onto the events stream, so the dashboard's feed says it."""
        if self.session is not None and self.publisher is not None:
            self.publisher.publish(self.session.feed_event(text, datetime.now(UTC)))

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
        problems = len(self.session.problems)
        try:
            samples = self.session.feed(message)
        except (TopicError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
            self.unpublished += 1
            self.logger.warning("live timing: %s not published: %s", message.topic, error)
            return
        for problem in self.session.problems[problems:]:
            self.logger.warning("live timing: not read: %s", problem)
        for sample in samples:
            self.publisher.publish(sample)

    def _state(self, result: dict[str, Any]) -> None:
        self.writer.write_state(result)
        now = datetime.now(UTC)
        for topic in sorted(result, key=state_order):
            self._publish(Message(topic, result[topic], now, "", True))

    def _feed(self, topic: str, data: Any, timestamp: str) -> None:
        self.writer.write_feed(topic, data, timestamp)
        self.topics[topic] = self.topics.get(topic, 0) + 1
        self.watch.seen(topic, time.monotonic())
        self._check_health()
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
