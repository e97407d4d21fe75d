"""The API as `desks up` runs it: gunicorn in a child process, on a socket bound here.

Binding here fails fast on a busy port and makes port 0 work; the child (`desks api --fd`)
inherits the listening socket and the settings, and serves exactly as `desks api` does. A
child, not a fork of this process: this one runs threads (watcher, broadcaster), and forking a
threaded process can copy a lock some thread holds.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace

from desks.settings import RETIRED, Settings

log = logging.getLogger("desks.system")

# How long start() waits for the workers to answer before giving up on them.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 4.0


def child_environment(settings: Settings) -> dict[str, str]:
    """Return the environment of a `desks` child process serving with these settings."""
    env = {**os.environ, **settings.environ()}
    for name in ("MONGODB_URI", *RETIRED) if settings.mongodb_uri is None else RETIRED:
        env.pop(name, None)  # retired variables: said once, by the parent
    return env


class ApiProcess:
    """gunicorn serving the API from a child process, on a socket bound at construction."""

    def __init__(
        self,
        settings: Settings,
        workers: int = 2,
        threads: int = 4,
        on_crash: Callable[[], None] | None = None,
    ) -> None:
        """Bind host:port now, raising OSError if it is taken."""
        self._settings = settings
        self._workers = workers
        self._threads = threads
        self._on_crash = on_crash
        self._socket = socket.create_server(
            (settings.api_host, settings.api_port), backlog=1024, reuse_port=False
        )
        self._socket.set_inheritable(True)
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = False

    @property
    def port(self) -> int:
        """Return the bound port."""
        return int(self._socket.getsockname()[1])

    def start(self, broadcaster_port: int | None = None) -> None:
        """Start gunicorn and wait until it answers /healthz (OSError if it never does);
        `broadcaster_port` is where the broadcaster listens, if not the configured port."""
        if broadcaster_port is not None:
            self._settings = replace(self._settings, broadcaster_port=broadcaster_port)
        fd = self._socket.fileno()
        command = [sys.executable, "-m", "launcher.cli", "api", "--fd", str(fd)]
        command += ["--workers", str(self._workers), "--threads", str(self._threads)]
        env = child_environment(self._settings)
        self._process = subprocess.Popen(command, env=env, pass_fds=(fd,))
        threading.Thread(target=self._watch, name="api-process", daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise OSError("the API's gunicorn workers did not start; see the log above")
            time.sleep(0.05)
        log.info("api serving", extra={"port": self.port, "workers": self._workers})

    def _answers(self) -> bool:
        url = f"http://{self._settings.api_host}:{self.port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _watch(self) -> None:
        assert self._process is not None
        status = self._process.wait()
        if not self._stopping:
            log.error("api process exited", extra={"status": status})
            if self._on_crash is not None:
                self._on_crash()

    def stop(self) -> None:
        """Stop gunicorn gracefully (SIGTERM), killing it if it takes too long."""
        self._stopping = True
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._socket.close()
