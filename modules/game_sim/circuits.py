"""Circuits whose pit lane and timing line sit the ways that trip lap counters up.

Plain data (the `Track` fields), turned into tracks by `modules.game_sim.tracks`. Lengths, lap
times and EA's track ids are the real ones; outlines are hand-traced (x east, z north, metres
before scaling, first point on the timing line). Where the line cuts the pit lane:

- box after the line (Monza, Austria, Silverstone, Monaco): the in-lap ends in the pit lane
  before the stop; the out-lap begins there, on the old tyres, and gets the new ones at the box.
- box before the line (Melbourne, Montreal): the stop is part of the in-lap; the line is
  crossed in the pit lane on the new tyres, between the box and the exit.
- the whole pit lane after the line (Lusail): entry, box and exit inside one lap, which is
  both the in-lap and the out-lap; no lap ends in the pit lane.
"""

from __future__ import annotations

from typing import Any

CIRCUITS: dict[str, dict[str, Any]] = {
    "melbourne": {
        "name": "Melbourne",
        "track_id": 0,
        "length_m": 5278.0,
        "sector2_start_m": 1690.0,
        "sector3_start_m": 3850.0,
        "reference_lap_s": 80.0,
        "pit_entry_m": 5000.0,
        "pit_box_m": 5160.0,  # before the line
        "pit_exit_m": 330.0,
        "speed_trap_m": 4300.0,
        "control_points": (
            (0, 0),
            (170, -130),
            (300, -230),  # start straight, south-east
            (345, -290),
            (330, -350),  # Turn 1, right
            (365, -400),  # Turn 2, left
            (420, -470),
            (390, -560),  # Turn 3, right
            (300, -610),
            (210, -590),  # Turns 4 and 5
            (0, -570),
            (-220, -540),  # west along the lake's south shore
            (-300, -500),
            (-320, -410),  # Turn 6
            (-380, -250),
            (-470, -40),  # Turn 7 and 8, the back of the lake
            (-560, 260),
            (-610, 420),  # Lakeside Drive
            (-575, 480),
            (-610, 550),  # Turns 9 and 10
            (-580, 740),
            (-470, 800),  # Turns 11 and 12, the fast sweep
            (-330, 740),
            (-240, 600),  # Turn 13
            (-180, 430),
            (-120, 300),  # Turn 14
            (-80, 160),
            (-50, 60),  # Turns 15 and 16 onto the straight
        ),
    },
    "monaco": {
        "name": "Monaco",
        "track_id": 5,
        "length_m": 3337.0,
        "sector2_start_m": 1110.0,
        "sector3_start_m": 2320.0,
        "reference_lap_s": 74.0,
        "pit_entry_m": 3250.0,  # just before the line: the in-lap ends at the pit entry
        "pit_box_m": 120.0,
        "pit_exit_m": 430.0,
        "speed_trap_m": 1500.0,
        "control_points": (
            (0, 0),
            (110, 70),  # the start straight along the harbour, north-east
            (160, 110),
            (150, 170),  # Sainte Devote, right
            (230, 300),
            (330, 450),  # Beau Rivage, uphill
            (370, 510),
            (420, 520),  # Massenet, left
            (470, 490),
            (500, 440),  # Casino, right
            (520, 380),
            (560, 330),  # down to Mirabeau
            (590, 270),
            (560, 230),  # Mirabeau, right
            (520, 190),
            (560, 150),  # the hairpin
            (590, 100),
            (560, 50),  # Portier, right
            (450, 10),
            (300, -40),
            (140, -90),  # the tunnel, west
            (40, -120),
            (0, -160),  # the chicane
            (-80, -190),
            (-130, -170),  # Tabac
            (-200, -140),
            (-230, -100),
            (-260, -60),  # Swimming pool
            (-250, -10),
            (-200, 10),  # La Rascasse
            (-150, -20),
            (-80, -30),  # Anthony Noghes
        ),
    },
    "montreal": {
        "name": "Montreal",
        "track_id": 6,
        "length_m": 4361.0,
        "sector2_start_m": 1300.0,
        "sector3_start_m": 3000.0,
        "reference_lap_s": 74.5,
        "pit_entry_m": 4120.0,  # before the last chicane
        "pit_box_m": 4290.0,  # before the line
        "pit_exit_m": 420.0,
        "speed_trap_m": 3700.0,
        "control_points": (
            (0, 0),
            (120, 60),
            (220, 110),  # start straight, north-east
            (270, 160),
            (230, 210),  # Turn 1, left
            (260, 260),  # Turn 2, the Senna hairpin
            (380, 280),
            (520, 330),  # along the island
            (560, 380),
            (620, 390),  # Turns 3 and 4
            (780, 470),
            (900, 560),  # Turn 5
            (960, 640),
            (1030, 650),  # Turns 6 and 7
            (1120, 720),
            (1150, 800),  # Turns 8 and 9
            (1230, 870),
            (1280, 930),
            (1250, 970),  # L'Epingle, the hairpin
            (1150, 900),
            (900, 700),
            (600, 480),  # Casino Straight, back south-west
            (300, 240),
            (100, 90),
            (-60, -20),  # the last chicane (Wall of Champions)
            (-90, -60),
            (-50, -50),
        ),
    },
    "lusail": {
        "name": "Losail",  # EA's spelling
        "track_id": 32,
        "length_m": 5419.0,
        "sector2_start_m": 1860.0,
        "sector3_start_m": 3890.0,
        "reference_lap_s": 84.0,
        "pit_entry_m": 80.0,  # after the line: the whole stop inside one lap
        "pit_box_m": 260.0,
        "pit_exit_m": 560.0,
        "speed_trap_m": 5100.0,
        "control_points": (
            (0, 0),
            (0, 400),
            (0, 800),  # the long straight, north
            (30, 880),
            (90, 900),  # Turn 1, right
            (200, 860),
            (260, 800),  # Turns 2 and 3
            (330, 820),
            (420, 900),  # Turn 4
            (520, 880),
            (580, 800),  # Turns 5 and 6
            (600, 650),
            (660, 520),  # the fast esses
            (760, 420),
            (800, 300),  # Turns 9 and 10
            (760, 180),
            (680, 120),  # Turn 11
            (620, 20),
            (640, -100),  # Turn 12 to 14
            (600, -220),
            (500, -290),  # Turn 15
            (360, -300),
            (230, -260),  # Turn 16
            (100, -220),
            (30, -150),  # the last corner onto the straight
        ),
    },
}
