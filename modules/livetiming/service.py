"""The live timing module's commands: SAVE, REPLAY, STOP, STATUS (one job at a time, in a
thread of its own; the streams' outlets live as long as the module, so readers stay on them
from one job to the next)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from modules.acknowledge import ConsumerAck

from .client import ClientOptions
from .publish import Publisher
from .replay import ACK_READERS_S, ACK_WINDOW, ReplayReport, replay
from .saving import READ_STREAMS, Saver, save_to, wait_for_readers
from .topics import format_timestamp


def _number(name: str, value: Any, minimum: float, inclusive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if value < minimum or (not inclusive and value == minimum):
        raise ValueError(f"{name} must be {'>=' if inclusive else '>'} {minimum:g}, not {value!r}")
    return float(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return value


def _path(name: str, value: Any) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a file name, not {value!r}")
    return Path(value)


class LiveTiming:
    """`options` is the client's configuration for SAVE (url, token, timeouts); `wait_s` how
    long a job that publishes first waits for the lap timer's readers."""

    def __init__(
        self, options: ClientOptions, publisher: Publisher, logger: logging.Logger, wait_s: float
    ) -> None:
        self.options = options
        self.publisher = publisher
        self.logger = logger
        self.wait_s = wait_s
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._kind = ""  # "save" or "replay": the current or last job
        self._saver: Saver | None = None
        self._replay: ReplayReport | None = None
        self._replay_settings: dict[str, Any] = {}
        self._started = 0.0
        self._ended = ""  # why the last job ended
        self._error = ""

    def commands(self) -> dict[str, Any]:
        return {
            "SAVE": self.save,
            "REPLAY": self.replay,
            "STOP": self.stop,
            "STATUS": self.status,
            "SET_DELAY": self.set_delay,
        }

    def set_delay(self, seconds: Any = None) -> dict[str, Any]:
        """The broadcast delay: hold everything published by `seconds` (0..600), at once and
        for what is held now too."""
        delay = self.publisher.set_delay(seconds)
        self.logger.info("live timing: broadcast delay %g s", delay)
        return {"delay_s": delay}

    # ------------------------------------------------------------------ commands

    def save(
        self,
        path: Any = None,
        publish: Any = False,
        timeout: Any = None,
        append: Any = False,
    ) -> dict[str, Any]:
        """Connect to the feed and save into `path` (FastF1's format) until STOP, or until
        `timeout` s without data (default: the module's --timeout; 0 never); `publish` also
        puts the session on the raceplane.* streams."""
        file = _path("path", path)
        publish = _flag("publish", publish)
        append = _flag("append", append)
        idle = self.options.idle_timeout_s if timeout is None else _number("timeout", timeout, 0)
        with self._lock:
            self._refuse_if_busy()
            writer = save_to(file, append)
            saver = Saver(
                writer,
                replace(self.options, idle_timeout_s=idle),
                self.logger,
                self.publisher if publish else None,
                self.wait_s,
            )
            self._saver, self._replay = saver, None
            self._start("save", saver.run)
        self.logger.info("live timing: saving %s into %s", self.options.url, file)
        return {"file": str(file), "url": self.options.url, "publish": publish, "timeout": idle}

    def replay(
        self,
        paths: Any = None,
        speed: Any = None,
        flat_out: Any = False,
        wait_s: Any = None,
        ack: Any = None,
    ) -> dict[str, Any]:
        """Publish saved files (one session, any order) at `speed` times as recorded (1 if not
        given) or `flat_out`; first waits up to `wait_s` (default the module's --wait-s) for
        the lap timer's readers. `ack` ("HOST:PORT", the lap timer's command port): keep at
        most a window ahead of what it has applied, and end when it has everything."""
        if isinstance(paths, str) or not isinstance(paths, list) or not paths:
            raise ValueError(f"paths must be a list of file names, not {paths!r}")
        files = [_path("paths", p) for p in paths]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise ValueError(f"no such file: {', '.join(missing)}")
        flat_out = _flag("flat_out", flat_out)
        if flat_out and speed is not None:
            raise ValueError("give speed or flat_out, not both")
        rate = 1.0 if speed is None else _number("speed", speed, 0, inclusive=False)
        wait = self.wait_s if wait_s is None else _number("wait_s", wait_s, 0)
        if ack is not None and not isinstance(ack, str):
            raise ValueError(f"ack must be HOST:PORT, not {ack!r}")
        consumer = (
            None if ack is None else ConsumerAck.parse(ack, window=ACK_WINDOW, streams=READ_STREAMS)
        )
        with self._lock:
            self._refuse_if_busy()
            report = ReplayReport()
            self._saver, self._replay = None, report
            self._replay_settings = {
                "speed": None if flat_out else rate,
                "flat_out": flat_out,
                "ack": ack,
            }

            def run() -> str:
                wait_for_readers(self.publisher, wait, self.logger, self._stop)
                if consumer is not None:
                    consumer.stop = self._stop
                    consumer.connect()
                    for name in READ_STREAMS:  # open, so the consumer can find them
                        self.publisher.outlet(name)
                    unread = consumer.wait_for_readers(wait or ACK_READERS_S)
                    if unread:
                        self.logger.warning("%s does not read %s", ack, ", ".join(unread))
                try:
                    replay(
                        files,
                        self.publisher.publish,
                        self.logger,
                        rate,
                        flat_out,
                        self._stop,
                        ack=consumer,
                        report=report,
                    )
                finally:
                    if consumer is not None:
                        consumer.close()
                return "stopped" if report.stopped else "done"

            self._start("replay", run)
        self.logger.info("live timing: replaying %s", ", ".join(map(str, files)))
        return {"files": [str(f) for f in files], **self._replay_settings}

    def stop(self) -> dict[str, Any]:
        """End the running job (a save closes its file) and return the final STATUS."""
        self.close()
        return self.status()

    def status(self) -> dict[str, Any]:
        with self._lock:
            running = self._thread is not None and self._thread.is_alive()
            state = {"save": "saving", "replay": "replaying"}.get(self._kind, "idle")
            out: dict[str, Any] = {
                "state": state if running else "idle",
                "job": self._kind or None,
                "running_s": round(time.monotonic() - self._started, 3) if running else None,
                "ended": None if running else self._ended or None,
                "error": self._error or None,
                "url": self.options.url,
                "published": self.publisher.status(),
                "delay_s": self.publisher.delay_s,
                "held": self.publisher.held(),
                "save": self._saver.status() if self._saver is not None else None,
                "replay": _replay_status(self._replay, self._replay_settings),
            }
        return out

    def close(self) -> None:
        """Stop the job and wait for it (after CLOSE, nothing of it is left running)."""
        with self._lock:
            thread, saver = self._thread, self._saver
            self._stop.set()
            if saver is not None:
                saver.stop()
        if thread is not None:
            thread.join()
        self.publisher.close()

    # ------------------------------------------------------------------ jobs

    def _refuse_if_busy(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise ValueError(f"a {self._kind} is running; STOP it first")

    def _start(self, kind: str, work: Any) -> None:
        self._kind, self._ended, self._error = kind, "", ""
        self._stop = threading.Event()
        self._started = time.monotonic()

        def run() -> None:
            try:
                self._ended = work()
            except Exception as error:  # a failed job is reported in STATUS; the module stays
                self.logger.exception("live timing: %s failed", kind)
                self._error, self._ended = f"{type(error).__name__}: {error}", "failed"
            else:
                self.logger.info("live timing: %s ended: %s", kind, self._ended)

        self._thread = threading.Thread(target=run, name=f"livetiming {kind}", daemon=True)
        self._thread.start()


def _replay_status(report: ReplayReport | None, settings: dict[str, Any]) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        **settings,
        "files": [
            {
                "path": str(f.path),
                "lines": f.lines,
                "kept": f.kept,
                "overlapping": f.overlapping,
                "bad_lines": f.bad_lines,
                "first_error": f.first_error or None,
            }
            for f in report.files
        ],
        "total": report.total,
        "messages": report.messages,
        "samples": report.samples,
        "refused": report.refused,
        "first_refusal": report.first_refusal or None,
        "unread": report.unread,
        "first_unread": report.first_unread or None,
        "sessions": list(report.sessions),
        "session_status": report.session_status or None,
        "final": report.final,
        "progress": round(report.messages / report.total, 4) if report.total else 0.0,
        "position": format_timestamp(report.position) if report.position else None,
        "done": report.done,
        "stopped": report.stopped,
    }
