"""The queue of writers across processes: flock(2) on a lock file beside the store.

SQLite settles two processes that want its write lock at once with a busy handler that
sleeps (1, 2, 5 ... 50 ms) and tries again, so under load writers spend their time asleep
while the lock is free. A writer that takes this lock first waits in the kernel instead,
and is woken the moment the holder releases it; BEGIN IMMEDIATE then never finds the file
locked by another writer of this store.

flock(2) cannot give up after a while, and a writer must (a holder stopped mid-transaction
would otherwise stop every writer, and shutdown, for good): a contended wait happens in a
thread of its own, which the writer waits for up to its timeout. If the writer has given up
by the time the lock comes, the thread lets it go again.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import weakref

_queues: weakref.WeakSet[WriterQueue] = weakref.WeakSet()


class QueueTimeout(Exception):
    """Another writer held the store's write lock for the whole wait."""


class WriterQueue:
    """An exclusive flock(2) on `<store>-writers.lock`, held around each write transaction.

    One per store and process; threads of the process queue before it (the engine's
    FairLock), so one thread at a time acquires.
    """

    def __init__(self, store_path: str) -> None:
        self.store_path = store_path
        self.path = f"{store_path}-writers.lock"
        self._fd: int | None = None
        self._state = threading.Condition(threading.Lock())
        self._held = False  # this process holds the lock
        self._waiting = False  # the waiter thread is in flock(2) (or about to be)
        self._wanted = False  # a writer waits for the waiter thread's flock
        self._closed = False
        _queues.add(self)

    def acquire(self, timeout: float) -> None:
        """Take the lock, waiting in the kernel behind other processes' writers; raise
        QueueTimeout after `timeout` seconds, OSError if the lock file cannot be used."""
        with self._state:
            if self._closed:
                raise QueueTimeout("the store is closed")
            fd = self._descriptor()
            if not self._waiting:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self._waiting = True
                    threading.Thread(target=self._wait, args=(fd,), daemon=True).start()
                else:
                    self._held = True
                    return
            # Contended (or a wait given up earlier is still in the kernel: it is ours now).
            self._wanted = True
            deadline = time.monotonic() + timeout
            while not self._held:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    self._wanted = False
                    raise QueueTimeout(f"another writer held {self.path} for {timeout:g} s")
                self._state.wait(remaining)
            self._wanted = False

    def _wait(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            with self._state:
                self._waiting = False
                self._state.notify_all()
            return
        with self._state:
            self._waiting = False
            if self._wanted and not self._closed:
                self._held = True
            else:  # the writer gave up meanwhile: let the next one in
                fcntl.flock(fd, fcntl.LOCK_UN)
                if self._closed and self._fd == fd:
                    os.close(fd)
                    self._fd = None
            self._state.notify_all()

    def release(self) -> None:
        """Let the next waiting writer in (the kernel wakes it at once)."""
        with self._state:
            if self._held and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._held = False

    def close(self) -> None:
        """End any wait at once; close the lock file once no write holds it (call again
        after the last write)."""
        with self._state:
            self._closed = True
            self._state.notify_all()
            if self._fd is not None and not self._waiting and not self._held:
                os.close(self._fd)
                self._fd = None

    def _descriptor(self) -> int:
        if self._fd is None:
            # The database's own mode, as SQLite gives its -wal and -shm files: a store shared
            # by a group stays usable by the group. Read-only is enough for flock(2).
            mode = os.stat(self.store_path).st_mode & 0o666
            fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, mode)
            try:
                if os.fstat(fd).st_uid == os.geteuid():
                    os.fchmod(fd, mode)  # umask may have narrowed it
            except OSError:
                pass
            self._fd = fd
        return self._fd

    def _forked(self) -> None:
        # A child shares its parent's open file description, and with it any lock the parent
        # holds: keeping it open would keep that lock alive after the parent dies. Closing
        # the child's copy (never unlocking it) leaves the parent's lock as it is.
        self._state = threading.Condition(threading.Lock())
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        self._held = self._waiting = self._wanted = False


def _after_fork_in_child() -> None:
    for writer_queue in list(_queues):
        writer_queue._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)
