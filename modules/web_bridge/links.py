"""The admin page's writes: one command to the lap timer or the recorder per request.

A fresh ModuleClient connection per command (as the control room does): nothing to reconnect
after a module restarts, and loopback connects cost far less than a click.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dareplane_utils.client.module_client import ModuleClient, ModuleError

TIMEOUT_S = 5.0


class Refused(ValueError):
    """The module refused the command; the text is the module's reason."""


class Unreachable(ConnectionError):
    """The module does not answer (not running, wrong address, too slow)."""


@dataclass(frozen=True)
class Link:
    name: str
    host: str
    port: int

    def request(self, cmd: str, payload: dict[str, Any] | None = None) -> Any:
        client = ModuleClient(self.host, self.port, timeout=TIMEOUT_S)
        try:
            with client.connect():
                return client.request(cmd, payload or None)
        except ModuleError as error:
            raise Refused(error.error) from None
        except OSError as error:  # ConnectionError and TimeoutError included
            raise Unreachable(f"{self.name} at {self.host}:{self.port}: {error}") from None


def parse_address(text: str) -> tuple[str, int]:
    """`host:port` (or a bare port) -> (host, port)."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"{text!r}: give HOST:PORT") from None
    if not 0 < number < 65536:
        raise ValueError(f"{text!r}: port must be 1..65535")
    return host or "127.0.0.1", number
