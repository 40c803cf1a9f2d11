"""Which old recordings to delete so the save path keeps the newest N files, or N bytes.

Plain functions over a directory listing (no recorder state): the recorder calls `prune`
when a recording starts and when it ends. Only `*.xdf` files directly in the save path count
(a rotated recording's parts are files like any other); the file being written is never
deleted and counts toward the limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Retention:
    keep_files: int = 0  # keep the newest this many recordings; 0: no limit
    keep_bytes: int = 0  # keep the newest recordings up to this many bytes; 0: no limit

    @property
    def limited(self) -> bool:
        return self.keep_files > 0 or self.keep_bytes > 0


@dataclass(frozen=True)
class Recorded:
    path: Path
    mtime: float
    size: int


def to_delete(files: list[Recorded], retention: Retention, keep: set[Path]) -> list[Recorded]:
    """The files past the limits: the newest are kept until a limit is
    reached; files in `keep` (being written) always stay and count."""
    newest_first = sorted(files, key=lambda f: (f.path not in keep, -f.mtime))
    kept_files, kept_bytes, doomed = 0, 0, []
    for file in newest_first:
        over = (retention.keep_files and kept_files + 1 > retention.keep_files) or (
            retention.keep_bytes and kept_bytes + file.size > retention.keep_bytes
        )
        if over and file.path not in keep:
            doomed.append(file)
            continue
        kept_files += 1
        kept_bytes += file.size
    return doomed


def prune(directory: Path, retention: Retention, keep: set[Path]) -> list[Path]:
    """Delete what `to_delete` names in `directory`; returns the deleted paths."""
    if not retention.limited:
        return []
    files = []
    for path in directory.glob("*.xdf"):
        try:
            stat = path.stat()
        except OSError:  # gone meanwhile
            continue
        files.append(Recorded(path.resolve(), stat.st_mtime, stat.st_size))
    deleted = []
    for file in to_delete(files, retention, {p.resolve() for p in keep}):
        try:
            file.path.unlink()
        except FileNotFoundError:
            continue
        deleted.append(file.path)
    return deleted
