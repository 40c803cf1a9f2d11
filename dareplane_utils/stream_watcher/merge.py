"""Merging samples of several streams in their producer's own order, with a watermark (no I/O).

    merge = SequenceMerge(["raceplane.session", "raceplane.lap_data", "raceplane.events"])
    merge.add_input("raceplane.lap_data")          # only connected inputs are waited for
    merge.push("raceplane.lap_data", session="42", seq=1017, item=row, now=time.monotonic())
    for stream, item in merge.release(now=time.monotonic()): ...
    merge.next_due()                               # when a held sample's wait ends (or None)

Each sample carries its producer's sequence: the session it belongs to and a number that rises
with every step of the producer (the game's overall frame identifier; the live-timing
replay's row count). The merge releases samples in the order of (session epoch, seq, input
rank): an input's rank (its place in the constructor's list) orders samples of one step.

A sample is released once every other connected input has passed its key (its newest sample
has a key at least as large, or it has samples waiting, which are never smaller), or once it
has waited for the inputs still behind: `watermark_s` for a dense input (one whose sequence
rose by exactly one at its last sample: it has a sample every step, so it passes the key with
its next one) or one connected but not heard from yet (it may be subscribing), `sparse_wait_s`
for a sparse one (events, session packets: silence there is normal, so a short wait covers the
skew between inlets). Such an input that makes a sample wait out the watermark is taken as
stopped (`stale`) and not waited for until it delivers again. The rules for bad sequences (counted in `counts`):

- new session on an input: a new epoch, ordered after every epoch seen before it;
- the sequence going back by more than `restart_step` within a session (a producer restarted
  with the same session): a new epoch too (`restarts`);
- going back by up to `restart_step` (a reordered datagram): kept in the input's order at its
  previous key (`reordered`); the same key again (a repeated packet): released after the first
  (`repeats`);
- a sample whose key is below what was already released (its input was waited out, or it
  came from an old epoch): released at once, out of order (`late`), never dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

Key = tuple[int, float]  # (epoch, seq)


@dataclass
class _Input:
    rank: int
    connected: bool = False
    queue: deque[tuple[Key, float, Any, Hashable, float]] = field(default_factory=deque)
    last: Key | None = None  # key of the newest sample pushed
    session: Hashable | None = None
    seq: float | None = None  # raw seq of the newest sample pushed
    generations: dict[Hashable, int] = field(default_factory=dict)
    dense: bool = False
    stale: bool = False


class SequenceMerge:
    def __init__(
        self,
        inputs: Sequence[str],
        *,
        watermark_s: float = 1.0,
        sparse_wait_s: float = 0.01,
        restart_step: int = 5,
    ) -> None:
        if watermark_s < 0 or sparse_wait_s < 0:
            raise ValueError("waits must be >= 0")
        self.watermark_s = watermark_s
        self.sparse_wait_s = sparse_wait_s
        self.restart_step = restart_step
        self.inputs = {name: _Input(rank) for rank, name in enumerate(inputs)}
        self.applied: tuple[Hashable, float] | None = None  # (session, seq) released last
        self._applied_key: Key | None = None
        self._epochs: dict[tuple[Hashable, int], int] = {}
        self._ready: list[tuple[str, Any]] = []  # late samples, released with the next call
        self._next_due: float | None = None
        self.counts = dict.fromkeys(
            ("released", "late", "restarts", "reordered", "repeats", "waited_out"), 0
        )

    def add_input(self, name: str) -> None:
        """From now on samples wait for `name` (it is connected)."""
        self.inputs[name].connected = True

    def remove_input(self, name: str) -> None:
        self.inputs[name].connected = False

    @property
    def pending(self) -> int:
        return sum(len(i.queue) for i in self.inputs.values()) + len(self._ready)

    @property
    def stale(self) -> list[str]:
        return [name for name, i in self.inputs.items() if i.stale]

    def push(self, stream: str, session: Hashable, seq: float, item: Any, now: float) -> None:
        state = self.inputs[stream]
        state.connected = True
        state.stale = False
        if state.session != session or state.seq is None or state.last is None:
            state.session = session
            state.generations.setdefault(session, 0)
            effective, step = seq, None
        elif seq < state.seq - self.restart_step:
            state.generations[session] += 1
            self.counts["restarts"] += 1
            effective, step = seq, None
        elif seq < state.seq:
            self.counts["reordered"] += 1
            effective, step = state.last[1], 0.0
        else:
            if seq == state.seq:
                self.counts["repeats"] += 1
            effective, step = seq, seq - state.seq
        if step != 0.0 or state.seq is None or seq > state.seq:
            state.seq = seq
        epoch = self._epochs.setdefault((session, state.generations[session]), len(self._epochs))
        key = (epoch, effective)
        state.dense = step == 1
        if self._applied_key is not None and key < self._applied_key:
            self.counts["late"] += 1
            self._ready.append((stream, item))
            if state.last is None or key > state.last:
                state.last = key
            return
        state.last = key
        state.queue.append((key, now, item, session, seq))

    def next_due(self) -> float | None:
        """When the sample held longest will have waited enough (monotonic), or None."""
        return self._next_due

    def release(self, now: float, wait: bool = True) -> list[tuple[str, Any]]:
        """(stream, item) of every sample that may go now, in order (`wait` False: everything
        held, without waiting for anyone)."""
        out, self._ready = self._ready, []
        self._next_due = None
        inputs = [i for i in self.inputs.items() if i[1].connected or i[1].queue]
        while True:
            head: tuple[Key, int] | None = None
            head_name = ""
            for name, state in inputs:
                if state.queue:
                    candidate = (state.queue[0][0], state.rank)
                    if head is None or candidate < head:
                        head, head_name = candidate, name
            if head is None:
                break
            key = head[0]
            state = self.inputs[head_name]
            arrived = state.queue[0][1]
            due: float | None = None
            for name, other in inputs:
                if (
                    not wait
                    or name == head_name
                    or other.queue
                    or other.stale
                    or (other.last is not None and other.last >= key)
                ):
                    continue
                # An input connected but not heard from yet may be just subscribing: it gets
                # the watermark, as a dense one does.
                waits_long = other.dense or other.last is None
                limit = self.watermark_s if waits_long else self.sparse_wait_s
                if now < arrived + limit:
                    due = arrived + limit if due is None else max(due, arrived + limit)
                elif waits_long:
                    other.stale = True
                    self.counts["waited_out"] += 1
            if due is not None:
                self._next_due = due
                break
            key, _, item, session, seq = state.queue.popleft()
            out.append((head_name, item))
            self.applied = (session, seq)
            self._applied_key = key
        self.counts["released"] += len(out)
        return out

    def drain(self) -> list[tuple[str, Any]]:
        """Everything still held, in order, without waiting (at the end of input)."""
        return self.release(float("inf"), wait=False)
