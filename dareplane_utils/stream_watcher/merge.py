"""Merging samples of several streams in their producer's own order, with a watermark (no I/O).

    merge = SequenceMerge(["raceplane.session", "raceplane.lap_data", "raceplane.events"])
    merge.add_input("raceplane.lap_data")          # only connected inputs are waited for
    merge.push("raceplane.lap_data", session="42", seq=1017, item=row, arrived=t_pulled)
    merge.drained("raceplane.events", at=t_polled)  # its inlet was polled empty at that time
    for stream, item in merge.release(): ...
    merge.next_due()                               # when a held sample may go (if drained)

Each sample carries its producer's sequence: the session it belongs to and a number that rises
with every step of the producer (the game's overall frame identifier; the live-timing
replay's sample count). The merge releases samples in the order of (session epoch, seq, input
rank): an input's rank (its place in the constructor's list) orders samples of one step.

A sample is released once every other connected input has passed its key (its newest sample
has a key at least as large, or it has samples waiting, which are never smaller), or once each
input still behind was polled empty (`drained`) long enough after the sample arrived: for
`watermark_s` if the input is dense (its sequence rose by exactly one at each of its last
DENSE_RUN samples: it has a sample every step, so it passes the key with its next one) or
connected but not heard from yet (it may be subscribing), for `sparse_wait_s` if it is sparse
(events, session packets: silence is normal there; the wait covers the skew between two
inlets). The waits
count only while the input has nothing queued, so a consumer that falls behind (a backlog
in an inlet, a paused process) never releases anything early. A dense or unheard input
waited out this way is taken as stopped (`stale`) and not waited for until it delivers again.
A producer that numbers every sample of the merged streams 1, 2, 3 ... without gaps or repeats
(the live-timing replay) says so with `push(..., contiguous=True)`; its epoch then needs no
waiting: key n + 1 goes right after key n (and key 1 first), and a gap (a sample still on its
way) is waited for until every input was polled empty `watermark_s` after the next sample
arrived (`gaps`). The rules for bad sequences (counted in `counts`):

- new session on an input: a new epoch, ordered after every epoch seen before it;
- the sequence going back by more than `restart_step` within a session (a producer restarted
  with the same session): a new epoch too (`restarts`);
- going back by up to `restart_step` (a reordered datagram): kept in the input's order at its
  previous key (`reordered`); the same key again (a repeated packet, several samples of one
  step): released after the first (`repeats`);
- a sample whose key is below what was already released (its input was waited out, or it
  came from an old epoch): released at once, out of order (`late`), never dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

Key = tuple[int, float]  # (epoch, seq)
# An input whose sequence rose by exactly one this many times in a row has a sample every step.
DENSE_RUN = 3


@dataclass
class _Input:
    rank: int
    connected: bool = False
    queue: deque[tuple[Key, float, Any, Hashable, float]] = field(default_factory=deque)
    last: Key | None = None  # key of the newest sample pushed
    session: Hashable | None = None
    seq: float | None = None  # raw seq of the newest sample pushed
    generations: dict[Hashable, int] = field(default_factory=dict)
    run: int = 0  # consecutive steps of exactly one
    stale: bool = False
    drained_at: float = float("-inf")  # the last time its inlet was polled empty


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
        self.late: dict[str, int] = {}  # late samples by input
        self._ready: list[tuple[str, Any]] = []  # late samples, released with the next call
        self._next_due: float | None = None
        self.counts = dict.fromkeys(
            ("released", "late", "restarts", "reordered", "repeats", "waited_out", "gaps"), 0
        )
        self._contiguous: dict[int, bool] = {}  # epoch -> numbered without gaps or repeats
        self._last_released: dict[int, float] = {}  # epoch -> seq released last

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

    def drained(self, stream: str, at: float) -> None:
        """Everything that had arrived for `stream` by time `at` has been pushed."""
        state = self.inputs[stream]
        state.drained_at = max(state.drained_at, at)

    def push(
        self,
        stream: str,
        session: Hashable,
        seq: float,
        item: Any,
        arrived: float,
        contiguous: bool = False,
    ) -> None:
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
        self._contiguous[epoch] = self._contiguous.get(epoch, True) and contiguous
        state.run = state.run + 1 if step == 1 else 0
        if self._applied_key is not None and key < self._applied_key:
            self.counts["late"] += 1
            self.late[stream] = self.late.get(stream, 0) + 1
            self._ready.append((stream, item))
            if state.last is None or key > state.last:
                state.last = key
            return
        state.last = key
        state.queue.append((key, arrived, item, session, seq))

    def next_due(self) -> float | None:
        """When the sample held next may go if the inputs it waits for stay empty, or None."""
        return self._next_due

    def release(self, wait: bool = True) -> list[tuple[str, Any]]:
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
            due = self._contiguous_due(key, arrived, inputs) if wait else None
            if due is None and wait and not self._in_sequence(key):
                due = self._due(head_name, key, arrived, inputs)
            if due is not None:
                self._next_due = due
                break
            key, _, item, session, seq = state.queue.popleft()
            out.append((head_name, item))
            self.applied = (session, seq)
            self._applied_key = key
            self._last_released[key[0]] = key[1]
        self.counts["released"] += len(out)
        return out

    def _in_sequence(self, key: Key) -> bool:
        """A contiguous epoch's next number (or one at or below it): nothing can come before."""
        epoch, seq = key
        if not self._contiguous.get(epoch):
            return False
        return seq <= self._last_released.get(epoch, 0) + 1

    def _contiguous_due(
        self, key: Key, arrived: float, inputs: list[tuple[str, _Input]]
    ) -> float | None:
        """For a contiguous epoch with a gap before `key`: when the gap is waited out (None:
        no gap, or waited out now)."""
        epoch, seq = key
        if not self._contiguous.get(epoch) or epoch not in self._last_released:
            return None
        if seq <= self._last_released[epoch] + 1:
            return None
        limit = arrived + self.watermark_s
        if any(other.drained_at < limit for _, other in inputs if other.connected):
            return limit
        self.counts["gaps"] += 1
        return None

    def _due(
        self, head_name: str, key: Key, arrived: float, inputs: list[tuple[str, _Input]]
    ) -> float | None:
        """When the sample at the head may go if the inputs still behind stay empty (None:
        now). Marks inputs waited out as stale."""
        due: float | None = None
        for name, other in inputs:
            if (
                name == head_name
                or other.queue
                or other.stale
                or (other.last is not None and other.last >= key)
            ):
                continue
            # An input connected but not heard from yet may be just subscribing: it gets
            # the watermark, as a dense one does.
            waits_long = other.run >= DENSE_RUN or other.last is None
            limit = arrived + (self.watermark_s if waits_long else self.sparse_wait_s)
            if other.drained_at < limit:
                due = limit if due is None else max(due, limit)
            elif waits_long:
                other.stale = True
                self.counts["waited_out"] += 1
        return due

    def drain(self) -> list[tuple[str, Any]]:
        """Everything still held, in order, without waiting (at the end of input)."""
        return self.release(wait=False)
