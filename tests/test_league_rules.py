"""League rules the simulated season (test_league.py) does not reach, on hand-made reports: pole
points for P1 of an attached qualifying session, a stewards' position penalty, and a driver
matched by an alias where the game shows "Player"."""

from __future__ import annotations

from modules.league.config import parse_league
from modules.league.standings import Attached, Decision, standings

LEAGUE = """
name = "Rules"
[points]
race = [10, 6, 4]
pole = 2
fastest_lap = 0
[[rounds]]
name = "R1"
[[drivers]]
name = "A"
race_number = 1
[[drivers]]
name = "B"
aliases = ["Player"]
[[drivers]]
name = "C"
race_number = 3
"""


def report(uid: str, rows: list[tuple[str, int | None]]) -> dict:
    """A report whose classification is `rows` (game name, race number), all finished."""
    return {
        "session_uid": uid,
        "classification": [
            {
                "position": i,
                "driver": name,
                "race_number": number,
                "network_id": 255,
                "status": "finished",
                "laps": 5,
                "time_with_penalties_ms": 600_000 + i,
                "best_lap_ms": 90_000 + i,
            }
            for i, (name, number) in enumerate(rows, start=1)
        ],
    }


def test_pole_points_a_position_penalty_and_an_alias() -> None:
    league = parse_league(LEAGUE)
    qualifying = Attached("R1", "qualifying", report("q", [("Player", None), ("X", 1), ("Y", 3)]))
    race = Attached("R1", "race", report("r", [("X", 1), ("Player", None), ("Y", 3)]))
    before = standings(league, [qualifying, race], [])
    assert [(d["driver"], d["points"]) for d in before["drivers"]] == [
        ("A", 10),  # race win
        ("B", 8),  # pole 2 + P2 6
        ("C", 4),
    ]
    # A drops two places in the race: B wins, C second, A third.
    drop = Decision("R1", "r", "A", "positions", 2, by="stewards", at="t", why="unsafe release")
    after = standings(league, [qualifying, race], [drop])
    assert [(d["driver"], d["points"]) for d in after["drivers"]] == [
        ("B", 12),
        ("C", 6),
        ("A", 4),
    ]
    order = next(s for s in after["sessions"] if s["session_uid"] == "r")["order"]
    assert [(r["driver"], r["position"]) for r in order] == [("B", 1), ("C", 2), ("A", 3)]
