"""EventLoop (Dareplane's API): call callbacks every `dt_s`, on time, in one thread.

Callbacks take a `ctx` keyword (the loop's context object) or no argument at all. Periodic
callbacks run every tick; once-callbacks at the next tick; delayed once-callbacks at the
first tick after their delay. Ticks follow a fixed schedule (start + k * dt_s), so a slow
callback does not shift the ones after it; after falling more than a tick behind, the
schedule restarts from now rather than firing a burst of late ticks.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Event
from typing import Any

from dareplane_utils.general.time import sleep_s


@dataclass
class DelayedCallback:
    """A callback due `delay_s` after `start_ts` (perf_counter seconds; default: creation)."""

    cb: Callable
    delay_s: float
    start_ts: float = field(default_factory=time.perf_counter)


class EventLoop:
    def __init__(self, dt_s: float, stop_event: Event | None = None, ctx: Any | None = None):
        self.dt_s = dt_s
        self.stop_event = stop_event if stop_event is not None else Event()
        self.last_run_ts = time.perf_counter()
        self.callbacks: list[Callable] = []
        self.callbacks_once: list[Callable] = []
        self.delayed_callbacks_once: list[DelayedCallback] = []
        self.ctx: Any = ctx
        self.now: float = 0.0

    def add_callback(self, cb: Callable) -> None:
        """Run `cb` every tick."""
        self.callbacks.append(self.validate_callback(cb))

    def add_callbacks(self, cbs: list[Callable]) -> None:
        for cb in cbs:
            self.add_callback(cb)

    def add_callback_once(self, cb: Callable) -> None:
        """Run `cb` once, at the next tick."""
        self.callbacks_once.append(self.validate_callback(cb))

    def add_callbacks_once(self, cbs: list[Callable]) -> None:
        for cb in cbs:
            self.add_callback_once(cb)

    def add_delayed_callback_once(self, cb: Callable, dt: float = 0.0) -> None:
        """Run `cb` once, at the first tick at least `dt` seconds from now."""
        self.delayed_callbacks_once.append(DelayedCallback(self.validate_callback(cb), dt))

    def validate_callback(self, cb: Callable) -> Callable:
        """The callback as called with `ctx=`: one without a `ctx` parameter gets a wrapper."""
        # AssertionError, as Dareplane raises: its tests and callers expect that type
        assert callable(cb), f"The provided {cb=} is not a Callable"
        if "ctx" in inspect.getfullargspec(cb).args:
            return cb

        def without_ctx(ctx: Any = None) -> Any:
            return cb()

        return without_ctx

    def run(self) -> None:
        """Tick every `dt_s` until `stop_event` is set."""
        next_tick = time.perf_counter() + self.dt_s
        while not self.stop_event.is_set():
            remaining = next_tick - time.perf_counter()
            if remaining > 0:
                sleep_s(remaining)
            self.now = time.perf_counter()
            self.process_callbacks()
            self.last_run_ts = self.now
            next_tick += self.dt_s
            if next_tick < time.perf_counter() - self.dt_s:
                next_tick = time.perf_counter() + self.dt_s

    def process_callbacks(self) -> None:
        """One tick: once-callbacks, due delayed callbacks, then the periodic ones."""
        while self.callbacks_once:
            self.callbacks_once.pop(0)(ctx=self.ctx)
        if self.delayed_callbacks_once:
            due = [d for d in self.delayed_callbacks_once if self.now - d.start_ts >= d.delay_s]
            self.delayed_callbacks_once = [
                d for d in self.delayed_callbacks_once if not any(d is x for x in due)
            ]
            for delayed in due:
                delayed.cb(ctx=self.ctx)
        for cb in self.callbacks:
            cb(ctx=self.ctx)
