"""Setup files, launch command lines, macros, restart policy, tables: the control room's parts
that do no I/O, tested alone."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modules.control_room.launch import command_line, option_flags
from modules.control_room.macros import expand
from modules.control_room.setup import RestartPolicy, SetupError, load_setup, parse_setup
from modules.control_room.table import render_table

REPO = Path(__file__).resolve().parent.parent

MINIMAL = """\
[modules.a]
kind = "lap_timer"
port = 9101
"""


def error_of(text: str) -> str:
    with pytest.raises(SetupError) as caught:
        parse_setup(text, Path("/tmp/setup.toml"))
    return str(caught.value)


def test_demo_setup_loads_and_starts_the_simulator_last() -> None:
    setup = load_setup(REPO / "configs" / "demo.toml")
    kinds = {spec.kind for spec in setup.modules.values()}
    assert kinds == {
        "game_sim",
        "telemetry_decoder",
        "lap_timer",
        "recorder",
        "engineer",
        "web_bridge",
    }
    assert setup.modules["game_sim"].kwargs["cars"] == 22
    waves = setup.start_waves()
    assert waves[-1] == ["game_sim"]
    assert sorted(waves[0]) == [
        "engineer",
        "lap_timer",
        "recorder",
        "telemetry_decoder",
        "web_bridge",
    ]
    assert setup.settings.on_up == ("start_race",)
    # Paths in [control_room] are relative to the setup file, not to where it is run from.
    assert setup.settings.log_file == REPO / "logs" / "raceplane.jsonl"


def test_defaults() -> None:
    setup = parse_setup(MINIMAL)
    assert setup.settings.port == 8100 and setup.settings.log_port == 9020
    spec = setup.modules["a"]
    assert (spec.ip, spec.port, spec.protocol, spec.restart) == ("127.0.0.1", 9101, "json", True)


def test_dependencies_make_waves() -> None:
    setup = parse_setup(
        """
[modules.c]
kind = "lap_timer"
port = 1
depends_on = ["b"]
[modules.b]
kind = "lap_timer"
port = 2
depends_on = ["a"]
[modules.a]
kind = "lap_timer"
port = 3
[modules.d]
kind = "lap_timer"
port = 4
"""
    )
    assert setup.start_waves() == [["a", "d"], ["b"], ["c"]]


def test_toml_syntax_error_names_the_line() -> None:
    message = error_of(MINIMAL + "\n[modules.b]\nkind = lap_timer\n")
    assert "/tmp/setup.toml" in message and "line 6" in message


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (MINIMAL + "prot = 8\n", 4, "unknown key 'prot'"),
        (MINIMAL + '\n[modules.b]\nkind = "x"\n', 5, "port is required"),
        ('[modules.a]\nkind = "lap_timer"\nport = "8101"\n', 3, "port must be an integer"),
        ('[modules.a]\nkind = "lap_timer"\nport = true\n', 3, "port must be an integer"),
        ('[modules.a]\nkind = "lap_timer"\nport = 70000\n', 3, "not a TCP port"),
        ("[modules.a]\nport = 1\n", 1, "needs kind"),
        ('[modules.a]\nkind = "Lap Timer"\nport = 1\n', 2, "not a module name"),
        ('[modules.a]\nkind = "external"\nport = 1\n', 1, "entry"),
        (
            '[modules.a]\nkind = "remote"\nport = 1\n[modules.a.kwargs]\nx = 1\n',
            4,
            "no meaning for a remote",
        ),
        (MINIMAL + "[modules.a.kwargs]\nnested = { x = 1 }\n", 5, "command-line option"),
        (MINIMAL + 'depends_on = ["ghost"]\n', 4, "unknown module 'ghost'"),
        (
            MINIMAL + '\n[modules.b]\nkind = "lap_timer"\nport = 9101\n',
            7,
            "already used by modules.a",
        ),
        (
            '[modules.a]\nkind = "x"\nport = 1\ndepends_on = ["b"]\n'
            '[modules.b]\nkind = "x"\nport = 2\ndepends_on = ["a"]\n',
            4,
            "cycle: a -> b -> a",
        ),
        ("[control_room]\nport = 8100\nlog_prot = 1\n" + MINIMAL, 3, "unknown key 'log_prot'"),
        (
            '[control_room.restart]\nmax_restarts = "many"\n' + MINIMAL,
            2,
            "max_restarts must be an integer",
        ),
        ('[control_room]\non_up = ["nope"]\n' + MINIMAL, 2, "unknown macro 'nope'"),
        ("[extra]\nx = 1\n" + MINIMAL, 1, "unknown table 'extra'"),
        ("[control_room]\n" + "grace_s = -1\n" + MINIMAL, 2, "must not be negative"),
        (MINIMAL + '[macros.m]\ndescription = "no steps"\n', 4, "has no steps"),
        (MINIMAL + '[[macros.m.steps]]\nmodule = "zz"\ncmd = "UP"\n', 4, "unknown module 'zz'"),
        (MINIMAL + '[[macros.m.steps]]\nmodule = "a"\ncmd = "A;B"\n', 4, "not a command name"),
        ("[modules]\n", 1, "no modules"),
        (MINIMAL + "depends_on = [1]\n", 4, "depends_on item 1 must be a string, not an integer 1"),
        ('[modules.a]\nkind = "x"\nport = 1\nentry = "m"\n', 4, 'only for kind = "external"'),
        (MINIMAL + 'protocol = "http"\n', 4, "protocol must be 'json' or 'legacy', not 'http'"),
        (MINIMAL + '[macros.m]\nsteps = ["x"]\n', 5, "steps item 1 must be a table"),
        (MINIMAL + '[[macros.m.steps]]\nmodule = "a"\ncmd = 3\n', 6, "cmd must be a string"),
        (MINIMAL + "[exe.modules.q]\nip = 3\n", 4, "[exe.modules] exe.modules.q needs ip and port"),
    ],
)
def test_bad_setup_says_which_line(text: str, line: int, words: str) -> None:
    message = error_of(text)
    assert f"line {line}:" in message, message
    assert words in message, message


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="cannot read setup file"):
        load_setup(tmp_path / "missing.toml")


def test_kwargs_become_flags_as_design_says() -> None:
    flags = option_flags(
        {"udp_port": 20777, "fast": True, "slow": False, "stream": ["a.*", "b"], "name": "x y"}
    )
    assert flags == [
        "--udp-port",
        "20777",
        "--fast",
        "--stream",
        "a.*",
        "--stream",
        "b",
        "--name",
        "x y",
    ]


def test_command_line_of_a_raceplane_module_and_an_external_one() -> None:
    setup = parse_setup(
        MINIMAL
        + '[modules.a.kwargs]\ndb = "x.sqlite3"\n'
        + '[modules.d]\nkind = "external"\nentry = "api.server"\nport = 8080\n'
        + 'python = "/opt/dp/bin/python"\n'
        + "[modules.d.kwargs]\nport = 8080\n"
    )
    settings = setup.settings
    assert command_line(setup.modules["a"], settings) == [
        sys.executable, "-m", "modules.lap_timer", "--host", "127.0.0.1", "--port", "9101",
        "--log-host", "127.0.0.1", "--log-port", "9020", "--db", "x.sqlite3",
    ]  # fmt: skip
    assert command_line(setup.modules["d"], settings) == [
        "/opt/dp/bin/python",
        "-m",
        "api.server",
        "--port",
        "8080",
    ]
    assert setup.modules["d"].protocol == "legacy"  # a foreign module speaks plain Dareplane


def test_macro_parameters_keep_their_type_and_refuse_typos() -> None:
    setup = parse_setup(
        MINIMAL
        + "[macros.go]\ndefaults = { laps = 3 }\n"
        + '[[macros.go.steps]]\nmodule = "a"\ncmd = "START"\n'
        + 'payload = { laps = "{laps}", file = "race_{track}.xdf", fixed = "{{literal}}", n = 1 }\n'
    )
    macro = setup.macros["go"]
    (step,) = expand(macro, {"track": "monza"})
    assert step.payload == {"laps": 3, "file": "race_monza.xdf", "fixed": "{literal}", "n": 1}
    (step,) = expand(macro, {"track": "spa", "laps": 7})
    assert step.payload["laps"] == 7
    with pytest.raises(ValueError, match="unknown parameter"):
        expand(macro, {"track": "spa", "lpas": 7})
    with pytest.raises(ValueError, match=r"missing parameter.*track"):
        expand(macro, {})


def test_restart_policy_backs_off_exponentially_up_to_a_cap() -> None:
    policy = RestartPolicy(max_restarts=5, backoff_s=0.5, backoff_max_s=3.0)
    assert [policy.delay(n) for n in range(5)] == [0.0, 0.5, 1.0, 2.0, 3.0]


def test_status_table_lists_every_module() -> None:
    row = {
        "key": "lap_timer", "kind": "lap_timer", "state": "running", "up": True, "pid": 42,
        "uptime_s": 3725.0, "cpu_percent": 1.5, "memory_mb": 40.2, "restarts": 1,
        "address": "127.0.0.1:8103", "error": "",
    }  # fmt: skip
    text = render_table(
        [
            row,
            {
                **row,
                "key": "recorder",
                "state": "failed",
                "up": False,
                "pid": None,
                "error": "boom",
            },
        ]
    )
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["module", "kind", "state"]
    assert "1:02:05" in lines[2] and "42" in lines[2]
    assert lines[3].split()[:4] == ["recorder", "lap_timer", "failed", "no"] and lines[3].endswith(
        "boom"
    )
