"""How a command's process lives: stopped by signals, waiting, a crash's exit status, its parent's
death, enough open files."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("desks.cli")


def stop_on_signal() -> threading.Event:
    """Turn SIGINT and SIGTERM into an event; install before announcing readiness."""
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        # Not stopping.set() here: the handler runs in the main thread, which may hold the
        # event's lock inside wait(stopping); set it from another thread, or deadlock.
        threading.Thread(target=stopping.set, name="signal").start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    return stopping


def wait(stopping: threading.Event) -> None:
    """Block the main thread until `stopping` is set, waking to let signal handlers run.

    A signal delivered to another thread only flags it; the main thread runs the handler at
    its next bytecode, never while blocked in an untimed wait.
    """
    while not stopping.wait(0.2):
        pass


class Crash:
    """What a service that dies calls: stop the process, and make its exit status say so."""

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self.happened = False

    def __call__(self) -> None:
        self.happened = True
        self._stopping.set()

    @property
    def status(self) -> int:
        """Return the process's exit status: 1 after a crash, else 0."""
        return 1 if self.happened else 0


def stop_with_parent(parent: int) -> Callable[[object], None]:
    """Return a gunicorn `when_ready` hook that stops the server once `parent` has died."""

    def when_ready(_server: object) -> None:
        when_orphaned(parent, lambda: os.kill(os.getpid(), signal.SIGTERM))

    return when_ready


def when_orphaned(
    parent: int, stop: Callable[[], None], stopping: threading.Event | None = None
) -> None:
    """Call `stop` once this process's parent `parent` is gone (an orphan is re-parented: the
    pid changes), from a thread that ends early once `stopping` is set."""
    idle = stopping or threading.Event()

    def watch() -> None:
        while os.getppid() == parent and not idle.wait(0.2):
            pass
        if not idle.is_set():
            log.warning("parent process gone; stopping", extra={"parent": parent})
            stop()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def open_files_for(connections: int) -> None:
    """Raise the open-file limit to the hard limit (each client holds a file); warn when even
    that cannot hold `connections` clients (beyond it, accepts fail instead of a 503)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    spare = 64  # the store, the log, listening sockets, probes
    if hard != resource.RLIM_INFINITY and connections + spare > hard:
        log.warning(
            "more connections allowed than open files",
            extra={"max_connections": connections, "open_files": hard},
        )
