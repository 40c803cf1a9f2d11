"""A recording's intent on disk, so a recorder killed mid-recording resumes it when restarted.

The file is written when a recording starts (and when it rotates, learns session parameters or
is resumed) and removed when the recording ends in order (STOPRECORD, STOP, CLOSE, SIGTERM, a
write error). A recorder that finds it at start-up was cut off, and continues the recording.
Writes go to a temporary file that replaces the old one, so a crash leaves one or the other.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class IntentError(ValueError):
    """A state file that cannot be read back; the message says which and why."""


@dataclass
class RecordingIntent:
    files: list[str]  # every file of the recording, absolute; the last is the one being written
    session: dict[str, str]
    patterns: list[str]
    started: float  # unix time the recording started
    gaps: list[dict[str, Any]] = field(default_factory=list)  # earlier cuts, as STATUS shows them

    def save(self, path: Path) -> None:
        temporary = path.with_name(path.name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(asdict(self), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path) -> RecordingIntent | None:
        """The intent saved at `path`, or None when there is none."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise IntentError(f"cannot read recorder state {path}: {error.strerror}") from None
        try:
            raw = json.loads(text)
            intent = cls(**raw)
        except (ValueError, TypeError) as error:
            raise IntentError(f"recorder state {path} is damaged: {error}") from None
        if not intent.files or not all(isinstance(name, str) for name in intent.files):
            raise IntentError(f"recorder state {path} names no recording file")
        return intent

    @staticmethod
    def remove(path: Path) -> None:
        path.unlink(missing_ok=True)
