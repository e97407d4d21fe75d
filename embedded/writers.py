"""The queue of writers across processes: flock(2) on a lock file beside the store.

SQLite settles two processes that want its write lock at once with a busy handler that
sleeps (1, 2, 5 ... 50 ms) and tries again, so under load writers spend their time asleep
while the lock is free. A writer that takes this lock first waits in the kernel instead,
and is woken the moment the holder releases it; BEGIN IMMEDIATE then never finds the file
locked by another writer of this store.
"""

from __future__ import annotations

import fcntl
import os
import threading


class WriterQueue:
    """An exclusive flock(2) on `<store>-writers.lock`, held around each write transaction.

    One open file description per process: a forked child inherits its parent's, and two
    holders of one description do not exclude each other, so a child opens its own.
    Threads of one process must queue before it (the engine's FairLock does).
    """

    def __init__(self, store_path: str) -> None:
        self.path = f"{store_path}-writers.lock"
        self._fd: int | None = None
        self._pid: int | None = None
        self._guard = threading.Lock()

    def acquire(self) -> None:
        """Wait in the kernel until no other process holds the store's write lock."""
        fcntl.flock(self._descriptor(), fcntl.LOCK_EX)

    def release(self) -> None:
        """Let the next waiting writer in (the kernel wakes it at once)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close this process's description (releasing the lock if held)."""
        with self._guard:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = self._pid = None

    def _descriptor(self) -> int:
        with self._guard:
            if self._fd is None or self._pid != os.getpid():
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
                self._pid = os.getpid()
            return self._fd
