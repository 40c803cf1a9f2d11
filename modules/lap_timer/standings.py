"""The standings table of a session, computed from its laps and cars (no I/O)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .points import PointsRules, award
from .records import Car, Lap, Session

RUNNING = ("running", "finished")


@dataclass
class Row:
    position: int
    car_index: int | None
    driver: str
    team: str
    laps: int
    gap_ms: int | None
    interval_ms: int | None
    last_lap_ms: int | None
    best_lap_ms: int | None
    pit_stops: int
    status: str
    points: int | float
    best_sectors_ms: list[int | None]
    best_by_part_ms: list[int | None]  # qualifying parts Q1..Q3 (live feed); [] otherwise


class _Competitor:
    """One car's (or driver's) laps, indexed for the questions the table asks."""

    def __init__(self, car: Car, laps: list[Lap], parts: int = 0) -> None:
        self.car = car
        self.by_number = {lap.lap: lap for lap in laps}
        self.laps = (
            max(self.by_number, default=0) if laps and laps[0].source == "game" else len(laps)
        )
        ordered = sorted(laps, key=lambda lap: (lap.lap, lap.id or 0))
        self.last = ordered[-1].lap_time_ms if ordered else None
        # Qualifying (live feed parts): an in-lap's time runs to the pit lane's line, and the
        # feed never makes it a best (2024 Spain: Piastri's 1:41.646 in-lap after his Q3 lap
        # was deleted left his Q3 best empty).
        valid = [lap for lap in laps if lap.valid and not (lap.pit_in and lap.part)]
        self.best_lap = min(valid, key=lambda lap: lap.lap_time_ms) if valid else None
        self.best_by_part = [
            min((lap.lap_time_ms for lap in valid if lap.part == part), default=None)
            for part in range(1, parts + 1)
        ]
        self.best_sectors = [
            min((s for lap in valid if (s := lap.sector_ms[i]) is not None), default=None)
            for i in range(3)
        ]

    @property
    def best(self) -> int | None:
        return self.best_lap.lap_time_ms if self.best_lap else None

    def race_time_ms(self, lap_number: int) -> tuple[str, float] | None:
        """Time at the end of `lap_number`: the exact sum of lap times when every lap is known,
        else the session clock when the lap was seen to end; tagged so only like is compared."""
        if lap_number <= 0:
            return ("sum", 0.0)
        laps = [self.by_number.get(n) for n in range(1, lap_number + 1)]
        if all(laps):
            return ("sum", float(sum(lap.lap_time_ms for lap in laps)))
        end = self.by_number.get(lap_number)
        if end is not None and end.session_time_s is not None:
            return ("clock", end.session_time_s * 1000.0)
        return None


def _difference(a: _Competitor, b: _Competitor, lap_number: int) -> int | None:
    """How far `a` was behind `b` at the end of `lap_number` (ms)."""
    ta, tb = a.race_time_ms(lap_number), b.race_time_ms(lap_number)
    if ta is None or tb is None or lap_number <= 0:
        return None
    if ta[0] != tb[0]:
        # One side has every lap, the other only the clock: compare on the clock if both have it.
        ca, cb = a.by_number.get(lap_number), b.by_number.get(lap_number)
        if ca is None or cb is None or ca.session_time_s is None or cb.session_time_s is None:
            return None
        return round((ca.session_time_s - cb.session_time_s) * 1000)
    return round(ta[1] - tb[1])


def _race_order(session: Session, competitors: dict[Any, _Competitor]) -> list[Any]:
    if session.final_order:
        listed = [key for key in session.final_order if key in competitors]
        return listed + [key for key in competitors if key not in listed]
    running = [key for key, c in competitors.items() if c.car.status in RUNNING]
    out = [key for key in competitors if key not in running]
    if running and all(competitors[key].car.position > 0 for key in running):
        running.sort(key=lambda key: competitors[key].car.position)
    else:
        running.sort(key=lambda key: _laps_then_time(competitors[key]))
    out.sort(key=lambda key: _laps_then_time(competitors[key]))
    return running + out


def _laps_then_time(competitor: _Competitor) -> tuple:
    time = competitor.race_time_ms(competitor.laps)
    return (-competitor.laps, time[1] if time else float("inf"), str(competitor.car.car_index))


def _best_lap_order(competitors: dict[Any, _Competitor]) -> list[Any]:
    def key(k: Any) -> tuple:
        c = competitors[k]
        best = c.best_lap
        # Equal times: whoever set it first ranks ahead, as in qualifying.
        return (
            best is None,
            best.lap_time_ms if best else 0,
            (best.id or 0) if best else 0,
            str(k),
        )

    return sorted(competitors, key=key)


def compute(session: Session, rules: PointsRules) -> dict[str, Any]:
    """The `raceplane.standings` sample for `session`."""
    by_key: dict[Any, list[Lap]] = {}
    for lap in session.laps:
        by_key.setdefault(session.key_of(lap), []).append(lap)
    parts = max((lap.part for lap in session.laps), default=0)
    competitors = {
        key: _Competitor(car, by_key.get(key, []), parts)
        for key, car in session.cars.items()
        if car.status != "inactive" or key in by_key
    }
    is_race = session.ranking == "race"
    if session.final_order and not is_race:
        # The classification given (the live feed's final positions) stands as it is.
        listed = [key for key in session.final_order if key in competitors]
        order = listed + [key for key in _best_lap_order(competitors) if key not in listed]
    else:
        order = _race_order(session, competitors) if is_race else _best_lap_order(competitors)

    fastest = min(
        (c.best_lap for c in competitors.values() if c.best_lap),
        key=lambda lap: (lap.lap_time_ms, lap.id or 0),
        default=None,
    )
    points: dict[Any, int | float] = {}
    if is_race:
        table_name = session.points_table or rules.table
        holder = None
        if (
            fastest is not None
            and session.source == "game"
            and rules.fastest_lap_counts(session.game_year, table_name)
        ):
            holder = session.key_of(fastest)
        classified = {key for key in order if competitors[key].car.status in RUNNING}
        points = award(
            order, classified, rules.tables[table_name], holder, rules.fastest_lap_max_position
        )

    rows: list[Row] = []
    for position, key in enumerate(order, start=1):
        c = competitors[key]
        gap = interval = None
        if position > 1:
            if is_race:
                leader, ahead = competitors[order[0]], competitors[order[position - 2]]
                gap = _difference(c, leader, c.laps)
                interval = _difference(c, ahead, c.laps)
            elif c.best is not None:
                pole, ahead = competitors[order[0]].best, competitors[order[position - 2]].best
                gap = c.best - pole if pole is not None else None
                interval = c.best - ahead if ahead is not None else None
        elif is_race or c.best is not None:
            gap = interval = 0
        rows.append(
            Row(
                position=position,
                car_index=c.car.car_index,
                driver=c.car.driver,
                team=c.car.team,
                laps=c.laps,
                gap_ms=gap,
                interval_ms=interval,
                last_lap_ms=c.last,
                best_lap_ms=c.best,
                pit_stops=c.car.pit_stops,
                status=c.car.status,
                points=points.get(key, 0),
                best_sectors_ms=c.best_sectors,
                best_by_part_ms=c.best_by_part,
            )
        )
    return {
        "session_uid": session.uid,
        "session_type": session.session_type,
        "track": session.track,
        "final": bool(session.final_order),
        # Qualifying parts as the live feed runs them ("Q2"); "" outside them.
        "part": f"Q{session.part}" if session.part else "",
        "red_flag": session.red_flag,
        "fastest_lap": None
        if fastest is None
        else {
            "car_index": fastest.car_index,
            "driver": fastest.driver,
            "lap": fastest.lap,
            "lap_time_ms": fastest.lap_time_ms,
        },
        "rows": [asdict(row) for row in rows],
    }
