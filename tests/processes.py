"""Run `desks` commands as real processes, the way an operator would, for the tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


def desks_env(**overrides: str) -> dict[str, str]:
    """Return this environment for a `desks` process: the repository importable, no MongoDB."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **overrides}
    if "MONGODB_URI" not in overrides:
        env.pop("MONGODB_URI", None)
    return env


@contextlib.contextmanager
def spawned(log_path: Path, env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run `desks <args>` with stderr to a file (never a pipe that could fill); kill it after."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "launcher.cli", *args], stderr=log, env=env
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def http_status(url: str) -> int | None:
    """Return the HTTP status of GET url, or None while nothing listens."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


class Running:
    """A `desks up` process whose output is collected line by line."""

    def __init__(
        self, port: int, log: Path, store: Path | None = None, *args: str, **env_: str
    ) -> None:
        """Start `desks up` on `port` (and a free port for live events), with `args` more."""
        self.store = store or log.with_suffix(".sqlite3")
        env = desks_env(DESKS_EMBEDDED_PATH=str(self.store), **env_)
        self.log = log
        with log.open("w") as stderr:  # a file, not a pipe: a full pipe would stall the server
            self.ws_port = free_port()
            command = ["up", "--port", str(port), "--ws-port", str(self.ws_port), *args]
            self.process = subprocess.Popen(
                [sys.executable, "-m", "launcher.cli", *command],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=env,
            )
        self.lines: list[str] = []
        self.api = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{self.ws_port}/"

    def wait_ready(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if line.strip() == "ready":
                return
        raise AssertionError(f"exited before ready: {self.log.read_text()}")

    def close(self) -> None:
        """Kill the process (as kill -9 would); closing twice is harmless."""
        if self.process.poll() is None:
            self.process.kill()
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.process.communicate()
