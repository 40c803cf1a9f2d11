"""A car's laps as the live timing feed gives them, without I/O.

`FeedLaps.change(number, change)` takes one car's part of a TimingData message and returns the
laps it completes, each with the feed's own lap time and sector times; nothing is ever timed
from the clock. What the feed does (seen in real sessions):

- `NumberOfLaps` rises when a car crosses the line. In qualifying and practice it also rises
  when the car leaves the pit lane, and its first value (1) comes with the first exit from the
  garage: there it numbers the lap in progress; in a race it counts the laps done. Lap numbers
  here are the feed's: the lap in progress is `NumberOfLaps + 1` until a car's first count is
  seen to come with no lap driven before it (the garage exit), then `NumberOfLaps`.
- A lap's end values (`LastLapTime`, sector 3) and the count may come in one message or in
  several, in either order, with other cars' messages between. An end value that comes while
  the lap in progress has no sector yet belongs to the lap just ended, if that lap lacks it;
  otherwise to the lap in progress (its time before its count, or an in-lap: the time comes at
  the pit entry and the count only when the car leaves again). Sector 1 of a lap that already
  has its end values starts the next lap even before the count says so.
- A lap begun at a pit exit (an out-lap) gets from the feed the time since the car's previous
  crossing, its time in the pits included: it is timed only when its three sectors are known
  and add up to that time exactly. Other laps take the feed's `LastLapTime`.
- The feed sends only changes: a lap whose three sectors add up to the previous lap's time,
  and which got no `LastLapTime` of its own, took the same time (the value did not change).
- Empty values ("") clear the timing screen (a new lap, a new qualifying part): not data.
- A count going back is late data for a lap already done: ignored.

A timed lap is handed out once it is settled: it has its time and its three sectors, or the
next lap has begun to fill in (what it has then is all it will get).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .topics import time_ms


@dataclass(frozen=True)
class FeedLap:
    number: str  # racing number
    lap: int
    lap_time_ms: int
    sector_ms: tuple[int | None, int | None, int | None]
    pit_in: bool  # the car entered the pit lane on this lap
    pit_out: bool  # this lap began in the pit lane


@dataclass
class _Lap:
    lap: int
    sectors: list[int | None] = field(default_factory=lambda: [None, None, None])
    time_ms: int | None = None
    pit_in: bool = False
    pit_out: bool = False
    handed_out: bool = False

    def has_sector(self) -> bool:
        return self.sectors[0] is not None or self.sectors[1] is not None

    def has_end(self) -> bool:
        return self.time_ms is not None or self.sectors[2] is not None

    def all_sectors(self) -> bool:
        return None not in self.sectors

    def complete(self) -> bool:
        return self.time_ms is not None and self.all_sectors()


@dataclass
class _Car:
    count: int | None = None  # the feed's NumberOfLaps, as last raised
    base: int = 0  # 1 where the count numbers the lap in progress (left the garage)
    in_pit: bool = False
    left_pits: bool = False  # left the pit lane; the count that starts the out-lap to come
    current: _Lap = field(default_factory=lambda: _Lap(lap=1))
    previous: _Lap | None = None
    last_time_ms: int | None = None  # the feed's LastLapTime as last sent
    driven: bool = False  # a lap value seen since the session began


class FeedLaps:
    def __init__(self) -> None:
        self.cars: dict[str, _Car] = {}

    def lap_in_progress(self, number: str) -> int:
        car = self.cars.get(number)
        return car.current.lap if car else 1

    def sectors_in_progress(self, number: str) -> list[int | None]:
        car = self.cars.get(number)
        return list(car.current.sectors) if car else [None, None, None]

    def counted(self, number: str) -> bool:
        """The feed has counted a lap (or a garage exit) of this car."""
        car = self.cars.get(number)
        return car is not None and car.count is not None and car.count > 0

    def base(self, number: str) -> int:
        """1 where this car's count numbers the lap in progress (it left the garage), else 0."""
        car = self.cars.get(number)
        return car.base if car else 0

    def laps_done(self, number: str) -> int:
        return self.lap_in_progress(number) - 1

    def change(self, number: str, change: dict[str, Any]) -> list[FeedLap]:
        """The laps this change of car `number` settles (timed laps only)."""
        car = self.cars.setdefault(number, _Car())
        out: list[FeedLap] = []
        sectors = _sector_values(change)
        lap_time = _value_ms(change.get("LastLapTime"))
        if lap_time is not None:
            car.last_time_ms = lap_time
        count = change.get("NumberOfLaps")
        count = count if isinstance(count, int) and not isinstance(count, bool) else None
        raised = count is not None and (car.count is None or count > car.count)
        if count is not None and car.count is None and count == 1 and not car.driven:
            car.base = 1  # the count came with the garage exit: it numbers the lap in progress

        # Sector 1 (or 2) of a lap whose end values are in: the next lap has begun.
        if (sectors[0] is not None or sectors[1] is not None) and car.current.has_end():
            out += self._advance(number, car, car.current.lap + 1)
        # End values: to the lap just ended while the next has nothing yet, else to this lap.
        for value, index in ((lap_time, None), (sectors[2], 2)):
            if value is None:
                continue
            target = car.current
            previous = car.previous
            if (
                previous is not None
                and not raised
                and not car.current.has_sector()
                and (previous.time_ms is None if index is None else previous.sectors[2] is None)
            ):
                target = previous
            if index is None:
                target.time_ms = value
            else:
                target.sectors[2] = value
        for index in (0, 1):
            if sectors[index] is not None:
                car.current.sectors[index] = sectors[index]
        if sectors != [None, None, None] or lap_time is not None:
            car.driven = True

        if raised:
            car.count = count
            lap = count + 1 - car.base
            if lap > car.current.lap:
                # Begun in the pit lane: the car is there, or left it for this count.
                pit_out = (
                    car.in_pit
                    or car.left_pits
                    or change.get("InPit") is False
                    or change.get("PitOut") is True
                )
                out += self._advance(number, car, lap, pit_out)
            car.left_pits = False
        if "InPit" in change:
            entering = bool(change["InPit"])
            if entering and not car.in_pit:
                car.current.pit_in = True
            elif not entering and car.in_pit:
                if car.current.has_sector():
                    car.left_pits = True  # an in-lap not counted yet: its count comes next
                else:
                    car.current.pit_out = True  # left before the lap's first sector
            car.in_pit = entering
        out += self._settle(number, car)
        return out

    def _advance(self, number: str, car: _Car, lap: int, pit_out: bool = False) -> list[FeedLap]:
        """The lap in progress ends; `lap` begins."""
        out = []
        if car.previous is not None:
            out += self._hand_out(car, car.previous, number, closing=True)
        car.previous = car.current
        car.current = _Lap(lap=lap, pit_out=pit_out)
        return out

    def _settle(self, number: str, car: _Car) -> list[FeedLap]:
        """Laps complete (time and three sectors; an in-lap before its count), and the lap just
        ended once the next has begun to fill in."""
        out: list[FeedLap] = []
        for lap in (car.previous, car.current):
            if lap is not None and (lap.complete() or (lap is car.previous and lap.all_sectors())):
                out += self._hand_out(car, lap, number, closing=False)
        if car.previous is not None and car.current.has_sector():
            out += self._hand_out(car, car.previous, number, closing=True)
        return out

    def _hand_out(self, car: _Car, lap: _Lap, number: str, closing: bool) -> list[FeedLap]:
        if lap.handed_out:
            return []
        lap_time = self._time_of(car, lap)
        if lap_time is None:
            lap.handed_out = closing  # nothing more will come for it
            return []
        lap.handed_out = True
        s1, s2, s3 = lap.sectors
        return [FeedLap(number, lap.lap, lap_time, (s1, s2, s3), lap.pit_in, lap.pit_out)]

    def _time_of(self, car: _Car, lap: _Lap) -> int | None:
        known = None not in lap.sectors
        total = sum(s for s in lap.sectors if s is not None)
        if lap.time_ms is None:
            # No time of its own: the feed's value did not change (the same time again).
            if known and total == car.last_time_ms and car.previous is lap:
                return total
            return None
        if lap.pit_out and not (known and total == lap.time_ms):
            return None  # counted from the previous crossing: the time in the pits included
        return lap.time_ms


def _value_ms(entry: Any) -> int | None:
    if not isinstance(entry, dict):
        return None
    value = entry.get("Value")
    if not value:
        return None
    return time_ms(value)


def _sector_values(change: dict[str, Any]) -> list[int | None]:
    sectors = change.get("Sectors")
    out: list[int | None] = [None, None, None]
    if isinstance(sectors, dict):
        items = [(k, v) for k, v in sectors.items() if str(k).isdigit()]
    elif isinstance(sectors, list):
        items = list(enumerate(sectors))
    else:
        return out
    for key, sector in items:
        index = int(key)
        if 0 <= index < 3:
            out[index] = _value_ms(sector)
    return out
