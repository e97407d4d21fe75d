"""The oplog: every committed write, in commit order, in the same transaction as the write.

Its position (an AUTOINCREMENT key, never reused) is what resume tokens encode, together with
the store's epoch, so tokens survive restarts and mean nothing to another store. History is
bounded by count; a token older than what is kept gets MongoDB's error 286.
"""

from __future__ import annotations

import copy
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import bson
from bson import Timestamp
from pymongo.errors import OperationFailure, PyMongoError

from embedded.engine import Engine
from embedded.noops import NoopWriter

Document = dict[str, Any]

# Token layout (opaque to callers, like MongoDB's): prefix, store epoch, oplog position, kind.
_TOKEN_PREFIX = "82"
_TOKEN_LENGTH = 2 + 8 + 16 + 2
EVENT_TOKEN = 0
INVALIDATE_TOKEN = 1

CHANGE_STREAM_HISTORY_LOST = 286
CHANGE_STREAM_FATAL_ERROR = 280
INVALID_RESUME_TOKEN = 260

_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Entry:
    """One committed write: what changed, where, and when."""

    position: int
    operation: str
    cluster_time: Timestamp
    wall_time: datetime
    db: str
    coll: str | None
    document_key: Document | None = None
    before: Document | None = None  # pre-image, recorded when the collection has images on
    after: Document | None = None  # the new document: inserts, replaces, post-images
    description: Document | None = None  # an update's updateDescription
    images: bool = False
    to: tuple[str, str] | None = None


def history_lost(message: str) -> OperationFailure:
    """Build the error MongoDB raises for a resume point older than the oplog."""
    return OperationFailure(
        message,
        CHANGE_STREAM_HISTORY_LOST,
        {
            "ok": 0,
            "code": CHANGE_STREAM_HISTORY_LOST,
            "codeName": "ChangeStreamHistoryLost",
            "errmsg": message,
            "errorLabels": ["NonResumableChangeStreamError"],
        },
    )


def failure(message: str, code: int, code_name: str) -> OperationFailure:
    """Build an OperationFailure shaped like a server reply."""
    return OperationFailure(
        message, code, {"ok": 0, "code": code, "codeName": code_name, "errmsg": message}
    )


class Oplog:
    """The store's record of committed writes, shared by every change stream on it."""

    def __init__(self, engine: Engine, history_size: int = 1_000_000, noop_interval: float = 10.0):
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        self.engine = engine
        self.history_size = history_size
        self.noops = NoopWriter(self, noop_interval)
        self.epoch = engine.epoch
        self._faults: deque[PyMongoError] = deque()
        self._faults_lock = threading.Lock()

    # -- writing (inside the write's transaction) -------------------------------------------

    def append(
        self,
        connection: sqlite3.Connection,
        operation: str,
        db: str,
        coll: str | None,
        **fields: Any,
    ) -> int:
        """Record a write in the transaction that makes it; return its position."""
        now = time.time()
        last = connection.execute("SELECT ts FROM oplog ORDER BY pos DESC LIMIT 1").fetchone()
        last_time = _timestamp(last[0]) if last else Timestamp(0, 0)
        seconds = max(int(now), last_time.time)
        increment = last_time.inc + 1 if seconds == last_time.time else 1
        body = bson.encode({k: v for k, v in fields.items() if v is not None})
        cursor = connection.execute(
            "INSERT INTO oplog (ts, wall, op, db, coll, body) VALUES (?, ?, ?, ?, ?, ?)",
            ((seconds << 32) | increment, int(now * 1000), operation, db, coll, body),
        )
        position = int(cursor.lastrowid or 0)
        if position % 64 == 0:  # trim now and then: one short range delete on the key
            connection.execute("DELETE FROM oplog WHERE pos <= ?", (position - self.history_size,))
        return position

    def idle_for(self, connection: sqlite3.Connection) -> float | None:
        """Return the seconds since the newest entry was written (None for an empty oplog)."""
        last = connection.execute("SELECT wall FROM oplog ORDER BY pos DESC LIMIT 1").fetchone()
        return None if last is None else max(0.0, time.time() - last[0] / 1000)

    # -- reading -------------------------------------------------------------------------

    @staticmethod
    def head(connection: sqlite3.Connection) -> int:
        """Return the position of the newest entry ever written (0 for none)."""
        row = connection.execute("SELECT seq FROM sqlite_sequence WHERE name = 'oplog'").fetchone()
        return int(row[0]) if row else 0

    def oldest(self, connection: sqlite3.Connection) -> int:
        """Return the oldest position retained (head + 1 when none is)."""
        head = self.head(connection)
        floor = connection.execute("SELECT min(pos) FROM oplog").fetchone()[0]
        retained_floor = head - self.history_size + 1
        return max(int(floor), retained_floor) if floor is not None else head + 1

    def check_retained(self, connection: sqlite3.Connection, position: int) -> None:
        """Raise 286 unless every entry after `position` is still retained."""
        if position < self.oldest(connection) - 1:
            raise history_lost(
                "Resume of change stream was not possible, as the resume point may no longer "
                "be in the oplog."
            )

    def entries_after(
        self,
        connection: sqlite3.Connection,
        position: int,
        limit: int,
        db: str | None = None,
        coll: str | None = None,
    ) -> list[Entry]:
        """Return up to `limit` entries after `position` in scope (db, coll), oldest first."""
        self.check_retained(connection, position)
        query = "SELECT pos, ts, wall, op, db, coll, body FROM oplog WHERE pos > ? AND op != 'noop'"
        parameters: list[Any] = [position]
        if db is not None:
            query += " AND db = ?"
            parameters.append(db)
            if coll is not None:
                query += " AND (coll = ? OR op = 'dropDatabase')"
                parameters.append(coll)
        query += " ORDER BY pos LIMIT ?"
        parameters.append(limit)
        return [_entry(row) for row in connection.execute(query, parameters)]

    def entry(self, connection: sqlite3.Connection, position: int) -> Entry | None:
        """Return the entry at `position`, if retained."""
        row = connection.execute(
            "SELECT pos, ts, wall, op, db, coll, body FROM oplog WHERE pos = ?", (position,)
        ).fetchone()
        return _entry(row) if row else None

    def position_at(self, connection: sqlite3.Connection, cluster_time: Timestamp) -> int:
        """Return the position just before the first entry at or after `cluster_time`."""
        value = (cluster_time.time << 32) | cluster_time.inc
        row = connection.execute(
            "SELECT pos FROM oplog WHERE ts >= ? ORDER BY ts, pos LIMIT 1", (value,)
        ).fetchone()
        if row is None:
            return self.head(connection)
        position = int(row[0])
        if position == self.oldest(connection) and position > 1:
            earliest = connection.execute("SELECT min(ts) FROM oplog").fetchone()[0]
            if value < earliest:
                raise history_lost("Resume point is older than the oplog.")
        return position - 1

    # -- test hooks ----------------------------------------------------------------------

    def forget_history(self) -> None:
        """Discard every retained entry, as an oplog roll-over would (tests)."""
        with self.engine.write() as connection:
            connection.execute("DELETE FROM oplog")

    def inject_fault(self, error: PyMongoError) -> None:
        """Make the next change-stream poll in this process raise `error` (tests)."""
        with self._faults_lock:
            self._faults.append(error)
        self.engine.wake_all()

    def take_fault(self) -> PyMongoError | None:
        """Pop the next injected fault, if any."""
        with self._faults_lock:
            return self._faults.popleft() if self._faults else None

    # -- tokens --------------------------------------------------------------------------

    def token(self, position: int, kind: int = EVENT_TOKEN) -> Document:
        """Encode a position as an opaque resume token."""
        return {"_data": f"{_TOKEN_PREFIX}{self.epoch:08X}{position:016X}{kind:02X}"}

    def parse_token(self, token: Any) -> tuple[int, int]:
        """Decode a resume token into (position, kind), with MongoDB's errors for bad ones."""
        data = token.get("_data") if isinstance(token, Mapping) else None
        if not isinstance(data, str):
            raise failure(
                "Bad resume token: _data of missing or of wrong type", 40647, "Location40647"
            )
        try:
            bytes.fromhex(data)
        except ValueError:
            raise failure(
                "resume token string was not a valid hex string", 9, "FailedToParse"
            ) from None
        if len(data) != _TOKEN_LENGTH or not data.upper().startswith(_TOKEN_PREFIX):
            raise failure("Bad resume token: unrecognised format", 9, "FailedToParse")
        epoch, position, kind = int(data[2:10], 16), int(data[10:26], 16), int(data[26:], 16)
        if epoch != self.epoch:
            # A token from another embedded store: its history is not here.
            raise history_lost("The resume token belongs to another store's history.")
        return position, kind


def update_description(before: Mapping[str, Any], after: Mapping[str, Any]) -> Document:
    """Describe an update as MongoDB does: changed paths (dotted into sub-documents), removed."""
    updated: Document = {}
    removed: list[str] = []
    _diff(before, after, "", updated, removed)
    return {"updatedFields": updated, "removedFields": removed, "truncatedArrays": []}


def _diff(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    prefix: str,
    updated: Document,
    removed: list[str],
) -> None:
    for key, value in after.items():
        path = prefix + key
        if key not in before:
            updated[path] = copy.deepcopy(value)
        elif isinstance(value, Mapping) and isinstance(before[key], Mapping):
            _diff(before[key], value, path + ".", updated, removed)
        elif before[key] != value or type(before[key]) is not type(value):
            updated[path] = copy.deepcopy(value)
    removed.extend(prefix + key for key in before if key not in after)


def _timestamp(value: int) -> Timestamp:
    return Timestamp(value >> 32, value & 0xFFFFFFFF)


def _entry(row: tuple[Any, ...]) -> Entry:
    position, ts, wall, operation, db, coll, body = row
    fields = bson.decode(body)
    to = fields.get("to")
    return Entry(
        position=position,
        operation=operation,
        cluster_time=_timestamp(ts),
        wall_time=_EPOCH + timedelta(milliseconds=wall),
        db=db,
        coll=coll,
        document_key=fields.get("key"),
        before=fields.get("before"),
        after=fields.get("after"),
        description=fields.get("description"),
        images=bool(fields.get("images", False)),
        to=(to[0], to[1]) if to else None,
    )
