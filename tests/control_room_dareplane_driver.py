"""Run inside a private network namespace: Raceplane's control room runs a dp-control-room setup.

`python control_room_dareplane_driver.py SETUP.toml MODULE`: starts `python -m
modules.control_room SETUP` (default ports: the namespace is private), waits until MODULE runs,
sends it START through the control room, waits for the module's own log record of it in the
control room's log file, shuts the stack down, and prints one JSON line: the module's status,
what SEND returned, the record, and the control room's exit code.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

from dareplane_utils.client.module_client import ModuleClient
from modules.control_room.setup import load_setup

setup_path, module = Path(sys.argv[1]), sys.argv[2]
setup = load_setup(setup_path)
room = subprocess.Popen([sys.executable, "-m", "modules.control_room", str(setup_path)])
report: dict = {}
try:
    with ModuleClient("127.0.0.1", 8100, timeout=20).connect(retries=300, interval=0.1) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = {m["key"]: m for m in client.request("STATUS")["modules"]}
            if status[module]["state"] == "running" and status[module]["up"]:
                break
            time.sleep(0.1)
        report["status"] = status[module]
        report["send"] = client.request("SEND", {"module": module, "cmd": "START"})
        records: list = []
        while time.monotonic() < deadline and not records:
            if setup.settings.log_file.exists():
                lines = setup.settings.log_file.read_text().splitlines()
                records = [json.loads(line) for line in lines if "STARTING PRESSED" in line]
            time.sleep(0.1)
        report["records"] = records
        client.request("SHUTDOWN")
    report["exit"] = room.wait(60)
finally:
    if room.poll() is None:
        room.kill()
        room.wait()
print(json.dumps(report), flush=True)
