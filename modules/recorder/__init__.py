"""The recorder: LSL streams to crash-safe XDF 1.0 files, and `load(*files)` to read them back."""

from modules.recorder.loader import Recording, Stream, load

__all__ = ["Recording", "Stream", "load"]
