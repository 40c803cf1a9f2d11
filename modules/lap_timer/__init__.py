"""The lap timer: completed laps, sectors, standings, points and the manual lap board."""
