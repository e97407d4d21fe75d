"""The queue of writers across processes: flock(2) on a lock file beside the store.

SQLite settles two processes that want its write lock at once with a busy handler that
sleeps (1, 2, 5 ... 50 ms) and tries again, so under load writers spend their time asleep
while the lock is free. A writer that takes this lock first waits in the kernel instead,
and is woken the moment the holder releases it; BEGIN IMMEDIATE then never finds the file
locked by another writer of this store.

flock(2) cannot give up after a while, and a writer must (a holder stopped mid-transaction
would otherwise stop every writer, and shutdown, for good): a contended wait happens in a
waiter thread, which the writer waits for up to its timeout. If the writer has given up by
the time the lock comes, the thread lets it go again. The thread stays for the next wait
while writes keep coming (starting one per wait was 2-3% of a writer's CPU and a wait for
the new thread to be scheduled), and ends after WAITER_IDLE seconds without one.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
import weakref

log = logging.getLogger("embedded")

_queues: weakref.WeakSet[WriterQueue] = weakref.WeakSet()

WAITER_IDLE = 5.0  # seconds a waiter thread stays without a wait to do


class QueueTimeout(Exception):
    """Another writer held the store's write lock for the whole wait."""


class WriterQueue:
    """An exclusive flock(2) on `<store>-writers.lock`, held around each write transaction.

    One per store and process; threads of the process queue before it (the engine's
    FairLock, `embedded.fairlock`), so one thread at a time acquires. Every field is read and
    written under `_state`, which the at-fork hooks hold across a fork.
    """

    def __init__(self, store_path: str) -> None:
        self.store_path = store_path
        self.path = f"{store_path}-writers.lock"
        self._fd: int | None = None
        self._state = threading.Condition(threading.Lock())
        self._held = False  # this process holds the lock
        self._waiting = False  # the waiter thread is in flock(2) (or about to be)
        self._wanted = False  # a writer waits for the waiter thread's flock
        self._asked = False  # a wait is asked of the waiter thread, not begun yet
        self._waiter: threading.Thread | None = None  # alive (or starting) while set
        self._closed = False
        self._error: OSError | None = None  # why the waiter's flock(2) failed
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
                    self._start_waiter()
                else:
                    self._held = True
                    return
            # Contended (or a wait given up earlier is still in the kernel: it is ours now).
            self._wanted = True
            try:
                deadline = time.monotonic() + timeout
                while not self._held:
                    if self._closed:  # first: a wait that close() ended left no error
                        raise QueueTimeout("the store is closed")
                    if not self._waiting:
                        raise OSError(f"waiting for {self.path} failed: {self._error}")
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise QueueTimeout(f"another writer held {self.path} for {timeout:g} s")
                    self._state.wait(remaining)
            except BaseException:
                # Given up (a timeout, a close, a signal handler's exception): a lock granted
                # meanwhile goes straight back, or no one here would ever release it.
                if self._held:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    self._held = False
                    self._close_if_done()
                raise
            finally:
                self._wanted = False

    def _start_waiter(self) -> None:
        self._waiting, self._error, self._asked = True, None, True
        if self._waiter is not None:
            self._state.notify_all()  # the waiter thread is there: it takes this wait
            return
        try:
            self._waiter = threading.Thread(target=self._serve, name="writers-queue", daemon=True)
            self._waiter.start()
        except RuntimeError as error:  # no thread to be had: no wait either
            self._waiter, self._waiting, self._asked = None, False, False
            raise OSError(f"cannot wait for {self.path}: {error}") from error

    def _serve(self) -> None:
        """The waiter thread: take each wait asked of it, end once idle for WAITER_IDLE."""
        try:
            self._serve_waits()
        except BaseException as error:
            log.exception("the writers' queue waiter failed")
            with self._state:
                # A wait it had not finished fails (its writer sees the error), and the next
                # contended write starts another thread instead of asking this dead one.
                if self._waiter is threading.current_thread():
                    self._waiter = None
                if self._waiting:
                    self._asked = False
                    self._end_wait(OSError(f"the waiter thread failed: {error!r}"))
                self._state.notify_all()

    def _serve_waits(self) -> None:
        while True:
            with self._state:
                idle_until = time.monotonic() + WAITER_IDLE
                while not self._asked:
                    remaining = idle_until - time.monotonic()
                    if self._closed or remaining <= 0:
                        self._waiter = None  # the next wait starts another
                        return
                    self._state.wait(remaining)
                self._asked = False
                if self._closed:  # closed before the wait began: it never will
                    self._end_wait(None)
                    continue
                fd = self._fd  # open: never closed while a wait is under way (_waiting)
            assert fd is not None
            self._wait(fd)

    def _wait(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as error:
            with self._state:
                self._end_wait(error)
            return
        with self._state:
            self._waiting = False
            if self._wanted and not self._closed:
                self._held = True
            else:  # the writer gave up meanwhile: let the next one in
                fcntl.flock(fd, fcntl.LOCK_UN)
                self._close_if_done()
            self._state.notify_all()

    def _end_wait(self, error: OSError | None) -> None:
        # Under _state: a wait ended without the lock (`error` says why, if it failed).
        self._waiting, self._error = False, error
        self._close_if_done()
        self._state.notify_all()

    def release(self) -> None:
        """Let the next waiting writer in (the kernel wakes it at once)."""
        with self._state:
            if self._held and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._held = False
            self._close_if_done()

    def close(self) -> None:
        """End any wait at once; the lock file is closed once no write holds it."""
        with self._state:
            self._closed = True
            self._state.notify_all()
            self._close_if_done()

    def _close_if_done(self) -> None:
        # Never while the waiter is in flock(2) on it, nor while a write holds it.
        if self._closed and self._fd is not None and not self._waiting and not self._held:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _descriptor(self) -> int:
        if self._fd is None:
            # The database's own mode, as SQLite gives its -wal and -shm files: a store shared
            # by a group stays usable by the group. Opened for writing where it can be (an
            # exclusive flock(2) on NFS needs it), else read-only, enough elsewhere.
            mode = os.stat(self.store_path).st_mode & 0o666
            flags = os.O_CREAT | os.O_CLOEXEC
            try:
                self._fd = os.open(self.path, os.O_RDWR | flags, mode)
            except PermissionError:
                self._fd = os.open(self.path, os.O_RDONLY | flags, mode)
            with contextlib.suppress(OSError):
                if os.fstat(self._fd).st_uid == os.geteuid():
                    os.fchmod(self._fd, mode)  # umask may have narrowed it
        return self._fd

    def _forked(self) -> None:
        # A child shares its parent's open file description, and with it any lock the parent
        # holds: keeping it open would keep that lock alive after the parent dies. Closing
        # the child's copy (never unlocking it) leaves the parent's lock as it is.
        fd = self._fd
        self._state = threading.Condition(threading.Lock())
        self._fd, self._error = None, None
        self._held = self._waiting = self._wanted = self._asked = False
        self._waiter = None  # threads do not cross a fork
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


# The queues whose state the forking thread holds across a fork, in the order it took them.
_forking: list[WriterQueue] = []


def _before_fork() -> None:
    _forking[:] = list(_queues)
    for writer_queue in _forking:
        writer_queue._state.acquire()


def _after_fork_in_parent() -> None:
    for writer_queue in _forking:
        writer_queue._state.release()
    _forking.clear()


def _after_fork_in_child() -> None:
    for writer_queue in _forking:
        writer_queue._forked()  # a new state, free
    _forking.clear()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)
