"""The order the lap timer can rely on across streams.

The lap timer reads each stream on its own inlet and merges what one poll brought by LSL time,
so a sample that reaches its inlet a little later than the next sample of another stream is
taken after it (laps named "Car 00" when participants come after lap data, a lap with the tyre
of a later pit stop). Samples published from one thread have rising LSL times; `StreamOrder`
also leaves `ORDER_GAP_S` between a sample on one of the lap timer's streams and the next one
on another of them, longer than a poll of all its inlets takes.
"""

from __future__ import annotations

import threading
import time

from .state import CAR_STATUS, EVENTS, LAP_DATA, PARTICIPANTS, SESSION

ORDERED_STREAMS = (SESSION, PARTICIPANTS, LAP_DATA, CAR_STATUS, EVENTS)
ORDER_GAP_S = 0.02


class StreamOrder:
    def __init__(self, stop: threading.Event, gap_s: float = ORDER_GAP_S) -> None:
        self.stop = stop
        self.gap_s = gap_s
        self.last_sent = float("-inf")  # time.monotonic() of the last ordered sample
        self._last_stream: str | None = None

    def before(self, stream: str, not_before: float = float("-inf")) -> bool:
        """Wait until a sample of `stream` may go (and not before `not_before`, monotonic);
        False if stopped meanwhile."""
        due = not_before
        if stream in ORDERED_STREAMS:
            if self._last_stream is not None and stream != self._last_stream:
                due = max(due, self.last_sent + self.gap_s)
            self._last_stream = stream
        wait = due - time.monotonic()
        if (wait > 0 and self.stop.wait(wait)) or self.stop.is_set():
            return False
        if stream in ORDERED_STREAMS:
            self.last_sent = time.monotonic()
        return True
