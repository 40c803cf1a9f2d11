"""Back-pressure for flat-out replays: the consumer's STATUS says how far it has applied.

    ack = ConsumerAck.parse("127.0.0.1:8103", window=256, stop=stop)
    for session_uid, seq, item in work:
        if not ack.wait_for_room(session_uid, seq):   # blocks while seq - applied > window
            break                                     # stopped
        send(item)
        ack.sent(session_uid, seq)
    ack.finish()                                      # until everything sent is applied

The consumer (the lap timer) reports in STATUS `inputs.applied` = `{session_uid, frame}`, the
producer's sequence of the last sample it has handed on (docs/DESIGN.md "Order"). A replay
keeps at most `window` steps ahead of it, so it goes as fast as the slowest stage behind it and
no buffer on the way (a UDP socket, an inlet) has to hold more than a window, and it ends when
the consumer has applied the last thing sent. No sleeping for order: waiting here is for room.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from dareplane_utils.client.module_client import ModuleClient, ModuleError

# How often STATUS is asked while the window is full: every POLL_S at first, then as long as
# the consumer needs, at its rate so far, to apply what is waited for (at most MAX_POLL_S). A
# STATUS costs the consumer ~0.25 ms of CPU, so asking every millisecond in a flat-out replay
# took a fifth of a core from the very process being waited for.
POLL_S = 0.001
MAX_POLL_S = 0.02
# The modules that report STATUS inputs.applied, so a flat-out replay can wait on them.
ACKNOWLEDGING = ("lap_timer",)
# The stack's control room (raceplane up's default) and how long a flat-out replay gives a
# consumer that is not up yet (started late) to answer.
CONTROL_ROOM = "127.0.0.1:8100"
CONNECT_S = 30.0


class AcknowledgementError(RuntimeError):
    """The consumer did not apply what was sent in time, or cannot be asked."""


class ConsumerAck:
    def __init__(
        self,
        host: str,
        port: int,
        window: int,
        stop: threading.Event | None = None,
        timeout_s: float = 30.0,
        streams: Iterable[str] = (),
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, not {window}")
        self.address = f"{host}:{port}"
        self.window = window
        self.stop = stop or threading.Event()
        self.timeout_s = timeout_s
        self.client = ModuleClient(host, port, timeout=10.0)
        self.streams = set(streams)  # samples on these wait for acknowledgement
        self.connected: set[str] = set()  # what the consumer reads (STATUS inputs.connected)
        self.session: str | None = None  # the session being sent
        self.last_sent: float | None = None
        self.applied: float | None = None  # in `session`
        self.before_first = 0.0  # the session's first seq sent, less one: "nothing applied"
        self.polls = 0
        self._connected = False

    @classmethod
    def parse(cls, address: str, **kwargs: Any) -> ConsumerAck:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"give the consumer as HOST:PORT, not {address!r}")
        return cls(host, int(port), **kwargs)

    def connect(self, retries: int = 50) -> ConsumerAck:
        try:
            self.client.connect(retries=retries, interval=0.1)
        except ConnectionError as error:
            raise AcknowledgementError(f"cannot ask {self.address} for STATUS: {error}") from None
        self._connected = True
        self.poll()
        return self

    def close(self) -> None:
        if self._connected:
            self.client.close()
            self._connected = False

    def wait_for_readers(self, timeout_s: float) -> list[str]:
        """Wait until the consumer says it reads every one of `streams` (STATUS
        inputs.connected), at most `timeout_s`; returns those it does not read, which are then
        not waited for."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.poll()
            missing = sorted(self.streams - self.connected)
            if not missing or time.monotonic() >= deadline or self.stop.wait(0.05):
                break
        self.streams -= set(missing)
        return missing

    def reads(self, stream: str) -> bool:
        """Whether the consumer reads `stream` (only such samples wait for acknowledgement)."""
        return stream in self.streams

    def poll(self) -> None:
        try:
            inputs = self.client.request("STATUS").get("inputs") or {}
        except (ConnectionError, TimeoutError) as error:
            raise AcknowledgementError(f"{self.address} STATUS: {error}") from None
        self.polls += 1
        self.connected = set(inputs.get("connected") or ())
        applied = inputs.get("applied")
        if applied and str(applied.get("session_uid")) == self.session:
            self.applied = float(applied["frame"])

    def sent(self, session_uid: str, seq: float) -> None:
        if session_uid != self.session:
            self.session, self.applied, self.before_first = session_uid, None, seq - 1
        self.last_sent = seq

    def _applied(self) -> float:
        return self.before_first if self.applied is None else self.applied

    def _room(self, seq: float) -> bool:
        return seq - self._applied() <= self.window

    def wait_for_room(self, session_uid: str, seq: float) -> bool:
        """Block while `seq` is more than `window` ahead of what the consumer applied; False
        if stopped meanwhile."""
        if session_uid != self.session or self.last_sent is None:
            # A new session starts once the consumer has everything of the last one.
            return self.finish() if self.last_sent is not None else not self.stop.is_set()
        if self._room(seq):
            return not self.stop.is_set()
        # Once full, wait until half the window is free: the consumer still has half a window
        # to work on when sending resumes, and the waits (and STATUS questions) are fewer.
        target = seq - self.window + self.window // 2
        return self._until(lambda: self._applied() >= target, target)

    def finish(self) -> bool:
        """Block until the consumer has applied the last thing sent; False if stopped.
        AcknowledgementError when it makes no progress for `timeout_s`."""
        if self.last_sent is None:
            return not self.stop.is_set()
        last = self.last_sent
        return self._until(lambda: self.applied is not None and self.applied >= last, last)

    def _until(self, done: Any, target: float) -> bool:
        began = progress_at = time.monotonic()
        first = self._applied()
        seen = self.applied
        while not self.stop.is_set():
            self.poll()
            if done():
                return True
            now = time.monotonic()
            if self.applied != seen:
                progress_at, seen = now, self.applied
            elif now - progress_at > self.timeout_s:
                raise AcknowledgementError(
                    f"{self.address} applied nothing new for {self.timeout_s:g} s: at "
                    f"{self.applied} of session {self.session}, {self.last_sent} sent"
                )
            self.stop.wait(self._next_poll(target, (self._applied() - first) / (now - began)))
        return False

    def _next_poll(self, target: float, rate: float) -> float:
        """Seconds until STATUS is worth asking again: when the consumer, at `rate` (applied
        per second during this wait), will have reached `target`."""
        if rate <= 0:
            return POLL_S
        return min(MAX_POLL_S, max(POLL_S, (target - self._applied()) / rate))


class Consumers:
    """Several consumers acknowledged together: room for a sample once every one has it, the
    end once every one has applied everything (as fast as the slowest). Same calls as one."""

    def __init__(self, consumers: list[ConsumerAck]) -> None:
        if not consumers:
            raise ValueError("no consumer to acknowledge")
        self.consumers = consumers
        self.address = ", ".join(c.address for c in consumers)

    @property
    def stop(self) -> threading.Event:
        return self.consumers[0].stop

    @stop.setter
    def stop(self, event: threading.Event) -> None:
        for consumer in self.consumers:
            consumer.stop = event

    def connect(self, retries: int = 50) -> Consumers:
        for consumer in self.consumers:
            consumer.connect(retries)
        return self

    def close(self) -> None:
        for consumer in self.consumers:
            consumer.close()

    def wait_for_readers(self, timeout_s: float) -> list[str]:
        deadline = time.monotonic() + timeout_s
        missing: set[str] = set()
        for consumer in self.consumers:
            unread = consumer.wait_for_readers(max(0.0, deadline - time.monotonic()))
            missing |= {f"{stream} ({consumer.address})" for stream in unread}
        return sorted(missing)

    def reads(self, stream: str) -> bool:
        return any(consumer.reads(stream) for consumer in self.consumers)

    def sent(self, session_uid: str, seq: float) -> None:
        for consumer in self.consumers:
            consumer.sent(session_uid, seq)

    def wait_for_room(self, session_uid: str, seq: float) -> bool:
        return all(consumer.wait_for_room(session_uid, seq) for consumer in self.consumers)

    def finish(self) -> bool:
        return all(consumer.finish() for consumer in self.consumers)


def stack_consumers(control_room: str = CONTROL_ROOM) -> list[str]:
    """HOST:PORT of every acknowledging module of the stack whose control room answers at
    `control_room`, up or still starting; [] when no control room answers there."""
    host, _, port = control_room.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"give the control room as HOST:PORT, not {control_room!r}")
    client = ModuleClient(host, int(port), timeout=5.0)
    try:
        client.connect(retries=1)
    except (ConnectionError, OSError):
        return []
    try:
        with client:
            modules = client.request("STATUS").get("modules") or []
    except (ModuleError, ConnectionError, OSError, TimeoutError):
        return []
    found = []
    for module in modules:
        if module.get("kind") in ACKNOWLEDGING and module.get("state") not in ("stopped", "failed"):
            at_host, _, at_port = str(module.get("address", "")).rpartition(":")
            # A module bound to every interface answers on loopback too.
            at_host = host if at_host in ("0.0.0.0", "", "::") else at_host
            found.append(f"{at_host}:{at_port}")
    return found


def flat_out_consumers(
    named: list[str] | None,
    control_room: str,
    window: int,
    stop: threading.Event,
    streams: Iterable[str] = (),
    note: Any = print,
) -> Consumers | None:
    """The consumers a flat-out replay acknowledges: those named (--ack), else the running
    stack's lap timers; None (and a note saying so) when there are none."""
    addresses = named or stack_consumers(control_room)
    if not addresses:
        note(
            f"no consumer to acknowledge (no --ack, no lap timer in a stack at {control_room}): "
            "flat out goes as fast as sending goes"
        )
        return None
    acks = [
        ConsumerAck.parse(address, window=window, stop=stop, streams=streams)
        for address in addresses
    ]
    consumers = Consumers(acks).connect(retries=int(CONNECT_S / 0.1))
    if not named:
        note(f"acknowledged by the stack's lap timer(s): {consumers.address}")
    return consumers
