"""One command to one module over a fresh connection (ModuleClient underneath).

A connection per command, not one kept open: Dareplane (legacy) servers serve one client at a
time, so a held connection would lock everyone else out; and a module that restarted needs no
reconnect logic. Loopback connects cost tens of microseconds, far below a health interval.
"""

from __future__ import annotations

import socket
from typing import Any

from dareplane_utils.client.module_client import ModuleClient, ModuleError

TCP_ONLY = "tcp"  # a process that accepts connections but speaks no command protocol


class LinkError(Exception):
    """The module could not be reached, did not answer in time, or refused the command."""


def request(
    address: tuple[str, int],
    cmd: str,
    payload: dict[str, Any] | None,
    protocol: str,
    timeout: float,
) -> Any:
    client = ModuleClient(address[0], address[1], timeout=timeout, legacy=protocol == "legacy")
    try:
        with client.connect():
            return client.request(cmd, payload or None)
    except ModuleError as error:
        raise LinkError(f"refused {cmd}: {error.error}") from error
    except OSError as error:  # ConnectionError and TimeoutError included
        raise LinkError(str(error)) from error


def is_up(address: tuple[str, int], protocol: str, timeout: float) -> bool:
    if protocol == TCP_ONLY:
        try:
            socket.create_connection(address, timeout).close()
            return True
        except OSError:
            return False
    try:
        return request(address, "UP", None, protocol, timeout) == 1
    except LinkError:
        return False


def tell(address: tuple[str, int], cmd: str, protocol: str, timeout: float) -> str | None:
    """Best effort (shutdown): send `cmd`; return why it failed, or None."""
    try:
        request(address, cmd, None, protocol, timeout)
        return None
    except LinkError as error:
        return str(error)
