"""Session parameters a recording can learn from the decoder's `raceplane.session` stream.

RECORD keys and --setup are what a person says; when they say nothing about the track or the
session type, the game does: the first `raceplane.session` sample names both (as numbers, with
readable names beside them, per the shared stream contract).
"""

from __future__ import annotations

import json

SESSION_STREAM = "raceplane.session"
MAX_VALUE_CHARS = 64  # the file header keeps room for a few such values; see HEADER_RESERVE
# Session parameter -> the sample's keys that give it, preferred first.
LEARNED: dict[str, tuple[str, ...]] = {
    "track": ("track_name", "track_id"),
    "session_type": ("session_type_name", "session_type"),
}


def learned_from(text: str | bytes) -> dict[str, str]:
    """Track and session type from one `raceplane.session` sample; {} if it names neither."""
    try:
        sample = json.loads(text)  # pylsl hands string samples over as bytes
    except ValueError:
        return {}
    if not isinstance(sample, dict):
        return {}
    found: dict[str, str] = {}
    for parameter, keys in LEARNED.items():
        for key in keys:
            value = sample.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                found[parameter] = str(value)[:MAX_VALUE_CHARS]
                break
    return found
