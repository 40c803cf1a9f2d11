"""Which liblsl configuration a stack's processes get (docs/DESIGN.md, "LSL configuration").

In order: the setup file's `[control_room] lsl_config`, else `LSLAPICFG` from the environment,
else one the stack makes from its setup (dareplane_utils.lsl_config): all modules local ->
this machine only, over loopback; some modules `remote` -> the setup's hosts as known peers.
The session id comes from the control room's address, so two stacks on one machine (which
cannot share a control room port) never meet, while the same setup file on two machines
(`raceplane up` on one, `raceplane run --stack` on the other) gives both the same session.
`raceplane run` without a setup file takes the default stack's (control room port 8100).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dareplane_utils.lsl_config import ENV_VAR, LslConfig, write_config
from dareplane_utils.lsl_defaults import QUIET_CONFIG
from modules.control_room.setup import ControlRoomSettings, ModuleSpec, Setup

FROM_SETUP = "setup file"
FROM_ENVIRONMENT = f"environment ({ENV_VAR})"
FROM_STACK = "made by the stack"


class LslConfigError(ValueError):
    """A configuration named by the setup file or the environment that cannot be read."""


@dataclass(frozen=True)
class LslChoice:
    path: Path
    source: str  # FROM_SETUP, FROM_ENVIRONMENT or FROM_STACK
    config: LslConfig | None = None  # what the stack made; None for a file given from outside

    def describe(self) -> str:
        what = self.config.describe() if self.config else "as that file says"
        return f"{self.source}: {what} ({self.path})"

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "path": str(self.path),
            "scope": self.config.scope if self.config else None,
            "session_id": self.config.session_id if self.config else None,
            "peers": list(self.config.peers) if self.config else None,
            "description": self.describe(),
        }


def stack_config(settings: ControlRoomSettings, modules: Mapping[str, ModuleSpec]) -> LslConfig:
    """The configuration a stack makes for itself from its setup."""
    if not any(spec.is_remote for spec in modules.values()):
        return LslConfig(f"raceplane-stack-{settings.port}")
    hosts = {settings.host, settings.log_host, *(spec.ip for spec in modules.values())}
    peers = tuple(sorted(host for host in hosts if not _is_local(host)))
    return LslConfig(f"raceplane-stack-{settings.host}-{settings.port}", peers)


def choose(setup: Setup | None, environ: Mapping[str, str] = os.environ) -> LslChoice:
    """The configuration in force for `setup` (None: `raceplane run` with no setup file);
    writes the stack's own when it is the one. LslConfigError for a named file that is not
    there."""
    settings = setup.settings if setup else ControlRoomSettings()
    if settings.lsl_config is not None:
        return LslChoice(_existing(settings.lsl_config, "the setup file's lsl_config"), FROM_SETUP)
    # The quiet config (modules/__init__.py sets it when the user has none) is no choice of
    # the user's: the stack still makes its own.
    named = environ.get(ENV_VAR)
    if named and Path(named) != QUIET_CONFIG:
        return LslChoice(_existing(Path(named), ENV_VAR), FROM_ENVIRONMENT)
    config = stack_config(settings, setup.modules if setup else {})
    return LslChoice(write_config(config), FROM_STACK, config)


def _existing(path: Path, what: str) -> Path:
    if not path.is_file():
        raise LslConfigError(f"{what} names {path}, which is not a readable file")
    return path


def _is_local(host: str) -> bool:
    if host in ("", "localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a host name: a peer
    return address.is_loopback or address.is_unspecified
