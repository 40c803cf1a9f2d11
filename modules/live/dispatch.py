"""What the live client does with a record once it has one, without I/O.

`Callbacks` keeps the user's functions per topic and calls each in turn: an exception in one is
logged with its traceback and counted, and the others still run. `Decimator` thins a stream to
a chosen rate by the producer's own clock (the game's session time), so what a user gets at
"10 Hz" does not depend on how busy the machine is.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

Callback = Callable[[Any], Any]


def callback_name(function: Callback) -> str:
    return getattr(function, "__qualname__", None) or repr(function)


class Callbacks:
    """Topic -> the functions registered on it, in registration order."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._by_topic: dict[str, list[Callback]] = defaultdict(list)
        self.delivered: Counter[str] = Counter()  # records delivered, per topic
        self.errors: Counter[str] = Counter()  # exceptions raised, per callback name

    def add(self, topic: str, function: Callback) -> None:
        if not callable(function):
            raise TypeError(f"a callback must be callable, got {function!r}")
        self._by_topic[topic].append(function)

    def functions(self) -> list[Callback]:
        return [fn for functions in self._by_topic.values() for fn in functions]

    def deliver(self, topic: str, record: Any) -> list[Awaitable[Any]]:
        """Call every function of `topic` with `record`; returns the coroutines some of them
        returned (async callbacks), for an event loop to await. A raising callback is logged
        and counted; the rest still run."""
        pending: list[Awaitable[Any]] = []
        for function in self._by_topic.get(topic, ()):
            try:
                result = function(record)
            except Exception:
                self._failed(topic, function)
                continue
            if inspect.isawaitable(result):
                pending.append(self._guarded(topic, function, result))
        self.delivered[topic] += 1
        return pending

    async def _guarded(self, topic: str, function: Callback, result: Awaitable[Any]) -> None:
        try:
            await result
        except Exception:
            self._failed(topic, function)

    def _failed(self, topic: str, function: Callback) -> None:
        name = callback_name(function)
        self.errors[name] += 1
        self.logger.exception("callback %s on %r raised; the other callbacks go on", name, topic)


class Decimator:
    """Passes at most one sample per `1 / rate_hz` of the producer's clock (None: every one).

    The clock going back (a flashback, a new session) starts the count afresh, so a rewound
    session is followed at once.
    """

    def __init__(self, rate_hz: float | None) -> None:
        if rate_hz is not None and not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0 (or None for every sample), got {rate_hz!r}")
        self.period = 0.0 if rate_hz is None else 1.0 / rate_hz
        self._due: float | None = None
        self._last: float | None = None

    def passes(self, clock: float) -> bool:
        if self._last is not None and clock < self._last:
            self._due = None
        self._last = clock
        # The game's clock is a float32: 300.2 s may arrive as 300.19998. A sample within a
        # twentieth of a period of its due time is on time.
        if self._due is not None and clock < self._due - self.period / 20:
            return False
        # The next one is due a period after this one's due time (not its arrival), so the
        # rate holds on average when samples do not fall exactly on the period.
        base = clock if self._due is None or clock - self._due >= self.period else self._due
        self._due = base + self.period
        return True
