"""Lap times typed by hand: `m:ss.sss`, `m.ss.sss`, `ss.sss` or plain seconds, to integer ms."""

from __future__ import annotations

import re

# `m:ss[.sss]` or `m.ss.sss`: a dot after the minutes needs the fraction too, so `59.50` stays
# 59.5 seconds and never becomes 59 minutes 50. Seconds after minutes have two digits, 00-59.
_WITH_MINUTES = re.compile(r"(\d{1,3})(?::([0-5]\d)(?:\.(\d{1,3}))?|\.([0-5]\d)\.(\d{1,3}))")
_SECONDS = re.compile(r"(\d{1,5})(?:\.(\d{1,3}))?")

# No circuit is lapped faster or slower than this; a time outside is a typo (`1.23` for 1:23).
MIN_LAP_MS = 5_000
MAX_LAP_MS = 60 * 60 * 1000


def parse_lap_time(text: object) -> int:
    """Integer milliseconds of a lap time; ValueError with the accepted forms otherwise."""
    if isinstance(text, bool) or text is None:
        raise ValueError(
            f"lap time {text!r} is not a time; use m:ss.sss, m.ss.sss, ss.sss or seconds"
        )
    if isinstance(text, int | float):
        text = repr(float(text)) if isinstance(text, float) else str(text)
    if not isinstance(text, str):
        raise ValueError(
            f"lap time {text!r} is not a time; use m:ss.sss, m.ss.sss, ss.sss or seconds"
        )
    cleaned = text.strip()
    minutes = 0
    match = _WITH_MINUTES.fullmatch(cleaned)
    if match:
        minutes = int(match[1])
        seconds, fraction = (
            (int(match[2]), match[3] or "") if match[2] else (int(match[4]), match[5])
        )
    else:
        match = _SECONDS.fullmatch(cleaned)
        if not match:
            raise ValueError(
                f"lap time {text!r} not understood; use m:ss.sss, m.ss.sss, ss.sss or plain seconds"
            )
        seconds, fraction = int(match[1]), match[2] or ""
    millis = (minutes * 60 + seconds) * 1000 + int(fraction.ljust(3, "0") or 0)
    if not MIN_LAP_MS <= millis <= MAX_LAP_MS:
        raise ValueError(
            f"lap time {text!r} is {millis} ms, outside "
            f"{MIN_LAP_MS} ms .. {MAX_LAP_MS // 60000} min"
        )
    return millis


def format_lap_time(millis: int | None) -> str:
    """`1:23.456` for a lap, `''` for none."""
    if millis is None:
        return ""
    minutes, rest = divmod(int(millis), 60_000)
    return f"{minutes}:{rest // 1000:02d}.{rest % 1000:03d}"
