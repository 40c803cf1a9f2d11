"""Which producer of session data the bridge shows (no I/O: the feeds' discovery feeds it).

Session data (the decoder's or livetiming's streams) can come from several producers at once:
the game through the decoder, a live timing feed, a replay beside them. A producer is the part
of a stream's source_id after "@" (`raceplane.lap_data@decoder:20777` -> `decoder:20777`);
a replay's producer starts with `replay` (`raceplane livetiming replay` publishes so).

The rule: show the newest live producer; show a replay only when the user picked it (SOURCE
command, the dashboard's source menu); when the picked producer goes away (a replay ends),
return to live. Streams of other producers (the lap timer's laps and standings) are always
followed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modules.stream_catalogue import CATALOGUE

# The streams a session producer publishes; the rest (laps, standings) have one producer.
SESSION_STREAMS = frozenset(
    stream.name for stream in CATALOGUE if stream.producer in ("telemetry_decoder", "livetiming")
)
LIVE = "live"


def producer_of(source_id: str) -> str:
    return source_id.split("@", 1)[1] if "@" in source_id else ""


def is_replay(producer: str) -> bool:
    return producer.startswith("replay")


@dataclass
class SourceRule:
    """Feed it what discovery sees each round; it says which producer to show."""

    wanted: str = LIVE  # LIVE (the newest live producer) or a producer the user picked
    showing: str | None = None
    producers: dict[str, float] = field(default_factory=dict)  # producer -> newest created_at
    notes: list[str] = field(default_factory=list)  # what changed, for the log

    def observe(self, streams: list[tuple[str, str, float]]) -> None:
        """One discovery round's (name, source_id, created_at) of every stream."""
        producers: dict[str, float] = {}
        for name, source_id, created_at in streams:
            if name in SESSION_STREAMS:
                producer = producer_of(source_id)
                producers[producer] = max(created_at, producers.get(producer, created_at))
        self.producers = producers

    def choose(self) -> str | None:
        """The producer to show now (None: no live producer, and none picked)."""
        if self.wanted != LIVE and self.wanted not in self.producers:
            self.notes.append(f"{self.wanted} ended; back to live")
            self.wanted = LIVE
        choice = self.wanted if self.wanted != LIVE else self._newest_live()
        if choice != self.showing:
            self.notes.append(f"showing {choice or 'nothing (no live source)'}")
            self.showing = choice
        return choice

    def pick(self, source: str) -> None:
        """The user's choice: LIVE, or one of the producers seen."""
        if source != LIVE and source not in self.producers:
            known = ", ".join([LIVE, *sorted(self.producers)])
            raise ValueError(f"no source {source!r}; sources: {known}")
        self.wanted = source

    def shows(self, name: str, source_id: str) -> bool:
        """Whether the bridge should watch this stream now."""
        return name not in SESSION_STREAMS or producer_of(source_id) == self.showing

    def _newest_live(self) -> str | None:
        live = {p: t for p, t in self.producers.items() if not is_replay(p)}
        return max(live, key=live.__getitem__) if live else None

    def status(self) -> dict[str, Any]:
        return {
            "showing": self.showing,
            "replay": self.showing is not None and is_replay(self.showing),
            "wanted": self.wanted,
            "sources": [{"producer": p, "replay": is_replay(p)} for p in sorted(self.producers)],
        }
