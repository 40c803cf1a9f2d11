"""liblsl configuration files: discovery that works without a multicast route.

Left to its defaults, liblsl discovers streams by multicast. On a machine whose only network
is loopback (an offline laptop, a container, a VM without a multicast route) that finds only
some streams, and on a shared network every stack sees every other. An `LslConfig` says which
machines to look on and which session to belong to; `write_config` turns it into the file
liblsl reads (named by the `LSLAPICFG` environment variable, read once per process at its first
LSL call, inherited by child processes).

- This machine only (`peers` empty): ResolveScope machine, answered by loopback broadcast.
- Across machines (`peers` = the other hosts' addresses): ResolveScope link, plus the peers
  asked by unicast, so discovery also works where multicast does not reach.

Either way a `session_id` of its own keeps a stack's streams apart from every other stack's.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "LSLAPICFG"


@dataclass(frozen=True)
class LslConfig:
    session_id: str
    peers: tuple[str, ...] = ()  # other hosts to ask by unicast; empty: this machine only

    @property
    def scope(self) -> str:
        return "link" if self.peers else "machine"

    def describe(self) -> str:
        where = f"hosts {', '.join(self.peers)}" if self.peers else "this machine (loopback)"
        return f"{where}, session {self.session_id}"

    def text(self) -> str:
        lines = [
            "[multicast]",
            f"ResolveScope = {self.scope}",
            # liblsl's machine scope queries 127.0.0.1 by unicast, which the kernel hands to
            # only one of the processes listening on the port: with several producers, most
            # streams stayed unresolvable. Loopback broadcast reaches every process here.
            "MachineAddresses = {127.255.255.255}",
            "",
            "[lab]",
            f"SessionID = {self.session_id}",
        ]
        if self.peers:
            lines.append(f"KnownPeers = {{{', '.join(self.peers)}}}")
        lines += [
            "",
            "[ports]",
            # Without multicast, liblsl finds an outlet by asking every port of its range; the
            # default 32 is fewer than one stack's outlets (the decoder alone has 18).
            "PortRange = 1024",
        ]
        if self.peers:
            lines.append("IPv6 = disable")  # peers are IPv4 addresses from a setup file
        lines += [
            "",
            "[tuning]",
            # liblsl sets aside 128 samples per outlet and inlet of an irregular stream: ~0.7 MB
            # for one of the decoder's ~700-channel streams, ~15 MB over a stack (issue 18).
            # Samples past the reserve are allocated as they come and then reused.
            "OutletBufferReserveSamples = 8",
            "InletBufferReserveSamples = 8",
        ]
        # liblsl's INFO lines on stderr drown a module's output; keep its errors.
        lines += ["", "[log]", "level = -2", ""]
        return "\n".join(lines)


def config_directory() -> Path:
    """Where generated configs live: one private folder per user under the temp directory."""
    directory = Path(tempfile.gettempdir()) / f"raceplane-lsl-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def write_config(config: LslConfig, directory: Path | None = None) -> Path:
    """Write `config` as `<session_id>.cfg` (atomically: a process starting meanwhile reads a
    whole file) and return its path."""
    directory = Path(directory) if directory is not None else config_directory()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in config.session_id)
    path = directory / f"{safe}.cfg"
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(config.text(), encoding="utf-8")
    partial.replace(path)
    return path
