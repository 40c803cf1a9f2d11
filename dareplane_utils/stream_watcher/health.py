"""Input health: which expected streams are missing or have stopped flowing (sans-IO).

A consumer names the streams it expects (`Expectation`), tells `InputHealth` what it sees
(`found`, `arrived`, `lost`) and asks `check(now)` now and then; every call returns the
`Transition`s into or out of trouble (missing, stale) it caused, which the consumer logs
(`log_transitions`) and STATUS shows (`status()`). No threads, no clock of its own: `now` is
whatever clock the caller passes (Raceplane's consumers pass `time.time()`, so `since` reads
as a wall-clock time).

States of one stream:
- waiting:   not found yet, within `grace_s` of the start (no alarm yet)
- missing:   not found within `grace_s`, or lost and not found again
- connected: found, nothing arrived yet (and not for long enough to call it stale)
- flowing:   samples arrive
- stale:     nothing for `stale_after_s` (since the last sample, or since found); only for
             streams that are sent regularly (`stale_after_s` None: events, laps: never stale)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

GRACE_S = 3.0
STALE_AFTER_S = 5.0


class InputState(StrEnum):
    WAITING = "waiting"
    MISSING = "missing"
    CONNECTED = "connected"
    FLOWING = "flowing"
    STALE = "stale"


PROBLEMS = (InputState.MISSING, InputState.STALE)


@dataclass(frozen=True)
class Expectation:
    stream: str
    producer: str  # who publishes it, for the messages a person reads ("telemetry_decoder")
    stale_after_s: float | None = STALE_AFTER_S  # None: irregular, silence is normal


@dataclass(frozen=True)
class Transition:
    stream: str
    producer: str
    before: InputState
    after: InputState
    since: float  # missing: since when looked for; stale: time of the last sample (or found)

    @property
    def is_problem(self) -> bool:
        return self.after in PROBLEMS

    def message(self) -> str:
        return problem_text(self.stream, self.producer, self.after, self.since) or (
            f"{self.stream} from {self.producer} is {self.after} again"
        )


def problem_text(stream: str, producer: str, state: InputState, since: float) -> str | None:
    """What a person reads about a stream in trouble; None when it is not."""
    at = time.strftime("%H:%M:%S", time.localtime(since))
    if state == InputState.MISSING:
        return f"{stream} not found since {at}: is {producer} running, in this stack's LSL session?"
    if state == InputState.STALE:
        return f"no data from {producer} since {at} ({stream})"
    return None


@dataclass
class _Stream:
    expectation: Expectation
    state: InputState
    since: float  # when the current state's story began (see Transition.since)
    found_at: float | None = None
    last_sample: float | None = None
    samples: int = 0


class InputHealth:
    def __init__(
        self, expectations: Iterable[Expectation], now: float, grace_s: float = GRACE_S
    ) -> None:
        self.grace_s = grace_s
        self.started = now
        self._streams = {
            e.stream: _Stream(e, InputState.WAITING, now) for e in expectations
        }  # fixed keys: readers in other threads iterate safely

    @property
    def expected(self) -> list[str]:
        return list(self._streams)

    def found(self, stream: str, now: float) -> list[Transition]:
        """The stream was found (an inlet is open on it)."""
        record = self._streams.get(stream)
        if record is None or record.state in (InputState.CONNECTED, InputState.FLOWING):
            return []
        record.found_at = now
        return self._move(record, InputState.CONNECTED, now)

    def lost(self, stream: str, now: float) -> list[Transition]:
        """The stream went away for good (its inlet was closed); it is looked for again."""
        record = self._streams.get(stream)
        if record is None:
            return []
        record.found_at = None
        return self._move(record, InputState.MISSING, now)

    def arrived(self, stream: str, count: int, now: float) -> list[Transition]:
        """`count` samples of the stream arrived (0 is allowed and changes nothing)."""
        record = self._streams.get(stream)
        if record is None or count <= 0:
            return []
        record.samples += count
        record.last_sample = now
        if record.found_at is None:
            record.found_at = now  # samples prove it was found
        if record.state == InputState.FLOWING:
            return []
        return self._move(record, InputState.FLOWING, now)

    def check(self, now: float) -> list[Transition]:
        """Advance the clock: waiting turns missing after the grace, silence turns stale."""
        transitions: list[Transition] = []
        for record in self._streams.values():
            state, limit = record.state, record.expectation.stale_after_s
            if state == InputState.WAITING and now - self.started >= self.grace_s:
                transitions += self._move(record, InputState.MISSING, self.started)
            elif state in (InputState.CONNECTED, InputState.FLOWING) and limit is not None:
                quiet_since = _first_known(record.last_sample, record.found_at, now)
                if now - quiet_since >= limit and now - self.started >= self.grace_s:
                    transitions += self._move(record, InputState.STALE, quiet_since)
        return transitions

    def _move(self, record: _Stream, state: InputState, since: float) -> list[Transition]:
        if state == record.state:
            return []
        before = record.state
        record.state, record.since = state, since
        if before not in PROBLEMS and state not in PROBLEMS:
            return []  # found in time, or flowing as it should: nothing anyone needs to hear
        e = record.expectation
        return [Transition(e.stream, e.producer, before, state, since)]

    def status(self) -> dict[str, Any]:
        """STATUS `inputs` fields: `missing`, `stale` (stream names), `problems` (sentences, one
        per producer and kind of trouble), `streams` (each expected stream's state)."""
        records = list(self._streams.values())
        problems = []
        for state, pick in ((InputState.MISSING, min), (InputState.STALE, max)):
            by_producer: dict[str, list[_Stream]] = {}
            for r in records:
                if r.state == state:
                    by_producer.setdefault(r.expectation.producer, []).append(r)
            for producer, group in by_producer.items():
                names = ", ".join(r.expectation.stream for r in group)
                # Missing: looked for since the first; stale: data came last at the newest.
                problems.append(problem_text(names, producer, state, pick(r.since for r in group)))
        return {
            "missing": [r.expectation.stream for r in records if r.state == InputState.MISSING],
            "stale": [r.expectation.stream for r in records if r.state == InputState.STALE],
            "problems": problems,
            "streams": {
                r.expectation.stream: {
                    "state": str(r.state),
                    "producer": r.expectation.producer,
                    "since": r.since,
                    "samples": r.samples,
                    "last_sample": r.last_sample,
                }
                for r in records
            },
        }


def _first_known(*times: float | None) -> float:
    return next(t for t in times if t is not None)


def log_transitions(logger: logging.Logger, who: str, transitions: Iterable[Transition]) -> None:
    """A warning for every stream that went missing or stale, a note for every one back."""
    for transition in transitions:
        if transition.is_problem:
            logger.warning("%s: %s", who, transition.message())
        else:
            logger.info("%s: %s", who, transition.message())
