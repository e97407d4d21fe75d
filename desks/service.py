"""A long-running loop in a daemon thread, started and stopped on demand."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("desks.service")

STOP_TIMEOUT = 4.0


class Service:
    """A long-running loop `run(stop)` in a daemon thread, started and stopped on demand.

    Loops retry what fails; one that raises anyway, or returns before it was asked to stop,
    calls `on_crash`, which takes the process down rather than leave it half alive.
    """

    def __init__(
        self,
        name: str,
        run: Callable[[threading.Event], None],
        on_crash: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._run = run
        self._on_crash = on_crash
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Tell whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the loop in a new thread."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._guarded, name=self.name, daemon=True)
        self._thread.start()

    def _guarded(self) -> None:
        try:
            self._run(self._stop)
        except Exception:
            log.exception("service crashed", extra={"service": self.name})
        else:
            if self._stop.is_set():
                return
            log.error("service ended unasked", extra={"service": self.name})
        if self._on_crash is not None:
            self._on_crash()

    def signal_stop(self) -> None:
        """Ask the loop to stop, without waiting."""
        self._stop.set()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Ask the loop to stop and wait for it."""
        self.signal_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("service did not stop in time", extra={"service": self.name})
