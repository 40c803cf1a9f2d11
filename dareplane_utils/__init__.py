"""Raceplane's shared platform library, import-compatible with Dareplane's dareplane_utils.

The top-level names are resolved lazily so that `import dareplane_utils` stays cheap for
processes that only need one part (the log server does not need pylsl or numpy).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DefaultServer", "ModuleClient", "StreamWatcher", "get_logger"]

_LOCATIONS = {
    "DefaultServer": "dareplane_utils.default_server.server",
    "ModuleClient": "dareplane_utils.client.module_client",
    "StreamWatcher": "dareplane_utils.stream_watcher.lsl_stream_watcher",
    "get_logger": "dareplane_utils.logging.logger",
}


def __getattr__(name: str) -> Any:
    if name not in _LOCATIONS:
        raise AttributeError(f"module 'dareplane_utils' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(_LOCATIONS[name]), name)
