"""The Python API against a running stack: callbacks on live data, the remote observer and the
session store, through the real demo stack (control room, simulator, decoder, lap timer,
recorder, web bridge as processes, LSL, HTTP)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pylsl
import pytest
from e2e_support import Stack, demo_setup

from dareplane_utils.testing import free_port, wait_until
from modules.analysis import open_recording
from modules.live import LiveClient, RemoteObserver, SessionStore, TokenRefused, load_store
from modules.stream_catalogue import STREAMS

REPO = Path(__file__).resolve().parent.parent
LAP_FIELDS = ("lap_time_ms", "sector_ms", "valid", "pit_in", "pit_out", "tyre")
RACE = {"laps": 2, "cars": 20, "speed": 20, "rate": 20, "seed": 8, "track": "monza"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    files = demo_setup(tmp_path_factory.mktemp("live"), autostart=False)
    running = Stack.start(files)
    try:
        running.wait_running()
        wait_until(
            lambda: len(running.direct("lap_timer", "STATUS")["inputs"]["connected"]) >= 7,
            timeout=60,
            interval=0.2,
            message="the lap timer reading the decoder's streams",
        )
        yield running
    finally:
        running.close()


def race(stack: Stack, **overrides: object) -> dict:
    """Run a race to its end; TRUTH of it."""
    stack.direct("game_sim", "START", {**RACE, **overrides})
    wait_until(
        lambda: stack.direct("game_sim", "STATUS")["finished"],
        timeout=500,
        interval=0.5,
        message="the race finished",
    )
    return stack.truth()


@pytest.mark.timeout(600)  # a whole race through six processes: slow on a loaded machine
def test_callbacks_get_every_lap_once_in_order_and_telemetry_as_sent(stack: Stack) -> None:
    client = LiveClient(missing_after_s=5)
    laps: list[dict] = []
    also: list[dict] = []
    telemetry = []

    @client.on("laps")
    def collect(lap: dict) -> None:
        laps.append(lap)

    @client.on("laps")
    def broken(lap: dict) -> None:
        raise RuntimeError("a user's bug")

    client.on("laps", also.append)

    @client.on_telemetry(cars=[0], channels=["speed_kph", "throttle", "gear"], rate_hz=10)
    def trace(sample) -> None:
        telemetry.append(sample)

    # What the decoder published, read beside the client to compare with.
    raw = pylsl.StreamInlet(
        pylsl.resolve_byprop("name", "raceplane.car_telemetry", 1, 10)[0],
        max_buflen=600,
    )
    raw.open_stream(timeout=10)
    with client:
        wait_until(
            lambda: client.status()["missing"] == [],
            timeout=30,
            interval=0.1,
            message="the client reading laps and car telemetry",
        )
        truth = race(stack)
        uid = str(truth["session_uid"])
        expected = {(c["car_index"], lap["lap"]): lap for c in truth["cars"] for lap in c["laps"]}
        wait_until(
            lambda: len([lap for lap in laps if lap["session_uid"] == uid]) >= len(expected),
            timeout=60,
            interval=0.1,
            message="every lap of the race delivered",
        )
        status = client.status()
    mine = [lap for lap in laps if lap["session_uid"] == uid]
    keys = [(lap["car_index"], lap["lap"]) for lap in mine]
    assert len(keys) == len(set(keys)) == len(expected)  # each exactly once
    assert {k: {f: lap[f] for f in LAP_FIELDS} for k, lap in zip(keys, mine, strict=True)} == {
        k: {f: lap[f] for f in LAP_FIELDS} for k, lap in expected.items()
    }
    for car in {car for car, _ in keys}:  # in order: each car's laps one after the other
        numbers = [n for c, n in keys if c == car]
        assert numbers == sorted(numbers)
    assert also == laps  # a raising callback stopped neither the next one
    assert status["callback_errors"] == {broken.__qualname__: len(laps)}

    # Telemetry: 10 Hz by the game's clock, values equal to the decoder's samples.
    samples, _ = raw.pull_chunk(timeout=1.0, max_samples=100000)
    labels = [c.label for c in STREAMS["raceplane.car_telemetry"].channels]
    col = {label: i for i, label in enumerate(labels)}
    by_frame = {
        (int(s[col["header.session_uid_lo"]]), int(s[col["header.frame_identifier"]])): s
        for s in samples
    }
    race_uid_lo = int(truth["session_uid"]) & 0xFFFFFFFF
    race_samples = [t for t in telemetry if t.session_uid & 0xFFFFFFFF == race_uid_lo]
    assert len(race_samples) > 50
    for sample in race_samples:
        sent = by_frame.get((race_uid_lo, sample.frame))
        if sent is None:
            continue  # older than the comparison inlet's buffer
        assert sample.values == {
            f: float(sent[col[f"car00.{f}"]]) for f in ("speed_kph", "throttle", "gear")
        }
    times = [t.session_time_s for t in race_samples]
    steps = np.diff(times)
    # 10 Hz of a 20 Hz stream, by the game's clock (a float32: a few 0.1 ms of rounding)
    assert steps.min() >= 0.1 - 1e-3 and steps.max() <= 0.1 + 1e-3
    assert sum((race_uid_lo, t.frame) in by_frame for t in race_samples) > 50


def test_remote_observer_with_and_without_a_token(stack: Stack, tmp_path: Path) -> None:
    stack.direct("game_sim", "START", {**RACE, "laps": 5, "speed": 4})
    try:
        observe(stack)
    finally:
        stack.direct("game_sim", "STOP")


def observe(stack: Stack) -> None:
    observer = RemoteObserver(f"http://127.0.0.1:{stack.files.http_port}")
    last = wait_until(
        lambda: (v := observer.get_last_values()).get("raceplane.car_telemetry") and v,
        timeout=30,
        message="the bridge's newest values",
    )
    assert "car00.speed_kph" in last["raceplane.car_telemetry"]
    logged = observer.get_logged_data("raceplane.car_telemetry", ["car00.speed_kph"], since=0)
    assert len(logged["car00.speed_kph"]["t"]) == len(logged["car00.speed_kph"]["values"]) > 0
    assert "rows" in observer.standings()
    assert isinstance(observer.laps(), list)

    # A bridge bound beyond loopback, with a token.
    port, http_port = free_port(), free_port()
    bridge = subprocess.Popen(
        [sys.executable, "-m", "modules.web_bridge", "--port", str(port), "--http-port",
         str(http_port), "--http-host", "0.0.0.0", "--token", "s3cret", "--lap-timer",
         f"127.0.0.1:{stack.files.ports['lap_timer']}", "--log-port", str(stack.files.log_port)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{http_port}"
        good = RemoteObserver(url, token="s3cret")
        wait_until(lambda: _answers(good), timeout=30, message="the guarded bridge serving")
        assert "rows" in good.standings()
        with pytest.raises(TokenRefused, match="refused a wrong token"):
            RemoteObserver(url, token="nope").standings()
        anonymous = RemoteObserver(url)
        with pytest.raises(TokenRefused, match="refused no token"):
            anonymous.get_last_values()
        assert "rows" in anonymous.standings()  # the dashboard's reads stay open
    finally:
        bridge.terminate()
        bridge.wait(timeout=20)


def _answers(observer: RemoteObserver) -> bool:
    try:
        observer.streams()
    except Exception:
        return False
    return True


def test_a_users_values_are_recorded_and_load_back(stack: Stack) -> None:
    file = stack.files.recordings / "with_store.xdf"
    stack.direct("recorder", "RECORD", {"filename": str(file)})
    store = SessionStore("strategy", variables={"stint_laps": "laps"})
    try:
        assert store.wait_for_recorder(timeout_s=30)
        store.set_parameter("fuel_kg_per_lap", 1.6)
        store.set_parameter("target", {"laps": 18})
        values = [17.5, 17.25, 16.75]
        for value in values:
            store.log("stint_laps", value)
        store.save_dataset("wear_fit", np.arange(6.0).reshape(2, 3))

        def recorded() -> bool:
            streams = stack.direct("recorder", "STATUS")["streams"]
            counts = {s["name"]: s["samples"] for s in streams}
            return (
                counts.get("raceplane.user.strategy.stint_laps") == 3
                and counts.get("raceplane.user.strategy.datasets") == 1
                and counts.get("raceplane.user.strategy.parameters", 0) >= 2
            )

        wait_until(recorded, timeout=30, interval=0.2, message="the store's samples recorded")
    finally:
        stack.direct("recorder", "STOPRECORD")
        store.close()
    assert store.unrecorded == 0
    data = load_store([file], "strategy")
    assert data.variables["stint_laps"].tolist() == values
    assert data.parameters == {"fuel_kg_per_lap": 1.6, "target": {"laps": 18}}
    np.testing.assert_array_equal(data.datasets["wear_fit"], np.arange(6.0).reshape(2, 3))
    with pytest.raises(KeyError, match="no stream of store 'other'"):
        load_store([file], "other")
    # The same through the analysis API, beside the recording's laps.
    analysed = open_recording(file).store("strategy")
    assert analysed.variables["stint_laps"].tolist() == values
    assert analysed.parameters == data.parameters
    assert (
        analysed.variables["stint_laps"].index.tolist()
        == data.variables["stint_laps"].index.tolist()
    )
    with pytest.raises(ValueError, match="store name"):
        SessionStore("bad name")


def readme_examples() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Your own code against a live session", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


@pytest.mark.timeout(900)
def test_the_readme_examples_run_as_written(stack: Stack, tmp_path: Path) -> None:
    examples = readme_examples()
    assert len(examples) >= 4
    stack.direct("game_sim", "START", {**RACE, "laps": 5, "speed": 10})
    file = stack.files.recordings / "readme.xdf"
    stack.direct("recorder", "RECORD", {"filename": str(file)})  # the store example records
    env = {
        "RACEPLANE_WEB_URL": f"http://127.0.0.1:{stack.files.http_port}",
        "RACEPLANE_RECORDINGS": str(stack.files.recordings),
        "PYTHONUNBUFFERED": "1",
    }
    try:
        for number, code in enumerate(examples):
            script = tmp_path / f"example_{number}.py"
            script.write_text(code)
            done = subprocess.run(
                [sys.executable, str(script)],
                cwd=REPO,
                env={**__import__("os").environ, **env},
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, f"example {number}:\n{code}\n{done.stdout}{done.stderr}"
            assert done.stdout.strip(), f"example {number} printed nothing"
            print(f"example {number}:\n{done.stdout[-600:]}")
    finally:
        stack.direct("game_sim", "STOP")
        stack.direct("recorder", "STOPRECORD")
    stored = open_recording(file).store("strategy")
    assert stored.variables["stint_laps"].tolist() == [17.5]
    assert len(stored.variables["lap_s"]) >= 2  # logged by a callback as laps arrived
    assert stored.variables["lap_s"].gt(0).all()
