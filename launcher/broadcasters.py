"""Broadcaster processes sharing one port (SO_REUSEPORT), replaced when one dies.

Each child is `desks broadcaster --supervised`: it follows the event log on its own and
listens on the same host and port with SO_REUSEPORT, so the kernel spreads new connections
over the processes; one that dies takes only its own clients, who reconnect (to the others,
then to its replacement) and resume with `after`. As gunicorn replaces a dead worker, a child
that exits unasked is started again, after a backoff if it keeps dying.

The port is held here by a bound socket (not listening: the kernel gives connections only to
listening sockets) with SO_REUSEPORT too: it reserves the port, and port 0 picks one for all.
Any process of the same user may join a SO_REUSEPORT group, so the port is first bound
without it: another system's broadcasters already there make this fail instead of sharing
their clients with ours.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from prometheus_client import multiprocess

from desks.backoff import Backoff
from desks.settings import Settings
from launcher.api_process import child_environment

log = logging.getLogger("desks.broadcasters")

STOP_TIMEOUT = 4.0
# A child that lived this long before it died is not crash-looping: the next start is at once.
STEADY_SECONDS = 10.0
# Children of one slot that died this many times in a row, each sooner than STEADY_SECONDS:
# something they all need is wrong (the store, the port). Give up and say so.
QUICK_DEATHS = 5


def ensure_free(host: str, port: int) -> None:
    """Raise OSError if host:port is taken, SO_REUSEPORT groups included (see above)."""
    if port == 0:
        return  # a port picked now is nobody's
    with _stream_socket(host) as probe:
        probe.bind((host, port))


def _stream_socket(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.socket(family, socket.SOCK_STREAM)


class BroadcasterProcesses:
    """`count` broadcaster processes on host:port, each replaced when it dies."""

    def __init__(
        self,
        settings: Settings,
        host: str,
        port: int,
        count: int,
        on_crash: Callable[[], None] | None = None,
        taken: bool = False,
        backoff: Callable[[], Backoff] = lambda: Backoff(initial=0.5, cap=10.0),
    ) -> None:
        """Reserve host:port now (OSError if another program holds it; `taken`: by this
        process's own broadcaster); `on_crash` is called if the children keep dying."""
        self._settings = settings
        self._host = host
        self._count = count
        self._on_crash = on_crash
        self._backoff = backoff
        if not taken:
            ensure_free(host, port)
        self._reserved = _stream_socket(host)
        self._reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self._reserved.bind((host, port))
        # Every child writes its metrics here; whichever answers /metrics answers for all.
        self._metrics = tempfile.mkdtemp(prefix="desks-broadcaster-metrics-")
        self._children: list[subprocess.Popen[bytes] | None] = [None] * count
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        """Return the port every child listens on."""
        return int(self._reserved.getsockname()[1])

    def start(self) -> None:
        """Start every child, and a thread per child that replaces it when it dies."""
        for slot in range(self._count):
            thread = threading.Thread(
                target=self._keep, args=(slot,), name=f"broadcaster-{slot}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        log.info(
            "broadcaster processes started",
            extra={"processes": self._count, "url": f"ws://{self._host}:{self.port}/"},
        )

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "launcher.cli", "broadcaster", "--supervised"]
        command += ["--host", self._host, "--port", str(self.port)]
        env = {**child_environment(self._settings), "PROMETHEUS_MULTIPROC_DIR": self._metrics}
        # A group of its own: Ctrl-C reaches this process, which stops its children in turn
        # (not all at once, each taken for dead); they still stop if this one is killed.
        return subprocess.Popen(command, env=env, process_group=0)

    def _keep(self, slot: int) -> None:
        backoff = self._backoff()
        quick = 0
        while True:
            with self._lock:
                if self._stopping.is_set():
                    return
                child = self._children[slot] = self._spawn()
            started = time.monotonic()
            status = child.wait()
            multiprocess.mark_process_dead(child.pid, self._metrics)  # type: ignore[no-untyped-call]
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STEADY_SECONDS:
                backoff.reset()
                quick = 0
            else:
                quick += 1
            if quick >= QUICK_DEATHS:
                log.error(
                    "broadcaster processes keep dying at start; giving up",
                    extra={"deaths": quick, "status": status},
                )
                if self._on_crash is not None:
                    self._on_crash()
                return
            delay = backoff.next()
            log.error(
                "broadcaster process died; starting another",
                extra={"pid": child.pid, "status": status, "restart_in_s": round(delay, 2)},
            )
            if self._stopping.wait(delay):
                return

    def stop(self) -> None:
        """Stop every child (SIGTERM; SIGKILL past the stop timeout) and free the port."""
        with self._lock:
            self._stopping.set()
            children = [child for child in self._children if child is not None]
        for child in children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in children:
            try:
                child.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for thread in self._threads:
            thread.join(1.0)
        self._reserved.close()
        shutil.rmtree(self._metrics, ignore_errors=True)
