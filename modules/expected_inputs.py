"""What a consumer may expect of each stream it reads: who sends it and how often at least.

One table for the lap timer, the recorder and the web bridge, which each feed an
`InputHealth` (dareplane_utils/stream_watcher/health.py) with the streams they expect.
"""

from __future__ import annotations

from collections.abc import Iterable

from dareplane_utils.stream_watcher.health import STALE_AFTER_S, Expectation
from modules.stream_catalogue import STREAMS

# Sent when something happens, not on a beat: silence is no fault.
IRREGULAR = frozenset(
    (
        "raceplane.events",
        "raceplane.final_classification",
        "raceplane.decoder",
        "raceplane.laps",
        "raceplane.standings",
        "raceplane.livetiming",
    )
)
# Sent on a slower beat than the game's frames (Participants every 5 s).
SLOW = {"raceplane.participants": 15.0}


def expect(names: Iterable[str]) -> list[Expectation]:
    """Expectations of the named streams (catalogue names; others are taken as regular)."""
    return [
        Expectation(
            name,
            STREAMS[name].producer if name in STREAMS else "its producer",
            None if name in IRREGULAR else SLOW.get(name, STALE_AFTER_S),
        )
        for name in names
    ]
