"""Run by dp-control-room's venv: Dareplane's control room code starts and drives modules.

`python dp_control_room_driver.py SETUP.toml COMMANDS.json`: builds dp-control-room's module
connections from a current-form setup file (its `initialize_modules`; its own
`check_and_transform_legacy_cfg` drops the modules of that form, so it is not called), starts
each module (its PythonLauncher, its SocketCommunicator), reads the commands (GET_PCOMMS) and
liveness (UP), sends COMMANDS ([[module, "PCOMM|{json}"], ...]) as its GUI does, and prints one
JSON line. After a line on stdin it stops every module (its launcher's terminate) and prints
each process's exit code.
"""

import json
import sys
import tomllib
from pathlib import Path

from control_room.utils.modules import initialize_modules

setup = Path(sys.argv[1])
commands = json.loads(Path(sys.argv[2]).read_text())
with setup.open("rb") as handle:
    connections = {c.name: c for c in initialize_modules(tomllib.load(handle), setup)}
report = {}
for connection in connections.values():
    connection.start()
for name, connection in connections.items():
    connection.get_pcommands()
    report[name] = {
        "pcomms": connection.pcomms,
        "up": connection.is_up(timeout_s=5),
        "pid": connection.launcher.process.pid,
    }
for module, message in commands:
    connections[module].send_message(message.encode())
print(json.dumps(report), flush=True)

sys.stdin.readline()
exits = {}
for name, connection in connections.items():
    process = connection.launcher.process
    connection.stop()
    exits[name] = process.wait(10)
print(json.dumps(exits), flush=True)
