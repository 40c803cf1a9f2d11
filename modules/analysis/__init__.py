"""Analysis after the session: a recording's laps and telemetry as pandas DataFrames.

from modules.analysis import open_recording, delta_time
session = open_recording("race.xdf")          # or rotated parts, a capture, a live-timing file
laps = session.laps                          # FastF1's column names: Driver, LapTime, ...
lap = session.fastest_lap("Ann")
telemetry = session.telemetry(lap)           # Speed, Throttle, Brake, nGear, RPM, DRS, X, Y
strategy = session.store("strategy")         # a SessionStore's values (modules.live)
"""

from .session import Session, open_recording
from .sources import RecordingError
from .telemetry import common_distance, delta_time, resample

__all__ = [
    "RecordingError",
    "Session",
    "common_distance",
    "delta_time",
    "open_recording",
    "resample",
]
