"""Idle no-ops, as a replica set's primary writes them: positions move on while nothing else does.

MongoDB's primary appends a no-op to the oplog when it has been idle for about ten seconds, so
an empty poll's resume token keeps moving on a quiet collection. Here a thread of each process
with an open stream does the same. It is a writer like any other, apart from every reader: a
stream only ever moves to a position its own snapshot read, never to one a no-op made.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import TYPE_CHECKING

from pymongo.errors import PyMongoError

if TYPE_CHECKING:
    from embedded.oplog import Oplog

# However short the interval, look no more often than this (tests use an interval of 0).
MIN_PERIOD = 0.01


class NoopWriter:
    """Append a no-op whenever the oplog has been idle for `interval` seconds, while watched."""

    def __init__(self, oplog: Oplog, interval: float) -> None:
        self._oplog = oplog
        self._engine = oplog.engine
        self.interval = interval
        self._streams: set[int] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def watched(self, stream: object) -> None:
        """Note an open stream: no-ops are written from now on, until the last one closes."""
        with self._changed:
            self._streams.add(id(stream))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="embedded-noops", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def unwatched(self, stream: object) -> None:
        """Note a closed stream (closing twice is harmless)."""
        with self._changed:
            self._streams.discard(id(stream))
            self._changed.notify_all()

    def _run(self) -> None:
        started = time.time()
        wait = 0.0
        while self._wait(wait):
            try:
                with self._engine.write() as connection:
                    # Judged again inside the write: another process may have just written.
                    if self._idle(connection, started) >= self.interval:
                        self._oplog.append(connection, "noop", "admin", None)
                wait = self._until_due(started)
            except PyMongoError:  # unavailable for now (busy, disk full): try again later
                wait = max(self.interval, 1.0)

    def _idle(self, connection: sqlite3.Connection, started: float) -> float:
        idle = self._oplog.idle_for(connection)
        return time.time() - started if idle is None else idle  # a new store: idle since now

    def _until_due(self, started: float) -> float:
        with self._engine.read() as connection:
            idle = self._idle(connection, started)
        return max(MIN_PERIOD, self.interval - idle)

    def _wait(self, seconds: float) -> bool:
        """Wait `seconds`; return whether a stream is still open (else this thread ends)."""
        with self._changed:
            if self._streams and not self._engine.closed:
                self._changed.wait(seconds)
            if self._streams and not self._engine.closed:
                return True
            self._thread = None  # under the lock: the next watched() starts a new thread
            return False
