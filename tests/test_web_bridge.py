"""The web bridge as a process: REST and WebSocket, fed by real LSL outlets in another process
(the feeder), writing to a real lap timer and recorder."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.testing import wait_until
from modules.web_bridge.devstack import DevStack, Endpoint

FED = ("raceplane.session", "raceplane.participants", "raceplane.events", "raceplane.car_telemetry")
UID = 1234567890123456789


class Stack:
    def __init__(self, dev: DevStack, bridge: Endpoint, lap_timer: Endpoint, feeder) -> None:
        self.dev = dev
        self.bridge = bridge
        self.lap_timer = lap_timer
        self.feeder: subprocess.Popen = feeder
        self.http = httpx.Client(base_url=bridge.url, timeout=10)

    def push(self, order: dict[str, Any]) -> float:
        """Push one sample through the feeder; returns its LSL time."""
        self.feeder.stdin.write(json.dumps(order) + "\n")
        self.feeder.stdin.flush()
        return float(self.feeder.stdout.readline().split()[1])

    def ws(self) -> ClientConnection:
        return connect(f"ws://127.0.0.1:{self.bridge.http_port}/ws", open_timeout=10)

    def streams(self) -> set[str]:
        return {s["name"] for s in self.http.get("/api/streams").json()}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("web_bridge")
    with DevStack(directory) as dev:
        dev.log_server()
        feeder = dev.feeder(*FED)
        lap_timer = dev.module("lap_timer", "--db", str(directory / "laps.sqlite3"))
        recorder = dev.module("recorder", "--save-path", str(directory / "recordings"))
        (directory / "recordings").mkdir()
        bridge = dev.bridge(lap_timer, recorder)
        result = Stack(dev, bridge, lap_timer, feeder)
        wanted = {*FED, "raceplane.laps", "raceplane.standings"}
        wait_until(lambda: wanted <= result.streams(), timeout=30, message=f"bridge sees {wanted}")
        yield result
        result.http.close()


def receive_until(
    ws: ClientConnection, kind: str | set[str], match=lambda data: True, timeout=15
) -> dict:
    """Read messages until one of `kind` (or of a set of kinds) whose data satisfies `match`."""
    kinds = {kind} if isinstance(kind, str) else kind
    seen = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = json.loads(ws.recv(timeout=left))
        except TimeoutError:
            break
        seen.append(message["type"])
        if message["type"] in kinds and match(message.get("data", message)):
            return message
    raise TimeoutError(f"no {kind} message in {timeout} s; saw {seen[-30:]}")


def session_packet(track: str) -> dict[str, Any]:
    return {
        "header": {"session_uid": str(UID), "session_time_s": 1.0},
        "track_id": 11,
        "track_name": track,
        "session_type_name": "Race",
        "total_laps": 5,
        "weather_name": "overcast",
        "safety_car_status_name": "none",
        "marshal_zones": [{"zone_start": 0.1, "zone_flag": 3}],
        "num_marshal_zones": 1,
    }


def test_snapshot_then_live_session(stack: Stack) -> None:
    with stack.ws() as ws:
        first = json.loads(ws.recv(timeout=10))
        assert first["type"] == "snapshot"
        assert {"session", "tower", "events", "drivers", "logs"} <= set(first["data"])
        stack.push({"stream": "raceplane.session", "json": session_packet("Imola")})
        message = receive_until(ws, "session", lambda d: d["track"] == "Imola")
        assert message["data"]["weather"] == "overcast"
        assert message["data"]["flags"] == ["yellow"]
    assert stack.http.get("/api/session").json()["track"] == "Imola"


def test_events_name_the_driver(stack: Stack) -> None:
    drivers = [{"name": "Ada LOVELACE", "team_name": "Williams", "race_number": 7}] * 3
    stack.push({"stream": "raceplane.participants", "json": {"participants": drivers}})
    wait_until(lambda: stack.http.get("/api/drivers").json(), timeout=10, message="drivers")
    with stack.ws() as ws:
        stack.push(
            {
                "stream": "raceplane.events",
                "json": {"code": "RTMT", "name": "retirement", "vehicle_idx": 2},
            }
        )
        event = receive_until(ws, "event", lambda d: d["code"] == "RTMT")["data"]
    assert event["text"] == "Retired: Ada LOVELACE"
    assert any(e["code"] == "RTMT" for e in stack.http.get("/api/events").json())


def test_telemetry_only_for_subscribed_cars(stack: Stack) -> None:
    with stack.ws() as ws:
        ws.send(json.dumps({"type": "subscribe", "cars": [3], "rate_hz": 50, "map": False}))
        receive_until(ws, "subscribed", lambda d: d["cars"] == [3])
        values = {"3": {"speed_kph": 287.5, "gear": 7}, "4": {"speed_kph": 100.0}}
        t = stack.push({"stream": "raceplane.car_telemetry", "cars": values, "uid": UID})
        message = receive_until(ws, "telemetry", lambda d: d["cars"] and d["cars"]["3"])
    assert set(message["data"]["cars"]) == {"3"}
    assert message["data"]["cars"]["3"]["speed_kph"] == 287.5
    assert message["data"]["cars"]["3"]["gear"] == 7
    assert "positions" not in message["data"]
    assert message["t"] == pytest.approx(t)


def test_clients_get_their_own_cars_at_their_own_rates(stack: Stack) -> None:
    with stack.ws() as fast, stack.ws() as slow, stack.ws() as same:
        subscriptions = [(fast, [3], 50), (slow, [4, 3], 2), (same, [3], 50)]
        for ws, cars, rate in subscriptions:
            ws.send(json.dumps({"type": "subscribe", "cars": cars, "rate_hz": rate, "map": False}))
            receive_until(ws, "subscribed", lambda d, cars=cars: d["cars"] == cars)
        values = {"3": {"speed_kph": 301.0}, "4": {"speed_kph": 99.0}}
        stack.push({"stream": "raceplane.car_telemetry", "cars": values, "uid": UID})
        got = {}
        for ws, *_ in subscriptions:  # an earlier frame may come first: wait for this one
            pushed = lambda d: d["cars"].get("3", {}).get("speed_kph") == 301.0  # noqa: E731
            got[ws] = receive_until(ws, "telemetry", pushed)["data"]["cars"]
    assert set(got[fast]) == set(got[same]) == {"3"} and got[fast] == got[same]
    assert set(got[slow]) == {"3", "4"} and got[slow]["4"]["speed_kph"] == 99.0


def test_status_reports_loop_lag_and_pull_to_send_delay(stack: Stack) -> None:
    def figures() -> dict:
        with ModuleClient("127.0.0.1", stack.bridge.port).connect() as client:
            return client.request("STATUS")["websocket"]

    before = figures()["pull_to_send_ms"]["n"]
    with stack.ws() as ws:
        event = {"code": "LGOT", "name": "lights out"}
        stack.push({"stream": "raceplane.events", "json": event})
        receive_until(ws, "event", lambda d: d["code"] == "LGOT")
    wait_until(lambda: figures()["loop_lag_ms"]["n"] >= 3, timeout=15, message="lag probes")
    status = figures()
    for name in ("loop_lag_ms", "pull_to_send_ms"):
        figure = status[name]
        assert 0 <= figure["p50"] <= figure["p99"] <= figure["max"], name
    assert status["pull_to_send_ms"]["n"] > before  # the event's send was timed


def test_bad_client_messages_get_errors_and_the_connection_lives(stack: Stack) -> None:
    with stack.ws() as ws:
        bad = [
            "not json",
            json.dumps([1, 2]),
            json.dumps({"type": "subscribe", "cars": [99]}),
            json.dumps({"type": "subscribe", "rate_hz": 1000}),
            json.dumps({"type": "subscribe", "map": "yes"}),
            "x" * 5000,
        ]
        for text in bad:
            ws.send(text)
            error = receive_until(ws, "error", timeout=10)
            assert error["error"]
        ws.send(json.dumps({"type": "ping"}))
        receive_until(ws, "pong")


def test_manual_lap_round_trip(stack: Stack) -> None:
    with stack.ws() as ws:
        reply = stack.http.post("/api/laps", json={"driver": "Grace HOPPER", "time": "1:31.250"})
        assert reply.status_code == 201, reply.text
        lap = reply.json()
        assert lap["lap_time_ms"] == 91250 and lap["source"] == "manual"
        # Two streams (laps, standings): either may come first.
        got: dict[str, dict] = {}

        def hopper(data: dict) -> bool:
            rows = data.get("rows", [data])
            return any(row.get("driver") == "Grace HOPPER" for row in rows)

        while len(got) < 2:
            message = receive_until(ws, {"lap", "standings"} - set(got), hopper)
            got[message["type"]] = message["data"]
        assert got["lap"]["id"] == lap["id"]
        table = got["standings"]
    laps = stack.http.get("/api/laps", params={"session_uid": table["session_uid"]}).json()
    assert lap["id"] in [entry["id"] for entry in laps]
    csv_text = stack.http.get("/api/export.csv", params={"session_uid": table["session_uid"]})
    assert csv_text.status_code == 200
    assert csv_text.text.splitlines()[0].lower().startswith("position")
    assert "Grace HOPPER" in csv_text.text
    assert stack.http.delete(f"/api/laps/{lap['id']}").status_code == 200
    again = stack.http.delete(f"/api/laps/{lap['id']}")
    assert again.status_code == 404 and str(lap["id"]) in again.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({"driver": "Ada", "time": "1:2x.5"}, "time", "not understood"),
        ({"driver": "Ada", "time": "0.5"}, "time", "outside"),
        ({"driver": "", "time": "1:30.000"}, "driver", "at least 1"),
        ({"driver": "Ada"}, "time", "required"),
    ],
)
def test_bad_lap_is_refused_naming_the_field(stack: Stack, body, field, text) -> None:
    reply = stack.http.post("/api/laps", json=body)
    assert reply.status_code == 422
    errors = reply.json()["detail"]
    assert errors[0]["loc"][-1] == field
    assert text in errors[0]["msg"]


def test_track_and_recorder(stack: Stack, tmp_path: Path) -> None:
    assert stack.http.put("/api/track", json={"track": "Imola"}).json() == {"track": "Imola"}
    status = stack.http.get("/api/modules").json()
    assert status["lap_timer"]["up"] and status["lap_timer"]["track"] in ("Imola", "")
    sneaky = stack.http.post("/api/recorder/record", json={"filename": "../../outside.xdf"})
    assert sneaky.status_code == 422 and sneaky.json()["detail"][0]["loc"][-1] == "filename"
    started = stack.http.post("/api/recorder/record", json={"filename": "web.xdf"})
    assert started.status_code == 200, started.text
    assert started.json()["file"].endswith("web.xdf")
    again = stack.http.post("/api/recorder/record", json={"filename": "web.xdf"})
    assert again.status_code == 409 and "already recording" in again.text
    # Another file: the recorder closes web.xdf and starts it, and says what it closed.
    second = stack.http.post("/api/recorder/record", json={"filename": "web2.xdf"})
    assert second.status_code == 200 and second.json()["closed"]["file"].endswith("web.xdf")
    stopped = stack.http.post("/api/recorder/stop")
    assert stopped.status_code == 200 and stopped.json()["file"].endswith("web2.xdf")
    assert Path(stopped.json()["file"]).exists()


def test_observer_last_values_and_since(stack: Stack) -> None:
    before = stack.push({"stream": "raceplane.car_telemetry", "cars": {"5": {"speed_kph": 111}}})
    stack.push({"stream": "raceplane.car_telemetry", "cars": {"5": {"speed_kph": 222}}})

    def newest() -> dict | None:
        values = stack.http.get("/api/channels", params={"stream": "raceplane.car_telemetry"})
        found = values.json()["raceplane.car_telemetry"]["values"]
        return found if found["car05.speed_kph"] == 222 else None

    assert wait_until(newest, timeout=10)["car05.throttle"] == 0
    since = stack.http.get(
        "/api/channels/raceplane.car_telemetry/car05.speed_kph", params={"since": before - 1e-6}
    ).json()
    assert since["values"] == [111, 222]
    assert since["t"][0] == pytest.approx(before)
    assert stack.http.get("/api/channels/raceplane.nope/x").status_code == 404
    assert stack.http.get("/api/channels/raceplane.car_telemetry/nope").status_code == 404
    assert stack.http.get("/api/channels", params={"stream": "raceplane.events"}).status_code == 404


def test_log_tail_follows_the_log_server(stack: Stack) -> None:
    def bridge_records() -> list[dict]:
        logs = stack.http.get("/api/logs", params={"limit": 200}).json()
        return [r for r in logs if r["name"] == "web_bridge" and "dashboard on" in r["message"]]

    record = wait_until(bridge_records, timeout=15, message="the bridge's own log record")[0]
    assert record["levelname"] == "INFO" and record["timestamp"]
    with stack.ws() as ws:
        snapshot = json.loads(ws.recv(timeout=10))["data"]
        assert any(r["name"] == "lap_timer" for r in snapshot["logs"])
        stack.http.put("/api/track", json={"track": "Mugello"})  # the lap timer logs nothing
        with ModuleClient("127.0.0.1", stack.bridge.port).connect() as client:
            client.request("RELOAD")  # ...but the bridge logs this
        receive_until(ws, "log", lambda d: "RELOAD" in d["message"])
    wait_until(lambda: set(FED) <= stack.streams(), timeout=30, message="streams back after RELOAD")


def test_oversized_websocket_message_closes_only_that_client(stack: Stack) -> None:
    with stack.ws() as ws:
        json.loads(ws.recv(timeout=10))
        ws.send("x" * 100_000)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1009  # message too big
    with stack.ws() as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"


def test_a_client_that_stops_reading_is_dropped_and_others_carry_on(stack: Stack) -> None:
    with ModuleClient("127.0.0.1", stack.bridge.port).connect() as client:
        dropped_before = client.request("STATUS")["websocket"]["clients_dropped"]
    # A raw WebSocket handshake, then never a byte read: the bridge's queue for it fills.
    stalled = socket.create_connection(("127.0.0.1", stack.bridge.http_port), timeout=10)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    try:
        with stack.ws() as ws:
            event = {"code": "XXXX", "name": "n" * 180}
            # 30 bursts of 600 events of ~450 bytes: 8 MB, past the socket buffers and the
            # 2000-message queue; each burst fits the bridge's ring, so none is lost.
            for _ in range(30):
                stack.push({"stream": "raceplane.events", "json": event, "repeat": 600})
                # This reader keeps up: it reads the whole burst before the next (counted,
                # not "until 0.2 s of quiet", which a loaded machine cut short).
                events = 0
                while events < 600:
                    message = json.loads(ws.recv(timeout=30))
                    events += message["type"] == "event" and message["data"]["code"] == "XXXX"

            def dropped() -> bool:
                with ModuleClient("127.0.0.1", stack.bridge.port).connect() as client:
                    status = client.request("STATUS")["websocket"]
                return status["clients_dropped"] > dropped_before

            wait_until(dropped, timeout=30, message="the stalled client dropped")
            ws.send(json.dumps({"type": "ping"}))
            receive_until(ws, "pong")
    finally:
        stalled.close()


def test_command_server_status_and_reload(stack: Stack) -> None:
    with ModuleClient("127.0.0.1", stack.bridge.port).connect() as client:
        status = client.request("STATUS")
        assert status["name"] == "web_bridge" and not status["token_required"]
        assert "raceplane.car_telemetry" in {s["name"] for s in status["streams"]}
        dropped = client.request("RELOAD")["reconnecting"]
    assert "raceplane.car_telemetry" in dropped
    wait_until(lambda: set(FED) <= stack.streams(), timeout=30, message="streams back after RELOAD")


def test_http_port_survives_garbage(stack: Stack) -> None:
    for payload in (
        b"\x00\xff" * 500 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"A" * 70000,
    ):
        with socket.create_connection(("127.0.0.1", stack.bridge.http_port), timeout=5) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            reply = sock.recv(100)
            assert reply == b"" or reply.startswith(b"HTTP/1.1 4")
    half_open = socket.create_connection(("127.0.0.1", stack.bridge.http_port), timeout=5)
    half_open.sendall(b"GET /api/session HTTP/1.1\r\n")  # and never finishes
    try:
        assert stack.http.get("/api/session").status_code == 200
    finally:
        half_open.close()


def test_token_guards_writes_off_loopback(stack: Stack) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "modules.web_bridge", "--http-host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=stack.dev.env,
    )
    assert refused.returncode == 2 and "--token" in refused.stderr

    bridge = stack.dev.bridge(
        stack.lap_timer, None, "--http-host", "0.0.0.0", "--token", "s3cret", name="guarded"
    )
    with httpx.Client(base_url=bridge.url, timeout=10) as http:
        assert http.get("/api/session").status_code == 200  # reads stay open
        lap = {"driver": "Guarded", "time": "1:40.000"}
        assert http.post("/api/laps", json=lap).status_code == 401
        wrong = http.post("/api/laps", json=lap, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = http.post("/api/laps", json=lap, headers={"Authorization": "Bearer s3cret"})
        assert right.status_code == 201
        assert http.delete("/api/laps/1").status_code == 401
        assert http.get("/admin").status_code == 401
        opened = http.get("/admin", params={"token": "s3cret"}, follow_redirects=False)
        assert opened.status_code == 303 and "raceplane_token" in opened.headers["set-cookie"]
        assert http.get("/admin").status_code == 200  # the cookie now
        assert http.put("/api/track", json={"track": "Imola"}).status_code == 200
