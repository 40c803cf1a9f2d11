"""The file end of a recording: whole chunks to disk, fsync'd, cut back to a chunk on failure.

Writes go straight to the file descriptor (no user-space buffer), so what `write` accepted is
in the OS and survives SIGKILL; `sync` (called at least every second) makes it survive power
loss. If a write fails part-way (disk full), the file is truncated back to the end of the last
complete chunk, so it stays loadable, and the error is kept for STATUS.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from modules.recorder.loader import Stream, iter_chunks, parse
from modules.recorder.xdf import FILE_HEADER, MAGIC, STREAM_HEADER


class SinkError(OSError):
    """A recording file that cannot be opened or written; the message says which and why."""


class XdfSink:
    def __init__(self, path: Path, append: bool = False) -> None:
        self.path = Path(path)
        self.next_stream_id = 0
        self.error: str | None = None
        # Set when appending: the existing file's header fields (and its FileHeader content
        # size), its streams left without a footer (an earlier run was cut off), and the time
        # it was last written before we opened it (unix), i.e. where such a cut happened.
        self.header: dict = {}
        self.header_size = 0
        self.cut_streams: list[Stream] = []
        self.last_write: float | None = None
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise SinkError(
                f"cannot open {self.path} for writing: {self.path.parent} is not a directory"
            )
        if append and self.path.is_file():
            self.last_write = self.path.stat().st_mtime
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(
                self.path, os.O_WRONLY | os.O_CREAT | (0 if append else os.O_TRUNC), 0o644
            )
        except OSError as error:
            raise SinkError(f"cannot open {self.path} for writing: {_why(error)}") from None
        self.committed = 0
        if append:
            self._resume()

    @property
    def resumed(self) -> bool:
        """True when appending to a file that already has its file header."""
        return self.committed > 0

    def _resume(self) -> None:
        """Continue after the last complete chunk of an existing file, with fresh stream ids."""
        data = self.path.read_bytes()
        if not data:
            return
        self.header, streams, _, good_end = parse(data, str(self.path))
        self.cut_streams = [stream for stream in streams if stream.footer_xml is None]
        first = next(iter_chunks(memoryview(data)[:good_end]), None)
        if first is not None and first.tag == FILE_HEADER:
            self.header_size = len(first.content)
        if good_end <= len(MAGIC):
            good_end = 0  # cut before the end of its file header: start the file afresh
        ids = _stream_ids(data, good_end)
        self.next_stream_id = max(ids, default=-1) + 1
        os.ftruncate(self._fd, good_end)
        os.lseek(self._fd, good_end, os.SEEK_SET)
        self.committed = good_end

    def write(self, *chunks: bytes) -> None:
        """Write whole chunks; on failure keep those that made it whole, cut the rest, raise."""
        if self.error:
            raise SinkError(self.error)
        view = memoryview(b"".join(chunks))
        written = 0
        try:
            while written < len(view):
                written += os.write(self._fd, view[written:])
        except OSError as error:
            self.error = f"write to {self.path} failed: {_why(error)}"
            kept = self.committed
            for item in chunks:
                if kept + len(item) > self.committed + written:
                    break
                kept += len(item)
            try:
                os.ftruncate(self._fd, kept)
                self.committed = kept
            except OSError:
                self.error += " (and cutting back the partial chunk failed)"
            raise SinkError(self.error) from None
        self.committed += written

    def rewrite_header(self, header_chunk: bytes) -> None:
        """Overwrite the FileHeader chunk in place with one of exactly the same size."""
        if self.error:
            raise SinkError(self.error)
        try:
            os.pwrite(self._fd, header_chunk, len(MAGIC))
        except OSError as error:
            self.error = f"rewriting the file header of {self.path} failed: {_why(error)}"
            raise SinkError(self.error) from None

    def sync(self) -> None:
        if self.error:
            return
        try:
            os.fsync(self._fd)
        except OSError as error:
            # Character devices and some filesystems cannot fsync; the data is still written.
            if error.errno not in (errno.EINVAL, errno.EROFS):
                self.error = f"fsync of {self.path} failed: {_why(error)}"
                raise SinkError(self.error) from None

    def close(self) -> None:
        if self._fd >= 0:
            try:
                self.sync()
            finally:
                os.close(self._fd)
                self._fd = -1


def _why(error: OSError) -> str:
    name = errno.errorcode.get(error.errno or 0, "")
    return f"{error.strerror or error} ({name})" if name else str(error.strerror or error)


def _stream_ids(data: bytes, end: int) -> set[int]:
    return {
        int.from_bytes(item.content[:4], "little")
        for item in iter_chunks(memoryview(data)[:end])
        if item.tag == STREAM_HEADER
    }
