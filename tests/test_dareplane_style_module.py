"""A Dareplane module (tests/dp_passthrough: DefaultServer subclass, get_logger, StreamWatcher)
runs unchanged on our package: commanded in legacy mode, it copies a stream sample for sample,
and its records reach our log server (through RACEPLANE_LOG_PORT, which the control room sets
for every process it starts)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import numpy as np

from dareplane_utils.client.module_client import ModuleClient
from dareplane_utils.stream_watcher.lsl_stream_watcher import StreamWatcher
from dareplane_utils.stream_watcher.synthetic import value
from dareplane_utils.testing import free_port, wait_until
from tests.conftest import REPO
from tests.test_log_server import messages, start_server


def test_dareplane_module_runs_on_ours_and_logs_to_our_server(spawn, tmp_path):
    logfile = tmp_path / "log.jsonl"
    log_port = start_server(spawn, logfile)
    name = f"dp_source_{os.getpid()}"
    spawn(
        "dareplane_utils.stream_watcher.synthetic",
        *("--name", name, "--source-id", name, "--channels", "3", "--rate", "200"),
    )
    port = free_port()
    module = subprocess.Popen(
        [sys.executable, "-m", "api.server", f"--port={port}", "--ip=127.0.0.1"],
        cwd=REPO / "tests" / "dp_passthrough",
        env={**os.environ, "RACEPLANE_LOG_PORT": str(log_port), "PYTHONPATH": str(REPO)},
        start_new_session=True,
    )
    try:
        with ModuleClient("127.0.0.1", port, legacy=True).connect(retries=200) as client:
            assert "START" in client.request("GET_PCOMMS")
            client.send("START", {"stream_name": name})
            copy = StreamWatcher(f"{name}_copy", buffer_size_samples=1000)
            copy.connect_to_stream(timeout=20)
            wait_until(lambda: copy.update() or copy.n_buffered >= 50, timeout=20)
            data, _ = copy.last(copy.n_buffered)
            # every copied row is one sample of the source, channels in order
            k = (data[:, 0] / 3).round().astype(np.int64)
            assert np.array_equal(data, value(k[:, None], np.arange(3)[None, :], 3, "float32"))
            client.send("STOP")
            client.send("CLOSE")
        assert module.wait(20) == 0
        copy.disconnect()
        found = wait_until(
            lambda: "closed" in (lines := messages(logfile, "dp_passthrough")) and lines,
            message="the module's records in our log file, up to its last",
        )
        assert "control connection from 127.0.0.1" in found  # its subclass's hook
        assert any(line.startswith(f"passing {name} through") for line in found)
        assert any(line.startswith("passed ") for line in found)  # its worker, after STOP
    finally:
        if module.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(module.pid, signal.SIGKILL)
            module.wait(10)
