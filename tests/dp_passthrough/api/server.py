"""A module written the way Dareplane modules are (the shape of Dareplane's dp-passthrough).

It knows nothing of Raceplane: `python -m api.server --port=P` from this folder, a
DefaultServer subclass, `get_logger(name, add_console_handler=True)`, a StreamWatcher read
Dareplane's way (`update()`, `unfold_buffer()[-n_new:]`, `n_new = 0`). START copies a stream to
`<name>_copy` until STOP. tests/test_dareplane_style_module.py runs it on our package.
"""

import argparse
import threading
import time

import pylsl

from dareplane_utils.default_server.server import DefaultServer
from dareplane_utils.logging.logger import get_logger
from dareplane_utils.stream_watcher.lsl_stream_watcher import StreamWatcher

logger = get_logger("dp_passthrough", add_console_handler=True)


def passthrough(stop_event: threading.Event, stream_name: str) -> None:
    sw = StreamWatcher(stream_name, buffer_size_s=2, logger=logger)
    sw.connect_to_stream()
    info = pylsl.StreamInfo(
        f"{stream_name}_copy", "copy", len(sw.channel_names), 0, "float32", f"{stream_name}_copy"
    )
    outlet = pylsl.StreamOutlet(info)
    logger.info(f"passing {stream_name} through, channels {sw.channel_names}")
    passed = 0
    while not stop_event.is_set():
        sw.update()
        if sw.n_new > 0:
            outlet.push_chunk(sw.unfold_buffer()[-sw.n_new :].tolist())
            passed += sw.n_new
            sw.n_new = 0
        time.sleep(0.005)
    logger.info("passed %d samples", passed)


def start(stream_name: str = "source") -> tuple[threading.Thread, threading.Event]:
    stop_event = threading.Event()
    thread = threading.Thread(target=passthrough, args=(stop_event, stream_name))
    thread.start()
    return thread, stop_event


class PassthroughServer(DefaultServer):
    def on_connection_accepted(self):
        self.logger.info(f"control connection from {self.current_conn.getpeername()[0]}")


def main(port: int = 8080, ip: str = "127.0.0.1") -> None:
    server = PassthroughServer(
        port, ip=ip, pcommand_map={"START": start}, name="dp_passthrough", logger=logger
    )
    server.init_server()
    server.start_listening()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--ip", default="127.0.0.1")
    main(**vars(parser.parse_args()))
