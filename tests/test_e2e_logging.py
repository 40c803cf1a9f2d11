"""Every module's records reach the central log server (a module alone, with a real server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dareplane_utils.client.module_client import ModuleClient, ModuleError
from dareplane_utils.testing import free_port, wait_until


def test_web_bridge_records_reach_the_log_server(spawn, tmp_path: Path) -> None:
    log_port, port = free_port(), free_port()
    log_file = tmp_path / "log.jsonl"
    spawn("dareplane_utils.logging.server", "--port", str(log_port), "--logfile", str(log_file))
    # uvicorn's default logging setup used to close every handler of the process, this one too.
    spawn(
        "modules.web_bridge",
        *("--port", str(port), "--http-port", str(free_port()), "--log-port", str(log_port)),
    )
    client = ModuleClient("127.0.0.1", port, timeout=10).connect(retries=300, interval=0.05)
    with client, pytest.raises(ModuleError):
        client.request("MARK_WEB_BRIDGE")  # logged as a WARNING by the module's server

    def marked() -> bool:
        lines = log_file.read_text().splitlines() if log_file.exists() else []
        return any("MARK_WEB_BRIDGE" in json.loads(line)["message"] for line in lines)

    wait_until(marked, timeout=15, interval=0.2, message="the web bridge's record in the log")
