"""Raceplane's control room reads dp-control-room's own setup files as they are and runs its
mockup module beside our log server.

The files come from the shared peer (`configs/`, `tests/resources/`), copied to a temporary
folder. Parsing is checked here; running happens inside a private network namespace, because
the files fix the mockup's port (8080) and our defaults (control room 8100, log server 9020)
apply. The mockup is a Dareplane module (DefaultServer subclass, get_logger): it runs on the
dp-control-room venv's interpreter (its own dependencies) with our dareplane_utils first on
PYTHONPATH, and its log record of START reaches our log server's file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess

import pytest

from modules.control_room.launch import command_line
from modules.control_room.macros import expand
from modules.control_room.setup import SetupError, load_setup
from tests.peer_suites import (
    DP_CONTROL_ROOM,
    REPO,
    dp_control_room_python,
    private_network_available,
)


@pytest.fixture
def peer(tmp_path, monkeypatch):
    """A copy of dp-control-room, the working directory (its paths are relative to it)."""
    root = tmp_path / "dp-control-room"
    shutil.copytree(DP_CONTROL_ROOM, root)
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize(
    "name", ["tests/resources/test_cfg.toml", "tests/resources/test_legacy_mockup_cfg.toml"]
)
def test_both_forms_give_the_same_mockup_module(peer, name):
    setup = load_setup(peer / name)
    (spec,) = setup.modules.values()
    assert (spec.key, spec.kind, spec.entry, spec.protocol) == (
        "dp-mockupmodule",
        "python",
        "api.server",
        "legacy",
    )
    assert spec.cwd == peer / "tests" / "resources" / "dp-mockupmodule"
    # as dp-control-room's PythonLauncher: kwargs then ip and port, as --key=value
    assert command_line(spec, setup.settings)[1:] == [
        "-m",
        "api.server",
        "--ip=127.0.0.1",
        "--port=8080",
    ]


def test_example_setup_with_its_macros(peer):
    for sibling in ("dp-mockup-streamer", "dp-passthrough"):  # what modules_root = '../' names
        (peer.parent / sibling).mkdir()
    setup = load_setup(peer / "configs" / "example_cfg.toml")
    streamer = setup.modules["dp-mockup-streamer"]
    assert streamer.cwd == peer.parent / "dp-mockup-streamer"
    assert command_line(streamer, setup.settings)[3:] == [
        "--stream_name=mockup_EEG_stream",
        "--random_data=True",
        "--ip=127.0.0.1",
        "--port=8080",
    ]
    assert setup.modules["dp-passthrough"].port == 8081
    start = setup.macros["start_streaming"]
    assert (start.title, start.description) == ("START_STREAMING", "start streaming")
    assert start.defaults == {"stream_name": "mockup_stream", "date_root": "../"}
    assert [(s.module, s.cmd, s.payload) for s in start.steps] == [
        ("dp-mockup-streamer", "START", {})
    ]
    assert [s.cmd for s in setup.macros["stop_streaming"].steps] == ["STOP"]


def test_missing_module_folders_are_named(peer):
    """As dp-control-room refuses them: modules_root = '../../' names folders not there."""
    with pytest.raises(SetupError, match=r"dp-reaction-time.*neither beside the setup file"):
        load_setup(peer / "tests" / "resources" / "test_legacy_cfg.toml")


def test_dareplane_macro_maps_parameters(tmp_path):
    (tmp_path / "mod").mkdir()
    setup_file = tmp_path / "setup.toml"
    setup_file.write_text(
        "[modules]\nmodules_root = '.'\n[modules.mod]\nkind = 'python'\nip = '127.0.0.1'\n"
        "port = 8080\n[macros.globals]\nsleep_s = 0.5\n[macros.rec]\nname = 'RECORD'\n"
        "delay_s = 1\n[macros.rec.default_json]\ndata_root = 'data'\n[macros.rec.cmds]\n"
        "com1 = ['mod', 'SET_SAVE_PATH', 'rec_dir=data_root']\ncom2 = ['mod', 'RECORD']\n"
    )
    macro = load_setup(setup_file).macros["rec"]
    assert [(s.cmd, s.payload) for s in macro.steps] == [
        ("SET_SAVE_PATH", {"rec_dir": "{data_root}"}),
        ("RECORD", {}),
    ]
    assert (macro.title, macro.delay_s, macro.step_gap_s) == ("RECORD", 1.0, 0.5)
    # as dp-control-room fills a macro's payload: $<name> takes another parameter's value
    steps = expand(macro, {"data_root": "$<base>/run1", "base": "/data"})
    assert steps[0].payload == {"rec_dir": "/data/run1"}
    with pytest.raises(ValueError, match="missing parameter"):
        expand(dataclasses.replace(macro, defaults={}), {})


NO_PRIVATE_NETWORK = private_network_available()


@pytest.mark.skipif(NO_PRIVATE_NETWORK is not None, reason=str(NO_PRIVATE_NETWORK))
@pytest.mark.parametrize(
    "name", ["tests/resources/test_cfg.toml", "tests/resources/test_legacy_mockup_cfg.toml"]
)
@pytest.mark.timeout(300)
def test_our_control_room_runs_the_mockup_module(peer, name):
    python = dp_control_room_python()
    env = {key: value for key, value in os.environ.items() if not key.startswith("RACEPLANE_LOG")}
    env.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    driver = REPO / "tests" / "control_room_dareplane_driver.py"
    finished = subprocess.run(
        [
            *("unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"),
            *(str(python), str(driver), str(peer / name), "dp-mockupmodule"),
        ],
        cwd=peer,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    lines = finished.stdout.strip().splitlines()
    assert lines, finished.stderr[-4000:]
    report = json.loads(lines[-1])
    assert report["status"]["state"] == "running", report
    assert report["send"] is None  # a legacy module's commands reply nothing
    (record,) = report["records"]  # the mockup's own get_logger record, in our log file
    assert record["name"] == "control_room" and record["levelname"] == "INFO"
    assert record["process"] == report["status"]["pid"]  # sent by the mockup's process
    assert report["exit"] == 0, finished.stderr[-4000:]
