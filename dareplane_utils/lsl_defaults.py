"""liblsl's settings when the user has none: errors and warnings only on the terminal.

liblsl writes INFO lines ("Loaded default config", its build) to stderr of every process that
touches LSL. A user's own configuration always wins: LSLAPICFG, or an lsl_api.cfg where liblsl
looks for one (the working directory, ~/lsl_api/, /etc/lsl_api/). Only without any of them do
we point LSLAPICFG at our file, which changes nothing but the log level; child processes inherit
it. Setting an environment variable costs nothing, so `raceplane --help` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path

QUIET_CONFIG = Path(__file__).with_name("lsl_quiet.cfg")


def user_lsl_config() -> Path | None:
    """The liblsl configuration the user set up, if any, in liblsl's order of search."""
    named = os.environ.get("LSLAPICFG")
    if named:
        return Path(named)
    for candidate in (
        Path("lsl_api.cfg"),
        Path.home() / "lsl_api" / "lsl_api.cfg",
        Path("/etc/lsl_api/lsl_api.cfg"),
    ):
        if candidate.is_file():
            return candidate
    return None


def quiet_liblsl() -> None:
    """Keep liblsl's INFO lines off the terminal unless the user configured liblsl."""
    if user_lsl_config() is None:
        os.environ["LSLAPICFG"] = str(QUIET_CONFIG)
