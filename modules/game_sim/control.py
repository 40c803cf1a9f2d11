"""The game simulator's commands: START, RESTART, STATUS, TRUTH, REPLAY (STOP is the server's).

START and REPLAY return a (thread, stop event) pair, so DefaultServer's STOP and CLOSE stop
and join them. One session or replay runs at a time; a second START is refused until STOP.
RESTART is the game's restart: a new session (new sessionUID) replaces the running one on the
same stream, without a pause. The latest session stays readable (STATUS, TRUTH) after it
ends; earlier ones of this process by their UID (TRUTH {session_uid}).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any

from modules.game_sim.broadcast import Broadcaster
from modules.game_sim.race import RaceSim, SessionOptions
from modules.game_sim.replay import capture_frames, check_capture
from modules.game_sim.sender import Counters, Pace, send_paced


@dataclass
class Settings(SessionOptions):
    """Everything START accepts: the session's options and how to send it. The command line
    sets the defaults, START overrides them."""

    format: int = 2025
    speed: float = 1.0
    flat_out: bool = False
    target_host: str = "127.0.0.1"
    target_port: int = 20777

    def updated(self, overrides: dict[str, Any]) -> Settings:
        known = {f.name: f.type for f in fields(self)}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(
                f"unknown START option(s) {', '.join(unknown)}; known: {', '.join(known)}"
            )
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in overrides.items():
            values[name] = _coerce(name, type(values[name]), value)
        return Settings(**values)

    def session_options(self) -> SessionOptions:
        return SessionOptions(**{f.name: getattr(self, f.name) for f in fields(SessionOptions)})


def _coerce(name: str, kind: type, value: Any) -> Any:
    # Setup-file macros substitute values into text, so "5" must mean 5.
    try:
        if kind is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                return value.lower() in ("true", "1")
            return bool(value)
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {kind.__name__}, not {value!r}") from None


class GameSim:
    def __init__(self, defaults: Settings, logger: logging.Logger) -> None:
        self.defaults = defaults
        self.logger = logger
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._sim: RaceSim | None = None
        self._broadcaster: Broadcaster | None = None
        self._sessions: dict[str, RaceSim] = {}  # every session of this process, by UID
        self._settings: Settings | None = None
        self._counters = Counters()
        self._state = "idle"
        self._replay: dict[str, Any] | None = None

    def commands(self) -> dict[str, Callable[..., Any]]:
        return {
            "START": self.start,
            "RESTART": self.restart,
            "STATUS": self.status,
            "TRUTH": self.truth,
            "REPLAY": self.replay,
        }

    def start(self, **options: Any) -> tuple[threading.Thread, threading.Event]:
        """Start a session: {session, track, laps, cars, rate, seed, retirements, safety_car,
        flashback_at_s, flashback_s, red_flag_at_lap, late_joiners, penalties, format, speed,
        flat_out, target_host, target_port}; unspecified ones keep defaults."""
        settings = self.defaults.updated(options)
        pace = Pace(settings.speed, settings.flat_out)
        broadcaster = _new_session(settings)
        target = (settings.target_host, settings.target_port)
        with self._lock:
            self._refuse_if_busy()
            self._settings, self._counters = settings, Counters()
            self._use(broadcaster)
            self._replay = None
            return self._launch("racing", lambda stop: self._run_session(target, pace, stop))

    def restart(self, **options: Any) -> dict[str, Any]:
        """The game's restart: a new session (new UID) in place of the running one, on the same
        stream at once. Session options as START's (the rest stay); format and pace stay."""
        fixed = {"format", "speed", "flat_out", "target_host", "target_port"}
        if fixed & set(options):
            raise ValueError(f"RESTART keeps {', '.join(sorted(fixed))}; STOP and START instead")
        with self._lock:
            if self._state != "racing" or self._settings is None:
                raise ValueError(f"no session is running ({self._state}); START one first")
            settings = self._settings.updated(options)
            broadcaster = _new_session(settings)
            old = self._sim.session_uid if self._sim else None
            self._settings = settings
            self._use(broadcaster)
        self.logger.info("session %s restarted as %s", old, broadcaster.sim.session_uid)
        return {"session_uid": str(broadcaster.sim.session_uid)}

    def _use(self, broadcaster: Broadcaster) -> None:
        self._broadcaster, self._sim = broadcaster, broadcaster.sim
        self._sessions[str(broadcaster.sim.session_uid)] = broadcaster.sim

    def replay(
        self,
        path: str,
        speed: float = 1.0,
        flat_out: bool = False,
        target_host: str | None = None,
        target_port: int | None = None,
    ) -> tuple[threading.Thread, threading.Event]:
        """Send a raw UDP capture to the target at its recorded pace, `speed` x, or flat out."""
        capture = check_capture(path)
        pace = Pace(_coerce("speed", float, speed), _coerce("flat_out", bool, flat_out))
        target = (
            target_host or self.defaults.target_host,
            _coerce("target_port", int, target_port or self.defaults.target_port),
        )
        with self._lock:
            self._refuse_if_busy()
            self._counters = Counters()
            self._replay = {"path": str(capture), "problems": []}
            problems = self._replay["problems"]
            frames = capture_frames(capture, problems)
            return self._launch(
                "replaying", lambda stop: self._run_replay(frames, target, pace, stop)
            )

    def status(self) -> dict[str, Any]:
        with self._lock:
            result: dict[str, Any] = {
                "state": self._state,
                "packets_sent": self._counters.packets,
                "bytes_sent": self._counters.bytes,
                "send_errors": self._counters.errors,
            }
            if self._counters.last_error:
                result["last_send_error"] = self._counters.last_error
            if self._settings is not None and self._replay is None:
                result["settings"] = vars(self._settings).copy()
            if self._sim is not None and self._replay is None:
                result.update(self._sim.status())
            if self._replay is not None:
                result["replay"] = dict(self._replay, problems=list(self._replay["problems"]))
            return result

    def truth(self, session_uid: str | None = None) -> dict[str, Any]:
        """Every car's true laps and sectors, and the order: the contract in docs/DESIGN.md.
        The latest session's, or an earlier one's of this process by its UID."""
        with self._lock:
            if self._sim is None:
                raise ValueError("no session has been started")
            if session_uid is None:
                return self._sim.truth()
            sim = self._sessions.get(str(session_uid))
            if sim is None:
                raise ValueError(
                    f"no session {session_uid!r}; sessions: {', '.join(self._sessions)}"
                )
            return sim.truth()

    # ----- the work threads -----------------------------------------------------------------

    def _refuse_if_busy(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            raise ValueError(f"already {self._state}; send STOP first")

    def _launch(
        self, state: str, work: Callable[[threading.Event], None]
    ) -> tuple[threading.Thread, threading.Event]:
        stop = threading.Event()
        self._state = state
        self._thread = threading.Thread(
            target=work, args=(stop,), name=f"game_sim-{state}", daemon=True
        )
        self._thread.start()
        return self._thread, stop

    def _run_session(self, target: tuple[str, int], pace: Pace, stop: threading.Event) -> None:
        assert self._broadcaster is not None
        broadcaster = self._broadcaster
        sim = broadcaster.sim
        self.logger.info(
            "session %s: %s at %s, %d laps, %d cars, format %d -> %s:%d",
            sim.session_uid, sim.session_type, sim.track.name, sim.total_laps, len(sim.cars),
            broadcaster.format, *target,
        )  # fmt: skip
        try:
            finished = send_paced(self._frames(), target, pace, stop, self._counters)
        except Exception:
            self.logger.exception("session %s failed", self._sim.session_uid if self._sim else None)
            self._set_state("failed")
            raise
        self._set_state("finished" if finished else "stopped")
        self.logger.info(
            "session %s %s: %d packets sent",
            self._sim.session_uid if self._sim else None,
            self._state,
            self._counters.packets,
        )

    def _frames(self) -> Iterator[tuple[float, list[bytes]]]:
        """Frames on the stream's own clock: session time goes back on a flashback and starts
        again at a restart, while the game goes on sending one frame every 1/rate s."""
        stream_s = 0.0
        while True:
            # The lock keeps STATUS and TRUTH from reading a half-stepped race, and RESTART
            # swaps the session between two frames.
            with self._lock:
                assert self._broadcaster is not None
                sim = self._broadcaster.sim
                if sim.over:
                    return
                datagrams = self._broadcaster.step()
            yield stream_s, datagrams
            stream_s += sim.dt

    def _run_replay(
        self,
        frames: Iterator[tuple[float, list[bytes]]],
        target: tuple[str, int],
        pace: Pace,
        stop: threading.Event,
    ) -> None:
        assert self._replay is not None
        self.logger.info("replaying %s -> %s:%d", self._replay["path"], *target)
        finished = send_paced(frames, target, pace, stop, self._counters)
        for problem in self._replay["problems"]:
            self.logger.warning("replay of %s: %s", self._replay["path"], problem)
        self._set_state("finished" if finished else "stopped")

    def _set_state(self, state: str) -> None:
        with self._lock:
            self._state = state


def _new_session(settings: Settings) -> Broadcaster:
    # Every session gets a new UID, as in the game; the race itself follows the seed.
    sim = RaceSim(settings.session_options(), session_uid=secrets.randbits(63) | 1)
    return Broadcaster(sim, settings.format)
