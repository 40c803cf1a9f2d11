"""Championship standings from the league file, the attached session reports and the stewards'
decisions (no I/O).

Per attached session: each classified row is matched to a league driver (race number, then
network id, then name or alias); the decisions on that session are applied (time penalties
re-sort the finishers on the same lap count; a position penalty moves the driver down; a
disqualification puts them last with no points); points by the session's table (race or
sprint), the fastest-lap bonus (races, holder classified within `fastest_lap_max_position`),
pole points (qualifying: P1). Points deductions come off the driver's total after the worst
`dropped_rounds` rounds are dropped. Ties are broken by count-back: most wins in races, then
most second places, and so on; then by name. Teams: the sum of their drivers' rounds (no drops)
less deductions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import League

CLASSIFIED = ("finished",)


@dataclass(frozen=True)
class Decision:
    round: str
    session_uid: str
    driver: str  # the league driver's name
    kind: str  # "time_penalty" | "positions" | "points" | "dsq"
    value: int
    by: str
    at: str
    why: str
    id: int | None = None


@dataclass
class Attached:
    round: str
    kind: str  # race | sprint | qualifying
    report: dict[str, Any]


@dataclass
class SessionResult:
    round: str
    kind: str
    session_uid: str
    order: list[dict[str, Any]]  # league drivers in the final order, with status and points
    unmatched: list[str] = field(default_factory=list)


def match_driver(league: League, row: dict[str, Any]) -> str | None:
    """The league driver a report row is, or None."""
    number = row.get("race_number")
    if number is not None:
        for driver in league.drivers:
            if driver.race_number is not None and driver.race_number == number:
                return driver.name
    network = row.get("network_id")
    if network is not None and network != 255:
        for driver in league.drivers:
            if driver.network_id is not None and driver.network_id == network:
                return driver.name
    name = str(row.get("driver", "")).casefold()
    for driver in league.drivers:
        if name in (driver.name.casefold(), *(a.casefold() for a in driver.aliases)):
            return driver.name
    return None


def session_result(league: League, attached: Attached, decisions: list[Decision]) -> SessionResult:
    report = attached.report
    rows, unmatched = [], []
    for row in report["classification"]:
        name = match_driver(league, row)
        if name is None:
            unmatched.append(row["driver"])
        rows.append(
            {
                "driver": name,
                "game_driver": row["driver"],
                "status": row["status"],
                "laps": row["laps"],
                "time_ms": row.get("time_with_penalties_ms"),
                "best_lap_ms": row.get("best_lap_ms"),
                "position": row["position"],
            }
        )
    mine = [d for d in decisions if d.session_uid == report["session_uid"]]
    for decision in mine:
        for row in rows:
            if row["driver"] == decision.driver:
                if decision.kind == "time_penalty" and row["time_ms"] is not None:
                    row["time_ms"] += 1000 * decision.value
                elif decision.kind == "dsq":
                    row["status"] = "DSQ"
    if attached.kind != "qualifying" and any(d.kind == "time_penalty" for d in mine):
        # Finishers on the same lap count re-sorted by time; the rest keep their places.
        finishers = [r for r in rows if r["status"] == "finished" and r["time_ms"] is not None]
        finishers.sort(key=lambda r: (-r["laps"], r["time_ms"]))
        slots = [i for i, r in enumerate(rows) if r in finishers]
        for slot, row in zip(slots, finishers, strict=True):
            rows[slot] = row
    for decision in mine:
        if decision.kind == "positions":
            at = next((i for i, r in enumerate(rows) if r["driver"] == decision.driver), None)
            if at is not None:
                row = rows.pop(at)
                rows.insert(min(len(rows), at + decision.value), row)
    rows = [r for r in rows if r["status"] != "DSQ"] + [r for r in rows if r["status"] == "DSQ"]
    points = league.points
    table = {"race": points.race, "sprint": points.sprint}.get(attached.kind, [])
    fastest = None
    if attached.kind == "race" and points.fastest_lap:
        timed = [r for r in rows if r["best_lap_ms"] and r["status"] != "DSQ"]
        fastest = min(timed, key=lambda r: r["best_lap_ms"], default=None)
    for position, row in enumerate(rows, start=1):
        row["position"] = position
        scored = 0
        if row["status"] in CLASSIFIED and position <= len(table):
            scored = table[position - 1]
        if (
            row is fastest
            and row["status"] in CLASSIFIED
            and position <= points.fastest_lap_max_position
        ):
            scored += points.fastest_lap
            row["fastest_lap"] = True
        if attached.kind == "qualifying" and position == 1:
            scored += points.pole
        row["points"] = scored
    return SessionResult(
        attached.round,
        attached.kind,
        report["session_uid"],
        [r for r in rows if r["driver"] is not None],
        unmatched,
    )


def standings(league: League, attached: list[Attached], decisions: list[Decision]) -> dict:
    results = [session_result(league, a, decisions) for a in attached]
    held = [r.name for r in league.rounds if any(s.round == r.name for s in results)]
    per_round: dict[str, dict[str, int]] = {d.name: {} for d in league.drivers}
    race_places: dict[str, list[int]] = {d.name: [] for d in league.drivers}
    for result in results:
        for row in result.order:
            rounds = per_round[row["driver"]]
            rounds[result.round] = rounds.get(result.round, 0) + row["points"]
            if result.kind == "race" and row["status"] in CLASSIFIED:
                race_places[row["driver"]].append(row["position"])
    deductions: dict[str, int] = {}
    for decision in decisions:
        if decision.kind == "points":
            deductions[decision.driver] = deductions.get(decision.driver, 0) + decision.value
    drivers = []
    for driver in league.drivers:
        scores = [per_round[driver.name].get(name, 0) for name in held]
        drop = min(league.dropped_rounds, max(0, len(scores) - 1))
        dropped = sorted(range(len(scores)), key=lambda i: (scores[i], i))[:drop]
        counted = sum(s for i, s in enumerate(scores) if i not in dropped)
        drivers.append(
            {
                "driver": driver.name,
                "team": driver.team,
                "rounds": dict(zip(held, scores, strict=True)),
                "dropped": [held[i] for i in dropped],
                "deducted": deductions.get(driver.name, 0),
                "points": counted - deductions.get(driver.name, 0),
                "wins": race_places[driver.name].count(1),
                "_countback": _countback(race_places[driver.name]),
            }
        )
    drivers.sort(key=lambda d: (-d["points"], d["_countback"], d["driver"]))
    for position, row in enumerate(drivers, start=1):
        row["position"] = position
        del row["_countback"]
    teams: dict[str, int] = {}
    for driver in league.drivers:
        if driver.team:
            total = sum(per_round[driver.name].values()) - deductions.get(driver.name, 0)
            teams[driver.team] = teams.get(driver.team, 0) + total
    team_rows = sorted(teams.items(), key=lambda item: (-item[1], item[0]))
    return {
        "league": league.name,
        "rounds_held": held,
        "rounds": [r.name for r in league.rounds],
        "drivers": drivers,
        "teams": [
            {"position": i, "team": name, "points": points}
            for i, (name, points) in enumerate(team_rows, start=1)
        ],
        "sessions": [
            {
                "round": r.round,
                "kind": r.kind,
                "session_uid": r.session_uid,
                "order": r.order,
                "unmatched": r.unmatched,
            }
            for r in results
        ],
    }


def _countback(places: list[int]) -> tuple[int, ...]:
    """Sorts better first: more wins, then more seconds, ... (as negative counts)."""
    worst = max(places, default=0)
    return tuple(-places.count(p) for p in range(1, worst + 1)) + (0,) * (30 - worst)
