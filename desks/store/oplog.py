"""The embedded server's oplog: every committed write, in commit order, with bounded history."""

from __future__ import annotations

import copy
import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import Timestamp
from pymongo.errors import OperationFailure, PyMongoError

Document = dict[str, Any]

# Token layout (opaque to callers, like MongoDB's): prefix, server epoch, oplog position, kind.
_TOKEN_PREFIX = "82"
_TOKEN_LENGTH = 2 + 8 + 16 + 2
EVENT_TOKEN = 0
INVALIDATE_TOKEN = 1

CHANGE_STREAM_HISTORY_LOST = 286
CHANGE_STREAM_FATAL_ERROR = 280
INVALID_RESUME_TOKEN = 260


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
    before: Document | None = None
    after: Document | None = None
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
    """Ordered record of committed writes shared by every change stream of one embedded server.

    Writers append while holding `lock`; readers wait on `changed`. Holding one lock around
    "apply write + append entry" is what makes event order equal commit order.
    """

    def __init__(self, history_size: int = 100_000, noop_interval: float = 10.0) -> None:
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.history_size = history_size
        self.noop_interval = noop_interval
        self.epoch = random.getrandbits(32)
        self._entries: deque[Entry] = deque()
        self._head = 0  # position of the last entry ever appended
        self._last_time = Timestamp(0, 0)
        self._faults: deque[PyMongoError] = deque()

    @property
    def head(self) -> int:
        """Position of the newest entry (0 when nothing was ever written)."""
        return self._head

    @property
    def oldest(self) -> int:
        """Position of the oldest retained entry (head + 1 when none is retained)."""
        return self._entries[0].position if self._entries else self._head + 1

    def append(self, operation: str, db: str, coll: str | None, **fields: Any) -> Entry:
        """Record a committed write and wake every waiting stream; call with `lock` held."""
        now = time.time()
        seconds = max(int(now), self._last_time.time)
        increment = self._last_time.inc + 1 if seconds == self._last_time.time else 1
        self._last_time = Timestamp(seconds, increment)
        wall = datetime.fromtimestamp(now, UTC).replace(tzinfo=None)
        wall = wall.replace(microsecond=wall.microsecond // 1000 * 1000)
        self._head += 1
        entry = Entry(
            self._head,
            operation,
            self._last_time,
            wall,
            db,
            coll,
            **{k: copy.deepcopy(v) for k, v in fields.items()},
        )
        self._entries.append(entry)
        while len(self._entries) > self.history_size:
            self._entries.popleft()
        self.changed.notify_all()
        return entry

    def append_noop_if_idle(self) -> None:
        """Write a no-op when idle, as a replica set's primary does, so positions move on."""
        if not self._entries or time.time() - self._entries[-1].cluster_time.time >= (
            self.noop_interval
        ):
            self.append("noop", "admin", None)

    def entries_after(self, position: int) -> list[Entry]:
        """Return retained entries after `position`; raise 286 if some were discarded."""
        if position < self.oldest - 1:
            raise history_lost(
                "Resume of change stream was not possible, as the resume point may no longer "
                "be in the oplog."
            )
        start = position + 1 - self.oldest
        return [self._entries[i] for i in range(max(start, 0), len(self._entries))]

    def position_at(self, cluster_time: Timestamp) -> int:
        """Return the position just before the first entry at or after `cluster_time`."""
        if self._entries and self.oldest > 1 and cluster_time < self._entries[0].cluster_time:
            raise history_lost("Resume point is older than the oplog.")
        for entry in self._entries:
            if entry.cluster_time >= cluster_time:
                return entry.position - 1
        return self._head

    def forget_history(self) -> None:
        """Discard every retained entry, as an oplog roll-over would (tests)."""
        with self.lock:
            self._entries.clear()

    def inject_fault(self, error: PyMongoError) -> None:
        """Make the next change-stream poll of this server raise `error` (tests)."""
        with self.lock:
            self._faults.append(error)

    def take_fault(self) -> PyMongoError | None:
        """Pop the next injected fault, if any; call with `lock` held."""
        return self._faults.popleft() if self._faults else None

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
            # A token from another embedded server: its history is not here.
            raise history_lost("The resume token belongs to another server's history.")
        return position, kind
