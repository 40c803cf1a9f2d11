"""The log server's file: JSON Lines, rotated by size (FILE, FILE.1 ... FILE.<backups>).

Lines are gathered in memory and written whole at each flush, so a server killed mid-run
leaves no half line for the next one to append to.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_LOGFILE = Path("logs") / "raceplane.jsonl"
MAX_BYTES = 50 * 1024 * 1024
BACKUPS = 5


class RotatingLineWriter:
    """Appends whole lines; a line never straddles two files."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pending = bytearray()
        self._open()
        if self._size and os.pread(self._fd, 1, self._size - 1) != b"\n":
            self._pending += b"\n"  # end a line a killed writer left unfinished

    def write(self, line: bytes) -> None:
        if self._size + len(self._pending) + len(line) > self.max_bytes:
            self.flush()
            if self._size:
                self._rotate()
        self._pending += line

    def flush(self) -> None:
        view = memoryview(self._pending)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self._size += written
        view.release()
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        os.close(self._fd)

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(self._fd).st_size

    def _rotate(self) -> None:
        os.close(self._fd)
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self.backups:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._open()
