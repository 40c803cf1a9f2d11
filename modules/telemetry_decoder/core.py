"""The decoder's protocol core, without I/O: datagrams in, stream samples and notices out.

`DecoderCore.feed(batch)` takes the datagrams one socket drain produced, checks each against
its type's size, counts what it rejects (by reason), follows every sender's session, frames
and flashbacks, and returns what to publish: numeric rows per stream (one vectorised decode
per packet type in the batch) and JSON objects. Time comes in as arguments, so tests drive
it without sockets or clocks.
"""

from __future__ import annotations

import struct
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from dareplane_utils.stream_watcher.outlets import encode_json
from modules.f1_udp import FORMATS, PACKET_SIZES, PacketId, UnknownPacketError, packet_dtype
from modules.stream_catalogue import BY_PACKET_ID
from modules.telemetry_decoder.extract import RowPlan
from modules.telemetry_decoder.json_packets import header_json, to_json

NOTICES = "raceplane.decoder"
_HEADER = struct.Struct("<HBBBBBQfIIBB")
# Types the game sends on every send frame ("rate as specified in menus"): gaps in their frame
# identifiers are lost datagrams.
PER_FRAME_TYPES = frozenset(
    {
        PacketId.MOTION,
        PacketId.LAP_DATA,
        PacketId.CAR_TELEMETRY,
        PacketId.CAR_STATUS,
        PacketId.MOTION_EX,
        PacketId.CAR_TELEMETRY_2,
    }
)
# A small step back in overallFrameIdentifier is reordering on the network; more is a restart.
REORDER_TOLERANCE = 5
REJECT_LOG_INTERVAL_S = 5.0
# Distinct JSON packet contents kept for reuse (two per car and type cover a race's rotation).
BODY_CACHE = 512
RATE_WINDOW_S = 5.0


@dataclass(frozen=True, slots=True)
class Datagram:
    data: bytes
    sender: tuple[str, int]
    time: float  # when it was received, on the LSL clock (the sample's timestamp)


@dataclass
class Publication:
    """Samples for one stream: numeric `rows` (k x channels) or JSON `objects`."""

    stream: str
    timestamps: list[float]
    rows: np.ndarray | None = None
    objects: list[dict[str, Any]] | None = None
    # The objects' JSON texts (encode_json's, byte for byte), where the core has them already.
    texts: list[str] | None = None


@dataclass
class Source:
    """One sending game (an address), its session and frame bookkeeping."""

    index: int
    address: str
    session_uid: int | None = None
    packet_format: int = 0
    game_year: int = 0
    frame: int = -1
    overall_frame: int = -1
    packets: int = 0
    flashbacks: int = 0
    restarts: int = 0
    reordered: int = 0
    drops: int = 0
    track: dict[str, Any] = field(default_factory=dict)
    last_frame_by_type: dict[int, int] = field(default_factory=dict)
    step_by_type: dict[int, int] = field(default_factory=dict)

    def notice(self, kind: str, **details: Any) -> dict[str, Any]:
        return {"kind": kind, "source": self.index, **details}

    def new_session(self, uid: int) -> None:
        self.session_uid = uid
        self.frame = self.overall_frame = -1
        self.last_frame_by_type.clear()
        self.step_by_type.clear()
        self.track = {}

    def status(self) -> dict[str, Any]:
        return {
            "source": self.index,
            "address": self.address,
            "session_uid": None if self.session_uid is None else str(self.session_uid),
            "packet_format": self.packet_format,
            "game_year": self.game_year,
            "frame_identifier": self.frame,
            "overall_frame_identifier": self.overall_frame,
            "packets": self.packets,
            "flashbacks": self.flashbacks,
            "restarts": self.restarts,
            "reordered": self.reordered,
            "drops_detected": self.drops,
            **self.track,
        }


def _raw_json(obj: dict[str, Any]) -> bytes | None:
    """orjson's text of `obj` when it is what encode_json sends (no null in it), else None."""
    try:
        raw = orjson.dumps(obj)
    except TypeError:  # orjson.JSONEncodeError included
        return None
    return None if b"null" in raw else raw


def describe_notice(notice: dict[str, Any]) -> str:
    """One log line for a notice on raceplane.decoder (the README promises these in the log)."""
    kind, source = notice["kind"], notice.get("source")
    if kind == "new_source":
        return f"new sender {notice['address']} (source {source})"
    if kind == "session_started":
        was = notice["previous_session_uid"]
        return (
            f"new session {notice['session_uid']} from source {source} "
            f"(format {notice['packet_format']}{f', was {was}' if was else ''})"
        )
    if kind == "restart":
        return (
            f"source {source} restarted: overall frame {notice['from_overall_frame']} -> "
            f"{notice['to_overall_frame']}"
        )
    if kind == "flashback":
        return f"flashback on source {source}: frame {notice['from_frame']} -> {notice['to_frame']}"
    return f"{kind}: {notice}"


class DecoderCore:
    def __init__(self, now: float = 0.0) -> None:
        self.sources: dict[tuple[str, int], Source] = {}
        self.packets: Counter[str] = Counter()  # by stream name
        self.rejects: Counter[str] = Counter()
        self.received = 0
        self.bytes = 0
        self._plans: dict[tuple[int, int], RowPlan] = {}
        # (format, packet id, bytes after the header) -> (JSON object without its header, its
        # orjson text or None); see _json.
        self._bodies: dict[tuple[int, int, bytes], tuple[dict[str, Any], bytes | None]] = {}
        self._unlogged: Counter[str] = Counter()
        self._examples: dict[str, str] = {}
        self._last_report = now
        self._rate_marks: list[tuple[float, Counter[str]]] = [(now, Counter())]

    # ---- decoding -------------------------------------------------------------------------

    def feed(self, batch: list[Datagram]) -> list[Publication]:
        """Decode one batch; returns publications in the order their streams first appeared."""
        numeric: dict[tuple[int, int], list[tuple[Datagram, int]]] = defaultdict(list)
        out: dict[str, Publication] = {}
        notices: list[tuple[float, dict[str, Any]]] = []
        for datagram in batch:
            self.received += 1
            self.bytes += len(datagram.data)
            checked = self._check(datagram.data)
            if checked is None:
                continue
            fmt, packet_id = checked
            source = self._source(datagram, notices)
            self._follow(source, datagram, packet_id, notices)
            stream = BY_PACKET_ID[packet_id]
            if stream.kind == "json":
                decoded = self._json(datagram, fmt, packet_id, source)
                if decoded is None:
                    continue
                obj, text = decoded
                if packet_id == PacketId.SESSION:
                    source.track = {
                        "track_id": obj["track_id"],
                        "track_name": obj["track_name"],
                        "session_type": obj["session_type"],
                        "session_type_name": obj["session_type_name"],
                    }
                pub = out.setdefault(
                    stream.name, Publication(stream.name, [], objects=[], texts=[])
                )
                pub.timestamps.append(datagram.time)
                assert pub.objects is not None and pub.texts is not None
                pub.objects.append(obj)
                pub.texts.append(text)
            else:
                numeric[(fmt, packet_id)].append((datagram, source.index))
                if stream.name not in out:
                    out[stream.name] = Publication(stream.name, [])
            self.packets[stream.name] += 1
        for (fmt, packet_id), items in numeric.items():
            self._rows(out[BY_PACKET_ID[packet_id].name], fmt, packet_id, items)
        if notices:
            out[NOTICES] = Publication(
                NOTICES, [t for t, _ in notices], objects=[n for _, n in notices]
            )
        return list(out.values())

    def _rows(
        self, pub: Publication, fmt: int, packet_id: int, items: list[tuple[Datagram, int]]
    ) -> None:
        plan = self._plans.get((fmt, packet_id))
        if plan is None:
            plan = self._plans[(fmt, packet_id)] = RowPlan(BY_PACKET_ID[packet_id], fmt)
        if len(items) == 1:  # the usual case at the game's rate: one datagram per wake-up
            ((datagram, source),) = items
            rows = plan.rows(datagram.data, source)
            pub.timestamps.append(datagram.time)
        else:
            rows = plan.rows(
                b"".join([d.data for d, _ in items]), np.array([s for _, s in items], float)
            )
            pub.timestamps.extend([d.time for d, _ in items])
        if pub.rows is None:
            pub.rows = rows
        else:  # two formats of one type in one batch (two games): keep receive order per format
            pub.rows = np.vstack((pub.rows, rows))

    def _json(
        self, datagram: Datagram, fmt: int, packet_id: int, source: Source
    ) -> tuple[dict[str, Any], str] | None:
        """The packet's JSON object and text. Most JSON packets repeat what the one before
        said (SessionHistory and TyreSets go round the cars, ~97 % unchanged): the part after
        the header is converted and encoded once per distinct content, and reused."""
        dtype = packet_dtype(fmt, packet_id)
        header_size = dtype.fields["header"][0].itemsize
        key = (fmt, packet_id, datagram.data[header_size:])
        cached = self._bodies.get(key)
        if cached is None:
            packet = np.frombuffer(datagram.data, dtype, count=1)[0]
            try:
                obj = to_json(packet, datagram.data, source.index)
            except UnknownPacketError as error:
                self._reject("unknown_event_code", str(error))
                return None
            header = obj.pop("header")
            cached = (obj, _raw_json(obj))
            if len(self._bodies) >= BODY_CACHE:
                self._bodies.clear()
            self._bodies[key] = cached
            obj = {"header": header, **obj}
        else:
            packet = np.frombuffer(datagram.data, dtype, count=1)[0]
            obj = {"header": header_json(packet["header"], source.index), **cached[0]}
        header_raw = _raw_json(obj["header"])
        body_raw = cached[1]
        if header_raw is None or body_raw is None:  # encode_json's slow path decides
            return obj, encode_json(obj)
        tail = b"," + body_raw[1:] if len(body_raw) > 2 else b"}"
        return obj, (b'{"header":' + header_raw + tail).decode()

    # ---- checking -------------------------------------------------------------------------

    def _check(self, data: bytes) -> tuple[int, int] | None:
        if len(data) < _HEADER.size:
            self._reject("too_short", f"{len(data)} bytes, a header alone is {_HEADER.size}")
            return None
        fmt = data[0] | (data[1] << 8)
        packet_id = data[6]
        size = PACKET_SIZES.get((fmt, packet_id))
        if size is None:
            if fmt not in FORMATS:
                self._reject("unknown_format", f"packet format {fmt}")
            else:
                self._reject("unknown_packet_id", f"packet id {packet_id} in format {fmt}")
            return None
        if len(data) != size:
            self._reject(
                "wrong_size", f"format {fmt} id {packet_id}: {len(data)} bytes, expected {size}"
            )
            return None
        return fmt, packet_id

    def _reject(self, reason: str, example: str) -> None:
        self.rejects[reason] += 1
        self._unlogged[reason] += 1
        self._examples.setdefault(reason, example)

    def reject_report(self, now: float) -> str | None:
        """A one-line summary of rejects since the last report, at most every 5 s (or None)."""
        if not self._unlogged or now - self._last_report < REJECT_LOG_INTERVAL_S:
            return None
        parts = [
            f"{reason} {count} (e.g. {self._examples.get(reason, '?')})"
            for reason, count in self._unlogged.most_common()
        ]
        text = (
            f"rejected {sum(self._unlogged.values())} datagrams in the last "
            f"{now - self._last_report:.1f} s: " + "; ".join(parts)
        )
        self._unlogged.clear()
        self._examples.clear()
        self._last_report = now
        return text

    # ---- senders, sessions, frames ---------------------------------------------------------

    def _source(self, datagram: Datagram, notices: list) -> Source:
        source = self.sources.get(datagram.sender)
        if source is None:
            address = f"{datagram.sender[0]}:{datagram.sender[1]}"
            source = self.sources[datagram.sender] = Source(len(self.sources), address)
            notices.append(
                (datagram.time, {"kind": "new_source", "source": source.index, "address": address})
            )
        source.packets += 1
        return source

    def _follow(self, source: Source, datagram: Datagram, packet_id: int, notices: list) -> None:
        fmt, year, _, _, _, _, uid, _, frame, overall, _, _ = _HEADER.unpack_from(datagram.data)
        if uid != source.session_uid:
            previous = None if source.session_uid is None else str(source.session_uid)
            notices.append(
                (datagram.time, source.notice("session_started", session_uid=str(uid),
                                              previous_session_uid=previous, packet_format=fmt))
            )  # fmt: skip
            source.new_session(uid)
        source.packet_format, source.game_year = fmt, year
        if overall < source.overall_frame:
            if source.overall_frame - overall <= REORDER_TOLERANCE:
                source.reordered += 1
                return
            source.restarts += 1
            notices.append(
                (datagram.time, source.notice("restart", from_overall_frame=source.overall_frame,
                                              to_overall_frame=overall))
            )  # fmt: skip
            source.last_frame_by_type.clear()
        elif frame < source.frame:
            # frameIdentifier goes back on a flashback; overallFrameIdentifier never does.
            source.flashbacks += 1
            notices.append(
                (datagram.time, source.notice("flashback", from_frame=source.frame, to_frame=frame))
            )
        source.frame, source.overall_frame = frame, overall
        if packet_id in PER_FRAME_TYPES:
            self._count_gaps(source, packet_id, overall)

    @staticmethod
    def _count_gaps(source: Source, packet_id: int, overall: int) -> None:
        last = source.last_frame_by_type.get(packet_id)
        source.last_frame_by_type[packet_id] = overall
        if last is None or overall <= last:
            return
        step = overall - last
        usual = source.step_by_type.get(packet_id)
        # The send rate can be below the game's frame rate: the smallest step seen is "one".
        if usual is None or step < usual:
            source.step_by_type[packet_id] = step
        elif step >= 2 * usual:
            source.drops += step // usual - 1

    # ---- status ---------------------------------------------------------------------------

    def status(self, now: float) -> dict[str, Any]:
        marks = self._rate_marks
        if now - marks[-1][0] >= 1.0:
            marks.append((now, Counter(self.packets)))
            while len(marks) > 2 and now - marks[1][0] >= RATE_WINDOW_S:
                marks.pop(0)
        since, counts = marks[0]
        span = max(now - since, 1e-9)
        current = max(self.sources.values(), key=lambda s: s.packets, default=None)
        return {
            "received": self.received,
            "bytes": self.bytes,
            "packets": dict(self.packets),
            "rejects": dict(self.rejects),
            "rates_hz": {
                name: round((count - counts.get(name, 0)) / span, 1)
                for name, count in self.packets.items()
            },
            "sources": [s.status() for s in self.sources.values()],
            "current_session": None if current is None else current.status(),
            "drops_detected": sum(s.drops for s in self.sources.values()),
        }
