"""SQLite underneath: connections, one transaction per write, the schema, wake-ups on commit.

A file store runs in WAL mode: readers never block the writer nor see uncommitted data, and
several processes share one file. Writers in this process queue on a lock, then with the
writers of other processes on a file lock (`embedded.writers`), then take SQLite's write lock
with BEGIN IMMEDIATE: SQLite's busy handler, which sleeps, only meets writers that bypass the
queue. `:memory:` is a throwaway store private to this process: one connection, every access
under the lock.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pymongo.errors import AutoReconnect, InvalidOperation, OperationFailure

from embedded.fairlock import FairLock
from embedded.writers import QueueTimeout, WriterQueue

log = logging.getLogger("embedded")

MEMORY = ":memory:"
FORMAT = 1  # bump when the schema changes incompatibly
SYNCHRONOUS = ("FULL", "NORMAL")
# How often a waiting change stream looks for commits made by other processes.
CROSS_PROCESS_POLL = 0.005
IDLE_READERS = 8

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS collections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    db TEXT NOT NULL,
    name TEXT NOT NULL,
    images INTEGER NOT NULL DEFAULT 0,
    UNIQUE (db, name)
);
CREATE TABLE IF NOT EXISTS indexes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    collection INTEGER NOT NULL,
    name TEXT NOT NULL,
    spec BLOB NOT NULL,
    UNIQUE (collection, name)
);
CREATE TABLE IF NOT EXISTS oplog (
    pos INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    wall INTEGER NOT NULL,
    op TEXT NOT NULL,
    db TEXT NOT NULL,
    coll TEXT,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS oplog_ts ON oplog (ts);
"""


class StoreFormatError(RuntimeError):
    """The file holds a store this version cannot read."""


class Engine:
    """One SQLite database (a file, or `:memory:`) and this process's connections to it."""

    def __init__(
        self,
        path: str | os.PathLike[str] = MEMORY,
        synchronous: str = "FULL",
        busy_timeout: float = 30.0,
        queue_timeout: float | None = None,
    ) -> None:
        if synchronous.upper() not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}")
        self.path = str(path)
        self.memory = self.path == MEMORY
        self._synchronous = synchronous.upper()
        self._busy_timeout = busy_timeout
        # How long a writer waits behind other processes' writers (SQLite's busy timeout by
        # default); after it, the store is unavailable (AutoReconnect), as when busy.
        self._queue_timeout = busy_timeout if queue_timeout is None else queue_timeout
        if not self.memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = FairLock()
        self._writers = None if self.memory else WriterQueue(self.path)
        self._writer_thread: int | None = None
        self._transaction = False  # the open write is a session's transaction
        self._aborted: OperationFailure | None = None  # why that transaction must not commit
        self._writer = self._connect()
        self._idle: list[sqlite3.Connection] = []
        self._pool_lock = threading.Lock()
        self._closed = False
        # Commits seen by this process (its own, and others' noticed by polling data_version).
        self._changes = threading.Condition()
        self.commits = 0
        self._waiters = 0
        self._poller: threading.Thread | None = None
        self.epoch = self._prepare()

    # -- connections ---------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout,
            isolation_level=None,  # transactions are explicit: BEGIN IMMEDIATE for writers
            check_same_thread=False,  # pooled: used by one thread at a time
        )
        if not self.memory:
            _retry_busy(lambda: connection.execute("PRAGMA journal_mode=WAL"), self._busy_timeout)
        connection.execute(f"PRAGMA synchronous={self._synchronous}")
        connection.execute("PRAGMA temp_store=MEMORY")
        connection.execute("PRAGMA journal_size_limit=67108864")
        return connection

    def _prepare(self) -> int:
        with self.write() as connection:
            for statement in SCHEMA.split(";"):
                connection.execute(statement)  # not executescript(): it would COMMIT first
            connection.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('format', ?), ('epoch', ?), "
                "('catalog', 0)",
                (FORMAT, secrets.randbits(32)),
            )
            values = dict(connection.execute("SELECT key, value FROM meta").fetchall())
        if values["format"] != FORMAT:
            raise StoreFormatError(
                f"{self.path} holds embedded store format {values['format']}; "
                f"this version reads format {FORMAT}"
            )
        return int(values["epoch"])

    @contextmanager
    def write(
        self, transaction: bool = False, member: bool = False
    ) -> Iterator[sqlite3.Connection]:
        """Run the block as one write transaction: all of it commits, or none of it.

        Inside another write of the same thread the block is a savepoint of it, all or nothing
        on its own too. A `transaction` (a session's) is aborted as a whole by any failure of
        a write inside it, as MongoDB aborts one: later writes and the commit raise 251. Only
        a `member` (a write given the session) may join it: on MongoDB a write without the
        session is not part of the transaction, and here it could not be kept apart.
        """
        arrived = time.monotonic()  # the queue's timeout counts the wait behind this process too
        with self._write_lock:
            connection = self._writer
            if self._writer_thread == threading.get_ident():
                if self._transaction and not member:
                    raise InvalidOperation(
                        "a write without the session in the thread of an open transaction: "
                        "the embedded store cannot keep it out of the transaction"
                    )
                with self._savepoint(connection):
                    yield connection
                return
            self._check_open()
            with self._queued(arrived), _translated():
                connection.execute("BEGIN IMMEDIATE")
                self._writer_thread = threading.get_ident()
                self._aborted = None
                self._transaction = transaction
                try:
                    yield connection
                    if self._aborted is not None:
                        raise self._aborted
                    connection.execute("COMMIT")
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise
                finally:
                    self._writer_thread = None
                    self._transaction = False
        self._notify()

    @contextmanager
    def _queued(self, arrived: float) -> Iterator[None]:
        """Hold the place of this process in the queue of the store's writers, if any."""
        if self._writers is None:
            yield
            return
        try:
            self._writers.acquire(max(0.0, arrived + self._queue_timeout - time.monotonic()))
        except (QueueTimeout, OSError) as error:
            raise AutoReconnect(f"embedded store unavailable: {error}") from error
        try:
            yield
        finally:
            self._writers.release()

    def abort_transaction(self, cause: BaseException) -> None:
        """Doom this thread's session transaction, if one is open, as a write error inside it
        dooms one on MongoDB (a write that reports an error without raising, insert_many's)."""
        if self._transaction and self._writer_thread == threading.get_ident():
            self._aborted = self._aborted or no_such_transaction(cause)

    @contextmanager
    def _savepoint(self, connection: sqlite3.Connection) -> Iterator[None]:
        if self._aborted is not None:
            raise self._aborted
        connection.execute("SAVEPOINT nested")
        try:
            yield
        except BaseException as error:
            connection.execute("ROLLBACK TO nested")
            connection.execute("RELEASE nested")
            if self._transaction and self._aborted is None:
                self._aborted = no_such_transaction(error)
            raise
        connection.execute("RELEASE nested")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one read transaction: a consistent snapshot of committed data."""
        if self.memory or self._writer_thread == threading.get_ident():
            # In memory every access holds the lock; inside a write, read what it wrote.
            with self._write_lock, _translated():
                self._check_open()
                yield self._writer
            return
        connection = self._take_reader()
        try:
            with _translated():
                connection.execute("BEGIN")
                try:
                    yield connection
                finally:
                    connection.execute("COMMIT")  # ends the snapshot; nothing was written
        finally:
            self._return_reader(connection)

    def _take_reader(self) -> sqlite3.Connection:
        self._check_open()
        with self._pool_lock:
            if self._idle:
                return self._idle.pop()
        with _translated():
            return self._connect()

    def _return_reader(self, connection: sqlite3.Connection) -> None:
        with self._pool_lock:
            if not self._closed and len(self._idle) < IDLE_READERS:
                self._idle.append(connection)
                return
        connection.close()

    @property
    def closed(self) -> bool:
        """Tell whether close() was called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise AutoReconnect("the embedded store is closed")

    # -- wake-ups ------------------------------------------------------------------------

    def _notify(self) -> None:
        with self._changes:
            self.commits += 1
            self._changes.notify_all()

    def wait_for_commit(self, seen: int, timeout: float) -> None:
        """Block until a commit newer than `seen` (a value of `commits`), or `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changes:
            self._waiters += 1
            try:
                if not self.memory and self._poller is None:
                    self._poller = threading.Thread(
                        target=self._poll_other_processes, name="embedded-commits", daemon=True
                    )
                    self._poller.start()
                self._changes.notify_all()  # wake the poller
                while self.commits == seen and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self._changes.wait(remaining)
            finally:
                self._waiters -= 1

    def wake_all(self) -> None:
        """Wake every waiter now (a stream closed from another thread)."""
        self._notify()

    def _poll_other_processes(self) -> None:
        # PRAGMA data_version changes when another connection commits: cheap enough to poll
        # every few milliseconds, and only while some stream is waiting.
        connection: sqlite3.Connection | None = None
        try:
            connection = self._connect()
            version = connection.execute("PRAGMA data_version").fetchone()[0]
            while True:
                with self._changes:
                    while self._waiters == 0 and not self._closed:
                        self._changes.wait()
                    if self._closed:
                        return
                time.sleep(CROSS_PROCESS_POLL)
                current = connection.execute("PRAGMA data_version").fetchone()[0]
                if current != version:
                    version = current
                    self._notify()
        except sqlite3.Error as error:
            # Streams still see every commit, at their next poll; the next wait starts anew.
            log.warning("cross-process wake-ups paused", extra={"error": str(error)})
        finally:
            if connection is not None:
                connection.close()
            with self._changes:
                self._poller = None

    # -- life cycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection; later calls fail as an unreachable server would.

        Closing the last connection of the last process checkpoints the write-ahead log into
        the database file and removes it.
        """
        with self._changes:
            self._closed = True
            self._changes.notify_all()
            poller = self._poller
        if poller is not None:
            poller.join(1.0)
        if self._writers is not None:
            self._writers.close()  # a writer waiting behind another process gives up now
        with self._write_lock:
            with self._pool_lock:
                idle, self._idle = self._idle, []
            for connection in [*idle, self._writer]:
                connection.close()
            if self._writers is not None:
                self._writers.close()


def no_such_transaction(cause: BaseException) -> OperationFailure:
    """Build the error MongoDB gives for a transaction an earlier failure aborted."""
    message = f"Transaction has been aborted: an operation in it failed ({cause})"
    return OperationFailure(
        message, 251, {"ok": 0, "code": 251, "codeName": "NoSuchTransaction", "errmsg": message}
    )


@contextmanager
def _translated() -> Iterator[None]:
    """Turn SQLite failures into the pymongo errors callers already handle."""
    try:
        yield
    except sqlite3.IntegrityError:
        raise  # the collection turns these into DuplicateKeyError where it expects them
    except sqlite3.OperationalError as error:
        # Busy beyond the timeout, disk full, I/O error: the store is unavailable for now.
        raise AutoReconnect(f"embedded store unavailable: {error}") from error
    except sqlite3.DatabaseError as error:
        raise OperationFailure(f"embedded store error: {error}", 1) from error


def _retry_busy(action: Callable[[], object], timeout: float) -> None:
    # Switching to WAL needs a moment with no other connection mid-transaction.
    deadline = time.monotonic() + timeout
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
