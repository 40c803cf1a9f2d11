"""ModuleConnection: a module's launcher and its communicator together (Dareplane's API)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from dareplane_utils.module_handling.communication import Communicator, SocketCommunicator
from dareplane_utils.module_handling.launcher import Launcher


@dataclass
class ModuleConnection:
    name: str
    launcher: Launcher
    communicator: Communicator | None = None

    def launch_module(self, relaunch: bool = False, **popen_kwargs) -> None:
        self.launcher.launch(relaunch=relaunch, **popen_kwargs)

    def connect_to_module(self) -> None:
        if self.communicator is None:
            return
        try:
            self.communicator.connect()
        except ConnectionRefusedError as error:
            process = getattr(self.launcher, "process", None)
            if process is not None and process.poll() is not None:
                raise ConnectionRefusedError(
                    f"cannot connect to module {self.name}: its process exited with "
                    f"{process.returncode}"
                ) from error
            raise

    def stop_connection(self) -> None:
        if self.communicator is not None:
            self.communicator.disconnect()

    def stop_process(self) -> None:
        self.launcher.terminate()

    def send_message(self, msg: bytes) -> None:
        """Send one command; the `;` that ends it is added when missing."""
        if not msg.endswith(b";"):
            msg += b";"
        if self.communicator is None:
            raise ConnectionError(f"cannot send to module {self.name}: it has no communicator")
        self.communicator.send(msg)

    def receive_message(self, size: int) -> bytes:
        if not isinstance(self.communicator, SocketCommunicator):
            raise NotImplementedError(
                f"receive_message needs a SocketCommunicator, not {type(self.communicator)}"
            )
        return self.communicator.receive(size)

    def start(self, relaunch: bool = False, **popen_kwargs) -> None:
        """Launch the module and connect to it."""
        self.launch_module(relaunch=relaunch, **popen_kwargs)
        self.connect_to_module()

    def stop(self) -> None:
        """Disconnect and end the module's process."""
        self.stop_connection()
        self.stop_process()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
