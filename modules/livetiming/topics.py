"""The live timing feed's topics and their data, without I/O.

Facts of the feed: a topic's first message (the reply to `Subscribe`) is its whole state; later
`feed` messages are changes to merge into it. Lists of the state are changed by objects keyed
with the list index as text (`{"Sectors": {"1": {"Value": "28.1"}}}`), `_deleted` lists keys
that go away. Topics ending in `.z` carry base64 of raw deflate (no zlib header) of JSON: car
data (channels 0 rpm, 2 speed km/h, 3 gear, 4 throttle %, 5 brake, 45 DRS) and positions
(x, y, z in tenths of a metre). Times are text: "1:32.456", "28.123", "+1.234", "1 L".
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from datetime import UTC, datetime
from typing import Any

# What FastF1's client subscribes to (so a Raceplane file holds what a FastF1 file holds), and
# the two topics that time pit stops (pits.py).
TOPICS = (
    "Heartbeat", "AudioStreams", "DriverList", "ExtrapolatedClock", "RaceControlMessages",
    "SessionInfo", "SessionStatus", "TeamRadio", "TimingAppData", "TimingStats", "TrackStatus",
    "WeatherData", "Position.z", "CarData.z", "ContentStreams", "SessionData", "TimingData",
    "TopThree", "RcmSeries", "LapCount", "PitLaneTimeCollection", "PitStopSeries",
)  # fmt: skip
# Topics that need a signed-in account's access token.
TOKEN_TOPICS = ("Position.z", "CarData.z")
MAX_INFLATED = 64 * 1024 * 1024
# Taken first from a Subscribe reply: the session's identity and cars before their timing.
STATE_FIRST = ("SessionInfo", "DriverList", "LapCount")


class TopicError(ValueError):
    """Topic data that cannot be decoded; the message says which topic and why."""


def decode(topic: str, data: Any) -> Any:
    """A topic's data as JSON values: `.z` topics inflated, others as they came."""
    if not topic.endswith(".z"):
        return data
    if not isinstance(data, str):
        raise TopicError(f"{topic}: expected base64 text, got {type(data).__name__}")
    try:
        raw = base64.b64decode(data, validate=True)
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        text = inflater.decompress(raw, MAX_INFLATED)
        if inflater.unconsumed_tail:
            raise TopicError(f"{topic}: inflates to more than {MAX_INFLATED} bytes")
        return json.loads(text)
    except (binascii.Error, zlib.error, ValueError) as error:
        if isinstance(error, TopicError):
            raise
        raise TopicError(f"{topic}: cannot decode: {error}") from error


def encode_z(value: Any) -> str:
    """JSON -> base64 of raw deflate, as the feed sends `.z` topics (tests, conversions)."""
    deflater = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = deflater.compress(json.dumps(value, separators=(",", ":")).encode()) + deflater.flush()
    return base64.b64encode(raw).decode("ascii")


def state_order(topic: str) -> int:
    """Sort key of a topic among a Subscribe reply's states (STATE_FIRST, then the rest)."""
    return STATE_FIRST.index(topic) if topic in STATE_FIRST else len(STATE_FIRST)


def merge(state: Any, change: Any) -> Any:
    """`state` with a feed change applied (in place where it can be); returns the new state."""
    if isinstance(change, dict):
        if isinstance(state, list):
            for key, value in change.items():
                if key == "_deleted":
                    continue
                if not str(key).isdigit():
                    return change  # not a list change after all: the new value replaces it
                index = int(key)
                while len(state) <= index:
                    state.append({})
                state[index] = merge(state[index], value)
            return state
        if isinstance(state, dict):
            for key in (
                change.get("_deleted", ()) if isinstance(change.get("_deleted"), list) else ()
            ):
                state.pop(str(key), None)
            for key, value in change.items():
                if key != "_deleted":
                    state[key] = merge(state.get(key), value)
            return state
        return {k: merge(None, v) for k, v in change.items() if k != "_deleted"}
    return change


_LAP_TIME = re.compile(r"^\s*(?:(\d+):)?(\d+(?:\.\d+)?)\s*$")


def time_ms(text: Any) -> int | None:
    """ "1:32.456" / "28.123" / "+1.234" -> ms; None for empty text, laps ("1 L") and the like."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return round(text * 1000)
    if not isinstance(text, str):
        return None
    match = _LAP_TIME.match(text.lstrip("+"))
    if match is None:
        return None
    minutes, seconds = match.groups()
    return round((int(minutes or 0) * 60 + float(seconds)) * 1000)


def parse_timestamp(text: str) -> datetime:
    """The feed's ISO 8601 time ("2024-03-02T15:03:41.8372155Z", 7 fraction digits) as UTC."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"not a timestamp: {text!r}")
    # Python 3.11 reads "Z" and cuts fractions to microseconds (the 7th digit), in C.
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """UTC time as the feed writes it (FastF1's parser reads this form)."""
    # As strftime("%Y-%m-%dT%H:%M:%S.%fZ") writes it, at a third of the cost.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
