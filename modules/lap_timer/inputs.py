"""Routes samples of the decoder's streams to a LapTimer (no I/O: the feed does the LSL part)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .detector import FIELDS, HEADER, MAX_CARS, FrameLayout
from .packets import session_history_laps, session_uid
from .timer import LapTimer

LAP_DATA = "raceplane.lap_data"
CAR_STATUS = "raceplane.car_status"
NUMERIC = (LAP_DATA, CAR_STATUS)
SESSION_HISTORY = "raceplane.session_history"
JSON = (
    "raceplane.session",
    "raceplane.participants",
    "raceplane.events",
    SESSION_HISTORY,
    "raceplane.final_classification",
)
STREAMS = NUMERIC + JSON
# The order of samples of one producer step (one game frame): the game's send order.
MERGE_ORDER = (
    "raceplane.session",
    "raceplane.participants",
    LAP_DATA,
    CAR_STATUS,
    "raceplane.session_history",
    "raceplane.final_classification",
    "raceplane.events",
)
UID_CHANNELS = ("header.session_uid_hi", "header.session_uid_lo")
SEQUENCE_CHANNEL = "header.overall_frame_identifier"
FORMAT_CHANNEL = "header.packet_format"
# Live timing (packet format 0) numbers every sample of these streams 1, 2, 3 ... (contiguous).
LIVE_TIMING_FORMAT = 0


def needed_channels(stream: str, labels: Sequence[str]) -> list[int]:
    """Positions (in stream order) of the channels the lap timer reads from a numeric stream:
    the feed keeps only these of each sample, and gives Inputs their labels."""
    if stream == LAP_DATA:
        wanted = {f"header.{name}" for name in HEADER} | {FORMAT_CHANNEL}
        wanted |= {f"car{i:02d}.{name}" for i in range(MAX_CARS) for name in FIELDS}
    elif stream == CAR_STATUS:
        wanted = {
            *UID_CHANNELS,
            SEQUENCE_CHANNEL,
            FORMAT_CHANNEL,
            *(f"car{i:02d}.visual_tyre_compound" for i in range(MAX_CARS)),
            *(f"car{i:02d}.tyres_age_laps" for i in range(MAX_CARS)),
        }
    else:
        raise ValueError(f"{stream} is not a numeric stream the lap timer reads")
    return [i for i, label in enumerate(labels) if label in wanted]


class Inputs:
    """`handle(stream, sample)`: a numeric row (after `set_channels`) or a decoded JSON object."""

    def __init__(self, timer: LapTimer) -> None:
        self.timer = timer
        self._layout: FrameLayout | None = None
        self._uid_columns = (0, 1)
        # Where each numeric stream carries its producer's sequence: uid hi, uid lo, seq, and
        # the packet format (None where the stream has none).
        self._sequence_columns: dict[str, tuple[int, int, int, int | None]] = {}
        self._tyre_columns: np.ndarray | None = None
        self._age_columns: np.ndarray | None = None  # None: a stream without tyre ages
        self._handlers: dict[str, Callable[[Any], None]] = {
            LAP_DATA: self._lap_data,
            CAR_STATUS: self._car_status,
            "raceplane.session": timer.on_session,
            "raceplane.participants": timer.on_participants,
            "raceplane.events": timer.on_event,
            "raceplane.session_history": self._session_history,
            "raceplane.final_classification": timer.on_final_classification,
        }

    def set_channels(self, stream: str, labels: Sequence[str]) -> None:
        """Learn where the fields sit in a numeric stream; ValueError if they are not there."""
        position = {label: i for i, label in enumerate(labels)}
        sequence = [*UID_CHANNELS, SEQUENCE_CHANNEL]
        missing = [label for label in sequence if label not in position]
        if missing:
            raise ValueError(f"{stream} stream lacks channels: {', '.join(missing)}")
        hi, lo, seq = (position[label] for label in sequence)
        self._sequence_columns[stream] = (hi, lo, seq, position.get(FORMAT_CHANNEL))
        if stream == LAP_DATA:
            self._layout = FrameLayout(labels)
        elif stream == CAR_STATUS:
            wanted = [*UID_CHANNELS] + [f"car{i:02d}.visual_tyre_compound" for i in range(MAX_CARS)]
            missing = [label for label in wanted if label not in position]
            if missing:
                raise ValueError(f"car_status stream lacks channels: {', '.join(missing[:3])}")
            self._uid_columns = (position[wanted[0]], position[wanted[1]])
            self._tyre_columns = np.array([position[label] for label in wanted[2:]])
            ages = [f"car{i:02d}.tyres_age_laps" for i in range(MAX_CARS)]
            have = all(label in position for label in ages)
            self._age_columns = np.array([position[label] for label in ages]) if have else None

    def sequence(self, stream: str, sample: Any) -> tuple[str, float, bool] | None:
        """The producer's order of a sample: (session uid, overall frame identifier, whether
        the producer numbers its samples without gaps: live timing), or None for a sample
        that does not say (it is refused when handled)."""
        try:
            columns = self._sequence_columns.get(stream)
            if columns is not None:
                hi, lo, seq, fmt = columns
                uid = str((int(sample[hi]) << 32) | int(sample[lo]))
                live = fmt is not None and sample[fmt] == LIVE_TIMING_FORMAT
                return uid, float(sample[seq]), bool(live)
            header = sample["header"]
            live = header.get("packet_format") == LIVE_TIMING_FORMAT
            return str(header["session_uid"]), float(header["overall_frame_identifier"]), live
        except (KeyError, TypeError, ValueError, IndexError, OverflowError, AttributeError):
            return None

    def handle(self, stream: str, sample: Any) -> None:
        self._handlers[stream](sample)

    def handle_batch(self, batch: Iterable[tuple[str, Any]]) -> list[tuple[str, Exception]]:
        """(stream, sample) from all streams, in the order given (the feed's merge puts them
        in the producer's order); returns the samples refused and why."""
        refused: list[tuple[str, Exception]] = []
        for stream, sample in batch:
            try:
                self.handle(stream, sample)
            except (ValueError, KeyError, TypeError, IndexError) as error:
                refused.append((stream, error))
        self.timer.flush()
        return refused

    def _lap_data(self, row: np.ndarray) -> None:
        if self._layout is None:
            raise ValueError("lap_data channels unknown: set_channels first")
        self.timer.on_lap_data(self._layout.frame(row))

    def _car_status(self, row: np.ndarray) -> None:
        if self._tyre_columns is None:
            raise ValueError("car_status channels unknown: set_channels first")
        hi, lo = self._uid_columns
        uid = (int(row[hi]) << 32) | int(row[lo])
        ages = None
        if self._age_columns is not None:
            # NaN: a format without the field; the report then says the age is unknown.
            ages = _ints(row[self._age_columns])
        compounds = _ints(row[self._tyre_columns])
        if None in compounds:
            raise ValueError("car_status: a tyre compound that is not a number")
        self.timer.on_car_status(str(uid), compounds, ages)  # type: ignore[arg-type]

    def _session_history(self, packet: dict[str, Any]) -> None:
        car, laps = session_history_laps(packet)
        self.timer.reconcile(session_uid(packet), car, laps)


def _ints(values: np.ndarray) -> list[int | None]:
    """Python ints of a row's values, None where one is not finite (one cast for the row)."""
    finite = np.isfinite(values)
    if finite.all():
        return values.astype(np.int64).tolist()
    return [int(v) if ok else None for v, ok in zip(values.tolist(), finite.tolist(), strict=True)]
