"""Records from the streams' reader threads to the one thread that calls the callbacks (no I/O).

Each stream has a reader thread that sleeps in liblsl until its samples arrive, decodes them
and puts the records here; the delivering thread (or event loop) sleeps in `take` until there
are some. Nothing polls on a timer, so a record is handed on as soon as its sample arrives.

`take` returns everything waiting, merged by LSL time across streams while keeping each
stream's own order (a stream whose clock stepped back is never reordered). A full inbox makes
the readers wait, so a slow callback holds memory to `limit` batches and the rest of the
backlog waits in liblsl, as it would for any slow reader.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable
from typing import Any

# (LSL time, topic or telemetry key, record): one record on its way to the callbacks.
Item = tuple[float, str, Any]


class Inbox:
    def __init__(self, limit: int = 1024) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._room = threading.Condition(self._lock)
        self._batches: list[tuple[str, list[Item]]] = []
        self._woken = False
        # Called (from a reader thread) when the inbox goes from empty to not: how an event
        # loop learns that there is something to take.
        self.on_arrival: Callable[[], None] | None = None

    def put(self, stream: str, items: list[Item], stop: threading.Event) -> bool:
        """Hand over one stream's records, in its order; waits while the inbox is full.
        False if `stop` was set before there was room."""
        with self._lock:
            while len(self._batches) >= self.limit:
                if stop.is_set():
                    return False
                self._room.wait(0.1)
            was_empty = not self._batches
            self._batches.append((stream, items))
            self._arrived.notify()
        if was_empty and self.on_arrival is not None:
            self.on_arrival()
        return True

    def wake(self) -> None:
        """End a `take` that is waiting now or next (stop() uses this)."""
        with self._lock:
            self._woken = True
            self._arrived.notify_all()
        if self.on_arrival is not None:
            self.on_arrival()

    def take(self, timeout: float) -> list[tuple[str, Any]]:
        """Everything waiting, as (topic, record) in order; waits up to `timeout` s for some."""
        with self._lock:
            if not self._batches and not self._woken and timeout > 0:
                self._arrived.wait(timeout)
            batches, self._batches, self._woken = self._batches, [], False
            self._room.notify_all()
        if not batches:
            return []
        by_stream: dict[str, list[Item]] = {}
        for stream, items in batches:
            by_stream.setdefault(stream, []).extend(items)
        if len(by_stream) == 1:
            (items,) = by_stream.values()
            return [(topic, record) for _, topic, record in items]
        # heapq.merge only ever takes the head of a stream's list, so each stream's order is
        # kept whatever its timestamps do.
        merged = heapq.merge(*by_stream.values(), key=lambda item: item[0])
        return [(topic, record) for _, topic, record in merged]
