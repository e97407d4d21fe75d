"""`desks up --host` binds the broadcaster too: a dashboard served to other machines goes live."""

from __future__ import annotations

import socket
import subprocess
import sys

from tests.conftest import free_port
from tests.processes import desks_env


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError:
        return False


def test_up_host_binds_the_api_and_the_broadcaster(tmp_path):
    port, ws_port = free_port(), free_port()
    command = [sys.executable, "-m", "launcher.cli", "up", "--host", "0.0.0.0"]
    command += ["--port", str(port), "--ws-port", str(ws_port)]
    env = desks_env(DESKS_EMBEDDED_PATH=str(tmp_path / "store.sqlite3"))
    with (tmp_path / "up.log").open("w") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip() == "ready":
                break
        else:
            raise AssertionError((tmp_path / "up.log").read_text())
        # 127.0.0.2 reaches a socket bound to every address, not one bound to 127.0.0.1 only.
        assert reachable("127.0.0.2", port)
        assert reachable("127.0.0.2", ws_port)
    finally:
        process.kill()
        process.communicate()
