"""Pit stops as the live timing feed times them, without I/O.

Two topics tell them (facts of the feed, as FastF1's and OpenF1's readers of it take them):

- `PitLaneTimeCollection`: `{"PitTimes": {"<racing number>": {"RacingNumber", "Duration",
  "Lap"}}}`, one entry per car, its latest pit-lane passage. The entry comes as the car enters
  the pit lane with `Duration` "" and gets its time, in seconds as text ("22.5"), once the car
  is out; `"_deleted": ["<racing number>"]` takes the entry off the screen later, which undoes
  no stop. The whole pit-lane time only.
- `PitStopSeries` (newer seasons): `{"PitTimes": {"<racing number>": [{"Timestamp", "PitStop":
  {"RacingNumber", "Lap", "PitStopTime", "PitLaneTime"}}]}}`, every stop of the car; changes
  add stops keyed by their index (`{"44": {"1": {...}}}`). `PitStopTime` is the stationary time.

`Lap` is the lap the car came in on (the in-lap). A stop is (car, lap): a topic telling it again
with the same times is a repeat, with other times a correction; where both topics time a stop,
PitStopSeries' pit-lane time wins (the collection's is the rougher one). `FeedPitStops` reads a
topic's whole merged state each time and returns the stops that are new or changed, and says
what it could not read (each once), so one bad value costs only its own stop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .topics import time_ms

LANE_TIMES, STOP_SERIES = "PitLaneTimeCollection", "PitStopSeries"


@dataclass(frozen=True)
class FeedPitStop:
    number: str  # the car's racing number
    lap: int  # the feed's lap number of the in-lap
    pit_lane_ms: int
    stationary_ms: int | None  # None: the feed has not said (PitLaneTimeCollection only)


@dataclass
class FeedPitStops:
    # (racing number, lap) -> pit-lane ms from the collection / (lane, stationary) from the series
    _lane: dict[tuple[str, int], int] = field(default_factory=dict)
    _series: dict[tuple[str, int], tuple[int | None, int | None]] = field(default_factory=dict)
    _told: dict[tuple[str, int], FeedPitStop] = field(default_factory=dict)
    _problems: set[str] = field(default_factory=set)

    def read(self, topic: str, state: Any) -> tuple[list[FeedPitStop], list[str]]:
        """(stops new or changed, problems not reported before) of a topic's whole state."""
        problems: list[str] = []
        keys: list[tuple[str, int]] = []
        for key, lane, stationary in self._entries(topic, state, problems):
            keys.append(key)
            if topic == LANE_TIMES and lane is not None:
                self._lane[key] = lane
            elif topic == STOP_SERIES:
                self._series[key] = (lane, stationary)
        stops = []
        for key in dict.fromkeys(keys):
            stop = self._stop(key)
            if stop is not None and self._told.get(key) != stop:
                self._told[key] = stop
                stops.append(stop)
        fresh = [p for p in problems if p not in self._problems]
        self._problems.update(fresh)
        return stops, fresh

    def _stop(self, key: tuple[str, int]) -> FeedPitStop | None:
        lane, stationary = self._series.get(key, (None, None))
        lane = lane if lane is not None else self._lane.get(key)
        return None if lane is None else FeedPitStop(key[0], key[1], lane, stationary)

    def _entries(
        self, topic: str, state: Any, problems: list[str]
    ) -> Iterator[tuple[tuple[str, int], int | None, int | None]]:
        """((number, lap), pit-lane ms, stationary ms) of each readable, timed entry."""
        cars = state.get("PitTimes") if isinstance(state, dict) else None
        if not isinstance(cars, dict):
            if state not in (None, {}):
                problems.append(f"{topic}: no PitTimes object in {_show(state)}")
            return
        for number, value in cars.items():
            if number == "_deleted":
                continue  # off the screen: the stop stands
            if not str(number).isdigit():
                problems.append(f"{topic}: {_show(number)} is not a racing number")
                continue
            if topic == LANE_TIMES:
                entries = [value]
            elif isinstance(value, list):
                entries = [
                    item.get("PitStop") if isinstance(item, dict) else item for item in value
                ]
            elif isinstance(value, dict):
                items = [value[k] for k in sorted(value, key=_index)]
                entries = [
                    item.get("PitStop") if isinstance(item, dict) else item for item in items
                ]
            else:
                entries = [value]
            for entry in entries:
                read = self._entry(topic, str(number), entry, problems)
                if read is not None:
                    yield read

    @staticmethod
    def _entry(
        topic: str, number: str, entry: Any, problems: list[str]
    ) -> tuple[tuple[str, int], int | None, int | None] | None:
        where = f"{topic}: car {number}"
        if not isinstance(entry, dict):
            problems.append(f"{where}: {_show(entry)} is not a pit stop")
            return None
        lap = entry.get("Lap")
        if not (isinstance(lap, int | str) and str(lap).isdigit() and int(lap) > 0):
            problems.append(f"{where}: Lap {_show(lap)} is not a lap number")
            return None
        names = ("Duration", None) if topic == LANE_TIMES else ("PitLaneTime", "PitStopTime")
        times: list[int | None] = []
        for name in names:
            value = entry.get(name) if name else None
            ms = time_ms(value)
            if value not in (None, "") and ms is None:
                problems.append(f"{where} lap {lap}: {name} {_show(value)} is not a time")
                return None
            times.append(ms)
        if times == [None, None]:
            return None  # in the pit lane now: not timed yet
        return (number, int(lap)), times[0], times[1]


def _index(key: Any) -> int:
    return int(key) if str(key).isdigit() else -1


def _show(value: Any) -> str:
    return repr(value)[:80]
