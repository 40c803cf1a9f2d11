"""The LSL configuration a stack makes and which one is in force (no processes but `run`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dareplane_utils.lsl_config import LslConfig, write_config
from modules.control_room.lsl import (
    FROM_ENVIRONMENT,
    FROM_SETUP,
    FROM_STACK,
    LslConfigError,
    choose,
    stack_config,
)
from modules.control_room.setup import SetupError, parse_setup

REPO = Path(__file__).resolve().parent.parent
LOCAL = """
[control_room]
port = 8200
[modules.timer]
kind = "lap_timer"
port = 8203
"""
REMOTE = """
[control_room]
host = "10.0.0.2"
port = 8200
log_host = "10.0.0.2"
[modules.decoder]
kind = "remote"
ip = "10.0.0.1"
port = 8102
[modules.timer]
kind = "lap_timer"
port = 8203
"""


def test_a_local_config_resolves_on_loopback_in_a_session_of_its_own() -> None:
    text = LslConfig("raceplane-stack-8100").text()
    assert "ResolveScope = machine" in text
    assert "MachineAddresses = {127.255.255.255}" in text
    assert "SessionID = raceplane-stack-8100" in text
    assert "PortRange = 1024" in text
    assert "KnownPeers" not in text


def test_a_config_across_hosts_names_its_peers() -> None:
    text = LslConfig("s", ("10.0.0.1", "10.0.0.2")).text()
    assert "ResolveScope = link" in text
    assert "KnownPeers = {10.0.0.1, 10.0.0.2}" in text


def test_write_config_is_named_by_the_session(tmp_path: Path) -> None:
    path = write_config(LslConfig("a/b c"), tmp_path)
    assert path.parent == tmp_path and path.name == "a_b_c.cfg"
    assert "SessionID = a/b c" in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["a_b_c.cfg"]  # no partial file left


def test_local_stacks_get_a_session_per_control_room_port() -> None:
    setup = parse_setup(LOCAL)
    assert stack_config(setup.settings, setup.modules) == LslConfig("raceplane-stack-8200")
    other = parse_setup(LOCAL.replace("port = 8200", "port = 8300"))
    assert stack_config(other.settings, other.modules).session_id == "raceplane-stack-8300"


def test_remote_modules_make_the_setups_hosts_peers() -> None:
    setup = parse_setup(REMOTE)
    config = stack_config(setup.settings, setup.modules)
    assert config.peers == ("10.0.0.1", "10.0.0.2")  # 127.0.0.1 of the local module left out
    assert config.session_id == "raceplane-stack-10.0.0.2-8200"


def test_the_stack_makes_its_own_unless_told_otherwise() -> None:
    choice = choose(parse_setup(LOCAL), environ={})
    assert choice.source == FROM_STACK
    assert "SessionID = raceplane-stack-8200" in choice.path.read_text()
    assert choice.as_dict()["scope"] == "machine"
    assert "this machine" in choice.describe()
    assert choose(None, environ={}).config == LslConfig("raceplane-stack-8100")  # raceplane run


def test_the_environment_and_then_the_setup_file_override_it(tmp_path: Path) -> None:
    given = tmp_path / "lab.cfg"
    given.write_text("[lab]\nSessionID = lab\n")
    setup = parse_setup(LOCAL)
    assert choose(setup, environ={"LSLAPICFG": str(given)}).source == FROM_ENVIRONMENT
    (tmp_path / "stack.toml").write_text(LOCAL.replace("port = 8200", 'lsl_config = "lab.cfg"'))
    in_file = parse_setup((tmp_path / "stack.toml").read_text(), tmp_path / "stack.toml")
    chosen = choose(in_file, environ={"LSLAPICFG": "/elsewhere.cfg"})
    assert (chosen.source, chosen.path) == (FROM_SETUP, given)
    with pytest.raises(LslConfigError, match="not a readable file"):
        choose(setup, environ={"LSLAPICFG": str(tmp_path / "nope.cfg")})


def test_lsl_config_in_a_setup_file_must_be_a_path() -> None:
    with pytest.raises(SetupError, match="lsl_config must be a string"):
        parse_setup(LOCAL.replace("port = 8200", "lsl_config = 3"))


def test_raceplane_run_hands_its_module_the_stacks_config(tmp_path: Path) -> None:
    (tmp_path / "remote.toml").write_text(REMOTE)
    env = {k: v for k, v in os.environ.items() if k != "LSLAPICFG"}
    probe = "import os; print(open(os.environ['LSLAPICFG']).read())"
    for stack, session in ((None, "8100"), ("remote.toml", "10.0.0.2-8200")):
        args = ["--stack", str(tmp_path / stack)] if stack else []
        # What `raceplane run` does before it imports the module, in a process of its own (it
        # sets this process's environment), then what a module would read.
        result = subprocess.run(
            [sys.executable, "-c",
             "import sys; from modules import cli; "
             f"assert cli.use_stack_lsl('run', {args[1] if args else None!r}); {probe}"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert f"SessionID = raceplane-stack-{session}" in result.stdout
        assert "raceplane run: LSL made by the stack" in result.stderr


def test_liblsl_sets_aside_few_samples_per_stream() -> None:
    """liblsl's default reserve of 128 samples per outlet and inlet is ~0.7 MB for one of the
    decoder's wide streams (issue 18, footprint): the stack's config asks for 8."""
    for config in (LslConfig("s"), LslConfig("s", ("10.0.0.1",))):
        text = config.text()
        assert "OutletBufferReserveSamples = 8" in text
        assert "InletBufferReserveSamples = 8" in text
