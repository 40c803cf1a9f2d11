"""The field: 22 drivers in 11 teams, with the ids EA's appendices give them.

Ids are from EA's F1 24 appendix (team, driver, nationality). Drivers that appendix does not
list carry driver id 255; the 11th team has no EA id of its own and uses 41 ("F1 Generic").
`pace` is a car-and-driver factor on the reference lap time (1.0 is the fastest package).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Team:
    name: str
    team_id: int
    colour: tuple[int, int, int]
    pace: float


@dataclass(frozen=True)
class Driver:
    name: str
    team: Team
    race_number: int
    nationality: int
    driver_id: int
    skill: float  # driver's own offset on the team's pace factor


MCLAREN = Team("McLaren", 8, (255, 128, 0), 1.000)
RED_BULL = Team("Red Bull Racing", 2, (30, 65, 255), 1.002)
FERRARI = Team("Ferrari", 1, (220, 0, 0), 1.003)
MERCEDES = Team("Mercedes", 0, (0, 210, 190), 1.003)
WILLIAMS = Team("Williams", 3, (0, 90, 255), 1.008)
RACING_BULLS = Team("RB", 6, (100, 140, 255), 1.009)
ASTON_MARTIN = Team("Aston Martin", 4, (0, 111, 98), 1.010)
HAAS = Team("Haas", 7, (180, 180, 180), 1.010)
SAUBER = Team("Sauber", 9, (0, 230, 0), 1.011)
ALPINE = Team("Alpine", 5, (255, 135, 188), 1.012)
CADILLAC = Team("Cadillac", 41, (120, 120, 120), 1.016)

# Grid order of the list is irrelevant: the race draws the grid from pace and the seed.
DRIVERS: tuple[Driver, ...] = (
    Driver("Lando NORRIS", MCLAREN, 4, 10, 54, 0.000),
    Driver("Oscar PIASTRI", MCLAREN, 81, 3, 112, 0.000),
    Driver("Max VERSTAPPEN", RED_BULL, 1, 22, 9, -0.002),
    Driver("Yuki TSUNODA", RED_BULL, 22, 43, 94, 0.004),
    Driver("Charles LECLERC", FERRARI, 16, 53, 58, -0.001),
    Driver("Lewis HAMILTON", FERRARI, 44, 10, 7, 0.001),
    Driver("George RUSSELL", MERCEDES, 63, 10, 50, -0.001),
    Driver("Kimi ANTONELLI", MERCEDES, 12, 41, 255, 0.002),
    Driver("Alexander ALBON", WILLIAMS, 23, 80, 62, 0.000),
    Driver("Carlos SAINZ", WILLIAMS, 55, 77, 0, 0.001),
    Driver("Isack HADJAR", RACING_BULLS, 6, 28, 149, 0.000),
    Driver("Liam LAWSON", RACING_BULLS, 30, 54, 113, 0.002),
    Driver("Fernando ALONSO", ASTON_MARTIN, 14, 77, 3, -0.001),
    Driver("Lance STROLL", ASTON_MARTIN, 18, 13, 19, 0.003),
    Driver("Esteban OCON", HAAS, 31, 28, 17, 0.001),
    Driver("Oliver BEARMAN", HAAS, 87, 10, 147, 0.001),
    Driver("Nico HULKENBERG", SAUBER, 27, 29, 10, 0.000),
    Driver("Gabriel BORTOLETO", SAUBER, 5, 9, 255, 0.002),
    Driver("Pierre GASLY", ALPINE, 10, 28, 59, 0.000),
    Driver("Franco COLAPINTO", ALPINE, 43, 2, 255, 0.003),
    Driver("Sergio PEREZ", CADILLAC, 11, 52, 14, 0.000),
    Driver("Valtteri BOTTAS", CADILLAC, 77, 27, 15, 0.001),
)
