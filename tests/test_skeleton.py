"""The project's entry points exist and say what they do."""

import subprocess
import sys

import pytest

from dareplane_utils.module_cli import module_parser, parse_module_args


def test_raceplane_help_lists_subcommands():
    result = subprocess.run(
        [sys.executable, "-m", "modules.cli", "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert "commands:" in result.stdout
    assert "run" in result.stdout


def test_raceplane_unknown_command_is_an_error():
    result = subprocess.run(
        [sys.executable, "-m", "modules.cli", "fly"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "unknown command 'fly'" in result.stderr


def test_config_file_sets_defaults_and_command_line_wins(tmp_path):
    config = tmp_path / "m.toml"
    config.write_text("port = 9999\nlog_port = 9021\n[example]\nport = 7777\n")
    parser = module_parser("example", 8000)
    args = parse_module_args(parser, ["--config", str(config)])
    assert args.port == 7777
    args = parse_module_args(parser, ["--config", str(config), "--port", "1234"])
    assert args.port == 1234


def test_config_file_with_unknown_option_is_refused(tmp_path, capsys):
    config = tmp_path / "m.toml"
    config.write_text("colour = 'red'\n")
    parser = module_parser("example", 8000)
    with pytest.raises(SystemExit) as exit_:
        parse_module_args(parser, ["--config", str(config)])
    assert exit_.value.code == 2
    assert "unknown option(s) colour" in capsys.readouterr().err
