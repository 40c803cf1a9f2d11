"""How the live feed is doing, without I/O: the access token's expiry and topics gone quiet.

- The F1TV access token (needed for CarData.z and Position.z) is a JWT: its payload's `exp` is
  when it stops working. `token_status` reads it (no signature check: we only want the date)
  and says `ok`, `expiring` (within TOKEN_WARNING_S: get a fresh one before the session),
  `expired`, `unreadable` (not a JWT with an `exp`) or `none`.
- `TopicWatch` learns how often each topic comes and reports a topic that normally flows and
  has stopped: silent for longer than SILENCE_FACTOR times its usual gap, and at least
  SILENCE_MIN_S (topics that come once a minute are not called silent after a few seconds).
"""

from __future__ import annotations

import base64
import binascii
import json
import statistics
from collections import deque
from datetime import UTC, datetime
from typing import Any

TOKEN_WARNING_S = 2 * 3600.0  # a race weekend session with its build-up
SILENCE_MIN_S = 30.0
SILENCE_FACTOR = 10.0
MIN_MESSAGES = 5  # a topic is known to flow after this many messages
GAPS_KEPT = 50


def token_expiry(token: str) -> datetime | None:
    """When a JWT expires (its payload's `exp`), or None if it is not a JWT with one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
        return datetime.fromtimestamp(float(claims["exp"]), UTC)
    except (binascii.Error, ValueError, TypeError, KeyError, OverflowError, OSError):
        return None


def token_status(token: str | None, now: datetime) -> dict[str, Any]:
    if not token:
        return {"state": "none", "expires": None, "expires_in_s": None}
    expires = token_expiry(token)
    if expires is None:
        return {"state": "unreadable", "expires": None, "expires_in_s": None}
    left = (expires - now).total_seconds()
    state = "expired" if left <= 0 else "expiring" if left <= TOKEN_WARNING_S else "ok"
    return {
        "state": state,
        "expires": expires.isoformat().replace("+00:00", "Z"),
        "expires_in_s": round(left, 1),
    }


class TopicWatch:
    """`seen(topic, now)` per message (now: monotonic seconds); `silent(now)` the topics that
    normally flow and have stopped, with how long; `changes(now)` what became silent or came
    back since the last call (to log each once)."""

    def __init__(self, min_silence_s: float = SILENCE_MIN_S) -> None:
        self.min_silence_s = min_silence_s
        self._last: dict[str, float] = {}
        self._gaps: dict[str, deque[float]] = {}
        self._count: dict[str, int] = {}
        self._reported: set[str] = set()

    def seen(self, topic: str, now: float) -> None:
        last = self._last.get(topic)
        if last is not None:
            self._gaps.setdefault(topic, deque(maxlen=GAPS_KEPT)).append(now - last)
        self._last[topic] = now
        self._count[topic] = self._count.get(topic, 0) + 1

    def limit(self, topic: str) -> float | None:
        """How long `topic` may be quiet before it counts as silent (None: not known to flow)."""
        gaps = self._gaps.get(topic)
        if self._count.get(topic, 0) < MIN_MESSAGES or not gaps:
            return None
        return max(self.min_silence_s, SILENCE_FACTOR * statistics.median(gaps))

    def silent(self, now: float) -> dict[str, float]:
        out = {}
        for topic, last in self._last.items():
            limit = self.limit(topic)
            if limit is not None and now - last > limit:
                out[topic] = round(now - last, 1)
        return out

    def changes(self, now: float) -> tuple[dict[str, float], list[str]]:
        """(topics newly silent with how long, topics back since they were reported)."""
        silent = self.silent(now)
        new = {t: s for t, s in silent.items() if t not in self._reported}
        back = sorted(self._reported - set(silent))
        self._reported = set(silent)
        return new, back
